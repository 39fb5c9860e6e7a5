"""The tick: turn what is due into recorded occurrences and launch messages, exactly once.

For each due-index row before `now + lookahead` the tick re-reads the job (the row
is only a hint) and, if the job is due, walks its fire times up to the horizon:

1. records each occurrence as a run (insert if absent: key `s-{scheduled ms}`),
2. writes the job's next due row and a pending-launch row per launch (one request),
3. sends the launch messages, scheduled for the exact fire time, with ids derived
   from run key and attempt,
4. advances the job (ETag: if it changed, re-read and decide again),
5. deletes the due row it came from.

A crash between any two steps leaves something the next tick (or the reconcile)
completes: runs are found instead of created, messages carry the same ids, a
stale due row is dropped, and the new due row exists before the job moves.
Fire times that passed while the scheduler was down follow the job's misfire
policy; a paused job records SKIPPED occurrences only if it asked to.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from threading import Lock

from shared.adapters.due_index import DueEntry, DueIndex
from shared.adapters.job_store import JobStore
from shared.adapters.queue import MessageSender
from shared.adapters.run_store import RunStore
from shared.domain.clock import Clock
from shared.domain.errors import ConcurrencyConflict, NotFound
from shared.domain.job import Job, JobStatus, MisfirePolicy
from shared.domain.run import Run, RunState, SkipReason
from shared.services.messages import launch_message
from shared.telemetry import metrics

log = logging.getLogger(__name__)

MISFIRE_GRACE = timedelta(seconds=60)  # later than this, a fire time counts as missed
MAX_OCCURRENCES_PER_JOB = 100  # per tick; a longer backlog continues on the next tick
CATCH_UP_CAP = 100
_MAX_TRIES = 5


@dataclass
class TickReport:
    visited: int = 0
    fired: int = 0
    skipped: int = 0
    stale_rows: int = 0
    conflicts: int = 0
    errors: int = 0
    _lock: Lock = field(default_factory=Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


@dataclass(frozen=True)
class _Plan:
    runs: list[Run]
    next_fire: datetime | None
    next_dst: str | None


class Ticker:
    def __init__(
        self,
        *,
        jobs: JobStore,
        runs: RunStore,
        due: DueIndex,
        sender: MessageSender,
        clock: Clock,
        launch_queue: str,
        lookahead: timedelta,
        concurrency: int = 16,
    ) -> None:
        self.jobs = jobs
        self.runs = runs
        self.due = due
        self.sender = sender
        self.clock = clock
        self.launch_queue = launch_queue
        self.lookahead = lookahead
        self.concurrency = concurrency

    def tick(self) -> TickReport:
        """One pass over every shard; work grows with what is due, not with how many jobs exist."""
        now = self.clock.now()
        horizon = now + self.lookahead
        report = TickReport()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="tick") as pool:
            entries: Iterable[DueEntry] = (
                e for shard in self.due.shards for e in self.due.due(shard, horizon)
            )
            for _ in pool.map(lambda e: self._visit_safely(e, now, horizon, report), entries):
                pass
        metrics.ticks.add(1)
        metrics.occurrences_fired.add(report.fired)
        log.log(
            logging.INFO if report.visited else logging.DEBUG,
            "tick: %d visited, %d fired, %d skipped, %d stale rows, %d errors",
            report.visited,
            report.fired,
            report.skipped,
            report.stale_rows,
            report.errors,
        )
        return report

    def _visit_safely(self, entry: DueEntry, now: datetime, horizon: datetime, report: TickReport) -> None:
        try:
            self.visit(entry, now, horizon, report)
        except Exception:
            # One job's failure must not stop the others; its due row stays, so the next tick retries.
            report.add(errors=1)
            log.exception("tick failed for a job", extra={"tenant": entry.tenant, "job_id": entry.job_id})

    def visit(self, entry: DueEntry, now: datetime, horizon: datetime, report: TickReport) -> None:
        """Bring one job up to date with `now`; any due row of a job wakes the whole job."""
        report.add(visited=1)
        for _ in range(_MAX_TRIES):
            try:
                job, etag = self.jobs.get(entry.tenant, entry.job_id)
            except NotFound:
                job = None
            fired = False
            if job is not None and job.is_due_indexed and job.next_fire_at and job.next_fire_at < horizon:
                try:
                    job = self._fire(job, etag, now, horizon, report)
                    fired = True
                except ConcurrencyConflict:
                    report.add(conflicts=1)
                    continue  # someone else moved the job: look again
            current = self.due.entry(job) if job is not None else None
            if current is None or current.rk != entry.rk:
                self.due.remove(entry)
                report.add(stale_rows=0 if fired else 1)
            return
        log.warning("job kept changing during the tick; next tick", extra={"job_id": entry.job_id})

    def _fire(self, job: Job, etag: str, now: datetime, horizon: datetime, report: TickReport) -> Job:
        plan = self._plan(job, now, horizon)
        recorded = [self.runs.add_if_absent(run)[0] for run in plan.runs]
        to_launch = [run for run in recorded if run.state is RunState.SCHEDULED]
        pending = [
            self.due.pending_for(job.tenant, job.id, run.run_key, run.scheduled_for) for run in to_launch
        ]
        after = self._advanced(job, plan, recorded, now)
        new_entry = self.due.entry(after)
        if new_entry is not None:
            self.due.put(new_entry, pending)
        else:
            self.due.put_pending(self.due.shard_of(job.id), pending)
        if to_launch:
            self.sender.send([launch_message(self.launch_queue, run) for run in to_launch])
        self.jobs.save(job, etag, after, audit=None)
        fired = [r for r in plan.runs if r.state is RunState.SCHEDULED]
        report.add(fired=len(fired), skipped=len(plan.runs) - len(fired))
        if len(plan.runs) > len(fired):
            labels = {"state": RunState.SKIPPED.value, "job_id": job.id, "tenant": job.tenant}
            metrics.runs_finished.add(len(plan.runs) - len(fired), labels)
        return after

    def _plan(self, job: Job, now: datetime, horizon: datetime) -> _Plan:
        """Occurrences from the next fire time up to the horizon, with the misfire policy applied."""
        spec = job.definition.schedule
        paused = job.status is JobStatus.PAUSED
        limit = now if paused else horizon  # a paused job records a skip only once the time has passed
        policy = job.definition.misfire
        missed_before = now - MISFIRE_GRACE
        catch_up = self._catch_up_bounds(job, now) if policy is MisfirePolicy.CATCH_UP else None
        runs: list[Run] = []
        at, dst = job.next_fire_at, job.next_fire_dst
        while at is not None and at < limit and len(runs) < MAX_OCCURRENCES_PER_JOB:
            following = spec.next_fire(at)
            skip: SkipReason | None = None
            if paused:
                skip = SkipReason.PAUSED
            elif at < missed_before:
                following_at = following.at if following else None
                skip = self._misfire(policy, at, following_at, missed_before, catch_up)
            runs.append(
                Run.occurrence(
                    tenant=job.tenant,
                    job_id=job.id,
                    scheduled_for=at,
                    job_version=job.version,
                    now=now,
                    skipped=skip,
                )
            )
            at, dst = (following.at, following.dst.value) if following else (None, None)
        return _Plan(runs, at, dst)

    @staticmethod
    def _misfire(
        policy: MisfirePolicy,
        at: datetime,
        following: datetime | None,
        missed_before: datetime,
        catch_up: tuple[datetime, datetime] | None,
    ) -> SkipReason | None:
        if policy is MisfirePolicy.SKIP:
            return SkipReason.MISSED
        if policy is MisfirePolicy.FIRE_ONCE:
            last_missed = following is None or following >= missed_before
            return None if last_missed else SkipReason.MISSED
        assert catch_up is not None
        window_start, cap_floor = catch_up
        if at < window_start:
            return SkipReason.MISSED
        return None if at >= cap_floor else SkipReason.CATCH_UP_LIMIT

    def _catch_up_bounds(self, job: Job, now: datetime) -> tuple[datetime, datetime]:
        """Where the catch-up window starts, and the earliest of the last CATCH_UP_CAP missed times in it."""
        window_start = now - job.definition.catch_up_window
        recent: deque[datetime] = deque(maxlen=CATCH_UP_CAP)
        fire = job.definition.schedule.next_fire(window_start - timedelta(microseconds=1))
        steps = 0
        while fire is not None and fire.at < now - MISFIRE_GRACE and steps < 20_000:
            recent.append(fire.at)
            fire = job.definition.schedule.next_fire(fire.at)
            steps += 1
        return window_start, recent[0] if len(recent) == CATCH_UP_CAP else window_start

    @staticmethod
    def _advanced(job: Job, plan: _Plan, recorded: list[Run], now: datetime) -> Job:
        """The job after this tick: next fire time moved on, the newest occurrence noted."""
        update: dict[str, object] = {"next_fire_at": plan.next_fire, "next_fire_dst": plan.next_dst}
        if plan.next_fire is None and job.status is JobStatus.ACTIVE:
            update["status"] = JobStatus.COMPLETED
        if recorded:
            newest = max(recorded, key=lambda r: r.scheduled_for)
            update["last_run_state"] = newest.state.value
            update["last_run_at"] = newest.scheduled_for
        return job.model_copy(update=update)
