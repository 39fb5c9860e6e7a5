"""Request and response bodies of the HTTP API (the request body of create/edit is `JobDefinition`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, model_validator

from shared.domain.analytics import Aggregate, Group, bucket_value
from shared.domain.job import (
    Actor,
    AuditEntry,
    BatchInfo,
    Job,
    JobDefinition,
    JobStatus,
    JobSummary,
    PipelineTask,
    StepKey,
    TemplateRef,
)
from shared.domain.notifications import DeliveryTry, Notice, NoticeEvent, NoticeState
from shared.domain.pipeline import RunIf, StepState
from shared.domain.pool import PolicyName
from shared.domain.run import Attempt, Cause, Priority, RepairRecord, Run, RunState, Trigger
from shared.domain.schedule import DstNote, FireTime, ScheduleSpec
from shared.domain.template import Template, TemplateSpec
from shared.services.batches import BatchView


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    type: str = Field(
        description="A URI naming the kind of problem: `urn:ml-scheduler:problem:{code}`.",
        examples=["urn:ml-scheduler:problem:invalid_input"],
    )
    title: str = Field(description="A short summary of the kind of problem.", examples=["Invalid input"])
    status: int = Field(ge=400, le=599, description="The HTTP status code.", examples=[422])
    detail: str = Field(description="What went wrong with this request, for a person.")
    code: str = Field(
        description=(
            "Machine-readable kind, the end of `type`: `malformed_json`, `unauthenticated`, `forbidden`, "
            "`not_found`, `method_not_allowed`, `conflict`, `illegal_transition`, `precondition_failed`, "
            "`payload_too_large`, `unsupported_media_type`, `invalid_input`, `invalid_schedule`, "
            "`external_error`, `internal`."
        ),
        examples=["invalid_input"],
    )
    errors: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Field path (`schedule.cron`, `task.cluster`, a header name) → what is wrong with it; "
            "on a run's 409, `state` → the run's state. Absent when there is nothing to add."
        ),
    )


class JobOut(JobDefinition):
    """A job: its definition (the fields PUT takes) plus what the scheduler keeps about it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    job_id: str
    tenant: str
    status: JobStatus
    version: int = Field(description="Bumped by every edit; send it back in If-Match to edit safely.")
    next_fire_at: datetime | None
    next_fire_dst: DstNote | None = None
    last_run_state: RunState | None = None
    last_run_at: datetime | None = None
    paused_at: datetime | None = Field(
        None, description="When it was last paused (POST /api/jobs/{job_id}/replay replays from there)."
    )
    created_at: datetime
    created_by: Actor
    updated_at: datetime
    updated_by: Actor

    waited_on_by: list[str] | None = Field(
        None, description="The jobs whose `after` triggers wait for this one (GET /api/jobs/{job_id} only)."
    )
    template: TemplateRef | None = Field(
        None, description="The template, version and values it was made from (POST /api/jobs/schedule)."
    )
    batch: BatchInfo | None = Field(
        None, description="A batch's job (POST /api/batches): its points and how many run at once."
    )

    @classmethod
    def of(cls, job: Job, waited_on_by: list[str] | None = None) -> JobOut:
        return cls.model_validate(
            {
                **job.definition.model_dump(),
                "waited_on_by": waited_on_by,
                "job_id": job.id,
                "tenant": job.tenant,
                "status": job.status,
                "version": job.version,
                "next_fire_at": job.next_fire_at,
                "next_fire_dst": job.next_fire_dst,
                "last_run_state": job.last_run_state,
                "last_run_at": job.last_run_at,
                "paused_at": job.paused_at,
                "created_at": job.created_at,
                "created_by": job.created_by,
                "updated_at": job.updated_at,
                "updated_by": job.updated_by,
                "template": job.template,
                "batch": job.batch,
            }
        )


