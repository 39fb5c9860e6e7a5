"""The job management API (HTTP trigger): FastAPI served through `func.AsgiFunctionApp`.

Routes carry the `/api` prefix because the Functions host hands the ASGI app the
full path; the local stack serves exactly the same paths. Each route parses,
calls a service and maps the result; errors become problem+json in
`shared/api/problems.py`.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import azure.functions as func
from fastapi import APIRouter, Body, Depends, FastAPI, Header, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import Discriminator, Tag

from functions import batches_api, console, pools_api, templates_api
from functions.api_context import ACTS_IN_TENANT, BY_ID, CHANGES_STATE, READS_BODY, Context, Ctx
from shared.api import openapi, problems
from shared.api.bodies import strict_json
from shared.api.identity import may_manage_pools
from shared.api.schemas import (
    AnalyticsOut,
    AuditListOut,
    ChangedOut,
    FireTimeOut,
    GroupOut,
    HealthOut,
    JobListOut,
    JobOut,
    MeOut,
    NotificationTestOut,
    NotificationTestsOut,
    PreviewIn,
    PreviewOut,
    RepairIn,
    RunListOut,
    RunOut,
    ScheduledOut,
    TriggerIn,
)
from shared.bootstrap import Services, services
from shared.config import AuthMode
from shared.domain.errors import Conflict, ExternalError, InvalidInput
from shared.domain.job import Job, JobDefinition, JobStatus, JobType
from shared.domain.run import RunState, parse_run_id
from shared.domain.template import JobFromTemplate
from shared.services import pipelines
from shared.services.ports import JobQuery

VERSION = "0.1.0"
SortName = Literal[
    "name", "-name", "next_fire_at", "-next_fire_at", "created_at", "-created_at", "updated_at", "-updated_at"
]
JobId = Annotated[str, PathParam(max_length=64, description="The job id returned by create.")]
RunId = Annotated[str, PathParam(max_length=128, description="`{job id}_{run key}`, as runs list it.")]
Definition = Annotated[JobDefinition, Body(openapi_examples=openapi.JOB_EXAMPLES)]


def _body_kind(value: object) -> str:
    return "from_template" if isinstance(value, dict) and "template" in value else "definition"


# A job's whole definition, or a template's name, its values and the job's own name and schedule.
NewJob = Annotated[
    Annotated[JobDefinition, Tag("definition")] | Annotated[JobFromTemplate, Tag("from_template")],
    Discriminator(_body_kind),
]
# Declared after `Ctx` in each handler, so that identity errors come first (shared/api/bodies.py).
StrictDefinition = Annotated[None, Depends(strict_json(JobDefinition))]
StrictNewJob = Annotated[None, Depends(strict_json(NewJob))]
StrictPreview = Annotated[None, Depends(strict_json(PreviewIn))]
StrictRepair = Annotated[None, Depends(strict_json(RepairIn))]
StrictTrigger = Annotated[None, Depends(strict_json(TriggerIn))]
NO_PARAMETERS = TriggerIn({})

_ETAG = openapi.header('The job\'s version, e.g. `"v3"`: send it back in `If-Match`.', r'^"v[0-9]+"$')


def _if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"').removeprefix("v")
    if not text.isdigit():
        raise InvalidInput(
            'If-Match must be a job version as returned in ETag, e.g. "v3"', errors={"If-Match": "invalid"}
        )
    return int(text)


def _changed(job: Job, message: str) -> ChangedOut:
    return ChangedOut(
        job_id=job.id,
        message=message,
        status=job.status,
        version=job.version,
        next_fire_at=job.next_fire_at,
        job=JobOut.of(job),
    )


def _check_pool(ctx: Context, definition: JobDefinition) -> None:
    """A job's pool must exist (`default` always does): a typo would otherwise queue nothing."""
    if not ctx.services.pool_service.exists(definition.pool):
        raise InvalidInput(
            f"no pool named {definition.pool!r}: create it with PUT /api/pools/{definition.pool}",
            errors={"pool": "unknown pool"},
        )


