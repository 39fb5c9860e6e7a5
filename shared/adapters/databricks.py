"""The Databricks port: launch a run, read its state, cancel it; and the values that cross it.

This module imports no Databricks package (the SDK costs ~2 s to import and the app
imports this module at start): `databricks_sdk.py` is the real adapter, loaded lazily,
and `databricks_fake.py` the in-memory one.

States are mapped to ours in one place, `map_state`, from both the legacy `state`
(`life_cycle_state`, `result_state`) and the newer `status` (`state`,
`termination_details.code/type`); `status` wins when present. A state not in these
tables raises `UnknownRunState` instead of being guessed. Failures are told apart
(`FailureKind`) so a job's retry policy can retry infrastructure failures only:

- capacity limits (WORKSPACE_RUN_LIMIT_EXCEEDED, CLUSTER_REQUEST_LIMIT_EXCEEDED,
  MAX_CONCURRENT_RUNS_EXCEEDED, MAX_JOB_QUEUE_SIZE_EXCEEDED, MAX_SPARK_CONTEXTS_EXCEEDED)
  are TRANSIENT whatever their type: they are Databricks' 429, and waiting fixes them;
- otherwise the termination type decides when it is conclusive: CLOUD_FAILURE and
  INTERNAL_ERROR are TRANSIENT, CLIENT_ERROR ("user input or the job configuration") is USER;
- without a conclusive type, the code decides: cluster, driver, cloud, internal, storage and
  repository-checkout errors and BREAKING_CHANGE (which Databricks retries with a mitigation)
  are TRANSIENT; the task's own failure (RUN_EXECUTION_ERROR), its set-up (LIBRARY_INSTALLATION_ERROR,
  RESOURCE_NOT_FOUND, INVALID_RUN_CONFIGURATION, INVALID_CLUSTER_REQUEST, UNAUTHORIZED_ERROR,
  FEATURE_DISABLED, BUDGET_POLICY_LIMIT_EXCEEDED, CLUSTER_TERMINATED_BY_USER) and runs that never
  executed by the job's own choice (SKIPPED, DISABLED) are USER. Where a code is ambiguous
  (STORAGE_ACCESS_ERROR, REPOSITORY_CHECKOUT_FAILED) TRANSIENT is chosen: retrying a permanent
  failure wastes a bounded number of attempts, not retrying a transient one loses the run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from shared.domain.errors import ExternalError
from shared.domain.job import DatabricksJobTask, DatabricksRunTask
from shared.domain.run import AttemptResult, FailureKind

MAX_TOKEN_LENGTH = 64  # Databricks rejects longer idempotency tokens with a 400
_TOKEN_HEX_CHARS = 48  # 192 bits of sha256: no collisions in practice, well under the limit


class Phase(StrEnum):
    """Where a Databricks run is, in the scheduler's words."""

    PENDING = "PENDING"  # queued, blocked, waiting for a retry or for its cluster
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_PHASES


_TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.TIMED_OUT, Phase.CANCELLED})


class UnknownRunState(ExternalError):
    """Databricks reported a state these tables do not know.

    Not retryable: reading the run again returns the same state. Guessing could end a run
    that is still going or retry one that succeeded; the table needs a person instead.
    """

    code = "databricks_unknown_state"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, retryable=False)


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """One attempt to start a run; the same token always means the same Databricks run."""

    task: DatabricksJobTask | DatabricksRunTask
    idempotency_token: str
    run_name: str
    context: Mapping[str, str] = field(default_factory=dict)  # placeholder values (`placeholder_context`)
    timeout: timedelta | None = None

    def __post_init__(self) -> None:
        if not 0 < len(self.idempotency_token) <= MAX_TOKEN_LENGTH:
            raise ValueError(f"an idempotency token has 1 to {MAX_TOKEN_LENGTH} characters")
        if self.timeout is not None and self.timeout <= timedelta(0):
            raise ValueError("a timeout must be positive")


@dataclass(frozen=True, slots=True)
class LaunchedRun:
    run_id: int
    run_page_url: str | None


