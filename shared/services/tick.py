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
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from threading import Lock
from typing import TypeVar

from shared.adapters.queue import MessageSender
from shared.domain.clock import Clock
from shared.domain.errors import ConcurrencyConflict, Conflict, ExternalError, NotFound
from shared.domain.job import Job
from shared.domain.policies import WatchPolicy
from shared.domain.run import Run, RunState
from shared.services.conflicts import until_saved
from shared.services.messages import Queues, message_for
from shared.services.occurrences import Plan, advanced, plan_occurrences
from shared.services.ports import DueEntry, DueIndex, JobRepository, RunRepository
from shared.telemetry import metrics, run_attributes, span, traceparent

log = logging.getLogger(__name__)

_SEND_CHUNK = 100  # messages per send: a Service Bus batch holds at most 256 KiB
_T = TypeVar("_T")


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
class _Fire:
    """A due job, read and planned: what the tick writes for it."""

    entry: DueEntry  # the due row that woke it
    job: Job
    etag: str
    plan: Plan
    due_from: DueEntry | None
    due_to: DueEntry | None


def _due(job: Job, horizon: datetime) -> bool:
    return job.is_due_indexed and job.next_fire_at is not None and job.next_fire_at < horizon


def _one_per_job(fires: list[_Fire]) -> list[_Fire]:
    """A job two due rows woke fires once (a stale row's fire is dropped with it)."""
    seen: dict[str, _Fire] = {}
    for fire in fires:
        if fire.job.id not in seen or fire.entry == fire.due_from:
            seen[fire.job.id] = fire
    return list(seen.values())


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
        """One pass over every shard; work grows with what is due, not with how many jobs exist.

        Jobs are read and planned in parallel; their records are then written a shard at a time
        and their job rows a tenant at a time, each in transactions of up to 100 rows: one
        transaction holds many jobs' fires. A job whose transaction fails (another tick got there
        first, the job was edited) goes through `visit` on its own, which reads it again.
        """
        now = self.clock.now()
        horizon = now + self.lookahead
        report = TickReport()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="tick") as pool:
            entries = [e for shard in self.due_index.shards for e in self._due(shard, horizon, report)]
            prepared = pool.map(
                lambda e: self._guarded(e, report, lambda: self._prepare(e, now, horizon, report)), entries
            )
            fires = _one_per_job([f for f in prepared if f is not None])
            retry = self._record_and_save(fires, pool, report)
            alone = [f.entry for f in retry]
            for _ in pool.map(
                lambda e: self._guarded(e, report, lambda: self.visit(e, now, horizon, report)), alone
            ):
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

    def _guarded(self, entry: DueEntry, report: TickReport, step: Callable[[], _T]) -> _T | None:
        try:
            return step()
        except Exception:
            # One job's failure must not stop the others; its due row stays, so the next tick retries.
            report.add(errors=1)
            log.exception("tick failed for a job", extra={"tenant": entry.tenant, "job_id": entry.job_id})
            return None

    def _prepare(self, entry: DueEntry, now: datetime, horizon: datetime, report: TickReport) -> _Fire | None:
        """Read the job a due row names and plan its fire, or drop the row if it is stale."""
        report.add(visited=1)
        try:
            job, etag = self.job_repository.get(entry.tenant, entry.job_id)
        except NotFound:
            job, etag = None, ""
        if job is None or not _due(job, horizon):
            self._drop_if_stale(entry, job, report)
            return None
        plan = plan_occurrences(job, now, horizon, self.due_index.shard_for(job), self.watch)
        due_from, due_to = self.due_index.entry(job), self.due_index.entry(advanced(job, plan, []))
        if entry not in (due_from, due_to):  # a row left by an earlier edit or crash
            self.due_index.remove(entry)
            report.add(stale_rows=1)
        return _Fire(entry, job, etag, plan, due_from, due_to)

    def _record_and_save(
        self, fires: list[_Fire], pool: ThreadPoolExecutor, report: TickReport
    ) -> list[_Fire]:
        """Record every fire, send its launches, save its job; the fires that must go alone."""
        by_shard: dict[str, list[_Fire]] = defaultdict(list)
        for fire in fires:
            by_shard[self.due_index.shard_for(fire.job)].append(fire)
        recorded: dict[str, list[Run]] = {}
        for done in pool.map(lambda item: self._record(item[0], item[1], report), by_shard.items()):
            recorded.update(done)
        retry = [f for f in fires if f.job.id not in recorded]
        self._send_launches([run for runs in recorded.values() for run in runs], report)
        saves = [f for f in fires if f.job.id in recorded]
        by_tenant: dict[str, list[_Fire]] = defaultdict(list)
        for fire in saves:
            by_tenant[fire.job.tenant].append(fire)
        saved: set[str] = set()
        for done_ids in pool.map(lambda item: self._save(item[1], recorded, report), by_tenant.items()):
            saved |= done_ids
        for fire in saves:
            if fire.job.id in saved:
                # A failure here leaves a due row the next tick finds stale and drops.
                self._guarded(fire.entry, report, partial(self._fired, fire, report))
            else:
                retry.append(fire)
        return retry

    def _record(self, shard: str, fires: list[_Fire], report: TickReport) -> dict[str, list[Run]]:
        records = [(f.plan.runs, f.due_from if f.due_to else None, f.due_to) for f in fires]
        try:
            results = self.run_repository.record_fires(shard, records)
        except Exception as err:  # whatever it was, each job gets its own try
            report.add(errors=1)
            log.warning("could not record fires in shard %s; one by one: %s", shard, err)
            return {}
        return {f.job.id: runs for f, runs in zip(fires, results, strict=True) if runs is not None}

    def _save(self, fires: list[_Fire], recorded: dict[str, list[Run]], report: TickReport) -> set[str]:
        items = [(f.job, f.etag, advanced(f.job, f.plan, recorded[f.job.id])) for f in fires]
        try:
            return set(self.job_repository.save_all(items))
        except Exception as err:  # whatever it was, each job gets its own try
            report.add(errors=1)
            log.warning("could not save fired jobs; one by one: %s", err)
            return set()

    def _fired(self, fire: _Fire, report: TickReport) -> None:
        if fire.due_to is None and fire.due_from is not None:
            self.due_index.remove(fire.due_from)  # the schedule ended: the job now says COMPLETED
        self._count(fire.job, fire.plan, report)

    def _send_launches(self, runs: list[Run], report: TickReport) -> None:
        _trace_fired(runs)
        messages = [
            message_for(run, run.intent, self.queues)
            for run in runs
            if run.intent is not None and run.state is RunState.SCHEDULED
        ]
        for i in range(0, len(messages), _SEND_CHUNK):
            try:
                self.sender.send(messages[i : i + _SEND_CHUNK])
            except Exception as err:
                report.add(send_failures=1)  # recorded with their hints: the watchdog sends them
                log.warning("launch send failed; the watchdog will send them: %s", err)

    def _count(self, job: Job, plan: Plan, report: TickReport) -> None:
        fired = [r for r in plan.runs if r.state is RunState.SCHEDULED]
        report.add(fired=len(fired), skipped=len(plan.runs) - len(fired))
        if len(plan.runs) > len(fired):
            labels = {"state": RunState.SKIPPED.value, "job_id": job.id, "tenant": job.tenant}
            metrics.runs_finished.add(len(plan.runs) - len(fired), labels)

    def _due(self, shard: str, horizon: datetime, report: TickReport) -> Iterable[DueEntry]:
        """A shard's due rows; a shard storage cannot read now waits for the next tick, alone."""
        try:
            return list(self.due_index.due(shard, horizon))
        except ExternalError as err:
            report.add(errors=1)
            log.warning("could not read shard %s of the due index: %s", shard, err.detail)
            return []

    def visit(self, entry: DueEntry, now: datetime, horizon: datetime, report: TickReport) -> None:
        """Bring one job up to date with `now`, alone (a fire whose batch failed, or a test)."""

        def attempt() -> None:
            job: Job | None
            try:
                job, etag = self.job_repository.get(entry.tenant, entry.job_id)
            except NotFound:
                job = None
            if job is not None and _due(job, horizon):
                fired_from = self.due_index.entry(job)  # the fire itself moves this row
                try:
                    job = self._fire(job, etag, now, horizon, report)
                except ConcurrencyConflict:
                    report.add(conflicts=1)
                    raise  # someone else moved the job: look again
                if entry == fired_from:
                    return
            self._drop_if_stale(entry, job, report)

        try:
            until_saved(attempt, f"job {entry.job_id}")
        except Conflict:
            log.warning("job kept changing during the tick; next tick", extra={"job_id": entry.job_id})

    def _drop_if_stale(self, entry: DueEntry, job: Job | None, report: TickReport) -> None:
        """Delete `entry` unless it is the row `job` (as it now is) should have."""
        current = self.due_index.entry(job) if job is not None else None
        if current != entry:
            self.due_index.remove(entry)
            report.add(stale_rows=1)

    def _fire(self, job: Job, etag: str, now: datetime, horizon: datetime, report: TickReport) -> Job:
        plan = plan_occurrences(job, now, horizon, self.due_index.shard_for(job), self.watch)
        due_from, due_to = self.due_index.entry(job), self.due_index.entry(advanced(job, plan, []))
        shard = self.due_index.shard_for(job)
        # A schedule that ended keeps its due row until the job says COMPLETED: a crash in between
        # must leave the job visited again, not a job nobody visits.
        recorded = self.run_repository.record_fire(shard, plan.runs, due_from if due_to else None, due_to)
        after = advanced(job, plan, recorded)
        to_launch = [run for run in recorded if run.state is RunState.SCHEDULED]
        _trace_fired(to_launch)
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
        self._count(job, plan, report)
        return after


def _trace_fired(runs: list[Run]) -> None:
    """One `fire` span per occurrence recorded, first of its trace (the one its messages carry)."""
    for run in runs:
        if run.state is RunState.SCHEDULED:
            parent = traceparent(run.job_id, run.run_key, 1)
            attributes = run_attributes(run.job_id, run.run_key, run.tenant, 1)
            with span("fire", parent, scheduled_for=run.scheduled_for.isoformat(), **attributes):
                pass