def _docs_static() -> Path:
    spec = importlib.util.find_spec("fastapi_offline")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "static"


router = APIRouter()


@router.get("/api/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/api/openapi.json",
        title="ML job scheduler — API",
        swagger_js_url="/api/docs/static/swagger-ui-bundle.js",
        swagger_css_url="/api/docs/static/swagger-ui.css",
        swagger_favicon_url="/api/docs/static/favicon.png",
    )


@router.get(
    "/api/health",
    tags=["operations"],
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Degraded: Table Storage cannot be reached."}},
)
def health(request: Request) -> JSONResponse:
    """Is Table Storage reachable? With the dead-letter count of each queue. Needs no identity."""
    services: Services = request.app.state.provider()
    try:
        services.job_repository.locate("~health")
        storage: Literal["ok", "error"] = "ok"
    except ExternalError:
        storage = "error"
    dead_letters = services.dead_letter_counts()
    body = HealthOut(
        status="ok" if storage == "ok" else "degraded",
        storage=storage,
        version=VERSION,
        dead_letters=dead_letters,
    )
    return JSONResponse(body.model_dump(), status_code=200 if storage == "ok" else 503)


# Reads no storage: only the identity can fail (401; 422 for a missing tenant under function keys).
@router.get("/api/me", tags=["identity"], responses=openapi.errors(401, 422))
def me(ctx: Ctx) -> MeOut:
    """Who you are, as the scheduler sees you: your name and the tenants you may act in."""
    caller = ctx.caller
    return MeOut(
        actor=caller.actor,
        tenants=sorted(caller.tenants),
        admin=caller.is_admin,
        pools_admin=may_manage_pools(caller, ctx.services.settings),
    )


@router.post(
    "/api/jobs/schedule",
    status_code=201,
    tags=["jobs"],
    responses={
        201: {
            "headers": {
                "Location": openapi.header("The new job: `/api/jobs/{job_id}`."),
                "ETag": _ETAG,
            }
        },
        **openapi.errors(*READS_BODY, *ACTS_IN_TENANT),
    },
)
def schedule_job(
    body: Annotated[NewJob, Body(openapi_examples=openapi.NEW_JOB_EXAMPLES)],
    ctx: Ctx,
    _strict: StrictNewJob,
    response: Response,
) -> ScheduledOut:
    """Schedule a new job: its whole definition, or a template's name with a value for each of its
    parameters (422 names each wrong one, `parameters.<name>`) and the job's name and schedule.
    Answers with its id, a confirmation and the first fire time."""
    tenant = ctx.tenant()
    template = None
    if isinstance(body, JobFromTemplate):
        definition, template = ctx.services.template_service.job_definition(tenant, body)
    else:
        definition = body
    _check_pool(ctx, definition)
    job = ctx.services.job_service.create(tenant, ctx.caller.actor, definition, template)
    response.headers["Location"] = f"/api/jobs/{job.id}"
    response.headers["ETag"] = f'"v{job.version}"'
    when = job.next_fire_at.isoformat().replace("+00:00", "Z") if job.next_fire_at else "never"
    message = f"Job '{definition.name}' scheduled; next run at {when}"
    if definition.schedule is None:
        message = f"Job '{definition.name}' created; it runs when its triggers fire"
        if not definition.triggers:
            message = f"Job '{definition.name}' created; it runs only when asked (run now, webhook)"
    return ScheduledOut(
        job_id=job.id,
        message=message,
        status=job.status,
        next_fire_at=job.next_fire_at,
        job=JobOut.of(job),
    )


@router.get("/api/jobs", tags=["jobs"], responses=openapi.errors(*ACTS_IN_TENANT))
def list_jobs(
    ctx: Ctx,
    job_type: JobType | None = None,
    status: JobStatus | None = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="Text search.")] = None,
    sort: SortName = "-created_at",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    continuation: Annotated[str | None, Query(max_length=2048)] = None,
) -> JobListOut:
    """List the tenant's jobs: filter (type, status, tag), search, sort and page."""
    query = JobQuery(
        sort=sort,
        job_type=job_type.value if job_type else None,
        status=status.value if status else None,
        tag=tag.strip().lower() if tag else None,
        text=q,
        limit=limit,
        continuation=continuation,
    )
    page = ctx.services.job_service.list_jobs(ctx.tenant(), query)
    return JobListOut(items=page.items, continuation=page.continuation)


