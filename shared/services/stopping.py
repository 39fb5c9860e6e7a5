"""Stopping a run that runs in Databricks: the intent is recorded before the side effect.

Cancel (a person, a newer run) and timeout both first read Databricks: a run that already ended
is recorded as it ended (a run that succeeded ten seconds ago is SUCCEEDED, not CANCELLED). Else
the run is written CANCELLING or TIMING_OUT, *then* cancelled in Databricks, then ended. A crash
after the first write leaves a state that says what was under way; whoever finds it (the next
poll, the watchdog) cancels again (cancelling twice is harmless) and ends the run as intended:
a timed-out attempt stays TIMED_OUT and is retried as its policy says, even though Databricks
reports the cancel as USER_CANCELED.
"""

from __future__ import annotations

from datetime import datetime

from shared.adapters.databricks import RunStatus
from shared.domain.errors import NotFound
from shared.domain.run import Attempt, AttemptResult, FailureKind, Intent, IntentKind, Run, RunState
from shared.services import endings
from shared.services.conflicts import until_saved
from shared.services.run_context import Outcome, RunContext

STOPPING = (RunState.CANCELLING, RunState.TIMING_OUT)


def stop(ctx: RunContext, run: Run, reason: str, *, may_retry: bool = False) -> Run:
    """Cancel `run` (in Databricks too) and return it as it ended; an ended run is returned as is."""

    def attempt() -> Run:
        current, etag = ctx.run_repository.get(run.shard, run.tenant, run.job_id, run.run_key)
        if current.state.is_terminal:
            return current
        if current.is_pipeline:
            from shared.services import pipelines

            return pipelines.cancel(ctx, current, reason)
        if current.is_batch:
            from shared.services import batches

            return batches.cancel(ctx, current, reason)
        now = ctx.clock.now()
        dbx = _databricks_run(current)
        if dbx is None:
            return endings.end(ctx, current, etag, RunState.CANCELLED, now, reason)
        status = read(ctx, dbx)
        if status is None or status.is_terminal:
            record = endings.attempt_record(current, status, now)
            return _run_of(endings.settle(ctx, current, etag, record, now, may_retry=may_retry))
        if current.state not in STOPPING:
            current, etag = _record_stop(ctx, current, etag, RunState.CANCELLING, dbx, now, reason)
        return _run_of(finish_stopping(ctx, current, etag, dbx, now, reason))

    return until_saved(attempt, f"run {run.id}")


def time_out(ctx: RunContext, run: Run, etag: str, databricks_run_id: int, now: datetime) -> Outcome:
    """The run outlived its timeout: TIMING_OUT, cancel in Databricks, then TIMED_OUT (or a retry)."""
    if run.state is RunState.RUNNING:
        run, etag = _record_stop(ctx, run, etag, RunState.TIMING_OUT, databricks_run_id, now, "timed out")
    return finish_stopping(ctx, run, etag, databricks_run_id, now, "timed out; cancelled")


def finish_stopping(
    ctx: RunContext, run: Run, etag: str, databricks_run_id: int, now: datetime, why: str
) -> Outcome:
    """Cancel (again) in Databricks and end a CANCELLING or TIMING_OUT run as it intended."""
    endings.cancel_in_databricks(ctx, databricks_run_id)
    timed_out = run.state is RunState.TIMING_OUT
    current = run.current_attempt or Attempt(number=run.attempt)
    record = current.model_copy(
        update={
            "ended_at": now,
            "result": AttemptResult.TIMED_OUT if timed_out else AttemptResult.CANCELLED,
            "failure": FailureKind.TIMEOUT if timed_out else None,
            "error": why,
        }
    )
    return endings.settle(ctx, run, etag, record, now)


def read(ctx: RunContext, databricks_run_id: int) -> RunStatus | None:
    """The Databricks run now, or None if Databricks has no such run."""
    try:
        return ctx.databricks.get_run(databricks_run_id)
    except NotFound:
        return None


def _record_stop(
    ctx: RunContext, run: Run, etag: str, state: RunState, dbx: int, now: datetime, reason: str
) -> tuple[Run, str]:
    stopping = run.moved(state, now, reason=reason)
    intent = Intent(
        kind=IntentKind.STOP,
        attempt=run.attempt,
        due_at=now,
        message_id=f"{run.job_id}.{run.run_key}.a{run.attempt}.stop",
        databricks_run_id=dbx,
    )
    return ctx.write(run, etag, stopping.model_copy(update={"intent": intent}), now)


def _databricks_run(run: Run) -> int | None:
    if run.state in (RunState.RUNNING, *STOPPING):
        return run.databricks_run_of(run.attempt)
    return None


def _run_of(outcome: Outcome) -> Run:
    assert outcome.run is not None
    return outcome.run


def stop_children(ctx: RunContext, parent: Run, reason: str, now: datetime, tries: int = 5) -> Run:
    """The first half of cancelling a pipeline run or a batch round: CANCELLING recorded (with a stop
    intent, so the watchdog finishes a cancel a crash interrupted) before anything is cancelled, then
    every active child run stopped (in Databricks too). The parent as it now is: terminal if it had
    ended already (then nothing was stopped)."""

    def stopping() -> tuple[Run, str]:
        current, etag = ctx.run_repository.get(parent.shard, parent.tenant, parent.job_id, parent.run_key)
        if current.state.is_terminal or current.state is RunState.CANCELLING:
            return current, etag
        intent = Intent(
            kind=IntentKind.STOP, attempt=current.attempt, due_at=now, message_id=f"{current.id}.stop"
        )
        marked = current.moved(RunState.CANCELLING, now, reason=reason).model_copy(update={"intent": intent})
        return ctx.write(current, etag, marked, now)

    current, _ = until_saved(stopping, f"run {parent.id}", tries)
    if current.state.is_terminal:
        return current
    for child, _ in ctx.run_repository.children(parent.shard, parent.tenant, parent.job_id, parent.run_key):
        if not child.state.is_terminal:
            stop(ctx, child, reason)
    return current