@dataclass(frozen=True, slots=True)
class RunStatus:
    """A run as `get_run` sees it; the raw Databricks states are kept for the record and for logs."""

    run_id: int
    phase: Phase
    failure: FailureKind | None = None  # set exactly when phase is FAILED or TIMED_OUT
    code: str | None = None  # Databricks' termination code
    message: str = ""
    life_cycle_state: str | None = None
    result_state: str | None = None
    run_page_url: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def __post_init__(self) -> None:
        failed = self.phase in (Phase.FAILED, Phase.TIMED_OUT)
        if failed != (self.failure is not None):
            raise ValueError(f"a {self.phase} run has {'a' if failed else 'no'} failure kind")

    @property
    def is_terminal(self) -> bool:
        return self.phase.is_terminal

    @property
    def result(self) -> AttemptResult | None:
        """How the attempt ended, in the domain's words (None while it goes on)."""
        return _RESULT_OF.get(self.phase)


_RESULT_OF = {
    Phase.SUCCEEDED: AttemptResult.SUCCEEDED,
    Phase.FAILED: AttemptResult.FAILED,
    Phase.TIMED_OUT: AttemptResult.TIMED_OUT,
    Phase.CANCELLED: AttemptResult.CANCELLED,
}


class Databricks(Protocol):
    """Start, read and cancel Databricks runs. Errors: `ExternalError` (with `retryable` and,
    for 429/503, `retry_after` seconds) and `NotFound` for a run Databricks does not know."""

    def launch(self, request: LaunchRequest) -> LaunchedRun:
        """run-now (databricks_job) or runs/submit (databricks_run), with the request's idempotency
        token: launching the same token again returns the run it started, and starts nothing."""
        ...

    def get_run(self, run_id: int) -> RunStatus:
        """The run's state now; `NotFound` if Databricks has no such run."""
        ...

    def cancel(self, run_id: int) -> None:
        """Ask Databricks to cancel (asynchronously: the run shows TERMINATING, then CANCELLED).
        Cancelling a finished run is not an error; an unknown run is `NotFound`."""
        ...

    def result(self, run_id: int) -> str | None:
        """The value a one-task run's notebook exited with (`dbutils.notebook.exit`), or None (no
        notebook, no value, several tasks); `NotFound` if Databricks has no such run."""
        ...


def idempotency_token(run_key: str, attempt: int, job_id: str) -> str:
    """The token of one attempt: `{job_id}-{run_key}-a{attempt}`, hashed to fit Databricks' 64 characters.

    The job id is part of it because run keys (`s-{epoch ms}`) repeat across jobs.
    """
    if attempt < 1:
        raise ValueError("attempts are numbered from 1")
    text = f"{job_id}-{run_key}-a{attempt}"
    return hashlib.sha256(text.encode()).hexdigest()[:_TOKEN_HEX_CHARS]


def placeholder_context(
    *,
    scheduled_for: datetime,
    run_key: str,
    job_id: str,
    attempt: int,
    tenant: str,
    zone: ZoneInfo | None = None,
) -> dict[str, str]:
    """The values `fill_placeholders` knows. `scheduled_date` is the date in the schedule's zone
    (a 00:30 Europe/Berlin run is "that day" to its owner, not the UTC day before);
    `scheduled_time` is the instant in UTC."""
    if scheduled_for.tzinfo is None:
        raise ValueError("scheduled_for must be timezone-aware")
    local = scheduled_for.astimezone(zone or UTC)
    date = local.date().isoformat()
    return {
        "scheduled_date": date,
        "scheduled_time": scheduled_for.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_key": run_key,
        "job_id": job_id,
        "attempt": str(attempt),
        "tenant": tenant,
        "run.id": f"{job_id}_{run_key.split('.', 1)[0]}",  # a pipeline step: its pipeline run
        "run.scheduled_date": date,
    }


