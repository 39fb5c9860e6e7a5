"""What the OpenAPI document says beyond what FastAPI infers: the error responses, and the rules
that JSON Schema cannot express.

Routes declare their errors with `errors(...)` (each status an operation can really give, as
`shared/api/problems.py` maps it); `install` finishes the document: it adds the `Problem` schema,
writes the cross-field rules into the descriptions of the schemas they constrain, and makes sure
FastAPI's own 422 (`HTTPValidationError`, application/json) is nowhere: our 422 is problem+json.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.models import Example

from shared.api.problems import MEDIA_TYPE
from shared.api.schemas import Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

# What each status means, whichever operation gives it (docs/api.md has the same table).
_MEANING: dict[int, str] = {
    400: "Malformed JSON: the body is not valid JSON (`malformed_json`).",
    401: "Unauthenticated: no client principal, or one that cannot be read (`unauthenticated`).",
    403: "Forbidden: `X-Scheduler-Tenant` names a tenant the caller is not a member of (`forbidden`).",
    404: "Not found: no such job or run in the caller's tenants, or an id that cannot be one (`not_found`).",
    409: (
        "Conflict: the job's or run's state does not allow this (`illegal_transition`, `conflict`; "
        "for a run, `errors.state` names its state), or it kept changing while the request saved it "
        "(`conflict`): read it again and retry."
    ),
    412: (
        "Precondition failed: `If-Match` names a version other than the job's current one "
        "(`precondition_failed`): read the job again and re-apply the change."
    ),
    413: "Payload too large: the body is over the limit (`MAX_BODY_BYTES`, 32 KiB by default).",
    415: "Unsupported media type: a body not sent as `application/json` (`unsupported_media_type`).",
    422: (
        "Invalid input: a parameter, header or body field is invalid, including the rules the "
        "schemas describe but cannot express (`invalid_input`, `invalid_schedule`). `errors` maps "
        "each field path to the reason."
    ),
    503: (
        "A dependency (Table Storage; Databricks when runs are cancelled) is unavailable "
        "(`external_error`): trying again after `Retry-After` seconds is safe."
    ),
}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def errors(*statuses: int, notes: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each status as problem+json, with what it means there."""
    unknown = set(statuses) - set(_MEANING)
    if unknown:
        raise ValueError(f"no meaning written for status {sorted(unknown)}")
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description = _MEANING[status]
        if notes and status in notes:
            description = f"{description} {notes[status]}"
        response: dict[str, Any] = {
            "description": description,
            "content": {MEDIA_TYPE: {"schema": dict(_PROBLEM_REF)}},
        }
        if status == 503:
            response["headers"] = dict(_RETRY_AFTER)
        out[status] = response
    return out


def header(description: str, pattern: str | None = None) -> dict[str, Any]:
    """A response header the operation always sends."""
    schema: dict[str, Any] = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return {"description": description, "required": True, "schema": schema}


