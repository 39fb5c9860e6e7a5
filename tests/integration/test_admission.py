"""Pools: never over capacity, never a leaked slot, never a lost waiting run (issue 11).

Each test runs on the in-memory table and on Azurite (the same adapter code). Faults are injected
where the issue names them: many launch handlers at once with duplicate deliveries, a crash
between taking a slot and calling Databricks, a lost admission message, a release that never
happened. Capacity is checked by reading the pool after every delivery, and at Databricks by
counting the runs started per idempotency token.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.databricks import LaunchedRun, LaunchRequest
from shared.domain.errors import ExternalError
from shared.domain.job import Actor, Job
from shared.domain.pool import PoolSpec
from shared.domain.run import Priority, Run, RunState
from shared.services import admission
from shared.services.messages import RunRef
from tests.conftest import TableFactory
from tests.fakes.databricks import FakeOutcome
from tests.world import ALICE, World

FIRST = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
BOB = Actor(id="bob", name="Bob")


class Injected(Exception):
    """A crash: the process dies here."""


def world(table_factory: TableFactory, slots: int | None = 1, **spec: Any) -> World:
    w = World(table_factory)
    w.s.ensure_tables()
    w.s.pool_service.put("gpu", PoolSpec(slots=slots, **spec), ALICE)
    return w


def pooled_job(w: World, name: str, tenant: str = "team-a", **fields: Any) -> Job:
    body = {"name": name, "pool": "gpu", "schedule": {"at": "2026-06-01T12:05:00Z"}, **fields}
    return w.job(tenant, **body)


def watch_capacity(w: World, slots: int, tenant_limit: int | None = None) -> list[int]:
    """After every delivery, read the pool: never more slots held than it has (nor per tenant)."""
    seen: list[int] = []
    handle = w.handle

    def checked(delivery: Any) -> str:
        action = handle(delivery)
        s = w.s.pools.read("gpu")
        used = sum(lease.slots for lease in s.leases.values())
        assert used <= slots, f"{used} slots held in a pool of {slots}"
        if tenant_limit is not None:
            for tenant in {lease.tenant for lease in s.leases.values()}:
                held = sum(x.slots for x in s.leases.values() if x.tenant == tenant)
                assert held <= tenant_limit, f"tenant {tenant} holds {held} > {tenant_limit}"
        seen.append(used)
        return action

    w.handle = checked  # type: ignore[method-assign]
    return seen


def settled(w: World) -> None:
    """Nothing held, nothing waiting: every slot was released exactly once."""
    s = w.s.pools.read("gpu", entries=True)
    assert dict(s.leases) == {} and s.waiting == 0 and list(s.entries or []) == []


def started_per_token(w: World) -> dict[str, int]:
    return {req.idempotency_token: w.fake.starts_for_token(req.idempotency_token) for req in w.fake.launches}


# -- admission order and the run's place ----------------------------------------------------------------


def test_a_full_pool_queues_runs_and_admits_them_by_its_policy(table_factory: TableFactory) -> None:
    w = world(table_factory, slots=1)
    w.fake.outcomes.append(FakeOutcome.HANG)  # the first run holds the slot until cancelled
    first = pooled_job(w, "first")
    w.fire(FIRST)
    w.deliver(until=FIRST)
    low = pooled_job(w, "low", priority="low", schedule={"at": "2026-06-01T12:06:00Z"})
    urgent = pooled_job(w, "urgent", priority="urgent", schedule={"at": "2026-06-01T12:07:00Z"})
    w.run_until(FIRST + timedelta(minutes=3))

    assert w.run(first).state is RunState.RUNNING
    for job, position in ((urgent, 1), (low, 2)):
        run = w.run(job)
        assert run.state is RunState.QUEUED and run.pool == "gpu"
        place = w.s.pool_service.place_of(run)
        assert place is not None and place[0] == position
        assert place[1] is not None and place[1] >= w.clock.now()

    w.s.run_commands.cancel(first.tenant, first.id, w.run(first).run_key, "make room")
    w.run_until(FIRST + timedelta(minutes=30))
    urgent_run, low_run = w.run(urgent), w.run(low)
    assert urgent_run.state is low_run.state is RunState.SUCCEEDED
    assert urgent_run.transitions["RUNNING"] < low_run.transitions["RUNNING"]  # urgent went first
    settled(w)


def test_an_unbounded_pool_admits_nothing_and_costs_nothing(table_factory: TableFactory) -> None:
    w = World(table_factory)
    w.s.ensure_tables()
    job = w.job(schedule={"at": "2026-06-01T12:05:00Z"})  # the default pool: unbounded until bounded
    w.run_until(FIRST + timedelta(minutes=10))
    run = w.run(job)
    assert run.state is RunState.SUCCEEDED and run.pool is None
    assert w.s.pools.read("default").etag == ""  # no pool row was ever written


# -- never over capacity -----------------------------------------------------------------------------


def test_sixteen_concurrent_launch_handlers_with_duplicates_never_exceed_the_pool(
    table_factory: TableFactory,
) -> None:
    """16 runs of two tenants, each launch delivered twice, all handlers at once, into 3 slots with
    a tenant limit of 2: at most 3 runs start in Databricks, at most 2 of one tenant; the rest
    queue; then every run gets through and every slot comes back."""
    w = world(table_factory, slots=3, tenant_limit=2)
    jobs = [pooled_job(w, f"j{i}", tenant="team-a" if i % 2 else "team-b") for i in range(16)]
    for _ in jobs:
        w.fake.outcomes.append(FakeOutcome.HANG)
    w.fire(FIRST)
    runs = [w.run(job) for job in jobs]
    refs = [RunRef.of(run, 1) for run in runs] * 2
    barrier = threading.Barrier(len(refs))
    errors: list[BaseException] = []

    def launch(ref: RunRef) -> None:
        barrier.wait()
        try:
            w.s.launcher.launch(ref, redelivered=True)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=launch, args=(ref,)) for ref in refs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    started = started_per_token(w)
    assert len(started) == 3 and set(started.values()) == {1}
    held = w.s.pools.read("gpu", entries=True)
    assert len(held.leases) == 3 and held.waiting == 13
    assert max(sum(1 for x in held.leases.values() if x.tenant == t) for t in ("team-a", "team-b")) == 2
    states = [w.read(run).state for run in runs]
    assert states.count(RunState.RUNNING) == 3 and states.count(RunState.QUEUED) == 13

    watch_capacity(w, 3, tenant_limit=2)
    for _ in range(16):  # end the running runs one by one: each end admits the next
        running = [r for r in (w.read(x) for x in runs) if r.state is RunState.RUNNING]
        if not running:
            break
        w.s.run_commands.cancel(running[0].tenant, running[0].job_id, running[0].run_key, "next")
        w.deliver(until=w.clock.now() + timedelta(seconds=1))
    w.run_until(w.clock.now() + timedelta(minutes=5))
    assert all(w.read(run).state.is_terminal for run in runs)
    assert set(started_per_token(w).values()) == {1} and len(started_per_token(w)) == 16
    settled(w)


def test_a_crash_between_taking_a_slot_and_calling_databricks_loses_nothing(
    table_factory: TableFactory,
) -> None:
    w = world(table_factory, slots=1)
    job = pooled_job(w, "crashy")
    second = pooled_job(w, "second")
    original = w.fake.launch
    crashed: list[str] = []

    def launch(request: LaunchRequest) -> LaunchedRun:
        if not crashed:
            crashed.append(request.idempotency_token)
            raise Injected("the host died after the slot was taken")
        return original(request)

    w.fake.launch = launch  # type: ignore[method-assign]
    watch_capacity(w, 1)
    w.run_until(FIRST + timedelta(minutes=20))
    assert crashed  # the fault struck
    assert w.run(job).state is w.run(second).state is RunState.SUCCEEDED
    assert set(started_per_token(w).values()) == {1}
    settled(w)


# -- never a leaked slot ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("success", RunState.SUCCEEDED),
        ("failure", RunState.FAILED),
        ("timeout", RunState.TIMED_OUT),
        ("cancel", RunState.CANCELLED),
        ("job_cancelled_while_queued", RunState.CANCELLED),
        ("skipped_paused_while_queued", RunState.SKIPPED),
    ],
)
def test_every_end_releases_its_slot_or_place_once(
    table_factory: TableFactory, case: str, expected: RunState
) -> None:
    from shared.domain.run import FailureKind

    w = world(table_factory, slots=1)
    seen = watch_capacity(w, 1)
    fields: dict[str, Any] = {"timeout": "PT1M"} if case == "timeout" else {}
    w.fake.outcomes.append(FakeOutcome.HANG)  # the blocker holds the slot
    w.fake.outcomes.append(
        {
            "failure": FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR"),
            "timeout": FakeOutcome.HANG,
        }.get(case, FakeOutcome.SUCCESS)
    )
    blocker = pooled_job(w, "blocker")
    w.fire(FIRST)
    w.deliver(until=FIRST)
    job = pooled_job(w, "subject", **{"schedule": {"at": "2026-06-01T12:06:00Z"}, **fields})
    w.run_until(FIRST + timedelta(minutes=1, seconds=5))
    assert w.run(job).state is RunState.QUEUED
    if case == "job_cancelled_while_queued":
        w.s.job_service.cancel(job.tenant, job.id, ALICE)
        w.s.run_commands.cancel_active(w.s.job_service.get(job.tenant, job.id), "job cancelled")
    if case == "skipped_paused_while_queued":
        w.s.job_service.pause(job.tenant, job.id, ALICE)
    blocked = w.run(blocker)
    w.s.run_commands.cancel(blocked.tenant, blocked.job_id, blocked.run_key, "make room")
    if case == "cancel":
        w.deliver(until=w.clock.now() + timedelta(seconds=30))
        subject = w.run(job)
        w.s.run_commands.cancel(subject.tenant, subject.job_id, subject.run_key, "by hand")
    w.run_until(FIRST + timedelta(minutes=40))
    assert w.run(job).state is expected
    assert max(seen) <= 1
    settled(w)


def test_a_lost_admission_message_is_sent_again_by_the_watchdog(table_factory: TableFactory) -> None:
    w = world(table_factory, slots=1)
    first, second = pooled_job(w, "first"), pooled_job(w, "second")
    original = w.broker.send
    dropped: list[str] = []

    def send(messages: Any) -> None:
        kept = [m for m in messages if ".admit" not in m.message_id]
        dropped.extend(m.message_id for m in messages if ".admit" in m.message_id)
        if kept:
            original(kept)

    w.broker.send = send  # type: ignore[method-assign]
    w.run_until(FIRST + timedelta(minutes=30))
    assert dropped  # the admission was lost
    assert w.run(first).state is w.run(second).state is RunState.SUCCEEDED
    settled(w)


def test_a_release_that_never_happened_is_repaired_by_the_watchdog(
    table_factory: TableFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after writing the end and before freeing the slot: the watchdog's sweep
    frees the lease of the ended run (at its check time) and the waiting run starts."""
    w = world(table_factory, slots=1)
    first, second = pooled_job(w, "first"), pooled_job(w, "second")
    real = admission.release
    skipped: list[str] = []

    def release(ctx: Any, run: Run, now: datetime) -> Any:
        if not skipped:
            skipped.append(run.id)
            raise Injected("died before the release")
        return real(ctx, run, now)

    monkeypatch.setattr(admission, "release", release)
    w.run_until(FIRST + timedelta(hours=2))
    assert skipped
    assert w.run(first).state is w.run(second).state is RunState.SUCCEEDED
    settled(w)


