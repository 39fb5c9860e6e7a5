"""The tick: turn what is due into recorded occurrences and launch messages, exactly once.

For each due row before `now + lookahead` the tick re-reads the job (the row is only a hint)
and, if the job is due, walks its fire times up to the horizon:

1. records each occurrence as a run (SCHEDULED, its launch as its intent, its watch hint) and
   moves the job's due row to the next fire time: ONE transaction in the job's shard;
2. sends the launch messages, scheduled for the exact fire time, with ids derived from run key
   and attempt (a send that fails is left to the watchdog: the intent is recorded);
3. advances the job (ETag: if it changed, re-read and decide again).

A crash after 1 leaves the runs and their hints (the watchdog sends a lost launch) and the job
not yet advanced (the tick revisits it at its new due row: the runs are found, not recreated).
Fire times that passed while the scheduler was down follow the job's misfire policy; a paused
job records SKIPPED occurrences only if it asked to. Three storage requests per job visited.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from threading import Lock

from shared.adapters.queue import MessageSender
from shared.domain.clock import Clock
from shared.domain.errors import ConcurrencyConflict, ExternalError, NotFound
from shared.domain.job import Job, JobStatus, MisfirePolicy
from shared.domain.policies import CatchUpBounds, WatchPolicy, misfire_verdict, watch_at
from shared.domain.run import Run, RunState, SkipReason
from shared.domain.schedule import DstNote
from shared.services.messages import Queues, launch_intent, message_for
from shared.services.ports import DueEntry, DueIndex, JobRepository, RunRepository
from shared.telemetry import metrics

log = logging.getLogger(__name__)

MISFIRE_GRACE = timedelta(seconds=60)  # later than this, a fire time counts as missed
# Rows one job's fire may write (a transaction holds 100: each run and its hint, the due row moved);
# a longer backlog continues on the next tick.
MAX_ROWS_PER_FIRE = 98
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
    send_failures: int = 0
    _lock: Lock = field(default_factory=Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


@dataclass(frozen=True)
class _Plan:
    runs: list[Run]
    next_fire: datetime | None
    next_dst: DstNote | None


class Ticker:
    def __init__(
        self,
        *,
        job_repository: JobRepository,
        run_repository: RunRepository,
        due_index: DueIndex,
        sender: MessageSender,
        clock: Clock,
        queues: Queues,
        lookahead: timedelta,
        watch: WatchPolicy,
        concurrency: int = 16,
    ) -> None:
        self.job_repository = job_repository
        self.run_repository = run_repository
        self.due_index = due_index
        self.sender = sender
        self.clock = clock
        self.queues = queues
        self.lookahead = lookahead
        self.watch = watch
        self.concurrency = concurrency

    def tick(self) -> TickReport:
        """One pass over every shard; work grows with what is due, not with how many jobs exist."""
        now = self.clock.now()
        horizon = now + self.lookahead
        report = TickReport()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="tick") as pool:
            entries = (e for shard in self.due_index.shards for e in self._due(shard, horizon, report))
            for _ in pool.map(lambda e: self._visit_safely(e, now, horizon, report), entries):
                pass
        metrics.ticks.add(1)
        metrics.occurrences_fired.add(report.fired)
        log.log(
            logging.INFO if report.visited else logging.DEBUG,
            "tick: %d visited, %d fired, %d skipped, %d stale rows, %d errors, %d failed sends",
            report.visited,
            report.fired,
            report.skipped,
            report.stale_rows,
            report.errors,
            report.send_failures,
        )
        return report

    def _due(self, shard: str, horizon: datetime, report: TickReport) -> Iterable[DueEntry]:
        """A shard's due rows; a shard storage cannot read now waits for the next tick, alone."""
        try:
            return list(self.due_index.due(shard, horizon))
        except ExternalError as err:
            report.add(errors=1)
            log.warning("could not read shard %s of the due index: %s", shard, err.detail)
            return []

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
                job, etag = self.job_repository.get(entry.tenant, entry.job_id)
            except NotFound:
                job = None
            fired_from: DueEntry | None = None
            if job is not None and job.is_due_indexed and job.next_fire_at and job.next_fire_at < horizon:
                try:
                    fired_from = self.due_index.entry(job)
                    self._fire(job, etag, now, horizon, report)
                except ConcurrencyConflict:
                    report.add(conflicts=1)
                    continue  # someone else moved the job: look again
            if fired_from is None or fired_from != entry:
                self._drop_if_stale(entry, job)
                report.add(stale_rows=0 if fired_from else 1)
            return
        log.warning("job kept changing during the tick; next tick", extra={"job_id": entry.job_id})

    def _drop_if_stale(self, entry: DueEntry, job: Job | None) -> None:
        current = self.due_index.entry(job) if job is not None else None
        if current is None or current != entry:
            self.due_index.remove(entry)

    def _fire(self, job: Job, etag: str, now: datetime, horizon: datetime, report: TickReport) -> None:
        plan = self._plan(job, now, horizon)
        due_from, due_to = self.due_index.entry(job), self.due_index.entry(self._advanced(job, plan, []))
        shard = self.due_index.shard_for(job)
        # A schedule that ended keeps its due row until the job says COMPLETED: a crash in between
        # must leave the job visited again, not a job nobody visits.
        recorded = self.run_repository.record_fire(shard, plan.runs, due_from if due_to else None, due_to)
        after = self._advanced(job, plan, recorded)
        to_launch = [run for run in recorded if run.state is RunState.SCHEDULED]
        if to_launch:
            try:
                self.sender.send(
                    [message_for(run, run.intent, self.queues) for run in to_launch if run.intent]
                )
            except ExternalError as err:
                report.add(send_failures=1)  # recorded with their hints: the watchdog sends them
                log.warning("launch send failed; the watchdog will send it: %s", err.detail)
        self.job_repository.save(job, etag, after, audit=None)
        if due_to is None and due_from is not None:
            self.due_index.remove(due_from)
        fired = [r for r in plan.runs if r.state is RunState.SCHEDULED]
        report.add(fired=len(fired), skipped=len(plan.runs) - len(fired))
        if len(plan.runs) > len(fired):
            labels = {"state": RunState.SKIPPED.value, "job_id": job.id, "tenant": job.tenant}
            metrics.runs_finished.add(len(plan.runs) - len(fired), labels)

    def _plan(self, job: Job, now: datetime, horizon: datetime) -> _Plan:
        """Occurrences from the next fire time up to the horizon, with the misfire policy applied."""
        spec = job.definition.schedule
        paused = job.status is JobStatus.PAUSED
        limit = now if paused else horizon  # a paused job records a skip only once the time has passed
        policy = job.definition.misfire
        missed_before = now - MISFIRE_GRACE
        catch_up = self._catch_up_bounds(job, now) if policy is MisfirePolicy.CATCH_UP else None
        shard = self.due_index.shard_for(job)
        runs: list[Run] = []
        rows = 0
        at, dst = job.next_fire_at, job.next_fire_dst
        while at is not None and at < limit and rows + 2 <= MAX_ROWS_PER_FIRE:
            following = spec.next_fire(at)
            if paused:
                skip: SkipReason | None = SkipReason.PAUSED
            else:
                skip = misfire_verdict(
                    policy, at, following.at if following else None, missed_before, catch_up
                )
            run = Run.occurrence(
                tenant=job.tenant,
                job_id=job.id,
                scheduled_for=at,
                job_version=job.version,
                now=now,
                skipped=skip,
                shard=shard,
            )
            if skip is None:
                run = run.model_copy(update={"intent": launch_intent(run, 1, at)})
                run = run.model_copy(update={"watch_at": watch_at(run, self.watch, now)})
            runs.append(run)
            rows += 1 if skip else 2
            at, dst = (following.at, following.dst) if following else (None, None)
        return _Plan(runs, at, dst)

    def _catch_up_bounds(self, job: Job, now: datetime) -> CatchUpBounds:
        """Where the catch-up window starts, and the earliest of the last CATCH_UP_CAP missed times in it."""
        window_start = now - job.definition.catch_up_window
        recent: deque[datetime] = deque(maxlen=CATCH_UP_CAP)
        fire = job.definition.schedule.next_fire(window_start - timedelta(microseconds=1))
        steps = 0
        while fire is not None and fire.at < now - MISFIRE_GRACE and steps < 20_000:
            recent.append(fire.at)
            fire = job.definition.schedule.next_fire(fire.at)
            steps += 1
        floor = recent[0] if len(recent) == CATCH_UP_CAP else window_start
        return CatchUpBounds(window_start, floor)

    @staticmethod
    def _advanced(job: Job, plan: _Plan, recorded: list[Run]) -> Job:
        """The job after this tick: next fire time moved on, the newest occurrence noted."""
        update: dict[str, object] = {"next_fire_at": plan.next_fire, "next_fire_dst": plan.next_dst}
        if plan.next_fire is None and job.status is JobStatus.ACTIVE:
            update["status"] = JobStatus.COMPLETED
        if recorded:
            newest = max(recorded, key=lambda r: r.scheduled_for)
            update["last_run_state"] = newest.state
            update["last_run_at"] = newest.scheduled_for
        return job.model_copy(update=update)
