"""Runs on Databricks through the local stack: real HTTP, Azurite, the registered functions, the emulator.

The test starts the Databricks emulator itself (so it can count runs per idempotency token
and look at processes) and hands its address to `python -m devstack`.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from devstack.databricks_emulator import Emulator
from devstack.process import emulator_env, local_stack

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(180)]
ROOT = Path(__file__).resolve().parents[2]

SCRIPTS = {
    "ok.py": "print('trained')\n",
    "fail.py": "import sys\nprint('boom', file=sys.stderr)\nsys.exit(1)\n",
    "slow.py": "import time\ntime.sleep(120)\n",
    # fails on its first two runs, then succeeds (counts runs in a file beside it)
    "flaky.py": (
        "import pathlib, sys\n"
        "marker = pathlib.Path(__file__).with_suffix('.count')\n"
        "n = int(marker.read_text()) if marker.exists() else 0\n"
        "marker.write_text(str(n + 1))\n"
        "sys.exit(1 if n < 2 else 0)\n"
    ),
}


class Stack:
    def __init__(self, base: str, emulator: Emulator, scripts: Path) -> None:
        self.http = httpx.Client(base_url=base, timeout=15)
        self.emulator = emulator
        self.scripts = scripts

    def create(self, script: str, **overrides: Any) -> str:
        at = datetime.now(UTC) + timedelta(seconds=4)
        body: dict[str, Any] = {
            "name": f"e2e-{script}",
            "job_type": "model_training",
            "task": {
                "kind": "databricks_run",
                "python_file": str(self.scripts / script),
                "existing_cluster_id": "local-cluster",
            },
            "schedule": {"at": at.isoformat()},
            "retry": {
                "max_attempts": 1,
                "initial_delay": "PT1S",
                "backoff_coefficient": 2.0,
                "max_delay": "PT10S",
                "jitter": 0,
            },
        }
        body.update(overrides)
        r = self.http.post("/api/jobs/schedule", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["job_id"])

    def run_of(self, job_id: str) -> dict[str, Any]:
        runs = self.http.get(f"/api/jobs/{job_id}/runs").json()["items"]
        return runs[0] if runs else {}

    def wait_for(self, job_id: str, states: set[str], seconds: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            run = self.run_of(job_id)
            if run.get("state") in states:
                return run
            time.sleep(0.3)
        raise AssertionError(f"run did not reach {states}: {run}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    scripts = tmp_path_factory.mktemp("scripts")
    for name, text in SCRIPTS.items():
        (scripts / name).write_text(text)
    with Emulator(setup_delay=0.1) as emulator:
        env = emulator_env(emulator.url, scripts)
        with local_stack(env, tick_seconds=1) as (_, base):
            yield Stack(base, emulator, scripts)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_python_file_that_exits_0_succeeds_on_time(stack: Stack) -> None:
    job_id = stack.create("ok.py")
    run = stack.wait_for(job_id, {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"})
    assert run["state"] == "SUCCEEDED", run
    assert run["databricks_run_id"] and run["run_page_url"]
    (attempt,) = run["attempts"]
    assert attempt["result"] == "SUCCEEDED" and attempt["databricks_run_id"] == run["databricks_run_id"]
    launched = _t(attempt["launched_at"])
    assert timedelta(0) <= launched - _t(run["scheduled_for"]) < timedelta(seconds=1)
    # The job notes its last run right after the run row is saved: allow that moment.
    deadline = time.monotonic() + 5
    while stack.http.get(f"/api/jobs/{job_id}").json()["last_run_state"] != "SUCCEEDED":
        assert time.monotonic() < deadline, "the job never noted its last run"
        time.sleep(0.1)


def test_a_file_that_always_fails_is_retried_with_growing_delays_then_fails(stack: Stack) -> None:
    job_id = stack.create(
        "fail.py",
        retry={
            "max_attempts": 3,
            "initial_delay": "PT1S",
            "backoff_coefficient": 2.0,
            "max_delay": "PT10S",
            "jitter": 0,
        },
    )
    run = stack.wait_for(job_id, {"FAILED"})
    attempts = run["attempts"]
    assert [a["number"] for a in attempts] == [1, 2, 3]
    assert all(a["result"] == "FAILED" and a["failure"] == "user" for a in attempts)
    waits = [_t(b["launched_at"]) - _t(a["ended_at"]) for a, b in itertools.pairwise(attempts)]
    assert waits[0] >= timedelta(seconds=1) and waits[1] >= timedelta(seconds=2)
    assert len({a["databricks_run_id"] for a in attempts}) == 3
    retried = stack.http.post(f"/api/jobs/{job_id}/retry")
    assert retried.status_code == 200 and retried.json()["attempt"] == 4
    assert retried.json()["state"] == "RETRY_WAIT"
    again = stack.wait_for(job_id, {"FAILED", "SUCCEEDED"})
    assert len(again["attempts"]) == 4


def test_a_flaky_file_succeeds_on_the_third_attempt(stack: Stack) -> None:
    job_id = stack.create(
        "flaky.py",
        retry={
            "max_attempts": 3,
            "initial_delay": "PT1S",
            "backoff_coefficient": 1.0,
            "max_delay": "PT1S",
            "jitter": 0,
        },
    )
    run = stack.wait_for(job_id, {"SUCCEEDED", "FAILED"})
    assert run["state"] == "SUCCEEDED" and run["attempt"] == 3
    assert [a["result"] for a in run["attempts"]] == ["FAILED", "FAILED", "SUCCEEDED"]
    refused = stack.http.post(f"/api/runs/{run['run_id']}/retry")
    assert refused.status_code == 409 and "SUCCEEDED" in refused.json()["detail"]


def test_a_file_that_outlives_its_timeout_is_cancelled_and_timed_out(stack: Stack) -> None:
    job_id = stack.create("slow.py", timeout="PT10S")
    run = stack.wait_for(job_id, {"TIMED_OUT", "FAILED", "SUCCEEDED"}, seconds=60)
    assert run["state"] == "TIMED_OUT", run
    emulated = next(r for r in stack.emulator.runs() if r.run_id == run["databricks_run_id"])
    assert (emulated.life_cycle_state, emulated.result_state) == ("TERMINATED", "CANCELED")


def test_cancelling_a_running_run_kills_its_process(stack: Stack) -> None:
    job_id = stack.create("slow.py")
    run = stack.wait_for(job_id, {"RUNNING"})
    deadline = time.monotonic() + 10
    pid = None
    while pid is None and time.monotonic() < deadline:
        pid = next(
            (r.pid for r in stack.emulator.runs() if r.run_id == run["databricks_run_id"] and r.pid), None
        )
        time.sleep(0.1)
    assert pid is not None
    cancelled = stack.http.post(f"/api/runs/{run['run_id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"
    time.sleep(1)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert stack.http.post(f"/api/runs/{run['run_id']}/cancel").status_code == 409


def test_cancelling_the_job_cancels_its_active_run(stack: Stack) -> None:
    job_id = stack.create("slow.py")
    run = stack.wait_for(job_id, {"RUNNING"})
    r = stack.http.delete(f"/api/jobs/{job_id}")
    assert r.status_code == 200 and "1 active run" in r.json()["message"]
    assert stack.run_of(job_id)["state"] == "CANCELLED"
    assert run["databricks_run_id"]


def test_run_now_starts_a_manual_run(stack: Stack) -> None:
    job_id = stack.create("ok.py", schedule={"cron": "0 0 1 1 *"})
    r = stack.http.post(f"/api/jobs/{job_id}/run")
    assert r.status_code == 202 and r.json()["trigger"] == "manual"
    run = stack.wait_for(job_id, {"SUCCEEDED", "FAILED"})
    assert run["state"] == "SUCCEEDED" and run["run_id"] == r.json()["run_id"]