class TemplateOut(TemplateSpec):
    """A template at a version: what POST and PUT take, plus its version and who made it."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    tenant: str
    version: int = Field(description="Bumped by every update; send it back in If-Match to update safely.")
    created_at: datetime
    created_by: Actor
    updated_at: datetime
    updated_by: Actor

    @classmethod
    def of(cls, t: Template) -> TemplateOut:
        return cls.model_validate(
            {
                **t.spec.model_dump(),
                "tenant": t.tenant,
                "version": t.version,
                "created_at": t.created_at,
                "created_by": t.created_by,
                "updated_at": t.updated_at,
                "updated_by": t.updated_by,
            }
        )


class TemplateListOut(BaseModel):
    items: list[TemplateOut]


class ScheduledOut(BaseModel):
    """The answer to a create: the seed's "job id and confirmation message", and the job."""

    job_id: str
    message: str
    status: JobStatus
    next_fire_at: datetime | None
    job: JobOut


class ChangedOut(BaseModel):
    """The answer to edit, pause, resume and cancel: a confirmation and the job as it now is."""

    job_id: str
    message: str
    status: JobStatus
    version: int
    next_fire_at: datetime | None
    job: JobOut


class JobListOut(BaseModel):
    items: list[JobSummary]
    continuation: str | None = Field(
        description="Pass as `continuation` to get the next page; null at the end."
    )


class AuditListOut(BaseModel):
    items: list[AuditEntry]
    continuation: str | None


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule: ScheduleSpec
    count: int = Field(10, ge=1, le=100)


class FireTimeOut(BaseModel):
    utc: datetime
    local: str = Field(description="Wall-clock time in the schedule's zone, with its offset.")
    dst: Literal["normal", "shifted", "repeated_skipped"]

    @classmethod
    def of(cls, fire: FireTime) -> FireTimeOut:
        return cls(utc=fire.at, local=fire.local.isoformat(), dst=fire.dst.value)


class PreviewOut(BaseModel):
    timezone: str
    fire_times: list[FireTimeOut]


class MeOut(BaseModel):
    """Who the caller is and which tenants they may act in (the console's first request)."""

    actor: Actor
    tenants: list[str] = Field(description="Sorted. With several, name one in `X-Scheduler-Tenant`.")
    admin: bool = Field(description="Holds the admin role: may act in every tenant.")
    pools_admin: bool = Field(False, description="May create and change pools (`PUT /api/pools/{name}`).")


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    storage: Literal["ok", "error"]
    version: str
    dead_letters: dict[str, int | None] = Field(
        default_factory=dict,
        description="Messages in each queue's dead-letter queue (null: could not count).",
    )


class StepOut(BaseModel):
    """One step of a pipeline run."""

    key: str
    state: StepState
    attempts: int
    run_id: str | None = Field(
        description="The step's own run (works with the run endpoints), once it started."
    )
    depends_on: list[str]
    run_if: RunIf
    started_at: datetime | None
    ended_at: datetime | None


class NoticeOut(BaseModel):
    """A notification the run owes or sent, and each try at delivering it (never its URL: a Teams or
    Slack webhook URL holds a token)."""

    id: str = Field(description="`{event}{attempt}.{destination index}`.")
    event: NoticeEvent
    attempt: int
    kind: Literal["webhook", "teams", "slack"]
    destination: int = Field(description="Its place in the job's list for the event.")
    host: str
    state: NoticeState
    due_at: datetime = Field(description="When it is (next) to be delivered.")
    tries: list[DeliveryTry]

    @classmethod
    def of(cls, notice: Notice) -> NoticeOut:
        return cls.model_validate(notice.model_dump(exclude={"url", "secret_ref", "repairs"}))


class NotificationTestOut(BaseModel):
    """How the sample sent to one destination went."""

    event: str = Field(description="The first event whose list holds the destination.")
    kind: Literal["webhook", "teams", "slack"]
    host: str
    delivered: bool
    status: int | None = Field(None, description="The HTTP status it answered (none: no answer).")
    error: str | None = None
    ms: int


class NotificationTestsOut(BaseModel):
    items: list[NotificationTestOut]


