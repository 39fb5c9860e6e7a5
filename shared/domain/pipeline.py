"""Pipelines: a job whose task is a graph of steps, and the rules that decide which step runs.

The rules are Databricks' own for multi-task jobs (run conditions, "Upstream failed",
"Excluded", the run's result from its leaf tasks), so a pipeline behaves here as it would there:

* A step's `run_if` is evaluated once every step it depends on has finished.
* `ALL_SUCCESS` (default): every dependency succeeded. `AT_LEAST_ONE_SUCCESS`: one did.
  `NONE_FAILED`: none failed and at least one ran. Not met: the step is `UPSTREAM_FAILED`.
* `ALL_DONE`: runs whatever its dependencies did.
* `AT_LEAST_ONE_FAILED`: one failed. `ALL_FAILED`: all did. Not met: the step is `EXCLUDED`
  (a rollback step is written this way, and is simply left out when nothing failed).
* An `EXCLUDED` step counts as a success downstream but did not run; a step whose dependencies
  were all excluded is excluded too, whatever its `run_if`.
* Failed means `FAILED`, `TIMED_OUT`, `CANCELLED` or `UPSTREAM_FAILED`.
* The pipeline run is `SUCCEEDED` when every step succeeded or was excluded,
  `SUCCEEDED_WITH_FAILURES` when some failed but every leaf (a step nothing depends on)
  succeeded or was excluded, `FAILED` when a leaf failed.

All of it is pure: the run service applies the verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum


class RunIf(StrEnum):
    ALL_SUCCESS = "ALL_SUCCESS"
    AT_LEAST_ONE_SUCCESS = "AT_LEAST_ONE_SUCCESS"
    NONE_FAILED = "NONE_FAILED"
    ALL_DONE = "ALL_DONE"
    AT_LEAST_ONE_FAILED = "AT_LEAST_ONE_FAILED"
    ALL_FAILED = "ALL_FAILED"


class StepState(StrEnum):
    PENDING = "PENDING"  # waiting for its dependencies
    ACTIVE = "ACTIVE"  # its run has been started and has not ended
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"  # its run_if could not be met: it never ran
    EXCLUDED = "EXCLUDED"  # a failure-handling step with nothing to handle: it never ran

    @property
    def is_final(self) -> bool:
        return self not in (StepState.PENDING, StepState.ACTIVE)

    @property
    def succeeded(self) -> bool:
        """A success for what depends on it (an excluded step counts as one)."""
        return self in (StepState.SUCCEEDED, StepState.EXCLUDED)

    @property
    def failed(self) -> bool:
        return self in FAILED

    @property
    def ran(self) -> bool:
        return self in (StepState.SUCCEEDED, StepState.FAILED, StepState.TIMED_OUT, StepState.CANCELLED)


FAILED = frozenset({StepState.FAILED, StepState.TIMED_OUT, StepState.CANCELLED, StepState.UPSTREAM_FAILED})
_HANDLES_FAILURE = frozenset({RunIf.AT_LEAST_ONE_FAILED, RunIf.ALL_FAILED})


class Verdict(StrEnum):
    WAIT = "WAIT"  # a dependency has not finished
    RUN = "RUN"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    EXCLUDED = "EXCLUDED"


def verdict(run_if: RunIf, upstream: Sequence[StepState]) -> Verdict:
    """What becomes of a step with `run_if` whose dependencies are in `upstream` (none: a root)."""
    if not upstream:
        return Verdict.RUN
    if not all(state.is_final for state in upstream):
        return Verdict.WAIT
    if all(state is StepState.EXCLUDED for state in upstream):
        return Verdict.EXCLUDED
    met = {
        RunIf.ALL_SUCCESS: all(s.succeeded for s in upstream),
        RunIf.AT_LEAST_ONE_SUCCESS: any(s.succeeded for s in upstream),
        RunIf.NONE_FAILED: not any(s.failed for s in upstream) and any(s.ran for s in upstream),
        RunIf.ALL_DONE: True,
        RunIf.AT_LEAST_ONE_FAILED: any(s.failed for s in upstream),
        RunIf.ALL_FAILED: all(s.failed for s in upstream),
    }[run_if]
    if met:
        return Verdict.RUN
    return Verdict.EXCLUDED if run_if in _HANDLES_FAILURE else Verdict.UPSTREAM_FAILED


class PipelineResult(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    SUCCEEDED_WITH_FAILURES = "SUCCEEDED_WITH_FAILURES"
    FAILED = "FAILED"


def result(states: Mapping[str, StepState], depends_on: Mapping[str, Sequence[str]]) -> PipelineResult | None:
    """The pipeline run's result once every step is final (None before)."""
    if not all(state.is_final for state in states.values()):
        return None
    upstream_of_something = {dep for deps in depends_on.values() for dep in deps}
    leaves = [key for key in states if key not in upstream_of_something]
    if any(states[key].failed for key in leaves):
        return PipelineResult.FAILED
    if any(state.failed for state in states.values()):
        return PipelineResult.SUCCEEDED_WITH_FAILURES
    return PipelineResult.SUCCEEDED


MAX_STEPS = 100


def graph_errors(steps: Sequence[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """What is wrong with a graph of (key, depends_on) steps, by field (`steps[i].key`,
    `steps[i].depends_on`), naming the step: duplicate keys, unknown or self dependencies, cycles,
    more than `MAX_STEPS` steps. Empty: a valid DAG."""
    errors: dict[str, str] = {}
    if not steps:
        errors["steps"] = "a pipeline has at least one step"
    if len(steps) > MAX_STEPS:
        errors["steps"] = f"a pipeline has at most {MAX_STEPS} steps, not {len(steps)}"
    index: dict[str, int] = {}
    for i, (key, _) in enumerate(steps):
        if key in index:
            errors[f"steps[{i}].key"] = f"step {key!r} appears twice (also steps[{index[key]}])"
        index.setdefault(key, i)
    errors.update(_dependency_errors(steps, index))
    if errors:
        return errors
    cycle = find_cycle({key: list(deps) for key, deps in steps})
    if cycle:
        first = cycle[0]
        errors[f"steps[{index[first]}].depends_on"] = "a cycle: " + " -> ".join([*cycle, first])
    return errors


def _dependency_errors(
    steps: Sequence[tuple[str, Sequence[str]]], index: Mapping[str, int]
) -> dict[str, str]:
    errors: dict[str, str] = {}
    for i, (key, deps) in enumerate(steps):
        for dep in deps:
            if dep == key:
                errors[f"steps[{i}].depends_on"] = f"step {key!r} depends on itself"
            elif dep not in index:
                errors[f"steps[{i}].depends_on"] = f"step {key!r} depends on {dep!r}, which is not a step"
    return errors


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """A cycle in `graph` (key -> its dependencies) as a list of keys, or [] if it is a DAG."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    path: list[str] = []

    def visit(node: str) -> list[str]:
        colour[node] = grey
        path.append(node)
        for dep in graph.get(node, ()):
            if colour.get(dep) == grey:
                return path[path.index(dep) :]
            if colour.get(dep) == white:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        colour[node] = black
        return []

    for node in graph:
        if colour[node] == white:
            found = visit(node)
            if found:
                return found
    return []
