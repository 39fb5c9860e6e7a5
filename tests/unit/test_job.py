"""A job's state across edits, pauses, resumes and cancellation; definition validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.audit import audit_entry, changes
from shared.domain.errors import IllegalTransition
from shared.domain.job import Actor, Job, JobDefinition, JobStatus
from shared.domain.run import RunState

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ALICE = Actor(id="alice-oid", name="Alice")
BOB = Actor(id="bob-oid", name="Bob")


def definition(**overrides: Any) -> JobDefinition:
    body: dict[str, Any] = {
        "name": "nightly-churn-training",
        "job_type": "model_training",
        "task": {"kind": "databricks_job", "job_id": 123, "parameters": {"run_date": "{{scheduled_date}}"}},
        "schedule": {"cron": "30 1 * * *", "timezone": "America/New_York"},
        "tags": ["churn"],
    }
    body.update(overrides)
    return JobDefinition.model_validate(body)


def new_job(**overrides: Any) -> Job:
    return Job.new(
        job_id="01J0000000000000000000000A",
        tenant="team-a",
        definition=definition(**overrides),
        actor=ALICE,
        now=NOW,
    )


def test_a_new_job_is_active_with_its_first_fire_time() -> None:
    job = new_job()
    assert job.status is JobStatus.ACTIVE
    assert job.next_fire_at == datetime(2026, 6, 2, 5, 30, tzinfo=UTC)
    assert (job.version, job.revision) == (1, 1)


def test_an_edit_bumps_the_version_and_recomputes_the_next_fire_time() -> None:
    job = new_job()
    later = NOW + timedelta(hours=1)
    edited = job.edited(definition(schedule={"cron": "0 18 * * *"}), BOB, later)
    assert (edited.version, edited.revision) == (2, 2)
    assert edited.next_fire_at == datetime(2026, 6, 1, 18, 0, tzinfo=UTC)
    assert edited.updated_by == BOB and edited.created_by == ALICE


def test_pause_keeps_the_version_and_resume_computes_from_now_not_from_the_past() -> None:
    job = new_job(schedule={"cron": "0 * * * *"})
    paused = job.paused(ALICE, NOW)
    assert paused.status is JobStatus.PAUSED and paused.version == 1
    resumed = paused.resumed(ALICE, NOW + timedelta(days=3, minutes=10))
    assert resumed.status is JobStatus.ACTIVE
    assert resumed.next_fire_at == NOW + timedelta(days=3, hours=1)


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        pytest.param(["pause", "pause"], "only an ACTIVE job can be paused", id="pause-twice"),
        pytest.param(["resume"], "only a PAUSED job can be resumed", id="resume-active"),
        pytest.param(["cancel", "cancel"], "already cancelled", id="cancel-twice"),
        pytest.param(["cancel", "resume"], "only a PAUSED job", id="resume-cancelled"),
        pytest.param(["cancel", "edit"], "can no longer be edited", id="edit-cancelled"),
        pytest.param(["cancel", "pause"], "only an ACTIVE job", id="pause-cancelled"),
    ],
)
def test_illegal_transitions_raise(steps: list[str], error: str) -> None:
    job = new_job()
    with pytest.raises(IllegalTransition, match=error):
        for step in steps:
            if step == "edit":
                job = job.edited(definition(), ALICE, NOW)
            else:
                job = getattr(job, {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[step])(
                    ALICE, NOW
                )


def test_cancel_clears_the_next_fire_time_and_leaves_the_due_index() -> None:
    job = new_job().cancelled(ALICE, NOW)
    assert job.status is JobStatus.CANCELLED and job.next_fire_at is None
    assert not job.is_due_indexed


def test_a_paused_job_is_visited_by_the_tick_only_if_it_records_skips() -> None:
    assert not new_job().paused(ALICE, NOW).is_due_indexed
    assert new_job(record_skipped_while_paused=True).paused(ALICE, NOW).is_due_indexed


def test_a_one_time_job_whose_instant_passed_has_no_fire_time() -> None:
    job = new_job(schedule={"at": "2026-05-01T00:00:00Z"})
    assert job.status is JobStatus.COMPLETED and job.next_fire_at is None


def test_editing_a_completed_job_with_new_fire_times_reactivates_it() -> None:
    job = new_job(schedule={"at": "2026-05-01T00:00:00Z"})
    edited = job.edited(definition(schedule={"at": "2026-07-01T00:00:00Z"}), ALICE, NOW)
    assert edited.status is JobStatus.ACTIVE


def test_audit_lists_only_the_fields_that_changed() -> None:
    job = new_job()
    edited = job.edited(definition(schedule={"cron": "0 18 * * *"}, tags=["churn", "nightly"]), BOB, NOW)
    entry = audit_entry("update", job, edited, BOB, NOW)
    assert {c.field for c in entry.changes} == {
        "definition.schedule.cron",
        "definition.schedule.timezone",
        "definition.tags",
    }
    assert entry.actor == BOB and entry.version == 2 and entry.revision == 2


def test_audit_of_a_pause_names_the_status_change() -> None:
    job = new_job()
    assert [(c.field, c.before, c.after) for c in changes(job, job.paused(ALICE, NOW))] == [
        ("status", "ACTIVE", "PAUSED")
    ]


def test_huge_values_are_clipped_in_the_audit() -> None:
    job = new_job()
    edited = job.edited(definition(description="x" * 2000), ALICE, NOW)
    edited2 = edited.edited(definition(description="y" * 2000), ALICE, NOW)
    (change,) = changes(edited, edited2)
    assert change.after == "y" * 2000
    assert len(str(change.before)) == 2000


TASK_ERRORS = [
    pytest.param({"kind": "databricks_job"}, "job_id", id="job-without-id"),
    pytest.param({"kind": "databricks_job", "job_id": 0}, "greater than 0", id="job-id-zero"),
    pytest.param({"kind": "spark"}, "kind", id="unknown-kind"),
    pytest.param(
        {"kind": "databricks_run", "existing_cluster_id": "c1"},
        "exactly one of 'notebook_path', 'python_file' or 'python_wheel'",
        id="run-without-entry-point",
    ),
    pytest.param(
        {"kind": "databricks_run", "notebook_path": "/n", "python_file": "f.py", "existing_cluster_id": "c"},
        "exactly one of 'notebook_path'",
        id="run-with-two-entry-points",
    ),
    pytest.param(
        {"kind": "databricks_run", "notebook_path": "/n"},
        "exactly one of 'cluster' or 'existing_cluster_id'",
        id="run-without-cluster",
    ),
    pytest.param(
        {"kind": "databricks_run", "notebook_path": "/n", "parameters": ["a"], "existing_cluster_id": "c"},
        "mapping of widget values",
        id="notebook-with-list-params",
    ),
    pytest.param(
        {"kind": "databricks_run", "python_file": "f.py", "cluster": {"spark_version": "15.4.x-scala2.12"}},
        "num_workers",
        id="cluster-without-size",
    ),
]


@pytest.mark.parametrize(("task", "message"), TASK_ERRORS)
def test_invalid_tasks_are_refused_with_a_reason(task: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        definition(task=task)


def test_a_one_off_python_run_on_a_new_cluster_is_valid() -> None:
    d = definition(
        task={
            "kind": "databricks_run",
            "python_file": "dbfs:/jobs/train.py",
            "parameters": ["--epochs", "10"],
            "cluster": {
                "spark_version": "15.4.x-scala2.12",
                "node_type_id": "Standard_DS3_v2",
                "num_workers": 2,
            },
        }
    )
    assert d.task.kind == "databricks_run"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("overlap", "sometimes", id="overlap"),
        pytest.param("misfire", "later", id="misfire"),
        pytest.param("priority", "critical", id="priority"),
        pytest.param("job_type", "training", id="job-type"),
        pytest.param("timeout", "PT5S", id="timeout-too-short"),
        pytest.param("retry", {"max_attempts": 0}, id="zero-attempts"),
        pytest.param("retry", {"initial_delay": "PT10M", "max_delay": "PT1M"}, id="max-below-initial"),
        pytest.param("tags", ["has space"], id="bad-tag"),
        pytest.param("name", "", id="empty-name"),
        pytest.param("name", "a\nb", id="control-char-in-name"),
    ],
)
def test_invalid_policies_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        definition(**{field: value})


def test_tags_are_normalised_and_deduplicated() -> None:
    assert definition(tags=["Churn", "churn", " nightly "]).tags == ["churn", "nightly"]


def test_noting_a_run_shows_it_as_the_last_run_unless_a_newer_one_is_noted() -> None:
    job = new_job()
    at = datetime(2026, 6, 2, 5, 30, tzinfo=UTC)
    noted = job.noted(RunState.FAILED, at)
    assert (noted.last_run_state, noted.last_run_at, noted.status) == (RunState.FAILED, at, JobStatus.ACTIVE)
    assert noted.noted(RunState.SUCCEEDED, at - timedelta(days=1)) == noted  # older: ignored
    assert noted.noted(RunState.FAILED, at) == noted  # the same again: nothing changes


def test_the_end_of_the_last_run_of_an_ended_schedule_completes_the_job() -> None:
    fired = new_job(schedule={"at": "2026-06-01T13:00:00Z"}).model_copy(
        update={"next_fire_at": None, "last_run_state": RunState.SCHEDULED}
    )
    at = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    assert fired.noted(RunState.SUCCEEDED, at).status is JobStatus.COMPLETED
    assert fired.paused(ALICE, NOW).noted(RunState.FAILED, at).status is JobStatus.PAUSED
