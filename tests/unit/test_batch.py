"""Batch values: points from a grid or a list, a round's progress (each position heard once, never
more than max_parallel between start and end), chunks of stored values."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.domain.batch import CHUNK_CHARS, BatchSpec, chunked
from shared.domain.run import BatchProgress, RunState

TASK = {"kind": "databricks_job", "job_id": 1, "parameters": {"a": "{{params.a}}"}}


def test_a_grid_is_its_cartesian_product_last_parameter_fastest() -> None:
    spec = BatchSpec.model_validate({"task": TASK, "grid": {"a": [1, 2], "b": ["x", "y", "z"]}})
    assert list(spec.points())[:4] == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 1, "b": "z"},
        {"a": 2, "b": "x"},
    ]
    assert len(list(spec.points())) == 6


@pytest.mark.parametrize(
    "body",
    [
        {"task": TASK},  # no points
        {"task": TASK, "runs": [{}], "grid": {"a": [1]}},
        {"runs": [{}]},  # nothing to run
        {"task": TASK, "grid": {"a": list(range(11)), "b": list(range(10)), "c": list(range(10))}},
        {"task": TASK, "runs": [{}] * 1001},
        {"task": TASK, "runs": [{}], "version": 2},
    ],
)
def test_malformed_batches_are_refused(body: dict) -> None:
    with pytest.raises(ValidationError):
        BatchSpec.model_validate(body)


def test_sequential_means_one_at_a_time() -> None:
    spec = BatchSpec.model_validate(
        {"task": TASK, "runs": [{}], "execution_mode": "sequential", "max_parallel": 7}
    )
    assert spec.parallelism == 1


def test_a_round_starts_no_more_than_max_parallel_and_hears_each_end_once() -> None:
    p = BatchProgress(points=list(range(10)), max_parallel=3, chunks=[0])
    assert list(p.next_positions()) == [0, 1, 2]
    p = p.model_copy(update={"started": 3})
    assert list(p.next_positions()) == []
    p = p.heard(1, RunState.SUCCEEDED)
    assert p.heard(1, RunState.FAILED) == p  # a second hearing changes nothing
    assert (p.active, list(p.next_positions())) == (2, [3])
    for position in range(10):
        p = p.heard(position, RunState.FAILED if position == 4 else RunState.SUCCEEDED)
    assert p.done and p.counts == {"SUCCEEDED": 9, "FAILED": 1}
    assert p.outcome() is RunState.SUCCEEDED_WITH_FAILURES
    assert (
        BatchProgress(points=[0], max_parallel=1, chunks=[0]).heard(0, RunState.FAILED).outcome()
        is RunState.FAILED
    )


def test_values_are_chunked_under_a_row_property() -> None:
    points = [(n, {"text": "x" * 3000}) for n in range(25)]
    chunks = chunked(points)
    assert [p for chunk in chunks for p in chunk] == points
    assert all(len(json.dumps([list(p) for p in chunk])) < CHUNK_CHARS + 100 for chunk in chunks)
    assert len(chunks) > 1
