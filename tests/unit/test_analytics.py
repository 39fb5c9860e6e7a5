"""Analytics, the pure part: the sketch's percentiles stay within 2% of the exact ones (by rank),
merged or not; aggregates round-trip through storage; a run's end becomes a tally."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.analytics import ACCURACY, Aggregate, Sketch, grouped, tally_of
from shared.domain.run import Attempt, Run, RunState


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_are_within_two_percent_merged_or_not(seed: int) -> None:
    rng = random.Random(seed)
    parts = [[rng.lognormvariate(11, 1.5) for _ in range(rng.randint(1, 400))] for _ in range(7)]
    merged = Sketch()
    for values in parts:
        sketch = Sketch()
        for v in values:
            sketch.add(v)
        merged.merge(Sketch.load(sketch.dump()))  # as stored and read back
    values = [v for part in parts for v in part]
    assert merged.count == len(values)
    for q in (0.0, 0.5, 0.9, 0.95, 0.99, 1.0):
        estimate = merged.quantile(q)
        assert estimate is not None and abs(estimate - exact(values, q)) <= ACCURACY * exact(values, q)


def test_zeros_and_empties() -> None:
    s = Sketch()
    assert s.quantile(0.5) is None
    for v in (0.0, 0.0, 0.0, 5000.0):
        s.add(v)
    assert s.quantile(0.5) == 0.0 and abs((s.quantile(1.0) or 0) - 5000) <= 100


NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def ended(state: RunState, **kw: object) -> Run:
    r = Run.manual(tenant="t", job_id="j", run_key="m-01J0Z0000000000000000000AA", job_version=1, now=NOW)
    return r.model_copy(update={"state": state, **kw})


def test_a_runs_end_becomes_a_tally() -> None:
    t = {
        "SCHEDULED": NOW,
        "QUEUED": NOW + timedelta(seconds=5),
        "LAUNCHING": NOW + timedelta(seconds=65),
        "RUNNING": NOW + timedelta(seconds=66),
    }
    run = ended(
        RunState.FAILED,
        transitions=t,
        admitted_at=NOW + timedelta(seconds=65),
        attempts=[Attempt(number=1, launched_at=NOW + timedelta(seconds=65)), Attempt(number=2)],
    )
    tally = tally_of(run, "train", "model_training", NOW + timedelta(minutes=10, seconds=6))
    assert tally.outcome == "failed" and tally.attempts == 2 and tally.end == f"{run.run_key}~0"
    assert tally.duration_ms == 540_000 and tally.queue_wait_ms == 60_000 and tally.fire_lag_ms == 65_000
    skipped = tally_of(ended(RunState.SKIPPED), "train", "model_training", NOW)
    assert skipped.duration_ms is None and skipped.queue_wait_ms is None and skipped.outcome == "skipped"


def test_aggregates_round_trip_and_group() -> None:
    a = Aggregate(job_type="model_training", job_name="train")
    run = ended(RunState.SUCCEEDED, transitions={"RUNNING": NOW})
    a.add(tally_of(run, "train", "model_training", NOW + timedelta(minutes=1)))
    back = Aggregate.load(a.dump())
    assert back.dump() == a.dump() and back.succeeded == 1 and back.decided == 1
    day = NOW.date()
    groups, total = grouped([("t", day, "j1", back), ("t", day, "j2", Aggregate.load(a.dump()))], "job_type")
    assert [g.key for g in groups] == ["model_training"] and total.total.runs == 2


def test_summed_sketches_are_merged_sketches_and_never_overflow_silently() -> None:
    rng = random.Random(7)
    parts = []
    for _ in range(9):
        s = Sketch()
        for _ in range(rng.randint(0, 300)):
            s.add(rng.choice([0.0, rng.lognormvariate(9, 2)]))
        parts.append(s)
    merged = Sketch()
    for s in parts:
        merged.merge(s)
    summed = Sketch.summed(parts)
    assert summed.counts == merged.counts and (summed.offset, summed.zero, summed.count) == (
        merged.offset,
        merged.zero,
        merged.count,
    )
    assert summed.quantiles((0.0, 0.5, 0.95, 1.0)) == merged.quantiles((0.0, 0.5, 0.95, 1.0))
    big = Sketch.load([0, 10, [2**31, 7]])
    with pytest.raises(OverflowError):
        Sketch.summed([big, big])  # a bucket of 32 bits would carry into the next one
    with pytest.raises(OverflowError):
        big.merge(Sketch.load([0, 11, [2**31]]))


def test_aggregate_rows_round_trip_in_version_2_and_version_1_rows_still_read() -> None:
    """What a report reads back equals what was counted, figures included: version 2 rows (binary
    buckets, 1, 2 or 4 bytes each, and the reported percentiles' buckets), and version 1 rows
    ({job: Aggregate.dump()}) as written before."""
    import json

    from shared.adapters.analytics_table import _aggregates, _props
    from shared.adapters.table import Row
    from shared.api.schemas import Figures

    rng = random.Random(3)
    aggs = {}
    for j, runs in enumerate((1, 40, 700, 70_000)):  # buckets of up to 1, 1, 2 and 3 bytes
        a = Aggregate(job_type="model_training", job_name=f"job-{j}")
        for _ in range(runs):
            a.runs += 1
            a.succeeded += 1
            a.duration.add(rng.choice([5_000.0, rng.lognormvariate(11, 1)]))
            a.queue_wait.add(0.0)
        aggs[f"j{j}"] = a
    a = Aggregate(job_type="pipeline", job_name="never started", runs=3, skipped=3)
    aggs["j9"] = a
    v2 = Row("s00", "a~t~2026-06-01", _props(aggs))
    v1_text = json.dumps({key: agg.dump() for key, agg in aggs.items()})
    v1 = Row("s00", "a~t~2026-06-01", {"d0": v1_text, "parts": 1, "schema_version": 1})
    for row in (v2, v1):
        back = _aggregates(row)
        assert list(back) == list(aggs)
        for key, agg in aggs.items():
            assert back[key].dump() == agg.dump()
            assert Figures.values(back[key]) == Figures.values(agg)
    stored = _aggregates(v2)
    assert all(agg.known is not None for agg in stored.values())  # the percentiles came with them
    assert [agg.known for agg in stored.values()] == [agg.ranked() for agg in aggs.values()]
    assert _aggregates(Row("s00", "a~t~2026-06-01", _props({}))) == {}