@router.get(
    "/api/jobs/{job_id}",
    tags=["jobs"],
    responses={200: {"headers": {"ETag": _ETAG}}, **openapi.errors(*BY_ID)},
)
def get_job(job_id: JobId, ctx: Ctx, response: Response) -> JobOut:
    """The job: its definition (what PUT takes) and its state. A cancelled job stays readable."""
    tenant = ctx.job_tenant(job_id)
    job = ctx.services.job_service.get(tenant, job_id)
    response.headers["ETag"] = f'"v{job.version}"'
    return JobOut.of(job, ctx.services.job_repository.dependents(tenant, job_id))


@router.put(
    "/api/jobs/{job_id}",
    tags=["jobs"],
    responses={
        200: {"headers": {"ETag": _ETAG}},
        **openapi.errors(
            *READS_BODY,
            *CHANGES_STATE,
            412,
            notes={409: "A cancelled job can no longer be edited."},
        ),
    },
)
def edit_job(
    job_id: JobId,
    definition: Definition,
    ctx: Ctx,
    _strict: StrictDefinition,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The version you read, as ETag gave it (`"v3"`): the edit is made only if the job '
            "is still at that version, else 412. Absent or `*`: a concurrent change is re-read and this "
            "edit re-applied on top of it.",
        ),
    ] = None,
) -> ChangedOut:
    """Replace the job's definition. Bumps `version` and computes the next fire time again."""
    _check_pool(ctx, definition)
    job = ctx.services.job_service.update(
        ctx.job_tenant(job_id), job_id, ctx.caller.actor, definition, _if_match(if_match)
    )
    response.headers["ETag"] = f'"v{job.version}"'
    return _changed(job, f"Job '{definition.name}' updated to version {job.version}")


@router.delete(
    "/api/jobs/{job_id}",
    tags=["jobs"],
    responses=openapi.errors(
        *CHANGES_STATE,
        notes={409: "Only when the job kept changing while it was cancelled; retrying is safe."},
    ),
)
def cancel_job(job_id: JobId, ctx: Ctx) -> ChangedOut:
    """Cancel the job; nothing is deleted. It fires no more, its status becomes CANCELLED and it stays
    readable (GET, audit, runs) with its history; its active runs are cancelled, in Databricks too.

    Repeatable: cancelling a cancelled job answers 200 with the job unchanged, so a client may retry.
    A cancelled job cannot be edited, paused, resumed or run again (409).
    """
    tenant = ctx.job_tenant(job_id)
    job = ctx.services.job_service.cancel(tenant, job_id, ctx.caller.actor)
    stopped = ctx.services.run_commands.cancel_active(job, f"job cancelled by {ctx.caller.actor.name}")
    extra = f"; {len(stopped)} active run(s) cancelled" if stopped else ""
    return _changed(job, f"Job '{job.definition.name}' cancelled{extra}")


@router.post(
    "/api/jobs/{job_id}/pause",
    tags=["jobs"],
    responses=openapi.errors(*CHANGES_STATE, notes={409: "Only an ACTIVE job can be paused."}),
)
def pause_job(job_id: JobId, ctx: Ctx) -> ChangedOut:
    """Pause an ACTIVE job: it does not fire until resumed."""
    job = ctx.services.job_service.pause(ctx.job_tenant(job_id), job_id, ctx.caller.actor)
    return _changed(job, f"Job '{job.definition.name}' paused")


@router.post(
    "/api/jobs/{job_id}/resume",
    tags=["jobs"],
    responses=openapi.errors(*CHANGES_STATE, notes={409: "Only a PAUSED job can be resumed."}),
)
def resume_job(job_id: JobId, ctx: Ctx) -> ChangedOut:
    """Resume a paused job; its next fire time is computed from now (missed times are not owed)."""
    job = ctx.services.job_service.resume(ctx.job_tenant(job_id), job_id, ctx.caller.actor)
    return _changed(job, f"Job '{job.definition.name}' resumed")


