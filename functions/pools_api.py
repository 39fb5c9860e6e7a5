"""Pools, the queue and run priorities: the capacity half of the API (docs/api.md, "Pools").

Pools are shared by every tenant: anyone signed in reads them and their counts; only a pools
admin (the admin role, the development principal, or the Studio backend's function key) changes
them. The queue lists only the waiting runs of the caller's own tenants.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query
from fastapi import Path as PathParam

from functions.api_context import ACTS_IN_TENANT, BY_ID, CHANGES_STATE, READS_BODY, Ctx
from shared.api import openapi
from shared.api.bodies import strict_json
from shared.api.identity import may_manage_pools
from shared.api.schemas import (
    ClassWaitOut,
    PoolListOut,
    PoolOut,
    PriorityIn,
    QueuedRunOut,
    QueueOut,
    RunOut,
)
from shared.domain.errors import Forbidden
from shared.domain.pool import PoolSpec
from shared.domain.run import Priority, parse_run_id
from shared.services.pool_service import PoolUsage, class_waits

router = APIRouter()
PoolNameParam = Annotated[
    str,
    PathParam(
        min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="A pool's name."
    ),
]
StrictSpec = Annotated[None, Depends(strict_json(PoolSpec))]
StrictPriority = Annotated[None, Depends(strict_json(PriorityIn))]
POOL_EXAMPLES = {
    "gpu": {
        "summary": "Four GPU slots, at most two per tenant",
        "value": {"slots": 4, "tenant_limit": 2, "policy": "default"},
    },
    "unbounded": {"summary": "No limit (runs never wait)", "value": {"slots": None}},
}


def _classes(usages: list[PoolUsage], now: datetime) -> dict[Priority, ClassWaitOut]:
    return {p: ClassWaitOut(**asdict(c)) for p, c in class_waits(usages, now).items()}


def _pool_out(usage: PoolUsage, now: datetime) -> PoolOut:
    pool = usage.pool
    pending = len(usage.waiting)
    return PoolOut(
        name=pool.name,
        slots=pool.slots,
        tenant_limit=pool.tenant_limit,
        policy=pool.policy,
        used=usage.used,
        running=usage.running,
        pending=pending,
        queue_length=usage.running + pending,
        queues=_classes([usage], now),
        updated_at=pool.updated_at,
        updated_by=pool.updated_by,
    )


@router.get("/api/pools", tags=["pools"], responses=openapi.errors(*ACTS_IN_TENANT))
def list_pools(ctx: Ctx) -> PoolListOut:
    """Every pool (`default` first) with its slots, what runs in it and what waits."""
    now = ctx.services.clock.now()
    return PoolListOut(items=[_pool_out(u, now) for u in ctx.services.pool_service.pools()])


@router.get("/api/pools/{name}", tags=["pools"], responses=openapi.errors(*BY_ID))
def get_pool(name: PoolNameParam, ctx: Ctx) -> PoolOut:
    """One pool. `default` always exists (unbounded until someone bounds it)."""
    now = ctx.services.clock.now()
    return _pool_out(ctx.services.pool_service.usage(name, now), now)


@router.put(
    "/api/pools/{name}",
    tags=["pools"],
    responses=openapi.errors(
        *READS_BODY,
        *ACTS_IN_TENANT,
        409,
        notes={403: "Only a pools admin may change pools (`pools_admin` in /api/me)."},
    ),
)
def put_pool(
    name: PoolNameParam,
    body: Annotated[PoolSpec, Body(openapi_examples=POOL_EXAMPLES)],
    ctx: Ctx,
    _strict: StrictSpec,
) -> PoolOut:
    """Create or change a pool. Runs holding slots keep them; a pool made bigger admits waiting
    runs at once; `slots: null` makes it unbounded (everything waiting starts)."""
    if not may_manage_pools(ctx.caller, ctx.services.settings):
        raise Forbidden("only a pools admin may change pools")
    now = ctx.services.clock.now()
    return _pool_out(ctx.services.pool_service.put(name, body, ctx.caller.actor), now)


@router.get("/api/queue", tags=["pools"], responses=openapi.errors(*BY_ID))
def queue(
    ctx: Ctx, pool: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")] = None
) -> QueueOut:
    """What waits where: counts per pool and per priority class (every tenant's runs counted), and
    your tenants' waiting runs with their positions and estimated starts."""
    service = ctx.services.pool_service
    now = ctx.services.clock.now()
    usages = [service.usage(pool, now)] if pool else service.pools()
    caller = ctx.caller
    items = [
        QueuedRunOut(
            run_id=w.entry.run_id,
            job_id=parse_run_id(w.entry.run_id)[0],
            job_name=w.entry.job_name,
            tenant=w.entry.tenant,
            pool=u.pool.name,
            priority=w.entry.priority,
            queue_position=w.position,
            enqueued_at=w.entry.enqueued_at,
            wait=(now - w.entry.enqueued_at).total_seconds(),
            estimated_start_at=w.estimated_start_at,
            deadline_at=w.entry.deadline_at,
            slots=w.entry.slots,
        )
        for u in usages
        for w in u.waiting
        if caller.may_use(w.entry.tenant)
    ]
    running = sum(u.running for u in usages)
    pending = sum(len(u.waiting) for u in usages)
    return QueueOut(
        queue_length=running + pending,
        running=running,
        pending=pending,
        queues=_classes(usages, now),
        pools={u.pool.name: _pool_out(u, now) for u in usages},
        items=items,
    )


@router.put(
    "/api/runs/{run_id}/priority",
    tags=["runs"],
    responses=openapi.errors(
        *READS_BODY,
        *CHANGES_STATE,
        notes={409: "The run is not waiting for a slot (`errors.state` says what it is)."},
    ),
)
def set_run_priority(
    run_id: Annotated[str, PathParam(max_length=128, description="`{job id}_{run key}`.")],
    body: PriorityIn,
    ctx: Ctx,
    _strict: StrictPriority,
) -> RunOut:
    """Move a waiting (QUEUED) run to another priority class; the change and its reason go to the
    job's audit trail. Its new place is in the answer."""
    job_id, run_key = parse_run_id(run_id)
    tenant = ctx.job_tenant(job_id)
    jobs = ctx.services.job_service
    job = jobs.get(tenant, job_id)
    run = jobs.run(tenant, job_id, run_key)
    service = ctx.services.pool_service
    moved = service.set_priority(job, run, body.priority, body.reason, ctx.caller.actor)
    return RunOut.of(moved, service.place_of(moved))
