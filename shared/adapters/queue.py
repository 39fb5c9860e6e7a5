"""The message port: what the scheduler sends to Service Bus, and its in-process stand-in.

Messages only say "look at run X now"; every handler re-reads the run. A message
has a deterministic id (derived from the run key and attempt), so Service Bus
duplicate detection drops a second send of the same message, and a handler that
sees it anyway (after the detection window) finds the run already moved on.

`InProcessQueues` is the local stack's and the tests' broker: scheduled delivery,
redelivery with a delivery count when the handler raises, dead-lettering after
`max_delivery_count`, and hooks for tests to drop or duplicate messages.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from shared.domain.clock import Clock, SystemClock


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    queue: str
    message_id: str
    body: Mapping[str, Any]
    scheduled_for: datetime | None = None  # None: deliver now
    properties: Mapping[str, str] = field(default_factory=dict)

    def encoded(self) -> str:
        return json.dumps(self.body, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message as a handler receives it."""

    queue: str
    message_id: str
    body: Mapping[str, Any]
    properties: Mapping[str, str]
    delivery_count: int
    enqueued_for: datetime


class MessageSender(Protocol):
    def send(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send (or schedule) messages; raises ExternalError if Service Bus refused them."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    queue: str
    message_id: str
    body: Mapping[str, Any]
    reason: str


class DeadLetters(Protocol):
    def dead_letter_count(self, queue: str) -> int:
        """How many messages sit in the queue's dead-letter queue (may stop counting at 100)."""

    def drain_dead_letters(self, queue: str, limit: int, handle: Callable[[DeadLetter], None]) -> int:
        """Hand up to `limit` dead letters to `handle`; each is removed only after `handle` returns."""


@dataclass(order=True)
class _Pending:
    due: datetime
    seq: int
    delivery: Delivery = field(compare=False)


class InProcessQueues:
    """A broker in this process; `due_deliveries` hands out what is due, `settle`/`abandon` finish it."""

    def __init__(self, clock: Clock | None = None, max_delivery_count: int = 10) -> None:
        self.clock = clock or SystemClock()
        self.max_delivery_count = max_delivery_count
        self._heap: list[_Pending] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self.dead_letters: dict[str, list[Delivery]] = {}
        self.sent: list[OutgoingMessage] = []  # every message accepted, for tests and benchmarks
        self._drop = 0
        self._duplicate = 0
        self._seen_ids: dict[str, datetime] = {}
        self.duplicate_detection = False

    # -- the port --------------------------------------------------------------------------------
    def send(self, messages: Sequence[OutgoingMessage]) -> None:
        with self._lock:
            for message in messages:
                if self.duplicate_detection and message.message_id in self._seen_ids:
                    continue
                self._seen_ids[message.message_id] = self.clock.now()
                self.sent.append(message)
                if self._drop:
                    self._drop -= 1
                    continue
                copies = 1
                if self._duplicate:
                    self._duplicate -= 1
                    copies = 2
                due = message.scheduled_for or self.clock.now()
                for _ in range(copies):
                    delivery = Delivery(
                        message.queue,
                        message.message_id,
                        dict(message.body),
                        dict(message.properties),
                        0,
                        due,
                    )
                    heapq.heappush(self._heap, _Pending(due, next(self._seq), delivery))
            self._wake.notify_all()

    # -- test hooks ------------------------------------------------------------------------------
    def drop_next(self, n: int = 1) -> None:
        """The next n messages are accepted and then lost (as a lost message would be)."""
        with self._lock:
            self._drop += n

    def duplicate_next(self, n: int = 1) -> None:
        """The next n messages are delivered twice."""
        with self._lock:
            self._duplicate += n

    # -- delivery --------------------------------------------------------------------------------
    def next_due_at(self) -> datetime | None:
        with self._lock:
            return self._heap[0].due if self._heap else None

    def due_deliveries(self, limit: int = 1000) -> list[Delivery]:
        """Take out every message due now (delivery count incremented), earliest first."""
        now = self.clock.now()
        out: list[Delivery] = []
        with self._lock:
            while self._heap and self._heap[0].due <= now and len(out) < limit:
                pending = heapq.heappop(self._heap)
                out.append(replace(pending.delivery, delivery_count=pending.delivery.delivery_count + 1))
        return out

    def abandon(self, delivery: Delivery, retry_at: datetime | None = None) -> None:
        """The handler failed: deliver again (as Service Bus does after the lock), or dead-letter."""
        with self._lock:
            if delivery.delivery_count >= self.max_delivery_count:
                self.dead_letters.setdefault(delivery.queue, []).append(delivery)
                return
            due = retry_at or self.clock.now()
            heapq.heappush(self._heap, _Pending(due, next(self._seq), delivery))
            self._wake.notify_all()

    def wait(self, timeout: float) -> None:
        """Sleep until a message is sent or `timeout` seconds pass (the dispatcher's idle wait)."""
        with self._lock:
            self._wake.wait(timeout)

    def dead_letter_count(self, queue: str) -> int:
        with self._lock:
            return len(self.dead_letters.get(queue, []))

    def drain_dead_letters(self, queue: str, limit: int, handle: Callable[[DeadLetter], None]) -> int:
        with self._lock:
            batch = list(self.dead_letters.get(queue, [])[:limit])
        for delivery in batch:
            handle(DeadLetter(queue, delivery.message_id, delivery.body, "MaxDeliveryCountExceeded"))
            with self._lock:
                self.dead_letters[queue].remove(delivery)
        return len(batch)

    def pending(self, queue: str | None = None) -> int:
        with self._lock:
            return sum(1 for p in self._heap if queue is None or p.delivery.queue == queue)
