"""Shared fixtures: Azurite (Table, Blob) for the session, tables on either implementation, a clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from devstack.azurite import Azurite, AzuriteBlob
from shared.adapters.table import OperationCounter, Table
from tests.fakes.clock import FixedClock
from tests.fakes.memory_table import InMemoryTable

_names = itertools.count(1)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One Azurite Table service for the whole session (started here; CI has nothing running)."""
    with Azurite() as running:
        yield running


@pytest.fixture(scope="session")
def azurite_blob() -> Iterator[AzuriteBlob]:
    """One Azurite Blob service for the whole session (file arrival events), started on first use."""
    with AzuriteBlob() as running:
        yield running


@pytest.fixture(scope="session")
def azure_service(azurite: Azurite):  # type: ignore[no-untyped-def]
    from shared.adapters.azure_table import service_client

    return service_client(connection_string=azurite.connection_string)


TableFactory = Callable[[str], Table]


@pytest.fixture(params=["memory", pytest.param("azurite", marks=pytest.mark.azurite)])
def table_factory(request: pytest.FixtureRequest) -> TableFactory:
    """Makes fresh, empty tables on the in-memory fake or on Azurite (same contract)."""
    if request.param == "memory":
        return lambda prefix: InMemoryTable(f"{prefix}{next(_names)}")

    from shared.adapters.azure_table import AzureTable

    service = request.getfixturevalue("azure_service")

    def make(prefix: str) -> Table:
        table = AzureTable(service, f"{prefix}{next(_names)}")
        table.create()
        return table

    return make


@pytest.fixture
def azurite_tables(azure_service) -> TableFactory:  # type: ignore[no-untyped-def]
    """Makes fresh, empty tables on Azurite only (tests that are about the real adapter)."""
    from shared.adapters.azure_table import AzureTable

    def make(prefix: str) -> Table:
        table = AzureTable(azure_service, f"{prefix}{next(_names)}")
        table.create()
        return table

    return make


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def counter() -> OperationCounter:
    return OperationCounter()
