"""How a run's attempt ends (settle), how a run ends (end), and what follows an end.

Used by the poll, the watchdog and the commands alike, so a run ends the same way whoever
notices first. Everything after the ending write (noting the run on the job, releasing a
buffered run) is idempotent: a handler that finds the run already ended runs it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from shared.adapters.databricks import RunStatus
from shared.domain.errors import Conflict, ExternalError, NotFound
from shared.domain.job import Job, JobStatus, OverlapPolicy, RetryPolicy
from shared.domain.policies import attempt_ending, attempt_result
from shared.domain.run import (
    Attempt,
    AttemptResult,
    FailureKind,
    Run,
    RunState,
    Trigger,
)
from shared.services import admission, dependents
from shared.services.conflicts import until_saved
from shared.services.messages import launch_id, launch_intent
from shared.services.run_context import Outcome, RunContext
from shared.telemetry import metrics

log = logging.getLogger(__name__)


def attempt_record(
    run: Run, status: RunStatus | None, now: datetime, unknown_state: str | None = None
) -> Attempt:
    """The current attempt as Databricks says it ended: `status` None means Databricks has no such
    run; `unknown_state` is what Databricks said that nobody has mapped (a person must look)."""
    current = run.current_attempt or Attempt(number=run.attempt)
    if unknown_state is not None or status is None or status.result is None:
        return current.model_copy(
            update={
                "ended_at": now,
                "result": AttemptResult.FAILED,
                "failure": FailureKind.TRANSIENT if unknown_state is None else FailureKind.UNKNOWN_STATE,
                "error": unknown_state or "the run is gone from Databricks",
            }
        )
    return current.model_copy(
        update={
            "started_at": status.started_at or current.started_at,
            "ended_at": status.ended_at or now,
            "result": status.result,
            "failure": status.failure,
            "code": status.code,
            "error": status.message or None,
        }
    )


def settle(
    ctx: RunContext,
    run: Run,
    etag: str,
    record: Attempt,
    now: datetime,
    *,
    may_retry: bool = True,
) -> Outcome:
    """Record how the current attempt ended and move the run on: retry it, or end it."""
    assert record.result is not None
    result, failure = attempt_result(run.state, record.result, record.failure)
    record = record.model_copy(update={"result": result, "failure": failure})
    assert record.result is not None
    run = run.with_attempt(record)
    read = ctx.job_read(run.tenant, run.job_id)
    job = read[0] if read else None
    retry = _retry_policy(job, run) if may_retry and job and job.status is not JobStatus.CANCELLED else None
    ending = attempt_ending(run.state, record.result, record.failure, run.attempt, retry, ctx.rand())
    why = record.error or record.code or record.result.value.lower()
    if ending.state is RunState.RETRY_WAIT and ending.retry_after is not None:
        nxt = run.attempt + 1
        waiting = run.moved(
            RunState.RETRY_WAIT,
            now,
            reason=f"attempt {run.attempt} {record.result.value.lower()}: {why}",
            attempt=nxt,
        )
        waiting = waiting.model_copy(update={"intent": launch_intent(waiting, nxt, now + ending.retry_after)})
        waiting, _ = ctx.write(run, etag, waiting, now, job=job)
        ctx.send(waiting)
        log.info("retrying", extra={"job_id": run.job_id, "run_key": run.run_key, "attempt": nxt})
        return Outcome("retrying", waiting)
    reason = "" if ending.state is RunState.SUCCEEDED else why
    return Outcome("finished", end(ctx, run, etag, ending.state, now, reason, read))


def _retry_policy(job: Job, run: Run) -> RetryPolicy | None:
    """The job's retry policy, or its step's for a pipeline step's run (None: the step is gone)."""
    from shared.services.pipelines import step_settings

    try:
        return step_settings(job, run)[1]
    except NotFound:
        return None


JobRead = tuple[Job, str] | None  # the job and its ETag, as read (None: the job is gone)


def end(
    ctx: RunContext,
    run: Run,
    etag: str,
    state: RunState,
    now: datetime,
    reason: str,
    job: JobRead = None,
) -> Run:
    """Write the run's terminal state (its watch hint goes with it), then what follows an end.

    `job`: the job as the caller read it, if it did: noting the run on it then needs no read."""
    ended, _ = ctx.write(run, etag, run.moved(state, now, reason=reason), now, job=job[0] if job else None)
    metrics.runs_finished.add(1, {"state": state.value, "job_id": run.job_id, "tenant": run.tenant})
    after_end(ctx, ended, now, job, redo=False)
    return ended


