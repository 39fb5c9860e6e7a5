"""What the queue triggers do with a message: hand it to its handler, or put it off.

A passing failure of a dependency (Databricks throttled or down, storage unavailable) puts the
message off: the same message is sent again a little later with a fresh id, and this delivery
completes. Raising instead would have Service Bus deliver it again at once, ten times in a few
seconds, then dead-letter it. Anything else raises: Service Bus redelivers, and after the
queue's max delivery count the watchdog repairs the run from the dead-letter queue.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shared.adapters.queue import MessageSender
from shared.domain.clock import Clock
from shared.domain.errors import ExternalError
from shared.services.launch import Launcher
from shared.services.messages import PollRef, Queues, RunRef, deferred, earlier_may_have_acted
from shared.services.notify import NoticeRef, Notifier
from shared.services.poll import Poller
from shared.services.run_context import Outcome
from shared.telemetry import metrics, run_attributes, span

log = logging.getLogger(__name__)

DEFER_BASE = timedelta(seconds=5)
DEFER_MAX = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message as a trigger receives it."""

    message_id: str
    body: Mapping[str, Any]
    delivery_count: int = 1
    properties: Mapping[str, str] = field(default_factory=dict)


class Inbox:
    def __init__(
        self,
        *,
        launcher: Launcher,
        poller: Poller,
        notifier: Notifier,
        sender: MessageSender,
        clock: Clock,
        queues: Queues,
    ) -> None:
        self.launcher = launcher
        self.poller = poller
        self.notifier = notifier
        self.sender = sender
        self.clock = clock
        self.queues = queues

    def launch(self, message: Incoming) -> Outcome:
        redelivered = earlier_may_have_acted(message.body, message.delivery_count)
        return self._guarded(
            message,
            self.queues.launch,
            lambda: self.launcher.launch(RunRef.parse(message.body), redelivered=redelivered),
        )

    def poll(self, message: Incoming) -> Outcome:
        return self._guarded(message, self.queues.poll, lambda: self.poller.poll(PollRef.parse(message.body)))

    def notify(self, message: Incoming) -> Outcome:
        return self._guarded(
            message, self.queues.notify, lambda: self.notifier.deliver(NoticeRef.parse(message.body))
        )

    def _guarded(self, message: Incoming, queue: str, handle: Any) -> Outcome:
        with span(_kind(message), message.properties.get("traceparent"), **_attributes(message)):
            return self._handled(message, queue, handle)

    def _handled(self, message: Incoming, queue: str, handle: Any) -> Outcome:
        try:
            outcome: Outcome = handle()
        except ExternalError as err:
            if not err.retryable:
                raise
            self._defer(message, queue, err)
            return Outcome("deferred")
        return outcome

    def _defer(self, message: Incoming, queue: str, err: ExternalError) -> None:
        n = int(message.body.get("deferrals", 0))
        factor: int = 2 ** min(n, 10)
        wait = min(DEFER_BASE * factor, DEFER_MAX)
        if err.retry_after is not None:
            wait = max(wait, timedelta(seconds=err.retry_after))
        at = self.clock.now() + wait
        self.sender.send([deferred(queue, message.message_id, message.body, message.properties, at)])
        metrics.deferrals.add(1, {"queue": queue})
        log.warning("put off for %ss after a passing error: %s", int(wait.total_seconds()), err.detail)


def _kind(message: Incoming) -> str:
    """The span's name: what the message asks (`launch`, `poll`, `stop`)."""
    return str(message.body.get("kind") or "launch")


def _attributes(message: Incoming) -> dict[str, str | int | None]:
    run = message.body.get("run")
    if not isinstance(run, Mapping):
        return {}
    attempt = message.body.get("attempt", 1)
    return run_attributes(
        str(run.get("job_id")),
        str(run.get("run_key")),
        str(run.get("tenant")),
        int(attempt) if str(attempt).isdigit() else 1,
    )
