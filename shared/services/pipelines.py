"""Pipeline runs: a parent run whose steps are runs of their own (launch, poll, retries, timeout,
admission: the same machinery as any run).

* `start` (the launch of the parent): RUNNING with every step recorded, the root steps' runs
  inserted in the same transaction, then their launches sent.
* `step_ended` (after a step's run ends, any way): the step's state on the parent, then every step
  that can now be decided (`shared/domain/pipeline.py`): started (its run inserted in the same
  transaction as the parent's write), `UPSTREAM_FAILED` or `EXCLUDED`; when every step is final
  the parent ends `SUCCEEDED`, `SUCCEEDED_WITH_FAILURES` or `FAILED`.
* `cancel`: the parent goes CANCELLING (recorded before anything is cancelled), its active
  steps' runs are cancelled (in Databricks too), pending steps never start, then CANCELLED.
* `check` (the watchdog, every few minutes while the parent runs): a step's run that ended
  without its parent hearing of it, a step recorded active whose run was never inserted: both
  repaired, so a crash at any point loses nothing.

Exactly once per step: a step's run has a deterministic key (`{parent key}.{step key}`) and is
only ever inserted together with the parent write that marks the step active (ETag-guarded); a
redelivered "step ended" finds its step final already and does nothing. Databricks sees one run
per attempt of that key, by idempotency token, like any run.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from shared.domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    Conflict,
    InvalidInput,
    NotFound,
)
from shared.domain.job import Job, PipelineTask, RetryPolicy, Task
from shared.domain.pipeline import PipelineResult, StepState, Verdict, result, verdict
from shared.domain.run import RepairRecord, Run, RunState, StepRecord, step_state_of
from shared.services.conflicts import until_saved
from shared.services.messages import launch_intent
from shared.services.run_context import Outcome, RunContext

log = logging.getLogger(__name__)
_RESULT = re.compile(r"\{\{\s*steps\.([A-Za-z0-9][A-Za-z0-9_-]*)\.result\s*\}\}")

FIRST_WRITE = 40  # step runs inserted with the parent's write (2 rows each; a transaction holds 100)
_ENDS = {
    PipelineResult.SUCCEEDED: RunState.SUCCEEDED,
    PipelineResult.SUCCEEDED_WITH_FAILURES: RunState.SUCCEEDED_WITH_FAILURES,
    PipelineResult.FAILED: RunState.FAILED,
}


def pipeline_of(job: Job | None) -> PipelineTask | None:
    task = job.definition.task if job is not None else None
    return task if isinstance(task, PipelineTask) else None


def step_settings(job: Job, run: Run) -> tuple[Task, RetryPolicy, timedelta | None]:
    """What a run executes, and its retry policy and timeout: the job's, or its step's."""
    pipeline = pipeline_of(job)
    if run.step is None or pipeline is None:
        task = job.definition.task
        assert not isinstance(task, PipelineTask)
        return task, job.definition.retry, job.definition.timeout
    step = pipeline.step(run.step)
    if step is None:
        raise NotFound(f"step {run.step} is no longer in job {job.id}")
    return step.task, step.retry or job.definition.retry, step.timeout or job.definition.timeout


def references(ctx: RunContext, run: Run, job: Job) -> dict[str, str]:
    """What a pipeline step's parameters may refer to: `{{steps.<key>.databricks_run_id}}` of every
    step of its pipeline run that has started in Databricks (one query; nothing for other runs),
    and `{{steps.<key>.result}}`, the value a succeeded notebook step exited with, read from
    Databricks only for the steps this step's parameters name."""
    if run.parent is None or run.step is None:  # not a pipeline step (a batch's point)
        return {}
    latest = {
        s.step: s for s, _ in ctx.run_repository.children(run.shard, run.tenant, run.job_id, run.parent)
    }
    found = {
        f"steps.{key}.databricks_run_id": str(sibling.databricks_run_id)
        for key, sibling in latest.items()
        if key and sibling.databricks_run_id is not None
    }
    text = json.dumps(step_settings(job, run)[0].model_dump(mode="json"))
    for key in set(_RESULT.findall(text)):
        sibling = latest.get(key)
        dbx = sibling.databricks_run_of(sibling.attempt) if sibling else None
        if sibling is not None and sibling.state is RunState.SUCCEEDED and dbx is not None:
            try:
                value = ctx.databricks.result(dbx)
            except NotFound:
                value = None  # the run is gone from Databricks: the reference stays as written
            if value is not None:
                found[f"steps.{key}.result"] = value
    return found


def child_key(parent: Run, step: str, repair: int = 0) -> str:
    """A step's run: `{parent}.{step}`, and `{parent}.{step}.r{n}` when repair n runs it again."""
    return f"{parent.run_key}.{step}" + (f".r{repair}" if repair else "")


