"""The local host drives the Service Bus twin as the Functions host drives Service Bus, and fires timers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest

from devstack.host import QueueDispatcher, TimerRunner, functions_by_trigger
from devstack.service_bus_twin import ServiceBusTwin
from shared.adapters.queue import OutgoingMessage

Behaviour = Callable[[str, int], None]  # (message id, delivery count) -> returns or raises


def _app(
    calls: list[tuple[str, int]], fail_times: int, behaviour: Behaviour | None = None
) -> func.FunctionApp:
    app = func.FunctionApp()

    @app.service_bus_queue_trigger(
        arg_name="msg", queue_name="%TestQueueName%", connection="ServiceBusConnection"
    )
    def handler(msg: func.ServiceBusMessage) -> None:
        mid, count = str(json.loads(msg.get_body())["n"]), msg.delivery_count or 0
        calls.append((mid, count))
        if behaviour is not None:
            behaviour(mid, count)
        if len(calls) <= fail_times:
            raise RuntimeError("transient")

    @app.timer_trigger(arg_name="timer", schedule="0 * * * * *")
    def tick(timer: func.TimerRequest) -> None:
        calls.append(("tick", int(timer.past_due)))

    return app


def _wait(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def _send(broker: ServiceBusTwin, mid: str, at: datetime | None = None) -> None:
    broker.send([OutgoingMessage(queue="work", message_id=mid, body={"n": mid}, scheduled_for=at)])


@pytest.fixture(autouse=True)
def _queue_name_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TestQueueName", "work")


@pytest.fixture
def dispatch() -> Iterator[Callable[..., QueueDispatcher]]:
    """Starts dispatchers for a test and stops them whatever happens."""
    started: list[QueueDispatcher] = []

    def start(broker: ServiceBusTwin, app: func.FunctionApp, workers: int = 16) -> QueueDispatcher:
        dispatcher = QueueDispatcher(broker, functions_by_trigger(app)["serviceBusTrigger"], workers=workers)
        dispatcher.start()
        started.append(dispatcher)
        return dispatcher

    yield start
    for dispatcher in started:
        dispatcher.stop()


def test_a_handler_that_returns_completes_its_message(dispatch: Callable[..., QueueDispatcher]) -> None:
    calls: list[tuple[str, int]] = []
    broker = ServiceBusTwin()
    dispatch(broker, _app(calls, 0))
    _send(broker, "m1")
    _wait(lambda: broker.pending() == 0)
    assert calls == [("m1", 1)]
    assert broker.pending() == 0


def test_a_failing_handler_gets_the_message_again_with_a_higher_delivery_count(
    dispatch: Callable[..., QueueDispatcher],
) -> None:
    calls: list[tuple[str, int]] = []
    broker = ServiceBusTwin(max_delivery_count=5)
    dispatch(broker, _app(calls, 2))
    _send(broker, "m1")
    _wait(lambda: len(calls) == 3 and broker.pending() == 0)
    assert calls == [("m1", 1), ("m1", 2), ("m1", 3)]
    assert broker.pending() == 0
    assert broker.dead_letter_count("work") == 0


def test_a_message_that_always_fails_is_dead_lettered(dispatch: Callable[..., QueueDispatcher]) -> None:
    calls: list[tuple[str, int]] = []
    broker = ServiceBusTwin(max_delivery_count=3)
    dispatch(broker, _app(calls, 99))
    _send(broker, "m1")
    _wait(lambda: broker.dead_letter_count("work") == 1)
    assert [c[1] for c in calls] == [1, 2, 3]
    assert [d.message_id for d in broker.dead_letters("work")] == ["m1"]
    assert broker.pending() == 0


def test_a_scheduled_message_reaches_its_function_at_its_time(
    dispatch: Callable[..., QueueDispatcher],
) -> None:
    calls: list[tuple[str, int]] = []
    broker = ServiceBusTwin()
    dispatch(broker, _app(calls, 0))
    due = datetime.now(UTC) + timedelta(seconds=0.3)
    _send(broker, "later", due)
    time.sleep(0.1)
    assert calls == []
    _wait(lambda: len(calls) == 1)
    assert calls == [("later", 1)]
    assert datetime.now(UTC) >= due


def test_a_handler_that_outlives_its_lock_sees_the_message_again(
    dispatch: Callable[..., QueueDispatcher], caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[str, int]] = []

    def first_delivery_is_slow(_: str, delivery_count: int) -> None:
        if delivery_count == 1:
            time.sleep(1.0)

    broker = ServiceBusTwin(lock_duration=timedelta(seconds=0.3))
    dispatch(broker, _app(calls, 0, first_delivery_is_slow))
    _send(broker, "m1")
    _wait(lambda: "outlived the lock" in caplog.text)  # the slow call's complete found its lock lost
    assert calls == [("m1", 1), ("m1", 2)]
    assert broker.pending() == 0
    assert broker.dead_letter_count("work") == 0


def test_the_dispatcher_locks_no_more_messages_than_it_has_idle_workers(
    dispatch: Callable[..., QueueDispatcher],
) -> None:
    calls: list[tuple[str, int]] = []
    release = threading.Event()

    def block(_: str, __: int) -> None:
        release.wait(5)

    broker = ServiceBusTwin()
    dispatch(broker, _app(calls, 0, block), workers=2)
    for i in range(5):
        _send(broker, f"m{i}")
    _wait(lambda: len(calls) == 2)
    left = broker.receive(limit=10, queue="work")  # what the dispatcher did not take is still visible
    assert len(left) == 3
    for delivery in left:
        broker.abandon(delivery)
    release.set()
    _wait(lambda: broker.pending() == 0)
    assert sorted(mid for mid, _ in calls) == [f"m{i}" for i in range(5)]


def test_messages_on_a_queue_no_function_listens_on_stay_in_the_queue(
    dispatch: Callable[..., QueueDispatcher],
) -> None:
    calls: list[tuple[str, int]] = []
    broker = ServiceBusTwin()
    dispatch(broker, _app(calls, 0))
    broker.send([OutgoingMessage(queue="elsewhere", message_id="x", body={"n": "x"})])
    _send(broker, "m1")
    _wait(lambda: calls == [("m1", 1)])
    assert [(d.message_id, d.delivery_count) for d in broker.receive(queue="elsewhere")] == [("x", 1)]


def test_the_timer_runner_calls_timer_functions_on_its_interval() -> None:
    calls: list[tuple[str, int]] = []
    runner = TimerRunner(
        functions_by_trigger(_app(calls, 0))["timerTrigger"], tick_seconds=0.1, other_seconds=60
    )
    runner.start()
    _wait(lambda: len(calls) >= 3)
    runner.stop()
    assert calls[:3] == [("tick", 0)] * 3