@router.post(
    "/api/jobs/{job_id}/replay",
    tags=["jobs"],
    responses=openapi.errors(*CHANGES_STATE, notes={409: "The job is not ACTIVE (resume it first)."}),
)
def replay_job(job_id: JobId, ctx: Ctx) -> RunListOut:
    """Run the events (files, webhook calls) recorded as SKIPPED while the job was last paused: one
    new run each, with the same cause; calling again starts none. Resuming never replays by itself."""
    runs = ctx.services.events.replay(ctx.job_tenant(job_id), job_id, ctx.caller.actor.name)
    return RunListOut(items=[RunOut.of(run) for run in runs], continuation=None)


@router.post(
    "/api/jobs/{job_id}/notifications/test",
    tags=["jobs"],
    responses=openapi.errors(*BY_ID, 409, notes={409: "The job has no notification destinations."}),
)
def test_notifications(job_id: JobId, ctx: Ctx) -> NotificationTestsOut:
    """Send a sample notification (a failure of a run that never was, marked `"test": true`) to each
    of the job's destinations at once, and say how each went. Records nothing on any run."""
    job = ctx.services.job_service.get(ctx.job_tenant(job_id), job_id)
    results = ctx.services.notifier.test(job)
    if not results:
        raise Conflict(f"job {job_id} has no notification destinations: set its `notifications` first")
    return NotificationTestsOut(
        items=[
            NotificationTestOut(
                event=r.event,
                kind=r.kind,
                host=r.host,
                delivered=r.delivered,
                status=r.status,
                error=r.error,
                ms=r.ms,
            )
            for r in results
        ]
    )


@router.get("/api/analytics", tags=["analytics"], responses=openapi.errors(*ACTS_IN_TENANT))
def analytics(
    ctx: Ctx,
    window: Annotated[
        timedelta, Query(description="ISO-8601 whole days ending today (UTC), P1D to P90D.", examples=["P7D"])
    ] = timedelta(days=7),
    group_by: Literal["job_type", "job", "tenant"] = "job_type",
) -> AnalyticsOut:
    """How runs that ended in the window went, by job type, job or tenant, and day by day: success
    and retry rates, duration, queue wait and fire lag percentiles (within 2%), deadline misses.
    Read from daily aggregates kept as runs end (a run is counted within a minute of its end, or at
    the watchdog's next count if its handler crashed), never from the run history. Covers the tenant
    the `X-Scheduler-Tenant` header names, else every tenant the caller belongs to."""
    tenants = ctx.visible_tenants()
    first, last, groups, total = ctx.services.analytics_service.report(tenants, window, group_by)
    by_job = group_by == "job"
    return AnalyticsOut(
        window=f"P{window.days}D",
        first=first,
        last=last,
        group_by=group_by,
        tenants=tenants,
        total=GroupOut.of_group(total, False),
        groups=[GroupOut.of_group(g, by_job) for g in groups],
    )


@router.get("/api/jobs/{job_id}/audit", tags=["jobs"], responses=openapi.errors(*BY_ID))
def job_audit(
    job_id: JobId,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    continuation: Annotated[str | None, Query(max_length=2048)] = None,
) -> AuditListOut:
    """Who changed what, when: newest first."""
    page = ctx.services.job_service.audit(ctx.job_tenant(job_id), job_id, limit, continuation)
    return AuditListOut(items=page.items, continuation=page.continuation)


@router.get("/api/jobs/{job_id}/runs", tags=["runs"], responses=openapi.errors(*BY_ID))
def job_runs(
    job_id: JobId,
    ctx: Ctx,
    state: RunState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    continuation: Annotated[str | None, Query(max_length=2048)] = None,
) -> RunListOut:
    """The job's run history, newest first: every scheduled time, with its state and reason."""
    job, page = ctx.services.job_service.job_runs_of(
        ctx.job_tenant(job_id), job_id, state.value if state else None, limit, continuation
    )
    return RunListOut(items=[RunOut.of(r, job=job) for r in page.items], continuation=page.continuation)


