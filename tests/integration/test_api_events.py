"""The API of event triggers (issue 13) on Azurite: jobs with `file_arrival` and `webhook` triggers,
`POST /api/jobs/{job_id}/trigger`, and the errors that change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.http_api import create_api
from shared.bootstrap import Services
from tests.integration.test_api import PROBLEM, A, B, all_rows, body, create, make_services

pytestmark = pytest.mark.azurite


@pytest.fixture
def services(azure_service: Any) -> Services:
    return make_services(azure_service)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_api(lambda: services)) as c:
        yield c


WEBHOOK = {
    "schedule": None,
    "task": {"kind": "databricks_job", "job_id": 5, "parameters": {"model": "{{trigger.payload.model}}"}},
    "triggers": [{"kind": "webhook"}],
}


def trigger(
    client: TestClient, job_id: str, key: str | None, payload: Any, headers: dict | None = None
) -> Any:
    extra = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"/api/jobs/{job_id}/trigger", json=payload, headers={**(headers or A), **extra})


def test_a_webhook_call_answers_202_with_its_run_and_once_per_key(client: TestClient) -> None:
    job = create(client, **WEBHOOK)
    assert job["message"] == "Job 'nightly-churn-training' created; it runs when its triggers fire"
    listed = client.get("/api/jobs", headers=A).json()["items"]
    summary = [(j["schedule"], j["triggers"], j["batch"]) for j in listed]
    assert summary == [(None, [{"kind": "webhook"}], False)]
    r = trigger(client, job["job_id"], "order-42", {"model": "churn", "full": True, "n": 3})
    assert r.status_code == 202, r.text
    run = r.json()
    assert (
        r.headers["Location"] == f"/api/runs/{run['run_id']}" and r.headers["Idempotent-Replayed"] == "false"
    )
    assert run["trigger"] == "webhook" and run["state"] == "SCHEDULED"
    assert run["cause"] == {
        "kind": "webhook",
        "runs": None,
        "files": None,
        "idempotency_key": "order-42",
        "payload": {"model": "churn", "full": "true", "n": "3"},
        "point": None,
        "values": None,
    }
    again = trigger(client, job["job_id"], "order-42", {"model": "churn", "full": True, "n": 3})
    assert again.status_code == 202 and again.json()["run_id"] == run["run_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = trigger(client, job["job_id"], "order-42", {"model": "other"})
    assert other.status_code == 409 and other.headers["content-type"] == PROBLEM
    assert "different body" in other.json()["detail"]
    runs = client.get(f"/api/jobs/{job['job_id']}/runs", headers=A).json()["items"]
    assert [r["run_id"] for r in runs] == [run["run_id"]]
    assert (
        client.get(f"/api/runs/{run['run_id']}", headers=A).json()["cause"]["idempotency_key"] == "order-42"
    )
    empty = client.post(f"/api/jobs/{job['job_id']}/trigger", headers={**A, "Idempotency-Key": "no-body"})
    assert empty.status_code == 202 and empty.json()["cause"]["payload"] == {}


def test_bad_webhook_calls_are_refused_and_change_nothing(client: TestClient, services: Services) -> None:
    job = create(client, **WEBHOOK)
    scheduled = create(client)
    before = all_rows(services)
    cases: list[tuple[str, str | None, Any, int, str]] = [
        (job["job_id"], None, {"a": "b"}, 422, "Idempotency-Key"),
        (job["job_id"], "", {"a": "b"}, 422, "Idempotency-Key"),
        (job["job_id"], "k" * 256, {"a": "b"}, 422, "Idempotency-Key"),
        (job["job_id"], "k", {"a": {"nested": 1}}, 422, "'a' must be a string, number or boolean"),
        (job["job_id"], "k", ["a"], 422, "should be an object"),
        (job["job_id"], "k", {"bad key": "x"}, 422, "bad key"),
        (job["job_id"], "k", {f"k{i}": "x" for i in range(65)}, 422, "at most 64"),
        (job["job_id"], "k", {"a": "x" * 4097}, 422, "4096"),
        (job["job_id"], "k", {"a": None}, 422, "'a' must be a string, number or boolean"),
        (scheduled["job_id"], "k", {}, 409, "no webhook trigger"),
        ("01J0ZZZZZZZZZZZZZZZZZZZZZZ", "k", {}, 404, "not found"),
    ]
    for job_id, key, payload, status, says in cases:
        r = trigger(client, job_id, key, payload)
        assert r.status_code == status and says in r.text, (key, payload, r.text)
        assert r.headers["content-type"] == PROBLEM
    r = client.post(
        f"/api/jobs/{job['job_id']}/trigger",
        content=b"{not json",
        headers={**A, "Idempotency-Key": "k", "content-type": "application/json"},
    )
    assert r.status_code in (400, 422) and r.headers["content-type"] == PROBLEM
    assert trigger(client, job["job_id"], "k", {}, headers=B).status_code == 404  # another tenant's job
    assert all_rows(services) == before


def test_a_paused_job_refuses_or_records_webhook_calls(client: TestClient) -> None:
    job = create(client, **WEBHOOK)
    client.post(f"/api/jobs/{job['job_id']}/pause", headers=A)
    r = trigger(client, job["job_id"], "k", {})
    assert r.status_code == 409 and "paused" in r.json()["detail"]
    recorder = create(client, **WEBHOOK, record_skipped_while_paused=True)
    client.post(f"/api/jobs/{recorder['job_id']}/pause", headers=A)
    r = trigger(client, recorder["job_id"], "k", {})
    assert r.status_code == 202 and r.json()["state"] == "SKIPPED" and r.json()["reason"] == "paused"


def test_file_arrival_triggers_are_validated(client: TestClient, services: Services) -> None:
    good = {"kind": "file_arrival", "container": "landing", "prefix": "sales/", "suffix": ".csv"}
    job = create(client, schedule=None, triggers=[good])
    assert job["job"]["triggers"][0] == {
        **good,
        "account": None,
        "min_time_between_triggers": "PT0S",
        "wait_after_last_change": "PT0S",
    }
    assert [w.job_id for w in services.job_repository.watchers("landing")] == [job["job_id"]]
    before = all_rows(services)
    for bad in (
        {**good, "container": "Landing"},
        {**good, "container": "ab"},
        {**good, "container": "a--b"},
        {**good, "wait_after_last_change": "PT2H"},
        {**good, "min_time_between_triggers": "-PT1M"},
        {**good, "account": "Not-An-Account"},
        {**good, "pattern": "*.csv"},
    ):
        r = client.post("/api/jobs/schedule", json=body(schedule=None, triggers=[bad]), headers=A)
        assert r.status_code == 422 and "triggers" in r.text, (bad, r.text)
    r = client.post(
        "/api/jobs/schedule",
        json=body(schedule=None, triggers=[{"kind": "webhook"}, {"kind": "webhook"}]),
        headers=A,
    )
    assert r.status_code == 422 and "at most one webhook" in r.text
    assert all_rows(services) == before
    client.delete(f"/api/jobs/{job['job_id']}", headers=A)
    assert services.job_repository.watchers("landing") == []  # a cancelled job watches nothing


def test_a_job_with_neither_schedule_nor_triggers_is_valid(client: TestClient) -> None:
    job = create(client, schedule=None)
    assert (
        job["message"] == "Job 'nightly-churn-training' created; it runs only when asked (run now, webhook)"
    )
    assert job["status"] == "ACTIVE" and job["next_fire_at"] is None
    r = client.post(f"/api/jobs/{job['job_id']}/run", headers=A)
    assert r.status_code == 202 and r.json()["trigger"] == "manual"


def test_events_skipped_while_paused_are_replayed_only_when_asked(client: TestClient) -> None:
    job = create(client, **WEBHOOK, record_skipped_while_paused=True)
    path = f"/api/jobs/{job['job_id']}"
    client.post(f"{path}/pause", headers=A)
    assert client.post(f"{path}/replay", headers=A).status_code == 409  # paused: resume first
    skipped = [trigger(client, job["job_id"], f"k{i}", {"model": f"m{i}"}).json() for i in range(2)]
    assert [r["state"] for r in skipped] == ["SKIPPED", "SKIPPED"]
    assert client.post(f"{path}/resume", headers=A).status_code == 200
    assert [r["state"] for r in client.get(f"{path}/runs", headers=A).json()["items"]] == ["SKIPPED"] * 2
    r = client.post(f"{path}/replay", headers=A)
    assert r.status_code == 200, r.text
    replays = r.json()["items"]
    assert [x["cause"]["idempotency_key"] for x in replays] == ["k0", "k1"]  # oldest first
    assert all(x["trigger"] == "webhook" and x["state"] == "SCHEDULED" for x in replays)
    keys = [s["run_id"].split("_", 1)[1] for s in skipped]
    assert [x["reason"] for x in replays] == [f"replay of {key} by Alice" for key in keys]
    assert client.post(f"{path}/replay", headers=A).json()["items"] == []  # never twice
    assert len(client.get(f"{path}/runs", headers=A).json()["items"]) == 4
    assert client.get(path, headers=A).json()["paused_at"] is not None