class RunOut(BaseModel):
    """One occurrence (or manual run) of a job and what happened to it."""

    run_id: str
    job_id: str
    tenant: str
    run_key: str
    trigger: Trigger
    scheduled_for: datetime
    state: RunState
    reason: str | None
    attempt: int
    job_version: int
    created_at: datetime
    updated_at: datetime
    transitions: dict[str, datetime] = Field(description="When the run entered each state.")
    databricks_run_id: int | None = None
    run_page_url: str | None = None
    attempts: list[Attempt] = Field(default_factory=list, description="Each try on Databricks, oldest first.")
    pool: str | None = Field(None, description="The bounded pool whose slot it waits for or holds.")
    slots: int = 1
    priority: Priority | None = Field(None, description="Its priority in its pool's queue.")
    deadline_at: datetime | None = Field(
        None, description="When it must have finished (the job's `deadline`)."
    )
    deadline_missed_at: datetime | None = Field(
        None, description="Set when it was found unfinished at its deadline, or ended after it."
    )
    admitted_at: datetime | None = Field(None, description="When its pool gave it a slot.")
    cause: Cause | None = Field(
        None,
        description="What started it when a trigger did: `after` (the upstream runs, run id by job id), "
        "`file_arrival` (the files and their event ids) or `webhook` (the Idempotency-Key and payload).",
    )
    steps: list[StepOut] | None = Field(
        None, description="A pipeline run: its steps, in the pipeline's order."
    )
    repair_history: list[RepairRecord] = Field(
        default_factory=list, description="A pipeline run's repairs: when, by whom, which steps ran again."
    )
    step: str | None = Field(None, description="A pipeline step's run: its step key.")
    pipeline_run_id: str | None = Field(None, description="A pipeline step's run: its pipeline run.")
    queue_position: int | None = Field(
        None,
        description="QUEUED in a pool: its place in the queue as its policy orders it now (1 goes next).",
    )
    estimated_start_at: datetime | None = Field(
        None,
        description="QUEUED in a pool: when it will likely start, from the expected durations of what runs.",
    )
    notifications: list[NoticeOut] = Field(
        default_factory=list, description="The notifications it owes or sent, with each delivery try."
    )

    @classmethod
    def of(cls, run: Run, place: tuple[int, datetime | None] | None = None, job: Job | None = None) -> RunOut:
        position, start = place or (None, None)
        data = run.model_dump(exclude={"steps", "parent", "notices"})
        return cls(
            run_id=run.id,
            **data,
            notifications=[NoticeOut.of(n) for n in run.notices],
            queue_position=position,
            estimated_start_at=start,
            steps=_steps(run, job),
            pipeline_run_id=f"{run.job_id}_{run.parent}" if run.parent else None,
        )


def _steps(run: Run, job: Job | None) -> list[StepOut] | None:
    """A pipeline run's steps in the order its job lists them (steps an edit removed, after)."""
    if run.steps is None:
        return None
    task = job.definition.task if job is not None else None
    defined = {s.key: s for s in task.steps} if isinstance(task, PipelineTask) else {}
    order = [*defined, *(k for k in run.steps if k not in defined)]
    out = []
    for key in order:
        record = run.steps.get(key)
        if record is None:
            continue
        step = defined.get(key)
        out.append(
            StepOut(
                key=key,
                state=record.state,
                attempts=record.attempts,
                run_id=f"{run.id}.{key}" if record.started_at else None,
                depends_on=list(step.depends_on) if step else [],
                run_if=step.run_if if step else RunIf.ALL_SUCCESS,
                started_at=record.started_at,
                ended_at=record.ended_at,
            )
        )
    return out


class RunListOut(BaseModel):
    items: list[RunOut]
    continuation: str | None


class ClassWaitOut(BaseModel):
    length: int = Field(description="Runs of this priority waiting.")
    avg_wait: float = Field(description="Seconds they have waited, on average.")
    oldest_wait: float = Field(description="Seconds the longest-waiting of them has waited.")


class QueuedRunOut(BaseModel):
    run_id: str
    job_id: str
    job_name: str = Field(description="The job's name when the run was queued.")
    tenant: str
    pool: str
    priority: Priority
    queue_position: int = Field(description="1 goes next.")
    enqueued_at: datetime
    wait: float = Field(description="Seconds waited so far.")
    estimated_start_at: datetime | None
    deadline_at: datetime | None
    slots: int


