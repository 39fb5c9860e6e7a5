"""Runs: one per occurrence of a schedule (or per manual run), the legal moves between their states,
and the message each waiting state is waiting for.

The run key is deterministic from what caused the run: `s-{scheduled_for epoch ms}` for a
scheduled occurrence, so a second tick, a duplicate message or a replay that tries to
create the same occurrence finds it instead.

Liveness (every run reaches an end) rests on two fields written with every state:

* `intent`: the message the state waits for (launch attempt n, poll the Databricks run,
  stop it), with its due time and the id of its first send. The writer sends it after the
  write; a handler that finds the write already done sends it again (same id, so Service Bus
  drops the copy if the first send got through); the watchdog re-sends what is overdue with a
  fresh id.
* `watch_at`: when the watchdog must look at the run if nothing else has moved it. Storage keeps
  a small index row at that time, written in the same transaction as the run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.domain.errors import IllegalTransition, NotFound
from shared.domain.ids import id_time, is_id
from shared.domain.notifications import Notice
from shared.domain.pipeline import StepState


class RunState(StrEnum):
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    LAUNCHING = "LAUNCHING"
    RUNNING = "RUNNING"
    RETRY_WAIT = "RETRY_WAIT"
    TIMING_OUT = "TIMING_OUT"  # past its timeout: the cancel in Databricks is recorded before it is made
    CANCELLING = "CANCELLING"  # cancelled by a person or a newer run: likewise
    SUCCEEDED = "SUCCEEDED"
    SUCCEEDED_WITH_FAILURES = "SUCCEEDED_WITH_FAILURES"  # a pipeline: some steps failed, no leaf did
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {
        RunState.SUCCEEDED,
        RunState.SUCCEEDED_WITH_FAILURES,
        RunState.FAILED,
        RunState.TIMED_OUT,
        RunState.CANCELLED,
        RunState.SKIPPED,
    }
)
# A run in one of these counts as "the previous run is still going" for the overlap policy.
ACTIVE = frozenset(
    {RunState.LAUNCHING, RunState.RUNNING, RunState.RETRY_WAIT, RunState.TIMING_OUT, RunState.CANCELLING}
)
# A manual retry takes a run that ended in one of these.
RETRYABLE = frozenset({RunState.FAILED, RunState.TIMED_OUT})

_STOPPING_ENDS = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.TIMED_OUT, RunState.CANCELLED, RunState.RETRY_WAIT}
)

# The one table of legal transitions. Anything else raises IllegalTransition.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.SCHEDULED: frozenset(
        {
            RunState.QUEUED,
            RunState.LAUNCHING,
            RunState.SKIPPED,
            RunState.CANCELLED,
            RunState.CANCELLING,
            RunState.FAILED,
        }
    ),
    RunState.QUEUED: frozenset(
        {RunState.LAUNCHING, RunState.SKIPPED, RunState.CANCELLED, RunState.CANCELLING, RunState.FAILED}
    ),
    RunState.LAUNCHING: frozenset(
        {RunState.RUNNING, RunState.FAILED, RunState.CANCELLED, RunState.CANCELLING, RunState.RETRY_WAIT}
    ),
    RunState.RUNNING: frozenset(
        {
            RunState.SUCCEEDED,
            RunState.SUCCEEDED_WITH_FAILURES,
            RunState.FAILED,
            RunState.TIMED_OUT,
            RunState.CANCELLED,
            RunState.RETRY_WAIT,
            RunState.TIMING_OUT,
            RunState.CANCELLING,
        }
    ),
    RunState.RETRY_WAIT: frozenset(
        {RunState.LAUNCHING, RunState.CANCELLED, RunState.CANCELLING, RunState.FAILED}
    ),
    # A run being stopped ends as what Databricks says happened (it may have finished first).
    RunState.TIMING_OUT: _STOPPING_ENDS,
    RunState.CANCELLING: _STOPPING_ENDS - {RunState.RETRY_WAIT},
    # a manual retry of a failed run; a repair of a pipeline run (RUNNING again)
    RunState.FAILED: frozenset({RunState.RETRY_WAIT, RunState.RUNNING}),
    RunState.TIMED_OUT: frozenset({RunState.RETRY_WAIT}),
    RunState.SUCCEEDED: frozenset(),
    RunState.SUCCEEDED_WITH_FAILURES: frozenset({RunState.RUNNING}),  # a repair
    RunState.CANCELLED: frozenset({RunState.RUNNING}),  # a repair of a cancelled pipeline run
    RunState.SKIPPED: frozenset(),
}


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    RETRY = "retry"
    BACKFILL = "backfill"
    AFTER = "after"  # other jobs' runs ended as its `after` trigger asks
    FILE_ARRIVAL = "file_arrival"  # files matching its `file_arrival` trigger were created
    WEBHOOK = "webhook"  # POST /api/jobs/{id}/trigger
    BATCH = "batch"  # POST /api/batches (a round of a batch, or one of its points)


class SkipReason(StrEnum):
    MISSED = "missed"  # its time passed while the scheduler was down (misfire policy)
    CATCH_UP_LIMIT = "catch_up_limit"  # missed, and older than the catch-up cap allows
    PAUSED = "paused"
    SUPERSEDED = "superseded"  # the job was edited after the occurrence was recorded
    JOB_CANCELLED = "job_cancelled"
    OVERLAP = "overlap"


class AttemptResult(StrEnum):
    """How one attempt on Databricks ended."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"


