"""The scheduler's decisions, as pure functions over policy values: overlap, misfire, the end of an
attempt, and the watchdog. The services only apply these verdicts; each is testable in a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.job import MisfirePolicy, OverlapPolicy, RetryPolicy
from shared.domain.notifications import Notice
from shared.domain.run import (
    ACTIVE,
    AttemptResult,
    FailureKind,
    IntentKind,
    Run,
    RunState,
    SkipReason,
)

# --- overlap ------------------------------------------------------------------------------------------


class OverlapVerdict(StrEnum):
    GO = "go"
    SKIP = "skip"
    QUEUE = "queue"  # buffer_one: wait for the active run to end
    CANCEL_PREVIOUS = "cancel_previous"  # stop the active runs, then go


def overlap_verdict(policy: OverlapPolicy, others: Sequence[Run]) -> OverlapVerdict:
    """What a run about to launch does about the job's other runs (`others`: not this run)."""
    if policy is OverlapPolicy.ALLOW or not any(r.state in ACTIVE for r in others):
        return OverlapVerdict.GO
    if policy is OverlapPolicy.SKIP:
        return OverlapVerdict.SKIP
    if policy is OverlapPolicy.BUFFER_ONE:
        waiting = any(r.state is RunState.QUEUED for r in others)
        return OverlapVerdict.SKIP if waiting else OverlapVerdict.QUEUE
    return OverlapVerdict.CANCEL_PREVIOUS


# --- misfire ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatchUpBounds:
    window_start: datetime  # older fire times are missed whatever the policy
    cap_floor: datetime  # catch_up: older fire times in the window exceed the cap


def misfire_verdict(
    policy: MisfirePolicy,
    at: datetime,
    following: datetime | None,
    missed_before: datetime,
    catch_up: CatchUpBounds | None,
) -> SkipReason | None:
    """Whether a fire time that passed (`at` < `missed_before`) still runs, or why it is skipped.

    `following` is the next fire time after `at`: `fire_once` runs only the last missed one.
    """
    if at >= missed_before:
        return None
    if policy is MisfirePolicy.SKIP:
        return SkipReason.MISSED
    if policy is MisfirePolicy.FIRE_ONCE:
        last_missed = following is None or following >= missed_before
        return None if last_missed else SkipReason.MISSED
    if catch_up is None:
        raise ValueError("catch_up needs its bounds")
    if at < catch_up.window_start:
        return SkipReason.MISSED
    return None if at >= catch_up.cap_floor else SkipReason.CATCH_UP_LIMIT


# --- the end of an attempt ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ending:
    """What a run becomes when an attempt ends: a terminal state, or RETRY_WAIT after `retry_after`."""

    state: RunState
    retry_after: timedelta | None = None


def attempt_result(
    state: RunState, result: AttemptResult, failure: FailureKind | None
) -> tuple[AttemptResult, FailureKind | None]:
    """How an attempt ended, as recorded: the cancel a timeout sent is reported by Databricks as a
    cancel (USER_CANCELED), but the attempt timed out."""
    if state is RunState.TIMING_OUT and result is AttemptResult.CANCELLED:
        return AttemptResult.TIMED_OUT, FailureKind.TIMEOUT
    return result, failure


def attempt_ending(
    state: RunState,
    result: AttemptResult,
    failure: FailureKind | None,
    attempt: int,
    retry: RetryPolicy | None,
    rand: float,
) -> Ending:
    """The run's next state once Databricks says how attempt `attempt` ended.

    A run being timed out ends TIMED_OUT when Databricks reports the cancel it was sent; a run
    being cancelled ends CANCELLED unless it had succeeded first. A failure is retried while the
    policy allows (`retry` None: the job is gone or cancelled, never retry).
    """
    if state is RunState.CANCELLING:
        return Ending(RunState.SUCCEEDED if result is AttemptResult.SUCCEEDED else RunState.CANCELLED)
    result, failure = attempt_result(state, result, failure)
    if result is AttemptResult.SUCCEEDED:
        return Ending(RunState.SUCCEEDED)
    if result is AttemptResult.CANCELLED:
        return Ending(RunState.CANCELLED)
    final = RunState.TIMED_OUT if result is AttemptResult.TIMED_OUT else RunState.FAILED
    kind = failure or (FailureKind.TIMEOUT if final is RunState.TIMED_OUT else FailureKind.USER)
    if retry is not None and retry.should_retry(attempt, kind):
        return Ending(RunState.RETRY_WAIT, retry.delay_after(attempt, rand))
    return Ending(final)