class PoolOut(BaseModel):
    name: str
    slots: int | None = Field(description="null: unbounded (runs never wait).")
    tenant_limit: int | None
    policy: PolicyName
    used: int = Field(description="Slots held now.")
    running: int = Field(description="Runs holding slots.")
    pending: int = Field(description="Runs waiting for slots.")
    queue_length: int = Field(description="running + pending.")
    queues: dict[Priority, ClassWaitOut] = Field(description="The waiting runs per priority class.")
    updated_at: datetime | None = None
    updated_by: str | None = None


class PoolListOut(BaseModel):
    items: list[PoolOut]


class QueueOut(BaseModel):
    """What waits where (seed 001's queue status), over the pools asked for."""

    queue_length: int = Field(description="running + pending.")
    running: int = Field(description="Runs holding slots.")
    pending: int = Field(description="Runs waiting for slots.")
    queues: dict[Priority, ClassWaitOut] = Field(
        description="Waiting runs per priority class, all pools together."
    )
    pools: dict[str, PoolOut]
    items: list[QueuedRunOut] = Field(
        description="Your tenants' waiting runs, in the order each pool will start them."
    )


class RepairIn(BaseModel):
    """Which steps a repair runs again (with everything downstream of them): exactly one of the two."""

    model_config = ConfigDict(extra="forbid")
    steps: list[StepKey] | None = Field(None, min_length=1, max_length=100, description="Step keys.")
    all_failed: bool = Field(False, description="Every step that failed, timed out or was cancelled.")

    @model_validator(mode="after")
    def _one_of(self) -> RepairIn:
        if (self.steps is not None) == self.all_failed:
            raise ValueError("give either 'steps' or 'all_failed': true")
        return self


class PriorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: Priority
    reason: str = Field(min_length=1, max_length=500, description="Why: kept in the job's audit trail.")


PAYLOAD_KEY = r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$"
PayloadKey = Annotated[str, StringConstraints(pattern=PAYLOAD_KEY)]
PayloadValue = Annotated[str, StringConstraints(max_length=4096)] | int | float | bool


def _payload_schema(schema: dict[str, Any]) -> None:
    """`additionalProperties` with `propertyNames` rather than pydantic's `patternProperties`, which
    generated clients read as an object that allows no property."""
    value = schema.pop("patternProperties").popitem()[1]
    schema.update(
        additionalProperties=value,
        propertyNames={"pattern": PAYLOAD_KEY},
        examples=[{"date": "2026-12-01", "model": "churn", "full": True}],
    )


class TriggerIn(RootModel[Annotated[dict[PayloadKey, PayloadValue], Field(max_length=64)]]):
    """A webhook call's parameters: a JSON object of up to 64 strings, numbers or booleans, each
    available to the run as `{{trigger.payload.<key>}}`."""

    model_config = ConfigDict(json_schema_extra=_payload_schema)

    @model_validator(mode="before")
    @classmethod
    def _scalars(cls, value: Any) -> Any:
        """One clear error per value that is not a string, number or boolean (not one per type)."""
        if isinstance(value, dict):
            for key, item in value.items():
                if item is None or isinstance(item, dict | list):
                    raise ValueError(f"{key!r} must be a string, number or boolean")
        return value

    def parameters(self) -> dict[str, str]:
        """As the run receives them: strings (`true`/`false` for booleans, JSON numbers as written)."""
        return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in self.root.items()}


class _Seconds(dict[int | None, float | None]):
    """A sketch bucket's value as a report shows it, in seconds to the ms (each worked out once)."""

    def __missing__(self, bucket: int | None) -> float | None:
        ms = bucket_value(bucket)
        self[bucket] = seconds = None if ms is None else round(ms / 1000, 3)
        return seconds


_SECONDS = _Seconds()


