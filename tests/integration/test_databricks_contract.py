"""One contract for the Databricks port, run against the in-memory fake and the real SDK adapter.

The real adapter talks HTTP to the local Databricks emulator through databricks-sdk, built by
`databricks_client` exactly as the app builds it (token auth). The fake and the emulator are
made to succeed, fail or hang in different ways, so each gets a small driver; the tests only
speak to the port and the driver. Tests after the contract cover what only the SDK adapter has
(the SDK's own retries, timeouts, auth, the submitted payload).
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import pytest

from shared.adapters.databricks import (
    Databricks,
    LaunchRequest,
    Phase,
    RunStatus,
    UnknownRunState,
    idempotency_token,
    placeholder_context,
)
from shared.config import Settings
from shared.domain.errors import ExternalError, NotFound
from shared.domain.job import Autoscale, ClusterSpec, DatabricksJobTask, DatabricksRunTask, PythonWheel
from shared.domain.run import FailureKind
from tests.fakes.databricks import FakeDatabricks, FakeOutcome

pytestmark = pytest.mark.timeout(30)

JOB_ID = "01J0CONTRACT0000000000000A"
SCHEDULED_FOR = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RUN_KEY = "s-1780315200000"
UNKNOWN_RUN = 987_654_321

Behaviour = Literal["succeed", "fail", "sleep"]
Endpoint = Literal["run-now", "runs/submit", "runs/get", "runs/cancel"]


def request(
    task: DatabricksJobTask | DatabricksRunTask, attempt: int = 1, timeout: timedelta | None = None
) -> LaunchRequest:
    context = placeholder_context(
        scheduled_for=SCHEDULED_FOR, run_key=RUN_KEY, job_id=JOB_ID, attempt=attempt, tenant="team-a"
    )
    return LaunchRequest(
        task=task,
        idempotency_token=idempotency_token(RUN_KEY, attempt, JOB_ID),
        run_name=f"contract {RUN_KEY} a{attempt}",
        context=context,
        timeout=timeout,
    )


def poll(port: Databricks, run_id: int, until: Callable[[RunStatus], bool] | None = None) -> list[RunStatus]:
    """Every status seen until `until` (default: terminal) holds; fails after 10 s."""
    done = until or (lambda s: s.is_terminal)
    seen: list[RunStatus] = []
    deadline = time.monotonic() + 10
    while True:
        seen.append(port.get_run(run_id))
        if done(seen[-1]):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {seen[-1].phase} after 10 s")
        time.sleep(0.02)


# --- drivers --------------------------------------------------------------------------------------------


class Driver(Protocol):
    port: Databricks

    def job_task(self, parameters: dict[str, str]) -> DatabricksJobTask: ...

    def python_task(self, behaviour: Behaviour, *args: str) -> DatabricksRunTask:
        """A task that succeeds, fails (its own error) or sleeps until cancelled; launch it next."""
        ...

    def next_run_fails_on_infrastructure(self) -> None: ...

    def next_call_fails(self, endpoint: Endpoint, status: int, retry_after: int | None = None) -> None: ...

    def starts_for_token(self, token: str) -> int: ...

    def sent_parameters(self, run_id: int) -> dict[str, str] | list[str]:
        """What reached Databricks as the run's job parameters or task arguments."""
        ...

    def no_process_left(self, run_id: int) -> bool: ...


