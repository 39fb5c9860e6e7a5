"""From a pipeline step's end to its successors' launch calls, on the local stack (issue 12).

    .venv/bin/python -m benchmarks.pipeline_latency [--runs 10] [--steps 10]

Starts the Databricks emulator and the local stack (Azurite, the Service Bus twin, the function
host, as `make run`), creates a pipeline whose steps form a chain of `--steps` (each step a quick
Python file run by the emulator), asks for `--runs` runs of it at once, and waits for them to end.
For every step after the first, the gap is from its predecessor's end as the scheduler recorded
it (the step run's terminal transition: when the poll saw the end) to its own launch call (its
attempt's `launched_at`, taken just before the Databricks call). Prints p50/p95/p99/max.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx

from benchmarks.admission import _at, _pct
from devstack.databricks_emulator import Emulator
from devstack.process import emulator_env, local_stack

ENDED = {"SUCCEEDED", "SUCCEEDED_WITH_FAILURES", "FAILED", "TIMED_OUT", "CANCELLED"}


def run(runs: int, steps: int, timeout: float) -> list[float]:
    with tempfile.TemporaryDirectory() as scratch, Emulator(setup_delay=0.1) as emulator:
        script = pathlib.Path(scratch) / "ok.py"
        script.write_text("print('ok')\n")
        env = {**emulator_env(emulator.url, scratch), "DEV_TENANT": "bench"}
        with local_stack(env, tick_seconds=5) as (_, base):
            http = httpx.Client(base_url=base, timeout=30)
            task = {"kind": "databricks_run", "python_file": str(script), "existing_cluster_id": "local"}
            chain = [
                {"key": f"s{i:02d}", "task": task, "depends_on": [f"s{i - 1:02d}"] if i else []}
                for i in range(steps)
            ]
            body = {
                "name": "pipeline-latency",
                "job_type": "pipeline",
                "task": {"kind": "pipeline", "steps": chain},
                "schedule": {"at": (datetime.now(UTC) + timedelta(days=30)).isoformat()},
                "overlap": "allow",
            }
            r = http.post("/api/jobs/schedule", json=body)
            r.raise_for_status()
            job_id = r.json()["job_id"]
            for _ in range(runs):
                http.post(f"/api/jobs/{job_id}/run").raise_for_status()
            deadline = time.monotonic() + timeout
            items: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                items = [
                    i
                    for i in http.get(f"/api/jobs/{job_id}/runs").json()["items"]
                    if i["trigger"] == "manual"
                ]
                if len(items) == runs and all(i["state"] in ENDED for i in items):
                    break
                time.sleep(2)
            else:
                raise SystemExit(f"not every pipeline run ended within {timeout:.0f} s")
            return [gap for item in items for gap in _gaps(http, item)]


def _gaps(http: httpx.Client, pipeline_run: dict[str, Any]) -> list[float]:
    ends: dict[str, datetime] = {}
    launches: dict[str, datetime] = {}
    for step in pipeline_run["steps"]:
        child = http.get(f"/api/runs/{step['run_id']}").json()
        ends[step["key"]] = _at(child["transitions"][child["state"]])
        launches[step["key"]] = _at(child["attempts"][0]["launched_at"])
    gaps = []
    for step in pipeline_run["steps"]:
        if step["depends_on"]:
            upstream_end = max(ends[d] for d in step["depends_on"])
            gaps.append((launches[step["key"]] - upstream_end).total_seconds() * 1000)
    return gaps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_latency", description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    gaps = run(args.runs, args.steps, args.timeout)
    print(f"{len(gaps)} step starts in {args.runs} runs of a {args.steps}-step chain on the local stack:")
    print(
        f"  a step's end -> its successor's launch call: p50 {_pct(gaps, 50):.0f} ms, "
        f"p95 {_pct(gaps, 95):.0f} ms, p99 {_pct(gaps, 99):.0f} ms, max {max(gaps):.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
