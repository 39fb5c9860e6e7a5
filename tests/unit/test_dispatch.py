"""The dispatch policies (shared/domain/dispatch.py) and the simulator that compares them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.dispatch import metrics, simulate, workloads
from shared.domain.dispatch import (
    DEFAULT_EXPECTED,
    HISTORY,
    POLICIES,
    PoolState,
    Waiting,
    admit,
    default,
    edf,
    expected_duration,
    fifo,
    priority,
)
from shared.domain.run import Attempt, AttemptResult, Priority

T0 = datetime(2027, 1, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)


def run(
    key: str,
    *,
    at: int = 0,
    level: Priority = Priority.NORMAL,
    tenant: str = "a",
    expected: int = 10,
    deadline: int | None = None,
    slots: int = 1,
) -> Waiting:
    return Waiting(
        key=key,
        tenant=tenant,
        priority=level,
        enqueued_at=T0 + at * MIN,
        expected=expected * MIN,
        deadline_at=None if deadline is None else T0 + deadline * MIN,
        slots=slots,
    )


def keys(chosen: list[Waiting]) -> list[str]:
    return [r.key for r in chosen]


def test_admit_fills_free_slots_in_the_policy_s_order() -> None:
    waiting = [run("late", at=5), run("early", at=1), run("middle", at=3)]
    assert keys(admit(waiting, PoolState(slots=4, used=2), T0 + 10 * MIN, fifo)) == ["early", "middle"]
    assert admit(waiting, PoolState(slots=2, used=2), T0, fifo) == []


def test_admit_passes_over_a_tenant_at_its_limit_but_never_backfills_past_a_wide_run() -> None:
    waiting = [run("a1", at=1, tenant="a"), run("b1", at=2, tenant="b"), run("a2", at=3, tenant="a")]
    pool = PoolState(slots=4, tenant_limit=1, used=1, used_by_tenant={"a": 1})
    assert keys(admit(waiting, pool, T0, fifo)) == ["b1"]
    wide = [run("wide", at=1, slots=3), run("narrow", at=2)]
    assert keys(admit(wide, PoolState(slots=4, used=2), T0, fifo)) == []


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(fifo, ["low-old", "urgent", "deadline"], id="fifo"),
        pytest.param(priority, ["urgent", "deadline", "low-old"], id="priority"),
        pytest.param(edf, ["deadline", "low-old", "urgent"], id="edf"),
    ],
)
def test_simple_policies_order_as_named(policy: object, expected: list[str]) -> None:
    waiting = [
        run("low-old", at=0, level=Priority.LOW),
        run("urgent", at=2, level=Priority.URGENT),
        run("deadline", at=3, deadline=40),
    ]
    assert keys(admit(waiting, PoolState(slots=3), T0 + 5 * MIN, policy)) == expected  # type: ignore[arg-type]


def test_default_lets_a_long_waiting_low_run_ahead_of_a_fresh_urgent_one() -> None:
    old = run("low", at=0, level=Priority.LOW, expected=10)  # patience: 8 x 10 minutes
    fresh = run("urgent", at=90, level=Priority.URGENT, expected=10)
    assert keys(admit([fresh, old], PoolState(slots=1), T0 + 90 * MIN, default)) == ["low"]
    early = run("low", at=80, level=Priority.LOW, expected=10)
    assert keys(admit([fresh, early], PoolState(slots=1), T0 + 90 * MIN, default)) == ["urgent"]


def test_default_puts_a_lost_deadline_after_one_that_can_still_be_met() -> None:
    lost = run("lost", at=0, deadline=15, expected=10)  # at minute 10 it can no longer finish by 15
    tight = run("tight", at=5, deadline=30, expected=10)
    assert keys(admit([lost, tight], PoolState(slots=1), T0 + 10 * MIN, default)) == ["tight"]


@pytest.mark.parametrize("name", list(POLICIES))
def test_the_simulator_never_runs_more_than_the_pool_or_a_tenant_allows(name: str) -> None:
    workload = next(w for w in workloads(3) if w.name == "overload")
    outcomes = simulate(workload, POLICIES[name])
    assert len(outcomes) == len(workload.tasks)
    events = sorted(
        [(o.start, 1, o.task.tenant) for o in outcomes] + [(o.end, -1, o.task.tenant) for o in outcomes]
    )
    running, by_tenant = 0, dict.fromkeys({o.task.tenant for o in outcomes}, 0)
    for _, step, tenant in events:  # ends sort before starts at the same instant
        running += step
        by_tenant[tenant] += step
        assert running <= workload.slots
        assert workload.tenant_limit is None or by_tenant[tenant] <= workload.tenant_limit


def test_on_overload_default_halves_fifo_s_misses_beats_priority_and_starves_nobody() -> None:
    overload = next(w for w in workloads(7) if w.name == "overload")
    found = {name: metrics(simulate(overload, POLICIES[name])) for name in ("fifo", "priority", "default")}
    assert found["default"]["miss_rate"] <= found["fifo"]["miss_rate"] / 2
    assert found["default"]["miss_rate"] < found["priority"]["miss_rate"]
    assert found["default"]["starved"] == 0


def attempt(minutes: float, *, ended: int, result: str = "SUCCEEDED", started: bool = True) -> Attempt:
    end = T0 + ended * MIN
    begin = end - timedelta(minutes=minutes)
    return Attempt(
        number=1,
        launched_at=begin,
        started_at=begin if started else None,
        ended_at=end,
        result=AttemptResult(result),
    )


def test_expected_duration_is_a_robust_percentile_of_recent_successes() -> None:
    assert expected_duration([]) == DEFAULT_EXPECTED
    two = [attempt(10, ended=1), attempt(12, ended=2)]
    assert expected_duration(two, timedelta(minutes=5)) == timedelta(minutes=5)  # too little history
    history = [attempt(m, ended=i) for i, m in enumerate([10, 11, 12, 13, 300])]  # one odd, very long run
    assert expected_duration(history) == timedelta(minutes=13)
    failures = [attempt(1, ended=100 + i, result="FAILED") for i in range(10)]
    assert expected_duration(history + failures) == timedelta(minutes=13)  # failures say nothing
    old_slow = [attempt(60, ended=i) for i in range(30)]
    recent_fast = [attempt(5, ended=100 + i, started=False) for i in range(HISTORY)]
    assert expected_duration(old_slow + recent_fast) == timedelta(minutes=5)  # only the last 20 count