class FakeDriver:
    def __init__(self) -> None:
        self.fake = FakeDatabricks()
        self.port: Databricks = self.fake

    def job_task(self, parameters: dict[str, str]) -> DatabricksJobTask:
        return DatabricksJobTask(kind="databricks_job", job_id=4242, parameters=parameters)

    def python_task(self, behaviour: Behaviour, *args: str) -> DatabricksRunTask:
        # The fake runs no files: the behaviour becomes the outcome of the next run it starts.
        outcome = {
            "succeed": FakeOutcome.SUCCESS,
            "fail": FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR"),
            "sleep": FakeOutcome.HANG,
        }[behaviour]
        self.fake.outcomes.append(outcome)
        return DatabricksRunTask(
            kind="databricks_run",
            python_file="/Workspace/task.py",
            parameters=list(args),
            existing_cluster_id="c",
        )

    def next_run_fails_on_infrastructure(self) -> None:
        self.fake.outcomes.append(FakeOutcome.failed(FailureKind.TRANSIENT, "CLUSTER_ERROR"))

    def next_call_fails(self, endpoint: Endpoint, status: int, retry_after: int | None = None) -> None:
        method = {
            "run-now": "launch",
            "runs/submit": "launch",
            "runs/get": "get_run",
            "runs/cancel": "cancel",
        }
        self.fake.fail_next_call(method[endpoint], status=status, retry_after=retry_after)

    def starts_for_token(self, token: str) -> int:
        return self.fake.starts_for_token(token)

    def sent_parameters(self, run_id: int) -> dict[str, str] | list[str]:
        return self.fake.runs[run_id].parameters

    def no_process_left(self, run_id: int) -> bool:
        return True


