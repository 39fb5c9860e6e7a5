"""The tick: every scheduled time gets exactly one run and one launch message id, whatever crashes.

Runs on the in-memory tables and on Azurite (the `table_factory` fixture), with a
controlled clock and the Service Bus twin.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.databricks import idempotency_token
from shared.adapters.runs_table import hint_key
from shared.adapters.table import Write
from shared.domain.job import Job, JobStatus
from shared.domain.run import RunState
from shared.services.ports import WatchHint
from shared.services.run_context import Outcome
from tests import world as harness
from tests.conftest import TableFactory
from tests.fakes.clock import FixedClock
from tests.fakes.memory_table import InMemoryTable
from tests.world import ALICE

START = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


class World(harness.World):
    def __init__(self, table_factory: TableFactory, clock: FixedClock) -> None:
        super().__init__(
            table_factory,
            clock=clock,
            settings={"RUN_SHARDS": 4, "TICK_LOOKAHEAD_SECONDS": 75, "TICK_CONCURRENCY": 4},
        )
        self.databricks = self.fake

    def create(self, **overrides: Any) -> Job:
        body: dict[str, Any] = {"task": {"kind": "databricks_job", "job_id": 1}, "name": "job"}
        body.update(overrides)
        return self.job(**body)

    def job_now(self, job: Job) -> Job:
        return self.s.job_service.get("team-a", job.id)

    def rows(self, prefix: str) -> list[str]:
        return [r.rk for r in self.s.tables.runs.query(None) if r.rk.startswith(prefix)]

    def due_rows(self) -> list[str]:
        return self.rows("d~")

    def hints(self) -> list[str]:
        return self.rows("w~")

    def launch_ids(self) -> Counter[str]:
        return Counter(m.message_id for m in self.broker.sent)

    def deliver_all(self) -> list[Outcome]:
        outcomes = []
        for d in self.broker.receive():
            outcomes.append(self.s.inbox.launch(harness.Incoming(d.message_id, d.body, d.delivery_count)))
            self.broker.complete(d)
        return outcomes


@pytest.fixture
def world(table_factory: TableFactory) -> World:
    return World(table_factory, FixedClock(START))


def test_a_due_job_gets_one_run_and_one_message_scheduled_for_its_time(world: World) -> None:
    job = world.create()
    world.clock.set(datetime(2026, 6, 1, 12, 4, 0, tzinfo=UTC))
    report = world.s.ticker.tick()
    assert (report.fired, report.errors) == (1, 0)
    (run,) = world.runs(job)
    fire = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
    assert run.run_key == f"s-{int(fire.timestamp() * 1000)}"
    assert run.state is RunState.SCHEDULED and run.scheduled_for == fire
    (message,) = world.broker.sent
    assert message.message_id == f"{job.id}.{run.run_key}.a1.launch"
    assert message.scheduled_for == fire
    assert message.properties["job_id"] == job.id and message.properties["run_key"] == run.run_key
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", message.properties["traceparent"])
    assert message.body == {
        "run": {"shard": run.shard, "tenant": "team-a", "job_id": job.id, "run_key": run.run_key},
        "attempt": 1,
        "kind": "launch",
    }
    assert world.job_now(job).next_fire_at == fire + timedelta(minutes=5)
    assert world.due_rows() == [
        f"d~{int((fire + timedelta(minutes=5)).timestamp() * 1000):013d}~team-a~{job.id}"
    ]
    # its launch is its intent, and the watchdog looks at it two minutes after its time
    assert run.intent is not None and run.intent.message_id == message.message_id
    assert run.watch_at == fire + timedelta(minutes=2)
    assert world.hints() == [hint_key(WatchHint.of(run))]


def test_a_second_tick_at_the_same_time_does_nothing_new(world: World) -> None:
    job = world.create()
    world.clock.set(datetime(2026, 6, 1, 12, 4, 0, tzinfo=UTC))
    world.s.ticker.tick()
    world.s.ticker.tick()
    assert len(world.runs(job)) == 1 and len(world.broker.sent) == 1


def test_a_job_not_yet_due_is_not_touched(world: World) -> None:
    job = world.create(schedule={"cron": "0 * * * *"})
    report = world.s.ticker.tick()
    assert report.fired == 0 and world.runs(job) == [] and world.job_now(job).next_fire_at == job.next_fire_at


class Crash(Exception):
    pass


CRASH_POINTS = [
    pytest.param("run_repository.record_fires", id="after-the-runs-and-due-row"),
    pytest.param("sender.send", id="after-the-send"),
    pytest.param("job_repository.save_all", id="after-the-job-update"),
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_at_any_step_then_a_rerun_fires_each_time_exactly_once(
    world: World, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    jobs = [world.create(name=f"job-{i}") for i in range(3)]
    world.clock.set(datetime(2026, 6, 1, 12, 4, 0, tzinfo=UTC))
    owner_name, method = point.split(".")
    owner = getattr(world.s, owner_name) if owner_name != "sender" else world.broker
    original = getattr(owner, method)
    crashed = []

    def crash_after(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        crashed.append(method)
        raise Crash(point)

    monkeypatch.setattr(owner, method, crash_after)
    first = world.s.ticker.tick()
    assert crashed and first.errors + first.send_failures >= 1
    monkeypatch.setattr(owner, method, original)
    world.run_until(datetime(2026, 6, 1, 12, 15, tzinfo=UTC))

    fire = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
    for job in jobs:
        runs = world.runs(job)
        assert [r.scheduled_for.minute for r in runs] == [5, 10, 15], point
        assert [r.state for r in runs[:2]] == [RunState.SUCCEEDED] * 2, point
        assert world.job_now(job).next_fire_at == fire + timedelta(minutes=15)
        assert world.fake.starts_for_token(idempotency_token(runs[0].run_key, 1, job.id)) == 1
    # One launch per scheduled time; a launch the crash kept from being sent went with the watchdog's id.
    launches = {re.sub(r"\.r\d+$", "", i) for i in world.launch_ids() if ".launch" in i}
    assert len(launches) == 9
    assert len(world.due_rows()) == 3
    assert len(world.hints()) == 3  # only the 12:15 runs, still waiting for their launch


def test_two_ticks_at_once_record_each_time_once(world: World) -> None:
    jobs = [world.create(name=f"job-{i}") for i in range(10)]
    world.clock.set(datetime(2026, 6, 1, 12, 4, 0, tzinfo=UTC))
    barrier = threading.Barrier(2)

    def tick() -> None:
        barrier.wait()
        world.s.ticker.tick()

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for job in jobs:
        assert len(world.runs(job)) == 1
    assert len(world.launch_ids()) == 10
    assert len(world.due_rows()) == 10


def test_duplicate_deliveries_are_handled_once(world: World) -> None:
    job = world.create()
    world.clock.set(datetime(2026, 6, 1, 12, 4, 0, tzinfo=UTC))
    world.broker.duplicate_next(1)
    world.s.ticker.tick()
    world.clock.set(datetime(2026, 6, 1, 12, 5, 0, tzinfo=UTC))
    actions = sorted(o.action for o in world.deliver_all())
    assert actions == ["launched", "redone"]  # the copy sends the first poll again: same id, dropped
    (run,) = world.runs(job)
    assert run.state is RunState.RUNNING and set(run.transitions) == {"SCHEDULED", "LAUNCHING", "RUNNING"}
    assert world.databricks.calls["launch"] == 1


def test_a_launch_for_an_edited_job_is_superseded(world: World) -> None:
    job = world.create()
    world.clock.set(datetime(2026, 6, 1, 12, 4, 0, tzinfo=UTC))
    world.s.ticker.tick()
    world.s.job_service.update(
        "team-a", job.id, ALICE, job.definition.model_copy(update={"description": "v2"})
    )
    world.clock.set(datetime(2026, 6, 1, 12, 5, 0, tzinfo=UTC))
    (outcome,) = world.deliver_all()
    assert outcome.action == "skipped" and outcome.run.reason == "superseded"


@pytest.mark.parametrize(("change", "reason"), [("pause", "paused"), ("cancel", "job_cancelled")])
def test_a_launch_for_a_paused_or_cancelled_job_is_skipped(world: World, change: str, reason: str) -> None:
    job = world.create()
    world.clock.set(datetime(2026, 6, 1, 12, 4, 0, tzinfo=UTC))
    world.s.ticker.tick()
    getattr(world.s.job_service, change)("team-a", job.id, ALICE)
    world.clock.set(datetime(2026, 6, 1, 12, 5, 0, tzinfo=UTC))
    (outcome,) = world.deliver_all()
    assert outcome.run.state is RunState.SKIPPED and outcome.run.reason == reason


MISFIRE = [
    pytest.param("skip", {}, 12, 0, id="skip-records-every-missed-time"),
    pytest.param("fire_once", {}, 11, 1, id="fire-once-fires-the-latest-missed-time"),
    pytest.param("catch_up", {"catch_up_window": "PT30M"}, 6, 6, id="catch-up-fires-what-is-in-the-window"),
]


@pytest.mark.parametrize(("policy", "extra", "skipped", "caught_up"), MISFIRE)
def test_misfire_policies_after_an_hour_down(
    world: World, policy: str, extra: dict, skipped: int, caught_up: int
) -> None:
    job = world.create(misfire=policy, **extra)  # fires every 5 minutes from 12:05
    world.clock.set(datetime(2026, 6, 1, 13, 4, 0, tzinfo=UTC))  # down from 12:04 to 13:04
    world.s.ticker.tick()
    runs = world.runs(job)
    missed = [r for r in runs if r.scheduled_for < datetime(2026, 6, 1, 13, 3, tzinfo=UTC)]
    assert len(missed) == 12  # 12:05 ... 13:00
    assert sum(r.state is RunState.SKIPPED for r in missed) == skipped
    assert sum(r.state is RunState.SCHEDULED for r in missed) == caught_up
    assert all(r.reason == "missed" for r in missed if r.state is RunState.SKIPPED)
    upcoming = [r for r in runs if r.scheduled_for >= datetime(2026, 6, 1, 13, 3, tzinfo=UTC)]
    assert [(r.scheduled_for.minute, r.state) for r in upcoming] == [(5, RunState.SCHEDULED)]
    if policy == "fire_once":
        (fired,) = [r for r in missed if r.state is RunState.SCHEDULED]
        assert fired.scheduled_for == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)


def test_catch_up_is_capped_and_records_the_rest(world: World) -> None:
    job = world.create(schedule={"cron": "* * * * *"}, misfire="catch_up", catch_up_window="PT3H")
    world.clock.set(START + timedelta(hours=3))
    for _ in range(4):  # a long backlog is worked through a bounded amount per tick
        world.s.ticker.tick()
    runs = world.runs(job)
    missed = [r for r in runs if r.scheduled_for < START + timedelta(hours=3) - timedelta(minutes=1)]
    fired = [r for r in missed if r.state is RunState.SCHEDULED]
    assert len(fired) == 100
    assert {r.reason for r in missed if r.state is RunState.SKIPPED} == {"catch_up_limit"}
    assert min(r.scheduled_for for r in fired) > max(
        r.scheduled_for for r in missed if r.state is RunState.SKIPPED
    )


def test_a_paused_job_creates_no_runs_unless_it_records_skips(world: World) -> None:
    quiet = world.create(name="quiet")
    noted = world.create(name="noted", record_skipped_while_paused=True)
    for job in (quiet, noted):
        world.s.job_service.pause("team-a", job.id, ALICE)
    world.clock.set(datetime(2026, 6, 1, 12, 16, 0, tzinfo=UTC))
    world.s.ticker.tick()
    assert world.runs(quiet) == []
    assert [(r.state, r.reason) for r in world.runs(noted)] == [(RunState.SKIPPED, "paused")] * 3
    assert world.broker.sent == []


def test_a_stale_due_row_of_a_cancelled_job_is_dropped(world: World) -> None:
    job = world.create()
    entry = world.s.due_index.entry(world.job_now(job))
    world.s.job_service.cancel("team-a", job.id, ALICE)
    world.s.due_index.put(entry)  # as if the cancel crashed before deleting it
    world.clock.set(datetime(2026, 6, 1, 12, 4, 0, tzinfo=UTC))
    report = world.s.ticker.tick()
    assert report.stale_rows == 1 and world.due_rows() == [] and world.runs(job) == []


def test_a_schedule_that_ends_completes_the_job(world: World) -> None:
    job = world.create(schedule={"cron": "*/5 * * * *", "end_at": "2026-06-01T12:10:00Z"})
    world.clock.set(datetime(2026, 6, 1, 12, 9, 0, tzinfo=UTC))
    world.s.ticker.tick()
    assert [r.scheduled_for.minute for r in world.runs(job)] == [5, 10]
    fired = world.job_now(job)
    assert (fired.status, fired.next_fire_at) == (JobStatus.ACTIVE, None)  # its runs have not ended
    assert world.due_rows() == []
    world.run_until(datetime(2026, 6, 1, 12, 30, tzinfo=UTC))
    assert all(r.state.is_terminal for r in world.runs(job))
    assert world.job_now(job).status is JobStatus.COMPLETED


def test_a_one_time_job_fires_once_and_completes_when_its_run_ends(world: World) -> None:
    job = world.create(schedule={"at": "2026-06-01T12:01:00Z"})
    world.s.ticker.tick()
    assert world.job_now(job).status is JobStatus.ACTIVE  # recorded, not yet run
    world.run_until(datetime(2026, 6, 1, 12, 20, tzinfo=UTC))
    (run,) = world.runs(job)
    assert run.state is RunState.SUCCEEDED
    done = world.job_now(job)
    assert (done.status, done.last_run_state, done.last_run_at) == (
        JobStatus.COMPLETED,
        RunState.SUCCEEDED,
        run.scheduled_for,
    )


def test_a_schedule_whose_last_time_is_skipped_completes_at_the_tick(world: World) -> None:
    job = world.create(schedule={"at": "2026-06-01T12:01:00Z"}, misfire="skip")
    world.clock.set(datetime(2026, 6, 1, 12, 9, tzinfo=UTC))  # long missed: nothing will run
    world.s.ticker.tick()
    assert [r.state for r in world.runs(job)] == [RunState.SKIPPED]
    assert world.job_now(job).status is JobStatus.COMPLETED


def test_fall_back_night_yields_one_occurrence_for_a_daily_0130_new_york_job(world: World) -> None:
    world.clock.set(datetime(2026, 10, 31, 12, 0, tzinfo=UTC))
    job = world.create(schedule={"cron": "30 1 * * *", "timezone": "America/New_York"})
    moment = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    while moment < datetime(2026, 11, 1, 9, 0, tzinfo=UTC):  # a tick every minute through the night
        world.clock.set(moment)
        world.s.ticker.tick()
        moment += timedelta(minutes=1)
    runs = world.runs(job)
    assert [r.scheduled_for for r in runs] == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]


def test_tick_work_does_not_grow_with_jobs_that_are_not_due() -> None:
    w = World(InMemoryTable, FixedClock(START))
    for i in range(10):
        w.create(name=f"due-{i}")  # every 5 minutes
    tables = [t for t in w.s.tables.all() if isinstance(t, InMemoryTable)]

    def storage_requests(at: datetime) -> tuple[int, int]:
        w.clock.set(at)
        for table in tables:
            table.counter.reset()
        report = w.s.ticker.tick()
        return sum(table.counter.reset() for table in tables), report.fired

    alone = storage_requests(datetime(2026, 6, 1, 12, 4, 0, tzinfo=UTC))
    for i in range(300):
        w.create(name=f"later-{i}", schedule={"cron": "0 0 1 1 *"})
    among_many = storage_requests(datetime(2026, 6, 1, 12, 9, 0, tzinfo=UTC))  # the same 10 due again
    assert alone == among_many and alone[1] == 10


def test_the_watchdog_resends_a_lost_launch(world: World) -> None:
    job = world.create()
    world.clock.set(datetime(2026, 6, 1, 12, 4, 0, tzinfo=UTC))
    world.broker.drop_next(1)
    world.s.ticker.tick()
    world.clock.set(datetime(2026, 6, 1, 12, 6, 0, tzinfo=UTC))
    assert world.deliver_all() == []  # the message was lost
    assert world.s.watchdog.run_once().resent == 0  # not yet two minutes after its time
    world.clock.set(datetime(2026, 6, 1, 12, 7, 30, tzinfo=UTC))
    assert world.s.watchdog.run_once().resent == 1
    (resent,) = [m for m in world.broker.sent if m.message_id.endswith(".r1")]
    assert resent.body["repair"] == 1
    outcomes = world.deliver_all()
    assert [o.action for o in outcomes] == ["launched"]
    run = world.runs(job)[0]
    assert run.state is RunState.RUNNING and run.repairs == 0
    assert world.s.watchdog.run_once().visited == 0  # its hint moved to its next check


def test_the_watchdog_drops_a_hint_whose_run_moved_on(world: World) -> None:
    job = world.create()
    world.clock.set(datetime(2026, 6, 1, 12, 4, 0, tzinfo=UTC))
    world.s.ticker.tick()
    world.clock.set(datetime(2026, 6, 1, 12, 5, 0, tzinfo=UTC))
    world.deliver_all()
    run = world.runs(job)[0]
    stale = WatchHint(run.shard, datetime(2026, 6, 1, 12, 7, tzinfo=UTC), "team-a", job.id, run.run_key)
    world.s.tables.runs.write(run.shard, [Write("upsert", hint_key(stale), {})])  # as if left by a crash
    world.clock.set(datetime(2026, 6, 1, 12, 20, 0, tzinfo=UTC))
    report = world.s.watchdog.run_once()
    assert report.dropped == 1 and hint_key(stale) not in world.hints()
    assert world.runs(job)[0].state is RunState.RUNNING


def test_the_watchdog_restores_a_missing_due_row_from_the_next_fire_index(world: World) -> None:
    jobs = [world.create(name=f"j{i}") for i in range(5)]
    paused = world.create(name="paused")
    world.s.job_service.pause("team-a", paused.id, ALICE)
    victim = world.job_now(jobs[2])
    world.s.due_index.remove(world.s.due_index.entry(victim))  # type: ignore[arg-type]
    world.run_until(datetime(2026, 6, 1, 12, 16, tzinfo=UTC))
    runs = world.runs(jobs[2])
    assert [r.scheduled_for.minute for r in runs][:2] == [5, 10]  # missed at 12:05, caught up, then on time
    assert len(world.due_rows()) == 5  # the paused job has none, and none was made for it
    assert all(len(world.runs(j)) == 3 for j in jobs if j.id != victim.id)


def test_a_storage_error_after_a_fire_is_saved_is_counted_and_repaired(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.domain.errors import ExternalError

    once = world.create(schedule={"at": "2026-06-01T12:01:00Z"})
    cron = world.create(name="every-five")
    original = world.s.due_index.remove
    failed = []

    def remove(entry: Any) -> None:
        if not failed:
            failed.append(entry)
            raise ExternalError("table storage: 503", retryable=True)
        original(entry)

    monkeypatch.setattr(world.s.due_index, "remove", remove)
    world.clock.set(datetime(2026, 6, 1, 12, 4, 0, tzinfo=UTC))
    report = world.s.ticker.tick()  # the one-time job's due row could not be removed: no exception
    assert failed and report.errors == 1
    assert [len(world.runs(job)) for job in (once, cron)] == [1, 1]
    world.run_until(datetime(2026, 6, 1, 12, 20, tzinfo=UTC))
    assert world.job_now(once).status is JobStatus.COMPLETED
    assert len(world.runs(once)) == 1
    assert len(world.due_rows()) == 1  # the cron job's; the one-time job's stale row was dropped
