"""The HTTP API over the ASGI app, on Azurite: every endpoint, every error, tenancy, concurrency."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devstack.service_bus_twin import ServiceBusTwin
from functions.http_api import create_api
from shared.adapters.azure_table import AzureTable
from shared.adapters.databricks import Databricks
from shared.api.identity import encode_principal
from shared.bootstrap import Services, Tables, build
from shared.config import Settings

pytestmark = pytest.mark.azurite

_suffix = itertools.count(1)
PROBLEM = "application/problem+json"


def principal(
    tenants: list[str], *, admin: bool = False, oid: str = "user-1", name: str = "User One"
) -> dict:
    roles = [f"Scheduler.Tenant.{t}" for t in tenants] + (["Scheduler.Admin"] if admin else [])
    return {"X-MS-CLIENT-PRINCIPAL": encode_principal(oid, name, roles)}


A = principal(["team-a"], oid="alice", name="Alice")
B = principal(["team-b"], oid="bob", name="Bob")
ADMIN = principal([], admin=True, oid="root", name="Admin")


def body(**overrides: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "name": "nightly-churn-training",
        "job_type": "model_training",
        "description": "optional",
        "task": {"kind": "databricks_job", "job_id": 123, "parameters": {"run_date": "{{scheduled_date}}"}},
        "schedule": {"cron": "30 1 * * *", "timezone": "America/New_York", "start_at": None, "end_at": None},
        "retry": {
            "max_attempts": 3,
            "initial_delay": "PT1M",
            "backoff_coefficient": 2.0,
            "max_delay": "PT30M",
            "retry_on_timeout": False,
        },
        "timeout": "PT2H",
        "overlap": "skip",
        "misfire": "fire_once",
        "priority": "normal",
        "tags": ["churn"],
    }
    job.update(overrides)
    return job


def make_services(azure_service: Any, databricks: Databricks | None = None, **settings: Any) -> Services:
    n = next(_suffix)
    tables = Tables(
        jobs=AzureTable(azure_service, f"apijobs{n}"),
        runs=AzureTable(azure_service, f"apiruns{n}"),
    )
    services = build(
        Settings(**{"AUTH_MODE": "development", **settings}),
        tables=tables,
        sender=ServiceBusTwin(),
        databricks=databricks,
    )
    services.ensure_tables()
    return services


@pytest.fixture
def services(azure_service: Any) -> Services:
    return make_services(azure_service)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_api(lambda: services)) as c:
        yield c


def create(client: TestClient, headers: dict | None = None, **overrides: Any) -> dict[str, Any]:
    r = client.post("/api/jobs/schedule", json=body(**overrides), headers=headers or A)
    assert r.status_code == 201, r.text
    return r.json()


def due_rows(services: Services) -> list[str]:
    return [row.rk for row in services.tables.runs.query(None) if row.rk.startswith("d~")]


def all_rows(services: Services) -> list[tuple[str, str, str]]:
    return [(r.pk, r.rk, r.etag) for t in services.tables.all() for r in t.query(None)]


# --- create, read, list -------------------------------------------------------------------------


def test_schedule_answers_201_with_the_contract_fields(client: TestClient, services: Services) -> None:
    r = client.post("/api/jobs/schedule", json=body(), headers=A)
    assert r.status_code == 201
    out = r.json()
    assert set(out) >= {"job_id", "message", "status", "next_fire_at"}
    assert out["status"] == "ACTIVE"
    assert out["next_fire_at"].endswith("Z")
    assert "nightly-churn-training" in out["message"]
    assert r.headers["location"] == f"/api/jobs/{out['job_id']}"
    assert due_rows(services) == [f"d~{_ms(out['next_fire_at']):013d}~team-a~{out['job_id']}"]


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_get_returns_the_definition_and_an_etag(client: TestClient) -> None:
    job_id = create(client)["job_id"]
    r = client.get(f"/api/jobs/{job_id}", headers=A)
    assert r.status_code == 200
    job = r.json()
    assert job["job_id"] == job_id and job["tenant"] == "team-a"
    assert job["task"] == body()["task"]
    assert job["retry"]["initial_delay"] == "PT1M" and job["timeout"] == "PT2H"
    assert job["created_by"] == {"id": "alice", "name": "Alice"}
    assert r.headers["etag"] == '"v1"'


def test_list_filters_sorts_searches_and_pages(client: TestClient) -> None:
    create(client, name="b-train", tags=["churn"])
    create(client, name="a-etl", job_type="data_processing", tags=["sales"], description="Loads SALES data")
    create(client, name="c-pipe", job_type="pipeline", tags=["churn", "sales"])
    r = client.get("/api/jobs", params={"sort": "name"}, headers=A)
    assert [i["name"] for i in r.json()["items"]] == ["a-etl", "b-train", "c-pipe"]
    item = r.json()["items"][0]
    assert {"job_id", "name", "job_type", "schedule", "status", "next_fire_at", "last_run_state"} <= set(item)
    r = client.get("/api/jobs", params={"sort": "-name", "tag": "churn"}, headers=A)
    assert [i["name"] for i in r.json()["items"]] == ["c-pipe", "b-train"]
    r = client.get("/api/jobs", params={"job_type": "data_processing"}, headers=A)
    assert [i["name"] for i in r.json()["items"]] == ["a-etl"]
    r = client.get("/api/jobs", params={"q": "sales"}, headers=A)
    assert sorted(i["name"] for i in r.json()["items"]) == ["a-etl", "c-pipe"]
    r = client.get("/api/jobs", params={"sort": "name", "limit": 2}, headers=A)
    assert [i["name"] for i in r.json()["items"]] == ["a-etl", "b-train"]
    token = r.json()["continuation"]
    r = client.get("/api/jobs", params={"sort": "name", "limit": 2, "continuation": token}, headers=A)
    assert [i["name"] for i in r.json()["items"]] == ["c-pipe"] and r.json()["continuation"] is None


@pytest.mark.parametrize(
    "param",
    [
        pytest.param({"tag": "churn' or PartitionKey ne 'x"}, id="tag"),
        pytest.param({"q": "x') or (RowKey ne '"}, id="text-search"),
        pytest.param(
            {"continuation": "eyJzIjoiLWNyZWF0ZWRfYXQiLCJrIjoiJyBvciAnMScgZXEgJzEifQ"}, id="continuation"
        ),
    ],
)
def test_odata_injection_in_a_filter_matches_nothing(client: TestClient, param: dict) -> None:
    create(client)
    create(client, headers=B)
    r = client.get("/api/jobs", params=param, headers=A)
    assert r.status_code in (200, 422)
    if r.status_code == 200:
        assert r.json()["items"] == []


@pytest.mark.parametrize(
    "param",
    [
        pytest.param({"job_type": "model_training' or job_type ne '"}, id="job-type"),
        pytest.param({"status": "ACTIVE' or status ne '"}, id="status"),
        pytest.param({"sort": "name desc"}, id="sort"),
        pytest.param({"limit": 501}, id="limit-too-big"),
        pytest.param({"limit": 0}, id="limit-zero"),
    ],
)
def test_bad_list_parameters_are_422(client: TestClient, param: dict) -> None:
    r = client.get("/api/jobs", params=param, headers=A)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert set(r.json()["errors"]) == set(param)


# --- bad input changes nothing ------------------------------------------------------------------

FUTURE = (datetime.now(UTC) + timedelta(days=30)).isoformat()
PAST = (datetime.now(UTC) - timedelta(days=1)).isoformat()

BAD_BODIES = [
    pytest.param({"schedule": {"cron": "61 * * * *"}}, 422, "schedule.cron", id="invalid-cron"),
    pytest.param({"schedule": {"cron": "* * * *"}}, 422, "schedule.cron", id="four-field-cron"),
    pytest.param(
        {"schedule": {"cron": "0 1 * * *", "timezone": "Moon/Base"}}, 422, "schedule.timezone", id="zone"
    ),
    pytest.param(
        {"schedule": {"cron": "0 1 * * *", "start_at": FUTURE, "end_at": PAST}},
        422,
        "schedule",
        id="end-before-start",
    ),
    pytest.param({"schedule": {"at": PAST}}, 422, "schedule.at", id="at-in-the-past"),
    pytest.param(
        {"schedule": {"cron": "0 1 * * *", "end_at": PAST}}, 422, "schedule.end_at", id="ended-already"
    ),
    pytest.param({"schedule": {"cron": "0 0 30 2 *"}}, 422, "schedule", id="never-fires"),
    pytest.param({"overlap": "sometimes"}, 422, "overlap", id="unknown-overlap"),
    pytest.param({"misfire": "later"}, 422, "misfire", id="unknown-misfire"),
    pytest.param({"priority": "critical"}, 422, "priority", id="unknown-priority"),
    pytest.param({"job_type": "training"}, 422, "job_type", id="unknown-job-type"),
    pytest.param({"task": {"kind": "spark"}}, 422, "task", id="unknown-task-kind"),
    pytest.param({"task": {"kind": "databricks_job", "job_id": "abc"}}, 422, "task.job_id", id="bad-job-id"),
    pytest.param({"name": ""}, 422, "name", id="empty-name"),
    pytest.param({"unexpected": 1}, 422, "unexpected", id="unknown-field"),
    pytest.param({"timeout": "two hours"}, 422, "timeout", id="bad-duration"),
]


@pytest.mark.parametrize(("overrides", "status", "field"), BAD_BODIES)
def test_bad_input_is_a_problem_and_writes_nothing(
    client: TestClient, services: Services, overrides: dict, status: int, field: str
) -> None:
    job_id = create(client)["job_id"]
    before = all_rows(services)
    for method, url in [("POST", "/api/jobs/schedule"), ("PUT", f"/api/jobs/{job_id}")]:
        r = client.request(method, url, json=body(**overrides), headers=A)
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == PROBLEM
        problem = r.json()
        assert {"type", "title", "status", "detail"} <= set(problem) and problem["status"] == status
        assert field in problem["errors"], problem
    assert all_rows(services) == before


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        pytest.param(b'{"name": ', {"content-type": "application/json"}, 400, id="malformed-json"),
        pytest.param(b"[1, 2]", {"content-type": "application/json"}, 422, id="not-an-object"),
        pytest.param(b"name=x", {"content-type": "application/x-www-form-urlencoded"}, 415, id="form-body"),
        pytest.param(b"{" + b" " * 40_000 + b"}", {"content-type": "application/json"}, 413, id="oversized"),
    ],
)
def test_unreadable_bodies_are_4xx_and_write_nothing(
    client: TestClient, services: Services, content: bytes, headers: dict, status: int
) -> None:
    before = all_rows(services)
    r = client.post("/api/jobs/schedule", content=content, headers={**A, **headers})
    assert r.status_code == status and r.headers["content-type"] == PROBLEM
    assert r.json()["detail"]
    assert all_rows(services) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/jobs/{id}"),
        ("PUT", "/api/jobs/{id}"),
        ("DELETE", "/api/jobs/{id}"),
        ("POST", "/api/jobs/{id}/pause"),
        ("POST", "/api/jobs/{id}/resume"),
        ("GET", "/api/jobs/{id}/audit"),
    ],
)
@pytest.mark.parametrize("job_id", ["01JUNKNOWNJOB0000000000000", "not-an-id", "~in+~00"])
def test_unknown_ids_are_404(client: TestClient, method: str, path: str, job_id: str) -> None:
    r = client.request(method, path.format(id=job_id), headers=A, json=body() if method == "PUT" else None)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


def test_unknown_routes_are_problem_404(client: TestClient) -> None:
    r = client.get("/api/nothing-here", headers=A)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


# --- edit, pause, resume, cancel, audit -----------------------------------------------------------


def test_edit_bumps_the_version_and_moves_the_due_row(client: TestClient, services: Services) -> None:
    created = create(client)
    job_id = created["job_id"]
    r = client.put(f"/api/jobs/{job_id}", json=body(schedule={"cron": "*/5 * * * *"}), headers=A)
    assert r.status_code == 200
    out = r.json()
    assert out["version"] == 2 and out["job"]["schedule"]["cron"] == "*/5 * * * *"
    assert r.headers["etag"] == '"v2"'
    assert out["next_fire_at"] != created["next_fire_at"]
    assert due_rows(services) == [f"d~{_ms(out['next_fire_at']):013d}~team-a~{job_id}"]


def test_if_match_protects_against_lost_updates(client: TestClient) -> None:
    job_id = create(client)["job_id"]
    assert (
        client.put(f"/api/jobs/{job_id}", json=body(name="v2"), headers={**A, "If-Match": '"v1"'}).status_code
        == 200
    )
    r = client.put(f"/api/jobs/{job_id}", json=body(name="stale"), headers={**A, "If-Match": '"v1"'})
    assert r.status_code == 412 and r.headers["content-type"] == PROBLEM
    assert client.get(f"/api/jobs/{job_id}", headers=A).json()["name"] == "v2"
    bad = client.put(f"/api/jobs/{job_id}", json=body(), headers={**A, "If-Match": "yesterday"})
    assert bad.status_code == 422


def test_pause_and_resume(client: TestClient, services: Services) -> None:
    job_id = create(client, schedule={"cron": "0 * * * *"})["job_id"]
    r = client.post(f"/api/jobs/{job_id}/pause", headers=A)
    assert r.status_code == 200 and r.json()["status"] == "PAUSED"
    assert due_rows(services) == []
    again = client.post(f"/api/jobs/{job_id}/pause", headers=A)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    r = client.post(f"/api/jobs/{job_id}/resume", headers=A)
    assert r.status_code == 200 and r.json()["status"] == "ACTIVE"
    next_fire = datetime.fromisoformat(r.json()["next_fire_at"].replace("Z", "+00:00"))
    assert timedelta(0) < next_fire - datetime.now(UTC) <= timedelta(hours=1)
    assert len(due_rows(services)) == 1


def test_cancel_stops_fires_and_can_be_repeated(client: TestClient, services: Services) -> None:
    job_id = create(client)["job_id"]
    r = client.delete(f"/api/jobs/{job_id}", headers=A)
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED" and r.json()["next_fire_at"] is None
    assert due_rows(services) == []
    assert client.delete(f"/api/jobs/{job_id}", headers=A).json()["status"] == "CANCELLED"
    assert client.put(f"/api/jobs/{job_id}", json=body(), headers=A).status_code == 409
    assert client.post(f"/api/jobs/{job_id}/resume", headers=A).status_code == 409


def test_audit_says_who_changed_what_and_when(client: TestClient) -> None:
    job_id = create(client)["job_id"]
    editor = principal(["team-a"], oid="carol", name="Carol")
    client.put(f"/api/jobs/{job_id}", json=body(timeout="PT3H"), headers=editor)
    client.post(f"/api/jobs/{job_id}/pause", headers=A)
    r = client.get(f"/api/jobs/{job_id}/audit", headers=A)
    entries = r.json()["items"]
    assert [e["action"] for e in entries] == ["pause", "update", "create"]
    update = entries[1]
    assert update["actor"] == {"id": "carol", "name": "Carol"}
    assert update["changes"] == [{"field": "definition.timeout", "before": "PT2H", "after": "PT3H"}]
    assert update["at"].endswith("Z")


# --- preview, health, docs -----------------------------------------------------------------------


def test_preview_flags_dst_and_starts_at_a_future_start(client: TestClient) -> None:
    start = f"{datetime.now(UTC).year + 1}-03-01T00:00:00Z"
    r = client.post(
        "/api/schedules/preview",
        json={
            "schedule": {"cron": "30 2 * * *", "timezone": "America/New_York", "start_at": start},
            "count": 20,
        },
        headers=A,
    )
    assert r.status_code == 200
    times = r.json()["fire_times"]
    assert len(times) == 20 and times[0]["utc"].startswith(start[:10])
    shifted = [t for t in times if t["dst"] == "shifted"]
    assert len(shifted) == 1 and shifted[0]["local"].endswith("03:00:00-04:00")


def test_preview_rejects_bad_schedules_and_counts(client: TestClient) -> None:
    r = client.post("/api/schedules/preview", json={"schedule": {"cron": "bad"}, "count": 5}, headers=A)
    assert r.status_code == 422 and "schedule.cron" in r.json()["errors"]
    r = client.post(
        "/api/schedules/preview", json={"schedule": {"cron": "* * * * *"}, "count": 1000}, headers=A
    )
    assert r.status_code == 422 and "count" in r.json()["errors"]


def test_health_docs_and_openapi(client: TestClient) -> None:
    health = client.get("/api/health").json()
    assert {k: health[k] for k in ("status", "storage", "version")} == {
        "status": "ok",
        "storage": "ok",
        "version": "0.1.0",
    }
    assert set(health["dead_letters"]) == {"launch", "poll", "notify"}
    spec = client.get("/api/openapi.json").json()
    assert {
        "/api/jobs/schedule",
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/pause",
        "/api/jobs/{job_id}/resume",
        "/api/jobs/{job_id}/audit",
        "/api/schedules/preview",
        "/api/health",
    } <= set(spec["paths"])
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "/api/docs/static/swagger-ui-bundle.js" in docs.text
    assert client.get("/api/docs/static/swagger-ui-bundle.js").status_code == 200


# --- identity and tenancy ------------------------------------------------------------------------


def test_another_tenant_gets_404_for_every_verb(client: TestClient) -> None:
    job_id = create(client)["job_id"]
    for method, path in [
        ("GET", f"/api/jobs/{job_id}"),
        ("PUT", f"/api/jobs/{job_id}"),
        ("DELETE", f"/api/jobs/{job_id}"),
        ("POST", f"/api/jobs/{job_id}/pause"),
        ("POST", f"/api/jobs/{job_id}/resume"),
        ("GET", f"/api/jobs/{job_id}/audit"),
    ]:
        r = client.request(method, path, headers=B, json=body() if method == "PUT" else None)
        assert r.status_code == 404, (method, path)
    assert client.get("/api/jobs", headers=B).json()["items"] == []
    assert client.get(f"/api/jobs/{job_id}", headers=A).json()["status"] == "ACTIVE"


def test_naming_a_tenant_you_are_not_in_is_403(client: TestClient) -> None:
    r = client.get("/api/jobs", headers={**B, "X-Scheduler-Tenant": "team-a"})
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM


def test_a_member_of_several_tenants_names_one(client: TestClient) -> None:
    both = principal(["team-a", "team-b"])
    assert client.get("/api/jobs", headers=both).status_code == 422
    job_id = create(client, headers={**both, "X-Scheduler-Tenant": "team-b"})["job_id"]
    assert client.get(f"/api/jobs/{job_id}", headers=both).json()["tenant"] == "team-b"


def test_an_admin_sees_every_tenant(client: TestClient) -> None:
    job_id = create(client)["job_id"]
    assert client.get(f"/api/jobs/{job_id}", headers=ADMIN).json()["tenant"] == "team-a"
    listed = client.get("/api/jobs", headers={**ADMIN, "X-Scheduler-Tenant": "team-a"}).json()["items"]
    assert [i["job_id"] for i in listed] == [job_id]
    assert client.post(f"/api/jobs/{job_id}/pause", headers=ADMIN).json()["status"] == "PAUSED"


def test_me_says_who_the_caller_is_and_their_tenants(client: TestClient) -> None:
    both = principal(["team-b", "team-a"], oid="dana", name="Dana")
    assert client.get("/api/me", headers=both).json() == {
        "actor": {"id": "dana", "name": "Dana"},
        "tenants": ["team-a", "team-b"],
        "admin": False,
        "pools_admin": True,  # the local stack (development mode) lets anyone configure pools
    }
    assert client.get("/api/me", headers=ADMIN).json()["admin"] is True
    assert client.get("/api/me").json() == {
        "actor": {"id": "dev-user", "name": "Developer"},
        "tenants": ["dev"],
        "admin": False,
        "pools_admin": True,
    }


def test_app_service_mode_trusts_the_principal_only_behind_app_service_auth(
    azure_service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = make_services(azure_service, AUTH_MODE="app_service")
    client = TestClient(create_api(lambda: services))
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    assert client.get("/api/jobs", headers=A).status_code == 401
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    assert client.get("/api/jobs", headers=A).status_code == 200
    assert client.get("/api/jobs").status_code == 401
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/jobs", headers={"X-MS-CLIENT-PRINCIPAL": "%%%"}).status_code == 401


def test_function_key_mode_acts_in_the_named_tenant(azure_service: Any) -> None:
    services = make_services(azure_service, AUTH_MODE="function_key")
    client = TestClient(create_api(lambda: services))
    assert client.get("/api/jobs").status_code == 422
    headers = {"X-Scheduler-Tenant": "team-a", "X-Scheduler-User": "alice@contoso.com"}
    r = client.post("/api/jobs/schedule", json=body(), headers=headers)
    assert r.status_code == 201
    assert r.json()["job"]["created_by"]["name"] == "function-key (alice@contoso.com)"
    assert (
        client.get(f"/api/jobs/{r.json()['job_id']}", headers={"X-Scheduler-Tenant": "team-b"}).status_code
        == 404
    )


def test_development_mode_has_a_default_principal(client: TestClient) -> None:
    r = client.post("/api/jobs/schedule", json=body())
    assert r.status_code == 201 and r.json()["job"]["tenant"] == "dev"


# --- concurrency ---------------------------------------------------------------------------------


def test_concurrent_edits_lose_nothing(client: TestClient) -> None:
    job_id = create(client)["job_id"]
    results: list[int] = []
    lock = threading.Lock()

    def edit(i: int) -> None:
        r = client.put(f"/api/jobs/{job_id}", json=body(description=f"edit {i}"), headers=A)
        with lock:
            results.append(r.status_code)

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) <= {200, 409}
    succeeded = results.count(200)
    assert succeeded >= 1
    job = client.get(f"/api/jobs/{job_id}", headers=A).json()
    assert job["version"] == 1 + succeeded
    audit = client.get(f"/api/jobs/{job_id}/audit", params={"limit": 50}, headers=A).json()["items"]
    assert len(audit) == 1 + succeeded


def test_concurrent_edits_of_the_same_version_let_exactly_one_win(client: TestClient) -> None:
    job_id = create(client)["job_id"]
    results: list[int] = []
    barrier = threading.Barrier(4)

    def edit(i: int) -> None:
        barrier.wait()
        r = client.put(
            f"/api/jobs/{job_id}", json=body(description=f"edit {i}"), headers={**A, "If-Match": '"v1"'}
        )
        results.append(r.status_code)

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 412, 412, 412]
    assert client.get(f"/api/jobs/{job_id}", headers=A).json()["version"] == 2


# --- run history --------------------------------------------------------------------------------


def test_run_history_shows_each_occurrence(client: TestClient, services: Services) -> None:
    job_id = create(client, schedule={"every": "PT1M"})["job_id"]
    services.ticker.tick()  # fires what is due within the lookahead: the next one or two minutes
    r = client.get(f"/api/jobs/{job_id}/runs", headers=A)
    assert r.status_code == 200
    runs = r.json()["items"]
    assert runs and all(run["state"] == "SCHEDULED" and run["trigger"] == "schedule" for run in runs)
    assert [run["scheduled_for"] for run in runs] == sorted(
        (run["scheduled_for"] for run in runs), reverse=True
    )
    newest = runs[0]
    assert newest["run_id"] == f"{job_id}_{newest['run_key']}"
    one = client.get(f"/api/runs/{newest['run_id']}", headers=A)
    assert one.status_code == 200 and one.json()["scheduled_for"] == newest["scheduled_for"]
    assert "SCHEDULED" in one.json()["transitions"]
    assert (
        client.get(f"/api/jobs/{job_id}/runs", params={"state": "SKIPPED"}, headers=A).json()["items"] == []
    )
    assert client.get(f"/api/runs/{newest['run_id']}", headers=B).status_code == 404
    assert client.get(f"/api/jobs/{job_id}/runs", headers=B).status_code == 404
    paged = client.get(f"/api/jobs/{job_id}/runs", params={"limit": 1}, headers=A).json()
    assert len(paged["items"]) == 1 and (paged["continuation"] is not None) == (len(runs) > 1)


@pytest.mark.parametrize("run_id", ["nope", "01JUNKNOWNJOB0000000000000_s-1", "01JUNKNOWNJOB0000000000000_x"])
def test_unknown_runs_are_404(client: TestClient, run_id: str) -> None:
    r = client.get(f"/api/runs/{run_id}", headers=A)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


def test_run_state_filter_must_be_a_state(client: TestClient) -> None:
    job_id = create(client)["job_id"]
    r = client.get(f"/api/jobs/{job_id}/runs", params={"state": "DONE' or state ne '"}, headers=A)
    assert r.status_code == 422
