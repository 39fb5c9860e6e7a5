"""Compare the dispatch policies on named workloads in a discrete-event simulator (seed 004).

    python -m benchmarks.dispatch [--out DIR] [--seed 7]     # the comparison: a table per workload
    python -m benchmarks.dispatch train [--seed 11]          # fit the `learned` policy's weights

Every policy is the live one: the simulator calls `shared.domain.dispatch.admit` with the
policy's key, as the dispatcher will. Workloads (one pool, four tenants with 40/30/20/10 % of
the work, priorities urgent 5 %, high 15 %, normal 50 %, low 30 %, durations log-normal around
20 minutes, the expected duration a noisy estimate of the real one, 60 % of runs with a deadline
1.5-4 times their expected duration after they are due):

* steady: 12 hours at 70 % of the pool's capacity;
* burst: 120 runs due at midnight on top of 30 % background load for 8 hours;
* overload: 8 hours at 120 % of capacity (then no new work until the queue drains).

Metrics (a table, and a chart of misses and starved runs): deadline-miss rate (of runs with a
deadline), mean and p95 turnaround, throughput,
max wait, starved runs (waited more than 10 x their expected duration) and Jain's fairness index
across tenants (of each tenant's mean expected/turnaround ratio). Writes `results.md`,
`results.csv` and `results.png` to the folder it names (`--out`, default `.devstack/dispatch`;
the user guide's copy is made with `--out docs/dispatch`).
"""

from __future__ import annotations

import argparse
import csv
import heapq
import math
import random
import statistics
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.domain.dispatch import POLICIES, Key, PoolState, Waiting, admit, learned_with
from shared.domain.run import Priority

EPOCH = datetime(2027, 1, 1, tzinfo=UTC)
TENANTS = {"team-a": 0.4, "team-b": 0.3, "team-c": 0.2, "team-d": 0.1}
PRIORITIES = {Priority.URGENT: 0.05, Priority.HIGH: 0.15, Priority.NORMAL: 0.5, Priority.LOW: 0.3}
MEDIAN_MINUTES = 20.0


@dataclass(frozen=True)
class Task:
    key: str
    tenant: str
    priority: Priority
    arrival: float  # seconds from EPOCH
    duration: float
    expected: float
    deadline: float | None


@dataclass(frozen=True)
class Workload:
    name: str
    slots: int
    tenant_limit: int | None
    tasks: list[Task]


def _task(rng: random.Random, n: int, arrival: float) -> Task:
    duration = min(3 * 3600.0, max(120.0, 60 * MEDIAN_MINUTES * rng.lognormvariate(0, 0.8)))
    expected = duration * rng.lognormvariate(0, 0.3)
    deadline = arrival + expected * rng.uniform(1.5, 4.0) if rng.random() < 0.6 else None
    tenant = rng.choices(list(TENANTS), weights=list(TENANTS.values()))[0]
    level = rng.choices(list(PRIORITIES), weights=list(PRIORITIES.values()))[0]
    return Task(f"r{n:05d}", tenant, level, arrival, duration, expected, deadline)


def _poisson(rng: random.Random, load: float, slots: int, hours: float, start: int = 0) -> list[Task]:
    mean_duration = 60 * MEDIAN_MINUTES * math.exp(0.8**2 / 2)
    rate = load * slots / mean_duration  # arrivals per second
    tasks, t = [], 0.0
    while True:
        t += rng.expovariate(rate)
        if t > hours * 3600:
            return tasks
        tasks.append(_task(rng, start + len(tasks), t))


def workloads(seed: int) -> list[Workload]:
    rng = random.Random(seed)
    steady = _poisson(rng, 0.7, 8, 12)
    burst = [_task(rng, n, rng.uniform(0, 60)) for n in range(120)]
    burst += _poisson(rng, 0.3, 8, 8, start=len(burst))
    overload = _poisson(rng, 1.2, 8, 8)
    return [
        Workload("steady", 8, None, steady),
        Workload("burst", 8, 4, burst),
        Workload("overload", 8, 4, overload),
    ]


