"""Which waiting run gets a pool's free slots: the dispatch policies, pure and shared.

The live dispatcher (admission, issue 11) and the simulator (`benchmarks/dispatch.py`) call the
same `admit`, so what the comparison measures is what runs. A policy only orders the waiting
runs; `admit` then takes them in that order while they fit the pool's free slots and their
tenant's limit. It never backfills past a run that needs more slots than are free: a wide run
would otherwise wait forever behind narrow ones.

Policies:

* `fifo`: the order of arrival.
* `priority`: static classes (urgent, high, normal, low), arrival order within a class.
* `edf`: earliest deadline first; runs without a deadline after every run with one.
* `default`: least slack first, to an effective deadline: the run's own deadline while it can
  still be met, capped by its class's patience (urgent 1x, high 3x, normal 6x, low 8x its
  expected duration after it was queued). A run whose deadline is lost already yields to runs
  that can still make theirs, but only until its patience runs out; a run without a deadline
  waits at most its patience before it goes ahead of work that can still wait. This is aging
  with a per-run bound instead of a class step, and the priority class decides ties.
* `learned`: a linear score over a few features, with weights fitted on the simulator
  (`python -m benchmarks.dispatch train`) and shipped as data (`LEARNED_WEIGHTS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.domain.run import Attempt, AttemptResult, Priority

RANK: Mapping[Priority, int] = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}
TOP = RANK[Priority.URGENT]


@dataclass(frozen=True)
class Waiting:
    """A run waiting for a slot: what a policy may look at."""

    key: str
    tenant: str
    priority: Priority
    enqueued_at: datetime
    expected: timedelta  # from the job's own history, or a default
    deadline_at: datetime | None = None
    slots: int = 1


@dataclass(frozen=True)
class PoolState:
    slots: int
    tenant_limit: int | None = None
    used: int = 0
    used_by_tenant: Mapping[str, int] = field(default_factory=dict)

    @property
    def free(self) -> int:
        return self.slots - self.used


Key = Callable[[Waiting, datetime], tuple[float, ...]]

DEFAULT_EXPECTED = timedelta(minutes=30)  # a job with no successful run yet
HISTORY = 20  # the most recent successful attempts a job's expected duration is read from


def expected_duration(attempts: Sequence[Attempt], default: timedelta = DEFAULT_EXPECTED) -> timedelta:
    """How long the job's next run will likely take: the 75th percentile of its last `HISTORY`
    successful attempts (start to end), robust to one odd run; `default` with fewer than 3."""
    ended: list[tuple[datetime, timedelta]] = []
    for attempt in attempts:
        start = attempt.started_at or attempt.launched_at
        if attempt.result is AttemptResult.SUCCEEDED and attempt.ended_at and start:
            ended.append((attempt.ended_at, attempt.ended_at - start))
    spans = sorted(span for _, span in sorted(ended)[-HISTORY:])
    if len(spans) < 3:
        return default
    return spans[math.ceil(0.75 * len(spans)) - 1]


def _seconds(at: datetime | None, now: datetime) -> float:
    return math.inf if at is None else (at - now).total_seconds()


def fifo(run: Waiting, now: datetime) -> tuple[float, ...]:
    return (run.enqueued_at.timestamp(),)


def priority(run: Waiting, now: datetime) -> tuple[float, ...]:
    return (-RANK[run.priority], run.enqueued_at.timestamp())


def edf(run: Waiting, now: datetime) -> tuple[float, ...]:
    return (_seconds(run.deadline_at, now), run.enqueued_at.timestamp())


def slack(run: Waiting, now: datetime) -> float:
    """Seconds to spare if it started now: deadline - now - expected duration (inf: no deadline)."""
    return _seconds(run.deadline_at, now) - run.expected.total_seconds()


# How long, in multiples of its expected duration, a run of each class may wait at most before
# it goes ahead of everything that can still wait: the bound that keeps the `default` policy
# starvation-free (all below the 10x at which the comparison calls a run starved).
PATIENCE: Mapping[Priority, float] = {
    Priority.URGENT: 1.0,
    Priority.HIGH: 3.0,
    Priority.NORMAL: 6.0,
    Priority.LOW: 8.0,
}


def due_by(run: Waiting) -> datetime:
    """The run's effective deadline: its own, while it can still be met, else its patience bound."""
    patience = run.enqueued_at + run.expected * PATIENCE[run.priority]
    if run.deadline_at is None:
        return patience
    return min(run.deadline_at, patience) if run.deadline_at - run.expected >= run.enqueued_at else patience


def default(run: Waiting, now: datetime) -> tuple[float, ...]:
    """Least slack to the effective deadline first; a run whose deadline is lost already yields
    to runs that can still make theirs, but never beyond its patience bound."""
    lost = run.deadline_at is not None and now + run.expected > run.deadline_at
    target = run.enqueued_at + run.expected * PATIENCE[run.priority] if lost else due_by(run)
    return ((target - now - run.expected).total_seconds(), -RANK[run.priority], run.enqueued_at.timestamp())


# Fitted by `python -m benchmarks.dispatch train` (seeded search on the simulator's workloads):
# weight of each feature in a score where lower goes first. Features: priority class (0-3),
# slack and wait in hours (slack capped at 24 h), expected duration in hours.
LEARNED_WEIGHTS: Mapping[str, float] = {"priority": -0.281, "slack": 0.07, "wait": -0.036, "expected": 0.41}


def features(run: Waiting, now: datetime) -> dict[str, float]:
    return {
        "priority": float(RANK[run.priority]),
        "slack": min(24.0, slack(run, now) / 3600),
        "wait": max(0.0, (now - run.enqueued_at).total_seconds() / 3600),
        "expected": run.expected.total_seconds() / 3600,
    }


def learned_with(weights: Mapping[str, float]) -> Key:
    def key(run: Waiting, now: datetime) -> tuple[float, ...]:
        found = features(run, now)
        return (sum(weights[name] * found[name] for name in weights), run.enqueued_at.timestamp())

    return key


POLICIES: Mapping[str, Key] = {
    "fifo": fifo,
    "priority": priority,
    "edf": edf,
    "default": default,
    "learned": learned_with(LEARNED_WEIGHTS),
}


def admit(waiting: Sequence[Waiting], pool: PoolState, now: datetime, key: Key) -> list[Waiting]:
    """The runs to start now, in order: the best first while they fit.

    A run its tenant's limit keeps out is passed over (others may go); a run that needs more
    slots than are free stops admission, so it is next when slots free up.
    """
    free = pool.free
    by_tenant = dict(pool.used_by_tenant)
    chosen: list[Waiting] = []
    for run in sorted(waiting, key=lambda r: (*key(r, now), r.key)):
        if free <= 0:
            break
        used = by_tenant.get(run.tenant, 0)
        if pool.tenant_limit is not None and used + run.slots > pool.tenant_limit:
            continue
        if run.slots > free:
            break
        chosen.append(run)
        free -= run.slots
        by_tenant[run.tenant] = used + run.slots
    return chosen
