"""Databricks states in the scheduler's words, idempotency tokens and placeholders."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.adapters.databricks import (
    MAX_TOKEN_LENGTH,
    LaunchRequest,
    Phase,
    RunStatus,
    UnknownRunState,
    fill_placeholders,
    idempotency_token,
    map_state,
    placeholder_context,
)
from shared.domain.errors import ExternalError
from shared.domain.job import DatabricksJobTask
from shared.domain.run import FailureKind

PENDING, RUNNING, TERMINATING = Phase.PENDING, Phase.RUNNING, Phase.TERMINATING
SUCCEEDED, FAILED, TIMED_OUT, CANCELLED = Phase.SUCCEEDED, Phase.FAILED, Phase.TIMED_OUT, Phase.CANCELLED
TRANSIENT, USER, TIMEOUT = FailureKind.TRANSIENT, FailureKind.USER, FailureKind.TIMEOUT


def legacy(life_cycle_state: str | None, result_state: str | None = None) -> tuple[Phase, FailureKind | None]:
    return map_state(life_cycle_state, result_state, None, None, None)


def status(
    state: str,
    code: str | None = None,
    type_: str | None = None,
    *,
    life_cycle_state: str | None = None,
    result_state: str | None = None,
) -> tuple[Phase, FailureKind | None]:
    return map_state(life_cycle_state, result_state, state, code, type_)


# --- the legacy `state` ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("life_cycle_state", "result_state", "expected"),
    [
        pytest.param("QUEUED", None, (PENDING, None), id="queued"),
        pytest.param("PENDING", None, (PENDING, None), id="pending"),
        pytest.param("BLOCKED", None, (PENDING, None), id="blocked"),
        pytest.param("WAITING_FOR_RETRY", None, (PENDING, None), id="waiting-for-retry"),
        pytest.param("RUNNING", None, (RUNNING, None), id="running"),
        pytest.param("TERMINATING", None, (TERMINATING, None), id="terminating"),
        pytest.param("TERMINATED", "SUCCESS", (SUCCEEDED, None), id="success"),
        pytest.param("TERMINATED", "SUCCESS_WITH_FAILURES", (SUCCEEDED, None), id="success-with-failures"),
        pytest.param("TERMINATED", "FAILED", (FAILED, USER), id="failed-is-the-task"),
        pytest.param("TERMINATED", "TIMEDOUT", (TIMED_OUT, TIMEOUT), id="timed-out"),
        pytest.param("TERMINATED", "CANCELED", (CANCELLED, None), id="canceled"),
        pytest.param("TERMINATED", "UPSTREAM_CANCELED", (CANCELLED, None), id="upstream-canceled"),
        pytest.param("TERMINATED", "UPSTREAM_FAILED", (FAILED, USER), id="upstream-failed"),
        pytest.param("TERMINATED", "EXCLUDED", (FAILED, USER), id="excluded"),
        pytest.param("TERMINATED", "DISABLED", (FAILED, USER), id="disabled"),
        pytest.param(
            "TERMINATED", "MAXIMUM_CONCURRENT_RUNS_REACHED", (FAILED, TRANSIENT), id="max-concurrent-runs"
        ),
        pytest.param("SKIPPED", None, (FAILED, TRANSIENT), id="skipped-previous-run-active"),
        pytest.param("SKIPPED", "MAXIMUM_CONCURRENT_RUNS_REACHED", (FAILED, TRANSIENT), id="skipped-max"),
        pytest.param("SKIPPED", "EXCLUDED", (FAILED, USER), id="skipped-excluded"),
        pytest.param("INTERNAL_ERROR", None, (FAILED, TRANSIENT), id="internal-error"),
        pytest.param("INTERNAL_ERROR", "FAILED", (FAILED, TRANSIENT), id="internal-error-failed"),
    ],
)
def test_legacy_states_map_to_phases(
    life_cycle_state: str, result_state: str | None, expected: tuple[Phase, FailureKind | None]
) -> None:
    assert legacy(life_cycle_state, result_state) == expected


def test_legacy_failed_is_refined_by_termination_details_when_given() -> None:
    assert map_state("TERMINATED", "FAILED", None, "CLUSTER_ERROR", "CLOUD_FAILURE") == (FAILED, TRANSIENT)
    assert map_state("TERMINATED", "FAILED", None, "RUN_EXECUTION_ERROR", None) == (FAILED, USER)


# --- the newer `status` -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param("QUEUED", PENDING, id="queued"),
        pytest.param("PENDING", PENDING, id="pending"),
        pytest.param("BLOCKED", PENDING, id="blocked"),
        pytest.param("WAITING", PENDING, id="waiting"),
        pytest.param("WAITING_FOR_RETRY", PENDING, id="waiting-for-retry"),
        pytest.param("RUNNING", RUNNING, id="running"),
        pytest.param("TERMINATING", TERMINATING, id="terminating"),
    ],
)
def test_active_statuses_map_to_phases(state: str, expected: Phase) -> None:
    assert status(state) == (expected, None)
    assert not expected.is_terminal


@pytest.mark.parametrize(
    ("code", "type_", "expected"),
    [
        pytest.param("SUCCESS", "SUCCESS", (SUCCEEDED, None), id="success"),
        pytest.param("SUCCESS_WITH_FAILURES", "SUCCESS", (SUCCEEDED, None), id="success-with-failures"),
        pytest.param("USER_CANCELED", "SUCCESS", (CANCELLED, None), id="user-canceled"),
        pytest.param("RUN_EXECUTION_ERROR", "CLIENT_ERROR", (FAILED, USER), id="task-failed"),
        pytest.param("CLUSTER_ERROR", "CLOUD_FAILURE", (FAILED, TRANSIENT), id="cluster-cloud-failure"),
        pytest.param("CLOUD_FAILURE", "CLOUD_FAILURE", (FAILED, TRANSIENT), id="cloud-failure"),
        pytest.param("DRIVER_ERROR", "INTERNAL_ERROR", (FAILED, TRANSIENT), id="driver-error"),
        pytest.param("INTERNAL_ERROR", "INTERNAL_ERROR", (FAILED, TRANSIENT), id="internal-error"),
        # The type is more precise than the code: a cluster that fails on its configuration is the user's.
        pytest.param("CLUSTER_ERROR", "CLIENT_ERROR", (FAILED, USER), id="cluster-misconfigured"),
        pytest.param("RUN_EXECUTION_ERROR", "INTERNAL_ERROR", (FAILED, TRANSIENT), id="platform-broke-task"),
        # Capacity limits are Databricks' 429: waiting fixes them, whatever the type says.
        pytest.param(
            "WORKSPACE_RUN_LIMIT_EXCEEDED", "CLIENT_ERROR", (FAILED, TRANSIENT), id="workspace-run-limit"
        ),
        pytest.param(
            "CLUSTER_REQUEST_LIMIT_EXCEEDED", "CLIENT_ERROR", (FAILED, TRANSIENT), id="cluster-request-limit"
        ),
        pytest.param("MAX_CONCURRENT_RUNS_EXCEEDED", None, (FAILED, TRANSIENT), id="max-concurrent-runs"),
        pytest.param("MAX_JOB_QUEUE_SIZE_EXCEEDED", None, (FAILED, TRANSIENT), id="job-queue-full"),
        pytest.param("MAX_SPARK_CONTEXTS_EXCEEDED", None, (FAILED, TRANSIENT), id="spark-contexts"),
        # Without a conclusive type, the code decides.
        pytest.param("CLUSTER_ERROR", None, (FAILED, TRANSIENT), id="cluster-error-untyped"),
        pytest.param("DRIVER_ERROR", "SUCCESS", (FAILED, TRANSIENT), id="driver-error-odd-type"),
        pytest.param("STORAGE_ACCESS_ERROR", None, (FAILED, TRANSIENT), id="storage-ambiguous"),
        pytest.param("REPOSITORY_CHECKOUT_FAILED", None, (FAILED, TRANSIENT), id="git-checkout"),
        pytest.param("BREAKING_CHANGE", None, (FAILED, TRANSIENT), id="breaking-change"),
        pytest.param("RUN_EXECUTION_ERROR", None, (FAILED, USER), id="task-failed-untyped"),
        pytest.param("LIBRARY_INSTALLATION_ERROR", None, (FAILED, USER), id="library"),
        pytest.param("RESOURCE_NOT_FOUND", None, (FAILED, USER), id="missing-file"),
        pytest.param("INVALID_RUN_CONFIGURATION", None, (FAILED, USER), id="bad-configuration"),
        pytest.param("INVALID_CLUSTER_REQUEST", None, (FAILED, USER), id="bad-cluster-request"),
        pytest.param("UNAUTHORIZED_ERROR", None, (FAILED, USER), id="unauthorized"),
        pytest.param("FEATURE_DISABLED", None, (FAILED, USER), id="feature-disabled"),
        pytest.param("BUDGET_POLICY_LIMIT_EXCEEDED", None, (FAILED, USER), id="budget"),
        pytest.param("CLUSTER_TERMINATED_BY_USER", None, (FAILED, USER), id="cluster-terminated-by-user"),
        pytest.param("SKIPPED", "CLIENT_ERROR", (FAILED, USER), id="skipped"),
        pytest.param("DISABLED", None, (FAILED, USER), id="disabled"),
        # A code added later, with a failure type: still unambiguously a failure of that kind.
        pytest.param("SOME_NEW_CODE", "CLOUD_FAILURE", (FAILED, TRANSIENT), id="new-code-cloud"),
        pytest.param("SOME_NEW_CODE", "CLIENT_ERROR", (FAILED, USER), id="new-code-client"),
    ],
)
def test_terminated_statuses_map_by_termination_details(
    code: str, type_: str | None, expected: tuple[Phase, FailureKind | None]
) -> None:
    assert status("TERMINATED", code, type_) == expected


@pytest.mark.parametrize(
    ("result_state", "expected"),
    [
        pytest.param("TIMEDOUT", (TIMED_OUT, TIMEOUT), id="timeout"),
        pytest.param(None, (TIMED_OUT, TIMEOUT), id="no-legacy-result"),
        pytest.param("CANCELED", (CANCELLED, None), id="cancelled-by-platform"),
    ],
)
def test_a_platform_cancel_is_a_timeout_unless_the_result_says_cancelled(
    result_state: str | None, expected: tuple[Phase, FailureKind | None]
) -> None:
    got = status(
        "TERMINATED", "CANCELED", "CLIENT_ERROR", life_cycle_state="TERMINATED", result_state=result_state
    )
    assert got == expected


def test_status_wins_over_the_legacy_state() -> None:
    assert status("RUNNING", life_cycle_state="PENDING") == (RUNNING, None)
    terminated = status(
        "TERMINATED", "DRIVER_ERROR", "INTERNAL_ERROR", life_cycle_state="TERMINATED", result_state="SUCCESS"
    )
    assert terminated == (FAILED, TRANSIENT)


def test_terminated_without_termination_details_falls_back_to_the_result_state() -> None:
    assert status("TERMINATED", life_cycle_state="TERMINATED", result_state="SUCCESS") == (SUCCEEDED, None)
    assert status("TERMINATED", life_cycle_state="INTERNAL_ERROR") == (FAILED, TRANSIENT)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        pytest.param(("TERMINATED", "SUCCESS", "SUSPENDED", None, None), "SUSPENDED", id="status-state"),
        pytest.param(("HIBERNATING", None, None, None, None), "HIBERNATING", id="life-cycle-state"),
        pytest.param(("TERMINATED", "PARTIAL", None, None, None), "PARTIAL", id="result-state"),
        pytest.param(("TERMINATED", None, None, None, None), "None", id="terminated-without-result"),
        pytest.param(("TERMINATED", None, "TERMINATED", "NEW_CODE", None), "NEW_CODE", id="code-untyped"),
        pytest.param(
            ("TERMINATED", None, "TERMINATED", "NEW_CODE", "SUCCESS"), "NEW_CODE", id="code-success"
        ),
        pytest.param((None, None, None, None, None), "neither", id="nothing"),
        pytest.param(
            ("TERMINATED", None, "TERMINATED", None, None), "None", id="status-no-details-no-result"
        ),
    ],
)
def test_an_unknown_state_raises_instead_of_guessing(
    args: tuple[str | None, str | None, str | None, str | None, str | None], names: str
) -> None:
    with pytest.raises(UnknownRunState, match=names) as caught:
        map_state(*args)
    assert isinstance(caught.value, ExternalError) and caught.value.retryable is False


# --- the values -------------------------------------------------------------------------------------------


def test_a_run_status_has_a_failure_kind_exactly_when_it_failed() -> None:
    assert RunStatus(1, FAILED, USER).is_terminal
    assert not RunStatus(1, RUNNING).is_terminal
    with pytest.raises(ValueError, match="failure kind"):
        RunStatus(1, FAILED)
    with pytest.raises(ValueError, match="failure kind"):
        RunStatus(1, SUCCEEDED, TRANSIENT)


def test_a_launch_request_refuses_tokens_databricks_would_refuse() -> None:
    task = DatabricksJobTask(kind="databricks_job", job_id=1)
    LaunchRequest(task, "t" * MAX_TOKEN_LENGTH, "run")
    with pytest.raises(ValueError, match="idempotency token"):
        LaunchRequest(task, "t" * (MAX_TOKEN_LENGTH + 1), "run")
    with pytest.raises(ValueError, match="timeout"):
        LaunchRequest(task, "t", "run", timeout=timedelta(0))


# --- idempotency tokens -----------------------------------------------------------------------------------


def test_the_token_is_deterministic_and_fits_databricks_limit() -> None:
    job_id = "01J0ZZZZZZZZZZZZZZZZZZZZZZ"
    token = idempotency_token("s-1780315200000", 1, job_id)

    assert token == idempotency_token("s-1780315200000", 1, job_id)
    assert 0 < len(token) <= 64 and token.isalnum()
    long_key = "m-" + "x" * 500
    assert len(idempotency_token(long_key, 12, job_id)) <= 64


def test_the_token_differs_per_attempt_run_key_and_job() -> None:
    tokens = {
        idempotency_token("s-1", 1, "job-a"),
        idempotency_token("s-1", 2, "job-a"),
        idempotency_token("s-2", 1, "job-a"),
        idempotency_token("s-1", 1, "job-b"),
    }
    assert len(tokens) == 4


def test_the_token_is_the_hash_of_job_run_key_and_attempt() -> None:
    import hashlib

    expected = hashlib.sha256(b"job-a-s-1-a3").hexdigest()
    assert expected.startswith(idempotency_token("s-1", 3, "job-a"))
    with pytest.raises(ValueError):
        idempotency_token("s-1", 0, "job-a")


# --- placeholders -----------------------------------------------------------------------------------------

CONTEXT = {
    "scheduled_date": "2026-06-01",
    "scheduled_time": "2026-06-01T12:00:00Z",
    "run_key": "s-1780315200000",
    "job_id": "01J0ZZZZZZZZZZZZZZZZZZZZZZ",
    "attempt": "2",
    "tenant": "team-a",
    "run.id": "01J0ZZZZZZZZZZZZZZZZZZZZZZ_s-1780315200000",
    "steps.prepare.databricks_run_id": "4242",
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("{{scheduled_date}}", "2026-06-01", id="date"),
        pytest.param("--at={{ scheduled_time }}", "--at=2026-06-01T12:00:00Z", id="spaces-inside"),
        pytest.param(
            "{{tenant}}/{{job_id}}/{{run_key}}/a{{attempt}}",
            "team-a/01J0ZZZZZZZZZZZZZZZZZZZZZZ/s-1780315200000/a2",
            id="several",
        ),
        pytest.param("{{job.parameters.model}}", "{{job.parameters.model}}", id="databricks-reference"),
        pytest.param("{{job.run_id}}-{{run_key}}", "{{job.run_id}}-s-1780315200000", id="mixed"),
        pytest.param("{{unknown}}", "{{unknown}}", id="unknown-name"),
        pytest.param("{scheduled_date}", "{scheduled_date}", id="single-braces"),
        pytest.param("no placeholders", "no placeholders", id="plain"),
        pytest.param("{{run.id}}", "01J0ZZZZZZZZZZZZZZZZZZZZZZ_s-1780315200000", id="run-id"),
        pytest.param("{{ steps.prepare.databricks_run_id }}", "4242", id="step-reference"),
        pytest.param(
            "{{steps.other.databricks_run_id}}", "{{steps.other.databricks_run_id}}", id="unknown-step"
        ),
        pytest.param("{{tasks.prepare.run_id}}", "{{tasks.prepare.run_id}}", id="databricks-task-reference"),
    ],
)
def test_fill_placeholders_replaces_known_names_only(value: str, expected: str) -> None:
    assert fill_placeholders(value, CONTEXT) == expected


def test_a_filled_value_is_not_filled_again() -> None:
    assert fill_placeholders("{{tenant}}", {"tenant": "{{job_id}}", "job_id": "x"}) == "{{job_id}}"


def test_the_context_dates_the_run_in_the_schedule_zone_and_times_it_in_utc() -> None:
    scheduled_for = datetime(2026, 5, 31, 22, 30, tzinfo=UTC)  # 00:30 on June 1st in Berlin

    context = placeholder_context(
        scheduled_for=scheduled_for,
        run_key="s-1",
        job_id="job-a",
        attempt=3,
        tenant="team-a",
        zone=ZoneInfo("Europe/Berlin"),
    )

    assert context == {
        "scheduled_date": "2026-06-01",
        "scheduled_time": "2026-05-31T22:30:00Z",
        "run_key": "s-1",
        "job_id": "job-a",
        "attempt": "3",
        "tenant": "team-a",
        "run.id": "job-a_s-1",
        "run.scheduled_date": "2026-06-01",
    }
    step = placeholder_context(
        scheduled_for=scheduled_for, run_key="s-1.train", job_id="j", attempt=1, tenant="t"
    )
    assert step["run.id"] == "j_s-1"  # a pipeline step's {{run.id}} is its pipeline run
    utc = placeholder_context(scheduled_for=scheduled_for, run_key="s-1", job_id="j", attempt=1, tenant="t")
    assert utc["scheduled_date"] == "2026-05-31"


def test_the_port_module_does_not_load_the_sdk() -> None:
    # The app imports the port at start; the SDK costs ~2 s. A fresh interpreter tells the truth.
    import subprocess

    code = "import sys, shared.adapters.databricks, tests.fakes.databricks; " + (
        "print(any(m.startswith('databricks') for m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"
