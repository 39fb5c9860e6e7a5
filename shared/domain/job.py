"""A scheduled job: what to run (task), when (schedule), and the policies around it.

The definition is what the Studio platform sends and edits. A `Job` adds what the
scheduler owns: id, tenant, status, version, next fire time, who changed it.
Values validate themselves; a `Job` changes only through the methods here, each
of which returns a new `Job` (the services store it with an ETag).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared.domain.errors import IllegalTransition
from shared.domain.notifications import Notifications
from shared.domain.pipeline import MAX_STEPS, RunIf, graph_errors
from shared.domain.run import FailureKind, Priority, RunState
from shared.domain.schedule import DstNote, FireTime, ScheduleSpec


class JobType(StrEnum):
    MODEL_TRAINING = "model_training"
    DATA_PROCESSING = "data_processing"
    PIPELINE = "pipeline"
    OTHER = "other"


class JobStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"  # the schedule has no more fire times


class OverlapPolicy(StrEnum):
    """What to do when an occurrence is due while the previous run is still active."""

    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    ALLOW = "allow"
    CANCEL_PREVIOUS = "cancel_previous"


class MisfirePolicy(StrEnum):
    """What to do with fire times that passed while the scheduler was down or behind."""

    SKIP = "skip"
    FIRE_ONCE = "fire_once"
    CATCH_UP = "catch_up"


class RetryOn(StrEnum):
    ANY = "any"  # every failure is retried while attempts remain
    TRANSIENT = "transient"  # only infrastructure failures (cluster, cloud, internal, 429/5xx)


_Frozen = ConfigDict(frozen=True, extra="forbid")

ParamKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z_][\w.-]*$")]
ParamValue = Annotated[str, StringConstraints(max_length=4096)]
Parameters = Annotated[dict[ParamKey, ParamValue], Field(max_length=64)]
Args = Annotated[list[ParamValue], Field(max_length=64)]


class DatabricksJobTask(BaseModel):
    """Run an existing Databricks job (`run-now`) with job parameters."""

    model_config = _Frozen
    kind: Literal["databricks_job"]
    job_id: int = Field(gt=0, description="The Databricks job id.")
    parameters: Parameters = Field(
        default_factory=dict,
        description="Job parameters; `{{scheduled_date}}`-style placeholders are filled per run.",
    )


class Autoscale(BaseModel):
    model_config = _Frozen
    min_workers: int = Field(ge=0, le=1000)
    max_workers: int = Field(ge=1, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max_workers < self.min_workers:
            raise ValueError("max_workers must be >= min_workers")
        return self


class ClusterSpec(BaseModel):
    """A new job cluster for a one-off run (the common subset of Databricks' `new_cluster`)."""

    model_config = _Frozen
    spark_version: str = Field(min_length=1, max_length=128, examples=["15.4.x-scala2.12"])
    node_type_id: str | None = Field(None, max_length=128, examples=["Standard_DS3_v2"])
    instance_pool_id: str | None = Field(None, max_length=128)
    policy_id: str | None = Field(None, max_length=128)
    num_workers: int | None = Field(None, ge=0, le=1000)
    autoscale: Autoscale | None = None
    spark_conf: Annotated[dict[str, str], Field(max_length=64)] = Field(default_factory=dict)
    spark_env_vars: Annotated[dict[str, str], Field(max_length=64)] = Field(default_factory=dict)
    custom_tags: Annotated[dict[str, str], Field(max_length=32)] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _size_and_machine(self) -> Self:
        if (self.num_workers is None) == (self.autoscale is None):
            raise ValueError("give exactly one of 'num_workers' or 'autoscale'")
        if self.node_type_id is None and self.instance_pool_id is None:
            raise ValueError("give 'node_type_id' or 'instance_pool_id'")
        return self


class PythonWheel(BaseModel):
    model_config = _Frozen
    package_name: str = Field(min_length=1, max_length=256)
    entry_point: str = Field(min_length=1, max_length=256)
    wheel: str | None = Field(None, max_length=1024, description="Path of the .whl to install, if any.")


class DatabricksRunTask(BaseModel):
    """A one-off run (`runs/submit`): a notebook, a Python file or a wheel, on a new or existing cluster."""

    model_config = _Frozen
    kind: Literal["databricks_run"]
    notebook_path: str | None = Field(None, min_length=1, max_length=1024)
    python_file: str | None = Field(None, min_length=1, max_length=1024)
    python_wheel: PythonWheel | None = None
    parameters: Parameters | Args = Field(
        default_factory=dict,
        description="Notebook: a mapping of widget values. Python file or wheel: a list of arguments.",
    )
    cluster: ClusterSpec | None = None
    existing_cluster_id: str | None = Field(None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _one_entry_point_one_cluster(self) -> Self:
        entries = [self.notebook_path, self.python_file, self.python_wheel]
        if sum(e is not None for e in entries) != 1:
            raise ValueError("give exactly one of 'notebook_path', 'python_file' or 'python_wheel'")
        if (self.cluster is None) == (self.existing_cluster_id is None):
            raise ValueError("give exactly one of 'cluster' or 'existing_cluster_id'")
        if self.notebook_path is not None and isinstance(self.parameters, list):
            raise ValueError("a notebook takes 'parameters' as a mapping of widget values")
        if self.notebook_path is None and isinstance(self.parameters, dict) and self.parameters:
            raise ValueError("a python file or wheel takes 'parameters' as a list of arguments")
        return self


Task = Annotated[DatabricksJobTask | DatabricksRunTask, Field(discriminator="kind")]


class RetryPolicy(BaseModel):
    """Temporal's vocabulary: attempt n waits initial_delay * backoff_coefficient**(n-1), capped."""

    model_config = _Frozen
    max_attempts: int = Field(1, ge=1, le=20, description="1 means no retry.")
    initial_delay: timedelta = Field(timedelta(minutes=1), ge=timedelta(0), le=timedelta(days=1))
    backoff_coefficient: float = Field(2.0, ge=1.0, le=10.0)
    max_delay: timedelta = Field(timedelta(minutes=30), ge=timedelta(0), le=timedelta(days=1))
    jitter: float = Field(0.1, ge=0.0, le=1.0, description="Fraction of the delay added at random.")
    retry_on_timeout: bool = False
    retry_on: RetryOn = RetryOn.ANY

    @model_validator(mode="after")
    def _cap_not_below_start(self) -> Self:
        if self.max_delay < self.initial_delay:
            raise ValueError("'max_delay' must be >= 'initial_delay'")
        return self

    def should_retry(self, failed_attempt: int, failure: FailureKind) -> bool:
        """Whether attempt `failed_attempt`, which failed with `failure`, gets another attempt.

        A launch Databricks refused (no such job, no permission) and a state nobody has mapped
        are never retried: trying again cannot help.
        """
        if failed_attempt >= self.max_attempts:
            return False
        if failure in (FailureKind.LAUNCH_ERROR, FailureKind.UNKNOWN_STATE):
            return False
        if failure is FailureKind.TIMEOUT:
            return self.retry_on_timeout
        return self.retry_on is RetryOn.ANY or failure is FailureKind.TRANSIENT

    def delay_after(self, failed_attempt: int, rand: float) -> timedelta:
        """initial_delay x backoff_coefficient^(n-1), plus up to `jitter` of it at random; <= max_delay."""
        base = self.initial_delay * (self.backoff_coefficient ** (failed_attempt - 1))
        return min(base * (1 + self.jitter * rand), self.max_delay)


StepKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
]


class Step(BaseModel):
    """One step of a pipeline: a Databricks task run after the steps it depends on."""

    model_config = _Frozen
    key: StepKey
    task: Task
    depends_on: Annotated[list[StepKey], Field(max_length=MAX_STEPS)] = Field(default_factory=list)
    run_if: RunIf = Field(RunIf.ALL_SUCCESS, description="When it runs, given how its dependencies ended.")
    retry: RetryPolicy | None = Field(None, description="Its own retry policy (default: the job's).")
    timeout: timedelta | None = Field(
        None,
        ge=timedelta(seconds=10),
        le=timedelta(days=7),
        description="Its own timeout (default: the job's).",
    )


class PipelineTask(BaseModel):
    """Steps run in dependency order, independent ones in parallel (Databricks' run_if rules)."""

    model_config = _Frozen
    kind: Literal["pipeline"]
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]

    @model_validator(mode="after")
    def _a_dag(self) -> Self:
        errors = graph_errors([(s.key, s.depends_on) for s in self.steps])
        if errors:
            raise ValueError("; ".join(f"{field}: {message}" for field, message in errors.items()))
        return self

    def step(self, key: str) -> Step | None:
        return next((s for s in self.steps if s.key == key), None)

    @property
    def graph(self) -> dict[str, list[str]]:
        return {s.key: list(s.depends_on) for s in self.steps}


