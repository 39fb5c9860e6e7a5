"""Analytics (issue 14): every run's end is counted once in its job's day, in the same shard, and a
report is the sum of days. Checked against the run rows themselves (recomputed here from each
run's transitions, independently of the code that tallies them), on memory tables and Azurite,
through the whole host loop; and when a handler dies between a run's end and its count."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta
from typing import Any

from shared.domain.analytics import ACCURACY
from shared.domain.run import FailureKind, Run, RunState
from tests.conftest import TableFactory
from tests.fakes.clock import FixedClock
from tests.fakes.databricks import FakeDatabricks, FakeOutcome
from tests.world import T0, World

FAIL = FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR")


def exact(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def close(estimate: float | None, value: float | None) -> bool:
    if value is None or estimate is None:
        return estimate == value
    return abs(estimate - value) <= ACCURACY * value + 0.001  # seconds: within 2% (and a millisecond)


def recomputed(runs: list[Run]) -> dict[str, Any]:
    """The figures, from the runs as stored."""
    ended = [r for r in runs if r.state.is_terminal and r.parent is None]
    states = Counter(r.state for r in ended)
    started = [r for r in ended if "RUNNING" in r.transitions]
    durations = [(r.transitions[r.state.value] - r.transitions["RUNNING"]).total_seconds() for r in started]
    decided = states[RunState.SUCCEEDED] + states[RunState.FAILED] + states[RunState.TIMED_OUT]
    return {
        "runs": len(ended),
        "succeeded": states[RunState.SUCCEEDED],
        "failed": states[RunState.FAILED] + states[RunState.SUCCEEDED_WITH_FAILURES],
        "timed_out": states[RunState.TIMED_OUT],
        "cancelled": states[RunState.CANCELLED],
        "skipped": states[RunState.SKIPPED],
        "success_rate": round(states[RunState.SUCCEEDED] / decided, 4) if decided else None,
        "retry_rate": round(sum(len(r.attempts) > 1 for r in started) / len(started), 4) if started else None,
        "durations": durations,
        "deadline_misses": sum(r.deadline_missed_at is not None for r in ended),
    }


def agrees(out: Any, runs: list[Run]) -> None:
    want = recomputed(runs)
    for name in ("runs", "succeeded", "failed", "timed_out", "cancelled", "skipped", "deadline_misses"):
        assert getattr(out, name) == want[name], name
    assert out.success_rate == want["success_rate"] and out.retry_rate == want["retry_rate"]
    assert close(out.duration_p50_s, exact(want["durations"], 0.5))
    assert close(out.duration_p95_s, exact(want["durations"], 0.95))


class ByJob(FakeDatabricks):
    """Each Databricks job's runs end as its own script says, in turn (the last repeats)."""

    def __init__(self, clock: Any, scripts: dict[int, list[FakeOutcome]]) -> None:
        super().__init__(clock)
        self.scripts = scripts
        self.seen: Counter[int] = Counter()

    def _start(self, request: Any) -> Any:
        job_id = request.task.job_id
        script = self.scripts[job_id]
        self.outcomes.appendleft(script[min(self.seen[job_id], len(script) - 1)])
        self.seen[job_id] += 1
        return super()._start(request)


def task(job_id: int) -> dict[str, Any]:
    return {"kind": "databricks_job", "job_id": job_id}


def busy_world(table_factory: TableFactory) -> tuple[World, list[Any]]:
    clock = FixedClock(T0)
    scripts = {
        1: [FakeOutcome.SUCCESS],
        2: [FAIL, FakeOutcome.SUCCESS, FAIL, FAIL, FakeOutcome.SUCCESS],  # retried: some recover
        3: [FakeOutcome.HANG, FakeOutcome.SUCCESS],  # times out, or finishes late
        4: [FakeOutcome.SUCCESS],
    }
    w = World(table_factory, databricks=ByJob(clock, scripts), clock=clock)
    jobs = [
        w.job(name="ok", task=task(1), schedule={"cron": "*/10 * * * *"}),
        w.job(
            name="flaky",
            job_type="data_processing",
            task=task(2),
            schedule={"cron": "*/15 * * * *"},
            retry={"max_attempts": 2, "initial_delay": "PT1M", "retry_on": "any"},
        ),
        w.job(
            name="slow",
            job_type="data_processing",
            task=task(3),
            schedule={"cron": "*/20 * * * *"},
            timeout="PT3M",
            deadline="PT1M",
        ),
        w.job("team-b", name="other tenant", task=task(4), schedule={"cron": "*/30 * * * *"}),
    ]
    return w, jobs


