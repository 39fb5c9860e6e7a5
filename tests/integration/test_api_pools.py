"""The pools API on Azurite: pools, the queue, a run's place and its priority (issue 11)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.http_api import create_api
from shared.bootstrap import Services
from shared.services.messages import RunRef
from tests.fakes.databricks import FakeDatabricks, FakeOutcome
from tests.integration.test_api import ADMIN, PROBLEM, A, B, body, make_services, principal

pytestmark = pytest.mark.azurite


def make(azure_service: Any, **settings: Any) -> Services:
    """Services on fresh Azurite tables, with a fake Databricks whose runs hang (they hold slots)."""
    fake = FakeDatabricks()
    fake.outcomes.extend([FakeOutcome.HANG] * 10)
    return make_services(azure_service, fake, **settings)


@pytest.fixture
def services(azure_service: Any) -> Services:
    return make(azure_service)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_api(lambda: services)) as c:
        yield c


def problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    out: dict[str, Any] = r.json()
    return out


def queued_runs(client: TestClient, services: Services, headers: dict, n: int) -> list[str]:
    """`n` jobs in the 1-slot pool `gpu`, each run now and launched: the first runs, the rest wait."""
    ids = []
    for i in range(n):
        r = client.post("/api/jobs/schedule", json=body(name=f"job-{i}", pool="gpu"), headers=headers)
        assert r.status_code == 201, r.text
        run = client.post(f"/api/jobs/{r.json()['job_id']}/run", headers=headers).json()
        job_id, run_key = run["job_id"], run["run_key"]
        services.launcher.launch(RunRef("", run["tenant"], job_id, run_key, 1))
        ids.append(run["run_id"])
    return ids


def test_the_default_pool_exists_and_is_unbounded(client: TestClient) -> None:
    r = client.get("/api/pools", headers=A)
    assert r.status_code == 200
    (default,) = r.json()["items"]
    assert default["name"] == "default" and default["slots"] is None and default["queue_length"] == 0
    assert client.get("/api/pools/default", headers=A).json()["slots"] is None
    problem(client.get("/api/pools/nope", headers=A), 404)


def test_put_creates_and_changes_a_pool(client: TestClient) -> None:
    r = client.put("/api/pools/gpu", json={"slots": 4, "tenant_limit": 2, "policy": "edf"}, headers=A)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["slots"], out["tenant_limit"], out["policy"], out["used"]) == (4, 2, "edf", 0)
    assert out["updated_by"] == "Alice"
    assert set(out["queues"]) == {"urgent", "high", "normal", "low"}
    r = client.put("/api/pools/gpu", json={"slots": 8}, headers=A)
    assert r.json()["slots"] == 8 and r.json()["policy"] == "default"
    names = [p["name"] for p in client.get("/api/pools", headers=A).json()["items"]]
    assert names == ["default", "gpu"]


@pytest.mark.parametrize(
    "bad",
    [
        {"slots": 0},
        {"slots": "4"},
        {"slots": 4, "policy": "random"},
        {"slots": 4, "tenant_limit": 0},
        {"slots": 4, "colour": "blue"},
        {},
    ],
)
def test_a_bad_pool_is_a_422_and_changes_nothing(client: TestClient, bad: dict) -> None:
    client.put("/api/pools/gpu", json={"slots": 2}, headers=A)
    problem(client.put("/api/pools/gpu", json=bad, headers=A), 422)
    assert client.get("/api/pools/gpu", headers=A).json()["slots"] == 2


def test_a_bad_pool_name_is_a_422(client: TestClient) -> None:
    problem(client.put("/api/pools/GPU_1", json={"slots": 2}, headers=A), 422)


def test_only_a_pools_admin_may_change_pools(azure_service: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    services = make(azure_service, AUTH_MODE="app_service")
    with TestClient(create_api(lambda: services)) as c:
        assert c.get("/api/me", headers=A).json()["pools_admin"] is False
        problem(c.put("/api/pools/gpu", json={"slots": 2}, headers=A), 403)
        assert c.get("/api/me", headers=ADMIN).json()["pools_admin"] is True
        assert c.put("/api/pools/gpu", json={"slots": 2}, headers=ADMIN).status_code == 200
        assert c.get("/api/pools/gpu", headers=A).json()["slots"] == 2  # everyone may read


def test_a_job_must_name_an_existing_pool(client: TestClient) -> None:
    out = problem(client.post("/api/jobs/schedule", json=body(pool="gpu"), headers=A), 422)
    assert "pool" in out["errors"]
    client.put("/api/pools/gpu", json={"slots": 2}, headers=A)
    r = client.post("/api/jobs/schedule", json=body(pool="gpu", slots=2, deadline="PT6H"), headers=A)
    assert r.status_code == 201, r.text
    job = r.json()["job"]
    assert (job["pool"], job["slots"], job["deadline"]) == ("gpu", 2, "PT6H")


def test_the_queue_shows_what_waits_where_and_a_run_its_place(client: TestClient, services: Services) -> None:
    client.put("/api/pools/gpu", json={"slots": 1}, headers=A)
    running, first, second = queued_runs(client, services, A, 3)
    queued_runs(client, services, B, 1)  # another tenant's waiting run: counted, not listed

    q = client.get("/api/queue", headers=A).json()
    assert (q["queue_length"], q["running"], q["pending"]) == (4, 1, 3)
    assert q["queues"]["normal"]["length"] == 3 and q["queues"]["urgent"]["length"] == 0
    assert q["pools"]["gpu"]["pending"] == 3 and q["pools"]["default"]["pending"] == 0
    assert [i["run_id"] for i in q["items"]] == [first, second]
    assert [i["queue_position"] for i in q["items"]] == [1, 2]
    assert all(i["tenant"] == "team-a" for i in q["items"])
    assert client.get("/api/queue?pool=gpu", headers=A).json()["pools"].keys() == {"gpu"}

    run = client.get(f"/api/runs/{second}", headers=A).json()
    assert (run["state"], run["pool"], run["queue_position"]) == ("QUEUED", "gpu", 2)
    assert run["estimated_start_at"] is not None
    assert client.get(f"/api/runs/{running}", headers=A).json()["queue_position"] is None


def test_changing_a_waiting_runs_priority(client: TestClient, services: Services) -> None:
    client.put("/api/pools/gpu", json={"slots": 1}, headers=A)
    running, first, second = queued_runs(client, services, A, 3)
    r = client.put(
        f"/api/runs/{second}/priority", json={"priority": "urgent", "reason": "6 am report"}, headers=A
    )
    assert r.status_code == 200, r.text
    assert (r.json()["priority"], r.json()["queue_position"]) == ("urgent", 1)
    job_id = second.split("_")[0]
    audit = client.get(f"/api/jobs/{job_id}/audit", headers=A).json()["items"][0]
    assert audit["action"] == "run_priority" and audit["actor"]["name"] == "Alice"

    out = problem(
        client.put(f"/api/runs/{running}/priority", json={"priority": "low", "reason": "x"}, headers=A), 409
    )
    assert out["errors"]["state"] == "RUNNING"
    problem(
        client.put(f"/api/runs/{first}/priority", json={"priority": "asap", "reason": "x"}, headers=A), 422
    )
    problem(client.put(f"/api/runs/{first}/priority", json={"priority": "low"}, headers=A), 422)
    problem(
        client.put(f"/api/runs/{first}/priority", json={"priority": "low", "reason": "x"}, headers=B), 404
    )
    other = principal(["team-a"], oid="carol", name="Carol")
    r = client.put(f"/api/runs/{first}/priority", json={"priority": "low", "reason": "x"}, headers=other)
    assert r.status_code == 200 and r.json()["priority"] == "low"
