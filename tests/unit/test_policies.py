"""The scheduler's decisions as pure functions: overlap, misfire, the end of an attempt, the watchdog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.job import MisfirePolicy, OverlapPolicy, RetryPolicy
from shared.domain.policies import (
    CatchUpBounds,
    Ending,
    OverlapVerdict,
    WatchAction,
    WatchPolicy,
    attempt_ending,
    given_up_state,
    misfire_verdict,
    overlap_verdict,
    watch_action,
    watch_at,
)
from shared.domain.run import AttemptResult, FailureKind, Intent, IntentKind, Run, RunState, SkipReason

T = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
POLICY = WatchPolicy(grace=2 * MIN, run_check=60 * MIN, max_repairs=5)


def run(state: RunState, **fields: Any) -> Run:
    base = Run.occurrence(tenant="t", job_id="J", scheduled_for=T, job_version=1, now=T, shard="s00")
    return base.model_copy(update={"state": state, **fields})


def intent(kind: IntentKind, due: datetime, **fields: Any) -> Intent:
    return Intent(kind=kind, attempt=1, due_at=due, message_id="J.s-1.a1.x", **fields)


@pytest.mark.parametrize(
    ("policy", "others", "verdict"),
    [
        pytest.param(OverlapPolicy.SKIP, [], OverlapVerdict.GO, id="nothing-active-goes"),
        pytest.param(
            OverlapPolicy.SKIP, [RunState.SUCCEEDED], OverlapVerdict.GO, id="ended-runs-do-not-block"
        ),
        pytest.param(OverlapPolicy.SKIP, [RunState.RUNNING], OverlapVerdict.SKIP, id="skip"),
        pytest.param(
            OverlapPolicy.SKIP, [RunState.CANCELLING], OverlapVerdict.SKIP, id="a-stopping-run-is-active"
        ),
        pytest.param(OverlapPolicy.ALLOW, [RunState.RUNNING], OverlapVerdict.GO, id="allow"),
        pytest.param(OverlapPolicy.BUFFER_ONE, [RunState.RUNNING], OverlapVerdict.QUEUE, id="buffer-one"),
        pytest.param(
            OverlapPolicy.BUFFER_ONE,
            [RunState.RUNNING, RunState.QUEUED],
            OverlapVerdict.SKIP,
            id="buffer-one-holds-one",
        ),
        pytest.param(
            OverlapPolicy.CANCEL_PREVIOUS, [RunState.RETRY_WAIT], OverlapVerdict.CANCEL_PREVIOUS, id="cancel"
        ),
    ],
)
def test_overlap_verdicts(policy: OverlapPolicy, others: list[RunState], verdict: OverlapVerdict) -> None:
    assert overlap_verdict(policy, [run(s) for s in others]) is verdict


BOUNDS = CatchUpBounds(window_start=T - 30 * MIN, cap_floor=T - 10 * MIN)


@pytest.mark.parametrize(
    ("policy", "at", "following", "verdict"),
    [
        pytest.param(MisfirePolicy.SKIP, T, None, None, id="on-time-runs"),
        pytest.param(MisfirePolicy.SKIP, T - 5 * MIN, T, SkipReason.MISSED, id="skip"),
        pytest.param(
            MisfirePolicy.FIRE_ONCE, T - 10 * MIN, T - 5 * MIN, SkipReason.MISSED, id="once-not-last"
        ),
        pytest.param(MisfirePolicy.FIRE_ONCE, T - 5 * MIN, T + 5 * MIN, None, id="once-the-last-missed"),
        pytest.param(
            MisfirePolicy.CATCH_UP, T - 40 * MIN, T, SkipReason.MISSED, id="catch-up-outside-window"
        ),
        pytest.param(
            MisfirePolicy.CATCH_UP, T - 20 * MIN, T, SkipReason.CATCH_UP_LIMIT, id="catch-up-over-cap"
        ),
        pytest.param(MisfirePolicy.CATCH_UP, T - 5 * MIN, T, None, id="catch-up-runs"),
    ],
)
def test_misfire_verdicts(
    policy: MisfirePolicy, at: datetime, following: datetime | None, verdict: SkipReason | None
) -> None:
    assert misfire_verdict(policy, at, following, T - MIN, BOUNDS) == verdict


RETRY = RetryPolicy(max_attempts=3, initial_delay=MIN, backoff_coefficient=2.0, jitter=0.0)


@pytest.mark.parametrize(
    ("state", "result", "failure", "attempt", "ending"),
    [
        pytest.param(RunState.RUNNING, AttemptResult.SUCCEEDED, None, 1, Ending(RunState.SUCCEEDED), id="ok"),
        pytest.param(
            RunState.RUNNING,
            AttemptResult.FAILED,
            FailureKind.USER,
            1,
            Ending(RunState.RETRY_WAIT, MIN),
            id="retry",
        ),
        pytest.param(
            RunState.RUNNING,
            AttemptResult.FAILED,
            FailureKind.USER,
            2,
            Ending(RunState.RETRY_WAIT, 2 * MIN),
            id="backoff",
        ),
        pytest.param(
            RunState.RUNNING, AttemptResult.FAILED, FailureKind.USER, 3, Ending(RunState.FAILED), id="spent"
        ),
        pytest.param(
            RunState.RUNNING,
            AttemptResult.FAILED,
            FailureKind.LAUNCH_ERROR,
            1,
            Ending(RunState.FAILED),
            id="a-refused-launch-is-not-retried",
        ),
        pytest.param(
            RunState.RUNNING,
            AttemptResult.TIMED_OUT,
            FailureKind.TIMEOUT,
            1,
            Ending(RunState.TIMED_OUT),
            id="timeout",
        ),
        pytest.param(
            RunState.TIMING_OUT,
            AttemptResult.CANCELLED,
            None,
            1,
            Ending(RunState.TIMED_OUT),
            id="our-own-cancel-of-a-timeout-is-a-timeout",
        ),
        pytest.param(
            RunState.CANCELLING,
            AttemptResult.SUCCEEDED,
            None,
            1,
            Ending(RunState.SUCCEEDED),
            id="a-run-that-won-the-race-with-its-cancel-succeeded",
        ),
        pytest.param(
            RunState.CANCELLING,
            AttemptResult.FAILED,
            FailureKind.USER,
            1,
            Ending(RunState.CANCELLED),
            id="a-cancelled-run-is-never-retried",
        ),
        pytest.param(
            RunState.RUNNING,
            AttemptResult.CANCELLED,
            None,
            1,
            Ending(RunState.CANCELLED),
            id="cancelled-in-databricks",
        ),
    ],
)
def test_attempt_endings(
    state: RunState, result: AttemptResult, failure: FailureKind | None, attempt: int, ending: Ending
) -> None:
    assert attempt_ending(state, result, failure, attempt, RETRY, rand=0.0) == ending


def test_a_cancelled_job_never_retries() -> None:
    assert attempt_ending(RunState.RUNNING, AttemptResult.FAILED, FailureKind.USER, 1, None, 0.0) == Ending(
        RunState.FAILED
    )


@pytest.mark.parametrize(
    ("r", "now", "expected"),
    [
        pytest.param(run(RunState.SUCCEEDED), T, None, id="an-ended-run-is-not-watched"),
        pytest.param(
            run(RunState.SCHEDULED, intent=intent(IntentKind.LAUNCH, T + 5 * MIN)),
            T,
            T + 7 * MIN,
            id="a-launch-grace-after-its-time",
        ),
        pytest.param(
            run(RunState.SCHEDULED, intent=intent(IntentKind.LAUNCH, T), repairs=2),
            T + 10 * MIN,
            T + 18 * MIN,
            id="re-sends-back-off",
        ),
        pytest.param(
            run(RunState.RUNNING, intent=intent(IntentKind.POLL, T)), T, T + 60 * MIN, id="running-hourly"
        ),
        pytest.param(
            run(RunState.RUNNING, intent=intent(IntentKind.POLL, T, deadline=T + 10 * MIN)),
            T,
            T + 12 * MIN,
            id="running-until-its-deadline",
        ),
        pytest.param(run(RunState.QUEUED, checks=2), T, T + 8 * MIN, id="queued-backs-off"),
        pytest.param(
            run(RunState.QUEUED, checks=30), T, T + 10 * MIN, id="queued-checked-at-least-every-10-min"
        ),
        pytest.param(run(RunState.CANCELLING), T, T + 2 * MIN, id="stopping"),
    ],
)
def test_when_the_watchdog_looks(r: Run, now: datetime, expected: datetime | None) -> None:
    assert watch_at(r, POLICY, now) == expected


@pytest.mark.parametrize(
    ("r", "action"),
    [
        pytest.param(None, WatchAction.DROP, id="no-run"),
        pytest.param(run(RunState.SUCCEEDED), WatchAction.DROP, id="ended"),
        pytest.param(run(RunState.SCHEDULED, watch_at=T + 5 * MIN), WatchAction.REHOME, id="watched-later"),
        pytest.param(
            run(RunState.SCHEDULED, watch_at=T - MIN), WatchAction.DROP, id="its-own-hint-is-overdue"
        ),
        pytest.param(run(RunState.SCHEDULED, watch_at=T), WatchAction.RESEND, id="lost-launch"),
        pytest.param(run(RunState.RETRY_WAIT, watch_at=T), WatchAction.RESEND, id="lost-retry"),
        pytest.param(run(RunState.QUEUED, watch_at=T), WatchAction.CHECK_QUEUE, id="queued"),
        pytest.param(run(RunState.RUNNING, watch_at=T), WatchAction.CHECK_DATABRICKS, id="running"),
        pytest.param(run(RunState.TIMING_OUT, watch_at=T), WatchAction.STOP, id="timing-out"),
        pytest.param(
            run(RunState.SCHEDULED, watch_at=T, repairs=5), WatchAction.GIVE_UP, id="too-many-repairs"
        ),
    ],
)
def test_what_the_watchdog_does_with_an_overdue_hint(r: Run | None, action: WatchAction) -> None:
    assert watch_action(r, T, T + MIN, POLICY) is action


@pytest.mark.parametrize(
    ("state", "final"),
    [
        (RunState.CANCELLING, RunState.CANCELLED),
        (RunState.TIMING_OUT, RunState.TIMED_OUT),
        (RunState.SCHEDULED, RunState.FAILED),
    ],
)
def test_a_run_given_up_ends_where_it_was_heading(state: RunState, final: RunState) -> None:
    assert given_up_state(state) is final


def test_a_watch_policy_checks_itself() -> None:
    with pytest.raises(ValueError):
        WatchPolicy(grace=timedelta(0))
    with pytest.raises(ValueError):
        WatchPolicy(grace=2 * MIN, run_check=MIN)
