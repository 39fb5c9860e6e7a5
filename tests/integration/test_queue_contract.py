"""The message port's contract: the Service Bus twin (devstack) and Azure Service Bus behave the same.

The Service Bus half needs a namespace (or the Service Bus emulator, which needs Docker). It is
skipped unless a connection string is given; run it with:

    SERVICEBUS_CONNECTION_STRING='Endpoint=sb://...' SERVICEBUS_TEST_QUEUE=launch-test make test
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from devstack.service_bus_twin import ServiceBusTwin
from shared.adapters.queue import OutgoingMessage

Received = tuple[str, dict, dict]  # message id, body, properties


class _InProcess:
    def __init__(self) -> None:
        self.queues = ServiceBusTwin()
        self.sender = self.queues
        self.queue = "contract"

    def receive(self, wait: float) -> list[Received]:
        deadline = time.monotonic() + wait
        out: list[Received] = []
        while time.monotonic() < deadline:
            for d in self.queues.receive():
                out.append((d.message_id, dict(d.body), dict(d.properties)))
                self.queues.complete(d)
            time.sleep(0.05)
        return out


class _ServiceBus:
    def __init__(self, connection: str, queue: str) -> None:
        from azure.servicebus import ServiceBusClient

        from shared.adapters.service_bus import ServiceBusSender

        self.sender = ServiceBusSender(connection_string=connection)
        self.client = ServiceBusClient.from_connection_string(connection)
        self.queue = queue
        self.receive(1.0)  # drain what an earlier run left

    def receive(self, wait: float) -> list[Received]:
        out: list[Received] = []
        with self.client.get_queue_receiver(self.queue, max_wait_time=wait) as receiver:
            for m in receiver.receive_messages(max_message_count=50, max_wait_time=wait):
                props = {
                    k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                    for k, v in (m.application_properties or {}).items()
                }
                out.append((str(m.message_id), json.loads(str(m)), props))
                receiver.complete_message(m)
        return out


@pytest.fixture(params=["in-process", "service-bus"])
def port(request: pytest.FixtureRequest) -> Iterator[_InProcess | _ServiceBus]:
    if request.param == "in-process":
        yield _InProcess()
        return
    connection = os.environ.get("SERVICEBUS_CONNECTION_STRING")
    if not connection:
        pytest.skip(
            "needs a Service Bus namespace or emulator: "
            "SERVICEBUS_CONNECTION_STRING=... SERVICEBUS_TEST_QUEUE=... make test"
        )
    yield _ServiceBus(connection, os.environ.get("SERVICEBUS_TEST_QUEUE", "launch-test"))


def _message(queue: str, at: datetime | None = None) -> OutgoingMessage:
    mid = f"contract-{uuid.uuid4()}"
    return OutgoingMessage(
        queue=queue,
        message_id=mid,
        body={"run": {"job_id": "J"}, "kind": "launch"},
        scheduled_for=at,
        properties={"job_id": "J", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
    )


def test_a_message_arrives_with_its_id_body_and_properties(port) -> None:  # type: ignore[no-untyped-def]
    sent = _message(port.queue)
    port.sender.send([sent])
    received = [r for r in port.receive(3.0) if r[0] == sent.message_id]
    assert received == [(sent.message_id, dict(sent.body), dict(sent.properties))]


def test_a_scheduled_message_waits_for_its_time(port) -> None:  # type: ignore[no-untyped-def]
    sent = _message(port.queue, datetime.now(UTC) + timedelta(seconds=4))
    port.sender.send([sent])
    assert [r for r in port.receive(1.5) if r[0] == sent.message_id] == []
    assert len([r for r in port.receive(5.0) if r[0] == sent.message_id]) == 1


def test_a_second_send_of_an_id_inside_the_detection_window_is_dropped(port) -> None:  # type: ignore[no-untyped-def]
    """What makes a re-send that reuses an id lose a needed message (the queues deploy with detection on)."""
    sent = _message(port.queue)
    port.sender.send([sent])
    port.sender.send([sent])
    assert len([r for r in port.receive(3.0) if r[0] == sent.message_id]) == 1
