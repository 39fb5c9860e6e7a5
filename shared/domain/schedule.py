"""When a schedule fires: cron (with Vixie cron's DST rule), one instant, or a fixed interval.

Times are aware and UTC at the edges of this module. A cron expression is read
on the *wall clock* of its time zone, and then each wall-clock match is turned
into real instants by the rule Vixie cron has used for decades:

* If the hour field is a wildcard (``*``, ``*/2``...), the job runs by the clock:
  a time that does not exist (spring forward) is simply not there, and a
  repeated time (fall back) fires in both copies. An hourly job therefore fires
  every real hour through both transitions.
* If the hour field names specific hours, the job fires once: in a repeated hour
  only the first copy fires (``repeated_skipped``), and a time that spring
  forward skips fires right at the transition (``shifted``: 02:30 becomes 03:00).

croniter alone, given an aware start, fires a daily 01:30 twice on a fall-back
day; here croniter only ever sees naive wall-clock times, and this module
decides which real instants they are. Transitions are assumed to move the clock
by at most three hours (true of every DST rule in the tz database, and the
threshold Vixie cron itself uses).

``every`` schedules are elapsed time, aligned like Temporal's interval specs:
they fire at ``anchor + k * every`` (anchor defaults to the Unix epoch, so
``PT1H`` fires on the hour UTC), and ignore DST entirely.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_SHIFT = timedelta(hours=3)
_TINY = timedelta(microseconds=1)

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class DstNote(StrEnum):
    """How daylight-saving time affected one fire time."""

    NORMAL = "normal"
    SHIFTED = "shifted"  # the wall-clock time did not exist; fired at the transition
    REPEATED_SKIPPED = "repeated_skipped"  # the wall-clock time happened twice; fired in the first copy only


@dataclass(frozen=True, slots=True)
class FireTime:
    at: datetime  # aware, UTC
    local: datetime  # the same instant on the schedule's wall clock
    dst: DstNote = DstNote.NORMAL


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`; raises ValueError for anything else."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris'") from err


@lru_cache(maxsize=4096)  # stored jobs are validated again on every read: most share a few expressions
def normalize_cron(expression: str) -> str:
    """Five space-separated fields (or a macro such as @daily); raises ValueError otherwise."""
    text = " ".join(expression.split())
    text = _MACROS.get(text.lower(), text)
    fields = text.split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"cron must have 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    try:
        valid = croniter.is_valid(text)
    except (CroniterBadCronError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"invalid cron expression {expression!r}")
    return text


def _check_zone(name: str) -> str:
    zone(name)
    return name


def _check_cron(expression: str | None) -> str | None:
    return None if expression is None else normalize_cron(expression)


class ScheduleSpec(BaseModel):
    """Exactly one of `cron`, `at`, `every`; optional `start_at`/`end_at` bound all three."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cron: Annotated[str | None, AfterValidator(_check_cron)] = Field(
        None, max_length=120, examples=["30 1 * * *"]
    )
    at: AwareDatetime | None = Field(None, description="One instant, ISO-8601 with an offset.")
    every: timedelta | None = Field(None, description="ISO-8601 duration, at least PT1M.")
    anchor: AwareDatetime | None = Field(
        None, description="For `every`: fire at anchor + k*every (default: the Unix epoch)."
    )
    timezone: Annotated[str, AfterValidator(_check_zone)] = Field("UTC", max_length=64)
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_kind_and_sane_bounds(self) -> Self:
        kinds = [k for k in ("cron", "at", "every") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of 'cron', 'at' or 'every'")
        if self.every is not None and self.every < timedelta(minutes=1):
            raise ValueError("'every' must be at least one minute (PT1M)")
        if self.every is not None and self.every > timedelta(days=366):
            raise ValueError("'every' must be at most 366 days")
        if self.anchor is not None and self.every is None:
            raise ValueError("'anchor' only applies to 'every' schedules")
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValueError("'end_at' must be after 'start_at'")
        return self

    @property
    def kind(self) -> str:
        return "cron" if self.cron is not None else "at" if self.at is not None else "every"

    def describe(self) -> str:
        """A short human summary, e.g. 'cron 30 1 * * * (America/New_York)'."""
        if self.cron is not None:
            return f"cron {self.cron} ({self.timezone})"
        if self.at is not None:
            return f"at {self.at.astimezone(UTC).isoformat().replace('+00:00', 'Z')}"
        return f"every {self.every}"

    def next_fire(self, after: datetime) -> FireTime | None:
        """The first fire time strictly after `after` within [start_at, end_at], or None."""
        if self.start_at is not None and after < self.start_at:
            after = self.start_at - _TINY
        tz = zone(self.timezone)
        if self.cron is not None:
            fire = _next_cron(self.cron, tz, after)
        elif self.at is not None:
            at = self.at.astimezone(UTC)
            fire = FireTime(at, at.astimezone(tz)) if at > after else None
        else:
            assert self.every is not None
            anchor = self.anchor or _EPOCH
            steps = (after - anchor) // self.every + 1
            at = (anchor + steps * self.every).astimezone(UTC)
            fire = FireTime(at, at.astimezone(tz))
        if fire is None or (self.end_at is not None and fire.at > self.end_at):
            return None
        return fire

    def fire_times(self, after: datetime) -> Iterator[FireTime]:
        """Fire times strictly after `after`, in order, until the schedule ends."""
        fire = self.next_fire(after)
        while fire is not None:
            yield fire
            fire = self.next_fire(fire.at)


def _local_naive(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _stable_offset(instant: datetime, tz: ZoneInfo) -> bool:
    """True when no UTC-offset change happens within three hours either side of `instant`."""
    offset = instant.astimezone(tz).utcoffset()
    return (instant - _MAX_SHIFT).astimezone(tz).utcoffset() == offset and (instant + _MAX_SHIFT).astimezone(
        tz
    ).utcoffset() == offset


def _transition_instant(earlier: datetime, later: datetime, tz: ZoneInfo) -> datetime:
    """The instant the offset changes between `earlier` and `later` (to the second)."""
    target = later.astimezone(tz).utcoffset()
    lo, hi = earlier, later  # invariant: offset(lo) != target, offset(hi) == target
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid <= lo:
            break
        if mid.astimezone(tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return hi


def _wall_clock_to_fires(naive: datetime, tz: ZoneInfo, hour_is_wildcard: bool) -> list[FireTime]:
    """Which real instants a wall-clock cron match stands for (Vixie cron's DST rule)."""
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    first_utc, second_utc = first.astimezone(UTC), second.astimezone(UTC)
    if first_utc == second_utc:
        return [FireTime(first_utc, first)]
    if _local_naive(first_utc, tz) == naive:  # the wall-clock time happened twice (fall back)
        if hour_is_wildcard:
            return [FireTime(first_utc, first), FireTime(second_utc, second)]
        return [FireTime(first_utc, first, DstNote.REPEATED_SKIPPED)]
    # The wall-clock time never happened (spring forward): fold=1 reads it with the
    # later offset, which lands before the transition; fold=0 lands after it.
    if hour_is_wildcard:
        return []
    at = _transition_instant(second_utc, first_utc, tz)
    return [FireTime(at, at.astimezone(tz), DstNote.SHIFTED)]


def _next_cron(expression: str, tz: ZoneInfo, after: datetime) -> FireTime | None:
    hour_is_wildcard = expression.split(" ")[1].startswith("*")
    # Near a transition a wall-clock match earlier than local(after) can still be a
    # later instant (the second copy of a repeated hour), so look back a little.
    start = _local_naive(after, tz)
    if not _stable_offset(after, tz):
        start -= _MAX_SHIFT
    matches = croniter(expression, start)
    best: FireTime | None = None
    while True:
        try:
            naive: datetime = matches.get_next(datetime)
        except CroniterBadDateError:
            return best
        if best is not None and naive > _local_naive(best.at, tz) + _MAX_SHIFT:
            return best
        for fire in _wall_clock_to_fires(naive, tz, hour_is_wildcard):
            if fire.at > after and (best is None or fire.at < best.at):
                best = fire
        if best is not None and _stable_offset(best.at, tz):
            return best
