"""The local host delivers in-process messages to registered Service Bus functions as the host would."""

from __future__ import annotations

import json
import time

import azure.functions as func

from devstack.host import QueueDispatcher, TimerRunner, functions_by_trigger
from shared.adapters.queue import InProcessQueues, OutgoingMessage


def _app(calls: list[tuple[str, int]], fail_times: int) -> func.FunctionApp:
    app = func.FunctionApp()

    @app.service_bus_queue_trigger(
        arg_name="msg", queue_name="%TestQueueName%", connection="ServiceBusConnection"
    )
    def handler(msg: func.ServiceBusMessage) -> None:
        body = json.loads(msg.get_body())
        calls.append((body["n"], msg.delivery_count))
        if len(calls) <= fail_times:
            raise RuntimeError("transient")

    @app.timer_trigger(arg_name="timer", schedule="0 * * * * *")
    def tick(timer: func.TimerRequest) -> None:
        calls.append(("tick", int(timer.past_due)))

    return app


def _wait(condition, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_failing_handler_gets_the_message_again_with_a_higher_delivery_count(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TestQueueName", "work")
    calls: list[tuple[str, int]] = []
    broker = InProcessQueues(max_delivery_count=5)
    dispatcher = QueueDispatcher(
        broker, functions_by_trigger(_app(calls, 2))["serviceBusTrigger"], retry_seconds=0.05
    )
    dispatcher.start()
    try:
        broker.send([OutgoingMessage(queue="work", message_id="m1", body={"n": "m1"})])
        _wait(lambda: len(calls) == 3)
    finally:
        dispatcher.stop()
    assert calls == [("m1", 1), ("m1", 2), ("m1", 3)]
    assert broker.dead_letters == {}


def test_a_message_that_always_fails_is_dead_lettered(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TestQueueName", "work")
    calls: list[tuple[str, int]] = []
    broker = InProcessQueues(max_delivery_count=3)
    dispatcher = QueueDispatcher(
        broker, functions_by_trigger(_app(calls, 99))["serviceBusTrigger"], retry_seconds=0.05
    )
    dispatcher.start()
    try:
        broker.send([OutgoingMessage(queue="work", message_id="m1", body={"n": "m1"})])
        _wait(lambda: "work" in broker.dead_letters)
    finally:
        dispatcher.stop()
    assert [c[1] for c in calls] == [1, 2, 3]
    assert [d.message_id for d in broker.dead_letters["work"]] == ["m1"]


def test_the_timer_runner_calls_timer_functions_on_its_interval() -> None:
    calls: list[tuple[str, int]] = []
    runner = TimerRunner(
        functions_by_trigger(_app(calls, 0))["timerTrigger"], tick_seconds=0.1, other_seconds=60
    )
    runner.start()
    _wait(lambda: len(calls) >= 3)
    runner.stop()
    assert calls[:3] == [("tick", 0)] * 3
