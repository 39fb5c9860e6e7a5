"""When schedules fire: cron with Vixie cron's DST rule, one-time, interval, and their bounds."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.domain.schedule import DstNote, ScheduleSpec

N, SHIFTED, REPEATED = DstNote.NORMAL, DstNote.SHIFTED, DstNote.REPEATED_SKIPPED


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def fires(spec: ScheduleSpec, after: str, count: int) -> list[tuple[str, str]]:
    out = []
    for _, fire in zip(range(count), spec.fire_times(utc(after)), strict=False):
        out.append((fire.at.strftime("%Y-%m-%dT%H:%MZ"), fire.dst.value))
    return out


DST_CASES = [
    pytest.param(
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00Z",
        [("2026-11-01T05:30Z", REPEATED), ("2026-11-02T06:30Z", N)],
        id="fall-back-fires-a-daily-job-once",
    ),
    pytest.param(
        "30 2 * * *",
        "America/New_York",
        "2026-03-07T12:00Z",
        [("2026-03-08T07:00Z", SHIFTED), ("2026-03-09T06:30Z", N)],
        id="spring-forward-moves-a-skipped-time-to-the-transition",
    ),
    pytest.param(
        "0 * * * *",
        "America/New_York",
        "2026-11-01T03:30Z",
        [
            ("2026-11-01T04:00Z", N),
            ("2026-11-01T05:00Z", N),
            ("2026-11-01T06:00Z", N),
            ("2026-11-01T07:00Z", N),
            ("2026-11-01T08:00Z", N),
        ],
        id="hourly-fires-every-real-hour-through-fall-back",
    ),
    pytest.param(
        "0 * * * *",
        "America/New_York",
        "2026-03-08T05:30Z",
        [("2026-03-08T06:00Z", N), ("2026-03-08T07:00Z", N), ("2026-03-08T08:00Z", N)],
        id="hourly-fires-every-real-hour-through-spring-forward",
    ),
    pytest.param(
        "30 * * * *",
        "America/New_York",
        "2026-03-08T06:00Z",
        [("2026-03-08T06:30Z", N), ("2026-03-08T07:30Z", N)],
        id="hour-wildcard-skips-the-missing-wall-clock-time",
    ),
    pytest.param(
        "0 1 * * *",
        "America/New_York",
        "2026-10-31T12:00Z",
        [("2026-11-01T05:00Z", REPEATED), ("2026-11-02T06:00Z", N)],
        id="fixed-hour-at-the-start-of-the-repeated-hour-fires-once",
    ),
    pytest.param(
        "0 2 * * 0",
        "America/New_York",
        "2026-03-07T00:00Z",
        [("2026-03-08T07:00Z", SHIFTED), ("2026-03-15T06:00Z", N)],
        id="weekly-job-in-the-gap-is-shifted",
    ),
    pytest.param(
        "30 1 * * *",
        "Europe/London",
        "2026-10-24T12:00Z",
        [("2026-10-25T00:30Z", REPEATED), ("2026-10-26T01:30Z", N)],
        id="london-fall-back",
    ),
    pytest.param(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00Z",
        [("2026-03-29T01:00Z", SHIFTED), ("2026-03-30T00:30Z", N)],
        id="berlin-spring-forward",
    ),
    pytest.param(
        "*/30 * * * *",
        "Europe/Paris",
        "2026-10-24T23:45Z",
        [
            ("2026-10-25T00:00Z", N),
            ("2026-10-25T00:30Z", N),
            ("2026-10-25T01:00Z", N),
            ("2026-10-25T01:30Z", N),
            ("2026-10-25T02:00Z", N),
        ],
        id="paris-half-hourly-fires-in-both-copies-of-the-repeated-hour",
    ),
    pytest.param(
        "30 2 * * *",
        "Australia/Sydney",
        "2026-04-03T12:00Z",
        [("2026-04-03T15:30Z", N), ("2026-04-04T15:30Z", REPEATED), ("2026-04-05T16:30Z", N)],
        id="southern-hemisphere-fall-back-in-april",
    ),
    pytest.param(
        "30 2 * * *",
        "Australia/Sydney",
        "2026-10-02T12:00Z",
        [("2026-10-02T16:30Z", N), ("2026-10-03T16:00Z", SHIFTED), ("2026-10-04T15:30Z", N)],
        id="southern-hemisphere-spring-forward-in-october",
    ),
    pytest.param(
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03T00:00Z",
        [("2026-10-03T15:30Z", SHIFTED), ("2026-10-04T15:15Z", N)],
        id="lord-howe-30-minute-spring-forward",
    ),
    pytest.param(
        "45 1 * * *",
        "Australia/Lord_Howe",
        "2026-04-03T12:00Z",
        [("2026-04-03T14:45Z", N), ("2026-04-04T14:45Z", REPEATED), ("2026-04-05T15:15Z", N)],
        id="lord-howe-30-minute-fall-back",
    ),
    pytest.param(
        "0 3 * * *",
        "Pacific/Chatham",
        "2026-09-25T12:00Z",
        [("2026-09-25T14:15Z", N), ("2026-09-26T14:00Z", SHIFTED)],
        id="chatham-45-minute-offset-spring-forward",
    ),
    pytest.param(
        "30 23 * * *",
        "America/Santiago",
        "2026-04-03T12:00Z",
        [("2026-04-04T02:30Z", N), ("2026-04-05T02:30Z", REPEATED), ("2026-04-06T03:30Z", N)],
        id="santiago-fall-back-at-midnight",
    ),
    pytest.param(
        "30 0 * * *",
        "America/Santiago",
        "2026-09-05T00:00Z",
        [("2026-09-05T04:30Z", N), ("2026-09-06T04:00Z", SHIFTED)],
        id="santiago-spring-forward-at-midnight",
    ),
    pytest.param(
        "0 9 * * *",
        "Asia/Kolkata",
        "2026-03-07T00:00Z",
        [("2026-03-07T03:30Z", N), ("2026-03-08T03:30Z", N)],
        id="kolkata-half-hour-offset-no-dst",
    ),
    pytest.param(
        "0 8 * * *",
        "Asia/Tehran",
        "2026-03-20T00:00Z",
        [("2026-03-20T04:30Z", N), ("2026-03-21T04:30Z", N), ("2026-03-22T04:30Z", N)],
        id="tehran-no-longer-observes-dst",
    ),
    pytest.param(
        "0 2 * * *",
        "America/Sao_Paulo",
        "2026-11-01T00:00Z",
        [("2026-11-01T05:00Z", N), ("2026-11-02T05:00Z", N)],
        id="sao-paulo-no-longer-observes-dst",
    ),
    pytest.param(
        "0 0 * * *",
        "UTC",
        "2026-03-08T00:00Z",
        [("2026-03-09T00:00Z", N), ("2026-03-10T00:00Z", N)],
        id="utc-after-is-exclusive",
    ),
]


@pytest.mark.parametrize(("cron", "zone", "after", "expected"), DST_CASES)
def test_cron_fire_times_follow_vixie_dst_rule(cron: str, zone: str, after: str, expected: list) -> None:
    assert fires(ScheduleSpec(cron=cron, timezone=zone), after, len(expected)) == expected


def test_fall_back_yields_exactly_one_daily_fire_on_the_day() -> None:
    spec = ScheduleSpec(cron="30 1 * * *", timezone="America/New_York")
    day = [f for f in fires(spec, "2026-10-31T12:00Z", 5) if f[0].startswith("2026-11-01")]
    assert len(day) == 1


def test_local_time_carries_the_offset_in_force() -> None:
    spec = ScheduleSpec(cron="30 2 * * *", timezone="America/New_York")
    fire = spec.next_fire(utc("2026-03-07T12:00Z"))
    assert fire is not None
    assert fire.local.isoformat() == "2026-03-08T03:00:00-04:00"


@pytest.mark.parametrize(
    ("zone", "after"),
    [
        pytest.param("America/New_York", "2026-11-01T04:30Z", id="inside-repeated-hour"),
        pytest.param("Australia/Lord_Howe", "2026-04-04T14:50Z", id="inside-30-minute-repeat"),
        pytest.param("Europe/London", "2026-03-29T00:59Z", id="just-before-a-gap"),
    ],
)
def test_minutely_job_fires_every_real_minute_near_transitions(zone: str, after: str) -> None:
    spec = ScheduleSpec(cron="* * * * *", timezone=zone)
    times = [utc(t) for t, _ in fires(spec, after, 120)]
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(times))


def test_at_fires_once_and_only_in_the_future() -> None:
    spec = ScheduleSpec(at=utc("2026-07-01T10:00Z"))
    assert fires(spec, "2026-06-30T00:00Z", 5) == [("2026-07-01T10:00Z", N)]
    assert spec.next_fire(utc("2026-07-01T10:00Z")) is None


def test_every_is_elapsed_time_aligned_to_the_epoch_and_ignores_dst() -> None:
    spec = ScheduleSpec(every=timedelta(hours=1), timezone="America/New_York")
    times = [t for t, _ in fires(spec, "2026-11-01T04:10Z", 4)]
    assert times == ["2026-11-01T05:00Z", "2026-11-01T06:00Z", "2026-11-01T07:00Z", "2026-11-01T08:00Z"]


def test_every_with_an_anchor_keeps_its_phase() -> None:
    spec = ScheduleSpec(every=timedelta(minutes=90), anchor=utc("2026-01-01T00:20Z"))
    assert [t for t, _ in fires(spec, "2026-01-01T00:20Z", 2)] == ["2026-01-01T01:50Z", "2026-01-01T03:20Z"]


def test_start_at_bounds_the_first_fire_and_is_inclusive() -> None:
    spec = ScheduleSpec(cron="0 12 * * *", start_at=utc("2026-08-01T12:00Z"))
    assert fires(spec, "2026-01-01T00:00Z", 1) == [("2026-08-01T12:00Z", N)]


def test_end_at_ends_the_schedule() -> None:
    spec = ScheduleSpec(cron="0 12 * * *", end_at=utc("2026-01-03T12:00Z"))
    assert [t for t, _ in fires(spec, "2026-01-01T00:00Z", 10)] == [
        "2026-01-01T12:00Z",
        "2026-01-02T12:00Z",
        "2026-01-03T12:00Z",
    ]


def test_a_cron_that_never_matches_has_no_fire_time() -> None:
    assert ScheduleSpec(cron="0 0 30 2 *").next_fire(utc("2026-01-01T00:00Z")) is None


def test_macros_are_expanded() -> None:
    assert ScheduleSpec(cron="@hourly").cron == "0 * * * *"
    assert ScheduleSpec(cron=" 0   5 * *  1-5 ").cron == "0 5 * * 1-5"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"cron": "61 * * * *"}, "invalid cron", id="minute-out-of-range"),
        pytest.param({"cron": "0 0 * * * *"}, "5 fields", id="six-fields"),
        pytest.param({"cron": "every day"}, "5 fields", id="words"),
        pytest.param({"cron": "a b c d e"}, "invalid cron", id="garbage-fields"),
        pytest.param({"cron": "0 1 * * *", "timezone": "Mars/Olympus"}, "unknown time zone", id="bad-zone"),
        pytest.param(
            {"cron": "0 1 * * *", "timezone": "../../etc/passwd"}, "unknown time zone", id="path-zone"
        ),
        pytest.param({}, "exactly one", id="no-kind"),
        pytest.param({"cron": "0 1 * * *", "every": "PT1H"}, "exactly one", id="two-kinds"),
        pytest.param({"every": "PT30S"}, "at least one minute", id="every-too-short"),
        pytest.param({"cron": "0 1 * * *", "anchor": "2026-01-01T00:00:00Z"}, "anchor", id="anchor-on-cron"),
        pytest.param(
            {"cron": "0 1 * * *", "start_at": "2026-02-01T00:00:00Z", "end_at": "2026-01-01T00:00:00Z"},
            "end_at",
            id="end-before-start",
        ),
        pytest.param({"at": "2026-07-01T10:00:00"}, "timezone", id="naive-at"),
        pytest.param({"cron": "0 1 * * *", "weekly": True}, "Extra inputs", id="unknown-field"),
    ],
)
def test_invalid_schedules_are_refused_with_a_reason(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        ScheduleSpec.model_validate(fields)
    assert message in str(err.value)


def test_describe_names_the_kind() -> None:
    assert ScheduleSpec(cron="30 1 * * *", timezone="America/New_York").describe() == (
        "cron 30 1 * * * (America/New_York)"
    )
    assert ScheduleSpec(at=utc("2026-07-01T10:00Z")).describe() == "at 2026-07-01T10:00:00Z"


def test_utc_is_the_default_zone() -> None:
    fire = ScheduleSpec(cron="0 6 * * *").next_fire(datetime(2026, 1, 1, tzinfo=UTC))
    assert fire is not None and fire.at == datetime(2026, 1, 1, 6, tzinfo=UTC)
