"""The watchdog: every run that waits for a message gets it, even after a crash or a lost send.

Each pass reads, per shard, the watch hints that are overdue (`w~ < now`): a run whose intent is
overdue, a RUNNING run due for its periodic check, or a hint left behind. Its cost grows with
what is overdue, not with how many runs or jobs exist. For each hint it reads the run and does
what `watch_action` says:

* a launch that never arrived: send it again with a fresh id (`.rN`), backing off;
* QUEUED: launch it if nothing blocks it any more (its release was lost);
* RUNNING: read Databricks: settle it if it ended, time it out if past its deadline, else look
  again after `run_check` (its poll chain normally ends it long before);
* CANCELLING or TIMING_OUT: cancel again in Databricks and end it as intended;
* after `max_repairs` re-sends without progress: end it, with the reason, so it never holds its
  job hostage.

Messages that exhausted their deliveries (dead letters) are repairs too: the message is known
lost, so its run is repaired at once rather than when its hint comes due. Every fifth minute it
also restores due rows that went missing, from each tenant's next-fire index. The actions on one
run are in `repairs.py`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from datetime import datetime

from shared.adapters.queue import DeadLetter, DeadLetters
from shared.domain.analytics import MAX_COUNTED, Tally
from shared.domain.errors import Conflict, ExternalError, InvalidInput, NotFound
from shared.domain.policies import WatchAction, watch_action
from shared.services import admission, dependents
from shared.services.messages import RunRef
from shared.services.ports import WatchHint
from shared.services.repairs import Repairs, WatchReport
from shared.services.run_context import RunContext
from shared.telemetry import metrics

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(
        self,
        ctx: RunContext,
        *,
        batch: int = 500,
        dead_letters: DeadLetters | None = None,
        dead_letter_queues: Sequence[str] = (),
        due_check_minutes: int = 5,
    ) -> None:
        self.ctx = ctx
        self.repairs = Repairs(ctx)
        self.due_check_minutes = due_check_minutes
        self.batch = batch
        self.dead_letters = dead_letters
        self.dead_letter_queues = tuple(dead_letter_queues)

    def run_once(self) -> WatchReport:
        report = WatchReport()
        self._drain_dead_letters(report)
        now = self.ctx.clock.now()
        if now.minute % self.due_check_minutes == 0:
            self.restore_due_rows(now, report)
            self.count_leftovers(report)
        self._sweep_pools(now, report)
        for shard in self.ctx.due_index.shards:
            for hint in self._overdue(shard, now, report):
                if report.visited >= self.batch:
                    break  # bounded work per pass; the rest is still overdue next pass
                report.visited += 1
                try:
                    self._visit(hint, now, report)
                except Exception:
                    report.errors += 1
                    log.exception("watchdog failed on a run", extra={"job_id": hint.job_id})
        log.log(
            logging.INFO
            if report.visited or report.dead_letters or report.due_rows_restored or report.leases_freed
            else logging.DEBUG,
            "watchdog: %d visited, %d dropped, %d re-sent, %d checked, %d settled, %d given up, "
            "%d dead letters, %d due rows restored, %d leases freed, %d errors",
            report.visited,
            report.dropped,
            report.resent,
            report.checked,
            report.settled,
            report.given_up,
            report.dead_letters,
            report.due_rows_restored,
            report.leases_freed,
            report.errors,
        )
        return report

    def count_leftovers(self, report: WatchReport) -> None:
        """Count in analytics the run ends a crash left uncounted (their `e~` rows), by tenant and
        day, 99 to a transaction; a batch one of which was counted meanwhile goes one by one."""
        analytics = self.ctx.analytics
        if analytics is None:
            return
        for shard in self.ctx.due_index.shards:
            try:
                pending = analytics.pending(shard, self.batch)
            except ExternalError as err:
                log.warning("could not read the uncounted ends of shard %s: %s", shard, err.detail)
                continue
            groups: dict[tuple[str, object], list[Tally]] = {}
            for tally in pending:
                groups.setdefault((tally.tenant, tally.day), []).append(tally)
            for tallies in groups.values():
                for i in range(0, len(tallies), MAX_COUNTED):
                    chunk = tallies[i : i + MAX_COUNTED]
                    try:
                        if not analytics.count(shard, chunk) and len(chunk) > 1:
                            for one in chunk:
                                self.ctx.count(shard, [one])
                        report.ends_counted += len(chunk)
                    except Exception as err:
                        report.errors += 1
                        log.warning("could not count run ends in shard %s (next pass will): %s", shard, err)

    # -- overdue hints ---------------------------------------------------------------------------------

    def _overdue(self, shard: str, now: datetime, report: WatchReport) -> list[WatchHint]:
        try:
            return list(itertools.islice(self.ctx.run_repository.overdue(shard, now), self.batch))
        except ExternalError as err:
            report.errors += 1
            log.warning("could not read the watch hints of shard %s: %s", shard, err.detail)
            return []

    def _visit(self, hint: WatchHint, now: datetime, report: WatchReport) -> None:
        ctx = self.ctx
        try:
            run, etag = ctx.run_repository.get(hint.shard, hint.tenant, hint.job_id, hint.run_key)
        except NotFound:
            run, etag = None, ""
        action = watch_action(run, hint.at, now, ctx.settings.watch)
        if action is WatchAction.DROP or run is None:
            ctx.run_repository.drop_hint(hint)
            report.dropped += 1
        elif action is WatchAction.REHOME:
            ctx.run_repository.rehome(hint, run)
            report.dropped += 1
        else:
            self.repairs.apply(run, etag, action, now, report, chain_lost=False)

    # -- pools ---------------------------------------------------------------------------------------

    def _sweep_pools(self, now: datetime, report: WatchReport) -> None:
        """Leases held by ended runs, admitted runs never launched, queues with room (admission.sweep)."""
        try:
            report.leases_freed += admission.sweep(self.ctx, now).leases_freed
        except (ExternalError, Conflict) as err:
            report.errors += 1
            log.warning("could not sweep the pools: %s", err)

    # -- due rows --------------------------------------------------------------------------------------

    def restore_due_rows(self, now: datetime, report: WatchReport) -> None:
        """Jobs the tick has not advanced although their time passed: their due row is missing
        (removed by hand, or lost by older code). Read from each tenant's next-fire index, so a pass
        costs one query per tenant plus what is broken, not a read of every job."""
        ctx = self.ctx
        before = now - ctx.settings.watch.grace
        try:
            tenants = ctx.job_repository.tenants()
        except ExternalError as err:
            report.errors += 1
            log.warning("could not list the tenants: %s", err.detail)
            return
        for tenant in tenants:
            try:
                report.due_rows_restored += self._restore_tenant(tenant, before)
                report.after_runs += dependents.check_all(ctx, tenant, now)
            except ExternalError as err:
                report.errors += 1
                log.warning("could not check the due rows of tenant %s: %s", tenant, err.detail)

    def _restore_tenant(self, tenant: str, before: datetime) -> int:
        restored = 0
        for job in self.ctx.job_repository.overdue(tenant, before):
            entry = self.ctx.due_index.entry(job)
            if entry is None or self.ctx.due_index.exists(entry):
                continue  # not due-indexed (paused), or the tick is merely behind
            self.ctx.due_index.put(entry)
            restored += 1
            log.warning("restored a missing due row", extra={"tenant": tenant, "job_id": job.id})
        return restored

    # -- dead letters ----------------------------------------------------------------------------------

    def _drain_dead_letters(self, report: WatchReport) -> None:
        if self.dead_letters is None:
            return
        for queue in self.dead_letter_queues:
            try:
                report.dead_letters += self.dead_letters.drain_dead_letters(
                    queue, self.batch, lambda letter: self._dead_letter(letter, report)
                )
            except ExternalError as err:
                log.warning("could not read the dead letters of %s: %s", queue, err.detail)

    def _dead_letter(self, letter: DeadLetter, report: WatchReport) -> None:
        """A message exhausted its deliveries: its run waits for nothing. Repair it now."""
        metrics.dead_letters.add(1, {"queue": letter.queue})
        if letter.body.get("kind") == "notify":  # its notice stays pending: the run's hint re-sends it
            log.warning("a notification message was dead-lettered (%s)", letter.reason)
            return
        try:
            ref = RunRef.parse(letter.body)
        except InvalidInput:
            log.error("dead letter that names no run: %s", letter.message_id)
            return
        ctx = self.ctx
        shard = ref.shard or ctx.due_index.new_shard(ref.job_id)
        try:
            run, etag = ctx.run_repository.get(shard, ref.tenant, ref.job_id, ref.run_key)
        except NotFound:
            return
        if run.state.is_terminal or run.attempt != ref.attempt:
            return  # the run moved on: the lost message no longer matters
        log.warning(
            "a message was dead-lettered (%s); repairing its run",
            letter.reason,
            extra={"job_id": ref.job_id, "run_key": ref.run_key},
        )
        now = ctx.clock.now()
        # its own message was lost: repair its chain now (a notice it owes has its own hint)
        action = watch_action(run, run.watch_at or now, now, ctx.settings.watch, notices=False)
        if action in (WatchAction.DROP, WatchAction.REHOME):
            return
        self.repairs.apply(run, etag, action, now, report, chain_lost=True)
