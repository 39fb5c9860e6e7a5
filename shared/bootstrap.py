"""The one place that builds the object graph from settings: lazily, once per process.

Nothing connects at import time. Azure SDKs are imported here, inside functions,
so a cold start pays for them only on the paths that use them.

Messages go to Service Bus when a Service Bus setting is present. Without one, the process
must have been given a local broker (`use_local_broker`: the local stack does it); in Azure
(`WEBSITE_INSTANCE_ID` set) a missing setting is an error naming it, never a silent fallback
to queues that nobody reads.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property, lru_cache

from shared import telemetry
from shared.adapters.analytics_table import AnalyticsTable
from shared.adapters.databricks import Databricks
from shared.adapters.jobs_table import JobsTable
from shared.adapters.pools_table import PoolsTable
from shared.adapters.queue import DeadLetters, MessageSender
from shared.adapters.runs_table import RunsTable, TableDueIndex
from shared.adapters.table import OperationCounter, Table
from shared.adapters.templates_table import TemplatesTable
from shared.adapters.webhooks import HttpPoster, Poster, secret_from_settings
from shared.config import Settings, get_settings
from shared.domain.clock import Clock, SystemClock
from shared.domain.errors import ExternalError
from shared.domain.policies import WatchPolicy
from shared.services.analytics import AnalyticsService
from shared.services.batches import Batches
from shared.services.events import Events
from shared.services.inbox import Inbox
from shared.services.job_service import JobService
from shared.services.launch import Launcher
from shared.services.messages import Queues
from shared.services.notify import Notifier
from shared.services.poll import Poller
from shared.services.pool_service import PoolService
from shared.services.ports import (
    AnalyticsRepository,
    DueIndex,
    JobRepository,
    PoolRepository,
    RunRepository,
    TemplateRepository,
)
from shared.services.run_commands import RunCommands
from shared.services.run_context import RunContext, RunSettings
from shared.services.templates import TemplateService
from shared.services.tick import Ticker
from shared.services.watchdog import Watchdog


class ConfigurationError(RuntimeError):
    """The app cannot run with these settings; the message names what to set."""


@dataclass(frozen=True)
class Tables:
    jobs: Table
    runs: Table

    def all(self) -> list[Table]:
        return [self.jobs, self.runs]


class Services:
    """The object graph of one process. Parts are built on first use."""

    def __init__(
        self,
        settings: Settings,
        tables: Tables,
        clock: Clock,
        sender: MessageSender | None = None,
        databricks: Databricks | None = None,
        poster: Poster | None = None,
    ) -> None:
        self.settings = settings
        self._poster = poster
        self.tables = tables
        self.clock = clock
        self._sender = sender
        self._databricks = databricks
        self.job_repository: JobRepository = JobsTable(tables.jobs)
        self.run_repository: RunRepository = RunsTable(tables.runs)
        self.due_index: DueIndex = TableDueIndex(tables.runs, settings.run_shards)
        self.pools: PoolRepository = PoolsTable(tables.runs)
        self.analytics: AnalyticsRepository = AnalyticsTable(tables.runs, settings.run_shards)
        self.templates: TemplateRepository = TemplatesTable(tables.jobs)
        self.queues = Queues(
            launch=settings.launch_queue, poll=settings.poll_queue, notify=settings.notify_queue
        )
        self.watch_policy = WatchPolicy(
            grace=timedelta(seconds=settings.watchdog_grace_seconds),
            run_check=timedelta(seconds=settings.run_check_seconds),
        )

    def ensure_tables(self) -> None:
        """Create the tables (local stack and tests; in Azure the infrastructure creates them)."""
        for table in self.tables.all():
            table.create()

    @cached_property
    def sender(self) -> MessageSender:
        return self._sender or message_sender(self.settings)

    @cached_property
    def job_service(self) -> JobService:
        return JobService(self.job_repository, self.due_index, self.clock, self.run_repository)

    @cached_property
    def batches(self) -> Batches:
        return Batches(self.run_context, self.job_service, self.template_service)

    @cached_property
    def template_service(self) -> TemplateService:
        return TemplateService(self.templates, self.clock)

    @cached_property
    def ticker(self) -> Ticker:
        return Ticker(
            job_repository=self.job_repository,
            run_repository=self.run_repository,
            due_index=self.due_index,
            sender=self.sender,
            clock=self.clock,
            queues=self.queues,
            lookahead=timedelta(seconds=self.settings.tick_lookahead_seconds),
            watch=self.watch_policy,
            concurrency=self.settings.tick_concurrency,
        )

    @cached_property
    def databricks(self) -> Databricks:
        """The Databricks adapter; the SDK (about 2 s to import) loads only when a run needs it."""
        return self._databricks or databricks_adapter(self.settings)

    def warm_databricks(self) -> None:
        """Load the Databricks SDK (about 2 s) in the background, so the launch at the fire time need not.

        The tick calls it when it has sent launches: they are due within the lookahead, and a
        cold instance would otherwise pay the import inside the first launch.
        """
        if "databricks" not in self.__dict__:
            threading.Thread(target=lambda: self.databricks, name="warm-databricks", daemon=True).start()

    @cached_property
    def run_context(self) -> RunContext:
        return RunContext(
            job_repository=self.job_repository,
            run_repository=self.run_repository,
            due_index=self.due_index,
            pools=self.pools,
            sender=self.sender,
            databricks=lambda: self.databricks,
            clock=self.clock,
            settings=RunSettings(
                queues=self.queues,
                poll_initial=timedelta(seconds=self.settings.poll_initial_seconds),
                poll_max=timedelta(seconds=self.settings.poll_max_seconds),
                watch=self.watch_policy,
            ),
            analytics=self.analytics,
        )

    @cached_property
    def pool_service(self) -> PoolService:
        return PoolService(self.run_context)

    @cached_property
    def launcher(self) -> Launcher:
        return Launcher(self.run_context)

    @cached_property
    def poller(self) -> Poller:
        return Poller(self.run_context)

    @cached_property
    def notifier(self) -> Notifier:
        return Notifier(
            self.run_context,
            self._poster or HttpPoster(),
            secret_from_settings,
            self.settings.public_console_url,
            timeout=self.settings.notification_timeout_seconds,
        )

    @cached_property
    def inbox(self) -> Inbox:
        return Inbox(
            launcher=self.launcher,
            poller=self.poller,
            notifier=self.notifier,
            sender=self.sender,
            clock=self.clock,
            queues=self.queues,
        )

    @cached_property
    def analytics_service(self) -> AnalyticsService:
        return AnalyticsService(self.analytics, self.clock)

    @cached_property
    def events(self) -> Events:
        return Events(self.run_context)

    @cached_property
    def run_commands(self) -> RunCommands:
        return RunCommands(self.run_context)

    @property
    def dead_letter_source(self) -> DeadLetters | None:
        sender = self.sender
        return sender if hasattr(sender, "drain_dead_letters") else None  # type: ignore[return-value]

    def dead_letter_counts(self) -> dict[str, int | None]:
        source = self.dead_letter_source
        counts: dict[str, int | None] = {}
        for queue in (self.settings.launch_queue, self.settings.poll_queue, self.settings.notify_queue):
            try:
                counts[queue] = source.dead_letter_count(queue) if source is not None else None
            except ExternalError:
                counts[queue] = None
        return counts

    @cached_property
    def watchdog(self) -> Watchdog:
        return Watchdog(
            self.run_context,
            dead_letters=self.dead_letter_source,
            dead_letter_queues=(
                self.settings.launch_queue,
                self.settings.poll_queue,
                self.settings.notify_queue,
            ),
        )


def azure_tables(settings: Settings, counter: OperationCounter | None = None) -> Tables:
    from shared.adapters.azure_table import AzureTable, service_client

    if settings.tables_connection_string is not None:
        service = service_client(
            connection_string=settings.tables_connection_string.get_secret_value(), counter=counter
        )
    else:
        service = service_client(
            endpoint=settings.tables_endpoint, credential=credential(settings), counter=counter
        )
    return Tables(
        jobs=AzureTable(service, settings.jobs_table, counter),
        runs=AzureTable(service, settings.runs_table, counter),
    )


_local_broker: list[MessageSender] = []


def use_local_broker(broker: MessageSender) -> None:
    """Send this process's messages to `broker` when no Service Bus is configured (the local stack)."""
    _local_broker[:] = [broker]


