"""The local Databricks Jobs emulator, driven through the real databricks-sdk over loopback HTTP."""

from __future__ import annotations

import json
import os
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import httpx2 as httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import InternalError, InvalidParameterValue, ResourceDoesNotExist
from databricks.sdk.service import jobs

from devstack.databricks_emulator import Emulator

pytestmark = pytest.mark.timeout(30)

TERMINATED = jobs.RunLifecycleStateV2State.TERMINATED
RUNNING = jobs.RunLifecycleStateV2State.RUNNING


# --- helpers -------------------------------------------------------------------------------------------


def connect(url: str) -> WorkspaceClient:
    # auth_type="pat" picks exactly one credentials strategy (nothing probes Azure CLI, metadata services or
    # OAuth); host + token also make the SDK skip ~/.databrickscfg. The bounded retry budget keeps a broken
    # emulator from stalling a test for the SDK's default 300 s.
    config = Config(
        host=url, token="dev-token", auth_type="pat", retry_timeout_seconds=15, http_timeout_seconds=10
    )
    return WorkspaceClient(config=config)


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.03)


def wait_for_run(
    client: WorkspaceClient,
    run_id: int,
    done: Callable[[jobs.Run], bool] | None = None,
    timeout: float = 10.0,
) -> jobs.Run:
    """Poll runs/get until ``done`` (default: TERMINATED) holds; fails with the last state seen."""
    done = done or (lambda run: run.status is not None and run.status.state == TERMINATED)
    deadline = time.monotonic() + timeout
    while True:
        run = client.jobs.get_run(run_id)
        if done(run):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run.state} after {timeout}s")
        time.sleep(0.03)


def alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (PID 1 in a container may never reap orphans)."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def script(directory: Path, source: str, name: str = "task.py") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source))
    return path


def python_task(python_file: str | Path, *parameters: str, key: str = "main") -> jobs.SubmitTask:
    task = jobs.SparkPythonTask(python_file=str(python_file), parameters=list(parameters))
    return jobs.SubmitTask(task_key=key, spark_python_task=task)


def notebook_task(key: str = "main") -> jobs.SubmitTask:
    return jobs.SubmitTask(task_key=key, notebook_task=jobs.NotebookTask(notebook_path="/Workspace/nb"))


def submit(client: WorkspaceClient, *tasks: jobs.SubmitTask, token: str | None = None) -> int:
    run_id = client.jobs.submit(run_name="emulated", tasks=list(tasks), idempotency_token=token).run_id
    assert run_id is not None
    return run_id


def run_now(client: WorkspaceClient, job_id: int, **options: Any) -> int:
    # run_now returns a lazy Wait (nothing polls unless .result() is called) wrapping the RunNowResponse.
    response = cast(jobs.RunNowResponse, client.jobs.run_now(job_id, **options).response)
    assert response.run_id is not None and response.number_in_job == response.run_id
    return response.run_id


def termination(run: jobs.Run | jobs.RunTask) -> tuple[str, str]:
    assert run.status is not None and run.status.termination_details is not None
    details = run.status.termination_details
    assert details.code is not None and details.type is not None
    return details.code.value, details.type.value


