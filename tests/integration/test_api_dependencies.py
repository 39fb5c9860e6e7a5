"""When storage, Service Bus or Databricks fail, the API answers 503 problem+json with Retry-After, never
500; and no error body shows a storage key or an internal name."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devstack.azurite import free_port
from functions.http_api import create_api
from shared.adapters.azure_table import AzureTable, service_client
from shared.domain.errors import ExternalError
from tests.fakes.databricks import FakeOutcome
from tests.fakes.memory_table import InMemoryTable
from tests.soak import FaultyTable
from tests.world import World

PROBLEM = "application/problem+json"
A = {"X-Scheduler-Tenant": "team-a"}
JOB = {
    "name": "n",
    "job_type": "model_training",
    "task": {"kind": "databricks_job", "job_id": 1},
    "schedule": {"cron": "0 * * * *"},
}
# What must never reach a caller: row keys of our tables, table and class names, SDK details.
LEAKS = re.compile(r"~|\b[drw]~|\bs\d\d\b|RowKey|PartitionKey|InMemoryTable|AzureTable|azure\.|Traceback")


class Broken:
    """Switches a world's tables between working and failing every call."""

    def __init__(self) -> None:
        self.tables: list[FaultyTable] = []
        lock = threading.Lock()
        self.rng = random.Random(0)
        self.factory = lambda prefix: self._make(prefix, lock)

    def _make(self, prefix: str, lock: threading.Lock) -> FaultyTable:
        table = FaultyTable(InMemoryTable(prefix), self.rng, 0.0, lock)
        self.tables.append(table)
        return table

    def fail(self, on: bool = True) -> None:
        for table in self.tables:
            table.rate = 1.0 if on else 0.0


@pytest.fixture
def broken() -> Broken:
    return Broken()


@pytest.fixture
def world(broken: Broken) -> World:
    return World(broken.factory, settings={"AUTH_MODE": "function_key"})


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_api(lambda: world.s)) as c:
        yield c


def _assert_503(r: Any) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == PROBLEM and int(r.headers["retry-after"]) >= 1
    assert r.json()["code"] == "external_error"
    assert not LEAKS.search(r.text), r.text


def test_storage_down_is_503_with_retry_after_on_every_endpoint(
    client: TestClient, world: World, broken: Broken
) -> None:
    job_id = client.post("/api/jobs/schedule", json=JOB, headers=A).json()["job_id"]
    run_id = client.post(f"/api/jobs/{job_id}/run", headers=A).json()["run_id"]
    broken.fail()
    calls = [
        ("GET", "/api/jobs", None),
        ("GET", f"/api/jobs/{job_id}", None),
        ("POST", "/api/jobs/schedule", JOB),
        ("PUT", f"/api/jobs/{job_id}", JOB),
        ("POST", f"/api/jobs/{job_id}/pause", None),
        ("POST", f"/api/jobs/{job_id}/run", None),
        ("GET", f"/api/jobs/{job_id}/runs", None),
        ("GET", f"/api/jobs/{job_id}/audit", None),
        ("GET", f"/api/runs/{run_id}", None),
        ("POST", f"/api/runs/{run_id}/cancel", None),
        ("DELETE", f"/api/jobs/{job_id}", None),
    ]
    for method, url, body in calls:
        _assert_503(client.request(method, url, json=body, headers=A))
    health = client.get("/api/health")
    assert health.status_code == 503 and health.json()["storage"] == "error"
    broken.fail(False)
    assert client.get(f"/api/jobs/{job_id}", headers=A).json()["status"] == "ACTIVE"  # nothing half done


def test_databricks_down_is_503_when_a_cancel_needs_it(client: TestClient, world: World) -> None:
    world.fake.outcomes.append(FakeOutcome.HANG)  # type: ignore[union-attr]
    job_id = client.post("/api/jobs/schedule", json=JOB, headers=A).json()["job_id"]
    run_id = client.post(f"/api/jobs/{job_id}/run", headers=A).json()["run_id"]
    world.deliver(until=world.clock.now())
    assert client.get(f"/api/runs/{run_id}", headers=A).json()["state"] == "RUNNING"
    world.fake.fail_next_call(status=503, retry_after=7, times=3)  # type: ignore[union-attr]
    r = client.post(f"/api/runs/{run_id}/cancel", headers=A)
    _assert_503(r)
    assert int(r.headers["retry-after"]) == 7
    assert client.get(f"/api/runs/{run_id}", headers=A).json()["state"] == "RUNNING"


def test_a_send_that_fails_after_run_now_recorded_the_run_still_answers_and_runs(
    client: TestClient, world: World
) -> None:
    job_id = client.post("/api/jobs/schedule", json=JOB, headers=A).json()["job_id"]
    world.broker.fail_sends(1)
    r = client.post(f"/api/jobs/{job_id}/run", headers=A)
    assert r.status_code == 202 and r.json()["state"] == "SCHEDULED"
    world.run_until(world.clock.now() + timedelta(minutes=5))
    assert client.get(f"/api/runs/{r.json()['run_id']}", headers=A).json()["state"] == "SUCCEEDED"


def test_a_connection_that_fails_is_a_passing_error_within_seconds() -> None:
    closed = free_port()  # nothing listens there
    table = AzureTable(
        service_client(
            connection_string=(
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                f"TableEndpoint=http://127.0.0.1:{closed}/devstoreaccount1;"
            )
        ),
        "jobs",
    )
    started = time.monotonic()
    with pytest.raises(ExternalError) as caught:
        table.get("team-a", "01J")
    assert caught.value.retryable and time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/jobs/01KT1GX3SGTYHRDK6WZFZ39Y8V"),
        ("GET", "/api/runs/01KT1GX3SGTYHRDK6WZFZ39Y8V_s-1780315800000"),
        ("GET", "/api/runs/01KT1GX3SGTYHRDK6WZFZ39Y8V_m-01KT1GX3SGTYHRDK6WZFZ39Y8V"),
        ("POST", "/api/runs/01KT1GX3SGTYHRDK6WZFZ39Y8V_s-1780315800000/cancel"),
        ("GET", "/api/jobs/~tenants"),
        ("GET", "/api/runs/~_s-1"),
    ],
)
def test_not_found_bodies_show_no_storage_key(client: TestClient, method: str, url: str) -> None:
    r = client.request(method, url, headers=A)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    asked = url.split("/")[3]  # the caller's own id may be echoed; nothing else of ours may show
    detail = r.json()["detail"].replace(asked.split("_")[0], "ID").replace(asked, "ID")
    assert not LEAKS.search(detail), r.text


def test_a_run_of_an_existing_job_that_does_not_exist_shows_no_storage_key(client: TestClient) -> None:
    job_id = client.post("/api/jobs/schedule", json=JOB, headers=A).json()["job_id"]
    r = client.get(f"/api/runs/{job_id}_s-1780315800000", headers=A)
    assert r.status_code == 404 and not LEAKS.search(r.text), r.text
