"""Batches: one task (or template) run once per point of a grid or list, at most `max_parallel` at a
time, followed, cancelled and retried as one (docs/api.md, "Batches")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Response
from fastapi import Path as PathParam

from functions.api_context import ACTS_IN_TENANT, BY_ID, CHANGES_STATE, READS_BODY, Ctx
from shared.api import openapi
from shared.api.bodies import strict_json
from shared.api.schemas import BatchOut
from shared.domain.batch import BatchSpec
from shared.domain.errors import InvalidInput
from shared.services.batches import Plan

router = APIRouter()
BatchId = Annotated[str, PathParam(max_length=64, description="The batch id returned by create.")]
StrictSpec = Annotated[None, Depends(strict_json(BatchSpec))]
BATCH_EXAMPLES = {
    "grid": {
        "summary": "A learning-rate by depth sweep of a template: 3 x 4 = 12 runs, 4 at a time",
        "value": {
            "template": "train-model",
            "parameters": {"market": "de"},
            "grid": {"learning_rate": [0.1, 0.01, 0.001], "epochs": [5, 10, 20, 40]},
            "execution_mode": "parallel",
            "max_parallel": 4,
        },
    },
    "runs": {
        "summary": "Explicit points of a task, one after the other",
        "value": {
            "name": "backfill-markets",
            "task": {"kind": "databricks_job", "job_id": 123, "parameters": {"market": "{{params.market}}"}},
            "runs": [{"market": "de"}, {"market": "fr"}, {"market": "uk"}],
            "execution_mode": "sequential",
        },
    },
}


@router.post(
    "/api/batches",
    status_code=201,
    tags=["batches"],
    responses={
        201: {"headers": {"Location": openapi.header("The batch: `/api/batches/{batch_id}`.")}},
        200: {
            "description": "An earlier request with this Idempotency-Key made the batch: it, as it is now.",
            "model": BatchOut,
            "headers": {
                "Location": openapi.header("The batch: `/api/batches/{batch_id}`."),
                "Idempotent-Replayed": openapi.header("`true`: nothing new was made."),
            },
        },
        **openapi.errors(
            *READS_BODY,
            *ACTS_IN_TENANT,
            409,
            notes={409: "The Idempotency-Key came before with a different body."},
        ),
    },
)
def create_batch(
    body: Annotated[BatchSpec, Body(openapi_examples=BATCH_EXAMPLES)],
    ctx: Ctx,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e][\x20-\x7e]*$",
            description="Names the request: sent again (a retry after a lost answer), it answers with the "
            "batch the first one made, making nothing new.",
        ),
    ] = None,
    _strict: StrictSpec = None,
) -> BatchOut:
    """Submit a batch: every point is checked first (a 422 names each wrong value, `runs.<i>.<name>`,
    `grid.<name>.<j>` or `parameters.<name>`, and nothing is created), then its runs start,
    `max_parallel` at a time (`sequential`: one), through the job's pool like any run."""
    tenant = ctx.tenant()
    service = ctx.services.batches

    def planned() -> Plan:
        plan = service.plan(tenant, body)
        pool = plan.definition.pool
        if not ctx.services.pool_service.exists(pool):
            raise InvalidInput(
                f"no pool named {pool!r}: create it with PUT /api/pools/{pool}",
                errors={"pool": "unknown pool"},
            )
        return plan

    job, replayed = service.create(tenant, ctx.caller.actor, body, planned, idempotency_key)
    response.headers["Location"] = f"/api/batches/{job.id}"
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return BatchOut.of(service.view(job))


@router.get("/api/batches/{batch_id}", tags=["batches"], responses=openapi.errors(*BY_ID))
def get_batch(batch_id: BatchId, ctx: Ctx) -> BatchOut:
    """The batch: counts by state, every point with its values and latest run, and its rounds."""
    return BatchOut.of(ctx.services.batches.get(ctx.job_tenant(batch_id), batch_id))


@router.post(
    "/api/batches/{batch_id}/cancel",
    tags=["batches"],
    responses=openapi.errors(*CHANGES_STATE, notes={409: "It kept changing: try again."}),
)
def cancel_batch(batch_id: BatchId, ctx: Ctx) -> BatchOut:
    """Cancel the batch: points not started never start, running ones are cancelled (in Databricks
    too). Cancelling a batch that ended changes nothing."""
    tenant = ctx.job_tenant(batch_id)
    ctx.services.batches.cancel(tenant, batch_id, ctx.caller.actor)
    return BatchOut.of(ctx.services.batches.get(tenant, batch_id))


@router.post(
    "/api/batches/{batch_id}/retry-failed",
    status_code=202,
    tags=["batches"],
    responses=openapi.errors(
        *CHANGES_STATE, notes={409: "The batch still runs, was cancelled, or has no failed point."}
    ),
)
def retry_failed(batch_id: BatchId, ctx: Ctx) -> BatchOut:
    """Run again, as a new round, the points whose latest run failed or timed out (each once more,
    `max_parallel` at a time); the others keep their results."""
    tenant = ctx.job_tenant(batch_id)
    ctx.services.batches.retry_failed(tenant, batch_id, ctx.caller.actor)
    return BatchOut.of(ctx.services.batches.get(tenant, batch_id))
