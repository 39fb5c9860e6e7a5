"""Run states: the one table of legal transitions, and run keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain.errors import IllegalTransition, NotFound
from shared.domain.run import TERMINAL, TRANSITIONS, Run, RunState, parse_run_id, scheduled_run_key

T = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)


def occurrence() -> Run:
    return Run.occurrence(tenant="t", job_id="J", scheduled_for=T, job_version=1, now=T)


def test_the_run_key_is_the_scheduled_time_in_epoch_ms() -> None:
    assert scheduled_run_key(T) == "s-1780315500000"
    assert occurrence().id == "J_s-1780315500000"
    assert parse_run_id("J_s-1780315500000") == ("J", "s-1780315500000")


@pytest.mark.parametrize("bad", ["J", "J_", "_s-1", "J_x-1", "J_s-abc"])
def test_malformed_run_ids_are_not_found(bad: str) -> None:
    with pytest.raises(NotFound):
        parse_run_id(bad)


def test_every_state_has_a_row_and_terminal_states_only_allow_a_retry_or_a_repair() -> None:
    assert set(TRANSITIONS) == set(RunState)
    for state in TERMINAL:
        assert TRANSITIONS[state] <= {RunState.RETRY_WAIT, RunState.RUNNING}  # RUNNING: a pipeline repair


@pytest.mark.parametrize(
    ("path", "legal"),
    [
        pytest.param(
            [RunState.QUEUED, RunState.LAUNCHING, RunState.RUNNING, RunState.SUCCEEDED], True, id="happy"
        ),
        pytest.param([RunState.SKIPPED], True, id="skip"),
        pytest.param([RunState.RUNNING], False, id="scheduled-to-running"),
        pytest.param([RunState.SKIPPED, RunState.QUEUED], False, id="out-of-skipped"),
        pytest.param([RunState.QUEUED, RunState.QUEUED], False, id="twice"),
    ],
)
def test_transitions_follow_the_table(path: list[RunState], legal: bool) -> None:
    run = occurrence()
    try:
        for state in path:
            run = run.moved(state, T)
    except IllegalTransition:
        assert not legal
    else:
        assert legal
        assert list(run.transitions) == ["SCHEDULED", *[s.value for s in path]]
