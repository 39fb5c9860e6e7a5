"""An in-process twin of the Azure Service Bus queues as deployed, for the local stack and the tests.

A broker that is kinder than the real one hides bugs, so this one keeps the rules
that `infra/` and `host.json` give the deployed queues:

* **Duplicate detection** is always on (window 10 minutes): a message whose id this
  queue accepted within the window, counted from when it was *sent* (not from its
  scheduled time), is silently dropped. A re-send that reuses an id is lost, exactly
  as in Azure.
* **Scheduled messages** become visible at `scheduled_for`.
* **Peek-lock**: `receive` locks each message for `lock_duration` and increments
  its delivery count. `complete` removes it; `abandon` makes it visible again at
  once (Service Bus does not back off); a lock that expires makes it visible again
  too, and a `complete` or `abandon` with a lost lock does nothing (Service Bus
  raises MessageLockLostError, which the Functions host logs).
* **Dead-lettering** with reason "MaxDeliveryCountExceeded" once the delivery count
  reaches `max_delivery_count` (10) and the message is abandoned, or its lock
  expires (then on the next receive from its queue, as Service Bus does).
* **Bodies go through JSON** as with the real sender, so a body that cannot be
  serialised fails at `send`, and each delivery gets its own copy.

It does not reproduce sessions, message batching limits (size, count),
peek without a lock, lock renewal calls, transactions, time-to-live and expiry,
auto-forwarding, partitions, deferral, or throttling. Sending to a queue that does
not exist is accepted (Azure would fail it). The Functions host's
`maxAutoLockRenewalDuration` (5 minutes) is modelled by a lock of that length.

Faults for tests: `fail_sends`, `fail_send_probability`, `drop_next`, `duplicate_next`.
"""

from __future__ import annotations

import heapq
import json
import logging
import random
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.queue import DeadLetter, OutgoingMessage
from shared.domain.clock import Clock, SystemClock
from shared.domain.errors import ExternalError

log = logging.getLogger(__name__)

MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message as a receiver holds it: its lock token settles it, until the lock expires."""

    queue: str
    message_id: str
    body: Mapping[str, Any]
    properties: Mapping[str, str]
    delivery_count: int
    enqueued_for: datetime  # the scheduled time (the send time when not scheduled)
    lock_token: str
    sequence_number: int


@dataclass(slots=True)
class _Message:
    """Broker-side state of one message; never handed out."""

    queue: str
    sequence_number: int
    message_id: str
    encoded_body: str
    properties: Mapping[str, str]
    enqueued_for: datetime
    delivery_count: int = 0
    lock_token: str | None = None
    locked_until: datetime | None = None
    # Bumped on every change of state: heap entries carrying an older generation are stale.
    generation: int = 0

    def delivery(self) -> Delivery:
        return Delivery(
            queue=self.queue,
            message_id=self.message_id,
            body=json.loads(self.encoded_body),
            properties=dict(self.properties),
            delivery_count=self.delivery_count,
            enqueued_for=self.enqueued_for,
            lock_token=self.lock_token or "",
            sequence_number=self.sequence_number,
        )


@dataclass(frozen=True, slots=True, eq=False)  # identity, so two equal letters are two letters
class _DeadLettered:
    delivery: Delivery
    reason: str


@dataclass(slots=True)
class _Queue:
    """One queue: its messages, what is visible, what waits for a time, its dead letters."""

    name: str
    messages: dict[int, _Message] = field(default_factory=dict)  # by sequence number
    # (enqueued_for, sequence number, generation): visible, earliest first.
    ready: list[tuple[datetime, int, int]] = field(default_factory=list)
    # (when, sequence number, generation): a scheduled time or a lock expiry.
    timers: list[tuple[datetime, int, int]] = field(default_factory=list)
    # message id -> when it was accepted, oldest first (insertion order).
    recent_ids: dict[str, datetime] = field(default_factory=dict)
    dead: list[_DeadLettered] = field(default_factory=list)
    draining: set[int] = field(default_factory=set)  # ids of letters a drain is handling
    last_sequence_number: int = 0

    def head(self) -> _Message | None:
        """The earliest visible message, dropping stale entries on the way."""
        while self.ready:
            _, seq, generation = self.ready[0]
            message = self.messages.get(seq)
            if message is not None and message.generation == generation and message.lock_token is None:
                return message
            heapq.heappop(self.ready)
        return None

    def next_timer(self) -> datetime | None:
        while self.timers:
            when, seq, generation = self.timers[0]
            message = self.messages.get(seq)
            if message is not None and message.generation == generation:
                return when
            heapq.heappop(self.timers)
        return None

    def make_visible(self, message: _Message) -> None:
        heapq.heappush(self.ready, (message.enqueued_for, message.sequence_number, message.generation))


@dataclass(slots=True)
class _SendFault:
    remaining: int
    after_enqueue: bool
    queue: str | None


class ServiceBusTwin:
    """Service Bus queues in this process, with the deployed settings; see the module docstring.

    Thread-safe: one lock guards all state; `handle` in `drain_dead_letters` runs outside it.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        duplicate_detection_window: timedelta = timedelta(minutes=10),
        max_delivery_count: int = 10,
        # The queues' own lock is PT1M, but the Functions host renews it for up to
        # maxAutoLockRenewalDuration (host.json: 5 minutes) while a function runs, so a
        # handler effectively holds its message for 5 minutes. Tests pass shorter locks.
        lock_duration: timedelta = timedelta(minutes=5),
    ) -> None:
        if max_delivery_count < 1:
            raise ValueError("max_delivery_count must be at least 1")
        if lock_duration <= timedelta(0):
            raise ValueError("lock_duration must be positive")
        if duplicate_detection_window < timedelta(0):
            raise ValueError("duplicate_detection_window must not be negative")
        self.clock: Clock = clock or SystemClock()
        self.duplicate_detection_window = duplicate_detection_window
        self.max_delivery_count = max_delivery_count
        self.lock_duration = lock_duration
        self.sent: list[OutgoingMessage] = []  # every accepted message, for tests and benchmarks
        self.deduplicated: list[OutgoingMessage] = []  # every send dropped by duplicate detection
        self._queues: dict[str, _Queue] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._changes = 0  # counts sends, abandons and wakes, for `wait`
        self._waiters = threading.local()
        self._send_faults: list[_SendFault] = []
        self._fail_probability = 0.0
        self._fail_rng: random.Random | None = None
        self._drop = 0
        self._duplicate = 0

    # -- sending (the MessageSender port) ---------------------------------------------------------
    def send(self, messages: Sequence[OutgoingMessage]) -> None:
        """Enqueue each message unless duplicate detection drops it; ExternalError on an injected fault.

        A batch is all or nothing, as one `send_messages` call is.
        """
        if not messages:
            return
        for message in messages:
            if message.scheduled_for is not None and message.scheduled_for.tzinfo is None:
                raise ValueError(f"message {message.message_id}: scheduled_for must be timezone-aware")
        # Encode first, as the real sender builds every message before sending any.
        encoded = [message.encoded() for message in messages]
        now = self.clock.now()
        with self._lock:
            fault = self._take_send_fault(messages)
            if fault is not None and not fault.after_enqueue:
                raise ExternalError("service bus: injected send failure", retryable=True)
            for message, body in zip(messages, encoded, strict=True):
                self._accept(message, body, now)
            self._changes += 1
            self._changed.notify_all()
            if fault is not None:
                raise ExternalError("service bus: injected send failure", retryable=True)

    def _take_send_fault(self, messages: Sequence[OutgoingMessage]) -> _SendFault | None:
        queues = {message.queue for message in messages}
        for fault in self._send_faults:
            if fault.queue is None or fault.queue in queues:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._send_faults.remove(fault)
                return fault
        if self._fail_rng is not None and self._fail_rng.random() < self._fail_probability:
            return _SendFault(remaining=0, after_enqueue=False, queue=None)
        return None

    def _accept(self, message: OutgoingMessage, encoded_body: str, now: datetime) -> None:
        queue = self._queue(message.queue)
        self._forget_old_ids(queue, now)
        accepted_at = queue.recent_ids.get(message.message_id)
        if accepted_at is not None and now < accepted_at + self.duplicate_detection_window:
            log.debug("duplicate detection dropped message %s on %s", message.message_id, message.queue)
            self.deduplicated.append(message)
            return
        queue.recent_ids.pop(message.message_id, None)  # re-insert at the end: the dict stays oldest first
        queue.recent_ids[message.message_id] = now
        self.sent.append(message)
        if self._drop:
            self._drop -= 1
            return
        copies = 1
        if self._duplicate:
            self._duplicate -= 1
            copies = 2
        visible_at = message.scheduled_for.astimezone(UTC) if message.scheduled_for else now
        for _ in range(copies):
            queue.last_sequence_number += 1
            stored = _Message(
                queue=message.queue,
                sequence_number=queue.last_sequence_number,
                message_id=message.message_id,
                encoded_body=encoded_body,
                properties=dict(message.properties),
                enqueued_for=visible_at,
            )
            queue.messages[stored.sequence_number] = stored
            if visible_at <= now:
                queue.make_visible(stored)
            else:
                heapq.heappush(queue.timers, (visible_at, stored.sequence_number, stored.generation))

    def _forget_old_ids(self, queue: _Queue, now: datetime) -> None:
        """Keep duplicate detection's memory to one window (the check itself does not rely on this)."""
        horizon = now - self.duplicate_detection_window
        while queue.recent_ids:
            oldest_id, accepted_at = next(iter(queue.recent_ids.items()))
            if accepted_at > horizon:
                return
            del queue.recent_ids[oldest_id]

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue(name)
        return queue

    # -- receiving (peek-lock) ---------------------------------------------------------------------
    def receive(self, limit: int = 1000, queue: str | None = None) -> list[Delivery]:
        """Lock and return up to `limit` visible messages (of `queue`, or of all), earliest first."""
        now = self.clock.now()
        with self._lock:
            if getattr(self._waiters, "baseline", None) is None:
                self._waiters.baseline = self._changes
            if queue is None:
                queues = list(self._queues.values())
            else:
                queues = [self._queues[queue]] if queue in self._queues else []
            for q in queues:
                self._release_due(q, now)
            out: list[Delivery] = []
            while len(out) < limit:
                heads = [(m.enqueued_for, m.sequence_number, q.name, q, m) for q in queues if (m := q.head())]
                if not heads:
                    break
                *_, q, message = min(heads, key=lambda h: h[:3])
                heapq.heappop(q.ready)
                message.delivery_count += 1
                message.lock_token = uuid.uuid4().hex
                message.locked_until = now + self.lock_duration
                message.generation += 1
                heapq.heappush(q.timers, (message.locked_until, message.sequence_number, message.generation))
                out.append(message.delivery())
            return out

    def _release_due(self, queue: _Queue, now: datetime) -> None:
        """Scheduled messages whose time came become visible; expired locks are lost."""
        while (when := queue.next_timer()) is not None and when <= now:
            _, seq, _ = heapq.heappop(queue.timers)
            message = queue.messages[seq]
            if message.lock_token is None:
                queue.make_visible(message)
                continue
            self._unlock(queue, message, message.delivery())

    def complete(self, delivery: Delivery) -> bool:
        """Remove the message; False (and nothing done) if the delivery's lock was lost."""
        with self._lock:
            message = self._locked(delivery, self.clock.now())
            if message is None:
                return False
            del self._queues[delivery.queue].messages[delivery.sequence_number]
            return True

    def abandon(self, delivery: Delivery) -> bool:
        """Make the message visible again at once, or dead-letter it at max delivery count.

        False (and nothing done) if the delivery's lock was lost.
        """
        with self._lock:
            message = self._locked(delivery, self.clock.now())
            if message is None:
                return False
            self._unlock(self._queues[delivery.queue], message, delivery)
            self._changes += 1
            self._changed.notify_all()
            return True

    def _locked(self, delivery: Delivery, now: datetime) -> _Message | None:
        queue = self._queues.get(delivery.queue)
        message = queue.messages.get(delivery.sequence_number) if queue else None
        if (
            message is None
            or message.lock_token is None
            or message.lock_token != delivery.lock_token
            or message.locked_until is None
            or now >= message.locked_until
        ):
            return None
        return message

    def _unlock(self, queue: _Queue, message: _Message, last: Delivery) -> None:
        """The lock ends (abandoned or expired): visible again, or dead-lettered at max delivery count."""
        message.lock_token = None
        message.locked_until = None
        message.generation += 1
        if message.delivery_count < self.max_delivery_count:
            queue.make_visible(message)
            return
        del queue.messages[message.sequence_number]
        queue.dead.append(_DeadLettered(last, MAX_DELIVERY_COUNT_EXCEEDED))
        log.warning(
            "message %s on %s dead-lettered after %d deliveries",
            message.message_id,
            queue.name,
            message.delivery_count,
        )

    # -- dead letters (the DeadLetters port) --------------------------------------------------------
    def dead_letter_count(self, queue: str) -> int:
        with self._lock:
            q = self._queues.get(queue)
            return len(q.dead) if q else 0

    def drain_dead_letters(self, queue: str, limit: int, handle: Callable[[DeadLetter], None]) -> int:
        """Hand up to `limit` dead letters to `handle`; each is removed only once `handle` returns.

        If `handle` raises, that letter (and the rest of the batch) stays and the error
        propagates. A letter being handled is skipped by a concurrent drain (it is locked).
        """
        with self._lock:
            q = self._queue(queue)
            batch = [letter for letter in q.dead if id(letter) not in q.draining][:limit]
            q.draining.update(id(letter) for letter in batch)
        done = 0
        try:
            for letter in batch:
                handle(
                    DeadLetter(queue, letter.delivery.message_id, dict(letter.delivery.body), letter.reason)
                )
                with self._lock:
                    q.dead.remove(letter)
                    q.draining.discard(id(letter))
                done += 1
        finally:
            with self._lock:
                q.draining.difference_update(id(letter) for letter in batch)
        return done

    def dead_letters(self, queue: str) -> list[Delivery]:
        """The queue's dead letters, oldest first, each as it was last delivered (for tests)."""
        with self._lock:
            q = self._queues.get(queue)
            return [letter.delivery for letter in q.dead] if q else []

    # -- waiting and counting ----------------------------------------------------------------------
    def next_visible_at(self, queue: str | None = None) -> datetime | None:
        """When a message (of `queue`, or of any) is or becomes visible: scheduled time or lock expiry.

        A time in the past means a message is visible now.
        """
        with self._lock:
            if queue is None:
                queues = list(self._queues.values())
            else:
                queues = [self._queues[queue]] if queue in self._queues else []
            times: list[datetime] = []
            for q in queues:
                if (head := q.head()) is not None:
                    times.append(head.enqueued_for)
                if (when := q.next_timer()) is not None:
                    times.append(when)
            return min(times, default=None)

    def wait(self, timeout: float) -> None:
        """Block until a message is sent or abandoned (or `wake` is called), or `timeout` seconds pass.

        It returns at once if that happened since this thread's first `receive` after its
        previous `wait`, so a receive-then-wait loop never sleeps through a send.
        """
        with self._lock:
            baseline = getattr(self._waiters, "baseline", None)
            if baseline is None:
                baseline = self._changes
            self._changed.wait_for(lambda: self._changes != baseline, timeout)
            self._waiters.baseline = None

    def wake(self) -> None:
        """Wake every `wait` (a dispatcher that is stopping)."""
        with self._lock:
            self._changes += 1
            self._changed.notify_all()

    def pending(self, queue: str | None = None) -> int:
        """Messages not yet completed (scheduled, visible or locked); dead letters excluded."""
        with self._lock:
            if queue is not None:
                q = self._queues.get(queue)
                return len(q.messages) if q else 0
            return sum(len(q.messages) for q in self._queues.values())

    # -- faults for tests --------------------------------------------------------------------------
    def fail_sends(self, times: int = 1, *, after_enqueue: bool = False, queue: str | None = None) -> None:
        """The next `times` sends (that touch `queue`, if given) raise a retryable ExternalError.

        With `after_enqueue` the messages are enqueued first: the acknowledgement is lost,
        so the sender believes it failed although the messages will be delivered.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._send_faults.append(_SendFault(times, after_enqueue, queue))

    def fail_send_probability(self, p: float, rng: random.Random) -> None:
        """From now on each send fails (before enqueueing) with probability `p` drawn from `rng`; 0 stops."""
        if not 0.0 <= p <= 1.0:
            raise ValueError("p must be between 0 and 1")
        with self._lock:
            self._fail_probability = p
            self._fail_rng = rng if p > 0 else None

    def drop_next(self, n: int = 1) -> None:
        """The next `n` accepted messages are lost (recorded in `sent`, their ids used up)."""
        with self._lock:
            self._drop += n

    def duplicate_next(self, n: int = 1) -> None:
        """The next `n` accepted messages are delivered twice, as two independent copies."""
        with self._lock:
            self._duplicate += n
