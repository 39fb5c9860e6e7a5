"""Delivering a run's notices (the notify queue's handler) and test notifications.

A notice is recorded on the run by the write that owes it (`RunContext.write`), and its message
says only "deliver notice N of run X". The handler re-reads the run: a notice already delivered or
given up is done; one that is due is posted, and the try is recorded on the notice. A failed try is
tried again after a backoff (`retry_delay`) by a message with a fresh id; after the last, the
notice is FAILED and counted (`scheduler.notifications{outcome=failed}`). A lost message is the
watchdog's (`WatchAction.NOTIFY`).

Delivery is at least once: a crash between the post and its record posts again. Every post of a
notice carries the same `X-Scheduler-Delivery` id, so a receiver can drop the copy.

Nothing here holds up a run: the post happens on the notify queue, never on the launch or poll
path, and its record is a write of the notice alone (re-read and re-applied on a conflict).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.webhooks import Poster
from shared.domain.errors import InvalidInput, NotFound
from shared.domain.job import Job
from shared.domain.notifications import (
    DeliveryTry,
    Notice,
    NoticeEvent,
    NoticeState,
    payload,
    render,
    sample_run_body,
)
from shared.domain.run import ACTIVE, Run
from shared.services.conflicts import until_saved
from shared.services.messages import RunRef
from shared.services.run_context import Outcome, RunContext
from shared.telemetry import metrics, run_attributes, span

log = logging.getLogger(__name__)

EARLY = timedelta(seconds=1)  # a message this much before its notice is due is a stale copy


@dataclass(frozen=True, slots=True)
class NoticeRef:
    run: RunRef
    notice: str

    @classmethod
    def parse(cls, body: Any) -> NoticeRef:
        try:
            return cls(RunRef.parse(body), str(body["notice"]))
        except (KeyError, TypeError) as err:
            raise InvalidInput(f"not a notify message: {err}") from err


@dataclass(frozen=True, slots=True)
class TestResult:
    event: str
    kind: str
    host: str
    status: int | None
    error: str | None
    ms: int

    @property
    def delivered(self) -> bool:
        return self.error is None


class Notifier:
    def __init__(
        self,
        ctx: RunContext,
        poster: Poster,
        secrets: Callable[[str], str | None],
        console_url: str,
        timeout: float = 10.0,
    ) -> None:
        self.ctx = ctx
        self.poster = poster
        self.secrets = secrets
        self.console_url = console_url
        self.timeout = timeout

    def deliver(self, ref: NoticeRef) -> Outcome:
        """Post the notice `ref` names, if it is still owed and due, and record how it went."""
        ctx = self.ctx
        now = ctx.clock.now()
        r = ref.run
        try:
            run, etag = ctx.run_repository.get(
                r.shard or ctx.due_index.new_shard(r.job_id), r.tenant, r.job_id, r.run_key
            )
        except NotFound:
            return Outcome("unknown_run")
        notice = _find(run, ref.notice)
        if notice is None or not notice.pending:
            return Outcome("already_handled", run)
        if notice.due_at > now + EARLY:
            return Outcome("early", run)  # a stale copy: the message of its next try is on its way
        if notice.event is NoticeEvent.DURATION_WARNING and run.state not in ACTIVE:
            done = notice.model_copy(update={"state": NoticeState.NOT_NEEDED})
            metrics.notifications.add(
                1, {"outcome": "not_needed", "kind": notice.kind, "event": notice.event.value}
            )
            return Outcome("not_needed", self._record(run, etag, notice, done, now))
        job = ctx.job(run.tenant, run.job_id)
        attempt = self._post(notice, run, job, now)
        tried = notice.tried(attempt, delivered=attempt.error is None)
        outcome = {NoticeState.DELIVERED: "delivered", NoticeState.FAILED: "failed"}.get(
            tried.state, "retried"
        )
        metrics.notifications.add(1, {"outcome": outcome, "kind": notice.kind, "event": notice.event.value})
        extra = {"job_id": run.job_id, "run_key": run.run_key, "notice": notice.id, "host": notice.host}
        if outcome == "failed":
            log.error("a notification could not be delivered: %s", attempt.error, extra=extra)
        elif outcome == "retried":
            log.warning(
                "a notification try failed (%s); trying again at %s", attempt.error, tried.due_at, extra=extra
            )
        saved = self._record(run, etag, notice, tried, now)
        if saved is not None and outcome == "retried":
            ctx.send_notices(saved, [n for n in saved.notices if n.id == notice.id and n.pending])
        return Outcome(outcome, saved)

    def _post(self, notice: Notice, run: Run, job: Job | None, now: datetime) -> DeliveryTry:
        body = payload(notice, run, job.definition.name if job else run.job_id, self.console_url, now)
        attributes = run_attributes(run.job_id, run.run_key, run.tenant, run.attempt)
        # a child of the handler's `notify` span (its trace is the run's)
        with span("notify.post", None, notice=notice.id, destination=notice.host, **attributes):
            status, error, ms = self._send(notice.kind, notice.url, notice.secret_ref, body)
        return DeliveryTry(at=now, status=status, error=error, ms=ms)

    def _send(
        self, kind: str, url: str, secret_ref: str | None, body: dict[str, Any]
    ) -> tuple[int | None, str | None, int]:
        """Render `body` for a destination of `kind`, sign it if `secret_ref` names a secret, post it:
        the status, why it failed (None: delivered) and how long it took in ms. A secret that is
        not set fails the send: nothing goes out unsigned."""
        secret = self.secrets(secret_ref) if secret_ref else None
        if secret_ref and secret is None:
            return None, f"signing secret {secret_ref!r} is not set", 0
        data, headers = render(kind, body, secret)
        started = time.monotonic()
        status, error = self.poster.post(url, data, headers, self.timeout)
        return status, error, int((time.monotonic() - started) * 1000)

    def _record(self, run: Run, etag: str, before: Notice, after: Notice, now: datetime) -> Run | None:
        """Write `after` over the notice, unless another delivery recorded it first (None then)."""
        ctx = self.ctx
        first = [(run, etag)]  # as read before the post; after a conflict, read again

        def attempt() -> Run | None:
            current, tag = first.pop() if first else ctx.run_repository.get(*_key(run))
            if _find(current, before.id) != before:
                return None  # another delivery of the same notice got there first
            return ctx.write(current, tag, current.with_notice(after), now)[0]

        return until_saved(attempt, f"run {run.id}")

    # -- POST /api/jobs/{id}/notifications/test ----------------------------------------------------

    def test(self, job: Job) -> list[TestResult]:
        """Post a sample (a failure of a run that never was) to each of the job's destinations, at
        once, and say how each went. Records nothing."""
        config = job.definition.notifications
        if config is None:
            return []
        now = self.ctx.clock.now()
        targets: dict[str, tuple[str, Any]] = {}
        for event in NoticeEvent:
            for dest in config.destinations(event):
                targets.setdefault(str(dest.url), (event.value, dest))
        body = sample_run_body(job.id, job.definition.name, job.tenant, self.console_url, now)

        def one(event: str, dest: Any) -> TestResult:
            sent = self._send(dest.kind, str(dest.url), getattr(dest, "secret_ref", None), body)
            return TestResult(event, dest.kind, dest.url.host or "", *sent)

        if not targets:
            return []
        with ThreadPoolExecutor(min(8, len(targets))) as pool:
            return list(pool.map(lambda t: one(*t), targets.values()))


def _key(run: Run) -> tuple[str, str, str, str]:
    return run.shard, run.tenant, run.job_id, run.run_key


def _find(run: Run, notice_id: str) -> Notice | None:
    return next((n for n in run.notices if n.id == notice_id), None)