def _child(parent: Run, step: str, now: datetime) -> Run:
    repair = (parent.steps or {}).get(step, StepRecord()).repair
    child = Run(
        tenant=parent.tenant,
        job_id=parent.job_id,
        run_key=child_key(parent, step, repair),
        shard=parent.shard,
        trigger=parent.trigger,
        scheduled_for=parent.scheduled_for,
        state=RunState.SCHEDULED,
        job_version=parent.job_version,
        created_at=now,
        updated_at=now,
        transitions={RunState.SCHEDULED.value: now},
        parent=parent.run_key,
        step=step,
        deadline_at=parent.deadline_at,
    )
    return child.model_copy(update={"intent": launch_intent(child, 1, now)})


def _plan(parent: Run, pipeline: PipelineTask, now: datetime) -> tuple[Run, list[str]]:
    """Decide every step that can be decided now: the parent with its steps (ended, if all are
    final), and the keys of the steps to start."""
    steps = dict(parent.steps or {})
    start: list[str] = []
    stopping = parent.state is RunState.CANCELLING
    changed = True
    while changed and not stopping:
        changed = False
        for step in pipeline.steps:
            record = steps.get(step.key, StepRecord())
            if record.state is not StepState.PENDING:
                continue
            said = verdict(step.run_if, [steps.get(d, StepRecord()).state for d in step.depends_on])
            if said is Verdict.WAIT:
                continue
            changed = True
            if said is Verdict.RUN:
                steps[step.key] = record.model_copy(update={"state": StepState.ACTIVE, "started_at": now})
                start.append(step.key)
            else:
                steps[step.key] = record.model_copy(update={"state": StepState(said.value), "ended_at": now})
    planned = parent.model_copy(update={"steps": steps})
    outcome = None if stopping else result({k: r.state for k, r in steps.items()}, pipeline.graph)
    if outcome is not None:
        failed = [key for key, r in steps.items() if r.state.failed]
        why = f"failed steps: {', '.join(failed)}" if failed else ""
        planned = planned.moved(_ENDS[outcome], now, reason=why)
    return planned, start


def _save(ctx: RunContext, before: Run, etag: str, planned: Run, start: list[str], now: datetime) -> Run:
    """Write the parent with the first step runs to start; insert the rest; send their launches;
    then what follows the parent's end, if it ended."""
    children = [ctx.watched(_child(planned, key, now), now) for key in start]
    saved, _ = ctx.write(before, etag, planned, now, children[:FIRST_WRITE])
    for child in children[FIRST_WRITE:]:
        ctx.run_repository.add(child)  # a crash before this: `check` inserts what is missing
    from shared.services import endings

    endings.after_parent_write(ctx, saved, children, now)
    return saved


def start(ctx: RunContext, run: Run, etag: str, job: Job, now: datetime) -> Outcome:
    """The launch of a pipeline run: RUNNING, every step recorded, the roots started."""
    pipeline = pipeline_of(job)
    assert pipeline is not None
    steps = {step.key: StepRecord() for step in pipeline.steps}
    deadline = job.definition.deadline
    running = run.moved(RunState.LAUNCHING, now).moved(
        RunState.RUNNING,
        now,
        reason="",
        steps=steps,
        deadline_at=run.deadline_at or (run.scheduled_for + deadline if deadline else None),
    )
    try:
        saved = _save(ctx, run, etag, *_plan(running, pipeline, now), now)
    except (ConcurrencyConflict, AlreadyExists):
        return Outcome("already_handled")  # another delivery started it
    log.info("pipeline started", extra={"job_id": run.job_id, "run_key": run.run_key})
    return Outcome("launched", saved)


def step_ended(ctx: RunContext, child: Run, now: datetime) -> None:
    """Record how a step's run ended on its pipeline run, and go on. Safe to repeat."""
    assert child.parent is not None and child.step is not None

    def attempt() -> None:
        try:
            parent, etag = ctx.run_repository.get(child.shard, child.tenant, child.job_id, child.parent or "")
        except NotFound:
            return
        record = (parent.steps or {}).get(child.step or "")
        if parent.state.is_terminal or record is None or record.state.is_final:
            return  # heard already (a redelivery), or the pipeline has ended
        if child.run_key != child_key(parent, child.step or "", record.repair):
            return  # a run of the step from before a repair
        pipeline = pipeline_of(ctx.job(child.tenant, child.job_id))
        if pipeline is None:  # the job is gone or no longer a pipeline: nothing more starts
            cancel(ctx, parent, "its job is gone or no longer a pipeline")
            return
        ended = record.model_copy(
            update={"state": step_state_of(child.state), "ended_at": now, "attempts": len(child.attempts)}
        )
        marked = parent.model_copy(update={"steps": {**(parent.steps or {}), child.step or "": ended}})
        try:
            _save(ctx, parent, etag, *_plan(marked, pipeline, now), now)
        except AlreadyExists:
            check(
                ctx, *ctx.run_repository.get(parent.shard, parent.tenant, parent.job_id, parent.run_key), now
            )

    until_saved(attempt, f"pipeline run {child.parent}")


