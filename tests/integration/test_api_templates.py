"""Templates over the HTTP API on Azurite: create, list, get, versioned update, and jobs made from
them with typed parameters (one 422 per wrong parameter, nothing created)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.http_api import create_api
from shared.bootstrap import Services
from tests.integration.test_api import PROBLEM, A, B, make_services

pytestmark = pytest.mark.azurite


def template(**overrides: Any) -> dict[str, Any]:
    t: dict[str, Any] = {
        "name": "train-model",
        "description": "Train a churn model for one market",
        "job_type": "model_training",
        "task": {
            "kind": "databricks_job",
            "job_id": 123,
            "parameters": {
                "market": "{{params.market}}",
                "lr": "{{ params.learning_rate }}",
                "epochs": "{{params.epochs}}",
                "full": "{{params.full_refresh}}",
                "day": "{{scheduled_date}}",
            },
        },
        "parameters": [
            {"name": "market", "type": "enum", "options": ["de", "fr", "uk"], "required": True},
            {"name": "learning_rate", "type": "float", "default": 0.001},
            {"name": "epochs", "type": "int", "default": 10},
            {"name": "full_refresh", "type": "bool", "default": False},
            {"name": "note", "type": "string"},
        ],
        "retry": {"max_attempts": 3, "initial_delay": "PT5M"},
        "timeout": "PT4H",
        "tags": ["churn"],
    }
    t.update(overrides)
    return t


def from_template(**overrides: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "template": "train-model",
        "parameters": {"market": "de", "learning_rate": 0.0005},
        "name": "churn-de",
        "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Berlin"},
    }
    b.update(overrides)
    return b


@pytest.fixture
def services(azure_service: Any) -> Services:
    return make_services(azure_service)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_api(lambda: services)) as c:
        yield c


def test_a_template_is_created_listed_and_read_with_its_version(client: TestClient) -> None:
    r = client.post("/api/templates", json=template(), headers=A)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == "/api/templates/train-model"
    assert r.headers["ETag"] == '"v1"'
    out = r.json()
    assert out["version"] == 1 and out["tenant"] == "team-a" and out["created_by"]["name"] == "Alice"
    assert [p["name"] for p in out["parameters"]] == [
        "market",
        "learning_rate",
        "epochs",
        "full_refresh",
        "note",
    ]

    got = client.get("/api/templates/train-model", headers=A)
    assert got.status_code == 200 and got.headers["ETag"] == '"v1"'
    assert got.json() == out
    client.post("/api/templates", json=template(name="another"), headers=A)
    assert [t["name"] for t in client.get("/api/templates", headers=A).json()["items"]] == [
        "another",
        "train-model",
    ]

    again = client.post("/api/templates", json=template(), headers=A)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"task": {"kind": "databricks_job", "job_id": 1, "parameters": {"x": "{{params.nope}}"}}}, "body"),
        ({"parameters": [{"name": "m", "type": "enum"}]}, "parameters.0"),
        ({"parameters": [{"name": "m", "type": "int", "default": "ten"}]}, "parameters.0"),
        ({"parameters": [{"name": "m", "type": "int", "default": 1.5}]}, "parameters.0"),
        ({"parameters": [{"name": "m", "type": "int", "required": True, "default": 1}]}, "parameters.0"),
        ({"parameters": [{"name": "m", "type": "string", "options": ["a"]}]}, "parameters.0"),
        ({"parameters": [{"name": "m", "type": "int"}, {"name": "m", "type": "int"}]}, "body"),
        ({"parameters": [{"name": "bad name", "type": "int"}]}, "parameters.0.name"),
        ({"name": "Has Spaces"}, "name"),
    ],
)
def test_an_invalid_template_is_refused_and_nothing_is_stored(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    body = template(**change)
    if "parameters" in change:
        body["task"] = {"kind": "databricks_job", "job_id": 1}
    r = client.post("/api/templates", json=body, headers=A)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert field in r.json()["errors"], r.json()
    assert client.get("/api/templates", headers=A).json()["items"] == []


def test_a_job_made_from_a_template_has_its_values_filled_in_and_records_the_version(
    client: TestClient,
) -> None:
    client.post("/api/templates", json=template(), headers=A)
    r = client.post("/api/jobs/schedule", json=from_template(), headers=A)
    assert r.status_code == 201, r.text
    job = client.get(f"/api/jobs/{r.json()['job_id']}", headers=A).json()
    assert job["task"]["parameters"] == {
        "market": "de",
        "lr": "0.0005",
        "epochs": "10",
        "full": "false",
        "day": "{{scheduled_date}}",  # the scheduler's own placeholders stay for each run
    }
    assert job["template"] == {
        "name": "train-model",
        "version": 1,
        "parameters": {"market": "de", "learning_rate": 0.0005, "epochs": 10, "full_refresh": False},
    }
    assert job["name"] == "churn-de" and job["description"] == "Train a churn model for one market"
    assert job["retry"]["max_attempts"] == 3 and job["timeout"] == "PT4H" and job["tags"] == ["churn"]
    assert job["schedule"]["cron"] == "0 2 * * *" and job["next_fire_at"]


def test_each_wrong_parameter_is_named_and_no_job_is_made(client: TestClient) -> None:
    client.post("/api/templates", json=template(), headers=A)
    r = client.post(
        "/api/jobs/schedule",
        json=from_template(parameters={"market": "es", "epochs": "10", "full_refresh": 1, "depth": 3}),
        headers=A,
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["errors"] == {
        "parameters.depth": "is not a parameter of template 'train-model'",
        "parameters.market": 'must be one of "de", "fr", "uk"',
        "parameters.epochs": "must be an integer",
        "parameters.full_refresh": "must be true or false",
    }
    missing = client.post("/api/jobs/schedule", json=from_template(parameters={}), headers=A)
    assert missing.status_code == 422 and missing.json()["errors"] == {"parameters.market": "is required"}
    assert client.get("/api/jobs", headers=A).json()["items"] == []


def test_an_unknown_template_or_version_is_a_422_naming_it(client: TestClient) -> None:
    r = client.post("/api/jobs/schedule", json=from_template(), headers=A)
    assert r.status_code == 422 and r.json()["errors"] == {"template": "not found"}
    client.post("/api/templates", json=template(), headers=A)
    r = client.post("/api/jobs/schedule", json=from_template(version=7), headers=A)
    assert r.status_code == 422 and r.json()["errors"] == {"version": "not found"}
    r = client.post("/api/jobs/schedule", json=from_template(name=""), headers=A)
    assert r.status_code == 422 and "name" in r.json()["errors"]
    r = client.post("/api/jobs/schedule", json=from_template(extra=1), headers=A)
    assert r.status_code == 422 and "extra" in r.json()["errors"]


def test_an_update_is_a_new_version_and_jobs_made_earlier_keep_theirs(client: TestClient) -> None:
    client.post("/api/templates", json=template(), headers=A)
    first = client.post("/api/jobs/schedule", json=from_template(), headers=A).json()["job_id"]
    changed = template(timeout="PT1H")
    changed["parameters"][2]["default"] = 20
    r = client.put("/api/templates/train-model", json=changed, headers={**A, "If-Match": '"v1"'})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.headers["ETag"] == '"v2"'

    stale = client.put("/api/templates/train-model", json=changed, headers={**A, "If-Match": '"v1"'})
    assert stale.status_code == 412
    renamed = client.put("/api/templates/train-model", json=template(name="other"), headers=A)
    assert renamed.status_code == 422 and renamed.json()["errors"] == {"name": "must be 'train-model'"}
    assert client.put("/api/templates/missing", json=template(name="missing"), headers=A).status_code == 404

    old = client.get("/api/templates/train-model?version=1", headers=A).json()
    assert old["version"] == 1 and old["timeout"] == "PT4H"
    assert client.get("/api/templates/train-model?version=3", headers=A).status_code == 404

    second = client.post("/api/jobs/schedule", json=from_template(), headers=A).json()["job_id"]
    one, two = (client.get(f"/api/jobs/{j}", headers=A).json() for j in (first, second))
    assert (one["template"]["version"], one["timeout"], one["task"]["parameters"]["epochs"]) == (
        1,
        "PT4H",
        "10",
    )
    assert (two["template"]["version"], two["timeout"], two["task"]["parameters"]["epochs"]) == (
        2,
        "PT1H",
        "20",
    )
    pinned = client.post("/api/jobs/schedule", json=from_template(version=1), headers=A).json()
    assert pinned["job"]["template"]["version"] == 1


def test_concurrent_updates_each_make_a_version(client: TestClient) -> None:
    client.post("/api/templates", json=template(), headers=A)
    codes: list[int] = []

    def update(n: int) -> None:
        codes.append(
            client.put(
                "/api/templates/train-model", json=template(description=f"edit {n}"), headers=A
            ).status_code
        )

    threads = [threading.Thread(target=update, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 4
    assert client.get("/api/templates/train-model", headers=A).json()["version"] == 5
    seen = {
        client.get(f"/api/templates/train-model?version={v}", headers=A).json()["description"]
        for v in range(2, 6)
    }
    assert seen == {f"edit {n}" for n in range(4)}


def test_a_tenant_sees_only_its_own_templates(client: TestClient) -> None:
    client.post("/api/templates", json=template(), headers=A)
    assert client.get("/api/templates", headers=B).json()["items"] == []
    assert client.get("/api/templates/train-model", headers=B).status_code == 404
    r = client.post("/api/jobs/schedule", json=from_template(), headers=B)
    assert r.status_code == 422 and r.json()["errors"] == {"template": "not found"}
    assert client.put("/api/templates/train-model", json=template(), headers=B).status_code == 404
    assert client.post("/api/templates", json=template(), headers=B).status_code == 201  # its own namespace


def test_strict_json_types_apply_to_template_bodies(client: TestClient) -> None:
    r = client.post(
        "/api/templates",
        json=template(parameters=[{"name": "m", "type": "int", "required": "yes"}]),
        headers=A,
    )
    assert r.status_code == 422 and "parameters.0.required" in r.json()["errors"]
