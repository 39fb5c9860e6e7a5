"""Use cases of the job management API: create, read, list, edit, pause, resume, cancel, audit, preview.

Every change is read-modify-write on the job row's ETag. When storage says the
row changed under us (the tick advanced it, another edit landed), the change is
re-applied to the fresh row: a caller's edit is never silently lost, and a
caller who sends the version it saw (If-Match) gets a precondition failure
instead of overwriting someone else's edit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from shared.domain.audit import audit_entry
from shared.domain.clock import Clock
from shared.domain.errors import InvalidInput, InvalidSchedule, NotFound, PreconditionFailed
from shared.domain.ids import new_id
from shared.domain.job import (
    Actor,
    AuditEntry,
    BatchInfo,
    Job,
    JobDefinition,
    JobStatus,
    JobSummary,
    TemplateRef,
)
from shared.domain.run import Run
from shared.domain.schedule import FireTime, ScheduleSpec
from shared.services import dependents
from shared.services.conflicts import until_saved
from shared.services.ports import DueIndex, JobQuery, JobRepository, Page, RunRepository

log = logging.getLogger(__name__)

MAX_PREVIEW = 100


def _no_fire_time(spec: ScheduleSpec, now: datetime) -> InvalidSchedule:
    if spec.at is not None and spec.at <= now:
        errors = {"schedule.at": "is in the past"}
    elif spec.end_at is not None and spec.end_at <= now:
        errors = {"schedule.end_at": "is in the past"}
    else:
        errors = {"schedule": "has no fire time after now"}
    field, reason = next(iter(errors.items()))
    return InvalidSchedule(f"the schedule would never fire: {field} {reason}", errors=errors)


class JobService:
    def __init__(
        self, repository: JobRepository, due_index: DueIndex, clock: Clock, run_repository: RunRepository
    ) -> None:
        self.repository = repository
        self.due_index = due_index
        self.clock = clock
        self.run_repository = run_repository

    def create(
        self,
        tenant: str,
        actor: Actor,
        definition: JobDefinition,
        template: TemplateRef | None = None,
        *,
        job_id: str | None = None,
        batch: BatchInfo | None = None,
        marker: tuple[str, Mapping[str, str]] | None = None,
    ) -> Job:
        now = self.clock.now()
        job_id = job_id or new_id(now)
        self._check_triggers(tenant, job_id, definition)
        job = Job.new(
            job_id=job_id,
            tenant=tenant,
            definition=definition,
            actor=actor,
            now=now,
            shard=self.due_index.new_shard(job_id),
            template=template,
            batch=batch,
        )
        if job.next_fire_at is None and definition.schedule is not None:
            raise _no_fire_time(definition.schedule, now)
        entry = self.due_index.entry(job)
        if entry is not None:
            self.due_index.put(entry)  # first: a crash after it leaves a stale row, never a missing one
        self.repository.add(job, audit_entry("create", None, job, actor, now), marker)
        log.info("job created", extra={"tenant": tenant, "job_id": job.id})
        return job

    def get(self, tenant: str, job_id: str) -> Job:
        return self.repository.get(tenant, job_id)[0]

    def list_jobs(self, tenant: str, query: JobQuery) -> Page[JobSummary]:
        return self.repository.find(tenant, query)

    def audit(self, tenant: str, job_id: str, limit: int, continuation: str | None) -> Page[AuditEntry]:
        self.repository.get(tenant, job_id)  # 404 for a job that does not exist
        return self.repository.audit_trail(tenant, job_id, limit, continuation)

    def job_runs(
        self, tenant: str, job_id: str, state: str | None, limit: int, continuation: str | None
    ) -> Page[Run]:
        """The job's runs, newest first (404 for a job that does not exist)."""
        return self.job_runs_of(tenant, job_id, state, limit, continuation)[1]

    def job_runs_of(
        self, tenant: str, job_id: str, state: str | None, limit: int, continuation: str | None
    ) -> tuple[Job, Page[Run]]:
        job = self.get(tenant, job_id)
        shard = self.due_index.shard_for(job)
        return job, self.run_repository.history(
            shard, tenant, job_id, state=state, limit=limit, continuation=continuation
        )

    def run(self, tenant: str, job_id: str, run_key: str) -> Run:
        return self.run_of(tenant, job_id, run_key)[1]

    def run_of(self, tenant: str, job_id: str, run_key: str) -> tuple[Job, Run]:
        """The run and its job (a pipeline run's steps are read against the job's definition)."""
        job = self.get(tenant, job_id)
        return job, self.run_repository.get(self.due_index.shard_for(job), tenant, job_id, run_key)[0]

    def update(
        self,
        tenant: str,
        job_id: str,
        actor: Actor,
        definition: JobDefinition,
        expected_version: int | None = None,
    ) -> Job:
        def edit(job: Job, now: datetime) -> Job:
            if expected_version is not None and job.version != expected_version:
                raise PreconditionFailed(
                    f"job {job_id} is at version {job.version}, not {expected_version}: "
                    "read it again and re-apply your change"
                )
            self._check_triggers(tenant, job_id, definition)
            edited = job.edited(definition, actor, now)
            if edited.next_fire_at is None and definition.schedule is not None:
                raise _no_fire_time(definition.schedule, now)
            return edited

        return self._change(tenant, job_id, actor, "update", edit)

    def pause(self, tenant: str, job_id: str, actor: Actor) -> Job:
        return self._change(tenant, job_id, actor, "pause", lambda job, now: job.paused(actor, now))

    def resume(self, tenant: str, job_id: str, actor: Actor) -> Job:
        return self._change(tenant, job_id, actor, "resume", lambda job, now: job.resumed(actor, now))

    def cancel(self, tenant: str, job_id: str, actor: Actor) -> Job:
        """Cancel: no further fires. Cancelling a cancelled job is a no-op, so DELETE can be retried."""
        job = self.get(tenant, job_id)
        if job.status is JobStatus.CANCELLED:
            return job
        return self._change(tenant, job_id, actor, "cancel", lambda job, now: job.cancelled(actor, now))

    def _check_triggers(self, tenant: str, job_id: str, definition: JobDefinition) -> None:
        """The jobs an `after` trigger names exist in the tenant, and waiting for them closes no
        cycle (a job that, through others, would wait for itself): else a 422."""
        upstream = definition.upstream_jobs
        if not upstream:
            return
        if job_id in upstream:
            raise InvalidInput("a job cannot wait for itself", errors={"triggers": "waits for itself"})
        for other in upstream:
            try:
                self.repository.get(tenant, other)
            except NotFound:
                raise InvalidInput(
                    f"no job {other} in this tenant", errors={"triggers": f"no job {other}"}
                ) from None
        loop = dependents.cycle(self.repository.dependencies(tenant), job_id, upstream)
        if loop:
            raise InvalidInput(
                "these jobs would wait for each other: " + " -> ".join(loop),
                errors={"triggers": "a cycle: " + " -> ".join(loop)},
            )

    def preview(self, spec: ScheduleSpec, count: int) -> list[FireTime]:
        """The next `count` fire times from now, or from `start_at` when that is later."""
        fires = spec.fire_times(self.clock.now())
        return [fire for _, fire in zip(range(min(count, MAX_PREVIEW)), fires, strict=False)]

    def _change(
        self, tenant: str, job_id: str, actor: Actor, action: str, apply: Callable[[Job, datetime], Job]
    ) -> Job:
        def attempt() -> Job:
            before, etag = self.repository.get(tenant, job_id)
            now = self.clock.now()
            after = apply(before, now)
            self._commit(before, etag, after, audit_entry(action, before, after, actor, now))
            return after

        job = until_saved(attempt, f"job {job_id}")
        log.info("job %s", action, extra={"tenant": tenant, "job_id": job_id})
        return job

    def _commit(self, before: Job, etag: str, after: Job, audit: AuditEntry) -> None:
        """Save the job, keeping the due index a superset of what is due (see due_index.py)."""
        old, new = self.due_index.entry(before), self.due_index.entry(after)
        if new is not None and new != old:
            self.due_index.put(new)
        self.repository.save(before, etag, after, audit)
        if old is not None and old != new:
            self.due_index.remove(old)
