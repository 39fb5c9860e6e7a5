"""Runs: one per occurrence of a schedule (or per manual run), and the legal moves between their states.

The run key is deterministic from what caused the run: `s-{scheduled_for epoch ms}` for a
scheduled occurrence, so a second tick, a duplicate message or a replay that tries to
create the same occurrence finds it instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.errors import IllegalTransition, NotFound
from shared.domain.ids import id_time, is_id


class RunState(StrEnum):
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    LAUNCHING = "LAUNCHING"
    RUNNING = "RUNNING"
    RETRY_WAIT = "RETRY_WAIT"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.TIMED_OUT, RunState.CANCELLED, RunState.SKIPPED}
)

# The one table of legal transitions (DESIGN.md, Runs). Anything else raises IllegalTransition.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.SCHEDULED: frozenset(
        {RunState.QUEUED, RunState.LAUNCHING, RunState.SKIPPED, RunState.CANCELLED, RunState.FAILED}
    ),
    RunState.QUEUED: frozenset({RunState.LAUNCHING, RunState.SKIPPED, RunState.CANCELLED, RunState.FAILED}),
    RunState.LAUNCHING: frozenset(
        {RunState.RUNNING, RunState.FAILED, RunState.CANCELLED, RunState.RETRY_WAIT}
    ),
    RunState.RUNNING: frozenset(
        {RunState.SUCCEEDED, RunState.FAILED, RunState.TIMED_OUT, RunState.CANCELLED, RunState.RETRY_WAIT}
    ),
    RunState.RETRY_WAIT: frozenset({RunState.LAUNCHING, RunState.CANCELLED, RunState.FAILED}),
    RunState.FAILED: frozenset({RunState.RETRY_WAIT}),  # a manual retry of a failed run
    RunState.TIMED_OUT: frozenset({RunState.RETRY_WAIT}),
    RunState.SUCCEEDED: frozenset(),
    RunState.CANCELLED: frozenset(),
    RunState.SKIPPED: frozenset(),
}


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    RETRY = "retry"
    BACKFILL = "backfill"


class SkipReason(StrEnum):
    MISSED = "missed"  # its time passed while the scheduler was down (misfire policy)
    CATCH_UP_LIMIT = "catch_up_limit"  # missed, and older than the catch-up cap allows
    PAUSED = "paused"
    SUPERSEDED = "superseded"  # the job was edited after the occurrence was recorded
    JOB_CANCELLED = "job_cancelled"
    OVERLAP = "overlap"


def scheduled_run_key(scheduled_for: datetime) -> str:
    return f"s-{epoch_ms(scheduled_for)}"


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def manual_run_key(ulid: str) -> str:
    """A run started by hand: `m-{ULID}` (sortable by when it was asked for)."""
    return f"m-{ulid}"


def run_key_time(run_key: str) -> datetime:
    """The time a run key sorts by: its scheduled time, or when a manual run was asked for."""
    kind, _, value = run_key.partition("-")
    if kind == "s" and value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    if kind == "m" and is_id(value):
        return id_time(value)
    raise NotFound(f"run {run_key} not found")


def run_id(job_id: str, run_key: str) -> str:
    """The public id of a run: `{job id}_{run key}` (both parts URL-safe)."""
    return f"{job_id}_{run_key}"


def parse_run_id(value: str) -> tuple[str, str]:
    job_id, sep, run_key = value.partition("_")
    if not sep or not job_id or not run_key:
        raise NotFound(f"run {value} not found")
    run_key_time(run_key)
    return job_id, run_key


class Attempt(BaseModel):
    """One try at running an occurrence on Databricks."""

    model_config = ConfigDict(frozen=True)

    number: int
    databricks_run_id: int | None = None
    run_page_url: str | None = None
    launched_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    result: str | None = None  # SUCCEEDED, FAILED, TIMED_OUT, CANCELLED
    failure: str | None = None  # transient, user, timeout, launch_error
    code: str | None = None  # Databricks' termination code
    error: str | None = None


class Run(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant: str
    job_id: str
    run_key: str
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
    ) -> Run:
        state = RunState.SKIPPED if skipped else RunState.SCHEDULED
        return cls(
            tenant=tenant,
            job_id=job_id,
            run_key=scheduled_run_key(scheduled_for),
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
    def manual(cls, *, tenant: str, job_id: str, run_key: str, job_version: int, now: datetime) -> Run:
        return cls(
            tenant=tenant,
            job_id=job_id,
            run_key=run_key,
            trigger=Trigger.MANUAL,
            scheduled_for=now,
            state=RunState.SCHEDULED,
            job_version=job_version,
            created_at=now,
            updated_at=now,
            transitions={RunState.SCHEDULED.value: now},
        )

    @property
    def current_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def moved(self, state: RunState, now: datetime, reason: str | None = None, **fields: object) -> Run:
        """The run in `state` (IllegalTransition if the table forbids it), with `fields` updated too."""
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"run {self.id} cannot go from {self.state} to {state}")
        return self.model_copy(
            update={
                "state": state,
                "reason": reason if reason is not None else self.reason,
                "updated_at": now,
                "transitions": {**self.transitions, state.value: now},
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
