"""What every run handler shares: its ports, settings, and the two moves of the outbox.

Writing a run always goes through `write`, which sets `watch_at` from the watch policy, so the
run's watch hint moves in the same transaction as its state. Sending always goes through
`send`, which builds the message from the intent recorded on the run.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.adapters.databricks import Databricks
from shared.adapters.queue import MessageSender
from shared.domain.analytics import Tally, tally_of
from shared.domain.clock import Clock
from shared.domain.errors import ConcurrencyConflict, NotFound
from shared.domain.job import Job
from shared.domain.notifications import Notice, NoticeEvent, NoticeState, new_notices, notifies
from shared.domain.policies import WatchPolicy, watch_at
from shared.domain.run import ACTIVE, Intent, Run
from shared.services.messages import Queues, message_for, notice_message
from shared.services.ports import AnalyticsRepository, DueIndex, JobRepository, PoolRepository, RunRepository
from shared.telemetry import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    queues: Queues
    poll_initial: timedelta = timedelta(seconds=15)
    poll_max: timedelta = timedelta(minutes=5)
    watch: WatchPolicy = field(default_factory=WatchPolicy)
    # A handler that finds its write already done sends the recorded intent again with its own id,
    # so duplicate detection absorbs it if the first send got through. Older than this, the first
    # send may have left the detection window (10 minutes as deployed): the watchdog repairs it.
    redo_window: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a handler did, for logs and tests: launched, polled, skipped, buffered, retrying,
    finished, already_handled, redone, deferred, unknown_run."""

    action: str
    run: Run | None = None


class RunContext:
    def __init__(
        self,
        *,
        job_repository: JobRepository,
        run_repository: RunRepository,
        due_index: DueIndex,
        pools: PoolRepository,
        sender: MessageSender,
        databricks: Callable[[], Databricks],
        clock: Clock,
        settings: RunSettings,
        rand: Callable[[], float] = random.random,
        analytics: AnalyticsRepository | None = None,
    ) -> None:
        self.analytics = analytics
        self.job_repository = job_repository
        self.run_repository = run_repository
        self.due_index = due_index
        self.pools = pools
        self.sender = sender
        self._databricks = databricks
        self.clock = clock
        self.settings = settings
        self.rand = rand

    @property
    def databricks(self) -> Databricks:
        return self._databricks()

    def job(self, tenant: str, job_id: str) -> Job | None:
        read = self.job_read(tenant, job_id)
        return read[0] if read else None

    def job_read(self, tenant: str, job_id: str) -> tuple[Job, str] | None:
        """The job and its ETag, or None if it is gone."""
        try:
            return self.job_repository.get(tenant, job_id)
        except NotFound:
            return None

    def watched(self, run: Run, now: datetime) -> Run:
        return run.model_copy(update={"watch_at": watch_at(run, self.settings.watch, now)})

    def write(
        self,
        before: Run,
        etag: str,
        after: Run,
        now: datetime,
        children: Sequence[Run] = (),
        job: Job | None = None,
    ) -> tuple[Run, str]:
        """Save `after` over `before` (ETag), its watch hint moved with it: the run as saved, its ETag.
        `children`: a pipeline's new step runs, inserted in the same transaction.

        A run found unfinished at its deadline (or ending after it) is marked `deadline_missed_at`
        by the first write that notices, and counted once.

        The notifications the move owes (its job's `notifications`; `job` as the caller read it, else
        read here when the move is one that notifies) are recorded in the same write, and sent after
        it: the notify queue's outbox.

        A run's end records what it adds to analytics in the same write, and counts it right after
        (the watchdog counts what a crash left uncounted)."""
        after = after.marked_late(now)
        ends = after.state.is_terminal and not before.state.is_terminal and after.parent is None
        if job is None and (ends or notifies(before, after)):
            job = self.job(after.tenant, after.job_id)
        notices = self._owed(before, after, now, job)
        if notices:
            after = after.model_copy(update={"notices": [*after.notices, *notices]})
        if after.state not in ACTIVE and before.state in ACTIVE:
            after = _warnings_not_needed(after)
        saved = self.watched(after, now)
        tally = None
        if ends:
            name, kind = (job.definition.name, job.definition.job_type.value) if job else ("", "")
            tally = tally_of(saved, name, kind, now)
        if children:
            family = [self.watched(child, now) for child in children]
            etag = self.run_repository.save_family(before, etag, saved, family, tally)
        else:
            etag = self.run_repository.save(before, etag, saved, tally)
        if tally is not None:
            self.count(saved.shard, [tally])
        if saved.deadline_missed_at is not None and before.deadline_missed_at is None:
            metrics.deadline_missed.add(1, {"pool": saved.pool or "default", "tenant": saved.tenant})
            log.warning("a run missed its deadline", extra={"job_id": saved.job_id, "run_key": saved.run_key})
        self.send_notices(saved, notices)
        return saved, etag

    def _owed(self, before: Run, after: Run, now: datetime, job: Job | None) -> list[Notice]:
        if not notifies(before, after):
            return []
        return new_notices(before, after, job.definition.notifications if job else None, now)

    def count(self, shard: str, tallies: Sequence[Tally]) -> None:
        """Count ended runs in analytics (one tenant and day). Best effort: ends that other ends keep
        racing stay pending, and the watchdog counts them; a run never fails for its analytics."""
        if self.analytics is None:
            return
        for _ in range(3):
            try:
                self.analytics.count(shard, tallies)
                return
            except ConcurrencyConflict:
                continue  # another end of the same day counted first: read the day again
            except Exception as err:
                log.warning("could not count %d run ends in analytics: %s", len(tallies), err)
                return

    def send_notices(self, run: Run, notices: Sequence[Notice]) -> None:
        """Send the messages of `notices` (recorded on `run`). Best effort: a notice whose send fails
        stays pending on the run, and the watchdog sends it; a run never fails for a notification."""
        if not notices:
            return
        try:
            self.sender.send([notice_message(run, n, self.settings.queues.notify) for n in notices])
        except Exception as err:
            log.warning(
                "could not send %d notifications (the watchdog will): %s",
                len(notices),
                err,
                extra={"job_id": run.job_id, "run_key": run.run_key},
            )

    def send(
        self,
        run: Run,
        intent: Intent | None = None,
        *,
        message_id: str | None = None,
        at: datetime | None = None,
        repair: int = 0,
    ) -> None:
        """Send the message of `intent` (default: the run's own), with its id unless told otherwise."""
        intent = intent or run.intent
        if intent is None:
            raise ValueError(f"run {run.id} waits for no message")
        message = message_for(run, intent, self.settings.queues, message_id=message_id, at=at, repair=repair)
        self.sender.send([message])

    def recent_enough(self, run: Run, now: datetime) -> bool:
        """Whether a redo may still use the first send's id (see `RunSettings.redo_window`)."""
        return now - run.updated_at <= self.settings.redo_window


def _warnings_not_needed(run: Run) -> Run:
    """A run that stopped running owes no duration warning not yet due: marked `not_needed` in the
    write that ends it, so the run keeps no watch hint for it (its message, sent for the due time,
    then finds it settled)."""
    if not any(n.event is NoticeEvent.DURATION_WARNING and n.pending and not n.tries for n in run.notices):
        return run
    return run.model_copy(
        update={
            "notices": [
                n.model_copy(update={"state": NoticeState.NOT_NEEDED})
                if n.event is NoticeEvent.DURATION_WARNING and n.pending and not n.tries
                else n
                for n in run.notices
            ]
        }
    )
