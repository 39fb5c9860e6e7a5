"""The in-process queues: scheduled delivery, redelivery, dead letters, and the test hooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.adapters.queue import InProcessQueues, OutgoingMessage
from shared.domain.clock import FixedClock

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def message(mid: str, at: datetime | None = None) -> OutgoingMessage:
    return OutgoingMessage(
        queue="launch", message_id=mid, body={"n": mid}, scheduled_for=at, properties={"job_id": "j"}
    )


def test_a_scheduled_message_is_delivered_at_its_time_not_before() -> None:
    clock = FixedClock(T0)
    queues = InProcessQueues(clock)
    queues.send([message("later", T0 + timedelta(seconds=30)), message("now")])
    assert [d.message_id for d in queues.due_deliveries()] == ["now"]
    clock.advance(timedelta(seconds=29))
    assert queues.due_deliveries() == []
    clock.advance(timedelta(seconds=1))
    (d,) = queues.due_deliveries()
    assert (d.message_id, d.delivery_count, d.body, d.properties) == (
        "later",
        1,
        {"n": "later"},
        {"job_id": "j"},
    )


def test_an_abandoned_message_comes_back_with_a_higher_delivery_count_then_dead_letters() -> None:
    clock = FixedClock(T0)
    queues = InProcessQueues(clock, max_delivery_count=3)
    queues.send([message("m")])
    counts = []
    for _ in range(3):
        (d,) = queues.due_deliveries()
        counts.append(d.delivery_count)
        queues.abandon(d, clock.now() + timedelta(seconds=1))
        clock.advance(timedelta(seconds=1))
    assert counts == [1, 2, 3]
    assert queues.due_deliveries() == []
    assert [d.message_id for d in queues.dead_letters["launch"]] == ["m"]


def test_hooks_drop_and_duplicate_messages() -> None:
    queues = InProcessQueues(FixedClock(T0))
    queues.drop_next(1)
    queues.duplicate_next(1)
    queues.send([message("lost"), message("twice"), message("once")])
    assert sorted(d.message_id for d in queues.due_deliveries()) == ["once", "twice", "twice"]
    assert [m.message_id for m in queues.sent] == ["lost", "twice", "once"]


def test_duplicate_detection_drops_a_second_send_of_the_same_id() -> None:
    queues = InProcessQueues(FixedClock(T0))
    queues.duplicate_detection = True
    queues.send([message("m")])
    queues.send([message("m")])
    assert len(queues.due_deliveries()) == 1
