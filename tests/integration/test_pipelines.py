"""Pipeline runs (issue 12): steps in dependency order with Databricks' run_if rules, each step's run
started exactly once per attempt under duplicates and crashes, cancel, and the watchdog finishing
what a crash left. On the in-memory table and on Azurite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.databricks import LaunchRequest
from shared.domain.job import DatabricksJobTask, Job
from shared.domain.pipeline import StepState
from shared.domain.pool import PoolSpec
from shared.domain.run import FailureKind, Run, RunState
from shared.services import pipelines
from tests.conftest import TableFactory
from tests.fakes.clock import FixedClock
from tests.fakes.databricks import FakeDatabricks, FakeOutcome, FakeRun
from tests.world import ALICE, T0, World

FIRST = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
FAIL = FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR")


class Injected(Exception):
    """A crash: the process dies here."""


class ByJob(FakeDatabricks):
    """The fake Databricks, each run ending as its Databricks job id says (default: success); a
    list of outcomes is used up one run at a time, then success."""

    def __init__(self, clock: Any, outcomes: dict[int, FakeOutcome | list[FakeOutcome]]) -> None:
        super().__init__(clock)
        self.by_job = outcomes

    def _start(self, request: LaunchRequest) -> FakeRun:
        run = super()._start(request)
        if isinstance(request.task, DatabricksJobTask):
            said = self.by_job.get(request.task.job_id, FakeOutcome.SUCCESS)
            run.outcome = (said.pop(0) if said else FakeOutcome.SUCCESS) if isinstance(said, list) else said
        return run


def step(key: str, job_id: int, *depends_on: str, **fields: Any) -> dict[str, Any]:
    return {
        "key": key,
        "task": {"kind": "databricks_job", "job_id": job_id},
        "depends_on": list(depends_on),
        **fields,
    }


DIAMOND = [step("a", 1), step("b", 2, "a"), step("c", 3, "a")]


def world(table_factory: TableFactory, outcomes: dict[int, Any] | None = None) -> World:
    clock = FixedClock(T0)
    w = World(table_factory, databricks=ByJob(clock, outcomes or {}), clock=clock)
    w.s.ensure_tables()
    return w


def pipeline(w: World, steps: list[dict[str, Any]], **fields: Any) -> Job:
    return w.job(
        **{
            "name": "pipe",
            "job_type": "pipeline",
            "task": {"kind": "pipeline", "steps": steps},
            "schedule": {"at": "2026-06-01T12:05:00Z"},
            **fields,
        }
    )


def steps_of(w: World, job: Job) -> tuple[Run, dict[str, Run]]:
    parent = w.run(job)
    children = w.s.run_repository.children(parent.shard, parent.tenant, parent.job_id, parent.run_key)
    return parent, {c.step or "": c for c, _ in children}


def launched_at(run: Run) -> datetime:
    launched = run.attempts[0].launched_at
    assert launched is not None
    return launched


def test_steps_run_in_dependency_order_independent_ones_in_parallel(table_factory: TableFactory) -> None:
    w = world(table_factory)
    job = pipeline(w, [*DIAMOND, step("d", 4, "b", "c")])
    w.run_until(FIRST + timedelta(minutes=15))
    parent, children = steps_of(w, job)
    assert parent.state is RunState.SUCCEEDED, parent.reason
    assert {k: r.state for k, r in (parent.steps or {}).items()} == dict.fromkeys("abcd", StepState.SUCCEEDED)
    a, b, c, d = (children[k] for k in "abcd")
    assert a.attempts[0].ended_at is not None
    assert launched_at(b) >= a.attempts[0].ended_at and launched_at(c) >= a.attempts[0].ended_at
    assert launched_at(b) == launched_at(c)  # started together when a ended
    assert launched_at(d) >= max(b.attempts[0].ended_at or FIRST, c.attempts[0].ended_at or FIRST)
    assert w.s.job_service.job_runs(job.tenant, job.id, None, 50, None).items == [
        parent
    ]  # steps are not history


@pytest.mark.parametrize(
    ("run_if", "d_state", "parent_state"),
    [
        ("ALL_DONE", StepState.SUCCEEDED, RunState.SUCCEEDED_WITH_FAILURES),
        ("ALL_SUCCESS", StepState.UPSTREAM_FAILED, RunState.FAILED),
    ],
)
def test_the_diamond_with_a_failing_branch(
    table_factory: TableFactory, run_if: str, d_state: StepState, parent_state: RunState
) -> None:
    w = world(table_factory, {2: FAIL})
    job = pipeline(w, [*DIAMOND, step("d", 4, "b", "c", run_if=run_if)])
    w.run_until(FIRST + timedelta(minutes=15))
    parent, children = steps_of(w, job)
    states = {k: r.state for k, r in (parent.steps or {}).items()}
    assert states == {"a": StepState.SUCCEEDED, "b": StepState.FAILED, "c": StepState.SUCCEEDED, "d": d_state}
    assert parent.state is parent_state
    assert ("d" in children) is (d_state is StepState.SUCCEEDED)  # an UPSTREAM_FAILED step never ran


@pytest.mark.parametrize(
    ("train", "rollback"), [(FakeOutcome.SUCCESS, StepState.EXCLUDED), (FAIL, StepState.SUCCEEDED)]
)
def test_a_rollback_step_runs_only_when_something_failed(
    table_factory: TableFactory, train: FakeOutcome, rollback: StepState
) -> None:
    w = world(table_factory, {2: train})
    job = pipeline(
        w,
        [
            step("prepare", 1),
            step("train", 2, "prepare"),
            step("rollback", 9, "train", run_if="AT_LEAST_ONE_FAILED"),
        ],
    )
    w.run_until(FIRST + timedelta(minutes=15))
    parent, _ = steps_of(w, job)
    assert (parent.steps or {})["rollback"].state is rollback
    assert parent.state is (
        RunState.SUCCEEDED if rollback is StepState.EXCLUDED else RunState.SUCCEEDED_WITH_FAILURES
    )


def test_each_step_starts_exactly_once_when_deliveries_repeat_and_hosts_die(
    table_factory: TableFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every delivery is handled twice (the host dies after each first handling: the lock runs
    out and Service Bus delivers it again), and the handler dies once between recording a step's
    end and starting the steps after it: still one Databricks run per step."""
    w = world(table_factory, {3: FAIL})
    job = pipeline(
        w,
        [*DIAMOND, step("d", 4, "b", "c", run_if="ALL_DONE"), step("e", 5, "d")],
        retry={"max_attempts": 2, "initial_delay": "PT0S"},
    )
    seen: set[str] = set()

    def crash_once(delivery: Any) -> bool:
        first = delivery.message_id not in seen
        seen.add(delivery.message_id)
        return first

    w.crash = crash_once
    real = pipelines.step_ended
    died: list[str] = []

    def dies_after_the_end_was_written(ctx: Any, child: Run, now: datetime) -> None:
        if not died:
            died.append(child.run_key)
            raise Injected("died between a step's end and its successors' start")
        real(ctx, child, now)

    monkeypatch.setattr(pipelines, "step_ended", dies_after_the_end_was_written)
    w.run_until(FIRST + timedelta(minutes=40))
    parent, children = steps_of(w, job)
    assert died and parent.state is RunState.SUCCEEDED_WITH_FAILURES, parent.steps
    assert set(children) == set("abcde")
    assert children["c"].state is RunState.FAILED and len(children["c"].attempts) == 2  # its retry ran
    starts = [w.fake.starts_for_token(r.idempotency_token) for r in w.fake.launches]
    assert set(starts) == {1}
    assert len({r.idempotency_token for r in w.fake.launches}) == 6  # a, b, c twice, d, e


