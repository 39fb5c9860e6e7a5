"""The launch side of a run. For now (until Databricks launching lands) it records that the launch was due.

A launch message only says "look at run X now". The handler re-reads the run and
the job and decides from their state, so a duplicate, late or replayed message
does no harm. What it records today: the occurrence is QUEUED (its launch was due
and delivered) or SKIPPED with the reason (job cancelled, paused or edited since).
Issue 4 replaces the QUEUED step with the Databricks launch itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.adapters.due_index import DueIndex
from shared.adapters.job_store import JobStore
from shared.adapters.run_store import RunStore
from shared.domain.clock import Clock
from shared.domain.errors import InvalidInput, NotFound
from shared.domain.job import JobStatus
from shared.domain.run import Run, RunState, SkipReason
from shared.telemetry import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunRef:
    tenant: str
    job_id: str
    run_key: str
    attempt: int

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> RunRef:
        try:
            run = body["run"]
            return cls(
                str(run["tenant"]), str(run["job_id"]), str(run["run_key"]), int(body.get("attempt", 1))
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInput(f"not a launch message: {err}") from err


@dataclass(frozen=True, slots=True)
class LaunchOutcome:
    run: Run | None
    action: str  # "queued", "skipped", "already_handled", "unknown_run"
    lag_ms: float | None = None


class LaunchService:
    def __init__(self, *, jobs: JobStore, runs: RunStore, due: DueIndex, clock: Clock) -> None:
        self.jobs = jobs
        self.runs = runs
        self.due = due
        self.clock = clock

    def handle(self, ref: RunRef) -> LaunchOutcome:
        now = self.clock.now()
        try:
            run, etag = self.runs.get(ref.tenant, ref.job_id, ref.run_key)
        except NotFound:
            log.warning("launch for an unknown run", extra={"job_id": ref.job_id, "run_key": ref.run_key})
            return LaunchOutcome(None, "unknown_run")
        pending = self.due.pending_for(ref.tenant, ref.job_id, ref.run_key, run.scheduled_for)
        if run.state is not RunState.SCHEDULED:
            self.due.remove(pending)  # an earlier delivery did the work and may have crashed before this
            return LaunchOutcome(run, "already_handled")
        lag_ms = (now - run.scheduled_for).total_seconds() * 1000
        moved = run.moved(RunState.QUEUED, now, reason="launch due")
        action = "queued"
        try:
            job, _ = self.jobs.get(ref.tenant, ref.job_id)
            skip = self._skip_reason(job.status, job.version, run)
        except NotFound:
            skip = SkipReason.JOB_CANCELLED
        if skip is not None:
            moved = run.moved(RunState.SKIPPED, now, reason=skip.value)
            action = "skipped"
        self.runs.save(moved, etag)  # ConcurrencyConflict: another delivery won; this one is redelivered
        self.due.remove(pending)
        metrics.fire_lag_ms.record(lag_ms)
        if moved.state.is_terminal:
            metrics.runs_finished.add(
                1, {"state": moved.state.value, "job_id": run.job_id, "tenant": run.tenant}
            )
        log.info(
            "launch %s", action, extra={"job_id": ref.job_id, "run_key": ref.run_key, "lag_ms": round(lag_ms)}
        )
        return LaunchOutcome(moved, action, lag_ms)

    @staticmethod
    def _skip_reason(status: JobStatus, version: int, run: Run) -> SkipReason | None:
        if status is JobStatus.CANCELLED:
            return SkipReason.JOB_CANCELLED
        if status is JobStatus.PAUSED:
            return SkipReason.PAUSED
        if version != run.job_version:
            return SkipReason.SUPERSEDED
        return None
