"""Pipeline steps start exactly once per attempt under crashes at each boundary, counted where it
matters: at the Databricks emulator (python files run as processes), by idempotency token, through
the real databricks-sdk adapter, with tables on Azurite (issue 12).

Each case plays the same pipeline twice, without and with the fault, and compares the steps' final
states; then every step run's attempt must have started exactly one emulator run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack.databricks_emulator import Emulator
from shared.adapters.databricks import idempotency_token
from shared.adapters.databricks_sdk import SdkDatabricks, databricks_client
from shared.config import Settings
from shared.domain.run import Run, RunState
from shared.services import pipelines
from tests.conftest import TableFactory
from tests.integration.test_liveness_on_emulator import emulator  # noqa: F401 - the fixture
from tests.world import World

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(180)]

FIRST = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
SCRIPT = "import sys\nsys.exit(3 if sys.argv[1] == 'fail' else 0)\n"


class Injected(Exception):
    """A crash: the process dies here."""


def _host_dies_once_per_message(w: World, _: pytest.MonkeyPatch) -> list[Any]:
    seen: set[str] = set()
    died: list[Any] = []

    def crash(delivery: Any) -> bool:
        first = delivery.message_id not in seen
        seen.add(delivery.message_id)
        if first:
            died.append(delivery.message_id)
        return first

    w.crash = crash
    return died


def _dies_between_a_steps_end_and_its_successors(w: World, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    real = pipelines.step_ended
    died: list[str] = []

    def step_ended(ctx: Any, child: Run, now: datetime) -> None:
        if not died:
            died.append(child.run_key)
            raise Injected("died after the step's end was written")
        real(ctx, child, now)

    monkeypatch.setattr(pipelines, "step_ended", step_ended)
    return died


def _parent_write_lands_but_its_answer_is_lost(w: World, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    repository = w.s.run_repository
    real = repository.save_family
    lost: list[bool] = []

    def save_family(before: Run, etag: str, after: Run, children: Any, tally: Any = None) -> str:
        tag = real(before, etag, after, children, tally)
        if not lost and before.state is RunState.RUNNING:  # a step ended: its successors are inserted
            lost.append(True)
            raise Injected("the parent's write landed, the answer was lost, nothing was sent")
        return tag

    monkeypatch.setattr(repository, "save_family", save_family)
    return lost


FAULTS: dict[str, Callable[[World, pytest.MonkeyPatch], list[Any]]] = {
    "the host dies after each first delivery": _host_dies_once_per_message,
    "a crash between a step's end and its successors' start": _dies_between_a_steps_end_and_its_successors,
    "the parent's write lands but its answer is lost": _parent_write_lands_but_its_answer_is_lost,
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_step_starts_once_at_the_emulator_under_a_crash(
    azurite_tables: TableFactory,
    emulator: Emulator,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    settings = Settings(DATABRICKS_HOST=emulator.url, DATABRICKS_AUTH="token")
    (tmp_path / "step.py").write_text(SCRIPT)  # the emulator runs python files under tmp_path

    def step(key: str, mode: str, *depends_on: str, **fields: Any) -> dict[str, Any]:
        task = {
            "kind": "databricks_run",
            "python_file": str(tmp_path / "step.py"),
            "existing_cluster_id": "emulator",
            "parameters": [mode],
        }
        return {"key": key, "task": task, "depends_on": list(depends_on), **fields}

    steps = [
        step("a", "ok"),
        step("b", "fail", "a"),
        step("c", "ok", "a"),
        step("d", "ok", "b", "c", run_if="ALL_DONE"),
        step("rollback", "ok", "b", run_if="AT_LEAST_ONE_FAILED"),
    ]

    fired: list[Any] = []

    def play(arm: Callable[[World, pytest.MonkeyPatch], list[Any]] | None) -> tuple[World, Run]:
        emulator.reset()
        w = World(azurite_tables, databricks=SdkDatabricks(databricks_client(settings)), pace=0.25)
        w.s.ensure_tables()
        job = w.job(
            name="pipe",
            job_type="pipeline",
            task={"kind": "pipeline", "steps": steps},
            schedule={"at": "2026-06-01T12:05:00Z"},
        )
        if arm is not None:
            fired.append(arm(w, monkeypatch))
        w.run_until(FIRST + timedelta(minutes=20))
        return w, w.run(job)

    _, oracle = play(None)
    assert oracle.state is RunState.SUCCEEDED_WITH_FAILURES, oracle.steps
    w, parent = play(FAULTS[fault])
    assert fired[0], f"the fault never struck: {fault}"
    assert parent.state is oracle.state
    assert {k: r.state for k, r in (parent.steps or {}).items()} == {
        k: r.state for k, r in (oracle.steps or {}).items()
    }
    children = [
        c for c, _ in w.s.run_repository.children(parent.shard, parent.tenant, parent.job_id, parent.run_key)
    ]
    attempts = [(c, a) for c in children for a in c.attempts if a.databricks_run_id is not None]
    assert {c.step for c, _ in attempts} == {"a", "b", "c", "d", "rollback"}
    for child, attempt in attempts:
        token = idempotency_token(child.run_key, attempt.number, child.job_id)
        assert emulator.starts_for_token(token) == 1, child.run_key
    assert len(emulator.runs()) == len(attempts) == 5
