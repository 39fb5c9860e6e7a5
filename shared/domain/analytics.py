"""Analytics: what each run's end adds to its job's day, and how days add up to a window.

A run's end is summed once into its job's aggregate for the (UTC) day it ended: counts by final
state, retries, deadline misses, and three mergeable sketches (duration, queue wait, fire lag).
Aggregates merge by addition, so a window is the sum of its days and a group (job type, tenant)
the sum of its jobs: a request reads aggregates, never the run history.

The sketch is DDSketch's idea (Masson et al., VLDB 2019): a value x > 0 falls in bucket
ceil(log_gamma(x)), and the bucket's estimate 2 gamma^i / (gamma + 1) is within `ACCURACY` of
every value in it, so any percentile of a merged sketch is within 2% of the exact one (by rank).
Buckets are sparse (a job whose runs take about the same time uses a handful).
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.domain.run import Run

ACCURACY = 0.02
_GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
MAX_COUNTED = 99  # ends counted in one transaction (with their day's aggregate: Table Storage's 100)
_MIN_MS = 1.0  # values below 1 ms (and zero waits) go to the zero bucket


@dataclass
class Sketch:
    """Counts of values (in ms) in consecutive buckets `offset`, `offset + 1`, ...; `zero`: values
    below 1 ms. Dense, so merging and ranking run at C speed (`map`, `accumulate`)."""

    counts: list[int] = field(default_factory=list)
    offset: int = 0
    zero: int = 0

    @property
    def count(self) -> int:
        return self.zero + sum(self.counts)

    def add(self, ms: float) -> None:
        if ms < _MIN_MS:
            self.zero += 1
            return
        self._cover(i := math.ceil(math.log(ms) / _LOG_GAMMA), i)
        self.counts[i - self.offset] += 1

    def _cover(self, lo: int, hi: int) -> None:
        """Make room for buckets lo..hi."""
        if not self.counts:
            self.offset, self.counts = lo, [0] * (hi - lo + 1)
            return
        if lo < self.offset:
            self.counts[:0] = [0] * (self.offset - lo)
            self.offset = lo
        top = self.offset + len(self.counts) - 1
        if hi > top:
            self.counts.extend([0] * (hi - top))

    def merge(self, other: Sketch) -> None:
        self.zero += other.zero
        if not other.counts:
            return
        if not self.counts:
            self.offset, self.counts = other.offset, list(other.counts)
            return
        self._cover(other.offset, other.offset + len(other.counts) - 1)
        at = other.offset - self.offset
        end = at + len(other.counts)
        self.counts[at:end] = map(operator.add, self.counts[at:end], other.counts)

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """The values at ranks qs (0..1) in ms, each within ACCURACY of the exact one (the "lower"
        percentile of the values); None when empty."""
        total = self.count
        if total == 0:
            return [None for _ in qs]
        cumulative = list(itertools.accumulate(self.counts, initial=self.zero))[1:]
        out: list[float | None] = []
        for q in qs:
            rank = q * (total - 1)
            if rank < self.zero:
                out.append(0.0)
                continue
            k = min(bisect.bisect_right(cumulative, rank), len(cumulative) - 1)
            out.append(2 * _GAMMA ** (self.offset + k) / (_GAMMA + 1))
        return out

    def quantile(self, q: float) -> float | None:
        return self.quantiles([q])[0]

    def dump(self) -> list[Any]:
        return [self.zero, self.offset, self.counts]

    @classmethod
    def load(cls, raw: list[Any]) -> Sketch:
        return cls(raw[2], raw[1], raw[0])


_COUNTS = ("runs", "succeeded", "failed", "timed_out", "cancelled", "skipped", "retried", "deadline_missed")


@dataclass
class Aggregate:
    """What the runs of one job that ended on one day add up to (or of many jobs and days, merged)."""

    job_type: str = ""
    job_name: str = ""  # the newest name its runs ended under
    runs: int = 0
    succeeded: int = 0
    failed: int = 0  # FAILED, and SUCCEEDED_WITH_FAILURES
    timed_out: int = 0
    cancelled: int = 0
    skipped: int = 0
    retried: int = 0  # ran more than one attempt
    deadline_missed: int = 0
    duration: Sketch = field(default_factory=Sketch)  # first start to end, runs that started
    queue_wait: Sketch = field(default_factory=Sketch)  # time QUEUED for a slot, runs that started
    fire_lag: Sketch = field(default_factory=Sketch)  # due to first launch, runs that started

    def add(self, tally: Tally) -> None:
        self.runs += 1
        setattr(self, tally.outcome, getattr(self, tally.outcome) + 1)
        self.retried += tally.attempts > 1
        self.deadline_missed += tally.deadline_missed
        for name in ("duration", "queue_wait", "fire_lag"):
            value = getattr(tally, f"{name}_ms")
            if value is not None:
                getattr(self, name).add(value)

    def merge(self, other: Aggregate) -> None:
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.duration.merge(other.duration)
        self.queue_wait.merge(other.queue_wait)
        self.fire_lag.merge(other.fire_lag)
        self.job_type = self.job_type or other.job_type
        self.job_name = self.job_name or other.job_name

    @property
    def decided(self) -> int:
        """Runs that succeeded or failed (skipped and cancelled runs are neither)."""
        return self.succeeded + self.failed + self.timed_out

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in _COUNTS if getattr(self, name)}
        out["t"] = self.job_type
        out["n"] = self.job_name
        for name in ("duration", "queue_wait", "fire_lag"):
            sketch = getattr(self, name)
            if sketch.count:
                out[name] = sketch.dump()
        return out

    @classmethod
    def load(cls, raw: dict[str, Any]) -> Aggregate:
        agg = cls(job_type=str(raw.get("t", "")), job_name=str(raw.get("n", "")))
        for name in _COUNTS:
            setattr(agg, name, int(raw.get(name, 0)))
        for name in ("duration", "queue_wait", "fire_lag"):
            if name in raw:
                setattr(agg, name, Sketch.load(raw[name]))
        return agg


@dataclass(frozen=True, slots=True)
class Tally:
    """One run's end, as analytics counts it."""

    tenant: str
    job_id: str
    end: str  # which end: `{run key}~{n}`, its n-th (a repaired pipeline run ends again)
    job_name: str
    job_type: str
    day: date  # the UTC day it ended
    outcome: str  # an Aggregate count: succeeded, failed, timed_out, cancelled, skipped
    attempts: int
    deadline_missed: bool
    duration_ms: float | None
    queue_wait_ms: float | None
    fire_lag_ms: float | None

    def dump(self) -> dict[str, Any]:
        return {
            "job_name": self.job_name,
            "job_type": self.job_type,
            "day": self.day.isoformat(),
            "outcome": self.outcome,
            "attempts": self.attempts,
            "deadline_missed": self.deadline_missed,
            "duration_ms": self.duration_ms,
            "queue_wait_ms": self.queue_wait_ms,
            "fire_lag_ms": self.fire_lag_ms,
        }

    @classmethod
    def load(cls, tenant: str, job_id: str, end: str, raw: dict[str, Any]) -> Tally:
        return cls(
            tenant=tenant,
            job_id=job_id,
            end=end,
            job_name=str(raw.get("job_name", "")),
            job_type=str(raw["job_type"]),
            day=date.fromisoformat(str(raw["day"])),
            outcome=str(raw["outcome"]),
            attempts=int(raw["attempts"]),
            deadline_missed=bool(raw["deadline_missed"]),
            duration_ms=raw.get("duration_ms"),
            queue_wait_ms=raw.get("queue_wait_ms"),
            fire_lag_ms=raw.get("fire_lag_ms"),
        )