class Figures(BaseModel):
    """What runs that ended in a period add up to. Rates are null when nothing counts toward them."""

    runs: int = Field(description="Runs that ended (any final state).")
    succeeded: int
    failed: int = Field(description="FAILED, and pipeline runs SUCCEEDED_WITH_FAILURES.")
    timed_out: int
    cancelled: int
    skipped: int
    success_rate: float | None = Field(description="succeeded / (succeeded + failed + timed_out).")
    retry_rate: float | None = Field(description="Runs that took more than one attempt / runs that started.")
    duration_p50_s: float | None = Field(description="First start to end, runs that started.")
    duration_p95_s: float | None
    queue_wait_p50_s: float | None = Field(description="Time waiting for a pool slot, runs that started.")
    queue_wait_p95_s: float | None
    fire_lag_p95_s: float | None = Field(description="Due time to first launch call, runs that started.")
    deadline_misses: int

    @staticmethod
    def values(agg: Aggregate) -> dict[str, Any]:
        """The figures of `agg`, as fields (computed, so built without validation). The percentiles
        come from `Aggregate.ranked()`: stored with each job's day, worked out once for a sum."""
        started = agg.duration.count
        d50, d95, w50, w95, f95 = map(_SECONDS.__getitem__, agg.ranked())
        decided = agg.succeeded + agg.failed + agg.timed_out
        return {
            "runs": agg.runs,
            "succeeded": agg.succeeded,
            "failed": agg.failed,
            "timed_out": agg.timed_out,
            "cancelled": agg.cancelled,
            "skipped": agg.skipped,
            "success_rate": round(agg.succeeded / decided, 4) if decided else None,
            "retry_rate": round(agg.retried / started, 4) if started else None,
            "duration_p50_s": d50,
            "duration_p95_s": d95,
            "queue_wait_p50_s": w50,
            "queue_wait_p95_s": w95,
            "fire_lag_p95_s": f95,
            "deadline_misses": agg.deadline_missed,
        }

    @classmethod
    def of(cls, agg: Aggregate) -> Figures:
        figures = cls.__new__(cls)
        _fill(figures, cls.values(agg))
        return figures


def _fill(model: BaseModel, values: dict[str, Any]) -> None:
    """What `model_construct(**values)` does for `values` that name every field, without looking
    up each field's aliases and defaults: a report by job builds thousands of these."""
    object.__setattr__(model, "__dict__", values)
    object.__setattr__(model, "__pydantic_fields_set__", set(values))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)


class DayFigures(Figures):
    day: date


class GroupOut(Figures):
    key: str = Field(description="The job type, job id or tenant.")
    name: str = Field(description="The job's name (group_by=job), else the key.")
    tenant: str | None = Field(None, description="group_by=job: the job's tenant.")
    job_type: str | None = Field(None, description="group_by=job: the job's type.")
    days: list[DayFigures] = Field(description="Each day of the window with runs, oldest first.")

    @classmethod
    def of_group(cls, group: Group, by_job: bool) -> GroupOut:
        total = group.total
        days = []
        for day, agg in sorted(group.days.items()):
            figures = Figures.values(agg)
            figures["day"] = day
            day_figures = DayFigures.__new__(DayFigures)
            _fill(day_figures, figures)
            days.append(day_figures)
        values = Figures.values(total)
        values["key"] = group.key
        values["name"] = (total.job_name or group.key) if by_job else group.key
        values["tenant"] = group.tenant
        values["job_type"] = total.job_type if by_job else None
        values["days"] = days
        out = cls.__new__(cls)
        _fill(out, values)
        return out


class AnalyticsOut(BaseModel):
    """Runs that ended in the window (UTC days `first`..`last`), by group and in total."""

    window: str = Field(examples=["P7D"])
    first: date
    last: date
    group_by: Literal["job_type", "job", "tenant"]
    tenants: list[str]
    total: GroupOut
    groups: list[GroupOut] = Field(description="Most runs first.")


# -- batches ------------------------------------------------------------------------------------------

