"""Analytics: what each run's end adds to its job's day, and how days add up to a window.

A run's end is summed once into its job's aggregate for the (UTC) day it ended: counts by final
state, retries, deadline misses, and three mergeable sketches (duration, queue wait, fire lag).
Aggregates merge by addition, so a window is the sum of its days and a group (job type, tenant)
the sum of its jobs: a request reads aggregates, never the run history.

The sketch is DDSketch's idea (Masson et al., VLDB 2019): a value x > 0 falls in bucket
ceil(log_gamma(x)), and the bucket's estimate 2 gamma^i / (gamma + 1) is within `ACCURACY` of
every value in it, so any percentile of a merged sketch is within 2% of the exact one (by rank).
A sketch's buckets are packed into one integer, 32 bits each, so summing sketches is adding
integers, at C speed.
"""

from __future__ import annotations

import bisect
import itertools
import math
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.domain.run import Run

ACCURACY = 0.02
_GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
MAX_COUNTED = 98  # ends counted in one transaction (with their day's two aggregates: Table Storage's 100)
_MIN_MS = 1.0  # values below 1 ms (and zero waits) go to the zero bucket
BUCKET_BYTES = 4  # per bucket in a packed sketch: a sketch holds fewer than 2**32 values of 1 ms or more
_BITS = 8 * BUCKET_BYTES
_MOST = (1 << _BITS) - 1
_TYPECODE = "I"  # an array of unsigned 32-bit integers
assert array(_TYPECODE).itemsize == BUCKET_BYTES


def _checked(values: int) -> int:
    """`values` (of 1 ms or more, in one sketch), if no bucket of 32 bits can overflow with them."""
    if values > _MOST:
        raise OverflowError(f"a sketch holds at most {_MOST} values of 1 ms or more, not {values}")
    return values


ZERO = -1  # the bucket of values below 1 ms (the others are ceil(log_gamma(ms)) >= 0)


def bucket_value(bucket: int | None) -> float | None:
    """What a bucket's values are reported as (ms): within ACCURACY of each of them."""
    if bucket is None:
        return None
    return 0.0 if bucket == ZERO else 2 * _GAMMA**bucket / (_GAMMA + 1)


@dataclass(eq=False, slots=True)
class Sketch:
    """Counts of values (in ms) in consecutive buckets `offset` .. `offset + size - 1`, packed in one
    integer: bucket `offset + i`'s count is bits [32 i, 32 i + 32) of `packed`. `zero`: values below
    1 ms; `count`: every value. Packed, a merge is one shift and one addition (at C speed, whatever
    the number of buckets), not a pass over a list. 32 bits a bucket keep the integers small (a
    report by job unpacks and adds thousands); no bucket can overflow while the values of 1 ms or
    more number fewer than 2**32, which `_checked` makes sure of (an error, never a wrong figure)."""

    packed: int = 0
    offset: int = 0
    size: int = 0
    zero: int = 0
    count: int = 0

    def add(self, ms: float) -> None:
        self.count += 1
        if ms < _MIN_MS:
            self.zero += 1
            return
        _checked(self.count - self.zero)
        i = math.ceil(math.log(ms) / _LOG_GAMMA)
        if not self.size:
            self.packed, self.offset, self.size = 1, i, 1
            return
        if i < self.offset:
            self.packed <<= _BITS * (self.offset - i)
            self.size += self.offset - i
            self.offset = i
        self.size = max(self.size, i - self.offset + 1)
        self.packed += 1 << (_BITS * (i - self.offset))

    def merge(self, other: Sketch) -> None:
        _checked(self.count - self.zero + other.count - other.zero)
        self.zero += other.zero
        self.count += other.count
        if not other.size:
            return
        if not self.size:
            self.packed, self.offset, self.size = other.packed, other.offset, other.size
            return
        lo = min(self.offset, other.offset)
        top = max(self.offset + self.size, other.offset + other.size)
        self.packed = (self.packed << _BITS * (self.offset - lo)) + (
            other.packed << _BITS * (other.offset - lo)
        )
        self.offset, self.size = lo, top - lo

    @property
    def counts(self) -> list[int]:
        """Bucket `offset + i`'s count at i."""
        return array(_TYPECODE, self.packed.to_bytes(BUCKET_BYTES * self.size, sys.byteorder)).tolist()

    def ranked(self, qs: Sequence[float]) -> list[int | None]:
        """The buckets at ranks qs (0..1) (the "lower" percentile of the values): `ZERO` for values
        below 1 ms, None when empty. `bucket_value` turns them into ms."""
        total = self.count
        if total == 0:
            return [None for _ in qs]
        buckets = memoryview(self.packed.to_bytes(BUCKET_BYTES * self.size, sys.byteorder)).cast("I")
        cumulative = list(itertools.accumulate(buckets, initial=self.zero))  # [0]: the zero bucket
        last = self.size - 1
        out: list[int | None] = []
        for q in qs:
            rank = q * (total - 1)
            if rank < self.zero:
                out.append(ZERO)
            else:
                out.append(self.offset + min(bisect.bisect_right(cumulative, rank, 1) - 1, last))
        return out

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """The values at ranks qs (0..1) in ms, each within ACCURACY of the exact one (the "lower"
        percentile of the values); None when empty."""
        return [bucket_value(b) for b in self.ranked(qs)]

    @classmethod
    def summed(cls, sketches: Iterable[Sketch]) -> Sketch:
        """A new sketch, the sum of `sketches`: one shifted addition each."""
        packed = offset = size = zero = count = 0
        for s in sketches:
            zero += s.zero
            count += s.count
            if not s.size:
                continue
            if not size:
                packed, offset, size = s.packed, s.offset, s.size
                continue
            if s.offset >= offset:
                packed += s.packed << _BITS * (s.offset - offset)
            else:
                packed = (packed << _BITS * (offset - s.offset)) + s.packed
                size += offset - s.offset
                offset = s.offset
            size = max(size, s.offset + s.size - offset)
        _checked(count - zero)
        return cls(packed, offset, size, zero, count)

    def quantile(self, q: float) -> float | None:
        return self.quantiles([q])[0]

    def dump(self) -> list[Any]:
        """[zero, offset, counts]: stored rows of schema version 1 hold sketches so."""
        return [self.zero, self.offset, self.counts]

    @classmethod
    def load(cls, raw: list[Any]) -> Sketch:
        zero, offset, counts = int(raw[0]), int(raw[1]), raw[2]
        packed = int.from_bytes(array(_TYPECODE, counts).tobytes(), sys.byteorder)
        return cls(packed, offset, len(counts), zero, zero + _checked(sum(counts)))