# Our names: plain ones, and the dotted references `run.*`, `steps.<key>.*` and `trigger.*` (what
# started the run: `trigger.kind`; `after`: `trigger.runs`, `trigger.<job id>.run_id`; file arrival:
# `trigger.files` (a JSON list of URLs), `trigger.file` (the newest); webhook:
# `trigger.payload.<key>`, `trigger.idempotency_key`; Databricks' own
# dotted references, `job.*`, `task.*`, `tasks.*`, never match and reach it untouched).
_PLACEHOLDER = re.compile(
    r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*|(?:run|trigger)\.[A-Za-z_]+|params\.[A-Za-z_][A-Za-z0-9_]*"
    r"|trigger\.payload\.[A-Za-z_][A-Za-z0-9_-]*"
    r"|(?:steps|trigger)\.[A-Za-z0-9][A-Za-z0-9_-]*\.[A-Za-z_]+)\s*\}\}"
)
_PAYLOAD = "trigger.payload."


def fill_placeholders(value: str, context: Mapping[str, str]) -> str:
    """Replace `{{name}}` for the names in `context` (also `{{run.id}}`, `{{run.scheduled_date}}`,
    `{{steps.<key>.databricks_run_id}}`); anything else in braces is left as it is.

    Databricks resolves its own references (`{{job.parameters.x}}`, `{{job.run_id}}`) at run
    time, so they must reach it untouched; their dotted names never match ours.
    """

    def value_of(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith(_PAYLOAD) and context.get("trigger.kind") == "webhook":
            return context.get(name, "")  # a key the webhook's caller did not send is empty
        return context.get(name, m.group(0))

    return _PLACEHOLDER.sub(value_of, value)


# --- states --------------------------------------------------------------------------------------------

State = tuple[Phase, FailureKind | None]

_SUCCEEDED: State = (Phase.SUCCEEDED, None)
_CANCELLED: State = (Phase.CANCELLED, None)
_TIMED_OUT: State = (Phase.TIMED_OUT, FailureKind.TIMEOUT)
_TRANSIENT: State = (Phase.FAILED, FailureKind.TRANSIENT)
_USER: State = (Phase.FAILED, FailureKind.USER)

# Not yet terminal, in either vocabulary. `status.state` says WAITING where the legacy state
# says WAITING_FOR_RETRY; both are accepted in both places.
_ACTIVE: dict[str, Phase] = {
    "QUEUED": Phase.PENDING,
    "PENDING": Phase.PENDING,
    "BLOCKED": Phase.PENDING,
    "WAITING": Phase.PENDING,
    "WAITING_FOR_RETRY": Phase.PENDING,
    "RUNNING": Phase.RUNNING,
    "TERMINATING": Phase.TERMINATING,
}

# Legacy `state.result_state` of a finished run.
_RESULTS: dict[str, State] = {
    "SUCCESS": _SUCCEEDED,
    # Leaf tasks succeeded; the job itself tolerated the failed ones (run_if conditions).
    "SUCCESS_WITH_FAILURES": _SUCCEEDED,
    "FAILED": _USER,  # "the task completed with an error"; termination details refine it if given
    "TIMEDOUT": _TIMED_OUT,
    "CANCELED": _CANCELLED,
    "UPSTREAM_CANCELED": _CANCELLED,
    "MAXIMUM_CONCURRENT_RUNS_REACHED": _TRANSIENT,
    # Never executed by the job's own choice: not what the scheduler asked for, and not worth a retry.
    "UPSTREAM_FAILED": _USER,
    "EXCLUDED": _USER,
    "DISABLED": _USER,
}

_SUCCESS_CODES = frozenset({"SUCCESS", "SUCCESS_WITH_FAILURES"})
_CAPACITY_CODES = frozenset(
    {
        "WORKSPACE_RUN_LIMIT_EXCEEDED",
        "CLUSTER_REQUEST_LIMIT_EXCEEDED",
        "MAX_CONCURRENT_RUNS_EXCEEDED",
        "MAX_JOB_QUEUE_SIZE_EXCEEDED",
        "MAX_SPARK_CONTEXTS_EXCEEDED",
    }
)
_INFRASTRUCTURE_CODES = frozenset(
    {
        "INTERNAL_ERROR",
        "DRIVER_ERROR",
        "CLUSTER_ERROR",
        "CLOUD_FAILURE",
        "STORAGE_ACCESS_ERROR",
        "REPOSITORY_CHECKOUT_FAILED",
        "BREAKING_CHANGE",
    }
)
_USER_CODES = frozenset(
    {
        "RUN_EXECUTION_ERROR",
        "LIBRARY_INSTALLATION_ERROR",
        "RESOURCE_NOT_FOUND",
        "INVALID_RUN_CONFIGURATION",
        "INVALID_CLUSTER_REQUEST",
        "UNAUTHORIZED_ERROR",
        "FEATURE_DISABLED",
        "BUDGET_POLICY_LIMIT_EXCEEDED",
        "CLUSTER_TERMINATED_BY_USER",
        "SKIPPED",
        "DISABLED",
    }
)
_TYPES: dict[str, FailureKind] = {
    "CLOUD_FAILURE": FailureKind.TRANSIENT,
    "INTERNAL_ERROR": FailureKind.TRANSIENT,
    "CLIENT_ERROR": FailureKind.USER,
}


def map_state(
    life_cycle_state: str | None,
    result_state: str | None,
    status_state: str | None,
    termination_code: str | None,
    termination_type: str | None,
) -> State:
    """The scheduler's phase (and failure kind) of a Databricks run; `UnknownRunState` if unsure."""
    if status_state is not None:
        return _from_status(status_state, termination_code, termination_type, life_cycle_state, result_state)
    return _from_legacy(life_cycle_state, result_state, termination_code, termination_type)


def _from_status(
    state: str, code: str | None, type_: str | None, life_cycle_state: str | None, result_state: str | None
) -> State:
    if state in _ACTIVE:
        return _ACTIVE[state], None
    if state != "TERMINATED":
        raise UnknownRunState(f"unknown Databricks run status {state!r}")
    if code is None:  # no termination details: the legacy state is all there is
        return _from_legacy(life_cycle_state, result_state, None, type_)
    if code in _SUCCESS_CODES:
        return _SUCCEEDED
    if code == "USER_CANCELED":
        return _CANCELLED
    if code == "CANCELED":
        # Cancelled by the platform, "for example, if the maximum run duration was exceeded";
        # the legacy result says which when it is there.
        return _CANCELLED if result_state in ("CANCELED", "UPSTREAM_CANCELED") else _TIMED_OUT
    return Phase.FAILED, _failure_kind(code, type_)


def _from_legacy(
    life_cycle_state: str | None, result_state: str | None, code: str | None, type_: str | None
) -> State:
    if life_cycle_state is None:
        raise UnknownRunState("Databricks reported neither a run status nor a life cycle state")
    if life_cycle_state in _ACTIVE:
        return _ACTIVE[life_cycle_state], None
    if life_cycle_state == "INTERNAL_ERROR":  # "a failure in the Jobs service"
        return _TRANSIENT
    if life_cycle_state == "SKIPPED" and result_state is None:
        return _TRANSIENT  # "a previous run of the same job was already active": a concurrency limit
    if life_cycle_state not in ("TERMINATED", "SKIPPED"):
        raise UnknownRunState(f"unknown Databricks life cycle state {life_cycle_state!r}")
    if result_state not in _RESULTS:
        raise UnknownRunState(f"unknown Databricks result state {result_state!r} ({life_cycle_state})")
    phase, failure = _RESULTS[result_state]
    if result_state == "FAILED" and (code is not None or type_ is not None):
        failure = _failure_kind(code, type_)
    return phase, failure


def _failure_kind(code: str | None, type_: str | None) -> FailureKind:
    if code in _CAPACITY_CODES:
        return FailureKind.TRANSIENT
    if type_ in _TYPES:
        return _TYPES[type_]
    if code in _INFRASTRUCTURE_CODES:
        return FailureKind.TRANSIENT
    if code in _USER_CODES:
        return FailureKind.USER
    raise UnknownRunState(f"unknown Databricks termination code {code!r} (type {type_!r})")
