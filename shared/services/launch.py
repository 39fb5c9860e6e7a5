"""Launch one attempt of a run on Databricks (the launch queue's handler).

Two storage requests before the Databricks call (the job's newest runs, which include this run
and any active one; the job), one after (RUNNING with the first poll as its intent, the watch
hint moved with it), then the first poll is sent. Safe to run twice:

* Databricks starts at most one run per idempotency token (`{job}-{run key}-a{n}`, hashed), so
  a redelivery re-attaches to the run a crashed delivery started.
* A delivery that finds RUNNING for its attempt sends the first poll again with its own id: the
  handler before it may have died between the write and the send.
* A delivery whose write loses to another change re-reads: if the run ended meanwhile (a cancel),
  it cancels the Databricks run it just started. A *redelivered* launch of a run that ended with no
  Databricks run recorded for its attempt re-attaches by token and cancels what it finds, so a
  crash between the call and the write never leaves a run nobody follows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from shared.adapters.databricks import LaunchRequest, idempotency_token, placeholder_context
from shared.domain.dispatch import expected_duration
from shared.domain.errors import ConcurrencyConflict, ExternalError, NotFound
from shared.domain.job import Job, JobStatus, OverlapPolicy
from shared.domain.policies import OverlapVerdict, overlap_verdict
from shared.domain.run import (
    ACTIVE,
    Attempt,
    AttemptResult,
    FailureKind,
    IntentKind,
    Run,
    RunState,
    SkipReason,
    Trigger,
    epoch_ms,
)
from shared.domain.schedule import zone
from shared.services import admission, batches, endings, events, pipelines
from shared.services.admission import Claim
from shared.services.conflicts import until_saved
from shared.services.endings import JobRead
from shared.services.messages import RunRef, launch_id, launch_intent, poll_intent
from shared.services.run_context import Outcome, RunContext
from shared.services.stopping import stop
from shared.telemetry import metrics

log = logging.getLogger(__name__)
RETRY_SLOT_WAIT = timedelta(minutes=1)
OVERLAP_RECHECK = timedelta(minutes=1)  # a file run waiting for its job's active run looks again


class Launcher:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def launch(self, ref: RunRef, *, redelivered: bool = False) -> Outcome:
        """Handle "launch attempt `ref.attempt`". `redelivered`: an earlier delivery of this launch
        (or of the message it re-sends) may have reached Databricks."""
        ctx = self.ctx
        now = ctx.clock.now()
        shard = ref.shard or ctx.due_index.new_shard(ref.job_id)
        recent = ctx.run_repository.recent(shard, ref.tenant, ref.job_id)
        found = next(((r, e) for r, e in recent if r.run_key == ref.run_key), None)
        if found is None:
            try:
                found = ctx.run_repository.get(shard, ref.tenant, ref.job_id, ref.run_key)
            except NotFound:
                log.warning("launch for an unknown run", extra={"job_id": ref.job_id, "run_key": ref.run_key})
                return Outcome("unknown_run")
        run, etag = found
        if not _launchable(run, ref.attempt):
            return self._already(run, ref.attempt, now, redelivered)
        read = ctx.job_read(run.tenant, run.job_id)
        others = [r for r, _ in recent if r.run_key != run.run_key]
        if _gathering(run):  # a file arrival run: take no more files from here on
            if run.intent is not None and run.intent.due_at > now + events.EARLY:
                return Outcome("early")  # more files moved its launch: that launch's message follows
            job = read[0] if read else None
            try:
                if job is not None and _waits_for_active(job, others):
                    return self._gather_longer(run, etag, now)
                run, etag = ctx.write(run, etag, run.model_copy(update={"sealed_at": now}), now)
            except ConcurrencyConflict:  # a file joined it meanwhile: read it again
                return self.launch(ref, redelivered=redelivered)
        return self._decide(run, etag, read, others, ref.attempt, now)

    def _gather_longer(self, run: Run, etag: str, now: datetime) -> Outcome:
        """A file run whose job does not overlap runs (`skip`, `buffer_one`) while one is active:
        it looks again in a minute (still taking files, unless sealed), rather than being skipped
        with its files."""
        due = now + OVERLAP_RECHECK
        later = run.model_copy(
            update={
                "intent": launch_intent(run, 1, due, f"{launch_id(run, 1)}.w{epoch_ms(now)}"),
                "scheduled_for": due,
            }
        )
        saved, _ = self.ctx.write(run, etag, later, now)
        try:
            self.ctx.send(saved)
        except ExternalError as err:  # recorded: the watchdog sends it
            log.warning("could not send a file run's later launch; the watchdog will: %s", err.detail)
        return Outcome("waiting_for_active", saved)

    def _decide(
        self, run: Run, etag: str, read: JobRead, others: list[Run], attempt: int, now: datetime
    ) -> Outcome:
        job = read[0] if read else None
        if run.parent is not None:
            return self._decide_step(run, etag, read, others, attempt, now)
        first = run.state is not RunState.RETRY_WAIT
        skip = _skip_reason(job, run) if first else None
        if skip is None and job is not None and first:
            verdict = overlap_verdict(job.definition.overlap, others)
            if run.trigger is Trigger.FILE_ARRIVAL and verdict in (OverlapVerdict.QUEUE, OverlapVerdict.SKIP):
                return self._gather_longer(run, etag, now)  # sealed (a redelivery): never skip its files
            if verdict is OverlapVerdict.QUEUE:
                return self._queue(run, etag, now)
            if verdict is OverlapVerdict.SKIP:
                skip = SkipReason.OVERLAP
            elif verdict is OverlapVerdict.CANCEL_PREVIOUS:
                self._cancel_previous(others)
        if skip is not None:
            return Outcome(
                "skipped", endings.end(self.ctx, run, etag, RunState.SKIPPED, now, skip.value, read)
            )
        if job is None or job.status is JobStatus.CANCELLED:  # a retry or manual run of a cancelled job
            ended = endings.end(self.ctx, run, etag, RunState.CANCELLED, now, "job cancelled", read)
            return Outcome("finished", ended)
        return self._go(run, etag, job, others, attempt, now)

    def _go(self, run: Run, etag: str, job: Job, others: list[Run], attempt: int, now: datetime) -> Outcome:
        """A run that passed the job's checks: a batch's round and a pipeline run start their
        children; any other run takes its slot and calls Databricks."""
        if run.batch is not None:
            return batches.start(self.ctx, run, etag, job, now)
        if pipelines.pipeline_of(job) is not None:
            return pipelines.start(self.ctx, run, etag, job, now)
        return self._admit(run, etag, job, others, attempt, now)

    def _decide_step(
        self, run: Run, etag: str, read: JobRead, others: list[Run], attempt: int, now: datetime
    ) -> Outcome:
        """A pipeline step's run: its pipeline run passed the schedule's checks; only a cancelled
        job, or a step an edit removed, keeps it from starting."""
        job = read[0] if read else None
        if job is None or job.status is JobStatus.CANCELLED:
            ended = endings.end(self.ctx, run, etag, RunState.CANCELLED, now, "job cancelled", read)
            return Outcome("finished", ended)
        try:
            pipelines.step_settings(job, run)
        except NotFound as err:
            return Outcome("finished", endings.end(self.ctx, run, etag, RunState.FAILED, now, str(err), read))
        return self._admit(run, etag, job, others, attempt, now)

    def _admit(
        self, run: Run, etag: str, job: Job, others: list[Run], attempt: int, now: datetime
    ) -> Outcome:
        """Take a slot in the job's pool (or hold the one it has), then start; else wait for one."""
        expected = expected_duration([a for other in others for a in other.attempts])
        claim = admission.claim(self.ctx, run, job, expected, now, queue=attempt == 1)
        if claim.go:
            return self._start(claim.run, etag, job, attempt, now)
        if attempt > 1:
            return self._retry_later(run, etag, attempt, now)
        return self._wait_for_slot(claim, etag, now)

    def _wait_for_slot(self, claim: Claim, etag: str, now: datetime) -> Outcome:
        """QUEUED with its pool's fields; the pool's dispatch sends its launch when it is admitted."""
        ctx = self.ctx
        first = [(claim.run, etag)]

        def attempt() -> Run | None:
            current, tag = first.pop() if first else ctx.run_repository.get(*_key(claim.run))
            if current.state not in (RunState.SCHEDULED, RunState.QUEUED) or current.attempt != 1:
                return None  # admitted and launched meanwhile
            fields = admission.pool_fields(claim.run)
            if current.state is RunState.QUEUED:
                return ctx.write(current, tag, current.model_copy(update=fields), now)[0]
            queued = current.moved(
                RunState.QUEUED, now, reason=f"waiting for a slot in pool {claim.run.pool}", **fields
            )
            return ctx.write(
                current, tag, queued.model_copy(update={"intent": launch_intent(queued, 1, now)}), now
            )[0]

        queued = until_saved(attempt, f"run {claim.run.id}")
        if claim.room and claim.run.pool:
            admission.settle_pool(ctx, claim.run.pool, now)  # a tenant limit or a queue ahead: admit who fits
        return Outcome("queued", queued)

    def _retry_later(self, run: Run, etag: str, attempt: int, now: datetime) -> Outcome:
        """A retry whose run holds no slot (its pool was bounded after it started) and finds none
        free: try again in a minute. Retries keep their slot, so this is rare."""
        at = now + RETRY_SLOT_WAIT
        intent = launch_intent(run, attempt, at, message_id=f"{launch_id(run, attempt)}.wait{epoch_ms(now)}")
        waiting, _ = self.ctx.write(run, etag, run.model_copy(update={"intent": intent}), now)
        self.ctx.send(waiting)
        return Outcome("deferred", waiting)

    def _queue(self, run: Run, etag: str, now: datetime) -> Outcome:
        if run.state is RunState.QUEUED:
            return Outcome("buffered", run)  # a release arrived while the active run still runs
        queued = run.moved(RunState.QUEUED, now, reason="waiting for the active run")
        queued = queued.model_copy(update={"intent": launch_intent(queued, 1, now)})
        return Outcome("buffered", self.ctx.write(run, etag, queued, now)[0])

    def _cancel_previous(self, others: list[Run]) -> None:
        for other in others:
            if other.state.is_terminal or other.state is RunState.QUEUED:
                continue
            try:
                stop(self.ctx, other, "cancelled by a newer run (cancel_previous)", may_retry=False)
            except ConcurrencyConflict:
                log.info("previous run changed while cancelling it", extra={"run_key": other.run_key})

    def _start(self, run: Run, etag: str, job: Job, attempt: int, now: datetime) -> Outcome:
        ctx = self.ctx
        launched_at = ctx.clock.now()
        try:
            launched = ctx.databricks.launch(_request(run, job, attempt, pipelines.references(ctx, run, job)))
        except ExternalError as err:
            if err.retryable:
                raise  # the handler defers the message; the same token re-attaches
            record = Attempt(
                number=attempt,
                launched_at=launched_at,
                ended_at=ctx.clock.now(),
                result=AttemptResult.FAILED,
                failure=FailureKind.LAUNCH_ERROR,
                error=f"launch refused: {err.detail}",
            )
            return endings.settle(ctx, run, etag, record, now)
        record = Attempt(
            number=attempt,
            databricks_run_id=launched.run_id,
            run_page_url=launched.run_page_url,
            launched_at=launched_at,
        )
        timeout = pipelines.step_settings(job, run)[2]
        deadline = now + timeout if timeout else None
        first_poll = now + ctx.settings.poll_initial
        due = min(first_poll, deadline) if deadline else first_poll
        running = self._record_running(run, etag, record, deadline, due, now, job)
        if running is None:
            return Outcome("already_handled")
        ctx.send(running)
        metrics.attempts.add(1)
        if attempt == 1:
            metrics.fire_lag_ms.record((launched_at - run.scheduled_for).total_seconds() * 1000)
        log.info(
            "launched",
            extra={"job_id": run.job_id, "run_key": run.run_key, "databricks_run_id": launched.run_id},
        )
        return Outcome("launched", running)

    def _record_running(
        self,
        run: Run,
        etag: str,
        record: Attempt,
        deadline: datetime | None,
        due: datetime,
        now: datetime,
        job: Job,
    ) -> Run | None:
        """RUNNING with the first poll as intent; on a conflict, re-read and apply again or give way."""
        ctx = self.ctx
        dbx = record.databricks_run_id
        assert dbx is not None
        first = [(run, etag)]  # the run as read before the call; after a conflict, read again
        key = _key(run)

        def attempt() -> Run | None:
            current, tag = first.pop() if first else ctx.run_repository.get(*key)
            if not _launchable(current, record.number):
                if current.databricks_run_of(record.number) != dbx and current.state.is_terminal:
                    endings.cancel_quietly(ctx, dbx, "its run ended while it launched")
                return None
            running = current.moved(RunState.LAUNCHING, now).moved(RunState.RUNNING, now, reason="")
            running = running.with_attempt(record).model_copy(update=admission.pool_fields(run))
            intent = poll_intent(running, record.number, 1, dbx, deadline, due)
            return ctx.write(current, tag, running.model_copy(update={"intent": intent}), now, job=job)[0]

        return until_saved(attempt, f"run {run.id}")

    def _already(self, run: Run, attempt: int, now: datetime, redelivered: bool) -> Outcome:
        """The run moved past this launch. Send again what its state waits for, if this launch's
        write was the last one; reap a Databricks run an earlier delivery may have left behind."""
        ctx = self.ctx
        intent = run.intent
        own_write = (
            run.attempt == attempt
            and run.state is RunState.RUNNING
            and intent is not None
            and intent.kind is IntentKind.POLL
            and intent.poll == 1
        )
        if own_write and ctx.recent_enough(run, now):
            ctx.send(run)
            ctx.send_notices(run, [n for n in run.pending_notices if not n.tries and n.due_at <= now])
            return Outcome("redone", run)
        if (
            redelivered
            and run.state.is_terminal
            and not run.has_children
            and run.databricks_run_of(attempt) is None
        ):
            self._reap(run, attempt)  # (a pipeline run or a batch round never calls Databricks itself)
        return Outcome("already_handled", run)

    def _reap(self, run: Run, attempt: int) -> None:
        """Re-attach by token to whatever an earlier delivery started, and cancel it."""
        job = self.ctx.job(run.tenant, run.job_id)
        if job is None:
            return
        try:
            orphan = self.ctx.databricks.launch(_request(run, job, attempt))
        except ExternalError as err:
            log.warning("could not re-attach a launch of an ended run: %s", err.detail)
            return
        endings.cancel_quietly(self.ctx, orphan.run_id, "a launch of a run that had ended")
        log.warning("cancelled a Databricks run of an ended run", extra={"job_id": run.job_id})