@router.get("/api/runs/{run_id}", tags=["runs"], responses=openapi.errors(*BY_ID))
def get_run(run_id: RunId, ctx: Ctx) -> RunOut:
    """One run, with its attempts (a QUEUED run: its queue position and estimated start). Another
    tenant's run is 404."""
    job_id, run_key = parse_run_id(run_id)
    job, run = ctx.services.job_service.run_of(ctx.job_tenant(job_id), job_id, run_key)
    return RunOut.of(run, ctx.services.pool_service.place_of(run), job)


@router.post(
    "/api/jobs/{job_id}/run",
    status_code=202,
    tags=["runs"],
    responses={
        202: {"headers": {"Location": openapi.header("The new run: `/api/runs/{run_id}`.")}},
        **openapi.errors(*CHANGES_STATE, notes={409: "A cancelled job cannot run."}),
    },
)
def run_job_now(job_id: JobId, ctx: Ctx, response: Response) -> RunOut:
    """Run the job now, outside its schedule. Answers with the new run (launching)."""
    run = ctx.services.run_commands.run_now(ctx.job_tenant(job_id), job_id, ctx.caller.actor)
    response.headers["Location"] = f"/api/runs/{run.id}"
    return RunOut.of(run)


@router.post(
    "/api/jobs/{job_id}/trigger",
    status_code=202,
    tags=["runs"],
    responses={
        202: {
            "headers": {
                "Location": openapi.header("The run: `/api/runs/{run_id}`."),
                "Idempotent-Replayed": openapi.header(
                    "`true` when an earlier call with this Idempotency-Key started the run."
                ),
            }
        },
        **openapi.errors(
            *READS_BODY,
            *CHANGES_STATE,
            notes={
                409: "The job has no webhook trigger, is cancelled, or is paused and does not record "
                "calls while paused; or the Idempotency-Key came before with a different body."
            },
        ),
    },
)
def trigger_job(
    job_id: JobId,
    ctx: Ctx,
    response: Response,
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e][\x20-\x7e]*$",
            description="Names the call: the same key again answers with the same run, starting none.",
        ),
    ],
    body: Annotated[TriggerIn, Body(openapi_examples=openapi.TRIGGER_EXAMPLES)] = NO_PARAMETERS,
    _strict: StrictTrigger = None,
) -> RunOut:
    """Start a run of a job that has a `webhook` trigger, with the body's parameters (available as
    `{{trigger.payload.<key>}}`). Once per Idempotency-Key: a retry answers with the same run."""
    run, replayed = ctx.services.events.webhook(
        ctx.job_tenant(job_id), job_id, idempotency_key, body.parameters(), ctx.caller.actor.name
    )
    response.headers["Location"] = f"/api/runs/{run.id}"
    response.headers["Idempotent-Replayed"] = "true" if replayed else "false"
    return RunOut.of(run)


@router.post(
    "/api/jobs/{job_id}/retry",
    tags=["runs"],
    responses=openapi.errors(*CHANGES_STATE, notes={409: "The job has no FAILED or TIMED_OUT run."}),
)
def retry_job(job_id: JobId, ctx: Ctx) -> RunOut:
    """Retry the job's latest FAILED or TIMED_OUT run: a new attempt, launched now."""
    return RunOut.of(
        ctx.services.run_commands.retry_latest_failed(ctx.job_tenant(job_id), job_id, ctx.caller.actor)
    )


@router.post(
    "/api/runs/{run_id}/retry",
    tags=["runs"],
    responses=openapi.errors(
        *CHANGES_STATE, notes={409: "The run is not FAILED or TIMED_OUT (`errors.state` says what it is)."}
    ),
)
def retry_run(run_id: RunId, ctx: Ctx) -> RunOut:
    """A new attempt of this FAILED or TIMED_OUT run (409 for a run in any other state)."""
    job_id, run_key = parse_run_id(run_id)
    return RunOut.of(
        ctx.services.run_commands.retry(ctx.job_tenant(job_id), job_id, run_key, ctx.caller.actor)
    )


