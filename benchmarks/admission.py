"""Dispatch latency through a bounded pool, on the local stack (issue 11).

    .venv/bin/python -m benchmarks.admission [--runs 200] [--slots 2]

Starts the Databricks emulator and the local stack (Azurite, the Service Bus twin, the function
host, exactly as `make run`), bounds a pool to `--slots`, creates `--jobs` jobs in it, and asks for
`--runs` runs of them at once (run now, round robin; overlap `allow`). All but the first few wait
QUEUED. A waiting run gets its slot in
the same transaction that frees another run's, so its `admitted_at` is the release; the dispatch
latency is from there to its launch call (its attempt's `launched_at`, taken just before the
Databricks call). It also checks, from the runs' own times, that no more than `--slots` ran at once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx

from devstack.databricks_emulator import Emulator
from devstack.process import emulator_env, local_stack


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def run(runs: int, slots: int, jobs: int, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch, Emulator(setup_delay=0.1) as emulator:
        env = {**emulator_env(emulator.url, scratch), "DEV_TENANT": "bench"}
        with local_stack(env, tick_seconds=5) as (_, base):
            http = httpx.Client(base_url=base, timeout=30)
            http.put("/api/pools/bench", json={"slots": slots}).raise_for_status()
            ids = [_job(http, i) for i in range(jobs)]
            started = time.monotonic()
            for i in range(runs):
                http.post(f"/api/jobs/{ids[i % jobs]}/run").raise_for_status()
            asked = datetime.now(UTC)  # the last run was asked for: the burst of launches is over
            items: list[dict[str, Any]] = []
            while time.monotonic() - started < timeout:
                items = [r for job_id in ids for r in _manual_runs(http, job_id)]
                if len(items) == runs and all(r["state"] in ("SUCCEEDED", "FAILED") for r in items):
                    break
                time.sleep(3)
            else:
                raise SystemExit(f"not every run ended within {timeout:.0f} s")
            elapsed = time.monotonic() - started
    return _figures(items, slots, elapsed, asked)


def _job(http: httpx.Client, i: int) -> str:
    body = {
        "name": f"dispatch-latency-{i}",
        "job_type": "model_training",
        "task": {"kind": "databricks_job", "job_id": 4242},
        "schedule": {"at": (datetime.now(UTC) + timedelta(days=30)).isoformat()},
        "overlap": "allow",
        "pool": "bench",
    }
    r = http.post("/api/jobs/schedule", json=body)
    r.raise_for_status()
    return str(r.json()["job_id"])


def _manual_runs(http: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    items = http.get(f"/api/jobs/{job_id}/runs", params={"limit": 500}).json()["items"]
    return [r for r in items if r["trigger"] == "manual"]


def _figures(items: list[dict[str, Any]], slots: int, elapsed: float, asked: datetime) -> dict[str, Any]:
    latency, waits, steady = [], [], []
    spans = []
    for r in items:
        attempt = r["attempts"][0]
        launched, ended = _at(attempt["launched_at"]), _at(attempt["ended_at"])
        spans.append((launched, ended))
        if "QUEUED" in r["transitions"] and r["admitted_at"]:
            admitted = _at(r["admitted_at"])
            latency.append((launched - admitted).total_seconds() * 1000)
            if admitted > asked:  # not competing with the burst of new launches on the launch queue
                steady.append(latency[-1])
            waits.append((admitted - _at(r["transitions"]["QUEUED"])).total_seconds())
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return {
        "runs": len(items),
        "waited": len(latency),
        "p50_ms": _pct(latency, 50),
        "p95_ms": _pct(latency, 95),
        "p99_ms": _pct(latency, 99),
        "max_ms": max(latency),
        "mean_ms": statistics.fmean(latency),
        "steady": len(steady),
        "steady_p50_ms": _pct(steady, 50),
        "steady_p99_ms": _pct(steady, 99),
        "peak_running": peak,
        "slots": slots,
        "wait_p50_s": _pct(waits, 50),
        "elapsed_s": elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.admission", description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=20, help="jobs the runs are spread over")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for every run to end")
    args = parser.parse_args(argv)
    f = run(args.runs, args.slots, args.jobs, args.timeout)
    print(
        f"{f['runs']} runs of {args.jobs} jobs through a {f['slots']}-slot pool on the local stack "
        f"in {f['elapsed_s']:.0f} s; "
        f"{f['waited']} waited for a slot (median wait {f['wait_p50_s']:.0f} s)"
    )
    print("dispatch latency, slot released -> next run's launch call:")
    print(
        f"  p50 {f['p50_ms']:.0f} ms, p95 {f['p95_ms']:.0f} ms, p99 {f['p99_ms']:.0f} ms, "
        f"max {f['max_ms']:.0f} ms (mean {f['mean_ms']:.0f} ms)"
    )
    print(
        f"  after the burst of requests ({f['steady']} runs): p50 {f['steady_p50_ms']:.0f} ms, "
        f"p99 {f['steady_p99_ms']:.0f} ms (earlier admissions queue behind the burst's launch messages)"
    )
    print(f"most runs at once in Databricks (from their launch and end times): {f['peak_running']}")
    return 0 if f["peak_running"] <= f["slots"] else 1


if __name__ == "__main__":
    sys.exit(main())
