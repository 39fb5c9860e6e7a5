"""The Service Bus twin acts like the deployed queues: duplicate detection, peek-lock, dead letters."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest

from devstack.service_bus_twin import Delivery, ServiceBusTwin
from shared.adapters.queue import DeadLetter, DeadLetters, MessageSender, OutgoingMessage
from shared.domain.errors import ExternalError
from tests.fakes.clock import FixedClock

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def message(mid: str, at: datetime | None = None, queue: str = "launch") -> OutgoingMessage:
    return OutgoingMessage(
        queue=queue, message_id=mid, body={"n": mid}, scheduled_for=at, properties={"job_id": "j"}
    )


def twin(**kwargs: object) -> tuple[ServiceBusTwin, FixedClock]:
    clock = FixedClock(T0)
    return ServiceBusTwin(clock, **kwargs), clock  # type: ignore[arg-type]


def ids(deliveries: list[Delivery]) -> list[str]:
    return [d.message_id for d in deliveries]


def test_the_twin_implements_the_sender_and_dead_letter_ports() -> None:
    broker = ServiceBusTwin()
    ports: tuple[MessageSender, DeadLetters] = (broker, broker)  # mypy checks the protocols
    assert all(port is broker for port in ports)


# -- duplicate detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resend_after", "delivered"),
    [
        pytest.param(timedelta(0), 1, id="at-once"),
        pytest.param(timedelta(minutes=9, seconds=59), 1, id="just-inside-the-window"),
        pytest.param(timedelta(minutes=10), 2, id="when-the-window-ends"),
        pytest.param(timedelta(hours=1), 2, id="long-after"),
    ],
)
def test_a_resend_with_the_same_id_is_dropped_inside_the_window_and_delivered_after(
    resend_after: timedelta, delivered: int
) -> None:
    broker, clock = twin()
    broker.send([message("m")])
    clock.advance(resend_after)
    broker.send([message("m")])
    assert len(broker.receive()) == delivered
    assert len(broker.sent) == delivered
    assert len(broker.deduplicated) == 2 - delivered


def test_a_resend_with_the_same_id_inside_the_window_is_dropped() -> None:
    broker, clock = twin()
    broker.send([message("m")])
    (first,) = broker.receive()
    assert broker.complete(first)
    clock.advance(timedelta(minutes=5))
    broker.send([message("m")])  # handled already, but Service Bus still remembers the id
    assert broker.receive() == []
    assert [m.message_id for m in broker.deduplicated] == ["m"]
    assert broker.pending() == 0


def test_a_resend_after_the_window_is_delivered() -> None:
    broker, clock = twin()
    broker.send([message("m")])
    (first,) = broker.receive()
    broker.complete(first)
    clock.advance(timedelta(minutes=10, seconds=1))
    broker.send([message("m")])
    (again,) = broker.receive()
    assert (again.message_id, again.delivery_count) == ("m", 1)


def test_the_window_counts_from_the_send_not_from_the_scheduled_time() -> None:
    broker, clock = twin()
    broker.send([message("m", T0 + timedelta(minutes=30))])
    clock.advance(timedelta(minutes=11))
    broker.send([message("m", T0 + timedelta(minutes=30))])  # the first has not even been delivered
    clock.set(T0 + timedelta(minutes=30))
    assert ids(broker.receive()) == ["m", "m"]


def test_a_duplicate_inside_one_batch_is_dropped() -> None:
    broker, _ = twin()
    broker.send([message("m"), message("m"), message("n")])
    assert ids(broker.receive()) == ["m", "n"]


def test_message_ids_are_per_queue() -> None:
    broker, _ = twin()
    broker.send([message("m", queue="launch"), message("m", queue="poll")])
    assert sorted(d.queue for d in broker.receive()) == ["launch", "poll"]
    assert broker.deduplicated == []


def test_a_dropped_duplicate_does_not_extend_the_window() -> None:
    broker, clock = twin()
    broker.send([message("m")])
    clock.advance(timedelta(minutes=6))
    broker.send([message("m")])  # dropped
    clock.advance(timedelta(minutes=5))  # 11 minutes after the accepted send
    broker.send([message("m")])
    assert len(broker.receive()) == 2


def test_ids_older_than_the_window_are_forgotten() -> None:
    broker, clock = twin()
    broker.send([message(f"m{i}") for i in range(100)])
    clock.advance(timedelta(minutes=10))
    broker.send([message("later")])
    assert list(broker._queues["launch"].recent_ids) == ["later"]


# -- scheduled delivery and peek-lock --------------------------------------------------------------


def test_a_scheduled_message_is_visible_at_its_time_not_before() -> None:
    broker, clock = twin()
    broker.send([message("later", T0 + timedelta(seconds=30)), message("now")])
    assert broker.next_visible_at() == T0
    assert ids(broker.receive()) == ["now"]
    assert broker.next_visible_at() == T0 + timedelta(seconds=30)
    clock.advance(timedelta(seconds=29))
    assert broker.receive() == []
    clock.advance(timedelta(seconds=1))
    (d,) = broker.receive()
    assert (d.message_id, d.delivery_count, d.body, d.properties, d.enqueued_for) == (
        "later",
        1,
        {"n": "later"},
        {"job_id": "j"},
        T0 + timedelta(seconds=30),
    )


def test_receive_returns_the_earliest_first_up_to_the_limit() -> None:
    broker, clock = twin()
    broker.send([message("c", T0 + timedelta(seconds=3)), message("a", T0 + timedelta(seconds=1))])
    broker.send([message("b", T0 + timedelta(seconds=2))])
    clock.advance(timedelta(seconds=5))
    assert ids(broker.receive(limit=2)) == ["a", "b"]
    assert ids(broker.receive(limit=2)) == ["c"]


def test_receive_can_take_one_queue() -> None:
    broker, _ = twin()
    broker.send([message("l", queue="launch"), message("p", queue="poll")])
    assert ids(broker.receive(queue="poll")) == ["p"]
    assert ids(broker.receive(queue="nothing-here")) == []
    assert ids(broker.receive()) == ["l"]


def test_a_received_message_is_locked_until_completed() -> None:
    broker, _ = twin()
    broker.send([message("m")])
    (d,) = broker.receive()
    assert broker.receive() == []
    assert broker.pending() == 1
    assert broker.complete(d) is True
    assert broker.pending() == 0
    assert broker.complete(d) is False  # settled already


def test_a_body_that_is_not_json_fails_the_send() -> None:
    broker, _ = twin()
    bad = OutgoingMessage(queue="launch", message_id="m", body={"at": T0})
    with pytest.raises(TypeError):
        broker.send([message("fine"), bad])
    assert broker.sent == []


def test_a_naive_scheduled_time_is_refused() -> None:
    broker, _ = twin()
    with pytest.raises(ValueError):
        broker.send([message("m", datetime(2026, 6, 1, 12, 0))])


def test_each_delivery_gets_its_own_copy_of_the_body() -> None:
    broker, _ = twin()
    broker.send([message("m")])
    (d,) = broker.receive()
    d.body["n"] = "changed"  # type: ignore[index]
    broker.abandon(d)
    (again,) = broker.receive()
    assert again.body == {"n": "m"}


# -- abandon, lock expiry, dead letters ------------------------------------------------------------


def test_an_abandoned_message_is_visible_at_once_with_a_higher_count() -> None:
    broker, _ = twin()
    broker.send([message("m")])
    (first,) = broker.receive()
    assert broker.abandon(first) is True
    (second,) = broker.receive()
    assert (second.message_id, second.delivery_count) == ("m", 2)
    assert second.lock_token != first.lock_token
    assert second.sequence_number == first.sequence_number


def test_an_abandoned_message_keeps_its_place_before_later_ones() -> None:
    broker, clock = twin()
    broker.send([message("first")])
    clock.advance(timedelta(seconds=1))
    broker.send([message("second")])
    (first,) = broker.receive(limit=1)
    broker.abandon(first)
    assert ids(broker.receive()) == ["first", "second"]


def test_the_tenth_abandon_dead_letters() -> None:
    broker, _ = twin()
    broker.send([message("m")])
    counts = []
    for _ in range(10):
        (d,) = broker.receive()
        counts.append(d.delivery_count)
        broker.abandon(d)
    assert counts == list(range(1, 11))
    assert broker.receive() == []
    assert broker.pending() == 0
    assert broker.dead_letter_count("launch") == 1
    (letter,) = broker.dead_letters("launch")
    assert (letter.message_id, letter.delivery_count) == ("m", 10)


def test_an_expired_lock_redelivers_and_the_late_complete_is_ignored() -> None:
    broker, clock = twin(lock_duration=timedelta(minutes=1))
    broker.send([message("m")])
    (slow,) = broker.receive()
    assert broker.next_visible_at() == T0 + timedelta(minutes=1)
    clock.advance(timedelta(minutes=1))
    (again,) = broker.receive()
    assert again.delivery_count == 2
    assert broker.complete(slow) is False
    assert broker.abandon(slow) is False
    assert broker.pending() == 1
    assert broker.complete(again) is True
    assert broker.pending() == 0


def test_a_complete_after_the_lock_expired_is_ignored_even_before_a_redelivery() -> None:
    broker, clock = twin(lock_duration=timedelta(seconds=30))
    broker.send([message("m")])
    (slow,) = broker.receive()
    clock.advance(timedelta(seconds=30))
    assert broker.complete(slow) is False
    assert broker.receive()[0].delivery_count == 2


def test_the_default_lock_lasts_as_long_as_the_hosts_auto_renewal() -> None:
    broker, clock = twin()
    broker.send([message("m")])
    (d,) = broker.receive()
    clock.advance(timedelta(minutes=4, seconds=59))
    assert broker.receive() == []
    assert broker.complete(d) is True


def test_an_expired_lock_at_the_max_count_dead_letters_on_the_next_receive() -> None:
    broker, clock = twin(max_delivery_count=2, lock_duration=timedelta(seconds=10))
    broker.send([message("m")])
    broker.abandon(broker.receive()[0])
    broker.receive()  # the second delivery; its handler never settles it
    clock.advance(timedelta(seconds=10))
    assert broker.dead_letter_count("launch") == 0  # Service Bus moves it when it tries to deliver it
    assert broker.receive() == []
    assert ids(broker.dead_letters("launch")) == ["m"]
    assert broker.pending() == 0


def test_drain_hands_each_dead_letter_once_and_removes_it() -> None:
    broker, _ = twin(max_delivery_count=1)
    broker.send([message("a"), message("b"), message("c")])
    for d in broker.receive():
        broker.abandon(d)
    seen: list[DeadLetter] = []
    assert broker.drain_dead_letters("launch", 2, seen.append) == 2
    assert broker.drain_dead_letters("launch", 2, seen.append) == 1
    assert broker.drain_dead_letters("launch", 2, seen.append) == 0
    assert seen == [
        DeadLetter("launch", mid, {"n": mid}, "MaxDeliveryCountExceeded") for mid in ("a", "b", "c")
    ]
    assert broker.dead_letter_count("launch") == 0


def test_drain_leaves_a_letter_whose_handler_raised() -> None:
    broker, _ = twin(max_delivery_count=1)
    broker.send([message("a"), message("b")])
    for d in broker.receive():
        broker.abandon(d)

    def handle(letter: DeadLetter) -> None:
        if letter.message_id == "b":
            raise RuntimeError("table storage is down")

    with pytest.raises(RuntimeError):
        broker.drain_dead_letters("launch", 10, handle)
    assert ids(broker.dead_letters("launch")) == ["b"]
    seen: list[DeadLetter] = []
    assert broker.drain_dead_letters("launch", 10, seen.append) == 1
    assert [letter.message_id for letter in seen] == ["b"]


def test_a_queue_never_used_has_no_dead_letters() -> None:
    broker, _ = twin()
    assert broker.dead_letter_count("nothing") == 0
    assert broker.drain_dead_letters("nothing", 10, lambda _: None) == 0
    assert broker.dead_letters("nothing") == []


# -- faults ----------------------------------------------------------------------------------------


def test_an_injected_send_failure_enqueues_nothing() -> None:
    broker, _ = twin()
    broker.fail_sends()
    with pytest.raises(ExternalError) as caught:
        broker.send([message("m")])
    assert caught.value.retryable
    assert str(caught.value) == "service bus: injected send failure"
    assert (broker.sent, broker.pending()) == ([], 0)
    broker.send([message("m")])  # the retry goes through: the id was never used
    assert ids(broker.receive()) == ["m"]


def test_a_lost_ack_enqueues_and_raises() -> None:
    broker, _ = twin()
    broker.fail_sends(after_enqueue=True)
    with pytest.raises(ExternalError):
        broker.send([message("m")])
    broker.send([message("m")])  # the sender's retry is dropped by duplicate detection
    assert ids(broker.receive()) == ["m"]
    assert [m.message_id for m in broker.sent] == ["m"]
    assert [m.message_id for m in broker.deduplicated] == ["m"]


@pytest.mark.parametrize(
    ("fault_queue", "sends", "failed"),
    [
        pytest.param(None, ["launch", "poll", "launch"], [True, True, False], id="any-queue"),
        pytest.param(
            "poll", ["launch", "poll", "launch", "poll"], [False, True, False, True], id="one-queue"
        ),
    ],
)
def test_send_failures_are_consumed_by_the_matching_sends(
    fault_queue: str | None, sends: list[str], failed: list[bool]
) -> None:
    broker, _ = twin()
    broker.fail_sends(2, queue=fault_queue)
    outcome = []
    for i, queue in enumerate(sends):
        try:
            broker.send([message(f"m{i}", queue=queue)])
            outcome.append(False)
        except ExternalError:
            outcome.append(True)
    assert outcome == failed


def test_an_empty_send_does_nothing_and_consumes_no_fault() -> None:
    broker, _ = twin()
    broker.fail_sends()
    broker.send([])
    with pytest.raises(ExternalError):
        broker.send([message("m")])


def test_a_send_failure_probability_fails_about_that_share_of_sends() -> None:
    broker, _ = twin()
    broker.fail_send_probability(0.3, random.Random(7))
    failures = 0
    for i in range(1000):
        try:
            broker.send([message(f"m{i}")])
        except ExternalError:
            failures += 1
    assert 250 < failures < 350
    assert len(broker.sent) == 1000 - failures
    broker.fail_send_probability(0, random.Random(7))
    broker.send([message("after")])


def test_a_dropped_message_is_accepted_then_lost_and_its_id_used_up() -> None:
    broker, _ = twin()
    broker.drop_next()
    broker.send([message("lost"), message("kept")])
    assert ids(broker.receive()) == ["kept"]
    broker.send([message("lost")])
    assert broker.receive() == []
    assert [m.message_id for m in broker.sent] == ["lost", "kept"]


def test_a_duplicated_message_arrives_as_two_independent_copies() -> None:
    broker, _ = twin()
    broker.duplicate_next()
    broker.send([message("twice"), message("once")])
    deliveries = broker.receive()
    assert sorted(ids(deliveries)) == ["once", "twice", "twice"]
    a, b = (d for d in deliveries if d.message_id == "twice")
    assert a.sequence_number != b.sequence_number
    assert broker.complete(a)
    assert broker.abandon(b)
    assert [(d.message_id, d.delivery_count) for d in broker.receive()] == [("twice", 2)]


# -- waiting and threads ---------------------------------------------------------------------------


def test_wait_returns_when_a_message_is_sent() -> None:
    broker = ServiceBusTwin()
    assert broker.receive() == []
    threading.Timer(0.05, lambda: broker.send([message("m")])).start()
    started = datetime.now(UTC)
    broker.wait(5)
    assert datetime.now(UTC) - started < timedelta(seconds=2)


def test_wait_returns_at_once_after_a_send_it_would_have_missed() -> None:
    broker = ServiceBusTwin()
    assert broker.receive() == []
    broker.send([message("m")])  # between this thread's receive and its wait
    started = datetime.now(UTC)
    broker.wait(5)
    assert datetime.now(UTC) - started < timedelta(seconds=1)


def test_wait_times_out_when_nothing_happens() -> None:
    broker = ServiceBusTwin()
    started = datetime.now(UTC)
    broker.wait(0.05)
    assert datetime.now(UTC) - started >= timedelta(seconds=0.04)


def test_several_threads_sending_and_receiving_deliver_each_message_once() -> None:
    broker = ServiceBusTwin()
    senders, per_sender = 4, 250
    received: list[str] = []
    received_lock = threading.Lock()
    done_sending = threading.Event()

    def send(sender: int) -> None:
        for i in range(per_sender):
            broker.send([message(f"s{sender}-{i}"), message(f"s{sender}-{i}")])  # each twice: one dropped

    def receive() -> None:
        while not (done_sending.is_set() and broker.pending() == 0):
            for d in broker.receive(limit=7):
                with received_lock:
                    received.append(d.message_id)
                assert broker.complete(d)
            broker.wait(0.01)

    receivers = [threading.Thread(target=receive) for _ in range(4)]
    sending = [threading.Thread(target=send, args=(s,)) for s in range(senders)]
    for t in receivers + sending:
        t.start()
    for t in sending:
        t.join(timeout=30)
    done_sending.set()
    for t in receivers:
        t.join(timeout=30)
    assert sorted(received) == sorted(f"s{s}-{i}" for s in range(senders) for i in range(per_sender))
    assert len(broker.deduplicated) == senders * per_sender
    assert broker.pending() == 0


def test_concurrent_sends_of_one_id_are_accepted_once() -> None:
    broker = ServiceBusTwin()
    barrier = threading.Barrier(8)

    def send() -> None:
        barrier.wait()
        broker.send([message("same")])

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(broker.sent) == 1
    assert len(broker.deduplicated) == 7


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"max_delivery_count": 0}, id="no-delivery"),
        pytest.param({"lock_duration": timedelta(0)}, id="no-lock"),
        pytest.param({"duplicate_detection_window": timedelta(seconds=-1)}, id="negative-window"),
    ],
)
def test_impossible_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ServiceBusTwin(**kwargs)  # type: ignore[arg-type]
