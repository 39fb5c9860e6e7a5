"""The Databricks port on databricks-sdk (`WorkspaceClient`). Import it lazily: the SDK takes ~2 s to load.

Nothing here waits for a run: no `*_and_wait`, no `Wait.result()`. The SDK's own retries
(429/503 after Retry-After, connection errors, a few transient 500s) are kept short, because
a function must not block for minutes: `retry_timeout` bounds the whole retry loop, and a
server asking for a wait longer than `max_wait` ends it at once. Either way the caller gets
`ExternalError(retryable=True, retry_after=...)` and Service Bus brings the message back later.

Authentication (`DATABRICKS_AUTH`), always against `DATABRICKS_HOST`:

- `token`: a personal access token in `DATABRICKS_TOKEN`, read by the SDK itself (auth type `pat`).
- `service_principal`: an Entra ID service principal with a client secret, through the SDK's
  `azure-client-secret` strategy, which reads `ARM_CLIENT_ID`, `ARM_CLIENT_SECRET` and
  `ARM_TENANT_ID` (the tenant is discovered from the workspace when absent). Chosen over
  Databricks OAuth M2M (`DATABRICKS_CLIENT_ID`/`DATABRICKS_CLIENT_SECRET`) so the principal and
  its secret live in Entra ID with the rest of the deployment's identities.
- `managed_identity` (the default in Azure): the Function App's user-assigned identity
  (`AZURE_CLIENT_ID`) gets an Entra token for the Azure Databricks resource through azure-identity;
  the SDK has no strategy of its own for it. The identity must be added to the workspace as a
  service principal; no Databricks secret exists anywhere.

Every `WorkspaceClient` sends one unauthenticated `GET /.well-known/databricks-config` when it is
built (host metadata discovery), so build one per process (the bootstrap caches it).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from azure.core.exceptions import AzureError, ClientAuthenticationError
from databricks.sdk import WorkspaceClient
from databricks.sdk.clock import RealClock
from databricks.sdk.config import Config
from databricks.sdk.credentials_provider import CredentialsProvider, CredentialsStrategy
from databricks.sdk.errors import (
    Cancelled,
    DeadlineExceeded,
    InternalError,
    InvalidParameterValue,
    TemporarilyUnavailable,
    TooManyRequests,
)
from databricks.sdk.errors import NotFound as SdkNotFound
from databricks.sdk.errors.base import DatabricksError
from databricks.sdk.service import compute, jobs

from shared.adapters.databricks import (
    LaunchedRun,
    LaunchRequest,
    RunStatus,
    fill_placeholders,
    map_state,
)
from shared.config import DatabricksAuth, Settings
from shared.domain.errors import ExternalError, NotFound, SchedulerError
from shared.domain.job import ClusterSpec, DatabricksJobTask, DatabricksRunTask

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

log = logging.getLogger(__name__)

AZURE_DATABRICKS_SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"  # the Azure Databricks app id
RETRY_TIMEOUT = timedelta(seconds=30)
HTTP_TIMEOUT = timedelta(seconds=20)
MAX_WAIT = timedelta(seconds=10)

_TASK_KEY = "main"
_RUNS_GET = "/api/2.2/jobs/runs/get"  # the path JobsAPI.get_run uses in databricks-sdk 0.156
_DOES_NOT_EXIST = re.compile(r"\bdoes not exist\b|doesn't exist")
# 429, 500, 503, 504 and 499; a 501 (not implemented / not enabled) will not change on a retry.
_RETRYABLE = (TooManyRequests, InternalError, TemporarilyUnavailable, DeadlineExceeded, Cancelled)


# --- the client ----------------------------------------------------------------------------------------


def databricks_client(
    settings: Settings,
    *,
    retry_timeout: timedelta = RETRY_TIMEOUT,
    http_timeout: timedelta = HTTP_TIMEOUT,
    max_wait: timedelta = MAX_WAIT,
) -> WorkspaceClient:
    """A client for `settings.databricks_host`, authenticated as `settings.databricks_auth` says."""
    if not settings.databricks_host:
        raise ValueError("set DATABRICKS_HOST to the workspace URL")
    options: dict[str, Any] = {
        "host": settings.databricks_host,
        "retry_timeout_seconds": max(1, math.ceil(retry_timeout.total_seconds())),
        "http_timeout_seconds": http_timeout.total_seconds(),
        "clock": _BoundedWaitClock(max_wait.total_seconds()),
    }
    if settings.databricks_auth is DatabricksAuth.TOKEN:
        config = Config(auth_type="pat", **options)
    elif settings.databricks_auth is DatabricksAuth.SERVICE_PRINCIPAL:
        config = Config(auth_type="azure-client-secret", **options)
    else:
        from azure.identity import ManagedIdentityCredential

        credential = ManagedIdentityCredential(client_id=settings.azure_client_id)
        config = Config(credentials_strategy=EntraTokenStrategy(credential), **options)
    return WorkspaceClient(config=config)


class EntraTokenStrategy(CredentialsStrategy):
    """Bearer tokens for Azure Databricks from an azure-identity credential (the app's managed identity).

    The credential caches its token and refreshes it before it expires.
    """

    def __init__(self, credential: TokenCredential) -> None:
        self._credential = credential

    def auth_type(self) -> str:
        return "azure-managed-identity"

    def __call__(self, cfg: Config) -> CredentialsProvider:
        def headers() -> dict[str, str]:
            try:
                token = self._credential.get_token(AZURE_DATABRICKS_SCOPE)
            except ClientAuthenticationError as err:
                # No identity here, or not allowed: a redelivery gets the same answer.
                raise ExternalError(f"databricks auth: no Entra token: {err}", retryable=False) from err
            except AzureError as err:
                raise ExternalError(f"databricks auth: no Entra token: {err}", retryable=True) from err
            return {"Authorization": f"Bearer {token.token}"}

        return headers


class _ServerAskedToWait(Exception):
    """Raised from the SDK's retry sleep when the server asks for a longer wait than a function may block."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the server asked to wait {seconds:.0f} s")
        self.seconds = seconds


class _BoundedWaitClock(RealClock):
    """The SDK sleeps Retry-After (+ < 1 s of jitter) between attempts whatever its retry budget;
    this clock refuses waits over `max_wait`. The SDK calls `sleep` while handling the error it
    retries, so that error is the refusal's `__context__`."""

    def __init__(self, max_wait: float) -> None:
        self._max_wait = max_wait

    def sleep(self, seconds: float) -> None:
        if seconds > self._max_wait:
            raise _ServerAskedToWait(seconds)
        time.sleep(seconds)


# --- the adapter ---------------------------------------------------------------------------------------

# What a call through the SDK raises when Databricks or the network fails: DatabricksError, requests'
# errors and the SDK's TimeoutError (its retry budget spent) are all OSErrors.
_CALL_ERRORS = (OSError, _ServerAskedToWait)


class SdkDatabricks:
    """The `Databricks` port on a `WorkspaceClient`."""

    def __init__(self, client: WorkspaceClient) -> None:
        self._client = client

    def launch(self, request: LaunchRequest) -> LaunchedRun:
        task = request.task
        operation = "run-now" if isinstance(task, DatabricksJobTask) else "runs/submit"
        try:
            if isinstance(task, DatabricksJobTask):
                run_id = self._run_now(task, request)
            else:
                run_id = self._submit(task, request)
        except _CALL_ERRORS as err:
            raise _external(err, operation) from err
        log.info(
            "databricks %s: run %s (token %s)",
            operation,
            run_id,
            request.idempotency_token,
            extra={"databricks_run_id": run_id},
        )
        return LaunchedRun(run_id, self._page_url(run_id))

    def get_run(self, run_id: int) -> RunStatus:
        return run_status(run_id, self._read(run_id))

    def cancel(self, run_id: int) -> None:
        try:
            self._client.jobs.cancel_run(run_id)  # a Wait: nothing polls unless .result() is called
        except SdkNotFound as err:
            raise NotFound(f"databricks run {run_id} not found") from err
        except InvalidParameterValue as err:
            if _DOES_NOT_EXIST.search(str(err)):  # what Databricks answers for an unknown run id
                raise NotFound(f"databricks run {run_id} not found") from err
            raise _external(err, "runs/cancel") from err
        except _CALL_ERRORS as err:
            raise _external(err, "runs/cancel") from err

    def result(self, run_id: int) -> str | None:
        tasks = self._read(run_id).get("tasks") or []
        if len(tasks) != 1 or "notebook_task" not in tasks[0]:
            return None
        try:
            output = self._client.jobs.get_run_output(int(tasks[0]["run_id"]))
        except SdkNotFound as err:
            raise NotFound(f"databricks run {run_id} not found") from err
        except _CALL_ERRORS as err:
            raise _external(err, "runs/get-output") from err
        return output.notebook_output.result if output.notebook_output else None

    def _run_now(self, task: DatabricksJobTask, request: LaunchRequest) -> int:
        # run-now takes no timeout: the job's own settings apply, and the poll enforces ours.
        parameters = {k: fill_placeholders(v, request.context) for k, v in task.parameters.items()}
        wait = self._client.jobs.run_now(
            task.job_id,
            job_parameters=parameters or None,  # None: the job's defaults
            idempotency_token=request.idempotency_token,
        )
        return _run_id(cast(jobs.RunNowResponse, wait.response).run_id)

    def _submit(self, task: DatabricksRunTask, request: LaunchRequest) -> int:
        timeout = _seconds(request.timeout)
        wait = self._client.jobs.submit(
            run_name=request.run_name,
            tasks=[submit_task(task, request.context, timeout)],
            idempotency_token=request.idempotency_token,
            timeout_seconds=timeout,
        )
        return _run_id(cast(jobs.SubmitRunResponse, wait.response).run_id)

    def _read(self, run_id: int) -> Mapping[str, Any]:
        # Read as JSON, not as `jobs.Run`: the SDK turns enum values it does not know into None,
        # which would hide a new Databricks state instead of failing on it. One request, too: the
        # SDK's get_run pages through tasks, which a state check does not need.
        headers = {"Accept": "application/json"}
        if self._client.config.workspace_id:
            headers["X-Databricks-Workspace-Id"] = self._client.config.workspace_id
        try:
            body = self._client.api_client.do("GET", _RUNS_GET, query={"run_id": run_id}, headers=headers)
        except SdkNotFound as err:  # also Databricks' 400 "Run N does not exist" (an SDK override)
            raise NotFound(f"databricks run {run_id} not found") from err
        except _CALL_ERRORS as err:
            raise _external(err, "runs/get") from err
        if not isinstance(body, dict):
            raise ExternalError(f"databricks runs/get: unexpected answer for run {run_id}", retryable=True)
        return body

    def _page_url(self, run_id: int) -> str | None:
        """Best effort: the run is started and its id must reach the caller; the first poll records
        the page URL anyway if this read fails."""
        try:
            url = self._read(run_id).get("run_page_url")
        except SchedulerError as err:
            log.warning("databricks run %s: no page URL yet: %s", run_id, err)
            return None
        return str(url) if url else None


def run_status(run_id: int, body: Mapping[str, Any]) -> RunStatus:
    """A `runs/get` answer (JSON) as the port's `RunStatus`."""
    state = body.get("state") or {}
    status = body.get("status") or {}
    details = status.get("termination_details") or {}
    phase, failure = map_state(
        life_cycle_state=state.get("life_cycle_state"),
        result_state=state.get("result_state"),
        status_state=status.get("state"),
        termination_code=details.get("code"),
        termination_type=details.get("type"),
    )
    return RunStatus(
        run_id=run_id,
        phase=phase,
        failure=failure,
        code=details.get("code"),
        message=str(details.get("message") or state.get("state_message") or ""),
        life_cycle_state=state.get("life_cycle_state"),
        result_state=state.get("result_state"),
        run_page_url=body.get("run_page_url"),
        started_at=_instant(body.get("start_time")),
        ended_at=_instant(body.get("end_time")),
    )


def submit_task(
    task: DatabricksRunTask, context: Mapping[str, str], timeout_seconds: int | None
) -> jobs.SubmitTask:
    """The one task of a `runs/submit`, placeholders filled."""
    given = task.parameters if isinstance(task.parameters, list) else []
    args = [fill_placeholders(a, context) for a in given]
    submit = jobs.SubmitTask(
        task_key=_TASK_KEY,
        existing_cluster_id=task.existing_cluster_id,
        new_cluster=_cluster(task.cluster) if task.cluster is not None else None,
        # The run's timeout bounds the whole run, the task's its execution: one task, one limit.
        timeout_seconds=timeout_seconds,
    )
    if task.notebook_path is not None:
        widgets = task.parameters if isinstance(task.parameters, dict) else {}
        submit.notebook_task = jobs.NotebookTask(
            notebook_path=task.notebook_path,
            base_parameters={k: fill_placeholders(v, context) for k, v in widgets.items()} or None,
        )
    elif task.python_file is not None:
        submit.spark_python_task = jobs.SparkPythonTask(python_file=task.python_file, parameters=args or None)
    elif task.python_wheel is not None:
        wheel = task.python_wheel
        submit.python_wheel_task = jobs.PythonWheelTask(
            package_name=wheel.package_name, entry_point=wheel.entry_point, parameters=args or None
        )
        if wheel.wheel is not None:
            submit.libraries = [compute.Library(whl=wheel.wheel)]
    return submit


def _cluster(spec: ClusterSpec) -> compute.ClusterSpec:
    autoscale = spec.autoscale
    return compute.ClusterSpec(
        spark_version=spec.spark_version,
        node_type_id=spec.node_type_id,
        instance_pool_id=spec.instance_pool_id,
        policy_id=spec.policy_id,
        num_workers=spec.num_workers,
        autoscale=(
            compute.AutoScale(min_workers=autoscale.min_workers, max_workers=autoscale.max_workers)
            if autoscale is not None
            else None
        ),
        spark_conf=dict(spec.spark_conf) or None,
        spark_env_vars=dict(spec.spark_env_vars) or None,
        custom_tags=dict(spec.custom_tags) or None,
    )


def _external(err: BaseException, operation: str) -> SchedulerError:
    """The one place SDK and transport errors become the port's: 429 and 5xx retryable (with the
    server's Retry-After), other 4xx not, connection trouble retryable."""
    if isinstance(err, _ServerAskedToWait):
        return ExternalError(
            f"databricks {operation}: {err} after: {err.__context__}",
            retryable=True,
            retry_after=_retry_after(err.__context__) or err.seconds,
        )
    if isinstance(err, TimeoutError):
        # The SDK's retry budget ran out; what it kept retrying is the cause.
        last = err.__cause__
        return ExternalError(
            f"databricks {operation}: gave up retrying: {last or err}",
            retryable=True,
            retry_after=_retry_after(last),
        )
    if isinstance(err, DatabricksError):
        retry_after = _retry_after(err)
        # A bare DatabricksError is a status the SDK has no class for: in practice a gateway's 502.
        retryable = retry_after is not None or isinstance(err, _RETRYABLE) or type(err) is DatabricksError
        code = err.error_code or type(err).__name__
        return ExternalError(
            f"databricks {operation}: {code}: {err}", retryable=retryable, retry_after=retry_after
        )
    # Anything else that reaches here is an OSError from the transport (requests' errors are OSErrors).
    return ExternalError(f"databricks {operation}: {type(err).__name__}: {err}", retryable=True)


def _retry_after(err: BaseException | None) -> float | None:
    seconds = getattr(err, "retry_after_secs", None)  # the SDK sets it from Retry-After on 429 and 503
    return float(seconds) if seconds is not None else None


def _run_id(value: int | None) -> int:
    if value is None:
        # A retry with the same token is safe: it returns the run if one was started.
        raise ExternalError("databricks: the launch answer has no run_id", retryable=True)
    return value


def _seconds(timeout: timedelta | None) -> int | None:
    return None if timeout is None else max(1, math.ceil(timeout.total_seconds()))


def _instant(epoch_ms: object) -> datetime | None:
    # Databricks sends 0 for "not yet" (an end_time of a running run).
    if not isinstance(epoch_ms, int) or epoch_ms <= 0:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)
