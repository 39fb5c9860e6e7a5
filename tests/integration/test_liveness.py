"""Every run reaches an end: a crash or a lost send at any write -> send or write -> side-effect
boundary ends each run in the state it would have reached without the fault, with exactly one
Databricks run per attempt.

Each case runs a scenario twice on the same kind of tables (in memory and on Azurite): once
without faults (the oracle), once with one fault injected at one boundary; then compares every
run's final state and attempts, and counts Databricks starts per idempotency token.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.databricks import idempotency_token
from shared.adapters.queue import OutgoingMessage
from shared.domain.errors import ExternalError, SchedulerError
from shared.domain.run import FailureKind, Run, RunState
from tests.conftest import TableFactory
from tests.fakes.databricks import FakeDatabricks, FakeOutcome
from tests.world import ALICE, World

FIRST = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
END = FIRST + timedelta(minutes=45)


class Injected(Exception):
    """A crash: the process dies here."""


# --- faults -------------------------------------------------------------------------------------------


@dataclass
class Fault:
    """One fault, armed once: where it strikes, and how."""

    name: str
    arm: Callable[[World], None]
    fired: list[str] = field(default_factory=list)  # a fault that never struck proves nothing


def _send_fault(name: str, match: Callable[[OutgoingMessage], bool], *, after: bool) -> Fault:
    """A send of a matching message fails: before Service Bus took it, or after (a lost ack)."""
    fault = Fault(name, lambda w: None)

    def arm(w: World) -> None:
        original = w.broker.send
        fired: list[bool] = []

        def send(messages: Any) -> None:
            if not fired and any(match(m) for m in messages):
                fired.append(True)
                fault.fired.append(name)
                if after:
                    original(messages)
                raise ExternalError("service bus: injected send failure", retryable=True)
            original(messages)

        w.broker.send = send  # type: ignore[method-assign]

    fault.arm = arm
    return fault


def _save_fault(name: str, state: RunState, *, after: bool) -> Fault:
    """The first write of a run into `state` dies: after it landed, or before it was made."""
    fault = Fault(name, lambda w: None)

    def arm(w: World) -> None:
        table = w.s.run_repository
        original = table.save
        fired: list[bool] = []

        def save(before: Run, etag: str, new: Run, tally: Any = None) -> str:
            if not fired and new.state is state:
                fired.append(True)
                fault.fired.append(name)
                if after:
                    original(before, etag, new, tally)
                raise Injected(f"crash {'after' if after else 'before'} writing {state}")
            return original(before, etag, new, tally)

        table.save = save  # type: ignore[method-assign]

    fault.arm = arm
    return fault


def _host_dies(queue: str) -> Fault:
    """The host dies after a handler on `queue` did its work: the message is never completed."""
    fault = Fault(f"host dies after a {queue} handler", lambda w: None)

    def arm(w: World) -> None:
        fired: list[bool] = []

        def crash(delivery: Any) -> bool:
            if not fired and delivery.queue == queue:
                fired.append(True)
                fault.fired.append(queue)
                return True
            return False

        w.crash = crash

    fault.arm = arm
    return fault


def _databricks_fault(method: str) -> Fault:
    fault = Fault(f"databricks {method} answers 503", lambda w: None)

    def arm(w: World) -> None:
        assert isinstance(w.fake, FakeDatabricks)
        w.fake.fail_next_call(method, status=503, retry_after=1)  # type: ignore[arg-type]
        original = w.fake._call

        def call(m: Any) -> None:
            try:
                original(m)
            except ExternalError:
                fault.fired.append(m)
                raise

        w.fake._call = call  # type: ignore[method-assign]

    fault.arm = arm
    return fault


def _both(repair: Fault, name: str) -> Fault:
    def arm(w: World) -> None:
        repair.arm(w)
        w.broker.fail_sends(1, queue="launch")

    both = Fault(name, arm)
    both.fired = repair.fired
    return both


def _first_poll(m: OutgoingMessage) -> bool:
    return m.queue == "poll" and m.body.get("poll") == 1


def _retry_launch(m: OutgoingMessage) -> bool:
    return m.queue == "launch" and int(m.body.get("attempt", 1)) > 1


def _release(m: OutgoingMessage) -> bool:
    return ".release." in m.message_id


def _tick_launch(m: OutgoingMessage) -> bool:
    return m.queue == "launch" and m.message_id.endswith(".a1.launch")


def _repair(m: OutgoingMessage) -> bool:
    return re.search(r"\.r\d+$", m.message_id) is not None


# --- scenarios ----------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    job: dict[str, Any]
    outcomes: list[FakeOutcome] = field(default_factory=list)
    command: Callable[[World, Any], None] | None = None  # something a person does at FIRST + 1 min
    expected: tuple[RunState, ...] = (RunState.SUCCEEDED,)  # without faults, oldest run first


def _cancel_active(w: World, job: Any) -> None:
    run = w.run(job)
    with contextlib.suppress(Injected, SchedulerError):  # a failed request: what it recorded must finish
        w.s.run_commands.cancel(job.tenant, job.id, run.run_key, "cancelled by Alice")


def _run_now(w: World, job: Any) -> None:
    w.s.run_commands.run_now(job.tenant, job.id, ALICE)


ONCE = {"at": FIRST.isoformat()}
RETRY = {"max_attempts": 2, "initial_delay": "PT20S"}
FAIL = FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR")

SUCCESS = Scenario("success", {"schedule": ONCE})
RETRIED = Scenario("retried", {"schedule": ONCE, "retry": RETRY}, [FAIL, FakeOutcome.SUCCESS])
TIMEOUT = Scenario(
    "timeout",
    {"schedule": ONCE, "timeout": "PT3M", "retry": {**RETRY, "retry_on_timeout": True}},
    [FakeOutcome.HANG, FakeOutcome.SUCCESS],
)
BUFFERED = Scenario(
    "buffered",
    {"schedule": {"cron": "5-7 12 * * *"}, "overlap": "buffer_one", "timeout": "PT90S"},
    [FakeOutcome.HANG, FakeOutcome.SUCCESS, FakeOutcome.SUCCESS],
    expected=(RunState.TIMED_OUT, RunState.SUCCEEDED, RunState.SUCCEEDED),
)
CANCELLED = Scenario(
    "cancelled",
    {"schedule": ONCE},
    [FakeOutcome.HANG],
    command=_cancel_active,
    expected=(RunState.CANCELLED,),
)
CANCEL_PREVIOUS = Scenario(
    "cancel_previous",
    {"schedule": {"cron": "5,7 12 * * *"}, "overlap": "cancel_previous"},
    [FakeOutcome.HANG, FakeOutcome.SUCCESS],
    expected=(RunState.CANCELLED, RunState.SUCCEEDED),
)
RUN_NOW = Scenario("run_now", {"schedule": {"cron": "0 0 1 1 *"}}, command=_run_now)

CASES = [
    # launch: RUNNING is written, then the first poll is sent
    (SUCCESS, _send_fault("first poll send fails", _first_poll, after=False)),
    (SUCCESS, _send_fault("first poll ack lost", _first_poll, after=True)),
    (SUCCESS, _save_fault("crash after RUNNING", RunState.RUNNING, after=True)),
    (SUCCESS, _save_fault("storage fails writing RUNNING", RunState.RUNNING, after=False)),
    (SUCCESS, _host_dies("launch")),
    (SUCCESS, _databricks_fault("launch")),
    # the tick: the run is recorded, then its launch is sent
    (SUCCESS, _send_fault("tick's launch send fails", _tick_launch, after=False)),
    (SUCCESS, _send_fault("tick's launch ack lost", _tick_launch, after=True)),
    # poll
    (
        SUCCESS,
        _send_fault(
            "next poll send fails", lambda m: m.queue == "poll" and m.body.get("poll") == 2, after=False
        ),
    ),
    (SUCCESS, _save_fault("crash after SUCCEEDED", RunState.SUCCEEDED, after=True)),
    (SUCCESS, _host_dies("poll")),
    (SUCCESS, _databricks_fault("get_run")),
    # retry: RETRY_WAIT is written, then the next attempt's launch is sent
    (RETRIED, _send_fault("retry launch send fails", _retry_launch, after=False)),
    (RETRIED, _send_fault("retry launch ack lost", _retry_launch, after=True)),
    (RETRIED, _save_fault("crash after RETRY_WAIT", RunState.RETRY_WAIT, after=True)),
    # timeout: TIMING_OUT is written, Databricks cancelled, then TIMED_OUT / the retry
    (TIMEOUT, _save_fault("crash after TIMING_OUT", RunState.TIMING_OUT, after=True)),
    (TIMEOUT, _save_fault("crash after the timeout's RETRY_WAIT", RunState.RETRY_WAIT, after=True)),
    (
        TIMEOUT,
        _save_fault("storage fails after the cancel, writing the retry", RunState.RETRY_WAIT, after=False),
    ),
    (TIMEOUT, _databricks_fault("cancel")),
    # buffered release: the active run ends, then the waiting run's launch is sent
    (BUFFERED, _send_fault("release send fails", _release, after=False)),
    (BUFFERED, _save_fault("crash after QUEUED", RunState.QUEUED, after=True)),
    (BUFFERED, _save_fault("crash after the releasing end", RunState.TIMED_OUT, after=True)),
    # cancel: CANCELLING is written, Databricks cancelled, then CANCELLED
    (CANCELLED, _save_fault("crash after CANCELLING", RunState.CANCELLING, after=True)),
    (CANCELLED, _save_fault("crash after CANCELLED", RunState.CANCELLED, after=True)),
    (
        CANCELLED,
        _save_fault("storage fails after the cancel, writing CANCELLED", RunState.CANCELLED, after=False),
    ),
    (CANCELLED, _databricks_fault("cancel")),
    (
        CANCEL_PREVIOUS,
        _save_fault("crash after cancelling the previous run", RunState.CANCELLING, after=True),
    ),
    (CANCEL_PREVIOUS, _databricks_fault("cancel")),
    # run now: the run is recorded, then its launch sent; the watchdog's own re-send fails once too
    (RUN_NOW, _send_fault("run-now launch send fails", lambda m: m.queue == "launch", after=False)),
    (RUN_NOW, _both(_send_fault("", _repair, after=False), "run-now and the watchdog's re-send fail")),
]


def play(
    table_factory: TableFactory,
    scenario: Scenario,
    fault: Fault | None,
    world: Callable[[], World] | None = None,
    task: dict[str, Any] | None = None,
) -> World:
    w = world() if world is not None else World(table_factory)
    if isinstance(w.fake, FakeDatabricks):
        w.fake.outcomes.extend(scenario.outcomes)
    w.clock.set(FIRST - timedelta(minutes=3))
    body = {"misfire": "fire_once", **scenario.job, **({"task": task} if task else {})}
    job = w.job(**body)
    w.job_under_test = job  # type: ignore[attr-defined]
    if fault is not None:
        fault.arm(w)
    w.run_until(FIRST + timedelta(minutes=1))
    if scenario.command is not None:
        scenario.command(w, job)
    w.run_until(END)
    return w


def finals(w: World) -> list[tuple[str, RunState, int, list[Any]]]:
    job = w.job_under_test  # type: ignore[attr-defined]
    return [
        (
            r.run_key if r.run_key.startswith("s-") else "manual",
            r.state,
            r.attempt,
            [a.result for a in r.attempts],
        )
        for r in w.runs(job)
        if r.scheduled_for < END - timedelta(minutes=5)
    ]


@pytest.mark.parametrize(
    ("scenario", "fault"), [pytest.param(s, f, id=f"{s.name}: {f.name}") for s, f in CASES]
)
def test_a_fault_at_any_boundary_ends_each_run_as_it_would_have_ended(
    table_factory: TableFactory, scenario: Scenario, fault: Fault
) -> None:
    expected = finals(play(table_factory, scenario, None))
    assert tuple(state for _, state, _, _ in expected) == scenario.expected
    fault.fired.clear()
    w = play(table_factory, scenario, fault)
    assert fault.fired, f"the fault never struck: {fault.name}"
    assert finals(w) == expected
    job = w.job_under_test  # type: ignore[attr-defined]
    runs = w.runs(job)
    assert all(r.state.is_terminal for r in runs if r.scheduled_for < END - timedelta(minutes=5))
    assert isinstance(w.fake, FakeDatabricks)
    launched = 0
    for run in runs:
        for attempt in run.attempts:
            if attempt.databricks_run_id is not None:
                launched += 1
                assert (
                    w.fake.starts_for_token(idempotency_token(run.run_key, attempt.number, run.job_id)) == 1
                )
    assert len(w.fake.runs) == launched  # no Databricks run that no attempt records
    hints = [r for r in w.s.tables.runs.query(None) if r.rk.startswith("w~")]
    assert len(hints) == sum(not r.state.is_terminal for r in runs)  # an ended run leaves no hint
