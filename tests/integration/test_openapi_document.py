"""What /api/openapi.json says: each operation's errors, the Problem schema, the task's discriminated
union, the rules JSON Schema cannot express (and that the server enforces them with 422), and what
DELETE means. The document is what the Studio platform generates its client from.

In process, on in-memory tables (tests/world.py); test_openapi_conformance.py checks the answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.http_api import create_api
from shared.api.identity import encode_principal
from shared.api.openapi import JOB_EXAMPLES, PREVIEW_EXAMPLES, RULES
from shared.api.schemas import PreviewIn, Problem
from shared.domain.job import JobDefinition
from tests.fakes.memory_table import InMemoryTable
from tests.world import World

PROBLEM = "application/problem+json"
IDENTITY = {401, 403, 422}  # the caller's identity and tenant
STORAGE = {503}
BY_ID = IDENTITY | STORAGE | {404}
BODY = {400, 413, 415}

# The errors each operation can give: restated here, so a change to what a route declares is a
# change to this table too (shared/api/problems.py and identity.py say what is raised where).
ERRORS: dict[tuple[str, str], set[int]] = {
    ("get", "/api/health"): set(),  # its 503 is a HealthOut, not a problem
    ("post", "/api/jobs/schedule"): BODY | IDENTITY | STORAGE,
    ("get", "/api/jobs"): IDENTITY | STORAGE,
    ("get", "/api/jobs/{job_id}"): BY_ID,
    ("put", "/api/jobs/{job_id}"): BODY | BY_ID | {409, 412},
    ("delete", "/api/jobs/{job_id}"): BY_ID | {409},
    ("post", "/api/jobs/{job_id}/pause"): BY_ID | {409},
    ("post", "/api/jobs/{job_id}/resume"): BY_ID | {409},
    ("post", "/api/jobs/{job_id}/replay"): BY_ID | {409},
    ("post", "/api/jobs/{job_id}/notifications/test"): BY_ID | {409},
    ("get", "/api/analytics"): IDENTITY | STORAGE,
    ("get", "/api/jobs/{job_id}/audit"): BY_ID,
    ("get", "/api/jobs/{job_id}/runs"): BY_ID,
    ("get", "/api/runs/{run_id}"): BY_ID,
    ("post", "/api/jobs/{job_id}/run"): BY_ID | {409},
    ("post", "/api/jobs/{job_id}/trigger"): BODY | BY_ID | {409},
    ("post", "/api/jobs/{job_id}/retry"): BY_ID | {409},
    ("post", "/api/runs/{run_id}/retry"): BY_ID | {409},
    ("post", "/api/runs/{run_id}/cancel"): BY_ID | {409},
    ("post", "/api/schedules/preview"): BODY | {401, 422},  # no storage, no tenant
    ("get", "/api/me"): {401, 422},  # no storage; 422: a function-key call without a tenant
    ("get", "/api/pools"): IDENTITY | STORAGE,
    ("get", "/api/pools/{name}"): BY_ID,
    ("put", "/api/pools/{name}"): BODY | IDENTITY | STORAGE | {409},
    ("get", "/api/queue"): BY_ID,  # 404: the pool asked for does not exist
    ("put", "/api/runs/{run_id}/priority"): BODY | BY_ID | {409},
    ("post", "/api/runs/{run_id}/repair"): BODY | BY_ID | {409},
    ("post", "/api/templates"): BODY | IDENTITY | STORAGE | {409},
    ("get", "/api/templates"): IDENTITY | STORAGE,
    ("get", "/api/templates/{name}"): BY_ID,
    ("put", "/api/templates/{name}"): BODY | BY_ID | {409, 412},
    ("post", "/api/batches"): BODY | IDENTITY | STORAGE | {409},
    ("get", "/api/batches/{batch_id}"): BY_ID,
    ("post", "/api/batches/{batch_id}/cancel"): BY_ID | {409},
    ("post", "/api/batches/{batch_id}/retry-failed"): BY_ID | {409},
}


@pytest.fixture(scope="module")
def world() -> World:
    return World(InMemoryTable, settings={"AUTH_MODE": "development"})


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_api(lambda: world.s)) as c:
        yield c


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def test_every_operation_lists_the_errors_it_can_give(document: dict[str, Any]) -> None:
    listed = {
        (method, path): {
            int(s) for s in op["responses"] if int(s) >= 400 and method + path != "get/api/health"
        }
        for method, path, op in operations(document)
    }
    assert listed == ERRORS


def test_every_error_is_a_problem_and_a_503_says_when_to_retry(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            if int(status) < 400 or path == "/api/health":
                continue
            where = f"{method.upper()} {path} {status}"
            assert response["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}, (
                where
            )
            assert response["description"], where
            if status == "503":
                assert response["headers"]["Retry-After"]["required"] is True, where
    health = document["paths"]["/api/health"]["get"]["responses"]
    assert health["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HealthOut"
    }


def test_the_problem_schema(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert problem["properties"]["errors"]["type"] == "object"
    assert problem["properties"]["errors"]["additionalProperties"] == {"type": "string"}


def test_fastapi_s_own_422_is_nowhere(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    assert "HTTPValidationError" not in text and '"ValidationError"' not in text
    for method, path, op in operations(document):
        if "422" in op["responses"]:
            assert list(op["responses"]["422"]["content"]) == [PROBLEM], f"{method} {path}"


def test_success_responses_keep_their_models(document: dict[str, Any]) -> None:
    def model(path: str, method: str, status: str) -> str:
        content = document["paths"][path][method]["responses"][status]["content"]
        return str(content["application/json"]["schema"]["$ref"]).rsplit("/", 1)[-1]

    assert model("/api/jobs/schedule", "post", "201") == "ScheduledOut"
    assert model("/api/jobs/{job_id}", "get", "200") == "JobOut"
    assert model("/api/jobs/{job_id}", "put", "200") == "ChangedOut"
    assert model("/api/jobs/{job_id}", "delete", "200") == "ChangedOut"
    assert model("/api/jobs/{job_id}/run", "post", "202") == "RunOut"
    assert model("/api/health", "get", "200") == "HealthOut"


def test_the_task_is_a_one_of_with_a_discriminator_mapping(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for owner in ("JobDefinition", "JobOut"):
        task = schemas[owner]["properties"]["task"]
        assert task["oneOf"] == [
            {"$ref": "#/components/schemas/DatabricksJobTask"},
            {"$ref": "#/components/schemas/DatabricksRunTask"},
            {"$ref": "#/components/schemas/PipelineTask"},
        ]
        assert task["discriminator"] == {
            "propertyName": "kind",
            "mapping": {
                "databricks_job": "#/components/schemas/DatabricksJobTask",
                "databricks_run": "#/components/schemas/DatabricksRunTask",
                "pipeline": "#/components/schemas/PipelineTask",
            },
        }
    step_task = schemas["Step"]["properties"]["task"]  # a step runs one Databricks task, never a pipeline
    assert [ref["$ref"].rsplit("/", 1)[1] for ref in step_task["oneOf"]] == [
        "DatabricksJobTask",
        "DatabricksRunTask",
    ]
    kinds = (
        ("DatabricksJobTask", "databricks_job"),
        ("DatabricksRunTask", "databricks_run"),
        ("PipelineTask", "pipeline"),
    )
    for name, kind in kinds:
        assert schemas[name]["properties"]["kind"]["const"] == kind and "kind" in schemas[name]["required"]


def test_the_rules_json_schema_cannot_express_are_described(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name, rules in RULES.items():
        for rule in rules:
            assert rule in schemas[name]["description"], (name, rule)
    assert "exactly one of `cron`, `at` or `every`" in schemas["ScheduleSpec"]["description"]
    assert "exactly one of `num_workers` or `autoscale`" in schemas["ClusterSpec"]["description"]


def test_delete_says_it_cancels_and_can_be_repeated(document: dict[str, Any]) -> None:
    text = document["paths"]["/api/jobs/{job_id}"]["delete"]["description"]
    for words in (
        "nothing is deleted",
        "CANCELLED",
        "stays\nreadable",
        "active runs are cancelled",
        "Repeatable",
    ):
        assert words in text


def test_the_examples_are_valid_requests() -> None:
    for example in JOB_EXAMPLES.values():
        JobDefinition.model_validate(example["value"])
    for example in PREVIEW_EXAMPLES.values():
        PreviewIn.model_validate(example["value"])


# --- the server enforces what the document describes, and answers with a problem ------------------


def job(**overrides: Any) -> dict[str, Any]:
    return {**JOB_EXAMPLES["databricks_job"]["value"], **overrides}


def run_task(**fields: Any) -> dict[str, Any]:
    return {
        "kind": "databricks_run",
        "notebook_path": "/Repos/etl/load",
        "existing_cluster_id": "0101-x",
        **fields,
    }


CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2"}
CROSS_FIELD = [
    pytest.param({"schedule": {"timezone": "UTC"}}, "schedule", id="no-cron-at-every"),
    pytest.param({"schedule": {"cron": "0 1 * * *", "every": "PT1H"}}, "schedule", id="cron-and-every"),
    pytest.param({"schedule": {"every": "PT30S"}}, "schedule", id="every-under-a-minute"),
    pytest.param(
        {"schedule": {"cron": "0 1 * * *", "anchor": "2026-01-01T00:00:00Z"}}, "schedule", id="anchor"
    ),
    pytest.param(
        {"task": run_task(cluster={**CLUSTER, "num_workers": 2})}, "task", id="cluster-and-existing"
    ),
    pytest.param(
        {"task": run_task(existing_cluster_id=None, cluster=CLUSTER)},
        "task.cluster",
        id="no-workers-no-autoscale",
    ),
    pytest.param(
        {
            "task": run_task(
                existing_cluster_id=None,
                cluster={**CLUSTER, "num_workers": 2, "autoscale": {"min_workers": 1, "max_workers": 2}},
            )
        },
        "task.cluster",
        id="workers-and-autoscale",
    ),
    pytest.param(
        {
            "task": run_task(
                existing_cluster_id=None,
                cluster={**CLUSTER, "autoscale": {"min_workers": 3, "max_workers": 2}},
            )
        },
        "task.cluster.autoscale",
        id="autoscale-upside-down",
    ),
    pytest.param({"task": run_task(python_file="/x.py")}, "task", id="notebook-and-file"),
    pytest.param({"task": run_task(parameters=["a"])}, "task", id="notebook-with-a-list"),
    pytest.param({"retry": {"initial_delay": "PT1H", "max_delay": "PT1M"}}, "retry", id="cap-below-start"),
]


@pytest.mark.parametrize(("overrides", "field"), CROSS_FIELD)
def test_a_broken_cross_field_rule_is_a_422_problem(client: TestClient, overrides: dict, field: str) -> None:
    for method, url in (("POST", "/api/jobs/schedule"), ("PUT", "/api/jobs/01JUNKNOWNJOB0000000000000")):
        r = client.request(method, url, json=job(**overrides))
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
        problem = Problem.model_validate(r.json())
        assert problem.code == "invalid_input" and field in problem.errors, problem


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param(
            {"record_skipped_while_paused": 0}, "record_skipped_while_paused", id="number-for-boolean"
        ),
        pytest.param(
            {"task": {"kind": "databricks_job", "job_id": "123"}}, "task.job_id", id="string-for-integer"
        ),
        pytest.param({"retry": {"max_attempts": 2.0}}, "retry.max_attempts", id="float-for-integer"),
        pytest.param({"schedule": {"every": 3600}}, "schedule.every", id="number-for-duration"),
    ],
)
def test_a_value_of_another_json_type_than_documented_is_a_422_problem(
    client: TestClient, overrides: dict, field: str
) -> None:
    """No coercion: what the document says is a boolean must be sent as one (shared/api/bodies.py)."""
    for method, url in (("POST", "/api/jobs/schedule"), ("PUT", "/api/jobs/01JUNKNOWNJOB0000000000000")):
        r = client.request(method, url, json=job(**overrides))
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
        assert field in Problem.model_validate(r.json()).errors
    r = client.post("/api/schedules/preview", json={"schedule": {"every": "PT1H"}, "count": "3"})
    assert r.status_code == 422 and "count" in Problem.model_validate(r.json()).errors


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        pytest.param(
            b'{"schedule": ', {"content-type": "application/json"}, 400, "malformed_json", id="json"
        ),
        pytest.param(
            b'{"a": "\xff"}', {"content-type": "application/json"}, 400, "malformed_json", id="not-utf8"
        ),
        pytest.param(
            b"count=3", {"content-type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"
        ),
        pytest.param(b"", {}, 422, "invalid_input", id="no-body"),
        pytest.param(
            b"{" + b" " * 40_000 + b"}", {"content-type": "application/json"}, 413, "payload_too_large"
        ),
        pytest.param(
            b"{}", {"x-ms-client-principal": "not base64 json"}, 401, "unauthenticated", id="principal"
        ),
    ],
)
def test_unreadable_requests_are_problems(
    client: TestClient, content: bytes, headers: dict, status: int, code: str
) -> None:
    r = client.post("/api/schedules/preview", content=content, headers=headers)
    assert r.status_code == status and r.headers["content-type"] == PROBLEM, r.text
    assert Problem.model_validate(r.json()).code == code


def test_a_tenant_the_caller_is_not_in_is_a_403_problem(client: TestClient) -> None:
    alice = encode_principal("alice", "Alice", ["Scheduler.Tenant.team-a"])
    r = client.get("/api/jobs", headers={"x-ms-client-principal": alice, "x-scheduler-tenant": "team-b"})
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    assert Problem.model_validate(r.json()).code == "forbidden"


def test_wrong_method_and_unknown_route_are_problems(client: TestClient) -> None:
    for r, status, code in (
        (client.patch("/api/jobs/01JUNKNOWNJOB0000000000000"), 405, "method_not_allowed"),
        (client.get("/api/nothing-here"), 404, "not_found"),
    ):
        assert r.status_code == status and r.headers["content-type"] == PROBLEM
        assert Problem.model_validate(r.json()).code == code
