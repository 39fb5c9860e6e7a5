"""What the watchdog does to one run that waits for a message that is not coming.

Each action reads the run's state and acts on it (`watch_action` in the domain decides which):
send the launch again with a fresh id, launch a queued run nothing blocks, ask Databricks about
a run nothing has ended, finish a stop, or end a run repaired too often without progress.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from shared.domain.errors import ExternalError
from shared.domain.notifications import DeliveryTry, NoticeState
from shared.domain.policies import (
    OverlapVerdict,
    WatchAction,
    given_up_state,
    overdue_notices,
    overlap_verdict,
)
from shared.domain.run import IntentKind, Run, RunState
from shared.services import admission, batches, endings, pipelines
from shared.services.messages import launch_intent
from shared.services.run_context import RunContext
from shared.services.stopping import STOPPING, finish_stopping, read, time_out
from shared.telemetry import metrics

log = logging.getLogger(__name__)


@dataclass
class WatchReport:
    due_rows_restored: int = 0
    visited: int = 0
    dropped: int = 0
    resent: int = 0
    checked: int = 0
    settled: int = 0
    given_up: int = 0
    dead_letters: int = 0
    leases_freed: int = 0
    ends_counted: int = 0  # run ends counted in analytics that a crash had left uncounted
    after_runs: int = 0  # runs of dependent jobs the watchdog started (their upstream end went unheard)
    errors: int = 0


class Repairs:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def apply(
        self,
        run: Run,
        etag: str,
        action: WatchAction,
        now: datetime,
        report: WatchReport,
        *,
        chain_lost: bool,
    ) -> None:
        if action is WatchAction.NOTIFY:
            self.notify(run, etag, now)
            report.resent += 1
        elif run.has_children and action in (WatchAction.CHECK_DATABRICKS, WatchAction.STOP):
            # a pipeline run has steps, a batch round points: not a Databricks run
            (batches if run.is_batch else pipelines).check(self.ctx, run, etag, now)
            report.checked += 1
        elif action is WatchAction.GIVE_UP:
            self.give_up(run, etag, now)
            report.given_up += 1
        elif action is WatchAction.RESEND:
            self.resend(run, etag, now)
            report.resent += 1
        elif action is WatchAction.CHECK_QUEUE:
            report.resent += self.check_queue(run, etag, now)
        elif action is WatchAction.CHECK_DATABRICKS:
            report.settled += self.check_databricks(run, etag, now, chain_lost=chain_lost)
            report.checked += 1
        elif action is WatchAction.STOP:
            self.stop(run, etag, now)
            report.settled += 1

    def resend(self, run: Run, etag: str, now: datetime) -> None:
        """Send the launch the run waits for again, with a fresh id, and back off."""
        intent = run.intent or launch_intent(run, run.attempt, now)
        repairs = run.repairs + 1
        repaired, _ = self.ctx.write(
            run, etag, run.model_copy(update={"intent": intent, "repairs": repairs}), now
        )
        self.ctx.send(repaired, intent, at=now, repair=repairs)
        metrics.repairs.add(1, {"state": run.state.value})
        log.warning(
            "re-sent a lost %s", intent.kind.value, extra={"job_id": run.job_id, "run_key": run.run_key}
        )

    def notify(self, run: Run, etag: str, now: datetime) -> None:
        """Send again, with a fresh id, the notices whose message was lost; give up on a notice
        after `max_repairs` re-sends (recorded on it as a failed try, and counted)."""
        policy = self.ctx.settings.watch
        updated, resend = run, []
        for notice in overdue_notices(run, now, policy):
            if notice.repairs >= policy.max_repairs:
                lost = DeliveryTry(at=now, error=f"its message was lost {notice.repairs} times", ms=0)
                fixed = notice.model_copy(
                    update={"tries": [*notice.tries, lost], "state": NoticeState.FAILED}
                )
                metrics.notifications.add(
                    1, {"outcome": "failed", "kind": notice.kind, "event": notice.event.value}
                )
            else:
                fixed = notice.model_copy(update={"due_at": now, "repairs": notice.repairs + 1})
                resend.append(fixed.id)
            updated = updated.with_notice(fixed)
        saved, _ = self.ctx.write(run, etag, updated, now)
        self.ctx.send_notices(saved, [n for n in saved.notices if n.id in resend])
        log.warning(
            "re-sent %d lost notifications", len(resend), extra={"job_id": run.job_id, "run_key": run.run_key}
        )

    def check_queue(self, run: Run, etag: str, now: datetime) -> int:
        """A QUEUED run whose release or admission never came: launch it once nothing blocks it."""
        ctx = self.ctx
        if run.pool and admission.check_queued(ctx, run, now):
            ctx.write(run, etag, run.model_copy(update={"checks": run.checks + 1}), now)
            return 0  # it waits in its pool (admitted now if there was room), or its launch was re-sent
        job = ctx.job(run.tenant, run.job_id)
        recent = ctx.run_repository.recent(run.shard, run.tenant, run.job_id)
        others = [r for r, _ in recent if r.run_key != run.run_key]
        blocked = job is not None and overlap_verdict(job.definition.overlap, others) is not OverlapVerdict.GO
        if blocked:
            ctx.write(run, etag, run.model_copy(update={"checks": run.checks + 1}), now)
            return 0
        self.resend(run, etag, now)
        return 1

    def check_databricks(self, run: Run, etag: str, now: datetime, *, chain_lost: bool) -> int:
        """A RUNNING run nothing has ended: ask Databricks. 1 if it was settled."""
        ctx = self.ctx
        intent = run.intent
        dbx = run.databricks_run_of(run.attempt)
        if dbx is None:  # a row from before intents: nothing to follow
            self.give_up(run, etag, now)
            return 1
        try:
            status = read(ctx, dbx)
        except ExternalError as err:
            if err.retryable:  # Databricks is down: look again later; that is no reason to end the run
                ctx.write(run, etag, run.model_copy(update={"checks": run.checks + 1}), now)
                return 0
            endings.settle(ctx, run, etag, endings.attempt_record(run, None, now, err.detail), now)
            return 1
        if status is None or status.is_terminal:
            endings.settle(ctx, run, etag, endings.attempt_record(run, status, now), now)
            return 1
        deadline = intent.deadline if intent is not None else None
        if deadline is not None and now >= deadline:
            time_out(ctx, run, etag, dbx, now)
            return 1
        if chain_lost and intent is not None and intent.kind is IntentKind.POLL:
            # Its poll was dead-lettered: nothing follows it any more. Start a new chain.
            repairs = run.repairs + 1
            run, _ = ctx.write(run, etag, run.model_copy(update={"repairs": repairs}), now)
            ctx.send(run, intent, at=now, repair=repairs)
            return 0
        ctx.write(run, etag, run.model_copy(update={"checks": run.checks + 1}), now)
        return 0

    def stop(self, run: Run, etag: str, now: datetime) -> None:
        intent = run.intent
        dbx = (intent.databricks_run_id if intent else None) or run.databricks_run_of(run.attempt)
        if dbx is None:
            endings.end(self.ctx, run, etag, given_up_state(run.state), now, run.reason or "stopped")
            return
        try:
            finish_stopping(self.ctx, run, etag, dbx, now, run.reason or "stopped")
        except ExternalError as err:
            log.warning("could not stop run %s in Databricks: %s", run.id, err.detail)
            self.ctx.write(run, etag, run.model_copy(update={"repairs": run.repairs + 1}), now)

    def give_up(self, run: Run, etag: str, now: datetime) -> None:
        waited = run.intent.kind.value if run.intent else "progress"
        reason = f"no progress after {run.repairs} repairs ({run.state} waiting for {waited})"
        dbx = run.databricks_run_of(run.attempt)
        if dbx is not None and run.state in (RunState.RUNNING, *STOPPING):
            endings.cancel_quietly(self.ctx, dbx, "its run is given up")
        endings.end(self.ctx, run, etag, given_up_state(run.state), now, reason)
        metrics.repairs.add(1, {"state": "given_up"})
        log.error("gave up on a run: %s", reason, extra={"job_id": run.job_id, "run_key": run.run_key})
