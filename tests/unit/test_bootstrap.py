"""No silent fallback: in Azure, a missing Service Bus setting is an error that names it."""

from __future__ import annotations

import pytest

from devstack.service_bus_twin import ServiceBusTwin
from shared import bootstrap
from shared.config import Settings


@pytest.fixture(autouse=True)
def no_local_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "_local_broker", [])
    monkeypatch.delenv("WEBSITE_INSTANCE_ID", raising=False)


def test_in_azure_a_missing_service_bus_setting_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc123")
    bootstrap.use_local_broker(ServiceBusTwin())  # even a local broker is not a fallback in Azure
    with pytest.raises(bootstrap.ConfigurationError, match="ServiceBusConnection__fullyQualifiedNamespace"):
        bootstrap.message_sender(Settings())


def test_locally_without_a_broker_the_error_says_how_to_run_it() -> None:
    with pytest.raises(bootstrap.ConfigurationError, match="make run"):
        bootstrap.message_sender(Settings())


def test_locally_the_local_broker_takes_the_messages() -> None:
    twin = ServiceBusTwin()
    bootstrap.use_local_broker(twin)
    assert bootstrap.message_sender(Settings()) is twin


def test_a_service_bus_setting_wins_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc123")
    settings = Settings(ServiceBusConnection__fullyQualifiedNamespace="sb-x.servicebus.windows.net")
    sender = bootstrap.message_sender(settings)
    assert type(sender).__name__ == "ServiceBusSender"
