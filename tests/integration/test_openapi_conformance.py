"""The API answers as /api/openapi.json says: a bounded, seeded schemathesis run, in process.

The Studio platform generates its client from the document, so every response must be one the
document lists for that operation: its status code, its media type, its headers and its body
schema; and no input, however wrong, may cause a 5xx. Schemathesis reads the document from the
ASGI app itself and calls the app in process (no socket): in-memory tables, the Service Bus twin,
the fake Databricks (tests/world.py), `AUTH_MODE=development` so requests need no identity.

What runs, for each of the document's operations (none is excluded):
* the `examples` phase: the request bodies the document shows (shared/api/openapi.py);
* the `fuzzing` phase: valid and invalid data (MAX_EXAMPLES per operation);
* the `coverage` phase (boundary values, wrong methods) except on the three operations whose body is
  a job definition or a schedule: there it enumerates about 550 cases each, beyond this suite's
  budget; fuzzing still sends them valid and invalid bodies.
* not the `stateful` phase: the document declares no links between operations. Instead the by-id
  operations draw their ids partly from a few seeded jobs and runs (`seeded_world`), so they also
  meet real jobs in every state a client sees (active, paused, cancelled; runs failed, running).

Not in the document, so not run here: `GET /api/docs` and its static files (`include_in_schema=False`
and a mount: a page for people, not part of the API; tests/integration/test_api.py covers them).

Every response is checked for: no 5xx; a status code, media type and headers the operation lists;
a body that matches the listed schema; and a request that breaks the schema refused (4xx).

Figures for the default seed: about 530 cases in 15 seconds. The seed makes the run repeatable, but
Hypothesis also draws on constants of the modules loaded so far, so the exact cases depend on which
tests ran before in the same session. A deeper run, e.g. before a release (some 2,500 cases, a minute):

    OPENAPI_MAX_EXAMPLES=150 OPENAPI_SEED=7 make test PYTEST_ARGS=tests/integration/test_openapi_conf*
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from functions.http_api import create_api
from shared.api.openapi import JOB_EXAMPLES, PREVIEW_EXAMPLES
from shared.domain.run import FailureKind
from tests.fakes.databricks import FakeOutcome
from tests.fakes.memory_table import InMemoryTable
from tests.world import World

SEED = int(os.environ.get("OPENAPI_SEED", "20261124"))
MAX_EXAMPLES = int(os.environ.get("OPENAPI_MAX_EXAMPLES", "15"))
BODY_OPERATIONS = [  # coverage phase off here: see the module's docstring
    "schedule_job_api_jobs_schedule_post",
    "edit_job_api_jobs__job_id__put",
    "preview_schedule_api_schedules_preview_post",
]
CONFIG = schemathesis.Config.from_str(
    f"""
seed = {SEED}

[generation]
max-examples = {MAX_EXAMPLES}
database = "none"  # no example database: the same cases on every machine, nothing written to disk

[phases.stateful]
enabled = false

# A request the schema forbids must be refused for what it is (never acted on, never a 409 or 412):
# 413 is as good a refusal as 422 for a body over MAX_BODY_BYTES (schemathesis does not count it).
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 413, 415, 422]

[[operations]]
include-operation-id = {BODY_OPERATIONS!r}
phases.coverage.enabled = false
""".replace("'", '"')
)

# What each response is checked for. Not `positive_data_acceptance`: a body valid by the schema
# may still break a rule that JSON Schema cannot express (the schemas' descriptions list them),
# and the server rightly answers 422 for it.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,  # a request the schema forbids is refused (4xx), never acted on
]


def seeded_world() -> tuple[World, dict[str, list[str]]]:
    """A world in the development tenant with jobs and runs for the by-id operations to find."""
    world = World(InMemoryTable, settings={"AUTH_MODE": "development"})
    tenant = world.s.settings.dev_tenant
    train = world.job(tenant, name="train")  # its first run fails: retry has something to retry
    world.fake.outcomes.append(FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR"))
    world.fire(datetime(2026, 6, 1, 12, 5, tzinfo=UTC))
    world.deliver()
    etl = world.job(
        tenant,
        name="etl",
        job_type="data_processing",
        task={
            "kind": "databricks_run",
            "notebook_path": "/Repos/etl/load",
            "cluster": {
                "spark_version": "15.4.x-scala2.12",
                "node_type_id": "Standard_DS3_v2",
                "num_workers": 2,
            },
        },
        schedule={"every": "PT1H"},
    )
    doomed = world.job(tenant, name="doomed")  # DELETE's own: it has a run in Databricks to cancel
    world.fake.outcomes.append(FakeOutcome.HANG)
    world.s.run_commands.run_now(tenant, doomed.id, train.created_by)
    world.deliver(until=world.clock.now() + timedelta(minutes=1))
    runs = [run for job in (train, etl, doomed) for run in world.runs(job)]
    assert {run.state.value for run in runs} == {"FAILED", "RUNNING"}, "the seeding went wrong"
    return world, {"job_id": [train.id, etl.id], "delete": [doomed.id], "run_id": [run.id for run in runs]}


WORLD, IDS = seeded_world()
APP = create_api(lambda: WORLD.s)
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP, config=CONFIG)
SEEN: Counter[tuple[str, int]] = Counter()  # (operation, status) of every response


@schema.hook
def before_generate_path_parameters(context: schemathesis.HookContext, strategy: Any) -> Any:
    """Ids are random strings, or now and then one of the seeded jobs' or runs'."""
    operation = context.operation
    assert operation is not None
    if "{job_id}" in operation.path:
        known = IDS["delete"] if operation.method.upper() == "DELETE" else IDS["job_id"]
        return st.one_of(strategy, st.sampled_from(known).map(lambda i: {"job_id": i}))
    if "{run_id}" in operation.path:
        return st.one_of(strategy, st.sampled_from(IDS["run_id"]).map(lambda i: {"run_id": i}))
    return strategy


@schema.parametrize()
def test_every_response_is_one_the_document_lists(case: schemathesis.Case) -> None:
    response = case.call_and_validate(checks=CHECKS)
    SEEN[(case.operation.label, response.status_code)] += 1


@pytest.fixture(scope="module", autouse=True)
def _report_figures() -> Any:
    yield
    if SEEN:
        cases = sum(SEEN.values())
        by_status = Counter[int]()
        for (_, status), n in SEEN.items():
            by_status[status] += n
        print(f"\nschemathesis: {cases} cases, seed {SEED}; by status: {dict(sorted(by_status.items()))}")


# --- the same checks on chosen requests: every success, and errors fuzzing rarely reaches -------------


class Api:
    """A fresh world and its document, to send chosen requests through schemathesis' checks."""

    def __init__(self) -> None:
        self.world = World(InMemoryTable, settings={"AUTH_MODE": "development"})
        app = create_api(lambda: self.world.s)
        self.schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, config=CONFIG)

    def __call__(self, method: str, path: str, status: int, **case: Any) -> Any:
        """Send one request the document describes; it must answer `status` and pass every check
        (a 503 is expected here, so `not_a_server_error` is left out for it)."""
        checks = [c for c in CHECKS if status < 500 or c is not not_a_server_error]
        response = self.schema[path][method].Case(**case).call_and_validate(checks=checks)
        assert response.status_code == status, response.text
        return response

    def deliver(self, seconds: float) -> None:
        self.world.deliver(until=self.world.clock.now() + timedelta(seconds=seconds))


