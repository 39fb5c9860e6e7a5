"""Sending to Azure Service Bus (azure-servicebus): managed identity in Azure, a connection string locally."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.exceptions import ServiceBusError

from shared.adapters.queue import DeadLetter, OutgoingMessage
from shared.domain.errors import ExternalError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


class ServiceBusSender:
    """One client per process, one sender per queue, reused (AMQP links are expensive to open)."""

    def __init__(
        self,
        *,
        namespace: str | None = None,
        credential: TokenCredential | None = None,
        connection_string: str | None = None,
    ) -> None:
        if connection_string:
            self._client = ServiceBusClient.from_connection_string(connection_string)
        elif namespace and credential is not None:
            self._client = ServiceBusClient(fully_qualified_namespace=namespace, credential=credential)
        else:
            raise ValueError("set ServiceBusConnection__fullyQualifiedNamespace (with a managed identity)")
        self._senders: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _sender(self, queue: str) -> Any:
        with self._lock:
            if queue not in self._senders:
                self._senders[queue] = self._client.get_queue_sender(queue_name=queue)
            return self._senders[queue]

    def send(self, messages: Sequence[OutgoingMessage]) -> None:
        by_queue: dict[str, list[ServiceBusMessage]] = defaultdict(list)
        for m in messages:
            by_queue[m.queue].append(
                ServiceBusMessage(
                    m.encoded(),
                    message_id=m.message_id,
                    content_type="application/json",
                    scheduled_enqueue_time_utc=m.scheduled_for,
                    application_properties={k: v for k, v in m.properties.items()},
                )
            )
        try:
            for queue, batch in by_queue.items():
                self._sender(queue).send_messages(batch)
        except ServiceBusError as err:
            raise ExternalError(f"service bus: {err}", retryable=True) from err

    def dead_letter_count(self, queue: str) -> int:
        try:
            with self._client.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as receiver:
                return len(receiver.peek_messages(max_message_count=100))
        except ServiceBusError as err:
            raise ExternalError(f"service bus: {err}", retryable=True) from err

    def drain_dead_letters(self, queue: str, limit: int, handle: Callable[[DeadLetter], None]) -> int:
        done = 0
        try:
            with self._client.get_queue_receiver(
                queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=2
            ) as receiver:
                for message in receiver.receive_messages(max_message_count=limit, max_wait_time=2):
                    try:
                        body = json.loads(str(message))
                    except ValueError:
                        body = {}
                    reason = str(message.dead_letter_reason or "dead-lettered")
                    handle(DeadLetter(queue, str(message.message_id), body, reason))
                    receiver.complete_message(message)  # only once handled: a crash leaves it for next time
                    done += 1
        except ServiceBusError as err:
            raise ExternalError(f"service bus: {err}", retryable=True) from err
        return done

    def close(self) -> None:
        for sender in self._senders.values():
            sender.close()
        self._client.close()
