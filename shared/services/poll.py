"""Follow a Databricks run to its end (the poll queue's handler).

A poll carries what a poll that sees no change needs (Databricks run id, attempt, poll number,
deadline), so such a poll reads no table: one Databricks call, one send of the next poll (its
interval doubling to a cap, never past the deadline). The send happens inside the handling of the
previous poll, so a failed send or a crash redelivers that poll: the chain cannot break.

When the run has ended (or outlived its timeout) the poll reads the run and settles it. A poll
that finds its attempt already settled sends again what the run now waits for (a retry's launch)
and repeats what follows an end: its predecessor may have died between the write and the send.
"""

from __future__ import annotations

import logging
from datetime import datetime

from shared.adapters.databricks import RunStatus, UnknownRunState
from shared.domain.run import IntentKind, Run, RunState
from shared.services import endings
from shared.services.messages import PollRef, next_poll
from shared.services.run_context import Outcome, RunContext
from shared.services.stopping import STOPPING, finish_stopping, read, time_out
from shared.telemetry import metrics

log = logging.getLogger(__name__)


class Poller:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def poll(self, ref: PollRef) -> Outcome:
        metrics.polls.add(1)
        ctx = self.ctx
        try:
            status = read(ctx, ref.databricks_run_id)
        except UnknownRunState as err:
            return self._settle(ref, None, ctx.clock.now(), error=err.detail)
        now = ctx.clock.now()
        past_deadline = ref.deadline is not None and now >= ref.deadline
        if status is not None and not status.is_terminal and not past_deadline:
            interval = min(ctx.settings.poll_initial * (2**ref.poll), ctx.settings.poll_max)
            at = min(now + interval, ref.deadline) if ref.deadline else now + interval
            ctx.sender.send([next_poll(ref, ctx.settings.queues.poll, at)])
            return Outcome("polled")
        return self._settle(ref, status, now)

    def _settle(
        self, ref: PollRef, status: RunStatus | None, now: datetime, error: str | None = None
    ) -> Outcome:
        ctx = self.ctx
        shard = ref.run.shard or ctx.due_index.new_shard(ref.run.job_id)
        run, etag = ctx.run_repository.get(shard, ref.run.tenant, ref.run.job_id, ref.run.run_key)
        following = run.state is RunState.RUNNING or run.state in STOPPING
        if not following or run.attempt != ref.run.attempt:
            return self._redo(run, ref.run.attempt, now)
        if status is not None and not status.is_terminal and error is None:
            if run.state is RunState.RUNNING:  # past its deadline
                return time_out(ctx, run, etag, ref.databricks_run_id, now)
            return finish_stopping(ctx, run, etag, ref.databricks_run_id, now, run.reason or "cancelled")
        record = endings.attempt_record(run, status, now, error)
        if error is not None:
            endings.cancel_quietly(ctx, ref.databricks_run_id, "its state is unknown")
        return endings.settle(ctx, run, etag, record, now)

    def _redo(self, run: Run, attempt: int, now: datetime) -> Outcome:
        """This attempt was settled already: send again what its settling sent, if recent."""
        ctx = self.ctx
        if not ctx.recent_enough(run, now):
            return Outcome("already_handled", run)
        intent = run.intent
        next_launch = (
            run.state is RunState.RETRY_WAIT
            and run.attempt == attempt + 1
            and intent is not None
            and intent.kind is IntentKind.LAUNCH
        )
        if next_launch:
            ctx.send(run)
            return Outcome("redone", run)
        if run.state.is_terminal and run.attempt == attempt:
            endings.after_end(ctx, run, now)
            return Outcome("redone", run)
        return Outcome("already_handled", run)
