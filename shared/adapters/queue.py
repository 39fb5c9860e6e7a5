"""The message port: what the scheduler sends to Service Bus, and the dead letters it reads back.

Messages only say "look at run X now"; every handler re-reads the run. The Service Bus adapter
is `service_bus.py`; the local stack and the tests use `devstack/service_bus_twin.py`, which
keeps Service Bus's rules (duplicate detection, locks, redelivery, dead letters).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    queue: str
    message_id: str
    body: Mapping[str, Any]
    scheduled_for: datetime | None = None  # None: deliver now
    properties: Mapping[str, str] = field(default_factory=dict)

    def encoded(self) -> str:
        return json.dumps(self.body, separators=(",", ":"), sort_keys=True)


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