JobTask = Annotated[DatabricksJobTask | DatabricksRunTask | PipelineTask, Field(discriminator="kind")]


class AfterCondition(StrEnum):
    ALL_SUCCEEDED = "all_succeeded"  # every upstream job has a new successful run
    ANY_SUCCEEDED = "any_succeeded"  # one has
    ALL_DONE = "all_done"  # every upstream job has a new run that ended, however


JobRef = Annotated[str, StringConstraints(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]


class AfterTrigger(BaseModel):
    """Run the job when runs of other jobs (of the same tenant) have ended as `condition` says,
    all within `within` of each other's end; once per set of upstream runs, never reusing one."""

    model_config = _Frozen
    kind: Literal["after"]
    jobs: Annotated[list[JobRef], Field(min_length=1, max_length=20)]
    condition: AfterCondition = AfterCondition.ALL_SUCCEEDED
    within: timedelta = Field(timedelta(hours=12), ge=timedelta(minutes=1), le=timedelta(days=7))

    @field_validator("jobs")
    @classmethod
    def _unique(cls, jobs: list[str]) -> list[str]:
        if len(set(jobs)) != len(jobs):
            raise ValueError("a job appears twice in 'jobs'")
        return jobs


# Azure's container names: 3-63 of a-z, 0-9 and single hyphens, starting and ending alphanumeric.
ContainerName = Annotated[
    str, StringConstraints(max_length=63, pattern=r"^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$")
]
AccountName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{3,24}$")]


class FileArrivalTrigger(BaseModel):
    """Run the job when blobs matching container/prefix/suffix are created (Event Grid's BlobCreated).

    Files created within `wait_after_last_change` of each other fold into one run that lists
    them all; runs start at least `min_time_between_triggers` apart (Databricks' file arrival
    trigger settings)."""

    model_config = _Frozen
    kind: Literal["file_arrival"]
    container: ContainerName = Field(description="The blob container watched.")
    prefix: str = Field("", max_length=1024, description="Only blobs whose name starts with this.")
    suffix: str = Field(
        "", max_length=256, description="Only blobs whose name ends with this, e.g. `.parquet`."
    )
    account: AccountName | None = Field(
        None,
        description="The storage account (default: any account whose events reach the scheduler).",
    )
    min_time_between_triggers: timedelta = Field(
        timedelta(0), ge=timedelta(0), le=timedelta(days=1), description="At least this long between runs."
    )
    wait_after_last_change: timedelta = Field(
        timedelta(0),
        ge=timedelta(0),
        le=timedelta(hours=1),
        description="Start the run once no matching file arrived for this long (files fold into it).",
    )

    def matches(self, account: str, container: str, blob: str) -> bool:
        return (
            container == self.container
            and (self.account is None or self.account == account)
            and blob.startswith(self.prefix)
            and blob.endswith(self.suffix)
        )


class WebhookTrigger(BaseModel):
    """Run the job when `POST /api/jobs/{job_id}/trigger` is called (once per Idempotency-Key)."""

    model_config = _Frozen
    kind: Literal["webhook"]


JobTrigger = Annotated[AfterTrigger | FileArrivalTrigger | WebhookTrigger, Field(discriminator="kind")]

DEFAULT_POOL = "default"
MAX_SLOTS = 1000
PoolName = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
]
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"),
]


