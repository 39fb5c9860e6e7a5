"""The reconcile: repairs what a crash or a lost message left half done, a bounded amount per pass.

* A launch sent but never picked up (its pending row is still there well after
  its time): if the run is still SCHEDULED, send the launch again; otherwise the
  handler did its work and crashed before clearing the row: clear it.
* A message that exhausted its deliveries (dead-lettered): its run must not hang,
  so it is marked FAILED with the reason (and its Databricks run, if any, cancelled).
* A job that should be in the due index but is not (a crash in a path that did
  not follow the put-before-commit order, a change of DUE_SHARDS, a manual
  delete): put its row back. Jobs are visited a page per pass, from a cursor kept
  in the due table, so the whole table is covered over successive passes.

Stale due rows need no pass of their own: the tick drops each one when it comes due.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from shared.adapters.due_index import DueIndex
from shared.adapters.job_store import JobStore, job_from_row
from shared.adapters.queue import DeadLetter, DeadLetters, MessageSender
from shared.adapters.run_store import RunStore
from shared.adapters.table import Row, Write
from shared.domain.clock import Clock
from shared.domain.errors import InvalidInput, NotFound
from shared.domain.run import RunState
from shared.services.messages import RunRef, launch_message
from shared.telemetry import metrics

log = logging.getLogger(__name__)

_CURSOR_PK, _CURSOR_RK = "reconcile", "jobs-cursor"


@dataclass
class ReconcileReport:
    resent: int = 0
    cleared: int = 0
    dead_letters: int = 0
    jobs_checked: int = 0
    due_rows_restored: int = 0


class Reconciler:
    def __init__(
        self,
        *,
        jobs: JobStore,
        runs: RunStore,
        due: DueIndex,
        sender: MessageSender,
        clock: Clock,
        launch_queue: str,
        lost_after: timedelta = timedelta(minutes=5),
        batch: int = 200,
        dead_letters: DeadLetters | None = None,
        dead_letter_queues: tuple[str, ...] = (),
        on_dead_letter: Callable[[RunRef, str, str], object] | None = None,
    ) -> None:
        self.dead_letters = dead_letters
        self.dead_letter_queues = dead_letter_queues
        self.on_dead_letter = on_dead_letter
        self.jobs = jobs
        self.runs = runs
        self.due = due
        self.sender = sender
        self.clock = clock
        self.launch_queue = launch_queue
        self.lost_after = lost_after
        self.batch = batch

    def run_once(self) -> ReconcileReport:
        report = ReconcileReport()
        self._dead_letters(report)
        self._lost_launches(report)
        self._missing_due_rows(report)
        log.info(
            "reconcile: %d dead letters, %d launches re-sent, %d pending rows cleared, %d jobs checked, "
            "%d due rows restored",
            report.dead_letters,
            report.resent,
            report.cleared,
            report.jobs_checked,
            report.due_rows_restored,
        )
        return report

    def _dead_letters(self, report: ReconcileReport) -> None:
        if self.dead_letters is None or self.on_dead_letter is None:
            return
        handle = self.on_dead_letter

        def failed(letter: DeadLetter) -> None:
            metrics.dead_letters.add(1, {"queue": letter.queue})
            try:
                ref = RunRef.parse(letter.body)
            except InvalidInput:
                log.error("dead letter that names no run: %s", letter.message_id)
                return
            handle(ref, letter.queue, letter.reason)
            log.warning("run failed: its message was dead-lettered", extra={"job_id": ref.job_id})

        for queue in self.dead_letter_queues:
            report.dead_letters += self.dead_letters.drain_dead_letters(queue, self.batch, failed)

    def _lost_launches(self, report: ReconcileReport) -> None:
        now = self.clock.now()
        budget = self.batch
        for shard in self.due.shards:
            for pending in self.due.overdue_launches(shard, now - self.lost_after):
                if budget == 0:
                    return
                budget -= 1
                try:
                    run, _ = self.runs.get(pending.tenant, pending.job_id, pending.run_key)
                except NotFound:
                    run = None
                if run is not None and run.state is RunState.SCHEDULED:
                    message = launch_message(self.launch_queue, run)
                    # A new id: the first one may still sit in Service Bus' duplicate-detection window.
                    resend = type(message)(
                        queue=message.queue,
                        message_id=f"{message.message_id}.resent-{int(now.timestamp()) // 60}",
                        body=message.body,
                        scheduled_for=None,
                        properties=message.properties,
                    )
                    self.sender.send([resend])
                    report.resent += 1
                    log.warning("re-sent a lost launch", extra={"job_id": run.job_id, "run_key": run.run_key})
                else:
                    self.due.remove(pending)
                    report.cleared += 1

    def _missing_due_rows(self, report: ReconcileReport) -> None:
        table = self.jobs.table
        cursor = self._cursor()
        rows: Iterable[Row]
        if cursor is None:
            rows = table.query(None, rk_lt="~", page_size=self.batch)
        else:
            pk, rk = cursor
            rows = itertools.chain(
                table.query(pk, rk_gt=rk, rk_lt="~", page_size=self.batch),
                table.query(None, pk_gt=pk, rk_lt="~", page_size=self.batch),
            )
        last: tuple[str, str] | None = None
        for row in rows:
            if report.jobs_checked == self.batch:
                break
            report.jobs_checked += 1
            last = (row.pk, row.rk)
            job = job_from_row(row)
            entry = self.due.entry(job)
            if entry is None:
                continue
            try:
                self.due.table.get(entry.shard, entry.rk)
            except NotFound:
                self.due.put(entry)
                report.due_rows_restored += 1
                log.warning("restored a missing due row", extra={"job_id": job.id})
        else:
            last = None  # reached the end: start over next pass
        self._save_cursor(last)

    def _cursor(self) -> tuple[str, str] | None:
        try:
            row = self.due.table.get(_CURSOR_PK, _CURSOR_RK)
        except NotFound:
            return None
        value = json.loads(str(row.data.get("at") or "null"))
        return (value[0], value[1]) if value else None

    def _save_cursor(self, at: tuple[str, str] | None) -> None:
        self.due.table.write(_CURSOR_PK, [Write("upsert", _CURSOR_RK, {"at": json.dumps(at)})])