@router.post(
    "/api/runs/{run_id}/cancel",
    tags=["runs"],
    responses=openapi.errors(
        *CHANGES_STATE,
        notes={
            409: "The run had already ended (`errors.state` says how).",
            503: "Databricks could not be reached; sending the cancel again is safe.",
        },
    ),
)
def cancel_run(run_id: RunId, ctx: Ctx) -> RunOut:
    """Cancel the run, in Databricks too if it runs there (409 for a run that already ended)."""
    job_id, run_key = parse_run_id(run_id)
    reason = f"cancelled by {ctx.caller.actor.name}"
    tenant = ctx.job_tenant(job_id)
    cancelled = ctx.services.run_commands.cancel(tenant, job_id, run_key, reason)
    job = ctx.services.job_service.get(tenant, job_id) if cancelled.is_pipeline else None
    return RunOut.of(cancelled, job=job)


@router.post(
    "/api/runs/{run_id}/repair",
    tags=["runs"],
    responses=openapi.errors(
        *READS_BODY,
        *CHANGES_STATE,
        notes={409: "The run is not a pipeline run that ended without succeeding (`errors.state`)."},
    ),
)
def repair_run(run_id: RunId, body: RepairIn, ctx: Ctx, _strict: StrictRepair) -> RunOut:
    """Run again, inside this pipeline run, the steps named (or every failed one) and everything
    downstream of them, with their parameters filled again; the repair is listed on the run."""
    job_id, run_key = parse_run_id(run_id)
    job = ctx.services.job_service.get(ctx.job_tenant(job_id), job_id)
    keys = None if body.all_failed else body.steps
    repaired = pipelines.repair(ctx.services.run_context, job, run_key, keys, ctx.caller.actor.name)
    return RunOut.of(repaired, job=job)


@router.post(
    "/api/schedules/preview",
    tags=["schedules"],
    # Reads no storage and acts in no tenant: only the identity itself can fail (401, or 422 for a
    # missing X-Scheduler-Tenant under function keys).
    responses=openapi.errors(*READS_BODY, 401, 422),
)
def preview_schedule(
    body: Annotated[PreviewIn, Body(openapi_examples=openapi.PREVIEW_EXAMPLES)],
    ctx: Ctx,
    _strict: StrictPreview,
) -> PreviewOut:
    """The next fire times of a schedule, UTC and local, with DST effects flagged."""
    fires = ctx.services.job_service.preview(body.schedule, body.count)
    return PreviewOut(timezone=body.schedule.timezone, fire_times=[FireTimeOut.of(f) for f in fires])


def create_api(provider: Callable[[], Services]) -> FastAPI:
    """The ASGI app; `provider` gives the services on first use (never at import)."""
    api = FastAPI(
        title="ML job scheduler",
        version=VERSION,
        description="Schedule, list, edit, pause, resume and cancel ML jobs that run on Databricks.",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    api.state.provider = provider
    problems.install(api)
    openapi.install(api)
    api.mount("/api/docs/static", StaticFiles(directory=_docs_static()), name="docs-static")
    api.include_router(router)
    api.include_router(pools_api.router)
    api.include_router(templates_api.router)
    api.include_router(batches_api.router)
    console.install(api)
    api.add_middleware(
        problems.BodyLimit,
        limit=lambda: provider().settings.max_body_bytes,
        larger=lambda: provider().settings.max_batch_body_bytes,
        larger_paths=("/api/batches",),
    )
    return api


def http_auth_level() -> func.AuthLevel:
    """Function keys unless App Service Authentication (or the local stack) guards the API."""
    mode = os.environ.get("AUTH_MODE", AuthMode.APP_SERVICE.value)
    return func.AuthLevel.FUNCTION if mode == AuthMode.FUNCTION_KEY.value else func.AuthLevel.ANONYMOUS


api = create_api(services)