class JobSettings(BaseModel):
    """What a job runs and the policies around it: everything but its name, description and when it
    runs. A template (`shared/domain/template.py`) fixes these for the jobs made from it."""

    model_config = _Frozen
    job_type: JobType
    task: JobTask
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: timedelta | None = Field(
        None, ge=timedelta(seconds=10), le=timedelta(days=7), description="ISO-8601 duration, e.g. PT2H."
    )
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    misfire: MisfirePolicy = MisfirePolicy.FIRE_ONCE
    catch_up_window: timedelta = Field(timedelta(hours=1), ge=timedelta(minutes=1), le=timedelta(days=7))
    priority: Priority = Priority.NORMAL
    pool: PoolName = Field(DEFAULT_POOL, description="The pool whose slots its runs take (GET /api/pools).")
    slots: int = Field(1, ge=1, le=MAX_SLOTS, description="Slots one run takes in its pool.")
    deadline: timedelta | None = Field(
        None,
        ge=timedelta(minutes=1),
        le=timedelta(days=7),
        description="ISO-8601 duration after the scheduled time by which a run must finish, e.g. PT6H.",
    )
    tags: Annotated[list[Tag], Field(max_length=20)] = Field(default_factory=list)
    record_skipped_while_paused: bool = False
    notifications: Notifications | None = Field(
        None, description="Who hears about its runs (webhook, Teams, Slack), and when."
    )

    @field_validator("tags")
    @classmethod
    def _dedupe(cls, tags: list[str]) -> list[str]:
        return list(dict.fromkeys(tags))

    def settings(self) -> dict[str, object]:
        """These fields as JSON (what a job made from a template starts with)."""
        return self.model_dump(mode="json", include=set(JobSettings.model_fields))