def running_in_azure() -> bool:
    return bool(os.environ.get("WEBSITE_INSTANCE_ID"))


def message_sender(settings: Settings) -> MessageSender:
    """Service Bus when configured; else the local broker the local stack registered."""
    if settings.servicebus_connection_string is not None or settings.servicebus_namespace:
        from shared.adapters.service_bus import ServiceBusSender

        if settings.servicebus_connection_string is not None:
            return ServiceBusSender(
                connection_string=settings.servicebus_connection_string.get_secret_value()
            )
        return ServiceBusSender(namespace=settings.servicebus_namespace, credential=credential(settings))
    name = Settings.model_fields["servicebus_namespace"].alias
    if running_in_azure():
        raise ConfigurationError(f"set {name}: without it, messages would go nowhere")
    if not _local_broker:
        raise ConfigurationError(f"no Service Bus ({name}) and no local broker: run the app with `make run`")
    return _local_broker[0]


def databricks_adapter(settings: Settings) -> Databricks:
    from shared.adapters.databricks_sdk import SdkDatabricks, databricks_client

    return SdkDatabricks(databricks_client(settings))


def credential(settings: Settings):  # type: ignore[no-untyped-def]
    """The app's managed identity (user-assigned when AZURE_CLIENT_ID is set)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=settings.azure_client_id)


def build(
    settings: Settings,
    tables: Tables | None = None,
    clock: Clock | None = None,
    sender: MessageSender | None = None,
    databricks: Databricks | None = None,
    poster: Poster | None = None,
) -> Services:
    # The SDKs log every HTTP request at INFO: far too much for Application Insights.
    logging.getLogger("azure").setLevel(logging.WARNING)
    return Services(
        settings, tables or azure_tables(settings), clock or SystemClock(), sender, databricks, poster
    )


@lru_cache(maxsize=1)
def services() -> Services:
    """The process-wide services, built on first use from the environment."""
    settings = get_settings()
    telemetry.configure(settings)
    return build(settings)