def task_run_id(run: jobs.Run, index: int = 0) -> int:
    assert run.tasks is not None
    run_id = run.tasks[index].run_id
    assert run_id is not None
    return run_id


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray DATABRICKS_* settings, no config file, no proxy between the SDK and loopback."""
    for name in list(os.environ):
        if name.startswith("DATABRICKS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-such-databrickscfg"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(setup_delay=0.05, simulated_task_seconds=0.05) as running:
        yield running


@pytest.fixture
def client(emulator: Emulator, sdk_env: None) -> WorkspaceClient:
    return connect(emulator.url)


# --- execution -----------------------------------------------------------------------------------------


def test_a_python_file_exiting_0_succeeds_and_its_output_is_captured(
    emulator: Emulator, client: WorkspaceClient, tmp_path: Path
) -> None:
    path = script(tmp_path, "import sys\nprint('hello', sys.argv[1:])\n")
    run_id = submit(client, python_task(f"file://{path}", "a", "b"))

    run = wait_for_run(client, run_id)

    assert run.state is not None and run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert termination(run) == ("SUCCESS", "SUCCESS")
    assert run.run_type == jobs.RunType.SUBMIT_RUN and run.trigger == jobs.TriggerType.ONE_TIME
    assert run.run_page_url is not None and run.run_page_url.startswith(emulator.url)
    assert run.start_time is not None and run.end_time is not None and run.end_time >= run.start_time
    assert run.setup_duration is not None and run.setup_duration >= 40  # setup_delay=0.05
    assert run.execution_duration is not None and run.execution_duration > 0
    output = client.jobs.get_run_output(task_run_id(run))
    assert output.logs == "hello ['a', 'b']\n"
    assert output.logs_truncated is False and output.error is None
    assert output.metadata is not None and output.metadata.job_run_id == run_id
    argv = emulator.runs()[0].argv
    assert argv is not None and argv[-2:] == ("a", "b")


def test_a_python_file_raising_fails_with_run_execution_error_and_the_traceback(
    client: WorkspaceClient, tmp_path: Path
) -> None:
    path = script(tmp_path, "print('loading data')\nraise ValueError('bad input: 42')\n")
    run = wait_for_run(client, submit(client, python_task(path)))

    assert run.state is not None and run.state.result_state == jobs.RunResultState.FAILED
    assert termination(run) == ("RUN_EXECUTION_ERROR", "CLIENT_ERROR")
    assert run.state.state_message is not None and run.state.state_message.startswith("Task main failed")
    output = client.jobs.get_run_output(task_run_id(run))
    assert output.error == "ValueError: bad input: 42"
    assert output.error_trace is not None and "Traceback (most recent call last)" in output.error_trace
    assert output.logs is not None and output.logs.startswith("loading data\n")


def test_a_silent_non_zero_exit_reports_the_exit_code(client: WorkspaceClient, tmp_path: Path) -> None:
    run = wait_for_run(client, submit(client, python_task(script(tmp_path, "raise SystemExit(3)\n"))))

    assert termination(run) == ("RUN_EXECUTION_ERROR", "CLIENT_ERROR")
    assert client.jobs.get_run_output(task_run_id(run)).error == "Process exited with code 3"


def test_a_task_over_its_timeout_is_killed_and_timed_out(client: WorkspaceClient, tmp_path: Path) -> None:
    task = python_task(script(tmp_path, "import time\ntime.sleep(30)\n"))
    task.timeout_seconds = 1
    run = wait_for_run(client, submit(client, task))

    assert run.state is not None and run.state.result_state == jobs.RunResultState.TIMEDOUT
    assert run.state.user_cancelled_or_timedout is True
    assert termination(run)[0] == "CANCELED"


def test_cancel_kills_the_process_and_its_children(
    emulator: Emulator, client: WorkspaceClient, tmp_path: Path
) -> None:
    child_pid_file = tmp_path / "child.pid"
    path = script(
        tmp_path,
        """
        import pathlib, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        pathlib.Path(sys.argv[1]).write_text(str(child.pid))
        print("started", flush=True)
        time.sleep(60)
        """,
    )
    run_id = submit(client, python_task(path, str(child_pid_file)))
    wait_until(lambda: child_pid_file.exists() and child_pid_file.read_text())
    pid, child_pid = emulator.runs()[0].pid, int(child_pid_file.read_text())
    assert pid is not None and alive(pid) and alive(child_pid)
    assert client.jobs.get_run(run_id).status.state == RUNNING  # type: ignore[union-attr]

    client.jobs.cancel_run(run_id)
    run = wait_for_run(client, run_id)

    assert run.state is not None and run.state.result_state == jobs.RunResultState.CANCELED
    assert run.state.user_cancelled_or_timedout is True
    assert termination(run)[0] == "USER_CANCELED"
    wait_until(lambda: not alive(pid) and not alive(child_pid), timeout=5)
    assert client.jobs.get_run_output(task_run_id(run)).logs == "started\n"


def test_stop_kills_running_processes_and_closes_the_port(sdk_env: None, tmp_path: Path) -> None:
    emulator = Emulator(setup_delay=0.01).start()
    url = emulator.url
    try:
        submit(connect(url), python_task(script(tmp_path, "import time\ntime.sleep(60)\n")))
        wait_until(lambda: emulator.runs()[0].pid is not None)
        pid = emulator.runs()[0].pid
        assert pid is not None and alive(pid)
    finally:
        emulator.stop()

    assert not alive(pid)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/emulator/state", trust_env=False)


# --- idempotency and job parameters ---------------------------------------------------------------------


def test_the_same_idempotency_token_returns_the_same_run_and_starts_nothing_new(
    emulator: Emulator, client: WorkspaceClient, tmp_path: Path
) -> None:
    starts = tmp_path / "starts.txt"
    path = script(tmp_path, f"with open({str(starts)!r}, 'a') as f:\n    f.write('ran\\n')\n")
    token = "schedule-42:2026-06-01T12:00Z"

    first = submit(client, python_task(path), token=token)
    second = submit(client, python_task(path), token=token)
    wait_for_run(client, first)

    assert first == second
    assert emulator.starts_for_token(token) == 1
    assert emulator.requests_for_token(token) == 2
    assert [r.run_id for r in emulator.runs()] == [first]
    time.sleep(0.2)  # a second (wrong) start would have had time to write by now
    assert starts.read_text() == "ran\n"


def test_concurrent_submissions_with_one_token_start_one_run(
    emulator: Emulator, client: WorkspaceClient
) -> None:
    token = "tick-7"
    with ThreadPoolExecutor(max_workers=6) as pool:
        run_ids = set(pool.map(lambda _: submit(client, notebook_task(), token=token), range(6)))

    assert len(run_ids) == 1
    assert emulator.starts_for_token(token) == 1 and emulator.requests_for_token(token) == 6
    assert len(emulator.runs()) == 1


def test_run_now_is_idempotent_per_token_and_tokens_are_at_most_64_characters(
    emulator: Emulator, client: WorkspaceClient
) -> None:
    job_id = client.jobs.create(
        name="nb", tasks=[jobs.Task(task_key="main", notebook_task=jobs.NotebookTask("/nb"))]
    ).job_id
    assert job_id is not None

    a = run_now(client, job_id, idempotency_token="t-1")
    b = run_now(client, job_id, idempotency_token="t-1")
    c = run_now(client, job_id, idempotency_token="t-2")

    assert a == b != c
    assert (emulator.starts_for_token("t-1"), emulator.starts_for_token("t-2")) == (1, 1)
    with pytest.raises(InvalidParameterValue):
        client.jobs.run_now(job_id, idempotency_token="x" * 65)
    assert len(emulator.runs()) == 2


def test_run_now_passes_job_parameters_as_arguments_and_environment(
    client: WorkspaceClient, tmp_path: Path
) -> None:
    path = script(
        tmp_path,
        """
        import json, os, sys
        env = {k: v for k, v in os.environ.items() if k.startswith("DATABRICKS_JOB_PARAM_")}
        print(json.dumps({"argv": sys.argv[1:], "env": env}))
        """,
    )
    task = jobs.Task(
        task_key="train",
        spark_python_task=jobs.SparkPythonTask(
            python_file=str(path), parameters=["--fixed=1", "--ref={{job.parameters.model}}"]
        ),
    )
    definitions = [
        jobs.JobParameterDefinition(name="date", default="2026-01-01"),
        jobs.JobParameterDefinition(name="model", default="small"),
    ]
    job_id = client.jobs.create(name="train", tasks=[task], parameters=definitions).job_id
    assert job_id is not None

    run_id = run_now(client, job_id, job_parameters={"model": "large"})
    run = wait_for_run(client, run_id)

    assert run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.job_id == job_id and run.run_type == jobs.RunType.JOB_RUN and run.run_name == "train"
    assert {p.name: (p.default, p.value) for p in run.job_parameters or []} == {
        "date": ("2026-01-01", "2026-01-01"),
        "model": ("small", "large"),
    }
    seen = json.loads(client.jobs.get_run_output(task_run_id(run)).logs or "")
    assert seen["argv"] == ["--fixed=1", "--ref=large", "--date=2026-01-01", "--model=large"]
    assert seen["env"] == {"DATABRICKS_JOB_PARAM_DATE": "2026-01-01", "DATABRICKS_JOB_PARAM_MODEL": "large"}
    job = client.jobs.get(job_id)
    assert job.settings is not None and job.settings.name == "train"
    assert job.settings.tasks is not None and job.settings.tasks[0].task_key == "train"


# --- paths, several tasks, get-output rules ------------------------------------------------------------


def test_dbfs_and_workspace_paths_map_under_the_workspace_root(sdk_env: None, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "dbfs" / "jobs").mkdir(parents=True)
    (root / "Workspace" / "Users" / "me").mkdir(parents=True)
    script(root / "dbfs" / "jobs", "print('from dbfs')\n", "a.py")
    script(root / "Workspace" / "Users" / "me", "print('from workspace')\n", "b.py")

    with Emulator(setup_delay=0.01, workspace_root=root) as emulator:
        client = connect(emulator.url)
        tasks = [python_task("dbfs:/jobs/a.py", key="a"), python_task("/Workspace/Users/me/b.py", key="b")]
        run = wait_for_run(client, submit(client, *tasks))

        assert run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS
        logs = [client.jobs.get_run_output(task_run_id(run, i)).logs for i in (0, 1)]
        assert logs == ["from dbfs\n", "from workspace\n"]
        # Multi-task runs report their total in run_duration only, as on Databricks.
        assert (run.setup_duration, run.execution_duration, run.cleanup_duration) == (0, 0, 0)
        assert run.run_duration is not None and run.run_duration > 0


def test_a_missing_file_fails_with_resource_not_found_and_skips_downstream_tasks(
    client: WorkspaceClient, tmp_path: Path
) -> None:
    downstream = python_task(script(tmp_path, "print('never')\n"), key="after")
    run = wait_for_run(client, submit(client, python_task(tmp_path / "missing.py", key="first"), downstream))

    assert termination(run) == ("RESOURCE_NOT_FOUND", "CLIENT_ERROR")
    assert run.tasks is not None
    skipped = run.tasks[1]
    assert skipped.state is not None and skipped.state.life_cycle_state == jobs.RunLifeCycleState.SKIPPED
    assert skipped.state.result_state == jobs.RunResultState.UPSTREAM_FAILED
    assert client.jobs.get_run_output(task_run_id(run, 1)).logs == ""


def test_get_output_wants_a_task_run_id_and_unknown_runs_do_not_exist(client: WorkspaceClient) -> None:
    run = wait_for_run(client, submit(client, notebook_task()))

    with pytest.raises(InvalidParameterValue, match="multiple tasks is not supported"):
        client.jobs.get_run_output(run.run_id)  # type: ignore[arg-type]
    assert client.jobs.get_run_output(task_run_id(run)).notebook_output is not None
    with pytest.raises(ResourceDoesNotExist):
        client.jobs.get_run(999)


def test_runs_list_filters_by_job_newest_first_across_pages(
    emulator: Emulator, client: WorkspaceClient
) -> None:
    wheel = jobs.Task(
        task_key="w", python_wheel_task=jobs.PythonWheelTask(package_name="pkg", entry_point="main")
    )
    notebook = jobs.Task(task_key="n", notebook_task=jobs.NotebookTask(notebook_path="/nb"))
    job_a = client.jobs.create(name="a", tasks=[wheel]).job_id
    job_b = client.jobs.create(name="b", tasks=[notebook]).job_id
    assert job_a is not None and job_b is not None
    first = run_now(client, job_a)
    run_now(client, job_b)
    last = run_now(client, job_a)

    listed = list(client.jobs.list_runs(job_id=job_a, limit=1))

    assert [r.run_id for r in listed] == [last, first]
    assert {r.job_id for r in listed} == {job_a}
    assert emulator.calls["jobs/runs/list"] == 2  # one page per run with limit=1
    assert [j.job_id for j in client.jobs.list()] == [job_a, job_b]
    assert wait_for_run(client, first).state.result_state == jobs.RunResultState.SUCCESS  # type: ignore[union-attr]


# --- HTTP faults ----------------------------------------------------------------------------------------


def test_429_with_retry_after_is_retried_by_the_sdk(emulator: Emulator, client: WorkspaceClient) -> None:
    emulator.fail_requests("jobs/runs/submit", status=429, times=1, retry_after=1)

    started = time.monotonic()
    run_id = submit(client, notebook_task())
    elapsed = time.monotonic() - started

    assert elapsed >= 1.0  # the SDK slept Retry-After (plus up to 1 s of jitter)
    assert emulator.calls["jobs/runs/submit"] == 2
    assert [r.run_id for r in emulator.runs()] == [run_id]


def test_a_plain_500_is_not_retried_by_the_sdk(emulator: Emulator, client: WorkspaceClient) -> None:
    run_id = submit(client, notebook_task())
    emulator.fail_requests("jobs/runs/get", status=500)

    with pytest.raises(InternalError):
        client.jobs.get_run(run_id)

    assert emulator.calls["jobs/runs/get"] == 1
    assert client.jobs.get_run(run_id).run_id == run_id


def test_a_500_with_a_transient_message_is_retried_by_the_sdk(
    emulator: Emulator, client: WorkspaceClient
) -> None:
    run_id = submit(client, notebook_task())
    emulator.fail_requests("jobs/runs/get", status=500, message="Unexpected error: please retry")

    assert client.jobs.get_run(run_id).run_id == run_id
    assert emulator.calls["jobs/runs/get"] == 2


def test_slow_responses_are_delayed_as_many_times_as_asked(
    emulator: Emulator, client: WorkspaceClient
) -> None:
    emulator.slow_requests("jobs/list", delay=0.4, times=1)

    started = time.monotonic()
    list(client.jobs.list())
    slow = time.monotonic() - started
    started = time.monotonic()
    list(client.jobs.list())
    fast = time.monotonic() - started

    assert slow >= 0.4 > fast


def test_http_surface_auth_alias_and_control_api(emulator: Emulator, client: WorkspaceClient) -> None:
    job_id = client.jobs.create(
        name="nb", tasks=[jobs.Task(task_key="m", notebook_task=jobs.NotebookTask("/nb"))]
    ).job_id
    bearer = {"Authorization": "Bearer any-token-works"}
    with httpx.Client(base_url=emulator.url, trust_env=False) as http:
        unauthenticated = http.get("/api/2.2/jobs/list")
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["error_code"] == "UNAUTHENTICATED"

        alias = http.get("/api/2.1/jobs/get", params={"job_id": job_id}, headers=bearer)
        assert alias.status_code == 200 and alias.json()["job_id"] == job_id

        added = http.post(
            "/emulator/faults",
            json={"kind": "http_error", "endpoint": "jobs/list", "status": 429, "retry_after": 7},
        )
        assert added.status_code == 200 and added.json()["http"][0]["remaining"] == 1
        throttled = http.get("/api/2.2/jobs/list", headers=bearer)
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
        assert throttled.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert http.get("/api/2.2/jobs/list", headers=bearer).status_code == 200

        assert http.post("/emulator/faults", json={"kind": "nonsense"}).status_code == 400
        assert http.post("/emulator/faults", json={"kind": "run_failure", "code": "TYPO"}).status_code == 400
        unknown = http.get("/api/2.2/clusters/list", headers=bearer)
        assert unknown.status_code == 404 and unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"

        state = http.get("/emulator/state").json()
        assert state["calls"]["jobs/list"] == 3  # 401, 429 and 200 all count
        assert state["calls"][".well-known/databricks-config"] == 1  # the SDK client's discovery probe
        assert http.post("/emulator/reset").status_code == 200
    assert emulator.calls == {} and emulator.runs() == []
    with pytest.raises(ResourceDoesNotExist):
        client.jobs.get(job_id)  # type: ignore[arg-type]


# --- run faults -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("life_cycle_state", "code", "type_"),
    [
        ("TERMINATED", "CLUSTER_ERROR", "CLOUD_FAILURE"),
        ("TERMINATED", "DRIVER_ERROR", "INTERNAL_ERROR"),
        ("INTERNAL_ERROR", "INTERNAL_ERROR", "INTERNAL_ERROR"),
    ],
)
def test_an_injected_infrastructure_failure_ends_the_run_without_executing_it(
    emulator: Emulator, client: WorkspaceClient, tmp_path: Path, life_cycle_state: str, code: str, type_: str
) -> None:
    marker = tmp_path / "ran"
    path = script(tmp_path, f"open({str(marker)!r}, 'w').close()\n")
    message = "Cluster launch failed: cloud provider quota exceeded"
    emulator.fail_runs(code=code, type=type_, message=message, life_cycle_state=life_cycle_state)

    run = wait_for_run(client, submit(client, python_task(path)))

    assert run.state is not None and run.state.life_cycle_state == jobs.RunLifeCycleState(life_cycle_state)
    assert run.state.result_state == jobs.RunResultState.FAILED and run.state.state_message == message
    assert termination(run) == (code, type_)
    assert client.jobs.get_run_output(task_run_id(run)).error == message
    assert not marker.exists() and emulator.runs()[0].pid is None

    # times=1: the next run is not affected.
    after = wait_for_run(client, submit(client, python_task(path)))
    assert after.state is not None and after.state.result_state == jobs.RunResultState.SUCCESS
    assert marker.exists()


def test_a_hanging_run_stays_running_until_cancelled(emulator: Emulator, client: WorkspaceClient) -> None:
    emulator.hang_runs()
    run_id = submit(client, notebook_task())
    wait_for_run(client, run_id, lambda r: r.status is not None and r.status.state == RUNNING)
    time.sleep(0.3)  # a normal run (setup 0.05 s + task 0.05 s) would have finished by now
    assert client.jobs.get_run(run_id).status.state == RUNNING  # type: ignore[union-attr]

    client.jobs.cancel_run(run_id)
    run = wait_for_run(client, run_id)

    assert run.state is not None and run.state.result_state == jobs.RunResultState.CANCELED
    assert termination(run)[0] == "USER_CANCELED"


@pytest.mark.parametrize(
    ("legacy", "status"), [("QUEUED", "QUEUED"), ("BLOCKED", "BLOCKED"), ("WAITING_FOR_RETRY", "WAITING")]
)
def test_a_held_run_shows_its_waiting_state_then_runs(
    emulator: Emulator, client: WorkspaceClient, legacy: str, status: str
) -> None:
    emulator.hold_runs(state=legacy, seconds=0.3)
    run_id = submit(client, notebook_task())

    held = client.jobs.get_run(run_id)
    assert held.state is not None and held.state.life_cycle_state == jobs.RunLifeCycleState(legacy)
    assert held.status is not None and held.status.state == jobs.RunLifecycleStateV2State(status)
    if legacy == "QUEUED":
        assert held.status.queue_details is not None and held.status.queue_details.code is not None
    run = wait_for_run(client, run_id)
    assert run.state is not None and run.state.result_state == jobs.RunResultState.SUCCESS