class JobDefinition(JobSettings):
    """Everything the caller says about a job; the body of create and edit."""

    name: Name
    description: str = Field("", max_length=2000)
    schedule: ScheduleSpec | None = Field(
        None, description="When it runs; may be left out when `triggers` say when instead."
    )
    triggers: Annotated[list[JobTrigger], Field(max_length=5)] = Field(
        default_factory=list,
        description="Run when other jobs' runs end (`after`), files arrive (`file_arrival`) or a "
        "caller asks (`webhook`).",
    )

    @field_validator("triggers")
    @classmethod
    def _one_webhook(
        cls, triggers: list[AfterTrigger | FileArrivalTrigger | WebhookTrigger]
    ) -> list[AfterTrigger | FileArrivalTrigger | WebhookTrigger]:
        if sum(isinstance(t, WebhookTrigger) for t in triggers) > 1:
            raise ValueError("a job has at most one webhook trigger")
        return triggers

    @property
    def after_triggers(self) -> list[AfterTrigger]:
        return [t for t in self.triggers if isinstance(t, AfterTrigger)]

    @property
    def file_triggers(self) -> list[tuple[int, FileArrivalTrigger]]:
        """The file arrival triggers with their place in `triggers` (which names their state)."""
        return [(i, t) for i, t in enumerate(self.triggers) if isinstance(t, FileArrivalTrigger)]

    @property
    def has_webhook(self) -> bool:
        return any(isinstance(t, WebhookTrigger) for t in self.triggers)

    @property
    def runs_out(self) -> bool:
        """Whether the job is COMPLETED when its schedule has no more fire times: only a job with a
        schedule and no triggers (a job with neither runs whenever asked, for ever)."""
        return self.schedule is not None and not self.triggers

    @property
    def upstream_jobs(self) -> list[str]:
        return [job for trigger in self.after_triggers for job in trigger.jobs]


