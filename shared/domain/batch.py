"""Batches: one task run once per set of parameter values (explicit `runs`, or a `grid`'s cartesian
product), at most `max_parallel` at a time (`sequential`: one), for hyperparameter sweeps.

A batch is a job (its task and policies, from a template or given) with one *batch run* per round:
the first round runs every point; `retry-failed` starts a round of the points that failed. A point's
run is a child of its round's batch run, `{round key}.p{point:05d}`, and gets its values as
`{{params.<name>}}`. The round's run records how far it got (`BatchProgress`): how many of its points
have runs (`started`, in order) and which of them it heard end (a bitmap), so that each point starts
exactly once, and never more than `max_parallel` are between start and end.

Everything here is a value; shared/services/batches.py does the work.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.domain.job import JobTask, JobType, Name, PoolName, RetryPolicy, Scalar
from shared.domain.run import Priority
from shared.domain.template import PARAMS, ParameterName, TemplateName, Values, open_object

MAX_POINTS = 1000
MAX_PARALLEL = 100
MAX_GRID_VALUES = MAX_POINTS
CHUNK_CHARS = 30_000  # a row property holds 32K characters: points are stored in chunks below it
MAX_POINT_CHARS = 4_000
MAX_BATCH_CHARS = 2_000_000  # every point's values: at most ~70 chunks, stored in one transaction


class ExecutionMode(StrEnum):
    PARALLEL = "parallel"
    SEQUENTIAL = "sequential"


class BatchSpec(BaseModel):
    """The body of `POST /api/batches`: what to run (a template, or a task), the points (explicit
    `runs` or a `grid`), and how many at a time."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Name | None = Field(None, description="Default: the template's name, or `batch`.")
    template: TemplateName | None = Field(None, description="Run this template's task and policies.")
    version: int | None = Field(None, ge=1, description="The template's version (default: the newest).")
    task: JobTask | None = Field(
        None, description="Or run this task; its strings name the point's values as `{{params.<name>}}`."
    )
    job_type: JobType = Field(JobType.MODEL_TRAINING, description="With `task`: the batch job's type.")
    retry: RetryPolicy | None = Field(None, description="With `task`: each point's retry policy.")
    priority: Priority | None = Field(None, description="Its runs' priority (default: the template's).")
    pool: PoolName | None = Field(
        None, description="The pool its runs take slots in (default: the template's)."
    )
    parameters: Values = Field(default_factory=dict, description="Values every point shares.")
    runs: Annotated[list[Values], Field(min_length=1, max_length=MAX_POINTS)] | None = Field(
        None, description="One point per item: its values."
    )
    grid: (
        Annotated[
            dict[ParameterName, Annotated[list[Scalar], Field(min_length=1, max_length=MAX_GRID_VALUES)]],
            Field(min_length=1, max_length=10, json_schema_extra=open_object),
        ]
        | None
    ) = Field(None, description="Every combination of these values is a point (at most 1,000).")
    execution_mode: ExecutionMode = ExecutionMode.PARALLEL
    max_parallel: int = Field(10, ge=1, le=MAX_PARALLEL, description="Points between start and end at once.")

    @model_validator(mode="after")
    def _one_of_each(self) -> Self:
        if (self.template is None) == (self.task is None):
            raise ValueError("give exactly one of 'template' or 'task'")
        if (self.runs is None) == (self.grid is None):
            raise ValueError("give exactly one of 'runs' or 'grid'")
        if self.template is None and self.version is not None:
            raise ValueError("'version' goes with 'template'")
        return self

    @field_validator("grid")
    @classmethod
    def _bounded(cls, grid: dict[str, list[Scalar]] | None) -> dict[str, list[Scalar]] | None:
        size = 1
        for values in (grid or {}).values():
            size *= len(values)
        if size > MAX_POINTS:
            raise ValueError(f"the grid has {size} points; a batch has at most {MAX_POINTS}")
        return grid

    @property
    def parallelism(self) -> int:
        return 1 if self.execution_mode is ExecutionMode.SEQUENTIAL else self.max_parallel

    def points(self) -> Iterator[dict[str, Scalar]]:
        """Each point's own values (without the shared `parameters`), in order: `runs` as given, a
        grid with its last parameter varying fastest."""
        if self.runs is not None:
            yield from (dict(r) for r in self.runs)
            return
        assert self.grid is not None
        names = list(self.grid)
        for combo in itertools.product(*(self.grid[n] for n in names)):
            yield dict(zip(names, combo, strict=True))


def task_parameters(task: object) -> set[str]:
    """The `{{params.<name>}}` a task uses (a batch given a task takes exactly these)."""
    return set(PARAMS.findall(json.dumps(task)))


def chunked(points: Sequence[tuple[int, Mapping[str, Scalar]]]) -> list[list[tuple[int, dict[str, Scalar]]]]:
    """Points (number, values) in chunks whose JSON stays under a row property's size."""
    chunks: list[list[tuple[int, dict[str, Scalar]]]] = []
    size = CHUNK_CHARS + 1
    for number, values in points:
        text = len(json.dumps([number, values], ensure_ascii=False)) + 1
        if size + text > CHUNK_CHARS:
            chunks.append([])
            size = 2
        chunks[-1].append((number, dict(values)))
        size += text
    return chunks
