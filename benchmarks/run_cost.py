"""What one occurrence costs, from the tick to its end: storage requests, entities written, queue
sends and Databricks calls, for a short run and a 30-minute run.

    .venv/bin/python -m benchmarks.run_cost [--minutes 1 30] [--pool SLOTS]

`--pool SLOTS`: the job runs in a bounded pool of that many slots, uncontended (it is the only run):
what taking and releasing a slot adds. The process has the pool row from configuring it, as a
warm Functions instance has it from its last take or release.

A simulated clock, in-memory tables (which count one request per call, as the Azure adapter's
pipeline counter does, and the entities each write touches), the Service Bus twin and the fake
Databricks, with the default settings (poll backoff 15 s doubling to 5 min, the watchdog's
grace 2 min and its check of a running run every hour). The watchdog runs every minute as
deployed, so what it spends on a healthy run is counted too (nothing, unless the run outlives
the hourly check).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

from devstack.service_bus_twin import ServiceBusTwin
from shared.adapters.databricks import Phase
from shared.adapters.table import OperationCounter
from shared.bootstrap import Services, Tables, build
from shared.config import Settings
from shared.domain.job import Actor, JobDefinition
from shared.domain.pool import PoolSpec
from shared.services.inbox import Incoming
from tests.fakes.clock import FixedClock
from tests.fakes.databricks import FakeDatabricks, FakeOutcome
from tests.fakes.memory_table import InMemoryTable

T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
FIRE = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
PHASES = ("tick", "launch", "polls", "end", "watchdog")


class Meter:
    def __init__(self, counter: OperationCounter, broker: ServiceBusTwin, fake: FakeDatabricks) -> None:
        self.counter, self.broker, self.fake = counter, broker, fake
        self.requests: Counter[str] = Counter()
        self.entities: Counter[str] = Counter()
        self.sends: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._sent = 0
        self._calls = 0
        # Requests of a pass with nothing to do: a tick (one query per shard), a watchdog pass, and
        # a watchdog pass in a minute that also checks the due rows (every 5th).
        self.fixed = {"tick": 0, "watchdog": 0, "watchdog+due check": 0}

    def spent(self, phase: str, idle: str | None = None) -> None:
        """Count what `phase` spent, less what the same pass costs with nothing to do."""
        requests, entities = self.counter.take()
        self.requests[phase] += requests - (self.fixed[idle] if idle else 0)
        self.entities[phase] += entities
        sent, calls = len(self.broker.sent), sum(self.fake.calls.values())
        self.sends[phase] += sent - self._sent
        self.calls[phase] += calls - self._calls
        self._sent, self._calls = sent, calls


def measure(minutes: float, pool: int | None = None) -> tuple[Meter, int]:
    clock = FixedClock(T0)
    counter = OperationCounter()
    broker = ServiceBusTwin(clock)
    fake = FakeDatabricks(clock)
    fake.outcomes.append(FakeOutcome.HANG)
    tables = Tables(jobs=InMemoryTable("jobs", counter), runs=InMemoryTable("runs", counter))
    services = build(Settings(RUN_SHARDS=16), tables=tables, clock=clock, sender=broker, databricks=fake)
    if pool is not None:
        services.pool_service.put("bench", PoolSpec(slots=pool), Actor(id="bench", name="bench"))
    job = services.job_service.create(
        "team-a",
        Actor(id="bench", name="bench"),
        JobDefinition.model_validate(
            {
                "name": "train",
                "job_type": "model_training",
                "task": {"kind": "databricks_job", "job_id": 1},
                "schedule": {"at": FIRE.isoformat()},
                "pool": "bench" if pool is not None else "default",
            }
        ),
    )
    meter = Meter(counter, broker, fake)
    meter.spent("create")
    services.ticker.tick()  # nothing is due yet: what any tick costs
    meter.fixed["tick"] = meter.counter.take()[0]
    for at in (T0.replace(minute=1), T0):  # nothing is overdue: what any pass costs
        clock.set(at)
        services.watchdog.run_once()
        meter.fixed[_watchdog_pass(at)] = meter.counter.take()[0]
    clock.set(FIRE - timedelta(minutes=1))
    services.ticker.tick()
    meter.spent("tick", idle="tick")
    polls = _deliver(services, broker, fake, clock, FIRE + timedelta(minutes=minutes), meter)
    (run,) = services.run_repository.history(services.due_index.shard_for(job), "team-a", job.id).items
    assert run.state.value == "SUCCEEDED", run
    return meter, polls


def _watchdog_pass(at: datetime) -> str:
    return "watchdog+due check" if at.minute % 5 == 0 else "watchdog"


def _deliver(
    services: Services,
    broker: ServiceBusTwin,
    fake: FakeDatabricks,
    clock: FixedClock,
    end: datetime,
    meter: Meter,
) -> int:
    """Deliver every message at its time and run the watchdog each minute; the run ends at `end`."""
    polls = 0
    next_watchdog = clock.now().replace(second=30, microsecond=0) + timedelta(minutes=1)
    while True:
        due = broker.receive()
        if not due:
            nxt = broker.next_visible_at()
            if nxt is None:
                break
            while next_watchdog <= nxt:
                clock.set(next_watchdog)
                services.watchdog.run_once()
                meter.spent("watchdog", idle=_watchdog_pass(next_watchdog))
                next_watchdog += timedelta(minutes=1)
            clock.set(max(nxt, clock.now()))
            continue
        for delivery in due:
            incoming = Incoming(delivery.message_id, delivery.body, delivery.delivery_count)
            if delivery.queue == "launch":
                services.inbox.launch(incoming)
                meter.spent("launch")
            else:
                dbx = int(delivery.body["databricks_run_id"])
                if clock.now() >= end and not fake.runs[dbx].status.is_terminal:
                    fake.finish(dbx, Phase.SUCCEEDED)
                outcome = services.inbox.poll(incoming)
                polls += 1
                meter.spent("polls" if outcome.action == "polled" else "end")
            broker.complete(delivery)
    return polls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_cost", description=__doc__)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 30.0])
    parser.add_argument("--pool", type=int, default=None, help="run in a bounded pool of this many slots")
    args = parser.parse_args(argv)
    for minutes in args.minutes:
        meter, polls = measure(minutes, args.pool)
        where = f"in a {args.pool}-slot pool (uncontended)" if args.pool else "unbounded pool"
        print(f"\na {minutes:g}-minute Databricks run, {where}, default settings: {polls} polls")
        print(
            "(besides what any pass costs, whatever is due: "
            + ", ".join(f"{name} {n} requests" for name, n in meter.fixed.items())
            + ")"
        )
        print(f"| {'':9} | table requests | entities written | queue sends | Databricks calls |")
        print("| --- | --- | --- | --- | --- |")
        for phase in PHASES:
            print(
                f"| {phase:9} | {meter.requests[phase]} | {meter.entities[phase]} "
                f"| {meter.sends[phase]} | {meter.calls[phase]} |"
            )
        total = {name: sum(c[p] for p in PHASES) for name, c in vars(meter).items() if isinstance(c, Counter)}
        print(
            f"| total     | {total['requests']} | {total['entities']} | {total['sends']} | {total['calls']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
