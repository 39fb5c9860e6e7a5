"""What one run costs: table operations, queue sends and Databricks calls for a 30-minute Databricks run.

    .venv/bin/python -m benchmarks.run_cost [--minutes 30]

A simulated clock, the in-memory tables (which count one operation per request, as the
Azure adapter's pipeline counter does), the in-process queues and the fake Databricks;
the default poll backoff (15 s doubling to 5 min). Counts are split by who spends them:
the tick that records the occurrence, the launch, and the polls.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

from shared.adapters.databricks import Phase
from shared.adapters.databricks_fake import FakeDatabricks, FakeOutcome
from shared.adapters.queue import InProcessQueues
from shared.adapters.table import OperationCounter
from shared.bootstrap import build, memory_tables
from shared.config import Settings
from shared.domain.clock import FixedClock
from shared.domain.job import Actor, JobDefinition
from shared.services.messages import PollRef, RunRef

T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args()

    clock = FixedClock(T0)
    counter = OperationCounter()
    settings = Settings(DUE_SHARDS=16)
    broker = InProcessQueues(clock)
    fake = FakeDatabricks(clock)
    fake.outcomes.append(FakeOutcome.HANG)
    services = build(
        settings, tables=memory_tables(settings, counter), clock=clock, sender=broker, databricks=fake
    )
    job = services.jobs.create(
        "team-a",
        Actor(id="bench", name="bench"),
        JobDefinition.model_validate(
            {
                "name": "train",
                "job_type": "model_training",
                "task": {"kind": "databricks_job", "job_id": 1},
                "schedule": {"at": "2026-06-01T12:05:00Z"},
            }
        ),
    )
    tables: Counter[str] = Counter()
    sends: Counter[str] = Counter()

    def spent(phase: str) -> None:
        tables[phase] += counter.reset()
        sends[phase] += len(broker.sent) - sum(sends.values())

    counter.reset()
    clock.set(datetime(2026, 6, 1, 12, 4, tzinfo=UTC))
    services.ticker.tick()
    spent("tick")
    clock.set(datetime(2026, 6, 1, 12, 5, tzinfo=UTC))
    polls = _deliver_until_done(
        services, broker, fake, clock, clock.now() + timedelta(minutes=args.minutes), spent
    )
    run = services.run_store.list("team-a", job.id).items[0]
    assert run.state.value == "SUCCEEDED", run
    print(f"a {args.minutes:.0f}-minute Databricks run, default poll backoff: {polls} polls")
    print(f"{'':8} {'table ops':>10} {'queue sends':>12}")
    for phase in ("tick", "launch", "polls"):
        print(f"{phase:8} {tables[phase]:>10} {sends[phase]:>12}")
    print(f"{'total':8} {sum(tables.values()):>10} {sum(sends.values()):>12}")
    print(f"Databricks calls: {dict(fake.calls)} (total {sum(fake.calls.values())})")
    return 0


def _deliver_until_done(services, broker, fake, clock, end, spent) -> int:  # type: ignore[no-untyped-def]
    """Deliver every message at its time; the Databricks run ends at `end`. Returns the number of polls."""
    polls = 0
    while True:
        due = broker.due_deliveries()
        if not due:
            nxt = broker.next_due_at()
            if nxt is None:
                break
            clock.set(nxt)
            continue
        for delivery in due:
            if delivery.queue == "launch":
                services.runs.launch(RunRef.parse(delivery.body))
                spent("launch")
            else:
                ref = PollRef.parse(delivery.body)
                if clock.now() >= end and not fake.runs[ref.databricks_run_id].status.is_terminal:
                    fake.finish(ref.databricks_run_id, Phase.SUCCEEDED)
                services.runs.poll(ref)
                polls += 1
                spent("polls")
    return polls


if __name__ == "__main__":
    sys.exit(main())