Scalar = StrictBool | StrictInt | StrictFloat | Annotated[StrictStr, StringConstraints(max_length=4096)]


class TemplateRef(BaseModel):
    """Which template, at which version, a job was made from, and the values it was made with."""

    model_config = ConfigDict(frozen=True)
    name: str
    version: int
    parameters: dict[str, Scalar]


class BatchInfo(BaseModel):
    """What makes a job a batch (POST /api/batches): how many points, how many at a time."""

    model_config = ConfigDict(frozen=True)
    size: int
    execution_mode: Literal["parallel", "sequential"]
    max_parallel: int


class Actor(BaseModel):
    """Who made a change: principal id and display name (never a token)."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str


class Job(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    tenant: str
    shard: str = ""  # where its runs and due row live; fixed when the job is created
    definition: JobDefinition
    status: JobStatus
    next_fire_at: datetime | None
    next_fire_dst: DstNote | None = None
    version: int = 1  # bumped by every edit of the definition; launch messages carry it
    revision: int = 1  # bumped by every change the API makes; orders the audit trail
    created_at: datetime
    created_by: Actor
    updated_at: datetime
    updated_by: Actor
    last_run_state: RunState | None = None
    last_run_at: datetime | None = None
    paused_at: datetime | None = None  # when it was last paused (kept after a resume: replays start there)
    template: TemplateRef | None = None  # the template it was made from (kept through edits)
    batch: BatchInfo | None = None  # a batch's job: its runs are the batch's rounds

    @classmethod
    def new(
        cls,
        *,
        job_id: str,
        tenant: str,
        definition: JobDefinition,
        actor: Actor,
        now: datetime,
        shard: str = "",
        template: TemplateRef | None = None,
        batch: BatchInfo | None = None,
    ) -> Job:
        fire = definition.schedule.next_fire(now) if definition.schedule else None
        return cls(
            id=job_id,
            tenant=tenant,
            shard=shard,
            definition=definition,
            status=JobStatus.ACTIVE if fire or not definition.runs_out else JobStatus.COMPLETED,
            next_fire_at=fire.at if fire else None,
            next_fire_dst=fire.dst if fire else None,
            created_at=now,
            created_by=actor,
            updated_at=now,
            updated_by=actor,
            template=template,
            batch=batch,
        )

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.CANCELLED, JobStatus.COMPLETED)

    def _changed(self, actor: Actor, now: datetime, **fields: object) -> Job:
        return self.model_copy(
            update={"revision": self.revision + 1, "updated_at": now, "updated_by": actor, **fields}
        )

    def _scheduled_from(self, schedule: ScheduleSpec | None, now: datetime) -> dict[str, object]:
        fire: FireTime | None = schedule.next_fire(now) if schedule else None
        return {
            "next_fire_at": fire.at if fire else None,
            "next_fire_dst": fire.dst if fire else None,
        }

    def edited(self, definition: JobDefinition, actor: Actor, now: datetime) -> Job:
        """A new version; the next fire time is computed again from now."""
        if self.status is JobStatus.CANCELLED:
            raise IllegalTransition(f"job {self.id} is cancelled and can no longer be edited")
        fields = self._scheduled_from(definition.schedule, now)
        status = self.status
        runs_again = fields["next_fire_at"] is not None or not definition.runs_out
        if status is JobStatus.COMPLETED and runs_again:
            status = JobStatus.ACTIVE  # a finished schedule given new fire times comes back to life
        elif status is JobStatus.ACTIVE and not runs_again:
            status = JobStatus.COMPLETED
        return self._changed(
            actor, now, definition=definition, version=self.version + 1, status=status, **fields
        )

    def paused(self, actor: Actor, now: datetime) -> Job:
        if self.status is not JobStatus.ACTIVE:
            raise IllegalTransition(f"only an ACTIVE job can be paused; job {self.id} is {self.status}")
        return self._changed(actor, now, status=JobStatus.PAUSED, paused_at=now)

    def resumed(self, actor: Actor, now: datetime) -> Job:
        """Back to ACTIVE; fire times missed while paused are not owed: the next one is after now."""
        if self.status is not JobStatus.PAUSED:
            raise IllegalTransition(f"only a PAUSED job can be resumed; job {self.id} is {self.status}")
        fields = self._scheduled_from(self.definition.schedule, now)
        runs_again = fields["next_fire_at"] is not None or not self.definition.runs_out
        status = JobStatus.ACTIVE if runs_again else JobStatus.COMPLETED
        return self._changed(actor, now, status=status, **fields)

    def cancelled(self, actor: Actor, now: datetime) -> Job:
        if self.status is JobStatus.CANCELLED:
            raise IllegalTransition(f"job {self.id} is already cancelled")
        return self._changed(actor, now, status=JobStatus.CANCELLED, next_fire_at=None, next_fire_dst=None)

    def noted(self, run_state: RunState, scheduled_for: datetime) -> Job:
        """The job once a run of it ended: its "last run" shows the run, unless a newer one is noted.

        A job whose schedule has no more fire times is COMPLETED when its last run ends (not when
        that run was recorded: a one-time job is not complete while its run still runs).
        """
        if self.last_run_at is not None and self.last_run_at > scheduled_for:
            return self
        update: dict[str, object] = {"last_run_state": run_state, "last_run_at": scheduled_for}
        scheduled_out = self.next_fire_at is None and self.definition.runs_out
        if run_state.is_terminal and self.status is JobStatus.ACTIVE and scheduled_out:
            update["status"] = JobStatus.COMPLETED
        return self.model_copy(update=update)

    @property
    def is_due_indexed(self) -> bool:
        """Whether the tick must visit this job at `next_fire_at`.

        ACTIVE jobs fire; PAUSED jobs that record skipped occurrences are visited too.
        """
        if self.next_fire_at is None:
            return False
        return self.status is JobStatus.ACTIVE or (
            self.status is JobStatus.PAUSED and self.definition.record_skipped_while_paused
        )


class TriggerKind(BaseModel):
    """A trigger as a job list shows it: its kind."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["after", "file_arrival", "webhook"]