class EmulatorDriver:
    def __init__(self, emulator: Any, client: Any, scripts: Path) -> None:
        from shared.adapters.databricks_sdk import SdkDatabricks

        self.emulator = emulator
        self.client = client  # the same WorkspaceClient the adapter uses
        self.scripts = scripts
        self.port: Databricks = SdkDatabricks(client)

    def job_task(self, parameters: dict[str, str]) -> DatabricksJobTask:
        from databricks.sdk.service import jobs

        job_id = self.client.jobs.create(
            name="contract",
            tasks=[
                jobs.Task(task_key="main", notebook_task=jobs.NotebookTask(notebook_path="/Workspace/nb"))
            ],
            parameters=[jobs.JobParameterDefinition(name=name, default="") for name in parameters],
        ).job_id
        return DatabricksJobTask(kind="databricks_job", job_id=job_id, parameters=parameters)

    def python_task(self, behaviour: Behaviour, *args: str) -> DatabricksRunTask:
        source = {
            "succeed": "import time\ntime.sleep(0.2)\nprint('done')\n",
            "fail": "raise ValueError('bad input: 42')\n",
            "sleep": "import time\ntime.sleep(60)\n",
        }[behaviour]
        path = self.scripts / f"{behaviour}.py"
        path.write_text(textwrap.dedent(source))
        return DatabricksRunTask(
            kind="databricks_run", python_file=str(path), parameters=list(args), existing_cluster_id="c"
        )

    def next_run_fails_on_infrastructure(self) -> None:
        self.emulator.fail_runs(code="CLUSTER_ERROR", type="CLOUD_FAILURE")

    def next_call_fails(self, endpoint: Endpoint, status: int, retry_after: int | None = None) -> None:
        self.emulator.fail_requests(f"jobs/{endpoint}", status=status, retry_after=retry_after)

    def starts_for_token(self, token: str) -> int:
        return int(self.emulator.starts_for_token(token))

    def sent_parameters(self, run_id: int) -> dict[str, str] | list[str]:
        run = self.client.jobs.get_run(run_id)
        if run.job_parameters:
            return {p.name: p.value for p in run.job_parameters}
        return list(run.tasks[0].spark_python_task.parameters or [])

    def no_process_left(self, run_id: int) -> bool:
        (info,) = [r for r in self.emulator.runs() if r.run_id == run_id]
        deadline = time.monotonic() + 5
        while info.pid is not None and alive(info.pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return info.pid is not None  # a process was started, and it is gone


def alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (PID 1 in a container may never reap orphans)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Token auth from the environment as in Azure; no other DATABRICKS_*/ARM_* setting, no config file."""
    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-such-databrickscfg"))
    monkeypatch.setenv("DATABRICKS_TOKEN", "dev-token")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def emulator(sdk_env: None) -> Iterator[Any]:
    from devstack.databricks_emulator import Emulator

    # A visible setup phase (PENDING) before the task runs; simulated tasks (notebooks, wheels) are quick.
    with Emulator(setup_delay=0.2, simulated_task_seconds=0.1) as running:
        yield running


def connect(url: str, **options: Any) -> Any:
    from shared.adapters.databricks_sdk import databricks_client

    settings = Settings(DATABRICKS_HOST=url, DATABRICKS_AUTH="token")
    return databricks_client(settings, **options)


@pytest.fixture(params=["fake", "emulator"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Driver:
    if request.param == "fake":
        return FakeDriver()
    emulator = request.getfixturevalue("emulator")
    return EmulatorDriver(emulator, connect(emulator.url), tmp_path)


# --- the contract: launching ----------------------------------------------------------------------------


def test_a_databricks_job_is_launched_with_its_placeholders_filled(driver: Driver) -> None:
    task = driver.job_task(
        {
            "date": "{{scheduled_date}}",
            "run": "{{run_key}}-a{{attempt}}",
            "job_ref": "{{job.id}}",
            "fixed": "x",
        }
    )

    launched = driver.port.launch(request(task))

    assert launched.run_id > 0
    assert launched.run_page_url is not None and str(launched.run_id) in launched.run_page_url
    assert driver.sent_parameters(launched.run_id) == {
        "date": "2026-06-01",
        "run": f"{RUN_KEY}-a1",
        "job_ref": "{{job.id}}",  # Databricks' own reference, resolved by Databricks
        "fixed": "x",
    }
    assert poll(driver.port, launched.run_id)[-1].phase is Phase.SUCCEEDED


def test_the_same_token_starts_one_run_and_a_new_attempt_another(driver: Driver) -> None:
    task = driver.job_task({})
    first, second = driver.port.launch(request(task)), driver.port.launch(request(task))
    retry = driver.port.launch(request(task, attempt=2))

    assert first.run_id == second.run_id != retry.run_id
    assert driver.starts_for_token(idempotency_token(RUN_KEY, 1, JOB_ID)) == 1
    assert driver.starts_for_token(idempotency_token(RUN_KEY, 2, JOB_ID)) == 1


def test_a_python_file_run_goes_through_its_phases_and_succeeds(driver: Driver) -> None:
    task = driver.python_task("succeed", "--day={{scheduled_date}}", "--tenant={{tenant}}")

    launched = driver.port.launch(request(task))
    seen = poll(driver.port, launched.run_id)

    phases = [s.phase for s in seen]
    assert phases[0] is Phase.PENDING and Phase.RUNNING in phases
    assert set(phases[:-1]) <= {Phase.PENDING, Phase.RUNNING, Phase.TERMINATING}
    final = seen[-1]
    assert (final.run_id, final.phase, final.failure, final.code) == (
        launched.run_id,
        Phase.SUCCEEDED,
        None,
        "SUCCESS",
    )
    assert (final.life_cycle_state, final.result_state) == ("TERMINATED", "SUCCESS")
    assert final.started_at is not None and final.ended_at is not None and final.ended_at >= final.started_at
    assert seen[0].ended_at is None
    assert final.run_page_url == launched.run_page_url
    assert driver.sent_parameters(launched.run_id) == ["--day=2026-06-01", "--tenant=team-a"]


def test_a_notebook_run_gives_the_value_it_exited_with(driver: Driver) -> None:
    """`result`: a one-task notebook run's exit value (the emulator and the fake play
    `dbutils.notebook.exit` with the notebook's `exit_value` widget); None for other runs."""
    notebook = DatabricksRunTask(
        kind="databricks_run",
        notebook_path="/Workspace/Users/me/evaluate",
        parameters={"exit_value": "auc-{{scheduled_date}}"},
        existing_cluster_id="0601-120000-abcd",
    )
    launched = driver.port.launch(request(notebook))
    assert poll(driver.port, launched.run_id)[-1].phase is Phase.SUCCEEDED
    assert driver.port.result(launched.run_id) == "auc-2026-06-01"
    plain = driver.port.launch(request(driver.python_task("succeed"), attempt=2))
    poll(driver.port, plain.run_id)
    assert driver.port.result(plain.run_id) is None
    with pytest.raises(NotFound):
        driver.port.result(UNKNOWN_RUN)


# --- the contract: how runs end -------------------------------------------------------------------------


def test_a_task_that_fails_is_a_user_failure(driver: Driver) -> None:
    launched = driver.port.launch(request(driver.python_task("fail")))

    final = poll(driver.port, launched.run_id)[-1]

    assert (final.phase, final.failure, final.code) == (Phase.FAILED, FailureKind.USER, "RUN_EXECUTION_ERROR")
    assert final.result_state == "FAILED" and final.message


def test_an_infrastructure_failure_is_transient(driver: Driver) -> None:
    driver.next_run_fails_on_infrastructure()
    launched = driver.port.launch(request(driver.python_task("succeed")))

    final = poll(driver.port, launched.run_id)[-1]

    assert (final.phase, final.failure, final.code) == (Phase.FAILED, FailureKind.TRANSIENT, "CLUSTER_ERROR")


def test_cancel_ends_a_running_run_as_cancelled_and_stops_it(driver: Driver) -> None:
    launched = driver.port.launch(request(driver.python_task("sleep")))
    poll(driver.port, launched.run_id, until=lambda s: s.phase is Phase.RUNNING)

    driver.port.cancel(launched.run_id)
    final = poll(driver.port, launched.run_id)[-1]

    assert (final.phase, final.failure) == (Phase.CANCELLED, None)
    assert final.result_state == "CANCELED"
    assert driver.no_process_left(launched.run_id)


def test_cancelling_a_finished_run_changes_nothing(driver: Driver) -> None:
    launched = driver.port.launch(request(driver.python_task("succeed")))
    poll(driver.port, launched.run_id)

    driver.port.cancel(launched.run_id)
    driver.port.cancel(launched.run_id)

    assert driver.port.get_run(launched.run_id).phase is Phase.SUCCEEDED


def test_an_unknown_run_is_not_found(driver: Driver) -> None:
    with pytest.raises(NotFound):
        driver.port.get_run(UNKNOWN_RUN)
    with pytest.raises(NotFound):
        driver.port.cancel(UNKNOWN_RUN)


# --- the contract: errors -------------------------------------------------------------------------------


def test_throttling_beyond_what_may_be_waited_is_retryable_after_the_servers_delay(driver: Driver) -> None:
    task = driver.python_task("succeed")
    driver.next_call_fails("runs/submit", 429, retry_after=60)
    token = idempotency_token(RUN_KEY, 1, JOB_ID)

    started = time.monotonic()
    with pytest.raises(ExternalError) as caught:
        driver.port.launch(request(task))

    assert caught.value.retryable is True and caught.value.retry_after == 60
    assert time.monotonic() - started < 5  # nobody sat out the minute
    assert driver.starts_for_token(token) == 0
    assert driver.port.launch(request(task)).run_id > 0  # the redelivered launch goes through
    assert driver.starts_for_token(token) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_retryable(driver: Driver, status: int) -> None:
    launched = driver.port.launch(request(driver.python_task("succeed")))
    driver.next_call_fails("runs/get", status, retry_after=30 if status == 503 else None)

    with pytest.raises(ExternalError) as caught:
        driver.port.get_run(launched.run_id)

    assert caught.value.retryable is True
    assert caught.value.retry_after == (30 if status == 503 else None)
    assert driver.port.get_run(launched.run_id).run_id == launched.run_id


@pytest.mark.parametrize(
    ("endpoint", "status"),
    [("runs/submit", 400), ("runs/get", 403), ("runs/cancel", 401), ("runs/submit", 501)],
)
def test_a_rejected_request_is_not_retryable(driver: Driver, endpoint: Endpoint, status: int) -> None:
    launched = driver.port.launch(request(driver.python_task("succeed")))
    driver.next_call_fails(endpoint, status)
    calls: dict[str, Callable[[], object]] = {
        "runs/submit": lambda: driver.port.launch(request(driver.python_task("succeed"), attempt=2)),
        "runs/get": lambda: driver.port.get_run(launched.run_id),
        "runs/cancel": lambda: driver.port.cancel(launched.run_id),
    }

    with pytest.raises(ExternalError) as caught:
        calls[endpoint]()

    assert caught.value.retryable is False and caught.value.retry_after is None
    assert not isinstance(caught.value, NotFound)


# --- the SDK adapter only -------------------------------------------------------------------------------


@pytest.fixture
def sdk_driver(emulator: Any, tmp_path: Path) -> EmulatorDriver:
    return EmulatorDriver(emulator, connect(emulator.url), tmp_path)


def test_a_short_throttle_on_run_now_is_absorbed_by_the_sdk(sdk_driver: EmulatorDriver) -> None:
    task = sdk_driver.job_task({})
    sdk_driver.emulator.fail_requests("jobs/run-now", status=429, retry_after=1)

    launched = sdk_driver.port.launch(request(task))

    assert launched.run_id > 0
    assert sdk_driver.emulator.calls["jobs/run-now"] == 2  # the SDK waited Retry-After and tried again
    assert sdk_driver.starts_for_token(idempotency_token(RUN_KEY, 1, JOB_ID)) == 1


def test_throttling_that_outlasts_the_retry_budget_is_retryable(emulator: Any, tmp_path: Path) -> None:
    driver = EmulatorDriver(emulator, connect(emulator.url, retry_timeout=timedelta(seconds=2)), tmp_path)
    launched = driver.port.launch(request(driver.python_task("succeed")))
    emulator.fail_requests("jobs/runs/get", status=429, retry_after=1, times=10)

    started = time.monotonic()
    with pytest.raises(ExternalError) as caught:
        driver.port.get_run(launched.run_id)

    assert caught.value.retryable is True and caught.value.retry_after == 1
    assert "gave up retrying" in caught.value.detail
    # The SDK slept Retry-After (+ up to 1 s of jitter) at least once, then its budget was spent.
    assert 1 <= time.monotonic() - started < 6


def test_run_now_of_a_job_that_does_not_exist_is_not_retryable(sdk_driver: EmulatorDriver) -> None:
    task = DatabricksJobTask(kind="databricks_job", job_id=999_999)

    with pytest.raises(ExternalError) as caught:
        sdk_driver.port.launch(request(task))

    assert caught.value.retryable is False and "does not exist" in caught.value.detail


def test_a_task_over_its_timeout_is_timed_out(sdk_driver: EmulatorDriver) -> None:
    task = sdk_driver.python_task("sleep")

    launched = sdk_driver.port.launch(request(task, timeout=timedelta(seconds=1)))
    final = poll(sdk_driver.port, launched.run_id)[-1]

    assert (final.phase, final.failure) == (Phase.TIMED_OUT, FailureKind.TIMEOUT)
    assert (final.code, final.result_state) == ("CANCELED", "TIMEDOUT")


@pytest.mark.parametrize("held", ["QUEUED", "BLOCKED", "WAITING_FOR_RETRY"])
def test_queued_blocked_and_waiting_runs_are_pending(sdk_driver: EmulatorDriver, held: str) -> None:
    sdk_driver.emulator.hold_runs(state=held)
    launched = sdk_driver.port.launch(request(sdk_driver.python_task("succeed")))

    status = sdk_driver.port.get_run(launched.run_id)
    assert (status.phase, status.life_cycle_state) == (Phase.PENDING, held)

    sdk_driver.port.cancel(launched.run_id)
    assert poll(sdk_driver.port, launched.run_id)[-1].phase is Phase.CANCELLED


def test_an_internal_error_life_cycle_is_a_transient_failure(sdk_driver: EmulatorDriver) -> None:
    sdk_driver.emulator.fail_runs(
        code="DRIVER_ERROR", type="INTERNAL_ERROR", life_cycle_state="INTERNAL_ERROR"
    )
    launched = sdk_driver.port.launch(request(sdk_driver.python_task("succeed")))

    final = poll(sdk_driver.port, launched.run_id)[-1]

    assert (final.phase, final.failure, final.code) == (Phase.FAILED, FailureKind.TRANSIENT, "DRIVER_ERROR")
    assert final.life_cycle_state == "INTERNAL_ERROR"


def test_a_wheel_run_is_submitted_with_its_cluster_library_arguments_and_timeout(
    sdk_driver: EmulatorDriver,
) -> None:
    cluster = ClusterSpec(
        spark_version="15.4.x-scala2.12",
        node_type_id="Standard_DS3_v2",
        autoscale=Autoscale(min_workers=1, max_workers=4),
        spark_env_vars={"STAGE": "prod"},
    )
    wheel = PythonWheel(
        package_name="trainer", entry_point="main", wheel="dbfs:/wheels/trainer-1.0-py3-none-any.whl"
    )
    task = DatabricksRunTask(
        kind="databricks_run", python_wheel=wheel, parameters=["--date={{scheduled_date}}"], cluster=cluster
    )

    launched = sdk_driver.port.launch(request(task, timeout=timedelta(minutes=90)))

    sent = sdk_driver.client.jobs.get_run(launched.run_id).tasks[0]
    assert sent.python_wheel_task.package_name == "trainer" and sent.python_wheel_task.entry_point == "main"
    assert sent.python_wheel_task.parameters == ["--date=2026-06-01"]
    assert [library.whl for library in sent.libraries] == [wheel.wheel]
    assert sent.new_cluster.spark_version == "15.4.x-scala2.12" and sent.new_cluster.num_workers is None
    assert (sent.new_cluster.autoscale.min_workers, sent.new_cluster.autoscale.max_workers) == (1, 4)
    assert sent.new_cluster.spark_env_vars == {"STAGE": "prod"} and sent.new_cluster.spark_conf is None
    assert sent.timeout_seconds == 5400 and sent.existing_cluster_id is None
    assert poll(sdk_driver.port, launched.run_id)[-1].phase is Phase.SUCCEEDED


def test_a_notebook_run_gets_its_widgets_as_base_parameters(sdk_driver: EmulatorDriver) -> None:
    task = DatabricksRunTask(
        kind="databricks_run",
        notebook_path="/Workspace/Users/me/train",
        parameters={"date": "{{scheduled_date}}", "upstream": "{{job.parameters.x}}"},
        existing_cluster_id="0601-120000-abcd",
    )

    launched = sdk_driver.port.launch(request(task))

    sent = sdk_driver.client.jobs.get_run(launched.run_id).tasks[0]
    assert sent.notebook_task.notebook_path == "/Workspace/Users/me/train"
    assert sent.notebook_task.base_parameters == {"date": "2026-06-01", "upstream": "{{job.parameters.x}}"}
    assert sent.existing_cluster_id == "0601-120000-abcd" and sent.new_cluster is None
    assert sent.timeout_seconds is None


class StubCredential:
    """An azure-identity credential that records the scopes it was asked for."""

    def __init__(self, error: Exception | None = None) -> None:
        self.scopes: list[str] = []
        self.error = error

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.extend(scopes)
        if self.error is not None:
            raise self.error
        return AccessToken("entra-token", int(time.time()) + 3600)


def test_managed_identity_auth_asks_entra_for_an_azure_databricks_token(emulator: Any) -> None:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    from shared.adapters.databricks_sdk import AZURE_DATABRICKS_SCOPE, EntraTokenStrategy, SdkDatabricks

    credential = StubCredential()
    config = Config(
        host=emulator.url, credentials_strategy=EntraTokenStrategy(credential), retry_timeout_seconds=5
    )
    port = SdkDatabricks(WorkspaceClient(config=config))

    with pytest.raises(NotFound):  # authenticated: the emulator answers 401 without a bearer token
        port.get_run(UNKNOWN_RUN)
    assert credential.scopes and set(credential.scopes) == {AZURE_DATABRICKS_SCOPE}
    assert AZURE_DATABRICKS_SCOPE == "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"


def test_no_managed_identity_is_a_non_retryable_error(emulator: Any) -> None:
    from azure.core.exceptions import ClientAuthenticationError
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    from shared.adapters.databricks_sdk import EntraTokenStrategy, SdkDatabricks

    credential = StubCredential(ClientAuthenticationError("no managed identity endpoint"))
    config = Config(
        host=emulator.url, credentials_strategy=EntraTokenStrategy(credential), retry_timeout_seconds=5
    )
    port = SdkDatabricks(WorkspaceClient(config=config))

    with pytest.raises(ExternalError) as caught:
        port.get_run(UNKNOWN_RUN)

    assert caught.value.retryable is False and "Entra token" in caught.value.detail
    assert "jobs/runs/get" not in emulator.calls  # nothing was sent without a token


def test_the_client_needs_a_host_and_token_auth_needs_a_token(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="DATABRICKS_HOST"):
        connect("")
    monkeypatch.delenv("DATABRICKS_TOKEN")
    with pytest.raises(ValueError, match=r"cannot configure default credentials.*auth_type=pat"):
        connect(emulator.url)


# Canned runs/get answers: what the emulator cannot be made to say.
RUN_WITH_AN_UNKNOWN_STATUS: dict[str, Any] = {
    "run_id": 7,
    "state": {"life_cycle_state": "RUNNING", "state_message": ""},
    "status": {"state": "HIBERNATING"},
    "start_time": 1780315200000,
    "end_time": 0,
}
RUN_STOPPED_BY_THE_PLATFORM: dict[str, Any] = {
    "run_id": 8,
    "run_page_url": "https://adb-1.azuredatabricks.net/#job/1/run/8",
    "state": {"life_cycle_state": "TERMINATED", "result_state": "TIMEDOUT", "state_message": "Timed out"},
    "status": {
        "state": "TERMINATED",
        "termination_details": {"code": "CANCELED", "type": "CLIENT_ERROR", "message": "Run timed out."},
    },
    "start_time": 1780315200000,
    "end_time": 1780318800000,
}


def test_a_runs_get_answer_is_read_from_its_json() -> None:
    from shared.adapters.databricks_sdk import run_status

    status = run_status(8, RUN_STOPPED_BY_THE_PLATFORM)

    assert status == RunStatus(
        run_id=8,
        phase=Phase.TIMED_OUT,
        failure=FailureKind.TIMEOUT,
        code="CANCELED",
        message="Run timed out.",
        life_cycle_state="TERMINATED",
        result_state="TIMEDOUT",
        run_page_url="https://adb-1.azuredatabricks.net/#job/1/run/8",
        started_at=SCHEDULED_FOR,
        ended_at=SCHEDULED_FOR + timedelta(hours=1),
    )
    with pytest.raises(UnknownRunState, match="HIBERNATING"):
        run_status(7, RUN_WITH_AN_UNKNOWN_STATUS)


# --- the fake only ----------------------------------------------------------------------------------------


def test_the_fake_ends_a_run_when_told_and_counts_calls() -> None:
    fake = FakeDatabricks()
    task = DatabricksJobTask(kind="databricks_job", job_id=1)
    launched = fake.launch(request(task))

    fake.finish(launched.run_id, Phase.TIMED_OUT, code="CANCELED")
    status = fake.get_run(launched.run_id)

    assert (status.phase, status.failure, status.code) == (Phase.TIMED_OUT, FailureKind.TIMEOUT, "CANCELED")
    assert status.ended_at is not None
    fake.cancel(launched.run_id)
    assert fake.get_run(launched.run_id).phase is Phase.TIMED_OUT
    assert fake.calls == {"launch": 1, "get_run": 2, "cancel": 1}
    assert fake.launches == [request(task)]
    with pytest.raises(ValueError, match="terminal"):
        fake.finish(launched.run_id, Phase.RUNNING)
    with pytest.raises(ValueError, match="failure kind"):
        FakeOutcome(Phase.FAILED)


def test_the_fake_fails_the_next_call_of_any_method_then_recovers() -> None:
    fake = FakeDatabricks()
    launched = fake.launch(request(DatabricksJobTask(kind="databricks_job", job_id=1)))
    fake.fail_next_call(status=404, times=2)

    with pytest.raises(NotFound):
        fake.get_run(launched.run_id)
    with pytest.raises(ExternalError) as caught:
        fake.launch(request(DatabricksJobTask(kind="databricks_job", job_id=1), attempt=2))
    assert caught.value.retryable is False and not isinstance(caught.value, NotFound)

    assert fake.get_run(launched.run_id).phase is Phase.PENDING