_OUTCOMES = {
    "SUCCEEDED": "succeeded",
    "SUCCEEDED_WITH_FAILURES": "failed",
    "FAILED": "failed",
    "TIMED_OUT": "timed_out",
    "CANCELLED": "cancelled",
    "SKIPPED": "skipped",
}


def tally_of(run: Run, job_name: str, job_type: str, ended_at: datetime) -> Tally:
    """What `run`, ended at `ended_at`, adds to analytics."""
    started = run.transitions.get("RUNNING")
    launched = next((a.launched_at for a in run.attempts if a.launched_at), None) or run.transitions.get(
        "LAUNCHING"
    )
    queued = run.transitions.get("QUEUED")
    ran = started is not None
    wait = None
    if ran:
        wait = 0.0
        if queued is not None and run.admitted_at is not None and run.admitted_at >= queued:
            wait = (run.admitted_at - queued).total_seconds() * 1000
    return Tally(
        tenant=run.tenant,
        job_id=run.job_id,
        end=f"{run.run_key}~{len(run.repair_history)}",
        job_name=job_name,
        job_type=job_type,
        day=ended_at.date(),
        outcome=_OUTCOMES[run.state.value],
        attempts=len(run.attempts),
        deadline_missed=run.deadline_missed_at is not None,
        duration_ms=(ended_at - started).total_seconds() * 1000 if started else None,
        queue_wait_ms=wait,
        fire_lag_ms=max(0.0, (launched - run.scheduled_for).total_seconds() * 1000)
        if ran and launched
        else None,
    )


def folded(
    aggregates: dict[str, Aggregate], tallies: Iterable[Tally], key: Callable[[Tally], str]
) -> dict[str, Aggregate]:
    """`aggregates` (by `key`: job id or job type, for one tenant and day) with `tallies` added."""
    for tally in tallies:
        agg = aggregates.setdefault(key(tally), Aggregate(job_type=tally.job_type))
        agg.job_type = tally.job_type or agg.job_type
        agg.job_name = tally.job_name or agg.job_name
        agg.add(tally)
    return aggregates


@dataclass
class Group:
    """A report's line: one job type, job or tenant over the window, and day by day."""

    key: str
    tenant: str | None = None  # group_by job
    total: Aggregate = field(default_factory=Aggregate)
    days: dict[date, Aggregate] = field(default_factory=dict)

    def add(self, day: date, agg: Aggregate) -> None:
        """Take `agg` (which this group then owns) into its day."""
        mine = self.days.get(day)
        if mine is None:
            self.days[day] = agg
        else:
            mine.merge(agg)

    def totalled(self) -> Group:
        for agg in self.days.values():
            self.total.merge(agg)
        return self


def grouped(rows: Iterable[tuple[str, date, str, Aggregate]], group_by: str) -> tuple[list[Group], Group]:
    """The window's rows (tenant, day, job id, aggregate: each used once) by `group_by` (job_type,
    job, tenant), most runs first, and everything merged. Each aggregate is merged once into its
    group's day; a group's total is the sum of its days, and everything the sum of the groups."""
    groups: dict[str, Group] = {}
    for tenant, day, job_id, agg in rows:
        key = {"job_type": agg.job_type, "tenant": tenant}.get(group_by, job_id)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key, tenant if group_by == "job" else None)
        group.add(day, agg)
    everything = Group("all")
    for group in groups.values():
        group.totalled()
        everything.total.merge(group.total)
        for day, agg in group.days.items():
            everything.days.setdefault(day, Aggregate()).merge(agg)
    ordered = sorted(groups.values(), key=lambda g: (-g.total.runs, g.key))
    return ordered, everything