def after_end(
    ctx: RunContext, ended: Run, now: datetime, known: JobRead = None, *, redo: bool = True
) -> None:
    """Free the run's slot (admitting who waits), note the run on its job and release a buffered
    run. Safe to repeat: a second release finds nothing to free. `redo`: a handler found the run
    ended (it may have crashed before its sends): its notices are sent again with their first ids,
    which duplicate detection absorbs if the first send got through."""
    admission.release(ctx, ended, now)
    if redo:
        ctx.send_notices(ended, [n for n in ended.pending_notices if not n.tries and n.due_at <= now])
    if ended.parent is not None:  # a pipeline step's or a batch point's run: its parent goes on
        from shared.services import batches, pipelines

        if ended.trigger is Trigger.BATCH:
            batches.point_ended(ctx, ended, now)
        else:
            pipelines.step_ended(ctx, ended, now)
        return
    job = note_on_job(ctx, ended, known)
    if job is not None and job.definition.overlap is OverlapPolicy.BUFFER_ONE:
        release_buffered(ctx, ended, now)
    dependents.on_end(ctx, ended, now)  # jobs waiting for this one


def note_on_job(ctx: RunContext, run: Run, known: JobRead = None) -> Job | None:
    """The job's "last run" shows this run, unless a newer one is already noted."""
    first = [known] if known is not None else []  # the job as the caller read it; then read again

    def attempt() -> Job | None:
        read = first.pop() if first else ctx.job_read(run.tenant, run.job_id)
        if read is None:
            return None
        job, etag = read
        after = job.noted(run.state, run.scheduled_for)
        if after == job:
            return job
        ctx.job_repository.save(job, etag, after, audit=None)
        return after

    try:
        return until_saved(attempt, f"job {run.job_id}")
    except Conflict:
        return ctx.job(run.tenant, run.job_id)  # busy: the next end notes it


def release_buffered(ctx: RunContext, ended: Run, now: datetime) -> None:
    """Send the launch of the run waiting behind `ended` (buffer_one).

    The release has its own id: the waiting run's first launch id was used when it was queued,
    and Service Bus would drop a second message with it.
    """
    recent = ctx.run_repository.recent(ended.shard, ended.tenant, ended.job_id)
    waiting = [r for r, _ in recent if r.state is RunState.QUEUED]
    if not waiting:
        return
    queued = min(waiting, key=lambda r: r.scheduled_for)
    intent = queued.intent or launch_intent(queued, 1, now)
    ctx.send(queued, intent, message_id=f"{launch_id(queued, 1)}.release.{ended.run_key}", at=now)


def cancel_in_databricks(ctx: RunContext, databricks_run_id: int) -> None:
    """Cancel a Databricks run; one that is gone is as good as cancelled."""
    try:
        ctx.databricks.cancel(databricks_run_id)
    except NotFound:
        log.info("databricks run %s is gone; nothing to cancel", databricks_run_id)


def cancel_quietly(ctx: RunContext, databricks_run_id: int, why: str) -> None:
    """Best effort: a Databricks run nobody will follow any more."""
    try:
        cancel_in_databricks(ctx, databricks_run_id)
    except ExternalError as err:
        log.warning("could not cancel databricks run %s (%s): %s", databricks_run_id, why, err.detail)


def send_recorded(ctx: RunContext, run: Run) -> None:
    """Send the launch `run` records; a failed send is the watchdog's to repeat (the run has its
    intent and its watch hint), so it never fails the handler."""
    try:
        ctx.send(run)
    except ExternalError as err:
        log.warning(
            "could not send a launch; the watchdog will: %s", err.detail, extra={"run_key": run.run_key}
        )


def after_parent_write(ctx: RunContext, saved: Run, children: Sequence[Run], now: datetime) -> None:
    """What follows a write of a pipeline run or a batch round: the launches of the children it
    started, and, if the write ended it, what follows an end."""
    for child in children:
        send_recorded(ctx, child)
    if saved.state.is_terminal:
        metrics.runs_finished.add(
            1, {"state": saved.state.value, "job_id": saved.job_id, "tenant": saved.tenant}
        )
        after_end(ctx, saved, now, redo=False)
