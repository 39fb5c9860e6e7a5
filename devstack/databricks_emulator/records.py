"""In-memory jobs and runs, and their Jobs API 2.2 JSON shapes.

A run always has a ``tasks`` list (every run created through API 2.1+ is a "multi-task format" run, even
with one task), and each task run has its own ``run_id``. As on Databricks, ``runs/get-output`` wants a
*task* run id, and the run-level ``setup/execution/cleanup_duration`` are only filled in for one-task runs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Legacy ``state.life_cycle_state`` values the emulator produces, mapped to the newer ``status.state``.
_V2_STATE = {
    "QUEUED": "QUEUED",
    "BLOCKED": "BLOCKED",
    "WAITING_FOR_RETRY": "WAITING",
    "PENDING": "PENDING",
    "RUNNING": "RUNNING",
    "TERMINATING": "TERMINATING",
    "TERMINATED": "TERMINATED",
    "INTERNAL_ERROR": "TERMINATED",
    "SKIPPED": "TERMINATED",
}
TERMINAL_PHASES = frozenset({"TERMINATED", "INTERNAL_ERROR", "SKIPPED"})
HOLD_PHASES = frozenset({"QUEUED", "BLOCKED", "WAITING_FOR_RETRY"})

RESULT_STATES = frozenset(
    {"SUCCESS", "FAILED", "TIMEDOUT", "CANCELED", "UPSTREAM_FAILED", "UPSTREAM_CANCELED", "EXCLUDED"}
)
TERMINATION_TYPES = frozenset({"SUCCESS", "CLIENT_ERROR", "INTERNAL_ERROR", "CLOUD_FAILURE"})
TERMINATION_CODES = frozenset(
    {
        "SUCCESS",
        "USER_CANCELED",
        "CANCELED",
        "SKIPPED",
        "INTERNAL_ERROR",
        "DRIVER_ERROR",
        "CLUSTER_ERROR",
        "REPOSITORY_CHECKOUT_FAILED",
        "INVALID_CLUSTER_REQUEST",
        "WORKSPACE_RUN_LIMIT_EXCEEDED",
        "FEATURE_DISABLED",
        "CLUSTER_REQUEST_LIMIT_EXCEEDED",
        "STORAGE_ACCESS_ERROR",
        "RUN_EXECUTION_ERROR",
        "UNAUTHORIZED_ERROR",
        "LIBRARY_INSTALLATION_ERROR",
        "MAX_CONCURRENT_RUNS_EXCEEDED",
        "MAX_SPARK_CONTEXTS_EXCEEDED",
        "RESOURCE_NOT_FOUND",
        "INVALID_RUN_CONFIGURATION",
        "CLOUD_FAILURE",
        "MAX_JOB_QUEUE_SIZE_EXCEEDED",
        "DISABLED",
    }
)
TASK_KINDS = ("spark_python_task", "notebook_task", "python_wheel_task")

_PHASE_MESSAGES = {
    "QUEUED": "Queued: the workspace active runs limit was reached.",
    "BLOCKED": "Blocked on an upstream dependency.",
    "WAITING_FOR_RETRY": "Waiting for a retry.",
    "PENDING": "Waiting for cluster",
    "RUNNING": "In run",
    "TERMINATING": "Terminating",
}


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Outcome:
    """How a run or task ended: the legacy result state plus the newer termination details."""

    result_state: str
    code: str
    type: str
    message: str
    user_cancelled_or_timedout: bool = False


SUCCEEDED = Outcome("SUCCESS", "SUCCESS", "SUCCESS", "")
CANCELED_BY_USER = Outcome("CANCELED", "USER_CANCELED", "SUCCESS", "Run was cancelled by the user.", True)
TASK_FAILED = Outcome(
    "FAILED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR", "Workload failed, see run output for details"
)
UPSTREAM_FAILED = Outcome("UPSTREAM_FAILED", "SKIPPED", "CLIENT_ERROR", "Upstream task(s) failed.")


@dataclass
class Lifecycle:
    """Where a run or task is, with the timestamps the duration fields are computed from (epoch ms)."""

    phase: str
    start_ms: int = field(default_factory=now_ms)
    running_ms: int | None = None  # entered RUNNING
    finished_ms: int | None = None  # workload stopped
    end_ms: int | None = None  # terminal
    outcome: Outcome | None = None

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    def enter(self, phase: str) -> None:
        if self.terminal:
            return
        self.phase = phase
        if phase == "RUNNING" and self.running_ms is None:
            self.running_ms = now_ms()

    def finish(self, outcome: Outcome, phase: str = "TERMINATED") -> None:
        if self.terminal:
            return
        end = now_ms()
        if self.running_ms is not None and self.finished_ms is None:
            self.finished_ms = end
        self.phase, self.outcome, self.end_ms = phase, outcome, end

    def durations(self) -> dict[str, int]:
        current = self.end_ms or now_ms()
        setup_end = self.running_ms or current
        execution = 0 if self.running_ms is None else (self.finished_ms or current) - self.running_ms
        cleanup = 0 if self.finished_ms is None else current - self.finished_ms
        return {
            "setup_duration": setup_end - self.start_ms,
            "execution_duration": execution,
            "cleanup_duration": cleanup,
            "run_duration": current - self.start_ms,
        }

    def state(self) -> dict[str, Any]:
        """The legacy ``state`` object (deprecated by Databricks, still read by most clients)."""
        outcome = self.outcome
        state: dict[str, Any] = {
            "life_cycle_state": self.phase,
            "state_message": outcome.message if outcome else _PHASE_MESSAGES.get(self.phase, ""),
            "user_cancelled_or_timedout": bool(outcome and outcome.user_cancelled_or_timedout),
        }
        if outcome:
            state["result_state"] = outcome.result_state
        if self.phase == "QUEUED":
            state["queue_reason"] = _PHASE_MESSAGES["QUEUED"]
        return state

    def status(self) -> dict[str, Any]:
        """The newer ``status`` object: ``state`` plus ``termination_details`` / ``queue_details``."""
        status: dict[str, Any] = {"state": _V2_STATE[self.phase]}
        if self.outcome:
            o = self.outcome
            status["termination_details"] = {"code": o.code, "type": o.type, "message": o.message}
        if self.phase == "QUEUED":
            status["queue_details"] = {
                "code": "ACTIVE_RUNS_LIMIT_REACHED",
                "message": _PHASE_MESSAGES["QUEUED"],
            }
        return status


@dataclass
class TaskRun:
    run_id: int
    spec: dict[str, Any]  # the task as created or submitted
    life: Lifecycle
    pid: int | None = None
    argv: list[str] | None = None
    stdout_path: Path | None = None
    stderr_path: Path | None = None
    exit_code: int | None = None
    error: str | None = None  # get-output's ``error`` when the task did not succeed

    @property
    def task_key(self) -> str:
        return str(self.spec.get("task_key", ""))

    @property
    def kind(self) -> str:
        return next(k for k in TASK_KINDS if k in self.spec)


@dataclass
class RunRecord:
    run_id: int
    job_id: int
    run_name: str
    run_type: str  # JOB_RUN (run-now) or SUBMIT_RUN (runs/submit)
    tasks: list[TaskRun]
    life: Lifecycle
    job_parameters: list[dict[str, str]]  # [{"name", "default"?, "value"}], in the order the job defines them
    idempotency_token: str | None
    cancel_requested: threading.Event = field(default_factory=threading.Event)


@dataclass
class JobRecord:
    job_id: int
    settings: dict[str, Any]
    created_ms: int = field(default_factory=now_ms)


def page_url(base_url: str, job_id: int, run_id: int) -> str:
    return f"{base_url}/#job/{job_id}/run/{run_id}"


def render_run(run: RunRecord, base_url: str, user: str, *, include_tasks: bool = True) -> dict[str, Any]:
    """A ``Run`` as ``jobs/runs/get`` (and ``jobs/runs/list``) answer it."""
    durations = run.life.durations()
    if len(run.tasks) != 1:
        # Databricks reports 0 for these on multi-task runs; run_duration carries the total.
        durations.update(setup_duration=0, execution_duration=0, cleanup_duration=0)
    else:
        durations.update({k: v for k, v in run.tasks[0].life.durations().items() if k != "run_duration"})
    rendered: dict[str, Any] = {
        "job_id": run.job_id,
        "run_id": run.run_id,
        "number_in_job": run.run_id,
        "original_attempt_run_id": run.run_id,
        "attempt_number": 0,
        "creator_user_name": user,
        "run_name": run.run_name,
        "run_type": run.run_type,
        "trigger": "ONE_TIME",
        "run_page_url": page_url(base_url, run.job_id, run.run_id),
        "state": run.life.state(),
        "status": run.life.status(),
        "start_time": run.life.start_ms,
        "end_time": run.life.end_ms or 0,
        **durations,
    }
    if run.job_parameters:
        rendered["job_parameters"] = [dict(p) for p in run.job_parameters]
    if include_tasks:
        rendered["tasks"] = [render_task(run, task, base_url) for task in run.tasks]
    return rendered


def render_task(run: RunRecord, task: TaskRun, base_url: str) -> dict[str, Any]:
    """One entry of a run's ``tasks``: the task's own settings plus its run fields."""
    return {
        **task.spec,
        "run_id": task.run_id,
        "attempt_number": 0,
        "run_page_url": page_url(base_url, run.job_id, task.run_id),
        "state": task.life.state(),
        "status": task.life.status(),
        "start_time": task.life.start_ms,
        "end_time": task.life.end_ms or 0,
        **task.life.durations(),
    }


def render_task_as_run(run: RunRecord, task: TaskRun, base_url: str, user: str) -> dict[str, Any]:
    """A task run seen on its own: ``runs/get`` with a task run id, and get-output's ``metadata``."""
    rendered: dict[str, Any] = {
        "job_id": run.job_id,
        "run_id": task.run_id,
        "job_run_id": run.run_id,
        "number_in_job": task.run_id,
        "original_attempt_run_id": task.run_id,
        "attempt_number": 0,
        "creator_user_name": user,
        "run_name": task.task_key,
        "run_type": run.run_type,
        "trigger": "ONE_TIME",
        "run_page_url": page_url(base_url, run.job_id, task.run_id),
        "state": task.life.state(),
        "status": task.life.status(),
        "start_time": task.life.start_ms,
        "end_time": task.life.end_ms or 0,
        **task.life.durations(),
        "tasks": [render_task(run, task, base_url)],
    }
    if run.job_parameters:
        rendered["job_parameters"] = [dict(p) for p in run.job_parameters]
    return rendered


def render_job(job: JobRecord, user: str, *, include_tasks: bool = True) -> dict[str, Any]:
    settings = dict(job.settings)
    if not include_tasks:
        # jobs/list (API 2.2) leaves tasks and job clusters out unless expand_tasks=true.
        settings.pop("tasks", None)
        settings.pop("job_clusters", None)
    return {
        "job_id": job.job_id,
        "creator_user_name": user,
        "run_as_user_name": user,
        "created_time": job.created_ms,
        "settings": settings,
    }
