"""Benchmarks of the tick and the launch path, each against its own Azurite.

    .venv/bin/python -m benchmarks.tick requests    # storage requests per tick: 1,000 vs 100,000 (100 due)
    .venv/bin/python -m benchmarks.tick throughput  # occurrences fired per minute, 10,000 due at once
    .venv/bin/python -m benchmarks.tick lag         # launch lag at Databricks, 1,000 due over a minute

`requests` seeds the schedules that are not due with exactly what the tick could read of them
(their job row and their due row); their list-index rows are left out to keep seeding 100,000
schedules within minutes: the tick never reads them.

`lag` runs the local stack (`python -m devstack`) against its own Azurite and a Databricks
emulator in this process, and measures, for each job, when its run-now / runs/submit request
arrived at the emulator minus its scheduled time; and the CPU seconds the app and Azurite spent
from the first fire to the last launch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx

from devstack.azurite import Azurite
from devstack.databricks_emulator import Emulator
from devstack.process import local_stack
from devstack.service_bus_twin import ServiceBusTwin
from shared.adapters.jobs_table import job_props
from shared.adapters.runs_table import due_key
from shared.adapters.table import OperationCounter, Write
from shared.bootstrap import azure_tables, build
from shared.config import Settings
from shared.domain.ids import new_id
from shared.domain.job import Actor, Job, JobDefinition
from tests.fakes.clock import FixedClock

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
        settings = Settings(TABLES_CONNECTION_STRING=azurite.connection_string, RUN_SHARDS=16)
        counter = OperationCounter()
        clock = FixedClock(T0)
        services = build(
            settings, tables=azure_tables(settings, counter), clock=clock, sender=ServiceBusTwin(clock)
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
            Job.new(
                job_id=(i_d := new_id(T0)), tenant=f"team-{i % 50}", definition=later, actor=ACTOR, now=T0
            ).model_copy(update={"shard": services.due_index.new_shard(i_d)})
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
        by_shard.setdefault(entry.shard, []).append(Write("upsert", due_key(entry), {}))
    batches = [
        (services.tables.jobs, pk, w[i : i + 100])
        for pk, w in by_tenant.items()
        for i in range(0, len(w), 100)
    ]
    batches += [
        (services.tables.runs, pk, w[i : i + 100])
        for pk, w in by_shard.items()
        for i in range(0, len(w), 100)
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


def throughput(count: int, concurrency: int = 16) -> None:
    with Azurite() as azurite:
        settings = Settings(
            TABLES_CONNECTION_STRING=azurite.connection_string, RUN_SHARDS=16, TICK_CONCURRENCY=concurrency
        )
        clock = FixedClock(T0)
        counter = OperationCounter()
        broker = ServiceBusTwin(clock)
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
        cpu = time.process_time()
        azurite_cpu = _cpu_seconds(azurite.process.pid)  # type: ignore[union-attr]
        report = services.ticker.tick()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        azurite_cpu = _cpu_seconds(azurite.process.pid) - azurite_cpu  # type: ignore[union-attr]
        requests, entities = counter.take()
        rate = report.fired / elapsed * 60
        print(f"fired {report.fired} occurrences in {elapsed:.1f}s: {rate:,.0f} per minute")
        print(
            f"concurrency {settings.tick_concurrency}; errors {report.errors}, conflicts {report.conflicts}; "
            f"CPU of this process {cpu:.1f}s, of Azurite {azurite_cpu:.1f}s "
            f"(Azurite is single-threaded: {azurite_cpu / elapsed:.0%} of one core)"
        )
        print(
            f"storage requests: {requests} ({requests / report.fired:.2f} per occurrence); "
            f"entities written: {entities} ({entities / report.fired:.2f} per occurrence); "
            f"launch messages: {len(broker.sent)}"
        )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def lag(count: int, spread_seconds: float) -> None:
    with Azurite() as azurite, Emulator(setup_delay=0.05) as emulator:
        env = {
            "TABLES_CONNECTION_STRING": azurite.connection_string,
            "AUTH_MODE": "development",
            "DATABRICKS_HOST": emulator.url,
            "DATABRICKS_AUTH": "token",
            "DATABRICKS_TOKEN": "bench",
        }
        with local_stack(env) as (stack, base):
            client = httpx.Client(base_url=base, timeout=30)
            # Far enough ahead that all jobs exist before the tick's lookahead (75 s) reaches them,
            # as schedules in production do: the tick then has 75 s to record them all.
            first = (datetime.now(UTC) + timedelta(seconds=90 + count * 0.03)).replace(microsecond=0)
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
                list(pool.map(create, range(count)))
            print(
                f"created {count} one-time jobs due from {first:%H:%M:%S} over {spread_seconds:.0f}s; "
                f"now {datetime.now(UTC):%H:%M:%S}",
                flush=True,
            )
            # Measure CPU from before the tick records the first of them (its lookahead is 75 s).
            time.sleep(max(0.0, (first - timedelta(seconds=80) - datetime.now(UTC)).total_seconds()))
            app_cpu = _cpu_seconds(stack.pid)
            azurite_cpu = _cpu_seconds(azurite.process.pid)  # type: ignore[union-attr]
            deadline = time.monotonic() + (times[-1] - datetime.now(UTC)).total_seconds() + 120
            while time.monotonic() < deadline and len(emulator.runs()) < count:
                time.sleep(1)
            app_cpu = _cpu_seconds(stack.pid) - app_cpu
            azurite_cpu = _cpu_seconds(azurite.process.pid) - azurite_cpu  # type: ignore[union-attr]
            cpu = app_cpu + azurite_cpu
            arrivals = []
            for run in emulator.runs():
                scheduled_ms = int(run.run_name.rsplit("[s-", 1)[1].split(" ", 1)[0])
                arrivals.append(run.start_ms - scheduled_ms)
    arrivals.sort()
    p99 = arrivals[max(0, int(len(arrivals) * 0.99) - 1)]
    print(
        f"run-now/submit arrival at Databricks minus scheduled time, {len(arrivals)} of {count} jobs: "
        f"p50 {statistics.median(arrivals):.0f} ms, p99 {p99:.0f} ms, max {arrivals[-1]:.0f} ms"
    )
    print(
        f"CPU of the app and Azurite from the first tick to the last launch: {cpu:.1f} s "
        f"({cpu / count * 1000:.1f} s per 1,000 fires: app {app_cpu / count * 1000:.1f} s, "
        f"Azurite {azurite_cpu / count * 1000:.1f} s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["requests", "throughput", "lag"])
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=16, help="throughput: TICK_CONCURRENCY")
    parser.add_argument("--spread", type=float, default=60.0, help="lag: seconds over which the jobs are due")
    args = parser.parse_args()
    if args.what == "requests":
        requests()
    elif args.what == "throughput":
        throughput(args.count or 10_000, args.concurrency)
    else:
        lag(args.count or 1_000, args.spread)
    return 0


if __name__ == "__main__":
    sys.exit(main())
