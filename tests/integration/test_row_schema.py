"""Rows written by another release still read and work: upgraded, unknown fields ignored, missing
ones defaulted. `tests/fixtures/rows_ca9225d.json` holds rows as the release at ca9225d wrote them."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.jobs_table import JobsTable, job_from_row
from shared.adapters.row_schema import JOB_VERSION, RUN_VERSION, upgraded
from shared.adapters.runs_table import run_from_row
from shared.adapters.table import Row, Write
from shared.domain.job import Actor, JobStatus
from shared.domain.run import AttemptResult, RunState
from shared.services.ports import JobQuery
from tests.fakes.memory_table import InMemoryTable
from tests.world import World

FIXTURE = json.loads((Path(__file__).parent.parent / "fixtures" / "rows_ca9225d.json").read_text())


def _old_rows(table: str) -> list[dict[str, Any]]:
    return list(FIXTURE[table])


def _seeded(jobs: InMemoryTable) -> str:
    for row in _old_rows("jobs"):
        jobs.write(row["pk"], [Write("upsert", row["rk"], row["data"])])
    (job_row,) = [r for r in _old_rows("jobs") if not r["rk"].startswith("~")]
    return str(job_row["rk"])


def test_a_job_written_by_an_earlier_release_reads_lists_and_fires() -> None:
    w = World(InMemoryTable)
    job_id = _seeded(w.s.tables.jobs)  # type: ignore[arg-type]
    job = w.s.job_service.get("team-a", job_id)
    assert job.definition.name == "nightly-churn-training" and job.status is JobStatus.ACTIVE
    assert job.shard == ""  # rows from before shards: the job's shard is its hash
    page = w.s.job_service.list_jobs("team-a", JobQuery(sort="name"))
    assert [s.job_id for s in page.items] == [job_id]
    assert page.items[0].next_fire_at == job.next_fire_at
    w.clock.set(job.next_fire_at - timedelta(seconds=30))  # type: ignore[operator]
    w.s.due_index.put(w.s.due_index.entry(job))  # type: ignore[arg-type]  # its due row was in the old table
    report = w.s.ticker.tick()
    assert (report.fired, report.errors) == (1, 0)
    again = w.s.job_service.get("team-a", job_id)
    assert again.next_fire_at == job.next_fire_at + timedelta(minutes=5)  # type: ignore[operator]


def test_a_run_written_by_an_earlier_release_reads() -> None:
    (row,) = _old_rows("runs")
    tenant, job_id = row["pk"].split("~")
    run_key = row["data"]["run_key"]
    run = run_from_row(Row("s03", f"r~{tenant}~{job_id}~0000000000000~{run_key}", row["data"]))
    assert run.state is RunState.RUNNING and run.shard == "s03"
    assert run.intent is None and run.watch_at is None and run.repairs == 0
    assert [a.number for a in run.attempts] == [1] and run.attempts[0].result is None


def test_fields_this_release_does_not_know_are_ignored_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    (job_row,) = [r for r in _old_rows("jobs") if not r["rk"].startswith("~")]
    data = dict(job_row["data"])
    definition = json.loads(data["definition"])
    definition["retry"]["give_up_after"] = "P1D"  # written by a newer release
    definition["task"]["cluster_policy"] = "gpu"
    definition["sla"] = {"minutes": 30}
    data["definition"] = json.dumps(definition)
    data["owner_team"] = "ml-platform"
    row = Row(job_row["pk"], job_row["rk"], data)
    with caplog.at_level(logging.WARNING):
        job = job_from_row(row)
        job_from_row(row)
    assert job.definition.retry.max_attempts == 3
    warnings = [r.getMessage() for r in caplog.records if "does not know" in r.getMessage()]
    assert any("JobDefinition.sla" in m for m in warnings)
    assert any("RetryPolicy.retry.give_up_after" in m for m in warnings)
    assert any("DatabricksJobTask.task.cluster_policy" in m for m in warnings)
    assert len(warnings) == len(set(warnings))  # once each


def test_a_field_added_later_takes_its_default() -> None:
    (job_row,) = [r for r in _old_rows("jobs") if not r["rk"].startswith("~")]
    data = dict(job_row["data"])
    definition = json.loads(data["definition"])
    for later in ("misfire", "catch_up_window", "record_skipped_while_paused", "priority"):
        definition.pop(later)
    data["definition"] = json.dumps(definition)
    job = job_from_row(Row(job_row["pk"], job_row["rk"], data))
    assert job.definition.misfire.value == "fire_once" and job.definition.priority.value == "normal"


def test_rows_this_release_writes_carry_their_schema_version() -> None:
    w = World(InMemoryTable)
    job = w.job(schedule={"at": "2026-06-01T12:05:00Z"})
    w.fire()
    w.deliver(until=w.clock.now() + timedelta(minutes=3))
    job_row = w.s.tables.jobs.get("team-a", job.id)
    assert job_row.data["schema_version"] == JOB_VERSION
    (run,) = w.runs(job)
    run_rows = [r for r in w.s.tables.runs.query(None) if r.rk.startswith("r~")]
    assert [r.data["schema_version"] for r in run_rows] == [RUN_VERSION]
    assert run.state is RunState.SUCCEEDED and run.attempts[0].result is AttemptResult.SUCCEEDED


def test_an_upgrade_runs_from_the_row_version_to_this_one() -> None:
    assert upgraded("job", {"schema_version": JOB_VERSION, "x": 1}) == {"x": 1}
    assert upgraded("run", {"x": 1}) == {"x": 1}  # version 0: before versions existed
    newer = {"schema_version": JOB_VERSION + 1, "x": 1}
    assert upgraded("job", newer) == {"x": 1}  # a newer release's row: read as it is


def test_an_index_row_of_an_earlier_release_lists() -> None:
    jobs = InMemoryTable("jobs")
    _seeded(jobs)
    store = JobsTable(jobs)
    for sort in ("name", "-created_at", "next_fire_at", "-updated_at"):
        (item,) = store.find("team-a", JobQuery(sort=sort)).items
        assert item.name == "nightly-churn-training" and item.tags == ["churn", "nightly"]


def test_writing_an_old_job_moves_it_to_the_lean_rows() -> None:
    jobs = InMemoryTable("jobs")
    job_id = _seeded(jobs)
    store = JobsTable(jobs)
    job, etag = store.get("team-a", job_id)
    now = datetime(2026, 6, 2, tzinfo=UTC)
    after = job.paused(Actor(id="a", name="A"), now)
    store.save(job, etag, after, audit=None)
    index = [r for r in jobs.query("team-a") if r.rk.startswith("~i")]
    assert all("next_fire_at" not in r.data and "last_run_state" not in r.data for r in index)
    assert {r.data["status"] for r in index} == {"PAUSED"}