def check(ctx: RunContext, parent: Run, etag: str, now: datetime) -> None:
    """The watchdog's look at a running pipeline: hear step runs that ended unheard, insert step
    runs recorded active but missing, go on; else look again later."""
    children = {
        c.run_key: c
        for c, _ in ctx.run_repository.children(parent.shard, parent.tenant, parent.job_id, parent.run_key)
    }
    steps = dict(parent.steps or {})
    missing = []
    for key, record in steps.items():
        if record.state is not StepState.ACTIVE:
            continue
        found = children.get(child_key(parent, key, record.repair))
        if found is None:
            missing.append(_child(parent, key, now))
        elif found.state.is_terminal:
            steps[key] = record.model_copy(
                update={
                    "state": step_state_of(found.state),
                    "ended_at": found.updated_at,
                    "attempts": len(found.attempts),
                }
            )
    for child in missing:
        stored, new = ctx.run_repository.add(ctx.watched(child, now))
        if new:
            from shared.services.endings import send_recorded

            send_recorded(ctx, stored)
            log.warning("inserted a missing step run", extra={"run_key": child.run_key})
    pipeline = pipeline_of(ctx.job(parent.tenant, parent.job_id))
    if parent.state is RunState.CANCELLING or pipeline is None:
        cancel(ctx, parent, parent.reason or "its job is gone or no longer a pipeline")
        return
    marked = parent.model_copy(update={"steps": steps, "checks": parent.checks + 1})
    _save(ctx, parent, etag, *_plan(marked, pipeline, now), now)


REPAIRABLE = frozenset({RunState.FAILED, RunState.SUCCEEDED_WITH_FAILURES, RunState.CANCELLED})


def repair(ctx: RunContext, job: Job, run_key: str, keys: list[str] | None, by: str) -> Run:
    """Run again, inside the same pipeline run, the steps `keys` (None: every step that failed,
    timed out or was cancelled) and every step downstream of them; the others keep their results.
    Each step run again gets a new run (`.r{n}`), launched with its parameters filled again."""
    pipeline = pipeline_of(job)
    if pipeline is None:
        raise Conflict(f"job {job.id} is not a pipeline: retry its run instead")
    graph = pipeline.graph
    unknown = sorted(set(keys or []) - set(graph))
    if unknown:
        raise InvalidInput(f"no step {', '.join(unknown)} in this pipeline", errors={"steps": "unknown step"})
    now = ctx.clock.now()

    def attempt() -> Run:
        parent, etag = ctx.run_repository.get(ctx.due_index.shard_for(job), job.tenant, job.id, run_key)
        if not parent.is_pipeline or parent.state not in REPAIRABLE:
            raise Conflict(
                f"run {parent.id} is {parent.state}: only a pipeline run that ended without succeeding "
                "can be repaired",
                errors={"state": parent.state.value},
            )
        steps = dict(parent.steps or {})
        ran = (StepState.FAILED, StepState.TIMED_OUT, StepState.CANCELLED)
        chosen = set(keys) if keys else {k for k, r in steps.items() if r.state in ran}
        if not chosen:
            raise Conflict(f"run {parent.id} has no failed step to repair", errors={"steps": "none failed"})
        again = downstream(graph, chosen)
        number = len(parent.repair_history) + 1
        for key in again:
            steps[key] = StepRecord(repair=number)
        record = RepairRecord(number=number, at=now, by=by, steps=sorted(again))
        running = parent.moved(RunState.RUNNING, now, reason=f"repair {number} by {by}").model_copy(
            update={"steps": steps, "repair_history": [*parent.repair_history, record]}
        )
        return _save(ctx, parent, etag, *_plan(running, pipeline, now), now)

    repaired = until_saved(attempt, f"run {run_key}")
    log.info("pipeline repaired", extra={"job_id": job.id, "run_key": run_key})
    return repaired


def downstream(graph: Mapping[str, Sequence[str]], keys: set[str]) -> set[str]:
    """`keys` and every step that depends on one of them, directly or not."""
    found = set(keys)
    changed = True
    while changed:
        changed = False
        for key, deps in graph.items():
            if key not in found and found.intersection(deps):
                found.add(key)
                changed = True
    return found


def cancel(ctx: RunContext, parent: Run, reason: str) -> Run:
    """Cancel a pipeline run: CANCELLING first, then its active steps' runs, then CANCELLED."""
    from shared.services.stopping import stop_children

    now = ctx.clock.now()
    current = stop_children(ctx, parent, reason, now)
    if current.state.is_terminal:
        return current

    def finish() -> Run:
        current, etag = ctx.run_repository.get(parent.shard, parent.tenant, parent.job_id, parent.run_key)
        if current.state.is_terminal:
            return current
        steps = {
            key: r
            if r.state.is_final
            else r.model_copy(update={"state": StepState.CANCELLED, "ended_at": now})
            for key, r in (current.steps or {}).items()
        }
        ended = current.model_copy(update={"steps": steps}).moved(RunState.CANCELLED, now, reason=reason)
        return _save(ctx, current, etag, ended, [], now)

    return until_saved(finish, f"run {parent.id}")
