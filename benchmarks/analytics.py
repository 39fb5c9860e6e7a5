"""Analytics at 100,000 runs: `GET /api/analytics` on the local stack (issue 14).

    .venv/bin/python -m benchmarks.analytics [--runs 100000] [--jobs 300] [--samples 50]

Starts its own Azurite, creates `--jobs` jobs in one tenant (spread over the 16 shards as jobs
are), and records `--runs` run ends over the last 7 days exactly as a run's ending write does
(its `e~` row, with a tally: outcome, attempts, duration, queue wait, fire lag, drawn at random),
then has the watchdog count them into the daily aggregates as it counts ends a crash left (98 to
a transaction, with the day's two aggregates). Then starts the local stack (`python -m devstack`)
on that Azurite and times the endpoint over real HTTP for each grouping, and counts the storage
requests one call makes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx

from devstack.azurite import Azurite
from devstack.process import local_stack
from devstack.service_bus_twin import ServiceBusTwin
from shared.adapters.analytics_table import _aggregates, _by_job, _by_type, _props, tally_write
from shared.adapters.table import OperationCounter, Write
from shared.bootstrap import azure_tables, build
from shared.config import Settings
from shared.domain.analytics import Tally, folded
from shared.domain.job import Actor, JobDefinition
from shared.services.repairs import WatchReport

TYPES = ["model_training", "data_processing", "pipeline", "other"]
OUTCOMES = ["succeeded"] * 90 + ["failed"] * 6 + ["timed_out"] * 2 + ["cancelled", "skipped"]


def seed(settings: Settings, jobs: int, runs: int, rng: random.Random) -> tuple[int, float, float]:
    services = build(settings, tables=azure_tables(settings), sender=ServiceBusTwin())
    services.ensure_tables()
    actor = Actor(id="bench", name="bench")

    def job(i: int) -> Any:
        body = {
            "name": f"model-{i:04d}",
            "job_type": TYPES[i % 4],
            "task": {"kind": "databricks_job", "job_id": 1000 + i},
        }
        return services.job_service.create("bench", actor, JobDefinition.model_validate(body))

    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(job, range(jobs)))
    today = datetime.now(UTC).date()
    by_shard: defaultdict[str, list[Tally]] = defaultdict(list)
    for n in range(runs):
        j = rng.choice(created)
        outcome = rng.choice(OUTCOMES)
        started = outcome != "skipped"
        by_shard[j.shard].append(
            Tally(
                tenant="bench",
                job_id=j.id,
                end=f"m-bench{n:07d}~0",
                job_name=j.definition.name,
                job_type=j.definition.job_type.value,
                day=today - timedelta(days=rng.randrange(7)),
                outcome=outcome,
                attempts=1 + (rng.random() < 0.1),
                deadline_missed=rng.random() < 0.01,
                duration_ms=rng.lognormvariate(13, 1) if started else None,
                queue_wait_ms=(rng.expovariate(1 / 30_000) if rng.random() < 0.3 else 0.0)
                if started
                else None,
                fire_lag_ms=rng.uniform(200, 3000) if started else None,
            )
        )
    table = services.tables.runs
    # The first `counted` ends go the way run ends go (an `e~` row each, counted by the watchdog's
    # pass, 98 to a transaction): that measures counting. Azurite scans a partition for a range
    # query, so the rest are folded here with the same code and written as the aggregates counting
    # would have left: what a report reads is the same.
    counted = min(runs, 10_000)
    chunks: list[tuple[str, list[Tally]]] = []
    rest: list[tuple[str, Tally]] = []
    n = 0
    for shard, tallies in by_shard.items():
        k = max(1, counted * len(tallies) // runs)
        chunks += [(shard, tallies[i : min(i + 99, k)]) for i in range(0, k, 99)]
        rest += [(shard, t) for t in tallies[k:]]
        n += k
    started_at = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: table.write(c[0], [tally_write(t) for t in c[1]]), chunks))
    recorded = time.perf_counter() - started_at
    started_at = time.perf_counter()
    report = WatchReport()
    while any(services.analytics.pending(shard, 1) for shard in services.due_index.shards):
        services.watchdog.count_leftovers(report)
    counting = time.perf_counter() - started_at
    days: defaultdict[tuple[str, str], list[Tally]] = defaultdict(list)
    for shard, t in rest:
        days[(shard, f"a~{t.tenant}~{t.day.isoformat()}")].append(t)
    for (shard, rk), tallies in days.items():
        stored = {row.rk: row for row in table.query(shard, rk_ge=rk, rk_lt=rk + "~~")}
        writes = []
        for kind, key, suffix in (("j", _by_job, ""), ("t", _by_type, "~t")):
            row = stored.get(rk + suffix)
            aggregates = _aggregates(row) if row is not None else {}
            writes.append(
                Write("upsert", rk + suffix, {**_props(folded(aggregates, tallies, key)), "k": kind})
            )
        table.write(shard, writes)
    return n, recorded, counting


def storage_requests(settings: Settings, params: dict[str, Any]) -> int:
    from fastapi.testclient import TestClient

    from functions.http_api import create_api

    counter = OperationCounter()
    services = build(
        settings.model_copy(update={"dev_tenant": "bench"}), tables=azure_tables(settings, counter)
    )
    client = TestClient(create_api(lambda: services))
    counter.reset()
    client.get("/api/analytics", params=params).raise_for_status()
    return counter.reset()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(14)
    with Azurite() as azurite:
        settings = Settings(TABLES_CONNECTION_STRING=azurite.connection_string, AUTH_MODE="development")
        n, recorded, counted = seed(settings, args.jobs, args.runs, rng)
        print(
            f"{args.runs} run ends over 7 days, {args.jobs} jobs; {n} of them recorded as run ends are"
            f" (in {recorded:.1f} s), counted by the watchdog in {counted:.1f} s ({n / counted:.0f} ends/s)"
        )
        env = {
            "TABLES_CONNECTION_STRING": azurite.connection_string,
            "AUTH_MODE": "development",
            "DEV_TENANT": "bench",
        }
        with local_stack(env) as (_, base), httpx.Client(base_url=base, timeout=30) as client:
            print(
                f"\n{'GET /api/analytics?window=P7D&group_by=':42} {'p50 ms':>8} {'p95 ms':>8}"
                f" {'runs':>8} {'groups':>7}"
            )
            for group_by in ("job_type", "job", "tenant"):
                params = {"window": "P7D", "group_by": group_by}
                for _ in range(3):
                    client.get("/api/analytics", params=params).raise_for_status()  # warm up
                samples = []
                for _ in range(args.samples):
                    start = time.perf_counter()
                    r = client.get("/api/analytics", params=params)
                    samples.append((time.perf_counter() - start) * 1000)
                    r.raise_for_status()
                out = r.json()
                p95 = statistics.quantiles(samples, n=20)[-1]
                print(
                    f"{group_by:42} {statistics.median(samples):8.1f} {p95:8.1f} "
                    f"{out['total']['runs']:8d} {len(out['groups']):7d}"
                )
                assert out["total"]["runs"] == args.runs
        print(f"\nstorage requests per call: {storage_requests(settings, {'window': 'P7D'})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
