"""Batches (issue 14): how long a 1,000-point batch takes to accept, whether `max_parallel` holds on
a real run, and what a batch costs in storage.

    .venv/bin/python -m benchmarks.batch [--samples 10] [--points 40] [--max-parallel 4]

1. Creation, on the local stack (Azurite, the Service Bus twin, the function host, the Databricks
   emulator, as `make run`), over real HTTP: `POST /api/batches` of a template with a 10 x 10 x 10
   grid (1,000 points), `--samples` times, and of 1,000 explicit points; then `GET /api/batches/{id}`
   of one. The batches run in a pool of one slot meanwhile, so their runs hardly load the machine.
2. A real run: a `--points` grid of a quick Python file, `max_parallel` `--max-parallel`, polled
   every 0.2 s: the most points ever between start and end (the scheduler's counts), and the time
   to finish.
3. Storage: requests and entities written to create a 1,000-point batch, to read it, and per point
   (its start and end, the round's share included), against a plain run; in memory, counted as the
   Azure adapter counts them.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from typing import Any

import httpx2 as httpx

from benchmarks.admission import _pct
from devstack.databricks_emulator import Emulator
from devstack.process import emulator_env, local_stack
from shared.adapters.table import OperationCounter
from shared.domain.batch import BatchSpec
from tests.fakes.memory_table import InMemoryTable
from tests.world import ALICE, World

ENDED = {"SUCCEEDED", "SUCCEEDED_WITH_FAILURES", "FAILED", "TIMED_OUT", "CANCELLED"}


def _template(script: pathlib.Path) -> dict[str, Any]:
    return {
        "name": "sweep",
        "job_type": "model_training",
        "task": {
            "kind": "databricks_run",
            "python_file": str(script),
            "existing_cluster_id": "local",
            "parameters": [
                "--lr",
                "{{params.lr}}",
                "--depth",
                "{{params.depth}}",
                "--seed",
                "{{params.seed}}",
            ],
        },
        "parameters": [
            {"name": "lr", "type": "float", "required": True},
            {"name": "depth", "type": "int", "required": True},
            {"name": "seed", "type": "int", "default": 0},
        ],
    }


def _grid(n: int) -> dict[str, list[Any]]:
    return {
        "lr": [round(0.001 * (i + 1), 4) for i in range(n)],
        "depth": list(range(1, n + 1)),
        "seed": list(range(n)),
    }


def creation(http: httpx.Client, samples: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"grid": [], "runs": [], "get": []}
    body = {"template": "sweep", "grid": _grid(10), "max_parallel": 1, "pool": "bench"}
    runs = [{"lr": 0.001 * (i + 1), "depth": i % 12 + 1, "seed": i} for i in range(1000)]
    last = ""
    for _ in range(samples):
        for kind, payload in (("grid", body), ("runs", {**body, "grid": None, "runs": runs})):
            start = time.perf_counter()
            r = http.post("/api/batches", json=payload)
            out[kind].append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
            assert r.json()["size"] == 1000
            last = r.json()["batch_id"]
    for _ in range(samples):
        start = time.perf_counter()
        http.get(f"/api/batches/{last}").raise_for_status()
        out["get"].append((time.perf_counter() - start) * 1000)
    return out


def parallelism(
    http: httpx.Client, points: int, max_parallel: int, timeout: float
) -> tuple[int, float, dict[str, int]]:
    grid = {"lr": [round(0.001 * (i + 1), 4) for i in range(points)], "depth": [3]}
    r = http.post("/api/batches", json={"template": "sweep", "grid": grid, "max_parallel": max_parallel})
    r.raise_for_status()
    batch = r.json()["batch_id"]
    started, most = time.monotonic(), 0
    while time.monotonic() - started < timeout:
        out = http.get(f"/api/batches/{batch}").json()
        most = max(most, out["counts"]["queued"] + out["counts"]["running"])
        if out["state"] in ENDED:
            return most, time.monotonic() - started, out["counts"]
        time.sleep(0.2)
    raise SystemExit(f"the batch did not end within {timeout:.0f} s")


def _world() -> tuple[World, OperationCounter]:
    counter = OperationCounter()
    w = World(lambda prefix: InMemoryTable(prefix, counter))
    w.s.ensure_tables()
    counter.take()
    return w, counter


def storage() -> dict[str, tuple[int, int]]:
    task = {"kind": "databricks_job", "job_id": 7, "parameters": {"lr": "{{params.lr}}"}}
    out: dict[str, tuple[int, int]] = {}
    w, counter = _world()
    spec = BatchSpec.model_validate({"task": task, "grid": {"lr": [str(i) for i in range(1000)]}})
    job, _ = w.s.batches.create("t", ALICE, spec)
    out["create a 1,000-point batch"] = counter.take()
    w.s.batches.get("t", job.id)
    out["read it (GET, nothing started)"] = counter.take()

    w, counter = _world()
    spec = BatchSpec.model_validate(
        {"task": task, "grid": {"lr": [str(i) for i in range(20)]}, "max_parallel": 4}
    )
    w.s.batches.create("t", ALICE, spec)
    counter.take()
    w.deliver(until=w.clock.now() + timedelta(hours=2))
    requests, entities = counter.take()
    out["per point, start to end (20 points, 4 at a time)"] = (round(requests / 20), round(entities / 20))

    w, counter = _world()
    plain = w.job(schedule=None)
    counter.take()
    w.s.run_commands.run_now("team-a", plain.id, ALICE)
    w.deliver(until=w.clock.now() + timedelta(hours=2))
    out["a plain run, start to end (for comparison)"] = counter.take()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch", description=__doc__)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--points", type=int, default=40)
    parser.add_argument("--max-parallel", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch, Emulator(setup_delay=0.1) as emulator:
        script = pathlib.Path(scratch) / "train.py"
        script.write_text("import time\ntime.sleep(0.3)\nprint('ok')\n")
        env = {**emulator_env(emulator.url, scratch), "DEV_TENANT": "bench"}
        with local_stack(env, tick_seconds=5) as (_, base):
            http = httpx.Client(base_url=base, timeout=60)
            http.put("/api/pools/bench", json={"slots": 1}).raise_for_status()
            http.post("/api/templates", json=_template(script)).raise_for_status()
            most, seconds, counts = parallelism(http, args.points, args.max_parallel, args.timeout)
            made = creation(http, args.samples)
    print(f"creating a 1,000-point batch on the local stack, {args.samples} samples:")
    for kind, label in (
        ("grid", "a 10x10x10 grid"),
        ("runs", "1,000 explicit points"),
        ("get", "GET the batch"),
    ):
        values = made[kind]
        p50, p95 = statistics.median(values), _pct(values, 95)
        print(f"  {label:24} p50 {p50:6.0f} ms   p95 {p95:6.0f} ms   max {max(values):6.0f} ms")
    print(f"a {args.points}-point batch, max_parallel {args.max_parallel}, on the emulator:")
    print(f"  most points between start and end at once: {most}   finished in {seconds:.1f} s   {counts}")
    print("storage (requests, entities written):")
    for what, (requests, entities) in storage().items():
        print(f"  {what:52} {requests:5d} {entities:6d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