def _key(run: Run) -> tuple[str, str, str, str]:
    return run.shard, run.tenant, run.job_id, run.run_key


def _launchable(run: Run, attempt: int) -> bool:
    return (run.state in (RunState.SCHEDULED, RunState.QUEUED) and attempt == 1) or (
        run.state is RunState.RETRY_WAIT and attempt == run.attempt
    )


def _waits_for_active(job: Job, others: list[Run]) -> bool:
    """Whether a file run should go on gathering: its job runs one at a time and one is active."""
    one_at_a_time = job.definition.overlap in (OverlapPolicy.SKIP, OverlapPolicy.BUFFER_ONE)
    return one_at_a_time and any(r.state in ACTIVE for r in others)


def _gathering(run: Run) -> bool:
    return run.trigger is Trigger.FILE_ARRIVAL and run.state is RunState.SCHEDULED and run.sealed_at is None


def _skip_reason(job: Job | None, run: Run) -> SkipReason | None:
    if job is None or job.status is JobStatus.CANCELLED:
        return SkipReason.JOB_CANCELLED
    if run.trigger is Trigger.FILE_ARRIVAL and job.status is JobStatus.PAUSED:
        return SkipReason.PAUSED  # its files arrived before the pause, its launch came after
    if run.trigger is not Trigger.SCHEDULE:
        return None  # a run asked for by hand (or by a webhook, or upstream runs) runs anyway
    if job.status is JobStatus.PAUSED:
        return SkipReason.PAUSED
    if job.version != run.job_version:
        return SkipReason.SUPERSEDED
    return None


def _request(run: Run, job: Job, attempt: int, references: Mapping[str, str] | None = None) -> LaunchRequest:
    context = placeholder_context(
        scheduled_for=run.scheduled_for,
        run_key=run.run_key,
        job_id=run.job_id,
        attempt=attempt,
        tenant=run.tenant,
        zone=zone(job.definition.schedule.timezone if job.definition.schedule else "UTC"),
    )
    context.update(references or {})
    if run.cause:  # started by a trigger: what started it (`{{trigger.*}}`)
        context.update(run.cause.parameters())
    task, _, timeout = pipelines.step_settings(job, run)
    return LaunchRequest(
        task=task,
        idempotency_token=idempotency_token(run.run_key, attempt, run.job_id),
        run_name=f"{job.definition.name} [{run.run_key} a{attempt}]"[:100],
        context=context,
        timeout=timeout,
    )
