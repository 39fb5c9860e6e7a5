"""The run lifecycle with the real databricks-sdk adapter against the Databricks emulator, on Azurite.

Exactly one Databricks run per attempt, counted at the emulator by idempotency token, even
when the launch is delivered twice and the handler crashes after the Databricks call; and
the overlap policies with a long-running job on a `* * * * *` schedule and a controlled clock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack.databricks_emulator import Emulator
from shared.adapters.databricks import idempotency_token
from shared.adapters.databricks_sdk import SdkDatabricks, databricks_client
from shared.config import Settings
from shared.domain.job import Job
from shared.domain.run import RunState
from shared.services.inbox import Incoming
from tests import world as harness
from tests.conftest import TableFactory

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    for name in [k for k in os.environ if k.startswith(("DATABRICKS_", "ARM_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    monkeypatch.setenv("DATABRICKS_TOKEN", "dev-token")
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(60)\n")
    with Emulator(setup_delay=0.05, workspace_root=tmp_path) as running:
        yield running


class World(harness.World):
    def __init__(self, table_factory: TableFactory, emulator: Emulator, root: Path) -> None:
        settings = Settings(DATABRICKS_HOST=emulator.url, DATABRICKS_AUTH="token")
        super().__init__(table_factory, databricks=SdkDatabricks(databricks_client(settings)))
        self.emulator = emulator
        self.script = str(root / "slow.py")

    def long_job(self, **overrides: Any) -> Job:
        body: dict[str, Any] = {
            "name": "long",
            "task": {"kind": "databricks_run", "python_file": self.script, "existing_cluster_id": "c"},
            "schedule": {"cron": "* * * * *"},
        }
        body.update(overrides)
        return self.job(**body)

    def fire_minute(self, minute: int) -> list[Any]:
        at = datetime(2026, 6, 1, 12, minute, tzinfo=UTC)
        self.clock.set(at - timedelta(seconds=30))
        self.s.ticker.tick()
        self.clock.set(at)
        return [d for d in self.broker.receive() if d.queue == "launch"]


@pytest.fixture
def w(table_factory: TableFactory, emulator: Emulator, tmp_path: Path) -> World:
    return World(table_factory, emulator, tmp_path)


def test_a_duplicate_launch_and_a_crash_after_the_call_still_start_one_databricks_run(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = w.long_job()
    (launch,) = w.fire_minute(1)
    original = w.s.run_repository.save
    crashed: list[bool] = []

    def crash_once(before: Any, etag: str, after: Any, tally: Any = None) -> str:
        if not crashed:
            crashed.append(True)
            raise RuntimeError("the process died after Databricks accepted the run")
        return original(before, etag, after, tally)

    monkeypatch.setattr(w.s.run_repository, "save", crash_once)
    message = Incoming(launch.message_id, launch.body, 1)
    with pytest.raises(RuntimeError):
        w.s.inbox.launch(message)
    monkeypatch.setattr(w.s.run_repository, "save", original)
    again = Incoming(launch.message_id, launch.body, 2)
    outcomes = [w.s.inbox.launch(again).action for _ in range(2)]  # redelivery + duplicate
    assert outcomes == ["launched", "redone"]
    (run,) = w.runs(job)
    token = idempotency_token(run.run_key, 1, job.id)
    assert w.emulator.starts_for_token(token) == 1
    assert w.emulator.requests_for_token(token) == 2
    assert run.state is RunState.RUNNING and run.databricks_run_id is not None


@pytest.mark.parametrize(
    ("policy", "states", "cancelled_in_databricks"),
    [
        pytest.param("skip", [RunState.RUNNING, RunState.SKIPPED], 0, id="skip"),
        pytest.param("cancel_previous", [RunState.CANCELLED, RunState.RUNNING], 1, id="cancel-previous"),
    ],
)
def test_overlap_with_a_long_running_job(
    w: World, policy: str, states: list[RunState], cancelled_in_databricks: int
) -> None:
    job = w.long_job(overlap=policy)
    for minute in (1, 2):
        for launch in w.fire_minute(minute):
            w.s.inbox.launch(Incoming(launch.message_id, launch.body, 1))
    runs = w.runs(job)
    assert [r.state for r in runs] == states
    first = runs[0]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        record = next(r for r in w.emulator.runs() if r.run_id == first.databricks_run_id)
        if (record.result_state == "CANCELED") == bool(cancelled_in_databricks):
            break
        time.sleep(0.1)
    assert (record.result_state == "CANCELED") == bool(cancelled_in_databricks), record
    assert len(w.emulator.runs()) == (2 if policy == "cancel_previous" else 1)  # skip starts nothing