# --- the watchdog -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchPolicy:
    """When the watchdog looks at a run that nothing else has moved.

    grace: how long after an intent is due before it counts as lost (and the base of the
      backoff between re-sends). run_check: how often a RUNNING run is checked with Databricks
      when no poll has ended it (its poll chain normally does), and the cap of every backoff.
    max_repairs: re-sends of one intent before the run ends with a clear reason.
    queued_check: the longest wait between two looks at a QUEUED run (its release may be lost).
    """

    grace: timedelta = timedelta(minutes=2)
    run_check: timedelta = timedelta(hours=1)
    max_repairs: int = 5
    queued_check: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.grace <= timedelta(0) or self.run_check < self.grace or self.max_repairs < 1:
            raise ValueError("grace > 0, run_check >= grace and max_repairs >= 1")

    def backoff(self, n: int) -> timedelta:
        factor: int = 2 ** min(n, 20)
        return min(self.grace * factor, self.run_check)


def watch_at(run: Run, policy: WatchPolicy, now: datetime) -> datetime | None:
    """When the watchdog must look at `run` if nothing moves it first (None: it has ended, and owes
    no notification)."""
    owed = [n.due_at + policy.grace for n in run.pending_notices]  # a notice whose message was lost
    if run.state.is_terminal:
        return min(owed) if owed else None
    at = min([_watch_at(run, policy, now), *owed])
    if run.deadline_at is not None and run.deadline_missed_at is None and run.deadline_at > now:
        return min(at, run.deadline_at)  # the watchdog marks it if nothing has ended it by then
    return at


def _watch_at(run: Run, policy: WatchPolicy, now: datetime) -> datetime:
    intent = run.intent
    if run.has_children and run.state is RunState.RUNNING:
        return now + policy.queued_check  # the watchdog hears step (or point) runs whose end went unheard
    if run.state is RunState.QUEUED:
        return now + min(policy.backoff(run.checks), max(policy.queued_check, policy.grace))
    if run.state is RunState.RUNNING:
        check = now + policy.run_check
        deadline = intent.deadline if intent is not None else None
        return max(now + policy.grace, min(check, deadline + policy.grace)) if deadline else check
    if intent is not None and intent.kind is IntentKind.LAUNCH:
        return max(intent.due_at, now) + policy.backoff(run.repairs)
    return now + policy.backoff(run.repairs)  # stopping, or a state written before intents existed


class WatchAction(StrEnum):
    DROP = "drop"  # a stale hint: the run ended or is watched at another time
    REHOME = "rehome"  # a stale hint of a run watched in the future: make sure that hint exists
    RESEND = "resend"  # the launch it waits for is overdue: send it again with a fresh id
    CHECK_QUEUE = "check_queue"  # QUEUED: launch it if nothing blocks it any more
    CHECK_DATABRICKS = "check_databricks"  # RUNNING: read Databricks; settle, time out, or look later
    STOP = "stop"  # CANCELLING or TIMING_OUT did not finish: cancel again and settle
    GIVE_UP = "give_up"  # repaired too often without progress: end it with the reason
    NOTIFY = "notify"  # a notice's message is overdue: send it again with a fresh id


def watch_action(
    run: Run | None, hint_at: datetime, now: datetime, policy: WatchPolicy, *, notices: bool = True
) -> WatchAction:
    """What the watchdog does with an overdue hint (`hint_at` <= now) about `run`. `notices` False:
    what the run itself needs, whatever notifications it owes (a dead letter of its own chain)."""
    if run is None or (run.state.is_terminal and run.watch_at is None):
        return WatchAction.DROP
    if run.watch_at != hint_at:
        future = run.watch_at is not None and run.watch_at > now
        return WatchAction.REHOME if future or run.watch_at is None else WatchAction.DROP
    if notices and overdue_notices(run, now, policy):
        return WatchAction.NOTIFY
    if run.state.is_terminal:
        return WatchAction.DROP
    if run.repairs >= policy.max_repairs:
        return WatchAction.GIVE_UP
    if run.state is RunState.QUEUED:
        return WatchAction.CHECK_QUEUE
    if run.state is RunState.RUNNING:
        return WatchAction.CHECK_DATABRICKS
    if run.state in (RunState.CANCELLING, RunState.TIMING_OUT):
        return WatchAction.STOP
    return WatchAction.RESEND  # SCHEDULED, RETRY_WAIT, LAUNCHING (rows written before intents)


def overdue_notices(run: Run, now: datetime, policy: WatchPolicy) -> list[Notice]:
    """The run's notices whose message should have been handled by now (it was lost)."""
    return [n for n in run.pending_notices if n.due_at + policy.grace <= now]


def given_up_state(state: RunState) -> RunState:
    """Where a run the watchdog gives up on ends: what it was heading for, else FAILED."""
    return {RunState.CANCELLING: RunState.CANCELLED, RunState.TIMING_OUT: RunState.TIMED_OUT}.get(
        state, RunState.FAILED
    )
