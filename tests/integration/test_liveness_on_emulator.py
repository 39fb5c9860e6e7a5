"""Faults at the launch, poll, timeout and cancel boundaries, with the real databricks-sdk adapter
against the Databricks emulator (python files run as processes) and tables on Azurite: each run ends
as it would have without the fault, and the emulator starts exactly one run per idempotency token.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.databricks_emulator import Emulator
from shared.adapters.databricks import idempotency_token
from shared.adapters.databricks_sdk import SdkDatabricks, databricks_client
from shared.config import Settings
from shared.domain.run import RunState
from tests.conftest import TableFactory
from tests.integration.test_liveness import (
    CANCELLED,
    RETRIED,
    SUCCESS,
    TIMEOUT,
    Fault,
    Scenario,
    _first_poll,
    _host_dies,
    _retry_launch,
    _save_fault,
    _send_fault,
    finals,
    play,
)
from tests.world import World

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(120)]

# The task's behaviour by attempt: the emulator passes `{{attempt}}` as the script's argument.
SCRIPT = """import sys, time
attempt = int(sys.argv[1])
mode = sys.argv[2]
if mode == "hang" or (mode == "hang-once" and attempt == 1):
    time.sleep(120)
if mode == "fail-once" and attempt == 1:
    sys.exit(3)
"""
MODES = {"success": "ok", "retried": "fail-once", "timeout": "hang-once", "cancelled": "hang"}


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    for name in [k for k in os.environ if k.startswith(("DATABRICKS_", "ARM_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    monkeypatch.setenv("DATABRICKS_TOKEN", "dev-token")
    (tmp_path / "task.py").write_text(SCRIPT)
    with Emulator(setup_delay=0.05, workspace_root=tmp_path) as running:
        yield running


CASES = [
    (SUCCESS, _send_fault("first poll send fails", _first_poll, after=False)),
    (SUCCESS, _save_fault("crash after RUNNING", RunState.RUNNING, after=True)),
    (SUCCESS, _host_dies("launch")),
    (RETRIED, _send_fault("retry launch ack lost", _retry_launch, after=True)),
    (TIMEOUT, _save_fault("crash after TIMING_OUT", RunState.TIMING_OUT, after=True)),
    (TIMEOUT, _save_fault("storage fails after the cancel", RunState.RETRY_WAIT, after=False)),
    (CANCELLED, _save_fault("crash after CANCELLING", RunState.CANCELLING, after=True)),
]


@pytest.mark.parametrize(
    ("scenario", "fault"), [pytest.param(s, f, id=f"{s.name}: {f.name}") for s, f in CASES]
)
def test_a_fault_at_a_boundary_with_the_real_sdk_and_the_emulator(
    azurite_tables: TableFactory, emulator: Emulator, tmp_path: Path, scenario: Scenario, fault: Fault
) -> None:
    table_factory = azurite_tables
    settings = Settings(DATABRICKS_HOST=emulator.url, DATABRICKS_AUTH="token")

    def world() -> World:
        emulator.reset()
        return World(table_factory, databricks=SdkDatabricks(databricks_client(settings)), pace=0.25)

    task: dict[str, Any] = {
        "kind": "databricks_run",
        "python_file": str(tmp_path / "task.py"),
        "existing_cluster_id": "emulator",
        "parameters": ["{{attempt}}", MODES[scenario.name]],
    }
    expected = finals(play(table_factory, scenario, None, world, task))
    assert tuple(state for _, state, _, _ in expected) == scenario.expected
    fault.fired.clear()
    w = play(table_factory, scenario, fault, world, task)
    assert fault.fired, f"the fault never struck: {fault.name}"
    assert finals(w) == expected
    job = w.job_under_test  # type: ignore[attr-defined]
    for run in w.runs(job):
        assert run.state.is_terminal
        for attempt in run.attempts:
            if attempt.databricks_run_id is not None:
                token = idempotency_token(run.run_key, attempt.number, run.job_id)
                assert emulator.starts_for_token(token) == 1
    assert len(emulator.runs()) == sum(
        a.databricks_run_id is not None for r in w.runs(job) for a in r.attempts
    )