class FailureKind(StrEnum):
    """Why an attempt failed; a job's retry policy decides on it."""

    TRANSIENT = "transient"  # infrastructure: cluster, cloud, Databricks itself, capacity limits
    USER = "user"  # the task or its configuration
    TIMEOUT = "timeout"
    LAUNCH_ERROR = "launch_error"  # Databricks refused the launch (no such job, no permission)
    UNKNOWN_STATE = "unknown_state"  # Databricks reported a state nobody has mapped: a person must look


class IntentKind(StrEnum):
    """The message a waiting state waits for."""

    LAUNCH = "launch"  # launch attempt n (launch queue)
    POLL = "poll"  # read the Databricks run (poll queue)
    STOP = "stop"  # cancel the Databricks run and record how it ended (made by the writer itself)


class StepRecord(BaseModel):
    """One step of a pipeline run, as its parent run records it (its own run, once started, has
    the key `{parent run key}.{step key}`). Kept small: a parent holds up to 100 of them."""

    model_config = ConfigDict(frozen=True)

    state: StepState = StepState.PENDING
    attempts: int = 0
    repair: int = Field(0, description="The repair its current run belongs to (0: the first run).")
    started_at: datetime | None = None
    ended_at: datetime | None = None


class BatchProgress(BaseModel):
    """A batch run's round: its points, how many have runs, which it heard end, and how."""

    model_config = ConfigDict(frozen=True)
    points: list[int] = Field(description="The point numbers of this round, in the order they start.")
    max_parallel: int
    chunks: list[int] = Field(description="The position each stored chunk of point values starts at.")
    started: int = Field(0, description="Positions [0, started) have runs.")
    ended: str = Field("", description="Positions heard ended: a bitmap, base64.")
    counts: dict[str, int] = Field(default_factory=dict, description="Ended point runs by state.")
    round: int = 1

    @property
    def size(self) -> int:
        return len(self.points)

    def has_ended(self, position: int) -> bool:
        bits = _bits(self.ended, self.size)
        return bool(bits[position // 8] & (1 << (position % 8)))

    @property
    def ended_count(self) -> int:
        return sum(self.counts.values())

    @property
    def active(self) -> int:
        return self.started - self.ended_count

    @property
    def done(self) -> bool:
        return self.ended_count == self.size

    def heard(self, position: int, state: RunState) -> BatchProgress:
        """This round with the point at `position` ended in `state` (unchanged if heard before)."""
        if self.has_ended(position):
            return self
        bits = _bits(self.ended, self.size)
        bits[position // 8] |= 1 << (position % 8)
        counts = {**self.counts, state.value: self.counts.get(state.value, 0) + 1}
        return self.model_copy(update={"ended": base64.b64encode(bytes(bits)).decode(), "counts": counts})

    def next_positions(self) -> range:
        """The positions to start now: as many as `max_parallel` allows, in order."""
        room = max(0, self.max_parallel - self.active)
        return range(self.started, min(self.size, self.started + room))

    def position_of(self, point: int) -> int | None:
        try:
            return self.points.index(point)
        except ValueError:
            return None

    def chunk_of(self, position: int) -> int:
        """The position the chunk holding `position` starts at."""
        return max(c for c in self.chunks if c <= position)

    def outcome(self) -> RunState:
        """How the round ended: every point succeeded, none did, or some."""
        succeeded = self.counts.get(RunState.SUCCEEDED.value, 0)
        if succeeded == self.size:
            return RunState.SUCCEEDED
        if self.counts.get(RunState.CANCELLED.value, 0) == self.size - succeeded and succeeded == 0:
            return RunState.CANCELLED
        return RunState.SUCCEEDED_WITH_FAILURES if succeeded else RunState.FAILED


def _bits(encoded: str, size: int) -> bytearray:
    bits = bytearray(base64.b64decode(encoded)) if encoded else bytearray()
    need = (size + 7) // 8
    return bits + bytearray(need - len(bits)) if len(bits) < need else bits


class RepairRecord(BaseModel):
    """A repair of a pipeline run: when, by whom, and the steps it ran again."""

    model_config = ConfigDict(frozen=True)

    number: int
    at: datetime
    by: str
    steps: list[str]


def step_state_of(state: RunState) -> StepState:
    """What a step's ended run means for the steps after it."""
    return {
        RunState.SUCCEEDED: StepState.SUCCEEDED,
        RunState.FAILED: StepState.FAILED,
        RunState.TIMED_OUT: StepState.TIMED_OUT,
    }.get(state, StepState.CANCELLED)


def text_of(value: object) -> str:
    """A value as a placeholder is filled with: `true`/`false`, `3`, `0.001`, text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def scheduled_run_key(scheduled_for: datetime) -> str:
    return f"s-{epoch_ms(scheduled_for)}"


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def manual_run_key(ulid: str) -> str:
    """A run started by hand: `m-{ULID}` (sortable by when it was asked for)."""
    return f"m-{ulid}"


def run_key_time(run_key: str) -> datetime:
    """The time a run key sorts by: its scheduled time, or when a manual run was asked for (a
    pipeline step's run, `{parent key}.{step key}`, sorts with its parent)."""
    kind, _, value = run_key.split(".", 1)[0].partition("-")
    if kind == "s" and value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    if kind == "m" and is_id(value):
        return id_time(value)
    ms, _, digest = value.partition("-")
    # `{a|f|h}-{ms}-{hash}`: started by a cause (after, file arrival, webhook), at the cause's time
    if kind in CAUSED_KINDS and ms.isdigit() and digest:
        return datetime.fromtimestamp(int(ms) / 1000, UTC)
    raise NotFound(f"run {run_key} not found")


CAUSED_KINDS = frozenset({"a", "f", "h"})


def caused_run_key(kind: str, at: datetime, cause: str) -> str:
    """A run started by a cause: `{kind}-{ms}-{12 hex of the cause's hash}` (kind `a` after, `f` file
    arrival, `h` webhook): the same cause always names the same run."""
    return f"{kind}-{epoch_ms(at)}-{hashlib.sha256(cause.encode()).hexdigest()[:12]}"


def run_id(job_id: str, run_key: str) -> str:
    """The public id of a run: `{job id}_{run key}` (both parts URL-safe)."""
    return f"{job_id}_{run_key}"


def parse_run_id(value: str) -> tuple[str, str]:
    job_id, sep, run_key = value.partition("_")
    if not sep or not job_id or not run_key:
        raise NotFound(f"run {value} not found")
    run_key_time(run_key)
    return job_id, run_key


class Intent(BaseModel):
    """The message a waiting run is waiting for: what, for which attempt, when, and its first id."""

    model_config = ConfigDict(frozen=True)

    kind: IntentKind
    attempt: int
    due_at: datetime
    message_id: str = Field(description="The id of the first send; a re-send by the watchdog adds `.rN`.")
    poll: int = 0  # POLL: the poll number
    databricks_run_id: int | None = None  # POLL and STOP
    deadline: datetime | None = None  # POLL: the attempt's timeout, if the job has one


class Attempt(BaseModel):
    """One try at running an occurrence on Databricks."""

    model_config = ConfigDict(frozen=True)

    number: int
    databricks_run_id: int | None = None
    run_page_url: str | None = None
    launched_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    result: AttemptResult | None = None
    failure: FailureKind | None = None
    code: str | None = None  # Databricks' termination code
    error: str | None = None


class CausedFile(BaseModel):
    """A blob whose creation (an Event Grid BlobCreated event) started, or joined, a run."""

    model_config = ConfigDict(frozen=True)
    url: str
    event_id: str
    at: datetime = Field(description="When the event says the blob was created.")


class Cause(BaseModel):
    """Why a run started, when something other than its schedule or a person started it."""

    model_config = ConfigDict(frozen=True)
    kind: Trigger = Field(description="`after`, `file_arrival` or `webhook`.")
    runs: dict[str, str] | None = Field(None, description="`after`: the upstream runs, by job id.")
    files: list[CausedFile] | None = Field(None, description="`file_arrival`: the files, oldest first.")
    idempotency_key: str | None = Field(None, description="`webhook`: the caller's Idempotency-Key.")
    payload: dict[str, str] | None = Field(None, description="`webhook`: the parameters it was called with.")
    point: int | None = Field(None, description="`batch`: the point's number in its batch.")
    values: dict[str, bool | int | float | str] | None = Field(
        None, description="`batch`: the point's values (`{{params.<name>}}`)."
    )

    @model_validator(mode="before")
    @classmethod
    def _stored_before_kinds(cls, value: Any) -> Any:
        """An `after` run recorded before causes had kinds stored just its upstream runs."""
        if isinstance(value, dict) and "kind" not in value:
            return {"kind": Trigger.AFTER.value, "runs": value}
        return value

    def parameters(self) -> dict[str, str]:
        """What `{{trigger.*}}` placeholders are filled with."""
        out = {"trigger.kind": self.kind.value}
        if self.runs is not None:
            out["trigger.runs"] = ",".join(sorted(self.runs.values()))
            out.update({f"trigger.{job_id}.run_id": rid for job_id, rid in self.runs.items()})
        if self.files is not None:
            out["trigger.files"] = json.dumps([f.url for f in self.files])
            out["trigger.file"] = self.files[-1].url if self.files else ""
        if self.idempotency_key is not None:
            out["trigger.idempotency_key"] = self.idempotency_key
        if self.payload is not None:
            out.update({f"trigger.payload.{k}": v for k, v in self.payload.items()})
        if self.values is not None:
            out.update({f"params.{k}": text_of(v) for k, v in self.values.items()})
        return out


class Run(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant: str
    job_id: str
    run_key: str
    shard: str = Field("", description="Where the run is stored (the job's shard).")
    trigger: Trigger
    scheduled_for: datetime
    state: RunState
    reason: str | None = None
    attempt: int = 1
    job_version: int = Field(description="The job's version when the occurrence was recorded.")
    created_at: datetime
    updated_at: datetime
    transitions: dict[str, datetime] = Field(default_factory=dict, description="When each state was entered.")
    attempts: list[Attempt] = Field(default_factory=list)
    databricks_run_id: int | None = None
    run_page_url: str | None = None
    intent: Intent | None = None
    watch_at: datetime | None = None
    pool: str | None = Field(None, description="The bounded pool whose slot it waits for or holds.")
    slots: int = 1
    priority: Priority | None = Field(None, description="Its priority in the pool's queue.")
    deadline_at: datetime | None = Field(None, description="When it must have finished (the job's deadline).")
    admitted_at: datetime | None = Field(None, description="When its pool gave it a slot.")
    deadline_missed_at: datetime | None = Field(
        None, description="When it was found unfinished at its deadline, or ended after it."
    )
    cause: Cause | None = Field(
        None, description="What started it, when a trigger did (upstream runs, files, a webhook call)."
    )
    sealed_at: datetime | None = Field(
        None, description="A file arrival run: when it stopped taking more files (its launch began)."
    )
    parent: str | None = Field(None, description="A pipeline step's run: the run key of its pipeline run.")
    step: str | None = Field(None, description="A pipeline step's run: its step key.")
    steps: dict[str, StepRecord] | None = Field(None, description="A pipeline run: its steps, by key.")
    batch: BatchProgress | None = Field(None, description="A batch's round: its points and how far it got.")
    repair_history: list[RepairRecord] = Field(default_factory=list, description="A pipeline run's repairs.")
    notices: list[Notice] = Field(
        default_factory=list, description="Notifications it owes or sent (the notify queue's outbox)."
    )
    repairs: int = Field(0, description="Re-sends of the current intent by the watchdog.")
    checks: int = Field(0, description="Watchdog visits since the last transition that found nothing wrong.")

    @property
    def id(self) -> str:
        return run_id(self.job_id, self.run_key)

    @classmethod
    def occurrence(
        cls,
        *,
        tenant: str,
        job_id: str,
        scheduled_for: datetime,
        job_version: int,
        now: datetime,
        skipped: SkipReason | None = None,
        shard: str = "",
    ) -> Run:
        state = RunState.SKIPPED if skipped else RunState.SCHEDULED
        return cls(
            tenant=tenant,
            job_id=job_id,
            run_key=scheduled_run_key(scheduled_for),
            shard=shard,
            trigger=Trigger.SCHEDULE,
            scheduled_for=scheduled_for,
            state=state,
            reason=skipped.value if skipped else None,
            job_version=job_version,
            created_at=now,
            updated_at=now,
            transitions={state.value: now},
        )

    @classmethod
    def manual(
        cls, *, tenant: str, job_id: str, run_key: str, job_version: int, now: datetime, shard: str = ""
    ) -> Run:
        return cls(
            tenant=tenant,
            job_id=job_id,
            run_key=run_key,
            shard=shard,
            trigger=Trigger.MANUAL,
            scheduled_for=now,
            state=RunState.SCHEDULED,
            job_version=job_version,
            created_at=now,
            updated_at=now,
            transitions={RunState.SCHEDULED.value: now},
        )

    @classmethod
    def caused(
        cls,
        *,
        tenant: str,
        job_id: str,
        run_key: str,
        cause: Cause,
        job_version: int,
        now: datetime,
        due: datetime | None = None,
        reason: str | None = None,
        skipped: SkipReason | None = None,
        shard: str = "",
    ) -> Run:
        """A run a trigger started (`cause` says which and why), due at `due` (default now)."""
        state = RunState.SKIPPED if skipped else RunState.SCHEDULED
        return cls(
            tenant=tenant,
            job_id=job_id,
            run_key=run_key,
            shard=shard,
            trigger=cause.kind,
            scheduled_for=due or now,
            state=state,
            reason=skipped.value if skipped else reason,
            job_version=job_version,
            created_at=now,
            updated_at=now,
            transitions={state.value: now},
            cause=cause,
        )

    @property
    def pending_notices(self) -> list[Notice]:
        return [n for n in self.notices if n.pending]

    def with_notice(self, notice: Notice) -> Run:
        """The run with `notice` recorded in place of the one with its id."""
        return self.model_copy(update={"notices": [notice if n.id == notice.id else n for n in self.notices]})

    @property
    def is_pipeline(self) -> bool:
        return self.steps is not None

    @property
    def is_batch(self) -> bool:
        return self.batch is not None

    @property
    def has_children(self) -> bool:
        """A pipeline run or a batch round: its work is its children's runs, not a Databricks run."""
        return self.steps is not None or self.batch is not None

    @property
    def current_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def moved(self, state: RunState, now: datetime, reason: str | None = None, **fields: object) -> Run:
        """The run in `state` (IllegalTransition if the table forbids it), with `fields` updated too.

        A new state starts with no intent and fresh watchdog counters; the caller sets the intent
        the new state waits for.
        """
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"run {self.id} cannot go from {self.state} to {state}")
        return self.model_copy(
            update={
                "state": state,
                "reason": reason if reason is not None else self.reason,
                "updated_at": now,
                "transitions": {**self.transitions, state.value: now},
                "intent": None,
                "repairs": 0,
                "checks": 0,
                **fields,
            }
        )

    def with_attempt(self, attempt: Attempt) -> Run:
        """The run with `attempt` recorded (replacing an earlier record of the same number)."""
        others = [a for a in self.attempts if a.number != attempt.number]
        return self.model_copy(
            update={
                "attempts": sorted([*others, attempt], key=lambda a: a.number),
                "attempt": max(self.attempt, attempt.number),
                "databricks_run_id": attempt.databricks_run_id or self.databricks_run_id,
                "run_page_url": attempt.run_page_url or self.run_page_url,
            }
        )

    def marked_late(self, now: datetime) -> Run:
        """The run marked `deadline_missed_at` if it is unfinished at its deadline, or ended after it."""
        if self.deadline_at is None or self.deadline_missed_at is not None or now < self.deadline_at:
            return self
        return self.model_copy(update={"deadline_missed_at": now})

    def databricks_run_of(self, attempt: int) -> int | None:
        """The Databricks run of attempt `attempt`, if it was recorded."""
        for record in self.attempts:
            if record.number == attempt:
                return record.databricks_run_id
        return None
