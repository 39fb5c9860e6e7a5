"""Benchmarks of the tick (issue 3), each against its own Azurite.

    .venv/bin/python -m benchmarks.tick requests    # storage requests per tick: 1,000 vs 100,000 (100 due)
    .venv/bin/python -m benchmarks.tick throughput  # occurrences fired per minute, 10,000 due at once
    .venv/bin/python -m benchmarks.tick lag         # launch lag on the local stack, 1,000 due in one minute

`requests` seeds the schedules that are not due with exactly what the tick could
read of them (their job row and their due row); their list-index rows are left
out to keep seeding 100,000 schedules within minutes: the tick never reads them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx

from devstack.azurite import Azurite
from devstack.process import local_stack
from shared.adapters.jobs_table import job_props
from shared.adapters.queue import InProcessQueues
from shared.adapters.table import OperationCounter, Write
from shared.bootstrap import azure_tables, build
from shared.config import Settings
from shared.domain.clock import FixedClock
from shared.domain.ids import new_id
from shared.domain.job import Actor, Job, JobDefinition

ROOT = Path(__file__).resolve().parent.parent
ACTOR = Actor(id="bench", name="Benchmark")
T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


def definition(name: str, cron: str) -> JobDefinition:
    return JobDefinition.model_validate(
        {
            "name": name,
            "job_type": "model_training",
            "task": {"kind": "databricks_job", "job_id": 1},
            "schedule": {"cron": cron},
        }
    )


def storage_requests_per_tick(total: int, due: int = 100) -> tuple[int, int, float]:
    with Azurite() as azurite:
        settings = Settings(TABLES_CONNECTION_STRING=azurite.connection_string, DUE_SHARDS=16)
        counter = OperationCounter()
        clock = FixedClock(T0)
        services = build(
            settings, tables=azure_tables(settings, counter), clock=clock, sender=InProcessQueues(clock)
        )
        services.ensure_tables()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda i: services.job_service.create(
                        "team-0", ACTOR, definition(f"due-{i}", "*/5 * * * *")
                    ),
                    range(due),
                )
            )
        later = definition("later", "0 0 1 1 *")
        not_due = [
            Job.new(job_id=new_id(T0), tenant=f"team-{i % 50}", definition=later, actor=ACTOR, now=T0)
            for i in range(total - due)
        ]
        _bulk_insert(services, not_due)
        clock.set(
            T0 + timedelta(minutes=3, seconds=30)
        )  # 12:04:00: the 100 fire at 12:05 are within lookahead
        counter.reset()
        started = time.perf_counter()
        report = services.ticker.tick()
        elapsed = time.perf_counter() - started
        assert report.fired == due, report
        return counter.reset(), report.fired, elapsed


def _bulk_insert(services, jobs: list[Job]) -> None:  # type: ignore[no-untyped-def]
    """Job rows and due rows, a hundred per transaction."""
    by_tenant: dict[str, list[Write]] = {}
    by_shard: dict[str, list[Write]] = {}
    for job in jobs:
        by_tenant.setdefault(job.tenant, []).append(Write("insert", job.id, job_props(job)))
        entry = services.due_index.entry(job)
        by_shard.setdefault(entry.shard, []).append(Write("upsert", entry.rk, {}))
    batches = [
        (services.tables.jobs, pk, w[i : i + 100])
        for pk, w in by_tenant.items()
        for i in range(0, len(w), 100)
    ]
    batches += [
        (services.tables.due, pk, w[i : i + 100]) for pk, w in by_shard.items() for i in range(0, len(w), 100)
    ]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda b: b[0].write(b[1], b[2]), batches))


def requests() -> None:
    print(f"{'schedules':>10} {'due':>5} {'storage requests':>17} {'per fired':>10} {'tick s':>7}")
    results = {}
    for total in (1_000, 100_000):
        n, fired, elapsed = storage_requests_per_tick(total)
        results[total] = n
        print(f"{total:>10} {fired:>5} {n:>17} {n / fired:>10.2f} {elapsed:>7.2f}", flush=True)
    print(f"ratio 100,000 / 1,000: {results[100_000] / results[1_000]:.3f} (target <= 1.2)")


def throughput(count: int) -> None:
    with Azurite() as azurite:
        settings = Settings(TABLES_CONNECTION_STRING=azurite.connection_string, DUE_SHARDS=16)
        clock = FixedClock(T0)
        counter = OperationCounter()
        broker = InProcessQueues(clock)
        services = build(settings, tables=azure_tables(settings, counter), clock=clock, sender=broker)
        services.ensure_tables()
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda i: services.job_service.create(
                        f"team-{i % 20}", ACTOR, definition(f"j{i}", "*/5 * * * *")
                    ),
                    range(count),
                )
            )
        print(f"seeded {count} due schedules in {time.perf_counter() - started:.0f}s", flush=True)
        clock.set(T0 + timedelta(minutes=3, seconds=30))
        counter.reset()
        started = time.perf_counter()
        report = services.ticker.tick()
        elapsed = time.perf_counter() - started
        rate = report.fired / elapsed * 60
        print(f"fired {report.fired} occurrences in {elapsed:.1f}s: {rate:,.0f} per minute")
        print(
            f"concurrency {settings.tick_concurrency}; errors {report.errors}, conflicts {report.conflicts}"
        )
        print(
            f"storage requests: {counter.requests} ({counter.requests / report.fired:.2f} per occurrence); "
            f"launch messages: {len(broker.sent)}"
        )


def lag(count: int, spread_seconds: float) -> None:
    with Azurite() as azurite:
        env = {
            "TABLES_CONNECTION_STRING": azurite.connection_string,
            "AUTH_MODE": "development",
        }
        with local_stack(env) as (_, base):
            client = httpx.Client(base_url=base, timeout=30)
            # Far enough ahead that all jobs exist before the tick's lookahead (75 s) reaches them,
            # as schedules in production do: the tick then has 75 s to record them all.
            first = (datetime.now(UTC) + timedelta(seconds=60 + count * 0.06)).replace(microsecond=0)
            times = [first + timedelta(seconds=spread_seconds * i / count) for i in range(count)]

            def create(i: int) -> str:
                # A notebook task: the emulator simulates it, so no process per run competes for the CPU.
                body = {
                    "name": f"lag-{i}",
                    "job_type": "other",
                    "task": {
                        "kind": "databricks_run",
                        "notebook_path": "/Shared/bench",
                        "existing_cluster_id": "c",
                    },
                    "schedule": {"at": times[i].isoformat()},
                }
                r = client.post("/api/jobs/schedule", json=body)
                r.raise_for_status()
                return str(r.json()["job_id"])

            with ThreadPoolExecutor(8) as pool:
                ids = list(pool.map(create, range(count)))
            print(
                f"created {count} one-time jobs due from {first:%H:%M:%S} over {spread_seconds:.0f}s; "
                f"now {datetime.now(UTC):%H:%M:%S}",
                flush=True,
            )
            time.sleep(max(0.0, (times[-1] - datetime.now(UTC)).total_seconds()) + 5)
            settings = Settings(TABLES_CONNECTION_STRING=azurite.connection_string)
            runs = build(settings).run_store
            deadline = time.monotonic() + 300  # a burst larger than the stack can take at once drains late
            while time.monotonic() < deadline and not all(
                r.transitions.get("LAUNCHING") for j in ids for r in runs.list("dev", j).items[:1]
            ):
                time.sleep(5)
            delivered: list[float] = []
            called: list[float] = []
            for job_id in ids:
                (run,) = runs.list("dev", job_id).items
                start = run.transitions.get("LAUNCHING")
                launched = run.attempts[0].launched_at if run.attempts else None
                delivered.append(
                    (start - run.scheduled_for).total_seconds() * 1000 if start else float("inf")
                )
                called.append(
                    (launched - run.scheduled_for).total_seconds() * 1000 if launched else float("inf")
                )
    for name, lags in (("delivery of the launch message", delivered), ("the Databricks launch call", called)):
        lags.sort()
        p99 = lags[max(0, int(len(lags) * 0.99) - 1)]
        print(
            f"{name} minus scheduled time, {count} jobs: p50 {statistics.median(lags):.0f} ms, "
            f"p99 {p99:.0f} ms, max {lags[-1]:.0f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["requests", "throughput", "lag"])
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--spread", type=float, default=60.0, help="lag: seconds over which the jobs are due")
    args = parser.parse_args()
    if args.what == "requests":
        requests()
    elif args.what == "throughput":
        throughput(args.count or 10_000)
    else:
        lag(args.count or 1_000, args.spread)
    return 0


if __name__ == "__main__":
    sys.exit(main())