class JobSummary(BaseModel):
    """What a job list shows: enough to scan, sort and filter; the full job is one GET away."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    tenant: str
    name: str
    job_type: JobType
    description: str = ""
    schedule: ScheduleSpec | None = None
    triggers: list[TriggerKind] = Field(default_factory=list, description="What else starts it, by kind.")
    batch: bool = Field(False, description="A batch's job (GET /api/batches/{job_id}).")
    status: JobStatus
    priority: Priority
    tags: list[str]
    next_fire_at: datetime | None = None
    last_run_state: RunState | None = None
    last_run_at: datetime | None = None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job) -> JobSummary:
        d = job.definition
        return cls(
            job_id=job.id,
            tenant=job.tenant,
            name=d.name,
            job_type=d.job_type,
            description=d.description,
            schedule=d.schedule,
            triggers=[TriggerKind(kind=t.kind) for t in d.triggers],
            batch=job.batch is not None,
            status=job.status,
            priority=d.priority,
            tags=d.tags,
            next_fire_at=job.next_fire_at,
            last_run_state=job.last_run_state,
            last_run_at=job.last_run_at,
            version=job.version,
            created_at=job.created_at,
            updated_at=job.updated_at,
        )

    def matches(self, text: str) -> bool:
        """Case-insensitive substring search over name, description and tags."""
        needle = text.casefold()
        return (
            needle in self.name.casefold()
            or needle in self.description.casefold()
            or any(needle in tag for tag in self.tags)
        )


class FieldChange(BaseModel):
    model_config = ConfigDict(frozen=True)
    field: str
    before: object = None
    after: object = None


class AuditEntry(BaseModel):
    """One change to a job: who, when, what action, and which fields moved from what to what."""

    model_config = ConfigDict(frozen=True)
    job_id: str
    revision: int
    at: datetime
    actor: Actor
    action: str
    version: int
    changes: list[FieldChange]