# What a report shows of each sketch: p50 and p95 of duration and queue wait, p95 of fire lag.
# Stored aggregates carry them (shared/adapters/analytics_table.py): change these, change its VERSION.
PERCENTILES = (("duration", (0.5, 0.95)), ("queue_wait", (0.5, 0.95)), ("fire_lag", (0.95,)))
_COUNTS = ("runs", "succeeded", "failed", "timed_out", "cancelled", "skipped", "retried", "deadline_missed")


@dataclass(slots=True)
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
    known: tuple[int | None, ...] | None = field(default=None, repr=False, compare=False)  # ranked()

    def add(self, tally: Tally) -> None:
        self.known = None
        self.runs += 1
        setattr(self, tally.outcome, getattr(self, tally.outcome) + 1)
        self.retried += tally.attempts > 1
        self.deadline_missed += tally.deadline_missed
        for name in ("duration", "queue_wait", "fire_lag"):
            value = getattr(tally, f"{name}_ms")
            if value is not None:
                getattr(self, name).add(value)

    @classmethod
    def summed(cls, aggs: Sequence[Aggregate]) -> Aggregate:
        """A new aggregate, the sum of `aggs` (job type and name: the first given)."""
        out = cls(
            next((a.job_type for a in aggs if a.job_type), ""),
            next((a.job_name for a in aggs if a.job_name), ""),
            duration=Sketch.summed([a.duration for a in aggs]),
            queue_wait=Sketch.summed([a.queue_wait for a in aggs]),
            fire_lag=Sketch.summed([a.fire_lag for a in aggs]),
        )
        for a in aggs:
            out.runs += a.runs
            out.succeeded += a.succeeded
            out.failed += a.failed
            out.timed_out += a.timed_out
            out.cancelled += a.cancelled
            out.skipped += a.skipped
            out.retried += a.retried
            out.deadline_missed += a.deadline_missed
        return out

    def ranked(self) -> tuple[int | None, ...]:
        """The buckets of the percentiles a report shows (`PERCENTILES`), worked out once: an
        aggregate read from storage brings them (a report by job shows every job's every day)."""
        if self.known is None:
            self.known = tuple(b for name, qs in PERCENTILES for b in getattr(self, name).ranked(qs))
        return self.known

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


def _days(aggs: dict[date, list[Aggregate]]) -> dict[date, Aggregate]:
    return {day: parts[0] if len(parts) == 1 else Aggregate.summed(parts) for day, parts in aggs.items()}


def grouped(rows: Iterable[tuple[str, date, str, Aggregate]], group_by: str) -> tuple[list[Group], Group]:
    """The window's rows (tenant, day, job id, aggregate: each used once) by `group_by` (job_type,
    job, tenant), most runs first, and everything summed. A group's day is the sum of its
    aggregates, its total the sum of its days; everything's days are the sums of the groups' days,
    its total the sum of its days. Sums are taken at once (`Aggregate.summed`), not pairwise."""
    parts: dict[str, tuple[str, dict[date, list[Aggregate]]]] = {}
    for tenant, day, job_id, agg in rows:
        key = agg.job_type if group_by == "job_type" else tenant if group_by == "tenant" else job_id
        held = parts.get(key)
        if held is None:
            held = parts[key] = (tenant, {})
        held[1].setdefault(day, []).append(agg)
    groups = []
    everywhere: dict[date, list[Aggregate]] = {}
    for key, (tenant, aggs) in parts.items():
        days = _days(aggs)
        groups.append(
            Group(key, tenant if group_by == "job" else None, Aggregate.summed(list(days.values())), days)
        )
        for day, agg in days.items():
            everywhere.setdefault(day, []).append(agg)
    days = _days(everywhere)
    everything = Group("all", None, Aggregate.summed(list(days.values())), days)
    groups.sort(key=lambda g: (-g.total.runs, g.key))
    return groups, everything