def test_the_watchdog_finishes_a_pipeline_whose_step_ends_went_unheard(
    table_factory: TableFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world(table_factory)
    job = pipeline(w, [*DIAMOND, step("d", 4, "b", "c")])
    monkeypatch.setattr(pipelines, "step_ended", lambda ctx, child, now: None)  # every end is lost
    w.run_until(FIRST + timedelta(minutes=90))
    parent, children = steps_of(w, job)
    assert parent.state is RunState.SUCCEEDED and set(children) == set("abcd")


def test_cancelling_a_pipeline_cancels_its_running_steps_and_starts_no_more(
    table_factory: TableFactory,
) -> None:
    w = world(table_factory, {2: FakeOutcome.HANG})
    job = pipeline(w, [*DIAMOND, step("d", 4, "b", "c")])
    w.run_until(FIRST + timedelta(minutes=5))
    parent, children = steps_of(w, job)
    assert children["b"].state is RunState.RUNNING and "d" not in children
    w.s.run_commands.cancel(job.tenant, job.id, parent.run_key, "by hand")
    w.run_until(FIRST + timedelta(minutes=30))
    parent, children = steps_of(w, job)
    assert parent.state is RunState.CANCELLED
    assert children["b"].state is RunState.CANCELLED and "d" not in children
    b_run = children["b"].databricks_run_id
    assert b_run is not None and w.fake.runs[b_run].status.phase.value == "CANCELLED"
    assert (parent.steps or {})["d"].state is StepState.CANCELLED


def test_fifty_steps_in_a_four_slot_pool(table_factory: TableFactory) -> None:
    """A wide pipeline never holds more than its pool's slots and finishes."""
    w = world(table_factory)
    w.s.pool_service.put("gpu", PoolSpec(slots=4), ALICE)
    fan = [step("start", 1)] + [step(f"s{i:02d}", 100 + i, "start") for i in range(48)]
    job = pipeline(w, [*fan, step("end", 2, *(f"s{i:02d}" for i in range(48)))], pool="gpu")
    peak: list[int] = []
    handle = w.handle

    def checked(delivery: Any) -> str:
        action = handle(delivery)
        peak.append(len(w.s.pools.read("gpu").leases))
        return action

    w.handle = checked  # type: ignore[method-assign]
    w.run_until(FIRST + timedelta(hours=3))
    parent, children = steps_of(w, job)
    assert parent.state is RunState.SUCCEEDED and len(children) == 50
    assert max(peak) == 4


# -- the API ----------------------------------------------------------------------------------------


def test_the_api_refuses_a_bad_graph_naming_the_step_and_shows_a_runs_steps(
    table_factory: TableFactory,
) -> None:
    from fastapi.testclient import TestClient

    from functions.http_api import create_api

    clock = FixedClock(T0)
    w = World(
        table_factory, databricks=ByJob(clock, {2: FAIL}), clock=clock, settings={"AUTH_MODE": "development"}
    )
    w.s.ensure_tables()
    client = TestClient(create_api(lambda: w.s))
    body = {
        "name": "pipe",
        "job_type": "pipeline",
        "schedule": {"at": "2026-06-01T12:05:00Z"},
        "task": {"kind": "pipeline", "steps": [step("a", 1, "c"), step("b", 2, "a"), step("c", 3, "b")]},
    }
    r = client.post("/api/jobs/schedule", json=body)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert "a cycle: a -> c -> b -> a" in str(r.json()["errors"]), r.json()
    body["task"] = {"kind": "pipeline", "steps": [step("a", 1), step("a", 2)]}
    assert "step 'a' appears twice" in str(client.post("/api/jobs/schedule", json=body).json()["errors"])
    assert (
        w.s.job_repository.find(
            "dev", __import__("shared.services.ports", fromlist=["JobQuery"]).JobQuery()
        ).items
        == []
    )

    body["task"] = {"kind": "pipeline", "steps": [*DIAMOND, step("d", 4, "b", "c", run_if="ALL_DONE")]}
    job_id = client.post("/api/jobs/schedule", json=body).json()["job_id"]
    w.run_until(FIRST + timedelta(minutes=15))
    (item,) = client.get(f"/api/jobs/{job_id}/runs").json()["items"]
    run = client.get(f"/api/runs/{item['run_id']}").json()
    assert run["state"] == "SUCCEEDED_WITH_FAILURES"
    steps = {s["key"]: s for s in run["steps"]}
    assert [s["key"] for s in run["steps"]] == ["a", "b", "c", "d"]
    assert steps["b"]["state"] == "FAILED" and steps["d"]["depends_on"] == ["b", "c"]
    assert steps["d"]["run_if"] == "ALL_DONE" and steps["a"]["attempts"] == 1
    child = client.get(
        f"/api/runs/{steps['b']['run_id']}"
    ).json()  # a step's run works with the run endpoints
    assert child["state"] == "FAILED" and child["step"] == "b" and child["pipeline_run_id"] == run["run_id"]
    assert client.post(f"/api/runs/{steps['b']['run_id']}/retry").status_code == 409

    repair = f"/api/runs/{run['run_id']}/repair"
    for bad in ({}, {"steps": ["b"], "all_failed": True}, {"steps": []}, {"all_failed": "yes"}):
        assert client.post(repair, json=bad).status_code == 422, bad
    assert client.post(repair, json={"steps": ["zz"]}).status_code == 422
    r = client.post(repair, json={"all_failed": True})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "RUNNING" and r.json()["repair_history"][0]["steps"] == ["b", "d"]
    assert client.post(repair, json={"all_failed": True}).status_code == 409  # in progress
    w.run_until(FIRST + timedelta(minutes=40))
    again = client.get(f"/api/runs/{item['run_id']}").json()
    assert again["state"] == "SUCCEEDED_WITH_FAILURES" and len(again["repair_history"]) == 1


def test_a_failed_pipeline_says_which_steps_failed(table_factory: TableFactory) -> None:
    w = world(table_factory, {2: FAIL})
    job = pipeline(w, [*DIAMOND, step("d", 4, "b", "c")])
    w.run_until(FIRST + timedelta(minutes=15))
    parent, _ = steps_of(w, job)
    assert parent.state is RunState.FAILED and parent.reason == "failed steps: b, d"


def test_a_step_refers_to_an_earlier_steps_databricks_run_and_its_pipeline_run(
    table_factory: TableFactory,
) -> None:
    w = world(table_factory)
    params = {
        "upstream": "{{steps.a.databricks_run_id}}",
        "pipeline": "{{run.id}}",
        "day": "{{run.scheduled_date}}",
    }
    b = {**step("b", 2, "a"), "task": {"kind": "databricks_job", "job_id": 2, "parameters": params}}
    job = pipeline(w, [step("a", 1), b])
    w.run_until(FIRST + timedelta(minutes=15))
    parent, children = steps_of(w, job)
    sent = w.fake.runs[children["b"].databricks_run_id or 0].parameters
    assert sent == {
        "upstream": str(children["a"].databricks_run_id),
        "pipeline": parent.id,
        "day": "2026-06-01",
    }


def test_a_repair_runs_the_failed_steps_and_what_follows_them_again(table_factory: TableFactory) -> None:
    """b fails once; d (after b and c) is UPSTREAM_FAILED. Repairing every failed step runs b and d
    again in the same pipeline run, with b's parameters filled again, and not a or c."""
    from shared.domain.errors import Conflict, InvalidInput

    w = world(table_factory, {2: [FAIL]})
    params = {"upstream": "{{steps.a.databricks_run_id}}", "day": "{{run.scheduled_date}}"}
    b = {**step("b", 2, "a"), "task": {"kind": "databricks_job", "job_id": 2, "parameters": params}}
    job = pipeline(w, [step("a", 1), b, step("c", 3, "a"), step("d", 4, "b", "c")])
    w.run_until(FIRST + timedelta(minutes=15))
    parent, first = steps_of(w, job)
    assert parent.state is RunState.FAILED and parent.reason == "failed steps: b, d"
    with pytest.raises(InvalidInput):
        pipelines.repair(w.s.run_context, job, parent.run_key, ["nope"], "Alice")

    repaired = pipelines.repair(w.s.run_context, job, parent.run_key, None, "Alice")
    assert repaired.state is RunState.RUNNING and repaired.repair_history[0].steps == ["b", "d"]
    with pytest.raises(Conflict):  # in progress
        pipelines.repair(w.s.run_context, job, parent.run_key, None, "Alice")
    w.run_until(FIRST + timedelta(minutes=40))
    parent, children = steps_of(w, job)
    assert parent.state is RunState.SUCCEEDED, parent.steps
    assert {k for k in children} == {"a", "b", "c", "d"}  # latest run of each step (b.r1, d.r1)
    runs = {
        c.run_key.split(".", 1)[1]
        for c, _ in w.s.run_repository.children(parent.shard, parent.tenant, parent.job_id, parent.run_key)
    }
    assert runs == {"a", "b", "c", "b.r1", "d.r1"}  # d never ran before the repair
    again = w.fake.runs[
        next(
            c.databricks_run_id
            for c, _ in w.s.run_repository.children(
                parent.shard, parent.tenant, parent.job_id, parent.run_key
            )
            if c.run_key.endswith("b.r1")
        )
        or 0
    ]
    assert again.parameters == {"upstream": str(first["a"].databricks_run_id), "day": "2026-06-01"}
    tokens = [r.idempotency_token for r in w.fake.launches]
    assert len(tokens) == len(set(tokens)) == 5  # a, b, c, then b again and d: each once
    with pytest.raises(Conflict):  # it succeeded: nothing to repair
        pipelines.repair(w.s.run_context, job, parent.run_key, None, "Alice")


def test_a_pipeline_and_its_steps_carry_the_jobs_deadline(table_factory: TableFactory) -> None:
    w = world(table_factory, {2: FakeOutcome.HANG})
    job = pipeline(w, [step("a", 1), step("b", 2, "a")], deadline="PT5M")
    w.run_until(FIRST + timedelta(minutes=8))
    parent, children = steps_of(w, job)
    assert parent.deadline_at == FIRST + timedelta(minutes=5) == children["b"].deadline_at
    assert parent.deadline_missed_at is not None and children["b"].deadline_missed_at is not None


def test_a_step_gets_the_value_an_earlier_notebook_step_exited_with(table_factory: TableFactory) -> None:
    w = world(table_factory)
    evaluate = {
        "key": "evaluate",
        "task": {
            "kind": "databricks_run",
            "notebook_path": "/Workspace/evaluate",
            "parameters": {"exit_value": "auc=0.93"},  # what the fake (like the emulator) exits with
            "existing_cluster_id": "c",
        },
    }
    store = {
        **step("store", 2, "evaluate"),
        "task": {
            "kind": "databricks_job",
            "job_id": 2,
            "parameters": {"metric": "{{steps.evaluate.result}}"},
        },
    }
    job = pipeline(w, [evaluate, store])
    w.run_until(FIRST + timedelta(minutes=15))
    _, children = steps_of(w, job)
    assert w.fake.runs[children["store"].databricks_run_id or 0].parameters == {"metric": "auc=0.93"}