@dataclass(frozen=True)
class Outcome:
    task: Task
    start: float
    end: float


def _waiting(task: Task) -> Waiting:
    return Waiting(
        key=task.key,
        tenant=task.tenant,
        priority=task.priority,
        enqueued_at=EPOCH + timedelta(seconds=task.arrival),
        expected=timedelta(seconds=task.expected),
        deadline_at=None if task.deadline is None else EPOCH + timedelta(seconds=task.deadline),
    )


def simulate(workload: Workload, key: Key) -> list[Outcome]:
    """Arrivals and ends in time order; after each instant, `admit` fills the free slots."""
    arrivals = sorted(workload.tasks, key=lambda t: t.arrival)
    by_key = {t.key: t for t in arrivals}
    waiting: dict[str, Waiting] = {}
    running: list[tuple[float, str]] = []  # (end, key)
    used_by: dict[str, int] = defaultdict(int)
    started: dict[str, float] = {}
    done: list[Outcome] = []
    i = 0
    while i < len(arrivals) or running or waiting:
        next_arrival = arrivals[i].arrival if i < len(arrivals) else math.inf
        next_end = running[0][0] if running else math.inf
        now = min(next_arrival, next_end)
        if now == math.inf:
            raise RuntimeError("runs wait with nothing running: a run needs more slots than the pool has")
        while running and running[0][0] <= now:
            end, k = heapq.heappop(running)
            task = by_key[k]
            used_by[task.tenant] -= 1
            done.append(Outcome(task, started[k], end))
        while i < len(arrivals) and arrivals[i].arrival <= now:
            waiting[arrivals[i].key] = _waiting(arrivals[i])
            i += 1
        pool = PoolState(workload.slots, workload.tenant_limit, len(running), dict(used_by))
        for run in admit(list(waiting.values()), pool, EPOCH + timedelta(seconds=now), key):
            task = by_key[run.key]
            del waiting[run.key]
            started[run.key] = now
            used_by[task.tenant] += 1
            heapq.heappush(running, (now + task.duration, run.key))
    return done


def metrics(outcomes: list[Outcome]) -> dict[str, float]:
    with_deadline = [o for o in outcomes if o.task.deadline is not None]
    missed = [o for o in with_deadline if o.end > (o.task.deadline or math.inf)]
    turnaround = sorted((o.end - o.task.arrival) / 60 for o in outcomes)
    waits = [(o.start - o.task.arrival) for o in outcomes]
    span = max(o.end for o in outcomes) - min(o.task.arrival for o in outcomes)
    ratios: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        ratios[o.task.tenant].append(o.task.expected / max(1.0, o.end - o.task.arrival))
    shares = [statistics.fmean(v) for v in ratios.values()]
    return {
        "miss_rate": len(missed) / max(1, len(with_deadline)),
        "mean_turnaround_min": statistics.fmean(turnaround),
        "p95_turnaround_min": turnaround[int(0.95 * (len(turnaround) - 1))],
        "throughput_per_h": len(outcomes) / (span / 3600),
        "max_wait_min": max(waits) / 60,
        "starved": float(sum(1 for o, w in zip(outcomes, waits, strict=True) if w > 10 * o.task.expected)),
        "jain": sum(shares) ** 2 / (len(shares) * sum(s * s for s in shares)),
    }


COLUMNS = [
    ("miss_rate", "deadline misses", "{:.1%}"),
    ("mean_turnaround_min", "mean turnaround (min)", "{:.0f}"),
    ("p95_turnaround_min", "p95 turnaround (min)", "{:.0f}"),
    ("throughput_per_h", "throughput (runs/h)", "{:.1f}"),
    ("max_wait_min", "max wait (min)", "{:.0f}"),
    ("starved", "starved", "{:.0f}"),
    ("jain", "fairness (Jain)", "{:.3f}"),
]