def test_a_report_agrees_with_the_runs_it_counts(table_factory: TableFactory) -> None:
    w, jobs = busy_world(table_factory)
    w.run_until(T0 + timedelta(hours=3))
    mine = [j for j in jobs if j.tenant == "team-a"]
    runs = {j.id: w.runs(j) for j in jobs}
    first, last, groups, total = w.s.analytics_service.report(["team-a"], timedelta(days=7), "job")
    assert (last - first).days == 6 and last == w.clock.now().date()
    from shared.api.schemas import GroupOut

    assert {g.key for g in groups} == {j.id for j in mine}  # team-b's job is not in team-a's report
    for group in groups:
        agrees(GroupOut.of_group(group, True), runs[group.key])
        assert GroupOut.of_group(group, True).name == next(
            j.definition.name for j in mine if j.id == group.key
        )
    agrees(GroupOut.of_group(total, False), [r for j in mine for r in runs[j.id]])
    assert recomputed(runs[mine[1].id])["failed"] > 0 and GroupOut.of_group(total, False).retry_rate
    assert (
        recomputed(runs[mine[2].id])["timed_out"] > 0 and recomputed(runs[mine[2].id])["deadline_misses"] > 0
    )
    _, _, by_type, _ = w.s.analytics_service.report(["team-a"], timedelta(days=7), "job_type")
    assert {g.key: g.total.runs for g in by_type} == {
        "model_training": recomputed(runs[mine[0].id])["runs"],
        "data_processing": recomputed(runs[mine[1].id] + runs[mine[2].id])["runs"],
    }
    _, _, by_tenant, _ = w.s.analytics_service.report(["team-a", "team-b"], timedelta(days=1), "tenant")
    assert [g.key for g in by_tenant] == ["team-a", "team-b"]
    assert by_tenant[1].total.runs == recomputed(runs[jobs[3].id])["runs"]


def test_an_end_left_uncounted_by_a_crash_is_counted_once_by_the_watchdog(
    table_factory: TableFactory,
) -> None:
    w = World(table_factory)
    job = w.job(schedule={"cron": "*/5 * * * *", "end_at": "2026-06-01T12:40:00Z"})
    counted: list[int] = []
    original = w.s.analytics.count

    def crash_before_counting(shard: str, tallies: Any) -> bool:
        if len(counted) < 3:
            counted.append(len(tallies))
            raise RuntimeError("the host died before counting the end")
        return original(shard, tallies)

    w.s.analytics.count = crash_before_counting  # type: ignore[method-assign]
    w.s.watchdog.due_check_minutes = 60  # its count of leftovers waits for the top of the hour
    w.run_until(T0 + timedelta(minutes=38))
    assert counted == [1, 1, 1]
    pending = sum(len(w.s.analytics.pending(shard)) for shard in w.s.due_index.shards)
    assert pending == 3  # recorded with their ends, not yet counted
    w.s.watchdog.due_check_minutes = 5
    w.run_until(T0 + timedelta(minutes=50))  # the watchdog counts what is left, at its next count
    assert sum(len(w.s.analytics.pending(shard)) for shard in w.s.due_index.shards) == 0
    _, _, [group], _ = w.s.analytics_service.report(["team-a"], timedelta(days=1), "job")
    ended = recomputed(w.runs(job))
    assert group.total.runs == ended["runs"] == group.total.succeeded == len(w.runs(job)) >= 7
    # counting again what was counted changes nothing: the pending rows are gone
    shard = w.shard(job)
    from shared.domain.analytics import tally_of

    again = tally_of(w.runs(job)[0], "train", "model_training", w.clock.now())
    assert original(shard, [again]) is False
    _, _, [same], _ = w.s.analytics_service.report(["team-a"], timedelta(days=1), "job")
    assert same.total.runs == ended["runs"]


def test_windows_and_groupings_are_checked() -> None:
    import pytest

    from shared.domain.errors import InvalidInput
    from tests.fakes.memory_table import InMemoryTable

    w = World(InMemoryTable)
    for bad in (timedelta(hours=12), timedelta(days=91), timedelta(days=1, hours=1), timedelta(0)):
        with pytest.raises(InvalidInput):
            w.s.analytics_service.report(["team-a"], bad, "job")
    with pytest.raises(InvalidInput):
        w.s.analytics_service.report(["team-a"], timedelta(days=7), "pool")
    assert w.s.analytics_service.report(["team-a"], timedelta(days=90), "tenant")[2] == []


def test_the_most_ends_one_count_takes_fit_one_transaction(table_factory: TableFactory) -> None:
    """`MAX_COUNTED` ends, their day's two aggregates and the ends' deletes: one transaction (at
    most 100 writes); then the day reads back as counted, whichever row version it was."""
    from datetime import date

    from shared.adapters.analytics_table import AnalyticsTable, tally_write
    from shared.domain.analytics import MAX_COUNTED, Tally

    table = table_factory("analytics")
    table.create()
    day = date(2026, 6, 1)
    tallies = [
        Tally("team-a", f"j{i % 3}", f"m-{i:04d}~0", f"job {i % 3}", "pipeline", day, "succeeded", 1, False,
              1000.0 + i, 0.0, 250.0)
        for i in range(MAX_COUNTED + 1)
    ]  # fmt: skip
    for start in range(0, len(tallies), 50):
        table.write("s00", [tally_write(t) for t in tallies[start : start + 50]])
    analytics = AnalyticsTable(table, 1)
    assert analytics.count("s00", tallies[:MAX_COUNTED]) and analytics.count("s00", tallies[MAX_COUNTED:])
    assert analytics.pending("s00") == []
    by_job = list(analytics.window(["team-a"], day, day))
    assert sorted(key for _, _, key, _ in by_job) == ["j0", "j1", "j2"]
    assert sum(agg.runs for *_, agg in by_job) == MAX_COUNTED + 1
    [(_, _, kind, by_type)] = list(analytics.window(["team-a"], day, day, by_job=False))
    assert kind == "pipeline" and by_type.runs == by_type.duration.count == MAX_COUNTED + 1
