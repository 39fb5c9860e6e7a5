"""The local host drives the Service Bus twin as the Functions host drives Service Bus, fires timers,
and delivers Event Grid events at least once (retries with backoff, then dead-letters)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest

from devstack.host import EventGridDispatcher, QueueDispatcher, TimerRunner, functions_by_trigger
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


# --- Event Grid ------------------------------------------------------------------------------------------

BLOB_EVENT = {
    "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
    "/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
    "subject": "/blobServices/default/containers/landing/blobs/sales/day1.csv",
    "eventType": "Microsoft.Storage.BlobCreated",
    "eventTime": "2026-06-01T12:00:01.1234567Z",
    "id": "831e1650-001e-001b-66ab-eeb76e069631",
    "data": {"api": "PutBlob", "eTag": '"0x8D4BCC2E4835CD0"', "url": "http://127.0.0.1:10000/x/landing/a"},
    "dataVersion": "",
    "metadataVersion": "1",
}
Seen = list[tuple[str, func.EventGridEvent, float]]  # (function, event, monotonic time)


def _event_app(seen: Seen, fail_times: dict[str, int]) -> func.FunctionApp:
    """Two Event Grid functions; `fail_times[name]` calls of that one raise before it returns."""
    app = func.FunctionApp()

    def record(name: str, event: func.EventGridEvent) -> None:
        seen.append((name, event, time.monotonic()))
        if sum(1 for n, _, _ in seen if n == name) <= fail_times.get(name, 0):
            raise RuntimeError(f"{name} is down")

    @app.function_name("first")
    @app.event_grid_trigger(arg_name="event")
    def first(event: func.EventGridEvent) -> None:
        record("first", event)

    @app.function_name("second")
    @app.event_grid_trigger(arg_name="event")
    def second(event: func.EventGridEvent) -> None:
        record("second", event)

    return app


@pytest.fixture
def event_grid() -> Iterator[Callable[..., EventGridDispatcher]]:
    started: list[EventGridDispatcher] = []

    def start(app: func.FunctionApp, **kwargs: object) -> EventGridDispatcher:
        dispatcher = EventGridDispatcher(functions_by_trigger(app)["eventGridTrigger"], **kwargs).start()  # type: ignore[arg-type]
        started.append(dispatcher)
        return dispatcher

    yield start
    for dispatcher in started:
        dispatcher.stop()


def test_an_event_reaches_every_event_grid_function_as_the_worker_decodes_it(
    event_grid: Callable[..., EventGridDispatcher],
) -> None:
    seen: Seen = []
    dispatcher = event_grid(_event_app(seen, {}))
    dispatcher.publish(BLOB_EVENT)
    assert dispatcher.wait_until_settled(5)
    assert sorted(name for name, _, _ in seen) == ["first", "second"]
    event = seen[0][1]
    assert isinstance(event, func.EventGridEvent)
    assert (event.id, event.topic) == (BLOB_EVENT["id"], BLOB_EVENT["topic"])
    assert event.subject == BLOB_EVENT["subject"]
    assert (event.event_type, event.data_version) == ("Microsoft.Storage.BlobCreated", "")
    assert event.event_time == datetime(2026, 6, 1, 12, 0, 1, 123456, tzinfo=UTC)  # 7 digits, as in Azure
    assert event.get_json() == BLOB_EVENT["data"]
    assert dispatcher.delivered == 2 and dispatcher.dead_letters == []


def test_a_function_that_raises_gets_the_event_again_after_a_growing_delay(
    event_grid: Callable[..., EventGridDispatcher],
) -> None:
    seen: Seen = []
    dispatcher = event_grid(_event_app(seen, {"first": 2}), retry_delays=(0.1, 0.3, 5))
    dispatcher.publish(BLOB_EVENT)
    assert dispatcher.wait_until_settled(5)
    tries = [at for name, _, at in seen if name == "first"]
    assert len(tries) == 3  # failed, failed, returned
    assert tries[1] - tries[0] >= 0.1 and tries[2] - tries[1] >= 0.3
    assert {e.id for _, e, _ in seen} == {BLOB_EVENT["id"]}  # the same event each time
    assert [name for name, _, _ in seen].count("second") == 1  # the other subscription is not retried
    assert dispatcher.dead_letters == [] and dispatcher.delivered == 2


def test_an_event_a_function_always_fails_on_is_dead_lettered_after_the_last_try(
    event_grid: Callable[..., EventGridDispatcher], caplog: pytest.LogCaptureFixture
) -> None:
    seen: Seen = []
    dispatcher = event_grid(_event_app(seen, {"second": 99}), retry_delays=(0.01, 0.02, 0.04))
    dispatcher.publish(BLOB_EVENT)
    assert dispatcher.wait_until_settled(5)
    assert [name for name, _, _ in seen].count("second") == 4
    (dead,) = dispatcher.dead_letters
    assert (dead.function, dead.attempts, dead.event["id"]) == ("second", 4, BLOB_EVENT["id"])
    assert "second is down" in dead.error
    assert "dead-lettered" in caplog.text
    assert dispatcher.delivered == 1  # "first" took it


def test_the_default_retries_end_within_half_a_minute() -> None:
    dispatcher = EventGridDispatcher([])
    assert 3 <= dispatcher.max_attempts <= 6
    assert sum(dispatcher.retry_delays) <= 30


def test_an_event_waiting_for_a_retry_holds_no_worker(event_grid: Callable[..., EventGridDispatcher]) -> None:
    seen: Seen = []
    dispatcher = event_grid(_event_app(seen, {"first": 1}), workers=1, retry_delays=(1.0,))
    dispatcher.functions = dispatcher.functions[:1]  # only "first"
    dispatcher.publish(BLOB_EVENT)
    dispatcher.publish({**BLOB_EVENT, "id": "later"})
    _wait(lambda: len(seen) == 2, 0.8)  # the second event did not wait for the first one's retry
    assert [e.id for _, e, _ in seen] == [BLOB_EVENT["id"], "later"]
    assert dispatcher.wait_until_settled(5)
    assert [e.id for _, e, _ in seen] == [BLOB_EVENT["id"], "later", BLOB_EVENT["id"]]


def test_stopping_drops_the_retries_still_waiting(event_grid: Callable[..., EventGridDispatcher]) -> None:
    seen: Seen = []
    dispatcher = event_grid(_event_app(seen, {"first": 1}), retry_delays=(30,))
    dispatcher.functions = dispatcher.functions[:1]
    dispatcher.publish(BLOB_EVENT)
    _wait(lambda: len(seen) == 1)
    started = time.monotonic()
    dispatcher.stop()
    assert time.monotonic() - started < 5
    assert len(seen) == 1 and dispatcher.dead_letters == []
    dispatcher.publish(BLOB_EVENT)  # after stop: ignored, no error
    assert len(seen) == 1
