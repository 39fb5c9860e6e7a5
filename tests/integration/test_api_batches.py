"""Batches over the HTTP API on Azurite: a 1,000-point grid accepted in one request, a batch with
one wrong value refused whole (each wrong value named, nothing written), follow, cancel, retry-failed,
tenancy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.http_api import create_api
from shared.bootstrap import Services
from tests.integration.test_api import PROBLEM, A, B, make_services
from tests.integration.test_api_templates import template

pytestmark = pytest.mark.azurite
TASK = {"kind": "databricks_job", "job_id": 7, "parameters": {"lr": "{{params.lr}}"}}


@pytest.fixture
def services(azure_service: Any) -> Services:
    return make_services(azure_service)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_api(lambda: services)) as c:
        c.post("/api/templates", json=template(), headers=A)
        yield c


def grid(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "template": "train-model",
        "parameters": {"market": "de"},
        "grid": {"learning_rate": [0.1, 0.01, 0.001], "epochs": [5, 10]},
        "max_parallel": 2,
    }
    body.update(overrides)
    return body


def all_rows(services: Services) -> int:
    return sum(1 for t in services.tables.all() for _ in t.query(None))


def test_a_grid_batch_is_accepted_with_every_point_listed(client: TestClient) -> None:
    r = client.post("/api/batches", json=grid(), headers=A)
    assert r.status_code == 201, r.text
    out = r.json()
    assert r.headers["Location"] == f"/api/batches/{out['batch_id']}"
    assert (out["size"], out["max_parallel"], out["execution_mode"]) == (6, 2, "parallel")
    assert out["template"] == {"name": "train-model", "version": 1, "parameters": {"market": "de"}}
    assert out["state"] == "SCHEDULED" and out["counts"]["pending"] == 6
    assert [p["parameters"] for p in out["runs"]][:2] == [
        {"market": "de", "learning_rate": 0.1, "epochs": 5, "full_refresh": False},
        {"market": "de", "learning_rate": 0.1, "epochs": 10, "full_refresh": False},
    ]
    assert [p["point"] for p in out["runs"]] == list(range(6))
    assert client.get(f"/api/batches/{out['batch_id']}", headers=A).json() == out
    job = client.get(f"/api/jobs/{out['batch_id']}", headers=A).json()
    assert "batch" in job["tags"] and job["overlap"] == "allow" and job["retry"]["max_attempts"] == 3
    assert client.post(f"/api/jobs/{out['batch_id']}/run", headers=A).status_code == 409


def test_a_thousand_point_grid_is_one_request(client: TestClient, services: Services) -> None:
    body = grid(
        grid={
            "learning_rate": [i / 1000 for i in range(1, 11)],
            "epochs": list(range(1, 11)),
            "market": ["de", "fr", "uk", "de", "fr", "uk", "de", "fr", "uk", "de"],
        }
    )
    r = client.post("/api/batches", json=body, headers=A)
    assert r.status_code == 201, r.text
    assert r.json()["size"] == 1000 and len(r.json()["runs"]) == 1000
    too_big = grid(grid={"learning_rate": [0.1] * 11, "epochs": list(range(10)), "market": ["de"] * 10})
    r = client.post("/api/batches", json=too_big, headers=A)
    assert r.status_code == 422 and "grid" in r.json()["errors"]


def test_a_thousand_explicit_points_fit_the_batch_body_limit(client: TestClient) -> None:
    runs = [{"learning_rate": i / 10_000, "epochs": i % 50 + 1} for i in range(1000)]
    r = client.post("/api/batches", json=grid(grid=None, runs=runs), headers=A)
    assert r.status_code == 201, r.text
    assert r.json()["size"] == 1000


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"grid": {"learning_rate": [0.1, "fast", 0.2]}}, {"grid.learning_rate.1": "must be a number"}),
        ({"grid": {"depth": [1, 2]}}, {"grid.depth": "is not a parameter of template 'train-model'"}),
        (
            {"grid": None, "runs": [{"epochs": 1}, {"epochs": "two"}, {"epochs": 3, "market": "es"}]},
            {"runs.1.epochs": "must be an integer", "runs.2.market": 'must be one of "de", "fr", "uk"'},
        ),
        ({"parameters": {}}, {"parameters.market": "is required"}),
        ({"template": "nope"}, {"template": "not found"}),
    ],
)
def test_one_wrong_value_refuses_the_whole_batch_and_writes_nothing(
    client: TestClient, services: Services, change: dict[str, Any], errors: dict[str, str]
) -> None:
    before = all_rows(services)
    r = client.post("/api/batches", json=grid(**change), headers=A)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["errors"] == errors
    assert all_rows(services) == before


@pytest.mark.parametrize(
    "change",
    [
        {"task": TASK},  # and a template
        {"template": None},  # neither
        {"runs": [{"epochs": 1}]},  # and a grid
        {"max_parallel": 0},
        {"max_parallel": 101},
        {"execution_mode": "random"},
        {"grid": {"epochs": []}},
    ],
)
def test_a_malformed_batch_is_a_422(client: TestClient, change: dict[str, Any]) -> None:
    r = client.post("/api/batches", json=grid(**change), headers=A)
    assert r.status_code == 422, r.text


def test_a_task_batch_takes_exactly_the_values_its_task_uses(client: TestClient) -> None:
    body = {"task": TASK, "runs": [{"lr": "0.1"}, {"lr": 0.2}, {"lr": "x", "extra": 1}, {}]}
    r = client.post("/api/batches", json=body, headers=A)
    assert r.status_code == 422
    assert r.json()["errors"] == {"runs.2.extra": "is not used by the task", "runs.3.lr": "is required"}
    ok = client.post(
        "/api/batches", json={**body, "runs": body["runs"][:2], "execution_mode": "sequential"}, headers=A
    )
    assert ok.status_code == 201, ok.text
    assert (ok.json()["name"], ok.json()["max_parallel"]) == ("batch", 1)


def test_cancel_and_retry_failed(client: TestClient) -> None:
    batch = client.post("/api/batches", json=grid(), headers=A).json()["batch_id"]
    r = client.post(f"/api/batches/{batch}/retry-failed", headers=A)
    assert r.status_code == 409  # still running
    r = client.post(f"/api/batches/{batch}/cancel", headers=A)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "CANCELLED" and r.json()["counts"]["cancelled"] == 6
    assert client.post(f"/api/batches/{batch}/cancel", headers=A).json()["state"] == "CANCELLED"
    r = client.post(f"/api/batches/{batch}/retry-failed", headers=A)
    assert r.status_code == 409 and r.json()["errors"] == {"points": "none failed"}


def test_a_tenant_sees_only_its_own_batches(client: TestClient) -> None:
    batch = client.post("/api/batches", json=grid(), headers=A).json()["batch_id"]
    assert client.get(f"/api/batches/{batch}", headers=B).status_code == 404
    assert client.post(f"/api/batches/{batch}/cancel", headers=B).status_code == 404
    assert client.post("/api/batches", json=grid(), headers=B).json()["errors"] == {"template": "not found"}
    job = client.post(
        "/api/jobs/schedule",
        json={"template": "train-model", "parameters": {"market": "de"}, "name": "j"},
        headers=A,
    )
    assert client.get(f"/api/batches/{job.json()['job_id']}", headers=A).status_code == 404  # not a batch


def test_a_batch_body_may_be_larger_than_other_bodies_but_not_unbounded(client: TestClient) -> None:
    filler = "x" * 2000
    runs = [{"learning_rate": 0.1, "epochs": 1, "market": "de", "note": "a longer note"} for _ in range(1000)]
    body = {**grid(grid=None, runs=runs), "name": "b", "parameters": {}}
    assert 32_768 < len(str(body)) < 1_048_576
    assert client.post("/api/batches", json=body, headers=A).status_code == 201
    huge = {**body, "runs": [{"epochs": 1, "market": "de", "note": filler}] * 600}
    r = client.post("/api/batches", json=huge, headers=A)
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    big_job = {"template": "train-model", "name": "x" * 40_000, "parameters": {"market": "de"}}
    assert client.post("/api/jobs/schedule", json=big_job, headers=A).status_code == 413


def test_a_batch_whose_values_would_not_fit_one_write_is_refused(
    client: TestClient, services: Services
) -> None:
    long = "y" * 3500
    body = {
        "task": {**TASK, "parameters": {"lr": "{{params.lr}}", "n": "{{params.n}}"}},
        "grid": {"lr": [f"{long}{i}" for i in range(10)], "n": list(range(100))},
    }
    before = all_rows(services)
    r = client.post("/api/batches", json=body, headers=A)
    assert r.status_code == 422 and "at most 2000000" in r.json()["errors"]["grid"]
    assert all_rows(services) == before


def test_an_idempotency_key_makes_one_batch_however_often_it_is_sent(
    client: TestClient, services: Services
) -> None:
    key = {**A, "Idempotency-Key": "sweep-2026-12-06"}
    first = client.post("/api/batches", json=grid(), headers=key)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    rows = all_rows(services)
    again = client.post("/api/batches", json=grid(), headers=key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["batch_id"] == first.json()["batch_id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert all_rows(services) == rows  # nothing new
    other = client.post("/api/batches", json=grid(max_parallel=3), headers=key)
    assert other.status_code == 409 and other.json()["errors"] == {
        "Idempotency-Key": "used with another body"
    }
    assert (
        client.post(
            "/api/batches", json=grid(), headers={**B, "Idempotency-Key": "sweep-2026-12-06"}
        ).status_code
        == 422
    )  # B has no template: keys are per tenant
    listed = client.get("/api/jobs", params={"tag": "batch"}, headers=A).json()["items"]
    assert len(listed) == 1 and listed[0]["batch"] is True and listed[0]["triggers"] == []


def test_concurrent_requests_with_one_key_make_one_batch(client: TestClient) -> None:
    import threading

    answers: list[Any] = []

    def send() -> None:
        answers.append(client.post("/api/batches", json=grid(), headers={**A, "Idempotency-Key": "race"}))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 201]
    assert len({r.json()["batch_id"] for r in answers}) == 1
    assert len(client.get("/api/jobs", params={"tag": "batch"}, headers=A).json()["items"]) == 1