def test_a_queued_run_is_admitted_even_if_every_release_is_lost(
    table_factory: TableFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Releases that admit nobody (their dispatch lost): the watchdog admits from the queue."""
    w = world(table_factory, slots=1)
    first, second = pooled_job(w, "first"), pooled_job(w, "second")
    real = admission.settle_pool

    def lossy(ctx: Any, name: str, now: datetime, release: str | None = None) -> Any:
        if release is not None:  # free the slot, admit nobody (as if the admitting write died)
            s = ctx.pools.read(name, entries=True)
            if release in s.leases:
                ctx.pools.commit(s, leases={k: v for k, v in s.leases.items() if k != release})
            return []
        return real(ctx, name, now)

    monkeypatch.setattr(admission, "settle_pool", lossy)
    w.run_until(FIRST + timedelta(minutes=40))
    assert w.run(first).state is w.run(second).state is RunState.SUCCEEDED


# -- priorities and deadlines --------------------------------------------------------------------------


def test_changing_a_waiting_runs_priority_moves_it_and_is_audited(table_factory: TableFactory) -> None:
    w = world(table_factory, slots=1, policy="priority")
    w.fake.outcomes.append(FakeOutcome.HANG)
    blocker = pooled_job(w, "blocker")
    w.fire(FIRST)
    w.deliver(until=FIRST)
    a = pooled_job(w, "a", schedule={"at": "2026-06-01T12:06:00Z"})
    b = pooled_job(w, "b", schedule={"at": "2026-06-01T12:07:00Z"})
    w.run_until(FIRST + timedelta(minutes=3))
    run_b = w.run(b)
    assert w.s.pool_service.place_of(run_b) is not None
    assert w.s.pool_service.place_of(run_b)[0] == 2  # type: ignore[index]

    moved = w.s.pool_service.set_priority(b, run_b, Priority.URGENT, "feeds the 6 am report", BOB)
    assert moved.priority is Priority.URGENT
    assert w.s.pool_service.place_of(moved)[0] == 1  # type: ignore[index]
    trail = w.s.job_service.audit(b.tenant, b.id, 10, None).items
    assert trail[0].action == "run_priority" and trail[0].actor == BOB
    changes = {c.field: c.after for c in trail[0].changes}
    assert changes[f"runs.{run_b.run_key}.reason"] == "feeds the 6 am report"

    running = w.run(blocker)
    w.s.run_commands.cancel(running.tenant, running.job_id, running.run_key, "make room")
    w.run_until(FIRST + timedelta(minutes=30))
    assert w.run(b).transitions["RUNNING"] < w.run(a).transitions["RUNNING"]

    from shared.domain.errors import Conflict

    with pytest.raises(Conflict):
        w.s.pool_service.set_priority(a, w.run(a), Priority.LOW, "too late", BOB)


def test_a_run_unfinished_at_its_deadline_is_marked_and_counted(table_factory: TableFactory) -> None:
    w = world(table_factory, slots=1)
    w.fake.outcomes.append(FakeOutcome.HANG)
    hog = pooled_job(w, "hog")
    w.fire(FIRST)
    w.deliver(until=FIRST)
    late = pooled_job(w, "late", deadline="PT5M", schedule={"at": "2026-06-01T12:06:00Z"})
    on_time = pooled_job(w, "on-time", deadline="PT2H", schedule={"at": "2026-06-01T12:06:00Z"})
    w.run_until(FIRST + timedelta(minutes=13))
    queued = w.run(late)
    assert queued.state is RunState.QUEUED
    assert queued.deadline_at == datetime(2026, 6, 1, 12, 11, tzinfo=UTC)
    marked = queued.deadline_missed_at
    assert marked is not None and marked <= queued.deadline_at + timedelta(minutes=1, seconds=30)
    assert w.run(on_time).deadline_missed_at is None
    hogging = w.run(hog)
    w.s.run_commands.cancel(hogging.tenant, hogging.job_id, hogging.run_key, "make room")
    w.run_until(FIRST + timedelta(minutes=40))
    assert w.run(on_time).state is RunState.SUCCEEDED and w.run(on_time).deadline_missed_at is None


def test_the_pool_stays_consistent_when_the_send_after_an_admission_fails(
    table_factory: TableFactory,
) -> None:
    """Service Bus refuses the admitted launch: the handler that freed the slot still succeeds,
    and the run starts by the watchdog."""
    w = world(table_factory, slots=1)
    first, second = pooled_job(w, "first"), pooled_job(w, "second")
    original = w.broker.send
    failed: list[str] = []

    def send(messages: Any) -> None:
        if not failed and any(".admit" in m.message_id for m in messages):
            failed.append("admit")
            raise ExternalError("service bus: injected", retryable=True)
        original(messages)

    w.broker.send = send  # type: ignore[method-assign]
    w.run_until(FIRST + timedelta(minutes=30))
    assert failed and w.run(first).state is w.run(second).state is RunState.SUCCEEDED
    settled(w)


def test_a_running_run_is_marked_at_its_deadline_and_an_unbounded_one_too(
    table_factory: TableFactory,
) -> None:
    """Deadlines need no pool: a run still running at its deadline is marked by the watchdog's
    visit at that time; one that ends in time never is."""
    w = World(table_factory)
    w.s.ensure_tables()
    w.fake.outcomes.append(FakeOutcome.HANG)
    slow = w.job(name="slow", deadline="PT3M", schedule={"at": "2026-06-01T12:05:00Z"})
    quick = w.job(name="quick", deadline="PT30M", schedule={"at": "2026-06-01T12:06:00Z"})
    w.run_until(FIRST + timedelta(minutes=6))
    late, done = w.run(slow), w.run(quick)
    assert late.state is RunState.RUNNING and late.pool is None
    assert late.deadline_at == FIRST + timedelta(minutes=3)
    assert late.deadline_missed_at is not None
    assert late.deadline_missed_at - late.deadline_at <= timedelta(minutes=1)
    assert done.state is RunState.SUCCEEDED and done.deadline_missed_at is None
