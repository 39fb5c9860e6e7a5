"""The pipeline rules (shared/domain/pipeline.py) against the table the user guide documents.

Every run condition meets every mix of one to three upstream outcomes. A mix is classified by
what is in it (a step that succeeded, one that failed in any way, one that was excluded); the
expected verdict for each class is written out below as a literal table, as Databricks documents
its run conditions, not computed by the code under test.
"""

from __future__ import annotations

import itertools

import pytest

from shared.domain.pipeline import (
    MAX_STEPS,
    PipelineResult,
    RunIf,
    StepState,
    Verdict,
    find_cycle,
    graph_errors,
    result,
    verdict,
)

S, F, E = "succeeded", "failed", "excluded"
RUN, UF, EX = Verdict.RUN, Verdict.UPSTREAM_FAILED, Verdict.EXCLUDED
ORDER = (
    RunIf.ALL_SUCCESS,
    RunIf.AT_LEAST_ONE_SUCCESS,
    RunIf.NONE_FAILED,
    RunIf.ALL_DONE,
    RunIf.AT_LEAST_ONE_FAILED,
    RunIf.ALL_FAILED,
)
# what the upstream steps did -> (ALL_SUCCESS, AT_LEAST_ONE_SUCCESS, NONE_FAILED, ALL_DONE,
#                                  AT_LEAST_ONE_FAILED, ALL_FAILED)
TABLE: dict[frozenset[str], tuple[Verdict, ...]] = {
    frozenset({S}): (RUN, RUN, RUN, RUN, EX, EX),
    frozenset({F}): (UF, UF, UF, RUN, RUN, RUN),
    frozenset({E}): (EX, EX, EX, EX, EX, EX),  # all excluded: excluded, whatever the condition
    frozenset({S, F}): (UF, RUN, UF, RUN, RUN, EX),
    frozenset({S, E}): (RUN, RUN, RUN, RUN, EX, EX),
    frozenset({F, E}): (UF, RUN, UF, RUN, RUN, EX),  # an excluded step counts as a success
    frozenset({S, F, E}): (UF, RUN, UF, RUN, RUN, EX),
}
KIND = {
    StepState.SUCCEEDED: S,
    StepState.FAILED: F,
    StepState.TIMED_OUT: F,
    StepState.CANCELLED: F,
    StepState.UPSTREAM_FAILED: F,
    StepState.EXCLUDED: E,
}
MIXES = [mix for n in (1, 2, 3) for mix in itertools.combinations_with_replacement(list(KIND), n)]


@pytest.mark.parametrize("run_if", ORDER)
@pytest.mark.parametrize("mix", MIXES, ids=lambda m: "+".join(s.value for s in m))
def test_every_condition_against_every_mix_of_upstream_outcomes(
    run_if: RunIf, mix: tuple[StepState, ...]
) -> None:
    expected = TABLE[frozenset(KIND[s] for s in mix)][ORDER.index(run_if)]
    assert verdict(run_if, mix) is expected


def test_a_step_waits_until_every_dependency_is_final_and_a_root_runs() -> None:
    for run_if in RunIf:
        assert verdict(run_if, []) is Verdict.RUN
        assert verdict(run_if, [StepState.FAILED, StepState.ACTIVE]) is Verdict.WAIT
        assert verdict(run_if, [StepState.PENDING]) is Verdict.WAIT


DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


@pytest.mark.parametrize(
    ("run_if", "d_becomes", "outcome"),
    [
        (RunIf.ALL_DONE, Verdict.RUN, PipelineResult.SUCCEEDED_WITH_FAILURES),
        (RunIf.ALL_SUCCESS, Verdict.UPSTREAM_FAILED, PipelineResult.FAILED),
    ],
)
def test_the_diamond_with_a_failed_branch(run_if: RunIf, d_becomes: Verdict, outcome: PipelineResult) -> None:
    """A -> B, C -> D with B failing: D runs under ALL_DONE, is UPSTREAM_FAILED under ALL_SUCCESS."""
    assert verdict(run_if, [StepState.FAILED, StepState.SUCCEEDED]) is d_becomes
    d = StepState.SUCCEEDED if d_becomes is Verdict.RUN else StepState.UPSTREAM_FAILED
    states = {"a": StepState.SUCCEEDED, "b": StepState.FAILED, "c": StepState.SUCCEEDED, "d": d}
    assert result(states, DIAMOND) is outcome


def test_the_result_comes_from_the_leaves() -> None:
    ok = dict.fromkeys(DIAMOND, StepState.SUCCEEDED)
    assert result(ok, DIAMOND) is PipelineResult.SUCCEEDED
    rollback = {"train": [], "rollback": ["train"]}  # rollback: run_if AT_LEAST_ONE_FAILED
    assert result({"train": StepState.SUCCEEDED, "rollback": StepState.EXCLUDED}, rollback) is (
        PipelineResult.SUCCEEDED
    )
    assert result({"train": StepState.FAILED, "rollback": StepState.SUCCEEDED}, rollback) is (
        PipelineResult.SUCCEEDED_WITH_FAILURES
    )
    assert result({**ok, "d": StepState.TIMED_OUT}, DIAMOND) is PipelineResult.FAILED
    assert result({**ok, "d": StepState.ACTIVE}, DIAMOND) is None


@pytest.mark.parametrize(
    ("steps", "field", "says"),
    [
        ([("a", []), ("a", [])], "steps[1].key", "appears twice"),
        ([("a", ["b"])], "steps[0].depends_on", "'b', which is not a step"),
        ([("a", ["a"])], "steps[0].depends_on", "depends on itself"),
        ([("a", ["c"]), ("b", ["a"]), ("c", ["b"])], "steps[0].depends_on", "a cycle: a -> c -> b -> a"),
        ([], "steps", "at least one step"),
        ([(f"s{i}", []) for i in range(MAX_STEPS + 1)], "steps", "at most 100 steps"),
    ],
)
def test_a_bad_graph_names_the_step(steps: list[tuple[str, list[str]]], field: str, says: str) -> None:
    errors = graph_errors(steps)
    assert says in errors[field], errors


def test_a_valid_graph_has_no_errors() -> None:
    assert graph_errors([(k, deps) for k, deps in DIAMOND.items()]) == {}
    assert graph_errors([(f"s{i}", [f"s{i - 1}"] if i else []) for i in range(MAX_STEPS)]) == {}
    assert find_cycle(DIAMOND) == []
