"""From a run's end to its notification at the receiver, on the local stack (issue 14, notifications).

    .venv/bin/python -m benchmarks.notify_latency [--runs 100] [--gap 0.3]

Starts the Databricks emulator and the local stack (as `make run`: Azurite, the Service Bus twin,
the function host with its notify queue), and a receiver on loopback (`tests/receiver.py`, a real
HTTP server). Creates a job (overlap allow, polled every second) whose `on_success` posts the
generic webhook to the receiver, runs it now once to warm the path up, then `--runs` times, a
random 0-2 x `--gap` seconds apart, and waits until the receiver has every run's notification.

For each run: *ended* (`run.ended_at` in the notification's body: the time of the write that ended
the run, which records the notice) -> *received* (the receiver's clock when the POST arrived; the
same machine's clock). The path between: the notify message is sent after the ending write, the
host's dispatcher hands it to the `notify` function, which re-reads the run and the job, posts,
and records the try.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx

from benchmarks.admission import _pct
from benchmarks.file_arrival import databricks_job
from devstack.databricks_emulator import Emulator
from devstack.process import emulator_env, local_stack
from tests.receiver import receiver


def run(runs: int, gap: float, timeout: float, seed: int = 14) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as scratch, Emulator(setup_delay=0.1) as emulator, receiver() as hooks:
        env = {
            **emulator_env(emulator.url, scratch),
            "DEV_TENANT": "bench",
            "POLL_INITIAL_SECONDS": "1",
            "POLL_MAX_SECONDS": "1",
        }
        with (
            local_stack(env, tick_seconds=5, log_path=Path(scratch) / "stack.log") as (_, base),
            httpx.Client(base_url=base, timeout=30) as http,
        ):
            job_id = _job(http, emulator, hooks.url("/hook"))
            _run_now(http, job_id)
            _wait(hooks, 1, time.monotonic() + 60)
            started = time.monotonic()
            for _ in range(runs):
                time.sleep(rng.uniform(0, 2 * gap))
                _run_now(http, job_id)
            received = _wait(hooks, runs + 1, started + timeout)
            elapsed = time.monotonic() - started
    latencies = sorted(
        (r.at - datetime.fromisoformat(r.body["run"]["ended_at"]).timestamp()) * 1000 for r in received[1:]
    )
    return {
        "runs": len(latencies),
        "p50_ms": _pct(latencies, 50),
        "p99_ms": _pct(latencies, 99),
        "max_ms": latencies[-1] if latencies else None,
        "seconds": round(elapsed, 1),
    }


def _job(http: httpx.Client, emulator: Emulator, hook: str) -> str:
    body = {
        "name": "notify-latency",
        "job_type": "other",
        "task": {"kind": "databricks_job", "job_id": databricks_job(emulator)},
        "overlap": "allow",
        "notifications": {"on_success": [{"kind": "webhook", "url": hook}]},
    }
    created = http.post("/api/jobs/schedule", json=body)
    created.raise_for_status()
    return str(created.json()["job_id"])


def _run_now(http: httpx.Client, job_id: str) -> None:
    http.post(f"/api/jobs/{job_id}/run").raise_for_status()


def _wait(hooks: Any, count: int, deadline: float) -> list[Any]:
    while time.monotonic() < deadline:
        got = hooks.at("/hook")
        if len(got) >= count:
            return list(got)
        time.sleep(0.1)
    raise TimeoutError(f"the receiver got {len(hooks.at('/hook'))} of {count} notifications")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.3, help="mean seconds between two runs")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    figures = run(args.runs, args.gap, args.timeout)
    print(f"notification latency, run end -> receiver, local stack, {figures['runs']} runs:")
    print(
        f"  p50 {figures['p50_ms']:.0f} ms   p99 {figures['p99_ms']:.0f} ms   max {figures['max_ms']:.0f} ms"
    )
    print(f"  ({figures['seconds']} s for the runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