PointState = Literal["pending", "queued", "running", "succeeded", "failed", "cancelled", "skipped"]
_POINT_STATES: dict[RunState, PointState] = {
    RunState.SCHEDULED: "queued",
    RunState.QUEUED: "queued",
    RunState.LAUNCHING: "running",
    RunState.RUNNING: "running",
    RunState.RETRY_WAIT: "running",
    RunState.TIMING_OUT: "running",
    RunState.CANCELLING: "running",
    RunState.SUCCEEDED: "succeeded",
    RunState.SUCCEEDED_WITH_FAILURES: "succeeded",
    RunState.FAILED: "failed",
    RunState.TIMED_OUT: "failed",
    RunState.CANCELLED: "cancelled",
    RunState.SKIPPED: "skipped",
}


class BatchCounts(BaseModel):
    """The batch's points by where their latest run is."""

    pending: int = Field(0, description="Not started yet: waiting for their turn (max_parallel).")
    queued: int = Field(0, description="Started, waiting for a pool slot or their launch.")
    running: int = 0
    succeeded: int = 0
    failed: int = Field(0, description="FAILED or TIMED_OUT.")
    cancelled: int = Field(0, description="Cancelled, or never started because the batch was cancelled.")
    skipped: int = 0


class BatchPointOut(BaseModel):
    point: int = Field(description="The point's number: its place in `runs`, or in the grid's product.")
    parameters: dict[str, bool | int | float | str]
    state: PointState
    run_state: RunState | None = Field(None, description="Its latest run's state (none: not started).")
    run_id: str | None = None
    round: int = Field(description="The round its latest run belongs to (2 and up: retry-failed).")
    attempt: int | None = None
    databricks_run_id: int | None = None
    run_page_url: str | None = None
    ended_at: datetime | None = None


class BatchRoundOut(BaseModel):
    round: int
    run_id: str
    state: RunState
    size: int = Field(description="Its points.")
    started: int = Field(description="Of them, how many have runs.")
    created_at: datetime
    ended_at: datetime | None = None


class BatchOut(BaseModel):
    """A batch: its points with their latest runs, their counts, and its rounds (newest first)."""

    batch_id: str = Field(description="Also the id of the batch's job.")
    name: str
    tenant: str
    state: RunState = Field(description="Its newest round's state.")
    execution_mode: Literal["parallel", "sequential"]
    max_parallel: int
    size: int
    template: TemplateRef | None = None
    pool: str
    priority: Priority
    counts: BatchCounts
    rounds: list[BatchRoundOut]
    runs: list[BatchPointOut]
    created_at: datetime
    created_by: Actor

    @classmethod
    def of(cls, view: BatchView) -> BatchOut:
        job = view.job
        assert job.batch is not None
        points = []
        counts: dict[str, int] = {}
        for p in view.points:
            state: PointState = "pending" if p.state is None else _POINT_STATES[p.state]
            counts[state] = counts.get(state, 0) + 1
            run = p.run
            points.append(
                BatchPointOut(
                    point=p.point,
                    parameters=p.values,
                    state=state,
                    run_state=run.state if run else None,
                    run_id=run.id if run else None,
                    round=p.round,
                    attempt=run.attempt if run else None,
                    databricks_run_id=run.databricks_run_id if run else None,
                    run_page_url=run.run_page_url if run else None,
                    ended_at=run.transitions.get(run.state.value) if run and run.state.is_terminal else None,
                )
            )
        rounds = [
            BatchRoundOut(
                round=r.batch.round,
                run_id=r.id,
                state=r.state,
                size=r.batch.size,
                started=r.batch.started,
                created_at=r.created_at,
                ended_at=r.transitions.get(r.state.value) if r.state.is_terminal else None,
            )
            for r in view.rounds
            if r.batch is not None
        ]
        d = job.definition
        return cls(
            batch_id=job.id,
            name=d.name,
            tenant=job.tenant,
            state=view.rounds[0].state,
            execution_mode=job.batch.execution_mode,
            max_parallel=job.batch.max_parallel,
            size=job.batch.size,
            template=job.template,
            pool=d.pool,
            priority=d.priority,
            counts=BatchCounts(**counts),
            rounds=rounds,
            runs=points,
            created_at=job.created_at,
            created_by=job.created_by,
        )
