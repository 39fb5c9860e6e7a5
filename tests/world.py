"""A scheduler in one process, for tests: tables (in memory or on Azurite), the Service Bus twin, a
Databricks (the fake, or the emulator through the real SDK), a clock the test moves, and a host
loop that delivers messages and fires the tick and the watchdog as Azure would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.service_bus_twin import Delivery, ServiceBusTwin
from shared.adapters.databricks import Databricks
from shared.adapters.webhooks import Poster
from shared.bootstrap import Services, Tables, build
from shared.config import Settings
from shared.domain.errors import ExternalError
from shared.domain.job import Actor, Job, JobDefinition
from shared.domain.run import Run
from shared.services.inbox import Incoming
from tests.conftest import TableFactory
from tests.fakes.clock import FixedClock
from tests.fakes.databricks import FakeDatabricks
from tests.fakes.poster import FakePoster

log = logging.getLogger(__name__)
ALICE = Actor(id="alice", name="Alice")
T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
TICK_SECOND = 0  # the tick fires at :00 of every minute, the watchdog at :30 (functions/timer_tick.py)
WATCHDOG_SECOND = 30

Crash = Callable[[Delivery], bool]  # True: the host dies after the handler (the message is not settled)


class World:
    def __init__(
        self,
        table_factory: TableFactory,
        *,
        databricks: Databricks | None = None,
        settings: dict[str, Any] | None = None,
        clock: FixedClock | None = None,
        max_delivery_count: int = 10,
        pace: float = 0.0,
        poster: Poster | None = None,
    ) -> None:
        self.clock = clock or FixedClock(T0)
        self.broker = ServiceBusTwin(self.clock, max_delivery_count=max_delivery_count)
        self.fake = databricks if databricks is not None else FakeDatabricks(self.clock)
        tables = Tables(jobs=table_factory("wjobs"), runs=table_factory("wruns"))
        config: dict[str, Any] = {"RUN_SHARDS": 2, "TICK_CONCURRENCY": 2, **(settings or {})}
        self.poster = poster if poster is not None else FakePoster()
        self.s: Services = build(
            Settings(**config),
            tables=tables,
            clock=self.clock,
            sender=self.broker,
            databricks=self.fake,
            poster=self.poster,
        )
        self.s.run_context.rand = lambda: 0.0  # no jitter: delays are exact
        self.crash: Crash | None = None
        self.pace = pace  # real seconds before each poll: lets a real Databricks (the emulator) move on

    # -- jobs and runs -------------------------------------------------------------------------------

    def job(self, tenant: str = "team-a", **overrides: Any) -> Job:
        body: dict[str, Any] = {
            "name": "train",
            "job_type": "model_training",
            "task": {"kind": "databricks_job", "job_id": 42, "parameters": {"day": "{{scheduled_date}}"}},
            "schedule": {"cron": "*/5 * * * *"},
        }
        body.update(overrides)
        return self.s.job_service.create(tenant, ALICE, JobDefinition.model_validate(body))

    def shard(self, job: Job) -> str:
        return self.s.due_index.shard_for(job)

    def runs(self, job: Job) -> list[Run]:
        """The job's runs, oldest first."""
        page = self.s.run_repository.history(self.shard(job), job.tenant, job.id, limit=500)
        return list(reversed(page.items))

    def run(self, job: Job) -> Run:
        """The job's newest run."""
        return self.runs(job)[-1]

    def read(self, run: Run) -> Run:
        return self.s.run_repository.get(run.shard, run.tenant, run.job_id, run.run_key)[0]

    # -- time and the host ---------------------------------------------------------------------------

    def fire(self, at: datetime = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)) -> None:
        """Run the tick a minute before `at`, then move the clock to `at`."""
        self.clock.set(at - timedelta(minutes=1))
        self.s.ticker.tick()
        self.clock.set(at)

    def handle(self, delivery: Delivery) -> str:
        """What the Functions host does with one delivery: call the function, then settle it."""
        incoming = Incoming(
            delivery.message_id, delivery.body, delivery.delivery_count, dict(delivery.properties)
        )
        if self.pace and delivery.queue == self.s.settings.poll_queue:
            time.sleep(self.pace)
        try:
            if delivery.queue == self.s.settings.launch_queue:
                action = self.s.inbox.launch(incoming).action
            elif delivery.queue == self.s.settings.notify_queue:
                action = self.s.inbox.notify(incoming).action
            else:
                action = self.s.inbox.poll(incoming).action
        except Exception:
            self.broker.abandon(delivery)
            return "error"
        if self.crash is not None and self.crash(delivery):
            return "crashed"  # the host died: no complete; the lock runs out and Service Bus redelivers
        self.broker.complete(delivery)
        return action

    def deliver(self, until: datetime | None = None, max_rounds: int = 500) -> list[str]:
        """Deliver messages as the host would, moving the clock to each next message, up to `until`."""
        actions: list[str] = []
        for _ in range(max_rounds):
            due = self.broker.receive()
            if not due:
                nxt = self.broker.next_visible_at()
                if nxt is None or (until is not None and nxt > until):
                    break
                self.clock.set(max(nxt, self.clock.now()))
                continue
            actions.extend(self.handle(d) for d in due)
        return actions

    def run_until(self, until: datetime, *, tick: bool = True, watchdog: bool = True) -> list[str]:
        """Everything a deployment does up to `until`: messages, the tick each minute, the watchdog."""
        actions: list[str] = []
        for _ in range(1_000_000):
            now = self.clock.now()
            candidates = [until]
            visible = self.broker.next_visible_at()
            if visible is not None:
                candidates.append(max(visible, now))
            if tick:
                candidates.append(_next_second(now, TICK_SECOND))
            if watchdog:
                candidates.append(_next_second(now, WATCHDOG_SECOND))
            at = min(candidates)
            if at > until:
                break
            self.clock.set(at)
            for d in self.broker.receive():
                actions.append(self.handle(d))
            if tick and at.second == TICK_SECOND and at.microsecond == 0:
                _timer(self.s.ticker.tick)
            if watchdog and at.second == WATCHDOG_SECOND and at.microsecond == 0:
                _timer(self.s.watchdog.run_once)
            if at >= until:
                break
        else:
            raise RuntimeError("the world never went quiet")
        return actions


def _timer(function: Callable[[], object]) -> None:
    """A timer function: the host logs what it raises, and calls it again next time."""
    try:
        function()
    except ExternalError as err:
        log.warning("timer function failed: %s", err.detail)


def _next_second(now: datetime, second: int) -> datetime:
    """The next instant after `now` whose seconds are `second` (and microseconds 0)."""
    at = now.replace(second=second, microsecond=0)
    while at <= now:
        at += timedelta(minutes=1)
    return at
