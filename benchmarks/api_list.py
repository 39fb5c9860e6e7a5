"""Benchmark: the job list and job read on the local stack with 10,000 jobs, and the app's import time.

    make bench                      # or: .venv/bin/python -m benchmarks.api_list --jobs 10000

Starts its own Azurite and its own local stack (`python -m devstack`) on free
loopback ports, seeds N jobs in one tenant through the job service, then times
requests over real HTTP. Prints a table of p50/p95 per request kind and the
number of storage requests each kind costs.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx

from devstack.azurite import Azurite
from devstack.process import local_stack
from shared.adapters.table import OperationCounter
from shared.bootstrap import azure_tables, build
from shared.config import Settings
from shared.domain.job import Actor, JobDefinition

ROOT = Path(__file__).resolve().parent.parent
TYPES = ["model_training", "data_processing", "pipeline", "other"]


def definition(i: int) -> JobDefinition:
    return JobDefinition.model_validate(
        {
            "name": f"model-{i:05d}-{'churn' if i % 10 == 0 else 'sales'}",
            "job_type": TYPES[i % 4],
            "description": f"Retrains model {i} on fresh data",
            "task": {"kind": "databricks_job", "job_id": 1000 + i},
            "schedule": {"cron": f"{i % 60} {i % 24} * * *", "timezone": "Europe/Paris"},
            "tags": ["churn" if i % 10 == 0 else "sales", f"team-{i % 7}"],
        }
    )


def seed(settings: Settings, count: int) -> list[str]:
    services = build(settings, tables=azure_tables(settings))
    services.ensure_tables()
    actor = Actor(id="bench", name="Benchmark")
    with ThreadPoolExecutor(8) as pool:
        jobs = list(
            pool.map(lambda i: services.job_service.create("bench", actor, definition(i)), range(count))
        )
    return [job.id for job in jobs]


def timed(client: httpx.Client, url: str, params: dict[str, Any], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        r = client.get(url, params=params)
        samples.append((time.perf_counter() - start) * 1000)
        r.raise_for_status()
    return samples


def deep_token(client: httpx.Client, params: dict[str, Any], pages: int) -> str:
    token = None
    for _ in range(pages):
        token = client.get(
            "/api/jobs", params={**params, **({"continuation": token} if token else {})}
        ).json()["continuation"]
    assert token
    return token


def import_time(runs: int = 5) -> float:
    """Median cumulative import time of function_app, in seconds (python -X importtime)."""
    totals = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import function_app"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        line = next(ln for ln in out.splitlines() if re.search(r"\|\s*function_app$", ln))
        totals.append(int(line.split("|")[1]) / 1e6)
    return statistics.median(totals)


def storage_requests(settings: Settings, calls: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """Storage requests one call of each kind costs, counted on the Table client's pipeline."""
    from fastapi.testclient import TestClient

    from functions.http_api import create_api

    counter = OperationCounter()
    settings = settings.model_copy(update={"dev_tenant": "bench"})
    services = build(settings, tables=azure_tables(settings, counter))
    client = TestClient(create_api(lambda: services))
    out = {}
    for name, (url, params) in calls.items():
        counter.reset()
        client.get(url, params=params).raise_for_status()
        out[name] = counter.reset()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()

    with Azurite() as azurite:
        settings = Settings(TABLES_CONNECTION_STRING=azurite.connection_string, AUTH_MODE="development")
        started = time.perf_counter()
        ids = seed(settings, args.jobs)
        print(f"seeded {len(ids)} jobs in {time.perf_counter() - started:.1f}s")

        env = {
            "TABLES_CONNECTION_STRING": azurite.connection_string,
            "AUTH_MODE": "development",
            "DEV_TENANT": "bench",
        }
        with local_stack(env) as (_, base):
            client = httpx.Client(base_url=base, timeout=30)
            calls: dict[str, tuple[str, dict[str, Any]]] = {
                "list, first page": ("/api/jobs", {"limit": 50}),
                "list, first page, sort=name": ("/api/jobs", {"limit": 50, "sort": "name"}),
                "list, first page, job_type filter": ("/api/jobs", {"limit": 50, "job_type": "pipeline"}),
                "list, first page, type+status filter": (
                    "/api/jobs",
                    {"limit": 50, "job_type": "pipeline", "status": "ACTIVE"},
                ),
                "list, page 100 (deep)": (
                    "/api/jobs",
                    {"limit": 50, "continuation": deep_token(client, {"limit": 50}, 99)},
                ),
                "list, page 40, job_type filter (deep)": (
                    "/api/jobs",
                    {
                        "limit": 50,
                        "job_type": "pipeline",
                        "continuation": deep_token(client, {"limit": 50, "job_type": "pipeline"}, 39),
                    },
                ),
                "list, tag filter": ("/api/jobs", {"limit": 50, "tag": "churn"}),
                "list, text search q=model-0999": ("/api/jobs", {"limit": 50, "q": "model-0999"}),
                "get one job": (f"/api/jobs/{ids[len(ids) // 2]}", {}),
            }
            for url, params in calls.values():  # warm up
                timed(client, url, params, 3)
            print(f"\n{'request':42} {'p50 ms':>8} {'p95 ms':>8} {'items':>6}")
            for name, (url, params) in calls.items():
                samples = timed(client, url, params, args.samples)
                items = len(client.get(url, params=params).json().get("items", [None]))
                p50 = statistics.median(samples)
                p95 = statistics.quantiles(samples, n=20)[-1]
                print(f"{name:42} {p50:8.1f} {p95:8.1f} {items:6d}")
        print("\nstorage requests per call:")
        for name, n in storage_requests(settings, calls).items():
            print(f"  {name:42} {n}")
    print(f"\nimport function_app (python -X importtime, median of 5): {import_time():.3f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
