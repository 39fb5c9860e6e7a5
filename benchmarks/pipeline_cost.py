"""What a pipeline run costs in storage, per step, as pipelines grow (issue 12).

    .venv/bin/python -m benchmarks.pipeline_cost [--steps 10 25 50 100]

For each size, two shapes (a chain, and a fan: one step, then the rest in parallel, then one
joining step) run from the tick to the end on in-memory tables that count requests and entities
as the Azure adapter does, with the Service Bus twin and the fake Databricks (every step succeeds
after three polls), in simulated time. Per step, a bookkeeping cost that stays flat as the
pipeline grows is O(steps) in total; one that grows with the size would be O(steps^2).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from datetime import timedelta
from typing import Any

from shared.adapters.table import OperationCounter
from shared.domain.run import RunState
from tests.fakes.memory_table import InMemoryTable
from tests.world import World


def shape(kind: str, n: int) -> list[dict[str, Any]]:
    def step(key: str, *deps: str) -> dict[str, Any]:
        return {"key": key, "task": {"kind": "databricks_job", "job_id": 1}, "depends_on": list(deps)}

    if kind == "chain":
        return [step("s000")] + [step(f"s{i:03d}", f"s{i - 1:03d}") for i in range(1, n)]
    middle = [f"s{i:03d}" for i in range(1, n - 1)]
    return [step("s000"), *(step(k, "s000") for k in middle), step(f"s{n - 1:03d}", *middle)]


def measure(kind: str, n: int) -> tuple[int, int, bool]:
    counter = OperationCounter()
    names = itertools.count()
    w = World(lambda prefix: InMemoryTable(f"{prefix}{next(names)}", counter))
    job = w.job(
        name="bench",
        job_type="pipeline",
        task={"kind": "pipeline", "steps": shape(kind, n)},
        schedule={"at": "2026-06-01T12:05:00Z"},
    )
    counter.take()
    w.fire()  # the tick that records the pipeline run (its fixed cost per shard included)
    w.run_until(w.clock.now() + timedelta(hours=12), tick=False, watchdog=False)
    requests, entities = counter.take()
    return requests, entities, w.run(job).state is RunState.SUCCEEDED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_cost", description=__doc__)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100])
    args = parser.parse_args(argv)
    print("| shape | steps | table requests | per step | entities written | per step | ended |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    ok = True
    for kind in ("chain", "fan"):
        for n in args.steps:
            requests, entities, done = measure(kind, n)
            ok &= done
            print(
                f"| {kind} | {n} | {requests} | {requests / n:.1f} | {entities} | {entities / n:.1f} "
                f"| {'SUCCEEDED' if done else 'NOT ENDED'} |"
            )
    print("(one tick included; no watchdog passes: a healthy pipeline needs none)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
