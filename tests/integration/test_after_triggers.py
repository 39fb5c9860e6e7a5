"""Jobs that wait for other jobs (`after` triggers, issue 12), on the in-memory table and Azurite:
one run per satisfied set of upstream runs, never reusing one, whatever repeats or races."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.errors import InvalidInput
from shared.domain.job import Job, JobDefinition
from shared.domain.run import Cause, FailureKind, Run, RunState, Trigger
from shared.services import dependents
from tests.conftest import TableFactory
from tests.fakes.clock import FixedClock
from tests.fakes.databricks import FakeOutcome
from tests.integration.test_pipelines import ByJob
from tests.world import ALICE, T0, World

FIRST = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
FAIL = FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR")


def world(table_factory: TableFactory, outcomes: dict[int, Any] | None = None) -> World:
    clock = FixedClock(T0)
    w = World(table_factory, databricks=ByJob(clock, outcomes or {}), clock=clock)
    w.s.ensure_tables()
    return w


def upstream(w: World, name: str, job_id: int, at: str = "2026-06-01T12:05:00Z") -> Job:
    return w.job(name=name, task={"kind": "databricks_job", "job_id": job_id}, schedule={"at": at})


def waiting(w: World, *jobs: Job, condition: str = "all_succeeded", within: str = "PT12H") -> Job:
    trigger = {"kind": "after", "jobs": [j.id for j in jobs], "condition": condition, "within": within}
    params = {"upstream": "{{trigger.runs}}", "first": "{{trigger." + jobs[0].id + ".run_id}}"}
    return w.job(
        name="report",
        task={"kind": "databricks_job", "job_id": 99, "parameters": params},
        schedule=None,
        triggers=[trigger],
    )


def after_runs(w: World, job: Job) -> list[Run]:
    return [r for r in w.runs(job) if r.trigger is Trigger.AFTER]


def test_a_job_runs_once_when_all_its_upstream_jobs_have_succeeded(table_factory: TableFactory) -> None:
    w = world(table_factory)
    a = upstream(w, "prepare", 1)
    b = upstream(w, "features", 2, "2026-06-01T12:30:00Z")
    c = waiting(w, a, b)
    assert c.next_fire_at is None and c.status.value == "ACTIVE"
    w.run_until(FIRST + timedelta(minutes=15))
    assert after_runs(w, c) == []  # b has not run yet
    w.run_until(FIRST + timedelta(minutes=40))
    (run,) = after_runs(w, c)
    assert (
        run.state is RunState.SUCCEEDED
        and run.cause is not None
        and run.cause.runs == {a.id: w.run(a).id, b.id: w.run(b).id}
    )
    sent = w.fake.runs[run.databricks_run_id or 0].parameters
    assert sent == {"upstream": ",".join(sorted([w.run(a).id, w.run(b).id])), "first": w.run(a).id}
    assert dependents.evaluate(w.s.run_context, c.tenant, c.id, w.clock.now()) is None  # nothing new
    w.s.run_commands.run_now(a.tenant, a.id, ALICE)  # a again: b's run is used already
    w.run_until(FIRST + timedelta(minutes=60))
    assert len(after_runs(w, c)) == 1
    assert w.s.job_service.get(c.tenant, c.id).status.value == "ACTIVE"  # no schedule: never COMPLETED


@pytest.mark.parametrize(("condition", "runs"), [("any_succeeded", 1), ("all_done", 1), ("all_succeeded", 0)])
def test_the_conditions_with_a_failing_upstream(
    table_factory: TableFactory, condition: str, runs: int
) -> None:
    w = world(table_factory, {2: FAIL})
    a, b = upstream(w, "prepare", 1), upstream(w, "features", 2, "2026-06-01T12:06:00Z")
    c = waiting(w, a, b, condition=condition)
    w.run_until(FIRST + timedelta(minutes=20))
    assert len(after_runs(w, c)) == runs
    if condition == "any_succeeded" and runs:
        assert (after_runs(w, c)[0].cause or Cause(kind=Trigger.AFTER)).runs == {a.id: w.run(a).id}


def test_runs_outside_the_window_do_not_count(table_factory: TableFactory) -> None:
    w = world(table_factory)
    a = upstream(w, "prepare", 1)
    b = upstream(w, "features", 2, "2026-06-01T12:40:00Z")
    c = waiting(w, a, b, within="PT10M")
    w.run_until(FIRST + timedelta(minutes=60))
    assert after_runs(w, c) == []


def test_the_watchdog_makes_an_evaluation_a_crash_lost(
    table_factory: TableFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world(table_factory)
    a = upstream(w, "prepare", 1)
    c = waiting(w, a)
    monkeypatch.setattr(dependents, "on_end", lambda ctx, ended, now: None)  # every evaluation lost
    w.run_until(FIRST + timedelta(minutes=15))
    (run,) = after_runs(w, c)
    assert run.state is RunState.SUCCEEDED


def test_concurrent_evaluations_start_one_run_per_upstream_run(table_factory: TableFactory) -> None:
    w = world(table_factory)
    a = upstream(w, "prepare", 1)
    c = waiting(w, a, condition="any_succeeded")
    with pytest.MonkeyPatch.context() as patch:  # the upstream end is not evaluated: the threads do it
        patch.setattr(dependents, "on_end", lambda ctx, ended, now: None)
        w.run_until(FIRST + timedelta(minutes=4))
    started: list[Any] = []
    barrier = threading.Barrier(8)

    def evaluate() -> None:
        barrier.wait()
        started.append(dependents.evaluate(w.s.run_context, c.tenant, c.id, w.clock.now()))

    threads = [threading.Thread(target=evaluate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([s for s in started if s is not None]) == 1
    assert len(after_runs(w, c)) == 1


def test_a_paused_job_lets_its_causes_pass(table_factory: TableFactory) -> None:
    w = world(table_factory)
    a = upstream(w, "prepare", 1)
    c = waiting(w, a)
    w.s.job_service.pause(c.tenant, c.id, ALICE)
    w.run_until(FIRST + timedelta(minutes=15))
    assert after_runs(w, c) == []


def test_bad_triggers_are_refused_and_change_nothing(table_factory: TableFactory) -> None:
    w = world(table_factory)
    a = upstream(w, "prepare", 1)
    c = waiting(w, a)
    with pytest.raises(InvalidInput, match="no job"):
        w.job(
            name="x",
            task={"kind": "databricks_job", "job_id": 1},
            triggers=[{"kind": "after", "jobs": ["01J0ZZZZZZZZZZZZZZZZZZZZZZ"]}],
        )
    body = a.definition.model_dump(mode="json")
    body["triggers"] = [{"kind": "after", "jobs": [c.id]}]  # a waits for c, which waits for a
    with pytest.raises(InvalidInput, match="wait for each other"):
        w.s.job_service.update(a.tenant, a.id, ALICE, JobDefinition.model_validate(body))
    assert w.s.job_service.get(a.tenant, a.id).definition.triggers == []
    assert (
        JobDefinition.model_validate({**body, "schedule": None, "triggers": []}).schedule is None
    )  # issue 13


def test_the_api_takes_a_job_without_a_schedule_and_shows_who_waits_for_whom(
    table_factory: TableFactory,
) -> None:
    from fastapi.testclient import TestClient

    from functions.http_api import create_api

    clock = FixedClock(T0)
    w = World(table_factory, databricks=ByJob(clock, {}), clock=clock, settings={"AUTH_MODE": "development"})
    w.s.ensure_tables()
    client = TestClient(create_api(lambda: w.s))
    base = {"name": "prepare", "job_type": "data_processing", "task": {"kind": "databricks_job", "job_id": 1}}
    up = client.post("/api/jobs/schedule", json={**base, "schedule": {"at": "2026-06-01T12:05:00Z"}}).json()
    body = {**base, "name": "report", "triggers": [{"kind": "after", "jobs": [up["job_id"]]}]}
    r = client.post("/api/jobs/schedule", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["message"] == "Job 'report' created; it runs when its triggers fire"
    assert r.json()["next_fire_at"] is None and r.json()["job"]["schedule"] is None
    down = r.json()["job_id"]
    assert client.get(f"/api/jobs/{up['job_id']}").json()["waited_on_by"] == [down]
    assert client.get(f"/api/jobs/{down}").json()["waited_on_by"] == []

    for bad, says in (
        ({**base, "triggers": [{"kind": "after", "jobs": ["01J0ZZZZZZZZZZZZZZZZZZZZZZ"]}]}, "no job"),
        ({**base, "triggers": [{"kind": "after", "jobs": [up["job_id"], up["job_id"]]}]}, "appears twice"),
        ({**base, "triggers": [{"kind": "after", "jobs": [up["job_id"]], "condition": "most"}]}, "condition"),
    ):
        r = client.post("/api/jobs/schedule", json=bad)
        assert r.status_code == 422 and says in r.text, (bad, r.text)
    cyclic = {
        **base,
        "schedule": {"at": "2026-06-01T12:05:00Z"},
        "triggers": [{"kind": "after", "jobs": [down]}],
    }
    r = client.put(f"/api/jobs/{up['job_id']}", json=cyclic)
    assert r.status_code == 422 and "a cycle" in r.json()["errors"]["triggers"], r.text
    w.run_until(datetime(2026, 6, 1, 12, 20, tzinfo=UTC))
    (item,) = client.get(f"/api/jobs/{down}/runs").json()["items"]
    assert item["trigger"] == "after" and item["state"] == "SUCCEEDED"
    assert item["cause"]["kind"] == "after" and list(item["cause"]["runs"]) == [up["job_id"]]
