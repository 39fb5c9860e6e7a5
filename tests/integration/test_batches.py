"""Batches (issue 14): every point runs once with its values, never more than `max_parallel` at a
time, through pools like any run; failures retried as a new round; cancel; duplicate deliveries and
lost point ends repaired. On the in-memory table and on Azurite."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.adapters.databricks import LaunchRequest, Phase
from shared.domain.batch import BatchSpec
from shared.domain.errors import Conflict, ExternalError, InvalidInput
from shared.domain.job import Job
from shared.domain.pool import PoolSpec
from shared.domain.run import FailureKind, Run, RunState
from shared.services import batches
from tests.conftest import TableFactory
from tests.fakes.clock import FixedClock
from tests.fakes.databricks import FakeDatabricks, FakeOutcome, FakeRun
from tests.world import ALICE, T0, World

FAIL = FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR")
TASK = {
    "kind": "databricks_job",
    "job_id": 7,
    "parameters": {"lr": "{{params.lr}}", "depth": "{{params.depth}}"},
}


class Sweep(FakeDatabricks):
    """The fake Databricks, failing the runs whose filled `lr` is in `failing` (each such value
    fails `times` times), and measuring how many runs were active at once."""

    def __init__(self, clock: Any, failing: set[str] | None = None, times: int = 1) -> None:
        super().__init__(clock)
        self.failing = {value: times for value in failing or set()}
        self.most_active = 0

    def _start(self, request: LaunchRequest) -> FakeRun:
        active = sum(1 for r in self.runs.values() if not r.status.phase.is_terminal)
        self.most_active = max(self.most_active, active + 1)
        run = super()._start(request)
        lr = run.parameters.get("lr") if isinstance(run.parameters, dict) else None
        if lr is not None and self.failing.get(lr, 0) > 0:
            self.failing[lr] -= 1
            run.outcome = FAIL
        return run


def world(table_factory: TableFactory, **fake: Any) -> tuple[World, Sweep]:
    clock = FixedClock(T0)
    dbx = Sweep(clock, **fake)
    w = World(table_factory, databricks=dbx, clock=clock)
    w.s.ensure_tables()
    return w, dbx


def create(w: World, **spec: Any) -> tuple[Job, bool]:
    body = {"task": TASK, "grid": {"lr": ["0.1", "0.01", "0.001"], "depth": ["4", "8"]}, **spec}
    return w.s.batches.create("team-a", ALICE, BatchSpec.model_validate(body))


def settle(w: World, hours: float = 2) -> None:
    w.run_until(w.clock.now() + timedelta(hours=hours))


def filled(dbx: Sweep) -> list[dict[str, str]]:
    return sorted((dict(r.parameters) for r in dbx.runs.values()), key=lambda p: (p["lr"], p["depth"]))  # type: ignore[arg-type]


def test_every_point_runs_once_with_its_values_at_most_max_parallel_at_a_time(
    table_factory: TableFactory,
) -> None:
    w, dbx = world(table_factory)
    job, _ = create(w, max_parallel=2)
    settle(w)
    view = w.s.batches.get("team-a", job.id)
    assert view.rounds[0].state is RunState.SUCCEEDED
    assert [p.state for p in view.points] == [RunState.SUCCEEDED] * 6
    assert [p.values for p in view.points][:2] == [{"lr": "0.1", "depth": "4"}, {"lr": "0.1", "depth": "8"}]
    assert filled(dbx) == sorted(
        ({"lr": lr, "depth": d} for lr in ("0.1", "0.01", "0.001") for d in ("4", "8")),
        key=lambda p: (p["lr"], p["depth"]),
    )
    assert dbx.most_active == 2
    assert all(dbx.starts_for_token(t) == 1 for t in {r.request.idempotency_token for r in dbx.runs.values()})
    assert view.rounds[0].batch is not None and view.rounds[0].batch.counts == {"SUCCEEDED": 6}


def test_sequential_runs_one_point_at_a_time_in_order(table_factory: TableFactory) -> None:
    w, dbx = world(table_factory)
    job, _ = create(w, execution_mode="sequential", max_parallel=5)
    settle(w)
    assert dbx.most_active == 1
    order = [r.parameters for r in sorted(dbx.runs.values(), key=lambda r: r.run_id)]
    assert order[:3] == [
        {"lr": "0.1", "depth": "4"},
        {"lr": "0.1", "depth": "8"},
        {"lr": "0.01", "depth": "4"},
    ]
    assert w.s.batches.get("team-a", job.id).rounds[0].state is RunState.SUCCEEDED


def test_failed_points_run_again_as_a_new_round_and_only_they(table_factory: TableFactory) -> None:
    w, dbx = world(table_factory, failing={"0.01"}, times=2)
    job, _ = create(w, max_parallel=3)
    settle(w)
    view = w.s.batches.get("team-a", job.id)
    assert view.rounds[0].state is RunState.SUCCEEDED_WITH_FAILURES
    assert [p.point for p in view.points if p.state is RunState.FAILED] == [2, 3]
    with pytest.raises(Conflict):
        w.s.run_commands.retry("team-a", job.id, view.points[2].run.run_key, ALICE)  # type: ignore[union-attr]

    second = w.s.batches.retry_failed("team-a", job.id, ALICE)
    assert second.batch is not None and second.batch.points == [2, 3] and second.batch.round == 2
    with pytest.raises(Conflict):
        w.s.batches.retry_failed("team-a", job.id, ALICE)  # round 2 runs: not now
    settle(w)
    view = w.s.batches.get("team-a", job.id)
    assert [r.state for r in view.rounds] == [RunState.SUCCEEDED, RunState.SUCCEEDED_WITH_FAILURES]
    assert [p.state for p in view.points] == [RunState.SUCCEEDED] * 6
    assert [p.round for p in view.points] == [1, 1, 2, 2, 1, 1]
    assert len(dbx.runs) == 8
    with pytest.raises(Conflict):
        w.s.batches.retry_failed("team-a", job.id, ALICE)  # nothing failed


def test_cancel_stops_the_active_points_and_starts_no_more(table_factory: TableFactory) -> None:
    w, dbx = world(table_factory)
    dbx.outcomes.extend([FakeOutcome.HANG] * 6)
    job, _ = create(w, max_parallel=2)
    settle(w, hours=0.5)
    assert len(dbx.runs) == 2
    ended = w.s.batches.cancel("team-a", job.id, ALICE)
    assert ended.state is RunState.CANCELLED
    settle(w)
    assert len(dbx.runs) == 2 and all(r.status.phase.is_terminal for r in dbx.runs.values())
    view = w.s.batches.get("team-a", job.id)
    assert [p.state for p in view.points] == [RunState.CANCELLED] * 6
    assert [p.run is not None for p in view.points] == [True, True, False, False, False, False]
    assert w.s.batches.cancel("team-a", job.id, ALICE).state is RunState.CANCELLED  # again: as it is


def test_each_point_starts_once_when_every_message_is_delivered_twice(table_factory: TableFactory) -> None:
    w, dbx = world(table_factory, failing={"0.1"})
    w.crash = lambda d: d.delivery_count == 1  # the host dies after each handler, once per message
    job, _ = create(w, max_parallel=3)
    settle(w, hours=3)
    view = w.s.batches.get("team-a", job.id)
    assert view.rounds[0].state is RunState.SUCCEEDED_WITH_FAILURES
    assert len(dbx.runs) == 6 and dbx.most_active <= 3
    assert view.rounds[0].batch is not None and sum(view.rounds[0].batch.counts.values()) == 6


def test_a_point_end_the_round_never_heard_is_heard_by_the_watchdog(
    table_factory: TableFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, dbx = world(table_factory)
    job, _ = create(w, max_parallel=2)
    monkeypatch.setattr(batches, "point_ended", lambda ctx, child, now: None)  # a crash after each end
    w.run_until(w.clock.now() + timedelta(hours=1), watchdog=False)
    assert len(dbx.runs) == 2 and all(r.status.phase.is_terminal for r in dbx.runs.values())
    monkeypatch.undo()
    settle(w)
    view = w.s.batches.get("team-a", job.id)
    assert view.rounds[0].state is RunState.SUCCEEDED and len(dbx.runs) == 6


def test_points_wait_for_their_pool_like_any_run(table_factory: TableFactory) -> None:
    w, dbx = world(table_factory)
    w.s.pool_service.put("gpu", PoolSpec(slots=1), ALICE)
    job, _ = create(w, max_parallel=4, pool="gpu", priority="high")
    settle(w)
    assert dbx.most_active == 1
    view = w.s.batches.get("team-a", job.id)
    assert view.rounds[0].state is RunState.SUCCEEDED
    assert {p.run.pool for p in view.points if p.run} == {"gpu"}
    assert {p.run.priority for p in view.points if p.run} == {"high"}


def test_a_batch_with_one_invalid_point_is_refused_whole(table_factory: TableFactory) -> None:
    w, _ = world(table_factory)
    with pytest.raises(InvalidInput) as err:
        create(
            w,
            grid=None,
            runs=[{"lr": "0.1", "depth": "4"}, {"lr": "0.1"}, {"lr": "1", "depth": "2", "x": "y"}],
        )
    assert err.value.errors == {"runs.1.depth": "is required", "runs.2.x": "is not used by the task"}
    assert (
        w.s.job_service.list_jobs(
            "team-a", __import__("shared.services.ports", fromlist=["JobQuery"]).JobQuery()
        ).items
        == []
    )


def test_cancelling_the_batch_job_cancels_its_round(table_factory: TableFactory) -> None:
    w, dbx = world(table_factory)
    dbx.outcomes.extend([FakeOutcome.HANG] * 6)
    job, _ = create(w, max_parallel=2)
    settle(w, hours=0.5)
    w.s.job_service.cancel("team-a", job.id, ALICE)
    for run in dbx.runs.values():
        dbx.finish(run.run_id, Phase.SUCCEEDED)
    settle(w)
    view = w.s.batches.get("team-a", job.id)
    assert view.rounds[0].state is RunState.CANCELLED
    assert len(dbx.runs) == 2


def test_a_crash_before_the_batch_job_is_written_leaves_nothing_running(
    table_factory: TableFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, dbx = world(table_factory)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died")

    monkeypatch.setattr(w.s.job_service, "create", crash)
    with pytest.raises(RuntimeError):
        create(w)
    rounds = [r for r in w.s.tables.runs.query(None) if r.rk.startswith("r~")]
    assert len(rounds) == 1  # the round was written, its launch never sent
    settle(w)  # the watchdog sends it: it finds no job
    shard, rk = rounds[0].pk, rounds[0].rk
    ended = w.s.run_repository.get(shard, "team-a", rk.split("~")[2], rk.split("~")[-1])[0]
    assert ended.state is RunState.SKIPPED and len(dbx.runs) == 0


def test_lost_sends_of_point_launches_are_sent_by_the_watchdog(
    table_factory: TableFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, dbx = world(table_factory)
    real = w.s.run_context.send
    lost: list[str] = []

    def flaky(run: Run, *args: Any, **kwargs: Any) -> Any:
        if run.parent is not None and run.run_key not in lost:
            lost.append(run.run_key)
            raise ExternalError("service bus unreachable", retryable=True)
        return real(run, *args, **kwargs)

    monkeypatch.setattr(w.s.run_context, "send", flaky)
    job, _ = create(w, max_parallel=3)
    settle(w, hours=3)
    view = w.s.batches.get("team-a", job.id)
    assert len(lost) == 6 and view.rounds[0].state is RunState.SUCCEEDED and len(dbx.runs) == 6


def test_a_request_that_lost_the_race_for_its_key_answers_with_the_winner_and_launches_nothing(
    table_factory: TableFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, dbx = world(table_factory)
    real = batches.Batches._earlier
    looks: list[int] = []

    def late(self: batches.Batches, tenant: str, key: str, marker: Any) -> Job | None:
        looks.append(1)  # the first two look before either has written: both go on to create
        return None if len(looks) <= 2 else real(self, tenant, key, marker)

    monkeypatch.setattr(batches.Batches, "_earlier", late)
    spec = BatchSpec.model_validate({"task": TASK, "grid": {"lr": ["1", "2"], "depth": ["3"]}})
    first, replayed_first = w.s.batches.create("team-a", ALICE, spec, key="k")
    second, replayed_second = w.s.batches.create("team-a", ALICE, spec, key="k")
    assert (second.id, replayed_first, replayed_second) == (first.id, False, True)
    settle(w)  # the loser's round was written: the watchdog launches it, and it finds no job
    rounds = [r for r in w.s.tables.runs.query(None) if r.rk.startswith("r~")]
    assert len(rounds) == 2 and len(dbx.runs) == 2
    assert w.s.batches.get("team-a", first.id).rounds[0].state is RunState.SUCCEEDED
