"""Analytics reports: a window of days, grouped by job type, job or tenant, read from the daily
aggregates that run ends maintain (shared/adapters/analytics_table.py), never from run history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from shared.domain.analytics import Group, grouped
from shared.domain.clock import Clock
from shared.domain.errors import InvalidInput
from shared.services.ports import AnalyticsRepository

MAX_DAYS = 90
GROUPINGS = ("job_type", "job", "tenant")


class AnalyticsService:
    def __init__(self, repository: AnalyticsRepository, clock: Clock) -> None:
        self.repository = repository
        self.clock = clock

    def window(self, window: timedelta) -> tuple[date, date]:
        """The UTC days a window covers, ending today: P7D is today and the 6 days before."""
        days = window.days
        if window != timedelta(days=days) or not 1 <= days <= MAX_DAYS:
            raise InvalidInput(
                f"window is a whole number of days, P1D to P{MAX_DAYS}D", errors={"window": "P1D..P90D"}
            )
        last = self.clock.now().date()
        return last - timedelta(days=days - 1), last

    def report(
        self, tenants: Sequence[str], window: timedelta, group_by: str
    ) -> tuple[date, date, list[Group], Group]:
        if group_by not in GROUPINGS:
            raise InvalidInput(
                "group_by is job_type, job or tenant", errors={"group_by": "|".join(GROUPINGS)}
            )
        first, last = self.window(window)
        rows = self.repository.window(tenants, first, last, by_job=group_by == "job")
        groups, total = grouped(rows, group_by)
        return first, last, groups, total