def compare(seed: int, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    lines = ["# Dispatch policies compared", "", f"`python -m benchmarks.dispatch --seed {seed}`", ""]
    for workload in workloads(seed):
        lines += [
            f"## {workload.name}: {len(workload.tasks)} runs, {workload.slots} slots, "
            f"tenant limit {workload.tenant_limit or 'none'}",
            "",
            "| policy | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
            "| --- |" + " --- |" * len(COLUMNS),
        ]
        for name, key in POLICIES.items():
            found = metrics(simulate(workload, key))
            rows.append({"workload": workload.name, "policy": name, **found})
            cells = " | ".join(fmt.format(found[col]) for col, _, fmt in COLUMNS)
            lines.append(f"| {name} | {cells} |")
        lines.append("")
    lines += [
        "![Deadline misses and starved runs per policy and workload](results.png)",
        "",
        "What the columns mean and how the workloads are made: `benchmarks/dispatch.py`. The policies:",
        "`shared/domain/dispatch.py`. A run is *starved* when it waited more than 10 times its expected",
        "duration.",
        "",
    ]
    text = "\n".join(lines)
    (out / "results.md").write_text(text)
    chart(rows, out / "results.png")
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(text)
    print(f"written to {out}/results.md, results.csv and results.png")
    return 0


def chart(rows: list[dict[str, object]], path: Path) -> None:
    """Deadline-miss rate and starved runs per policy, one panel pair per workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(str(r["workload"]) for r in rows))
    policies = list(POLICIES)
    figure, axes = plt.subplots(2, len(names), figsize=(4 * len(names), 6), squeeze=False)
    for col, workload in enumerate(names):
        found = {str(r["policy"]): r for r in rows if r["workload"] == workload}
        for row, (metric, title) in enumerate(
            (("miss_rate", "deadline misses (%)"), ("starved", "starved runs"))
        ):
            scale = 100.0 if metric == "miss_rate" else 1.0
            values = [float(str(found[p][metric])) * scale for p in policies]
            ax = axes[row][col]
            ax.bar(policies, values, color=["#8c959f", "#0b5cad", "#8a5a00", "#1a7f37", "#6f42c1"])
            ax.set_title(f"{workload}: {title}", fontsize=10)
            ax.tick_params(axis="x", labelsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def objective(found: Mapping[str, float]) -> float:
    """What `train` minimises: deadline misses first, starvation never, then long turnarounds."""
    return found["miss_rate"] + 0.05 * found["starved"] + found["p95_turnaround_min"] / 10_000


def train(seed: int, candidates: int) -> int:
    """A seeded random search over the weights, on workloads the comparison does not use."""
    rng = random.Random(seed)
    tuning = [w for w in workloads(seed) if w.name in ("burst", "overload")]
    best: tuple[float, dict[str, float]] | None = None
    for n in range(candidates):
        weights = {
            "priority": -rng.uniform(0, 2),
            "slack": rng.uniform(0, 2),
            "wait": -rng.uniform(0, 2),
            "expected": rng.uniform(-0.5, 0.5),
        }
        score = sum(objective(metrics(simulate(w, learned_with(weights)))) for w in tuning)
        if best is None or score < best[0]:
            best = (score, weights)
            print(f"candidate {n}: objective {score:.4f} with {weights}")
    assert best is not None
    rounded = {k: round(v, 3) for k, v in best[1].items()}
    print(f"\nbest: {rounded}\nship it as LEARNED_WEIGHTS in shared/domain/dispatch.py")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", nargs="?", choices=["compare", "train"], default="compare")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--candidates", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(".devstack/dispatch"))
    args = parser.parse_args()
    if args.what == "train":
        return train(11 if args.seed is None else args.seed, args.candidates)
    return compare(7 if args.seed is None else args.seed, args.out)


if __name__ == "__main__":
    sys.exit(main())
