"""The life of a run after the tick: launch on Databricks, poll to the end, retry, cancel, run now.

Every handler re-reads what it needs and decides from the run's state, so a
duplicate, late or replayed message does no harm:

* launch (attempt n): applies the job's overlap policy, calls Databricks with the
  attempt's idempotency token (a redelivery re-attaches to the same Databricks
  run, never starts a second), saves the Databricks run id as RUNNING, and only
  then schedules the first poll.
* poll: reads the Databricks run. No change: schedules the next poll (interval
  doubling to a cap) and touches no table. Past the job's timeout: cancels it in
  Databricks (TIMED_OUT). Terminal: records the attempt, and either finishes the
  run or, if the retry policy says so, moves it to RETRY_WAIT and schedules the
  launch of attempt n+1 after the backoff.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.adapters.databricks import (
    Databricks,
    LaunchRequest,
    Phase,
    RunStatus,
    idempotency_token,
    placeholder_context,
)
from shared.adapters.due_index import DueIndex
from shared.adapters.job_store import JobStore
from shared.adapters.queue import MessageSender
from shared.adapters.run_store import RunStore
from shared.domain.clock import Clock
from shared.domain.errors import ConcurrencyConflict, Conflict, ExternalError, NotFound
from shared.domain.ids import new_id
from shared.domain.job import Actor, Job, JobStatus, OverlapPolicy
from shared.domain.run import Attempt, Run, RunState, SkipReason, Trigger, manual_run_key
from shared.domain.schedule import zone
from shared.services.messages import PollRef, RunRef, launch_message, poll_message
from shared.telemetry import metrics

log = logging.getLogger(__name__)

ACTIVE = frozenset({RunState.LAUNCHING, RunState.RUNNING, RunState.RETRY_WAIT})
RETRYABLE = frozenset({RunState.FAILED, RunState.TIMED_OUT})
_RECENT_RUNS = 50  # active runs are among a job's newest; overlap looks no further
_TRIES = 5


@dataclass(frozen=True, slots=True)
class Outcome:
    action: (
        str  # launched, skipped, buffered, failed, already_handled, unknown_run, polled, finished, retrying
    )
    run: Run | None = None


@dataclass(frozen=True)
class RunSettings:
    launch_queue: str
    poll_queue: str
    poll_initial: timedelta
    poll_max: timedelta


class RunService:
    def __init__(
        self,
        *,
        jobs: JobStore,
        runs: RunStore,
        due: DueIndex,
        sender: MessageSender,
        databricks: Callable[[], Databricks],
        clock: Clock,
        settings: RunSettings,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.jobs = jobs
        self.runs = runs
        self.due = due
        self.sender = sender
        self._databricks = databricks
        self.clock = clock
        self.settings = settings
        self.rand = rand

    @property
    def databricks(self) -> Databricks:
        return self._databricks()

    # -- launch --------------------------------------------------------------------------------------

    def launch(self, ref: RunRef) -> Outcome:
        now = self.clock.now()
        try:
            run, etag = self.runs.get(ref.tenant, ref.job_id, ref.run_key)
        except NotFound:
            log.warning("launch for an unknown run", extra={"job_id": ref.job_id, "run_key": ref.run_key})
            return Outcome("unknown_run")
        outcome = self._launch(run, etag, ref.attempt, now)
        if run.trigger is Trigger.SCHEDULE and ref.attempt == 1:  # the tick wrote a pending row for it
            self.due.remove(self.due.pending_for(run.tenant, run.job_id, run.run_key, run.scheduled_for))
        return outcome

    def _launch(self, run: Run, etag: str, attempt: int, now: datetime) -> Outcome:
        launchable = (run.state in (RunState.SCHEDULED, RunState.QUEUED) and attempt == 1) or (
            run.state is RunState.RETRY_WAIT and attempt == run.attempt
        )
        if not launchable:
            return Outcome("already_handled", run)
        try:
            job, _ = self.jobs.get(run.tenant, run.job_id)
        except NotFound:
            job = None
        first = run.state is not RunState.RETRY_WAIT
        skip = self._skip_reason(job, run) if first else None
        if skip is None and job is not None and first:
            decision = self._overlap(job, run, now)
            if decision is not None:
                if decision is RunState.QUEUED:
                    if run.state is not RunState.QUEUED:
                        self.runs.save(
                            run.moved(RunState.QUEUED, now, reason="waiting for the active run"), etag
                        )
                    return Outcome("buffered", run)
                skip = SkipReason.OVERLAP
        if skip is not None:
            skipped = run.moved(RunState.SKIPPED, now, reason=skip.value)
            self.runs.save(skipped, etag)
            metrics.runs_finished.add(1, {"state": "SKIPPED", "job_id": run.job_id, "tenant": run.tenant})
            return Outcome("skipped", skipped)
        if job is None or job.status is JobStatus.CANCELLED:  # a retry or manual run of a cancelled job
            return self._end(run, etag, RunState.CANCELLED, now, "job cancelled")
        return self._start(run, etag, job, attempt, now)

    @staticmethod
    def _skip_reason(job: Job | None, run: Run) -> SkipReason | None:
        if job is None or job.status is JobStatus.CANCELLED:
            return SkipReason.JOB_CANCELLED
        if run.trigger is not Trigger.SCHEDULE:
            return None  # a run asked for by hand runs whatever the job's state
        if job.status is JobStatus.PAUSED:
            return SkipReason.PAUSED
        if job.version != run.job_version:
            return SkipReason.SUPERSEDED
        return None

    def _overlap(self, job: Job, run: Run, now: datetime) -> RunState | None:
        """None: go ahead. SKIPPED: skip this run. QUEUED: wait for the active run to end."""
        policy = job.definition.overlap
        if policy is OverlapPolicy.ALLOW:
            return None
        recent = self.runs.list(run.tenant, run.job_id, limit=_RECENT_RUNS).items
        active = [r for r in recent if r.state in ACTIVE and r.run_key != run.run_key]
        if not active:
            return None
        if policy is OverlapPolicy.SKIP:
            return RunState.SKIPPED
        if policy is OverlapPolicy.BUFFER_ONE:
            waiting = [r for r in recent if r.state is RunState.QUEUED and r.run_key != run.run_key]
            return RunState.SKIPPED if waiting else RunState.QUEUED
        for other in active:  # cancel_previous
            self.cancel(
                other.tenant, other.job_id, other.run_key, reason="cancelled by a newer run (cancel_previous)"
            )
        return None

    def _start(self, run: Run, etag: str, job: Job, attempt: int, now: datetime) -> Outcome:
        token = idempotency_token(run.run_key, attempt, run.job_id)
        context = placeholder_context(
            scheduled_for=run.scheduled_for,
            run_key=run.run_key,
            job_id=run.job_id,
            attempt=attempt,
            tenant=run.tenant,
            zone=zone(job.definition.schedule.timezone),
        )
        request = LaunchRequest(
            task=job.definition.task,
            idempotency_token=token,
            run_name=f"{job.definition.name} [{run.run_key} a{attempt}]"[:100],
            context=context,
            timeout=job.definition.timeout,
        )
        launched_at = self.clock.now()
        try:
            launched = self.databricks.launch(request)
        except ExternalError as err:
            if err.retryable:
                raise  # Service Bus delivers the message again; the same token re-attaches
            record = Attempt(
                number=attempt,
                launched_at=launched_at,
                ended_at=self.clock.now(),
                result="FAILED",
                failure="launch_error",
                error=err.detail,
            )
            return self._end(
                run.with_attempt(record), etag, RunState.FAILED, now, f"launch refused: {err.detail}"
            )
        record = Attempt(
            number=attempt,
            databricks_run_id=launched.run_id,
            run_page_url=launched.run_page_url,
            launched_at=launched_at,
        )
        running = (
            run.moved(RunState.LAUNCHING, now).moved(RunState.RUNNING, now, reason="").with_attempt(record)
        )
        self.runs.save(running, etag)  # a conflict: another delivery got here first; this one is redelivered
        deadline = now + job.definition.timeout if job.definition.timeout else None
        first_poll = now + self.settings.poll_initial
        self.sender.send(
            [
                poll_message(
                    self.settings.poll_queue,
                    running,
                    attempt,
                    1,
                    launched.run_id,
                    deadline,
                    min(first_poll, deadline) if deadline else first_poll,
                )
            ]
        )
        metrics.attempts.add(1)
        if attempt == 1:
            metrics.fire_lag_ms.record((launched_at - run.scheduled_for).total_seconds() * 1000)
        log.info(
            "launched",
            extra={"job_id": run.job_id, "run_key": run.run_key, "databricks_run_id": launched.run_id},
        )
        return Outcome("launched", running)

    # -- poll ----------------------------------------------------------------------------------------

    def poll(self, ref: PollRef) -> Outcome:
        metrics.polls.add(1)
        now = self.clock.now()
        try:
            status = self.databricks.get_run(ref.databricks_run_id)
        except NotFound:
            return self._finish(ref, None, now, timed_out=False)
        if status.is_terminal:
            return self._finish(ref, status, now, timed_out=False)
        if ref.deadline is not None and now >= ref.deadline:
            self.databricks.cancel(ref.databricks_run_id)
            return self._finish(ref, status, now, timed_out=True)
        interval = min(self.settings.poll_initial * (2**ref.poll), self.settings.poll_max)
        at = now + interval
        if ref.deadline is not None:
            at = min(at, ref.deadline)
        self.sender.send(
            [
                poll_message(
                    self.settings.poll_queue,
                    ref.run,
                    ref.run.attempt,
                    ref.poll + 1,
                    ref.databricks_run_id,
                    ref.deadline,
                    at,
                )
            ]
        )
        return Outcome("polled")

    def _finish(self, ref: PollRef, status: RunStatus | None, now: datetime, *, timed_out: bool) -> Outcome:
        run, etag = self.runs.get(ref.run.tenant, ref.run.job_id, ref.run.run_key)
        if run.state is not RunState.RUNNING or run.attempt != ref.run.attempt:
            return Outcome("already_handled", run)  # cancelled meanwhile, or a stale poll
        current = run.current_attempt or Attempt(number=run.attempt)
        failure: str | None
        code: str | None
        error: str | None
        if status is None:
            result, failure, code, error = (
                RunState.FAILED,
                "transient",
                None,
                "the run is gone from Databricks",
            )
        elif timed_out:
            result, failure, code, error = RunState.TIMED_OUT, "timeout", status.code, "timed out; cancelled"
        else:
            result = {
                Phase.SUCCEEDED: RunState.SUCCEEDED,
                Phase.CANCELLED: RunState.CANCELLED,
                Phase.TIMED_OUT: RunState.TIMED_OUT,
            }.get(status.phase, RunState.FAILED)
            failure = status.failure.value if status.failure else None
            code, error = status.code, status.message or None
        record = current.model_copy(
            update={
                "started_at": status.started_at if status else None,
                "ended_at": (status.ended_at if status and status.ended_at else now),
                "result": result.value,
                "failure": failure,
                "code": code,
                "error": error,
            }
        )
        run = run.with_attempt(record)
        if result in RETRYABLE:
            job = self._job(run)
            policy = job.definition.retry if job else None
            if (
                policy
                and job
                and job.status is not JobStatus.CANCELLED
                and policy.should_retry(run.attempt, failure or "user")
            ):
                delay = policy.delay_after(run.attempt, self.rand())
                waiting = run.moved(
                    RunState.RETRY_WAIT,
                    now,
                    reason=f"attempt {run.attempt} {result.value.lower()}: {error or code or failure}",
                    attempt=run.attempt + 1,
                )
                self.runs.save(waiting, etag)
                self.sender.send(
                    [launch_message(self.settings.launch_queue, waiting, waiting.attempt, now + delay)]
                )
                log.info(
                    "retrying",
                    extra={"job_id": run.job_id, "run_key": run.run_key, "attempt": waiting.attempt},
                )
                return Outcome("retrying", waiting)
        reason = "" if result is RunState.SUCCEEDED else (error or code or result.value.lower())
        return self._end(run, etag, result, now, reason)

    # -- ending a run --------------------------------------------------------------------------------

    def _end(self, run: Run, etag: str, state: RunState, now: datetime, reason: str) -> Outcome:
        """Save a run that reached a terminal state, note it on the job, and release a buffered run."""
        ended = run.moved(state, now, reason=reason)
        self.runs.save(ended, etag)
        metrics.runs_finished.add(1, {"state": state.value, "job_id": run.job_id, "tenant": run.tenant})
        job = self._note_on_job(ended)
        if job is not None and job.definition.overlap is OverlapPolicy.BUFFER_ONE:
            self._release_buffered(ended, now)
        return Outcome("finished", ended)

    def _job(self, run: Run) -> Job | None:
        try:
            return self.jobs.get(run.tenant, run.job_id)[0]
        except NotFound:
            return None

    def _note_on_job(self, run: Run) -> Job | None:
        """The job's "last run" shows this run, unless a newer one is already noted."""
        for _ in range(_TRIES):
            try:
                job, etag = self.jobs.get(run.tenant, run.job_id)
            except NotFound:
                return None
            if job.last_run_at is not None and job.last_run_at > run.scheduled_for:
                return job
            after = job.model_copy(
                update={"last_run_state": run.state.value, "last_run_at": run.scheduled_for}
            )
            try:
                self.jobs.save(job, etag, after, audit=None)
                return after
            except ConcurrencyConflict:
                continue
        return None

    def _release_buffered(self, ended: Run, now: datetime) -> None:
        waiting = self.runs.list(ended.tenant, ended.job_id, state=RunState.QUEUED.value, limit=1).items
        if waiting:
            self.sender.send([launch_message(self.settings.launch_queue, waiting[0], 1, now)])

    # -- what the API asks for -----------------------------------------------------------------------

    def run_now(self, tenant: str, job_id: str, actor: Actor) -> Run:
        """A manual run of the job's current definition, launched right away."""
        job, _ = self.jobs.get(tenant, job_id)
        if job.status is JobStatus.CANCELLED:
            raise Conflict(f"job {job_id} is cancelled; it cannot run")
        now = self.clock.now()
        run = Run.manual(
            tenant=tenant,
            job_id=job_id,
            run_key=manual_run_key(new_id(now)),
            job_version=job.version,
            now=now,
        )
        run, _ = self.runs.add_if_absent(run.model_copy(update={"reason": f"run now by {actor.name}"}))
        self.sender.send([launch_message(self.settings.launch_queue, run, 1, now)])
        return run

    def retry(self, tenant: str, job_id: str, run_key: str, actor: Actor) -> Run:
        """A new attempt of a FAILED or TIMED_OUT run, launched right away (whatever max_attempts says)."""
        for _ in range(_TRIES):
            run, etag = self.runs.get(tenant, job_id, run_key)
            if run.state not in RETRYABLE:
                raise Conflict(
                    f"run {run.id} is {run.state}: only a FAILED or TIMED_OUT run can be retried",
                    errors={"state": run.state.value},
                )
            now = self.clock.now()
            waiting = run.moved(
                RunState.RETRY_WAIT, now, reason=f"retry by {actor.name}", attempt=run.attempt + 1
            )
            try:
                self.runs.save(waiting, etag)
            except ConcurrencyConflict:
                continue
            self.sender.send([launch_message(self.settings.launch_queue, waiting, waiting.attempt, now)])
            return waiting
        raise Conflict(f"run {run_key} kept changing; try again")

    def retry_latest_failed(self, tenant: str, job_id: str, actor: Actor) -> Run:
        self.jobs.get(tenant, job_id)
        for run in self.runs.list(tenant, job_id, limit=_RECENT_RUNS).items:
            if run.state in RETRYABLE:
                return self.retry(tenant, job_id, run.run_key, actor)
        raise Conflict(f"job {job_id} has no failed run to retry")

    def cancel(self, tenant: str, job_id: str, run_key: str, reason: str) -> Run:
        """Cancel a run: in Databricks if it is running there, and here. A finished run: Conflict."""
        for _ in range(_TRIES):
            run, etag = self.runs.get(tenant, job_id, run_key)
            if run.state.is_terminal:
                raise Conflict(f"run {run.id} already ended ({run.state})", errors={"state": run.state.value})
            if run.state in (RunState.LAUNCHING, RunState.RUNNING) and run.databricks_run_id is not None:
                self.databricks.cancel(run.databricks_run_id)
            now = self.clock.now()
            current = run.current_attempt
            if current is not None and current.result is None:
                run = run.with_attempt(current.model_copy(update={"ended_at": now, "result": "CANCELLED"}))
            try:
                return self._end(run, etag, RunState.CANCELLED, now, reason).run or run
            except ConcurrencyConflict:
                continue
        raise Conflict(f"run {run_key} kept changing; try again")

    def cancel_active(self, tenant: str, job_id: str, reason: str) -> list[Run]:
        """Cancel every run of the job that has not ended (when the job itself is cancelled)."""
        cancelled = []
        for run in self.runs.list(tenant, job_id, limit=_RECENT_RUNS).items:
            if not run.state.is_terminal:
                try:
                    cancelled.append(self.cancel(tenant, job_id, run.run_key, reason))
                except Conflict:
                    continue  # it ended meanwhile
        return cancelled

    def dead_lettered(self, ref: RunRef, queue: str, why: str) -> Run | None:
        """A message about this run exhausted its deliveries: the run must not hang. FAILED, with why."""
        try:
            run, etag = self.runs.get(ref.tenant, ref.job_id, ref.run_key)
        except NotFound:
            return None
        if run.state.is_terminal:
            return run
        if run.databricks_run_id is not None and run.state is RunState.RUNNING:
            try:
                self.databricks.cancel(run.databricks_run_id)  # nobody would follow it any more
            except ExternalError:
                log.warning("could not cancel an orphaned Databricks run", extra={"job_id": run.job_id})
        return self._end(run, etag, RunState.FAILED, self.clock.now(), f"dead-lettered on {queue}: {why}").run