def test_a_job_s_whole_life_answers_as_documented() -> None:
    api = Api()
    fake = api.world.fake
    job = {**JOB_EXAMPLES["databricks_job"]["value"], "retry": {"max_attempts": 1}}
    created = api("POST", "/api/jobs/schedule", 201, body=job).json()
    one = {"job_id": created["job_id"]}
    etag = api("GET", "/api/jobs/{job_id}", 200, path_parameters=one).headers["etag"][0]
    edited = {**job, "timeout": "PT3H"}
    api("PUT", "/api/jobs/{job_id}", 200, path_parameters=one, body=edited, headers={"If-Match": etag})
    api("PUT", "/api/jobs/{job_id}", 412, path_parameters=one, body=edited, headers={"If-Match": etag})
    api("POST", "/api/jobs/{job_id}/pause", 200, path_parameters=one)
    api("POST", "/api/jobs/{job_id}/pause", 409, path_parameters=one)
    api("POST", "/api/jobs/{job_id}/resume", 200, path_parameters=one)
    api("POST", "/api/jobs/{job_id}/retry", 409, path_parameters=one)  # no run failed yet

    fake.outcomes.append(FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR"))
    failed = {"run_id": api("POST", "/api/jobs/{job_id}/run", 202, path_parameters=one).json()["run_id"]}
    api.deliver(600)
    assert api("GET", "/api/runs/{run_id}", 200, path_parameters=failed).json()["state"] == "FAILED"
    fake.outcomes.append(FakeOutcome.SUCCESS)
    api("POST", "/api/jobs/{job_id}/retry", 200, path_parameters=one)
    api("POST", "/api/runs/{run_id}/retry", 409, path_parameters=failed)  # it is being retried
    api.deliver(600)

    fake.outcomes.append(FakeOutcome.HANG)
    hanging = {"run_id": api("POST", "/api/jobs/{job_id}/run", 202, path_parameters=one).json()["run_id"]}
    api.deliver(30)
    fake.fail_next_call("get_run", status=503, retry_after=7)
    unavailable = api("POST", "/api/runs/{run_id}/cancel", 503, path_parameters=hanging)
    assert unavailable.headers["retry-after"] == ["7"]
    assert (
        api("POST", "/api/runs/{run_id}/cancel", 200, path_parameters=hanging).json()["state"] == "CANCELLED"
    )
    api("POST", "/api/runs/{run_id}/cancel", 409, path_parameters=hanging)
    api("GET", "/api/jobs/{job_id}/runs", 200, path_parameters=one)
    api("GET", "/api/jobs/{job_id}/audit", 200, path_parameters=one)
    api("GET", "/api/jobs", 200, query={"q": "churn", "sort": "name"})

    # DELETE cancels, and can be repeated; the job stays readable, and can no longer change.
    assert api("DELETE", "/api/jobs/{job_id}", 200, path_parameters=one).json()["status"] == "CANCELLED"
    assert api("DELETE", "/api/jobs/{job_id}", 200, path_parameters=one).json()["status"] == "CANCELLED"
    assert api("GET", "/api/jobs/{job_id}", 200, path_parameters=one).json()["status"] == "CANCELLED"
    api("PUT", "/api/jobs/{job_id}", 409, path_parameters=one, body=edited)
    api("POST", "/api/jobs/{job_id}/run", 409, path_parameters=one)
    api("POST", "/api/schedules/preview", 200, body=PREVIEW_EXAMPLES["dst"]["value"])
    api("GET", "/api/health", 200)