# Request bodies a reader (and the docs page's "Try it out") can start from.
JOB_EXAMPLES: dict[str, Example] = {
    "databricks_job": {
        "summary": "Nightly training: an existing Databricks job, on a cron schedule",
        "value": {
            "name": "nightly-churn-training",
            "job_type": "model_training",
            "description": "Retrains the churn model on yesterday's data.",
            "task": {
                "kind": "databricks_job",
                "job_id": 123,
                "parameters": {"run_date": "{{scheduled_date}}"},
            },
            "schedule": {"cron": "30 1 * * *", "timezone": "America/New_York"},
            "retry": {"max_attempts": 3, "initial_delay": "PT1M", "max_delay": "PT30M"},
            "timeout": "PT2H",
            "overlap": "skip",
            "tags": ["churn"],
        },
    },
    "databricks_run": {
        "summary": "Hourly load: a notebook on a new autoscaling cluster, every hour",
        "value": {
            "name": "hourly-sales-load",
            "job_type": "data_processing",
            "task": {
                "kind": "databricks_run",
                "notebook_path": "/Repos/etl/load_sales",
                "parameters": {"day": "{{scheduled_date}}"},
                "cluster": {
                    "spark_version": "15.4.x-scala2.12",
                    "node_type_id": "Standard_DS3_v2",
                    "autoscale": {"min_workers": 1, "max_workers": 4},
                },
            },
            "schedule": {"every": "PT1H"},
            "overlap": "buffer_one",
        },
    },
}
JOB_EXAMPLES["file_arrival"] = {
    "summary": "Load each drop of sales files: a file arrival trigger, no schedule",
    "value": {
        "name": "sales-landing-load",
        "job_type": "data_processing",
        "task": {
            "kind": "databricks_job",
            "job_id": 456,
            "parameters": {"files": "{{trigger.files}}"},
        },
        "triggers": [
            {
                "kind": "file_arrival",
                "container": "landing",
                "prefix": "sales/",
                "suffix": ".parquet",
                "wait_after_last_change": "PT1M",
                "min_time_between_triggers": "PT5M",
            }
        ],
    },
}
JOB_EXAMPLES["webhook"] = {
    "summary": "Score on demand: a webhook trigger (POST /api/jobs/{job_id}/trigger)",
    "value": {
        "name": "score-on-demand",
        "job_type": "model_training",
        "task": {
            "kind": "databricks_job",
            "job_id": 789,
            "parameters": {"model": "{{trigger.payload.model}}"},
        },
        "triggers": [{"kind": "webhook"}],
    },
}
NEW_JOB_EXAMPLES: dict[str, Example] = {
    **JOB_EXAMPLES,
    "from_template": {
        "summary": "From a template: its values, and the job's own name and schedule",
        "value": {
            "template": "train-model",
            "parameters": {"market": "de", "learning_rate": 0.0005},
            "name": "churn-de",
            "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Berlin"},
        },
    },
}
TRIGGER_EXAMPLES: dict[str, Example] = {
    "parameters": {
        "summary": "Parameters for the run, as `{{trigger.payload.<key>}}`",
        "value": {"model": "churn", "date": "2026-12-01", "full": True},
    }
}
PREVIEW_EXAMPLES: dict[str, Example] = {
    "dst": {
        "summary": "A daily 02:30 in New York, across the spring-forward night",
        "value": {
            "schedule": {
                "cron": "30 2 * * *",
                "timezone": "America/New_York",
                "start_at": "2027-03-12T00:00:00Z",
            },
            "count": 3,
        },
    }
}


# Cross-field rules the models enforce (pydantic validators in shared/domain) that JSON Schema
# cannot state for a client generator; each breach is a 422 problem+json naming the field.
RULES: dict[str, list[str]] = {
    "ScheduleSpec": [
        "exactly one of `cron`, `at` or `every` is given (not null);",
        "`every` is at least `PT1M` and at most 366 days;",
        "`anchor` is given only with `every`;",
        "`end_at` is after `start_at` when both are given;",
        "on create and edit, the schedule has a fire time after now (else `invalid_schedule`).",
    ],
    "DatabricksRunTask": [
        "exactly one of `notebook_path`, `python_file` or `python_wheel`;",
        "exactly one of `cluster` or `existing_cluster_id`;",
        "a notebook takes `parameters` as a mapping of widget values, a Python file or wheel as a "
        "list of arguments.",
    ],
    "ClusterSpec": [
        "exactly one of `num_workers` or `autoscale`;",
        "at least one of `node_type_id` or `instance_pool_id`.",
    ],
    "Autoscale": ["`max_workers` is at least `min_workers`."],
    "RetryPolicy": ["`max_delay` is at least `initial_delay`."],
}
_RULES_HEADING = "Rules the schema cannot express (a request that breaks one is answered 422):"


def _with_rules(schema: dict[str, Any], rules: list[str]) -> None:
    text = "\n".join(f"- {rule}" for rule in rules)
    description = schema.get("description", "").rstrip()
    schema["description"] = f"{description}\n\n{_RULES_HEADING}\n{text}".lstrip()


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add `Problem` and the rules, order each operation's responses by status; drop FastAPI's
    default validation error schemas (raises if an operation still refers to them)."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["Problem"] = problem
    for name, rules in RULES.items():
        if name not in schemas:
            raise LookupError(f"the OpenAPI document has no schema {name!r} to describe")
        _with_rules(schemas[name], rules)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            operation["responses"] = dict(sorted(operation.get("responses", {}).items()))
            for status, response in operation["responses"].items():
                for media_type, content in response.get("content", {}).items():
                    if content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                        raise LookupError(
                            f"{method.upper()} {path} answers {status} {media_type} with FastAPI's "
                            "validation error: declare its errors with `errors(...)`"
                        )
    return document


def install(app: FastAPI) -> None:
    """Serve the completed document at the app's `openapi_url` (built once, on first request)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if not getattr(app.state, "openapi_complete", False):
            app.openapi_schema = complete(build())
            app.state.openapi_complete = True
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
