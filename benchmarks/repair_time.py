"""How long a lost message stays lost, with the default settings: `python -m benchmarks.repair_time`.

Each case loses one message and measures, in simulated time with the deployed timer schedules
(the tick at :00 of every minute, the watchdog at :30; WATCHDOG_GRACE_SECONDS 120), how long
after the message was due the run moved on anyway. Each case repeats with the due time at 12
offsets across the minute, since the watchdog's phase decides the wait.

- lost launch: the tick's launch message vanished after Service Bus took it;
- lost run-now: the send after the run-now request recorded the run failed;
- lost retry: the launch of attempt 2, sent after attempt 1 failed, vanished;
- lost release: the launch of a buffered run, sent when the active run ended, vanished;
- dead-lettered poll: a poll failed ten deliveries in a row; the watchdog drains the dead-letter
  queue and starts a new poll chain (time from the dead letter to the next poll).
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.databricks import Phase
from shared.domain.run import FailureKind, RunState
from tests.fakes.databricks import FakeOutcome
from tests.fakes.memory_table import InMemoryTable
from tests.world import ALICE, World

BASE = datetime(2026, 6, 1, 12, 10, tzinfo=UTC)
OFFSETS = [timedelta(seconds=5 * i) for i in range(12)]


def _world(start: datetime) -> World:
    w = World(InMemoryTable)
    w.clock.set(start - timedelta(minutes=4))
    return w


def lost_launch(due: datetime) -> float:
    w = _world(due)
    job = w.job(schedule={"at": due.isoformat()})
    w.broker.drop_next(1)
    w.run_until(due + timedelta(minutes=15))
    return (w.run(job).transitions["LAUNCHING"] - due).total_seconds()


def lost_run_now(due: datetime) -> float:
    w = _world(due)
    job = w.job(schedule={"cron": "0 0 1 1 *"})
    w.run_until(due)
    w.broker.fail_sends(1)
    w.s.run_commands.run_now("team-a", job.id, ALICE)
    w.run_until(due + timedelta(minutes=15))
    return (w.run(job).transitions["LAUNCHING"] - due).total_seconds()


def lost_retry(due: datetime) -> float:
    w = _world(due)
    w.fake.outcomes.append(FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR"))  # type: ignore[union-attr]
    job = w.job(schedule={"at": due.isoformat()}, retry={"max_attempts": 2, "initial_delay": "PT10S"})
    original = w.broker.send
    dropped: list[datetime] = []

    def send(messages: Any) -> None:
        if not dropped and any(int(m.body.get("attempt", 1)) == 2 for m in messages):
            dropped.append(messages[0].scheduled_for)
            w.broker.drop_next(len(messages))
        original(messages)

    w.broker.send = send  # type: ignore[method-assign]
    w.run_until(due + timedelta(minutes=20))
    run = w.run(job)
    assert run.state is RunState.SUCCEEDED and run.attempt == 2, run
    return (run.transitions["LAUNCHING"] - dropped[0]).total_seconds()


def lost_release(due: datetime) -> float:
    w = _world(due)
    w.fake.outcomes.extend([FakeOutcome.HANG, FakeOutcome.SUCCESS])  # type: ignore[union-attr]
    job = w.job(schedule={"cron": f"{due.minute},{due.minute + 1} 12 * * *"}, overlap="buffer_one")
    w.run_until(due + timedelta(minutes=2))
    first, second = w.runs(job)
    assert second.state is RunState.QUEUED, second
    original = w.broker.send
    released: list[datetime] = []

    def send(messages: Any) -> None:
        if not released and any(".release." in m.message_id for m in messages):
            released.append(w.clock.now())
            w.broker.drop_next(len(messages))
        original(messages)

    w.broker.send = send  # type: ignore[method-assign]
    w.fake.finish(first.databricks_run_id, Phase.SUCCEEDED)  # type: ignore[union-attr, arg-type]
    w.run_until(due + timedelta(minutes=40))
    second = w.read(second)
    return (second.transitions["LAUNCHING"] - released[0]).total_seconds()


def dead_lettered_poll(due: datetime) -> float:
    w = _world(due)
    w.fake.outcomes.append(FakeOutcome.HANG)  # type: ignore[union-attr]
    job = w.job(schedule={"at": due.isoformat()})
    w.run_until(due + timedelta(seconds=1))
    poller = w.s.poller
    original = poller.poll
    failures: list[datetime] = []
    handled: list[datetime] = []

    def poll(ref: Any) -> Any:
        if len(failures) < 10:
            failures.append(w.clock.now())
            raise RuntimeError("a poll handler that keeps crashing")
        handled.append(w.clock.now())
        return original(ref)

    poller.poll = poll  # type: ignore[method-assign]
    w.run_until(due + timedelta(minutes=10))
    assert w.run(job).state is RunState.RUNNING and handled
    return (handled[0] - failures[-1]).total_seconds()


CASES: dict[str, Callable[[datetime], float]] = {
    "lost launch": lost_launch,
    "lost run-now": lost_run_now,
    "lost retry": lost_retry,
    "lost release": lost_release,
    "dead-lettered poll": dead_lettered_poll,
}


def main() -> int:
    import logging

    logging.basicConfig(level=logging.CRITICAL)
    print("| lost message | min s | median s | max s |")
    print("| --- | --- | --- | --- |")
    for name, case in CASES.items():
        waits = [case(BASE + offset) for offset in OFFSETS]
        print(f"| {name} | {min(waits):.0f} | {statistics.median(waits):.0f} | {max(waits):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
