"""Jobs that wait for other jobs: `after` triggers.

When a run of job U ends (after its end is written, like every other follow-up), each job D whose
trigger names U is evaluated: for each upstream job of the trigger, its newest run that ended
within `within` and that no run of D has used yet; if those satisfy the condition (all succeeded,
any succeeded, all done), D gets one run, `a-{ms}-{hash of the set}`, recording the set as its
`cause`. The run and one claim row per upstream run it uses are inserted in one transaction
(insert-if-absent), so the same set never starts two runs and no upstream run is used twice, even
when two upstream ends are evaluated at once. The watchdog evaluates every dependent job every
fifth minute as well, so an evaluation lost to a crash is made late, never missed.

Only ACTIVE dependents start runs (a paused one lets its causes pass). Cancelling or editing an
upstream job changes nothing for the dependent until its runs stop coming: `all_*` then waits.
"""

from __future__ import annotations

import logging
from datetime import datetime

from shared.domain.errors import ExternalError
from shared.domain.job import AfterCondition, AfterTrigger, Job, JobStatus
from shared.domain.run import Cause, Run, RunState, Trigger, caused_run_key, epoch_ms
from shared.services.messages import launch_intent
from shared.services.run_context import RunContext

log = logging.getLogger(__name__)

RECENT = 20  # an upstream job's newest runs looked at


def on_end(ctx: RunContext, ended: Run, now: datetime) -> None:
    """A run ended: evaluate the jobs that wait for its job (one query when there are none)."""
    for dependent in ctx.job_repository.dependents(ended.tenant, ended.job_id):
        evaluate(ctx, ended.tenant, dependent, now)


def evaluate(ctx: RunContext, tenant: str, job_id: str, now: datetime) -> Run | None:
    """Start the dependent job's run if one of its `after` triggers is satisfied by unused runs."""
    job = ctx.job(tenant, job_id)
    if job is None or job.status is not JobStatus.ACTIVE:
        return None
    for trigger in job.definition.after_triggers:
        shard = ctx.due_index.shard_for(job)
        used = ctx.run_repository.claims(shard, tenant, job_id, now - trigger.within)
        chosen = _satisfied(ctx, tenant, trigger, used, now)
        if chosen:
            return _start(ctx, job, chosen, now)
    return None


def _satisfied(
    ctx: RunContext, tenant: str, trigger: AfterTrigger, used: set[str], now: datetime
) -> dict[str, Run] | None:
    """Per upstream job, its newest unused run that ended within the window and counts for the
    condition; the set if the condition holds, else None."""
    wanted_success = trigger.condition is not AfterCondition.ALL_DONE
    found: dict[str, Run] = {}
    for upstream in trigger.jobs:
        candidate = _newest_unused(ctx, tenant, upstream, used, now - trigger.within, wanted_success)
        if candidate is not None:
            found[upstream] = candidate
    if trigger.condition is AfterCondition.ANY_SUCCEEDED:
        return found or None
    return found if len(found) == len(trigger.jobs) else None


def _newest_unused(
    ctx: RunContext, tenant: str, job_id: str, used: set[str], since: datetime, success: bool
) -> Run | None:
    upstream = ctx.job(tenant, job_id)
    if upstream is None:
        return None
    runs = ctx.run_repository.recent(ctx.due_index.shard_for(upstream), tenant, job_id, RECENT)
    for run, _ in runs:  # newest first
        ended = run.state.is_terminal and run.state is not RunState.SKIPPED
        if not ended or run.updated_at < since or run.id in used:
            continue
        if success and run.state is not RunState.SUCCEEDED:
            continue
        return run
    return None


def _start(ctx: RunContext, job: Job, chosen: dict[str, Run], now: datetime) -> Run | None:
    newest = max(r.updated_at for r in chosen.values())
    run_key = caused_run_key("a", newest, "|".join(sorted(r.id for r in chosen.values())))
    run = Run(
        tenant=job.tenant,
        job_id=job.id,
        run_key=run_key,
        shard=ctx.due_index.shard_for(job),
        trigger=Trigger.AFTER,
        scheduled_for=datetime.fromtimestamp(epoch_ms(newest) / 1000, newest.tzinfo),
        state=RunState.SCHEDULED,
        reason="after " + ", ".join(sorted(r.id for r in chosen.values())),
        job_version=job.version,
        created_at=now,
        updated_at=now,
        transitions={RunState.SCHEDULED.value: now},
        cause=Cause(kind=Trigger.AFTER, runs={upstream: r.id for upstream, r in chosen.items()}),
    )
    run = ctx.watched(run.model_copy(update={"intent": launch_intent(run, 1, now)}), now)
    if not ctx.run_repository.add_claiming(run, [(r.updated_at, r.id) for r in chosen.values()]):
        return None  # this set started a run already, or one of its runs was used by another
    log.info("started by upstream runs", extra={"job_id": job.id, "run_key": run_key})
    try:
        ctx.send(run)
    except ExternalError as err:  # the launch is recorded on the run: the watchdog sends it
        log.warning("could not send the launch of an after run; the watchdog will: %s", err.detail)
    return run


def check_all(ctx: RunContext, tenant: str, now: datetime) -> int:
    """The watchdog's pass over a tenant's dependents: evaluate each (idempotent); runs started."""
    started = 0
    for dependent in sorted({d for _, d in ctx.job_repository.dependencies(tenant)}):
        started += evaluate(ctx, tenant, dependent, now) is not None
    return started


def cycle(edges: list[tuple[str, str]], job_id: str, upstream: list[str]) -> list[str]:
    """A cycle that giving `job_id` the upstream jobs `upstream` would close, as a list of job ids
    (each waits for the next), or [] if none. `edges`: the tenant's (upstream, dependent) pairs."""
    waits_for: dict[str, set[str]] = {}
    for up, dependent in edges:
        if dependent != job_id:  # the job's own current edges are replaced
            waits_for.setdefault(dependent, set()).add(up)
    waits_for[job_id] = set(upstream)
    path: list[str] = []

    def visit(node: str, seen: set[str]) -> bool:
        path.append(node)
        for nxt in sorted(waits_for.get(node, ())):
            if nxt == job_id or (nxt not in seen and visit(nxt, seen | {nxt})):
                if nxt == job_id:
                    path.append(job_id)
                return True
        path.pop()
        return False

    return path if visit(job_id, {job_id}) else []
