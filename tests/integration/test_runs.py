"""Launch, poll, time out, retry, cancel, overlap and dead letters, on the fake Databricks and both tables."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.databricks import Phase, idempotency_token
from shared.domain.errors import Conflict
from shared.domain.run import AttemptResult, FailureKind, RunState
from shared.services.inbox import Incoming
from tests.conftest import TableFactory
from tests.fakes.databricks import FakeOutcome
from tests.fakes.memory_table import InMemoryTable
from tests.world import ALICE, World


@pytest.fixture
def w(table_factory: TableFactory) -> World:
    return World(table_factory)


def incoming(d: Any) -> Incoming:
    return Incoming(d.message_id, d.body, d.delivery_count)


def test_a_launch_starts_one_databricks_run_and_schedules_the_first_poll(w: World) -> None:
    job = w.job()
    w.fire()
    (launch,) = w.broker.receive()
    outcome = w.s.inbox.launch(incoming(launch))
    assert outcome.action == "launched"
    run = w.run(job)
    assert run.state is RunState.RUNNING and run.databricks_run_id is not None
    (request,) = w.fake.launches
    assert request.idempotency_token == idempotency_token(run.run_key, 1, job.id)
    assert len(request.idempotency_token) <= 64
    assert w.fake.runs[run.databricks_run_id].parameters == {"day": "2026-06-01"}
    (poll,) = [m for m in w.broker.sent if m.queue == "poll"]
    assert poll.scheduled_for == w.clock.now() + timedelta(seconds=15)
    assert poll.body["databricks_run_id"] == run.databricks_run_id and poll.body["poll"] == 1


def test_a_redelivered_launch_reattaches_and_never_starts_a_second_run(w: World, monkeypatch: Any) -> None:
    job = w.job()
    w.fire()
    (launch,) = w.broker.receive()
    original = w.s.run_repository.save
    calls = {"n": 0}

    def crash_once(before: Any, etag: str, after: Any, tally: Any = None) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("crash after the Databricks call, before the run row is saved")
        return original(before, etag, after, tally)

    monkeypatch.setattr(w.s.run_repository, "save", crash_once)
    with pytest.raises(RuntimeError):
        w.s.inbox.launch(incoming(launch))
    monkeypatch.setattr(w.s.run_repository, "save", original)
    assert w.s.inbox.launch(incoming(launch)).action == "launched"
    assert w.s.inbox.launch(incoming(launch)).action == "redone"  # sends its first poll again, same id
    token = idempotency_token(w.run(job).run_key, 1, job.id)
    assert w.fake.starts_for_token(token) == 1 and w.fake.calls["launch"] == 2


def test_a_poll_that_sees_no_change_touches_no_table(table_factory: TableFactory) -> None:
    w = World(InMemoryTable)
    w.fake.outcomes.append(FakeOutcome.HANG)
    w.job()
    w.fire()
    w.deliver(until=w.clock.now())  # launch
    (poll,) = w.broker.receive() or [None]
    assert poll is None  # not yet due
    w.clock.advance(timedelta(seconds=15))
    (poll,) = w.broker.receive()
    tables = [t for t in w.s.tables.all() if isinstance(t, InMemoryTable)]
    for t in tables:
        t.counter.reset()
    sent_before, calls_before = len(w.broker.sent), sum(w.fake.calls.values())
    assert w.s.inbox.poll(incoming(poll)).action == "polled"
    assert sum(t.counter.reset() for t in tables) == 0
    assert len(w.broker.sent) - sent_before == 1 and sum(w.fake.calls.values()) - calls_before == 1
    nxt = w.broker.sent[-1]
    assert nxt.body["poll"] == 2 and nxt.scheduled_for == w.clock.now() + timedelta(seconds=30)


def test_polling_backs_off_to_a_cap(w: World) -> None:
    w.fake.outcomes.append(FakeOutcome.HANG)
    w.job()
    w.fire()
    w.deliver(until=w.clock.now() + timedelta(minutes=20))
    polls = [m for m in w.broker.sent if m.queue == "poll"]
    gaps = [(b.scheduled_for - a.scheduled_for).total_seconds() for a, b in itertools.pairwise(polls)]
    assert gaps[:5] == [30, 60, 120, 240, 300] and set(gaps[5:]) == {300}


def test_a_successful_run_is_noted_on_the_job(w: World) -> None:
    job = w.job()
    w.fire()
    w.deliver(until=w.clock.now() + timedelta(minutes=3))
    run = w.run(job)
    assert run.state is RunState.SUCCEEDED and run.attempts[0].result is AttemptResult.SUCCEEDED
    assert w.s.job_service.get("team-a", job.id).last_run_state == "SUCCEEDED"


RETRIES = [
    pytest.param({}, FailureKind.USER, 3, RunState.FAILED, id="any-failure-retried-until-attempts-run-out"),
    pytest.param(
        {"retry_on": "transient"},
        FailureKind.USER,
        1,
        RunState.FAILED,
        id="user-failure-not-retried-if-transient-only",
    ),
    pytest.param(
        {"retry_on": "transient"}, FailureKind.TRANSIENT, 3, RunState.FAILED, id="transient-failure-retried"
    ),
]


@pytest.mark.parametrize(("policy", "failure", "attempts", "final"), RETRIES)
def test_failed_attempts_are_retried_per_policy(
    w: World, policy: dict, failure: FailureKind, attempts: int, final: RunState
) -> None:
    for _ in range(3):
        w.fake.outcomes.append(
            FakeOutcome.failed(
                failure, "RUN_EXECUTION_ERROR" if failure is FailureKind.USER else "CLUSTER_ERROR"
            )
        )
    job = w.job(
        retry={
            "max_attempts": 3,
            "initial_delay": "PT1M",
            "backoff_coefficient": 2.0,
            "max_delay": "PT30M",
            **policy,
        }
    )
    sent_at: list[tuple[datetime, Any]] = []
    send = w.broker.send
    w.broker.send = lambda messages: (sent_at.extend((w.clock.now(), m) for m in messages), send(messages))[1]  # type: ignore[method-assign]
    w.fire()
    w.deliver(until=w.clock.now() + timedelta(hours=1))
    run = w.run(job)
    assert run.state is final and len(run.attempts) == attempts
    assert all(a.result is AttemptResult.FAILED and a.failure is failure for a in run.attempts)
    delays = [
        (m.scheduled_for - at).total_seconds()
        for at, m in sent_at
        if m.queue == "launch" and m.body["attempt"] > 1
    ]
    assert delays == [60, 120][: attempts - 1]  # initial_delay x 2^(n-1)


def test_a_flaky_run_succeeds_on_attempt_three(w: World) -> None:
    w.fake.outcomes.extend([FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR")] * 2)
    job = w.job(retry={"max_attempts": 3, "initial_delay": "PT10S"})
    w.fire()
    w.deliver(until=w.clock.now() + timedelta(hours=1))
    run = w.run(job)
    assert (run.state, run.attempt) == (RunState.SUCCEEDED, 3)
    assert len({a.databricks_run_id for a in run.attempts}) == 3


@pytest.mark.parametrize(
    ("retry_on_timeout", "final"), [(False, RunState.TIMED_OUT), (True, RunState.SUCCEEDED)]
)
def test_a_run_past_its_timeout_is_cancelled_in_databricks(
    w: World, retry_on_timeout: bool, final: RunState
) -> None:
    w.fake.outcomes.append(FakeOutcome.HANG)
    job = w.job(
        timeout="PT2M",
        retry={"max_attempts": 2, "initial_delay": "PT10S", "retry_on_timeout": retry_on_timeout},
    )
    w.fire()
    w.deliver(until=w.clock.now() + timedelta(minutes=30))
    run = w.run(job)
    assert run.state is final
    first = run.attempts[0]
    assert first.result is AttemptResult.TIMED_OUT and w.fake.calls["cancel"] == 1
    assert first.ended_at - first.launched_at <= timedelta(minutes=2, seconds=1)


def test_manual_retry_of_a_failed_run_starts_a_new_attempt(w: World) -> None:
    w.fake.outcomes.append(FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR"))
    job = w.job()
    w.fire()
    w.deliver(until=w.clock.now() + timedelta(minutes=5))
    assert w.run(job).state is RunState.FAILED
    retried = w.s.run_commands.retry_latest_failed("team-a", job.id, ALICE)
    assert (retried.state, retried.attempt) == (RunState.RETRY_WAIT, 2)
    w.deliver(until=w.clock.now() + timedelta(minutes=5))
    assert (w.run(job).state, w.run(job).attempt) == (RunState.SUCCEEDED, 2)
    with pytest.raises(Conflict, match="only a FAILED or TIMED_OUT run can be retried"):
        w.s.run_commands.retry("team-a", job.id, w.run(job).run_key, ALICE)
    with pytest.raises(Conflict, match="no failed run"):
        w.s.run_commands.retry_latest_failed("team-a", job.id, ALICE)


def test_cancel_reaches_databricks_and_a_later_poll_changes_nothing(w: World) -> None:
    w.fake.outcomes.append(FakeOutcome.HANG)
    job = w.job()
    w.fire()
    w.deliver(until=w.clock.now())
    run = w.run(job)
    cancelled = w.s.run_commands.cancel("team-a", job.id, run.run_key, "by Alice")
    assert cancelled.state is RunState.CANCELLED and w.fake.calls["cancel"] == 1
    w.deliver(until=w.clock.now() + timedelta(minutes=5))
    assert w.run(job).state is RunState.CANCELLED
    with pytest.raises(Conflict):
        w.s.run_commands.cancel("team-a", job.id, run.run_key, "again")


OVERLAP = [
    pytest.param("skip", [RunState.RUNNING, RunState.SKIPPED], 0, id="skip"),
    pytest.param("allow", [RunState.RUNNING, RunState.RUNNING], 0, id="allow"),
    pytest.param("cancel_previous", [RunState.CANCELLED, RunState.RUNNING], 1, id="cancel-previous"),
    pytest.param("buffer_one", [RunState.RUNNING, RunState.QUEUED], 0, id="buffer-one"),
]


@pytest.mark.parametrize(("policy", "states", "cancels"), OVERLAP)
def test_overlap_policy_with_a_long_running_job(
    w: World, policy: str, states: list[RunState], cancels: int
) -> None:
    w.fake.outcomes.extend([FakeOutcome.HANG, FakeOutcome.HANG])
    job = w.job(schedule={"cron": "* * * * *"}, overlap=policy)
    for minute in (1, 2):
        w.fire(datetime(2026, 6, 1, 12, minute, tzinfo=UTC))
        w.deliver(until=w.clock.now())
    assert [r.state for r in w.runs(job)] == states
    assert w.fake.calls["cancel"] == cancels


def test_buffer_one_starts_the_buffered_run_when_the_active_one_ends(w: World) -> None:
    w.fake.outcomes.extend([FakeOutcome.HANG, FakeOutcome.SUCCESS])
    job = w.job(schedule={"cron": "* * * * *"}, overlap="buffer_one")
    for minute in (1, 2, 3):
        w.fire(datetime(2026, 6, 1, 12, minute, tzinfo=UTC))
        w.deliver(until=w.clock.now())
    first, second, third = w.runs(job)[:3]
    assert (second.state, third.state) == (RunState.QUEUED, RunState.SKIPPED)
    w.fake.finish(first.databricks_run_id, Phase.SUCCEEDED)
    w.deliver(until=w.clock.now() + timedelta(minutes=10))
    assert [r.state for r in w.runs(job)[:3]] == [RunState.SUCCEEDED, RunState.SUCCEEDED, RunState.SKIPPED]


def test_run_now_and_cancelling_the_job_cancels_its_active_runs(w: World) -> None:
    w.fake.outcomes.append(FakeOutcome.HANG)
    job = w.job(schedule={"cron": "0 0 1 1 *"})
    run = w.s.run_commands.run_now("team-a", job.id, ALICE)
    assert run.trigger.value == "manual" and run.run_key.startswith("m-")
    w.deliver(until=w.clock.now())
    assert w.run(job).state is RunState.RUNNING
    cancelled = w.s.job_service.cancel("team-a", job.id, ALICE)
    (stopped,) = w.s.run_commands.cancel_active(cancelled, "job cancelled")
    assert stopped.state is RunState.CANCELLED and w.fake.calls["cancel"] == 1


def test_a_throttled_launch_is_delivered_again_and_then_runs(w: World) -> None:
    w.fake.fail_next_call("launch", status=429, retry_after=2)
    job = w.job()
    w.fire()
    actions = w.deliver(until=w.clock.now() + timedelta(minutes=3))
    assert actions[0] == "deferred" and "launched" in actions
    assert w.run(job).state is RunState.SUCCEEDED


def test_a_dead_lettered_launch_is_repaired_and_shows_in_health(w: World) -> None:
    job = w.job()
    w.fire()
    (launch,) = w.broker.receive()
    for _ in range(10):  # a handler that keeps crashing: Service Bus dead-letters the message
        w.broker.abandon(launch)
        launch = (w.broker.receive() or [launch])[0]
    assert w.broker.dead_letter_count("launch") == 1
    assert w.s.dead_letter_counts() == {"launch": 1, "poll": 0, "notify": 0}
    report = w.s.watchdog.run_once()
    assert report.dead_letters == 1 and report.resent == 1
    assert w.s.dead_letter_counts() == {"launch": 0, "poll": 0, "notify": 0}
    w.deliver(until=w.clock.now() + timedelta(minutes=3))
    run = w.run(job)
    assert run.state is RunState.SUCCEEDED and run.repairs == 0


def test_the_tick_warms_the_databricks_client_before_the_launches_it_sent(w: World) -> None:
    import threading

    assert "databricks" not in w.s.__dict__
    w.s.warm_databricks()
    for thread in threading.enumerate():
        if thread.name == "warm-databricks":
            thread.join(timeout=5)
    assert w.s.__dict__["databricks"] is w.fake


def test_cancel_previous_records_a_previous_run_that_already_succeeded_as_succeeded(w: World) -> None:
    w.fake.outcomes.extend([FakeOutcome.HANG, FakeOutcome.HANG])
    job = w.job(schedule={"cron": "* * * * *"}, overlap="cancel_previous")
    w.fire(datetime(2026, 6, 1, 12, 1, tzinfo=UTC))
    w.deliver(until=w.clock.now())
    first = w.run(job)
    assert first.databricks_run_id is not None
    w.fake.finish(first.databricks_run_id, Phase.SUCCEEDED)  # ten seconds ago, not yet polled
    w.fire(datetime(2026, 6, 1, 12, 2, tzinfo=UTC))
    w.deliver(until=w.clock.now())
    states = [r.state for r in w.runs(job)[:2]]
    assert states == [RunState.SUCCEEDED, RunState.RUNNING]
    assert w.fake.calls["cancel"] == 0


def test_a_timed_out_attempt_stays_timed_out_when_the_write_after_the_cancel_fails(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w.fake.outcomes.extend([FakeOutcome.HANG, FakeOutcome.SUCCESS])
    job = w.job(timeout="PT1M", retry={"max_attempts": 2, "initial_delay": "PT10S", "retry_on_timeout": True})
    original = w.s.run_repository.save
    failed: list[bool] = []

    def save(before: Any, etag: str, after: Any, tally: Any = None) -> str:
        if after.state is RunState.RETRY_WAIT and not failed:
            failed.append(True)
            raise RuntimeError("storage unavailable after the cancel reached Databricks")
        return original(before, etag, after, tally)

    monkeypatch.setattr(w.s.run_repository, "save", save)
    w.fire()
    w.deliver(until=w.clock.now() + timedelta(minutes=10))
    run = w.run(job)
    assert failed and run.state is RunState.SUCCEEDED
    assert [a.result for a in run.attempts] == [AttemptResult.TIMED_OUT, AttemptResult.SUCCEEDED]


def test_a_databricks_state_nobody_mapped_fails_the_run_for_a_person_to_look_at(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.adapters.databricks import UnknownRunState

    w.fake.outcomes.append(FakeOutcome.HANG)
    job = w.job(retry={"max_attempts": 3})

    def unknown(run_id: int) -> Any:
        raise UnknownRunState("unknown Databricks run status 'HIBERNATING'")

    w.fire()
    w.deliver(until=w.clock.now())
    monkeypatch.setattr(w.fake, "get_run", unknown)
    w.deliver(until=w.clock.now() + timedelta(minutes=1))
    run = w.run(job)
    assert run.state is RunState.FAILED and len(run.attempts) == 1  # never retried: it would not help
    assert run.attempts[0].failure is FailureKind.UNKNOWN_STATE and "HIBERNATING" in (run.reason or "")
    assert w.fake.calls["cancel"] == 1  # nothing runs unwatched


def test_a_launch_makes_two_storage_requests_before_calling_databricks() -> None:
    w = World(InMemoryTable)
    counters = [t.counter for t in w.s.tables.all() if isinstance(t, InMemoryTable)]
    job = w.job()
    w.fire()
    (launch,) = w.broker.receive()
    seen: list[int] = []
    original = w.fake.launch

    def launch_and_count(request: Any) -> Any:
        seen.append(sum(c.requests for c in counters))
        return original(request)

    w.fake.launch = launch_and_count  # type: ignore[method-assign]
    w.s.pools.read("default", remembered=True)  # a process reads an unbounded pool once per 30 s
    for c in counters:
        c.reset()
    assert w.s.inbox.launch(incoming(launch)).action == "launched"
    after = sum(c.requests for c in counters)
    assert seen == [2]  # the job's newest runs (this one among them) and the job
    assert after == 3  # and one transaction: RUNNING with its first poll, the hint moved
    assert w.run(job).state is RunState.RUNNING
