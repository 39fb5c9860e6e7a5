"""What the API asks of runs: run now, retry, cancel.

Each writes the run with the intent it waits for, then sends. A send that fails after the write
does not fail the request: the intent is recorded, and the watchdog sends it within its grace
period. (Answering 503 would invite the caller to ask again for something already done.)
"""

from __future__ import annotations

import logging

from shared.domain.errors import Conflict, ExternalError, NotFound
from shared.domain.ids import new_id
from shared.domain.job import Actor, Job, JobStatus
from shared.domain.run import RETRYABLE, Run, RunState, Trigger, manual_run_key
from shared.services.conflicts import until_saved
from shared.services.messages import launch_intent
from shared.services.run_context import RunContext
from shared.services.stopping import stop

log = logging.getLogger(__name__)

_RECENT = 50


class RunCommands:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def run_now(self, tenant: str, job_id: str, actor: Actor) -> Run:
        """A manual run of the job's current definition, launched right away."""
        ctx = self.ctx
        job, _ = ctx.job_repository.get(tenant, job_id)
        if job.status is JobStatus.CANCELLED:
            raise Conflict(f"job {job_id} is cancelled; it cannot run")
        if job.batch is not None:
            raise Conflict(
                f"job {job_id} is a batch: its points run in rounds (POST /api/batches/{job_id}/retry-failed)"
            )
        now = ctx.clock.now()
        run = Run.manual(
            tenant=tenant,
            job_id=job_id,
            run_key=manual_run_key(new_id(now)),
            job_version=job.version,
            now=now,
            shard=ctx.due_index.shard_for(job),
        )
        run = run.model_copy(update={"reason": f"run now by {actor.name}"})
        run = ctx.watched(run.model_copy(update={"intent": launch_intent(run, 1, now)}), now)
        run, _ = ctx.run_repository.add(run)
        self._send(run)
        return run

    def retry(self, tenant: str, job_id: str, run_key: str, actor: Actor) -> Run:
        """A new attempt of a FAILED or TIMED_OUT run, launched right away (whatever max_attempts says)."""
        ctx = self.ctx
        job, _ = ctx.job_repository.get(tenant, job_id)
        shard = ctx.due_index.shard_for(job)

        def attempt() -> Run:
            run, etag = ctx.run_repository.get(shard, tenant, job_id, run_key)
            if run.is_batch or (run.parent is not None and run.trigger is Trigger.BATCH):
                raise Conflict(
                    f"run {run.id} is a batch's round or point: retry the batch's failed points with "
                    f"POST /api/batches/{job_id}/retry-failed",
                    errors={"state": run.state.value},
                )
            if run.is_pipeline or run.parent is not None:
                raise Conflict(
                    f"run {run.id} is a pipeline run or one of its steps: a retry of a step would not "
                    "run what depends on it",
                    errors={"state": run.state.value},
                )
            if run.state not in RETRYABLE:
                raise Conflict(
                    f"run {run.id} is {run.state}: only a FAILED or TIMED_OUT run can be retried",
                    errors={"state": run.state.value},
                )
            now = ctx.clock.now()
            nxt = run.attempt + 1
            waiting = run.moved(RunState.RETRY_WAIT, now, reason=f"retry by {actor.name}", attempt=nxt)
            waiting = waiting.model_copy(update={"intent": launch_intent(waiting, nxt, now)})
            return ctx.write(run, etag, waiting, now)[0]

        waiting = until_saved(attempt, f"run {run_key}")
        self._send(waiting)
        return waiting

    def retry_latest_failed(self, tenant: str, job_id: str, actor: Actor) -> Run:
        job, _ = self.ctx.job_repository.get(tenant, job_id)
        for run, _ in self.ctx.run_repository.recent(
            self.ctx.due_index.shard_for(job), tenant, job_id, _RECENT
        ):
            if run.state in RETRYABLE:
                return self.retry(tenant, job_id, run.run_key, actor)
        raise Conflict(f"job {job_id} has no failed run to retry")

    def cancel(self, tenant: str, job_id: str, run_key: str, reason: str) -> Run:
        """Cancel a run, in Databricks too. A run that had already ended: Conflict, saying how it ended
        (one that ended in Databricks unnoticed is recorded as it ended first)."""
        job, _ = self.ctx.job_repository.get(tenant, job_id)
        run, _ = self.ctx.run_repository.get(self.ctx.due_index.shard_for(job), tenant, job_id, run_key)
        if run.state.is_terminal:
            raise Conflict(f"run {run.id} already ended ({run.state})", errors={"state": run.state.value})
        stopped = stop(self.ctx, run, reason)
        if stopped.state not in (RunState.CANCELLED, RunState.CANCELLING):
            raise Conflict(
                f"run {run.id} had already ended ({stopped.state})", errors={"state": stopped.state.value}
            )
        return stopped

    def cancel_active(self, job: Job, reason: str) -> list[Run]:
        """Cancel every run of the job that has not ended (when the job itself is cancelled)."""
        cancelled = []
        for run, _ in self.ctx.run_repository.recent(
            self.ctx.due_index.shard_for(job), job.tenant, job.id, _RECENT
        ):
            if run.state.is_terminal:
                continue
            try:
                stopped = stop(self.ctx, run, reason)
            except (Conflict, NotFound):
                continue  # it ended meanwhile
            if stopped.state is RunState.CANCELLED:
                cancelled.append(stopped)
        return cancelled

    def _send(self, run: Run) -> None:
        try:
            self.ctx.send(run)
        except ExternalError as err:
            log.warning(
                "send failed after the run was recorded; the watchdog will send it: %s",
                err.detail,
                extra={"job_id": run.job_id, "run_key": run.run_key},
            )
