"""The one place that builds the object graph from settings: lazily, once per process.

Nothing connects at import time. Azure SDKs are imported here, inside functions,
so a cold start pays for them only on the paths that use them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property, lru_cache

from shared import telemetry
from shared.adapters.databricks import Databricks
from shared.adapters.due_index import DueIndex
from shared.adapters.job_store import JobStore
from shared.adapters.queue import DeadLetters, InProcessQueues, MessageSender
from shared.adapters.run_store import RunStore
from shared.adapters.table import OperationCounter, Table
from shared.config import Settings, get_settings
from shared.domain.clock import Clock, SystemClock
from shared.domain.errors import ExternalError
from shared.services.jobs import JobService
from shared.services.reconcile import Reconciler
from shared.services.runs import RunService, RunSettings
from shared.services.tick import Ticker


@dataclass(frozen=True)
class Tables:
    jobs: Table
    runs: Table
    due: Table

    def all(self) -> list[Table]:
        return [self.jobs, self.runs, self.due]


class Services:
    """The object graph of one process. Parts are built on first use."""

    def __init__(
        self,
        settings: Settings,
        tables: Tables,
        clock: Clock,
        sender: MessageSender | None = None,
        databricks: Databricks | None = None,
    ) -> None:
        self.settings = settings
        self.tables = tables
        self.clock = clock
        self._sender = sender
        self._databricks = databricks
        self.job_store = JobStore(tables.jobs)
        self.run_store = RunStore(tables.runs)
        self.due = DueIndex(tables.due, settings.due_shards)

    def ensure_tables(self) -> None:
        """Create the tables (local stack and tests; in Azure the infrastructure creates them)."""
        for table in self.tables.all():
            table.create()

    @cached_property
    def sender(self) -> MessageSender:
        return self._sender or message_sender(self.settings, self.clock)

    @cached_property
    def jobs(self) -> JobService:
        return JobService(self.job_store, self.due, self.clock, self.run_store)

    @cached_property
    def ticker(self) -> Ticker:
        return Ticker(
            jobs=self.job_store,
            runs=self.run_store,
            due=self.due,
            sender=self.sender,
            clock=self.clock,
            launch_queue=self.settings.launch_queue,
            lookahead=timedelta(seconds=self.settings.tick_lookahead_seconds),
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
    def runs(self) -> RunService:
        return RunService(
            jobs=self.job_store,
            runs=self.run_store,
            due=self.due,
            sender=self.sender,
            databricks=lambda: self.databricks,
            clock=self.clock,
            settings=RunSettings(
                launch_queue=self.settings.launch_queue,
                poll_queue=self.settings.poll_queue,
                poll_initial=timedelta(seconds=self.settings.poll_initial_seconds),
                poll_max=timedelta(seconds=self.settings.poll_max_seconds),
            ),
        )

    @property
    def dead_letter_source(self) -> DeadLetters | None:
        sender = self.sender
        return sender if hasattr(sender, "drain_dead_letters") else None  # type: ignore[return-value]

    def dead_letter_counts(self) -> dict[str, int | None]:
        source = self.dead_letter_source
        counts: dict[str, int | None] = {}
        for queue in (self.settings.launch_queue, self.settings.poll_queue):
            try:
                counts[queue] = source.dead_letter_count(queue) if source is not None else None
            except ExternalError:
                counts[queue] = None
        return counts

    @cached_property
    def reconciler(self) -> Reconciler:
        return Reconciler(
            jobs=self.job_store,
            runs=self.run_store,
            due=self.due,
            sender=self.sender,
            clock=self.clock,
            launch_queue=self.settings.launch_queue,
            dead_letters=self.dead_letter_source,
            dead_letter_queues=(self.settings.launch_queue, self.settings.poll_queue),
            on_dead_letter=self.runs.dead_lettered,
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
        jobs=AzureTable(service, settings.jobs_table),
        runs=AzureTable(service, settings.runs_table),
        due=AzureTable(service, settings.due_table),
    )


def memory_tables(settings: Settings, counter: OperationCounter | None = None) -> Tables:
    from shared.adapters.memory_table import InMemoryTable

    return Tables(
        jobs=InMemoryTable(settings.jobs_table, counter),
        runs=InMemoryTable(settings.runs_table, counter),
        due=InMemoryTable(settings.due_table, counter),
    )


@lru_cache(maxsize=1)
def in_process_queues() -> InProcessQueues:
    """The process-wide in-process broker (local stack): the devstack host delivers from it."""
    return InProcessQueues()


def message_sender(settings: Settings, clock: Clock) -> MessageSender:
    """Service Bus when configured, else the in-process queues of the local stack."""
    if settings.servicebus_connection_string is not None or settings.servicebus_namespace:
        from shared.adapters.service_bus import ServiceBusSender

        if settings.servicebus_connection_string is not None:
            return ServiceBusSender(
                connection_string=settings.servicebus_connection_string.get_secret_value()
            )
        return ServiceBusSender(namespace=settings.servicebus_namespace, credential=credential(settings))
    return in_process_queues()


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
) -> Services:
    # The SDKs log every HTTP request at INFO: far too much for Application Insights.
    logging.getLogger("azure").setLevel(logging.WARNING)
    return Services(settings, tables or azure_tables(settings), clock or SystemClock(), sender, databricks)


@lru_cache(maxsize=1)
def services() -> Services:
    """The process-wide services, built on first use from the environment."""
    settings = get_settings()
    telemetry.configure(settings)
    return build(settings)
