"""The one place that builds the object graph from settings: lazily, once per process.

Nothing connects at import time. Azure SDKs are imported here, inside functions,
so a cold start pays for them only on the paths that use them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from shared.adapters.due_index import DueIndex
from shared.adapters.job_store import JobStore
from shared.adapters.table import OperationCounter, Table
from shared.config import Settings, get_settings
from shared.domain.clock import Clock, SystemClock
from shared.services.jobs import JobService


@dataclass(frozen=True)
class Tables:
    jobs: Table
    runs: Table
    due: Table

    def all(self) -> list[Table]:
        return [self.jobs, self.runs, self.due]


@dataclass(frozen=True)
class Services:
    settings: Settings
    tables: Tables
    clock: Clock
    jobs: JobService

    def ensure_tables(self) -> None:
        """Create the tables (local stack and tests; in Azure the infrastructure creates them)."""
        for table in self.tables.all():
            table.create()


def azure_tables(settings: Settings, counter: OperationCounter | None = None) -> Tables:
    from shared.adapters.azure_table import AzureTable, service_client

    if settings.tables_connection_string is not None:
        service = service_client(
            connection_string=settings.tables_connection_string.get_secret_value(), counter=counter
        )
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=settings.azure_client_id)
        service = service_client(endpoint=settings.tables_endpoint, credential=credential, counter=counter)
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


def build(settings: Settings, tables: Tables | None = None, clock: Clock | None = None) -> Services:
    # The SDKs log every HTTP request at INFO: far too much for Application Insights.
    logging.getLogger("azure").setLevel(logging.WARNING)
    tables = tables or azure_tables(settings)
    clock = clock or SystemClock()
    jobs = JobService(JobStore(tables.jobs), DueIndex(tables.due, settings.due_shards), clock)
    return Services(settings=settings, tables=tables, clock=clock, jobs=jobs)


@lru_cache(maxsize=1)
def services() -> Services:
    """The process-wide services, built on first use from the environment."""
    return build(get_settings())
