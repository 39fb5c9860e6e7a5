"""`FakeDatabricks`: the Databricks port in memory, for fast tests of the launch and poll services.

Like Databricks it starts at most one run per idempotency token. Runs move one step per
`get_run`: PENDING, then RUNNING, then their outcome; `cancel` ends a run that has not
finished as CANCELLED at once (Databricks shows TERMINATING for a moment first). Tests
script what happens:

    fake.outcomes.append(FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR"))  # the next new run
    fake.outcomes.append(FakeOutcome.HANG)          # RUNNING until cancelled
    fake.finish(run_id, Phase.FAILED, failure=FailureKind.TRANSIENT, code="CLUSTER_ERROR")  # at once
    fake.fail_next_call(status=429, retry_after=2)  # the next call raises what the adapter would

and look at what happened: `calls` (per port method), `launches` (every request),
`starts_for_token(token)`, `runs[run_id]` (the parameters as sent, with placeholders filled).
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import ClassVar, Literal

from shared.adapters.databricks import (
    LaunchedRun,
    LaunchRequest,
    Phase,
    RunStatus,
    fill_placeholders,
)
from shared.domain.clock import Clock, SystemClock
from shared.domain.errors import ExternalError, NotFound, SchedulerError
from shared.domain.job import DatabricksJobTask, DatabricksRunTask
from shared.domain.run import FailureKind

Method = Literal["launch", "get_run", "cancel", "result"]

# Plausible legacy states for each phase, so a RunStatus from the fake looks like one from Databricks.
_LEGACY: dict[Phase, tuple[str, str | None]] = {
    Phase.PENDING: ("PENDING", None),
    Phase.RUNNING: ("RUNNING", None),
    Phase.TERMINATING: ("TERMINATING", None),
    Phase.SUCCEEDED: ("TERMINATED", "SUCCESS"),
    Phase.FAILED: ("TERMINATED", "FAILED"),
    Phase.TIMED_OUT: ("TERMINATED", "TIMEDOUT"),
    Phase.CANCELLED: ("TERMINATED", "CANCELED"),
}


@dataclass(frozen=True, slots=True)
class FakeOutcome:
    """How a run ends: a terminal phase, or RUNNING for a run that never ends by itself."""

    phase: Phase
    failure: FailureKind | None = None
    code: str | None = None
    message: str = ""

    SUCCESS: ClassVar[FakeOutcome]
    HANG: ClassVar[FakeOutcome]

    def __post_init__(self) -> None:
        if not (self.phase.is_terminal or self.phase is Phase.RUNNING):
            raise ValueError(f"an outcome is a terminal phase or RUNNING (hang), not {self.phase}")
        if (self.phase in (Phase.FAILED, Phase.TIMED_OUT)) != (self.failure is not None):
            raise ValueError("give a failure kind exactly for FAILED and TIMED_OUT")

    @classmethod
    def failed(cls, failure: FailureKind, code: str, message: str = "") -> FakeOutcome:
        return cls(Phase.FAILED, failure, code, message or f"Run failed: {code} (fake)")


FakeOutcome.SUCCESS = FakeOutcome(Phase.SUCCEEDED, code="SUCCESS")
FakeOutcome.HANG = FakeOutcome(Phase.RUNNING)
_CANCELLED_BY_USER = FakeOutcome(Phase.CANCELLED, code="USER_CANCELED", message="Run was cancelled (fake).")


@dataclass
class FakeRun:
    run_id: int
    request: LaunchRequest
    outcome: FakeOutcome
    parameters: dict[str, str] | list[str]  # as sent to Databricks, placeholders filled
    status: RunStatus


@dataclass
class _Failure:
    method: Method | None  # None: whichever method is called next
    status: int
    retry_after: float | None
    message: str
    remaining: int


class FakeDatabricks:
    """The `Databricks` port in memory (thread-safe: services may call it from several threads)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.outcomes: deque[FakeOutcome] = deque()  # consumed one per new run, oldest first
        self.calls: Counter[str] = Counter()  # per port method, failed calls included
        self.launches: list[LaunchRequest] = []  # every launch request, repeated tokens included
        self.runs: dict[int, FakeRun] = {}
        self._tokens: dict[str, int] = {}
        self._starts: Counter[str] = Counter()
        self._failures: list[_Failure] = []
        self._ids = itertools.count(5_000_001)
        self._lock = threading.RLock()

    # --- the port -------------------------------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> LaunchedRun:
        with self._lock:
            self._call("launch")
            self.launches.append(request)
            existing = self._tokens.get(request.idempotency_token)
            if existing is not None:
                return LaunchedRun(existing, self.runs[existing].status.run_page_url)
            run = self._start(request)
            return LaunchedRun(run.run_id, run.status.run_page_url)

    def get_run(self, run_id: int) -> RunStatus:
        with self._lock:
            self._call("get_run")
            run = self._run(run_id)
            seen = run.status
            self._advance(run)
            return seen

    def cancel(self, run_id: int) -> None:
        with self._lock:
            self._call("cancel")
            run = self._run(run_id)
            if not run.status.is_terminal:
                self._end(run, _CANCELLED_BY_USER)

    def result(self, run_id: int) -> str | None:
        """A notebook run's exit value: its `exit_value` widget, as the emulator plays it."""
        with self._lock:
            self._call("result")
            run = self._run(run_id)
            task = run.request.task
            if not isinstance(task, DatabricksRunTask) or task.notebook_path is None:
                return None
            if not isinstance(task.parameters, dict) or run.status.phase is not Phase.SUCCEEDED:
                return None
            value = task.parameters.get("exit_value")
            return fill_placeholders(value, run.request.context) if value is not None else None

    # --- scripting ------------------------------------------------------------------------------------

    def finish(
        self,
        run_id: int,
        phase: Phase,
        *,
        failure: FailureKind | None = None,
        code: str | None = None,
        message: str = "",
    ) -> RunStatus:
        """End a run now, as Databricks would report it from the next `get_run` on."""
        if not phase.is_terminal:
            raise ValueError(f"finish() takes a terminal phase, not {phase}")
        if phase is Phase.TIMED_OUT and failure is None:
            failure = FailureKind.TIMEOUT
        with self._lock:
            run = self._run(run_id)
            self._end(run, FakeOutcome(phase, failure, code, message))
            return run.status

    def fail_next_call(
        self,
        method: Method | None = None,
        *,
        status: int = 429,
        retry_after: float | None = None,
        message: str = "",
        times: int = 1,
    ) -> None:
        """The next `times` calls (of `method`, or of any method) raise what the real adapter raises
        for this HTTP status, and do nothing else."""
        if not 400 <= status <= 599 or times < 1:
            raise ValueError("an HTTP error status and times >= 1")
        with self._lock:
            text = message or f"injected HTTP {status} (fake)"
            self._failures.append(_Failure(method, status, retry_after, text, times))

    def starts_for_token(self, token: str) -> int:
        with self._lock:
            return self._starts[token]

    # --- inside ---------------------------------------------------------------------------------------

    def _call(self, method: Method) -> None:
        self.calls[method] += 1
        for failure in self._failures:
            if failure.remaining > 0 and failure.method in (None, method):
                failure.remaining -= 1
                raise _error(method, failure)

    def _run(self, run_id: int) -> FakeRun:
        run = self.runs.get(run_id)
        if run is None:
            raise NotFound(f"databricks run {run_id} not found")
        return run

    def _start(self, request: LaunchRequest) -> FakeRun:
        run_id = next(self._ids)
        job_id = request.task.job_id if isinstance(request.task, DatabricksJobTask) else run_id
        lcs, result = _LEGACY[Phase.PENDING]
        run = FakeRun(
            run_id=run_id,
            request=request,
            outcome=self.outcomes.popleft() if self.outcomes else FakeOutcome.SUCCESS,
            parameters=_filled(request),
            status=RunStatus(
                run_id,
                Phase.PENDING,
                message="Waiting for cluster",
                life_cycle_state=lcs,
                result_state=result,
                run_page_url=f"https://fake.azuredatabricks.net/#job/{job_id}/run/{run_id}",
                started_at=self.clock.now(),
            ),
        )
        self.runs[run_id] = run
        self._tokens[request.idempotency_token] = run_id
        self._starts[request.idempotency_token] += 1
        return run

    def _advance(self, run: FakeRun) -> None:
        if run.status.phase is Phase.PENDING:
            run.status = replace(run.status, phase=Phase.RUNNING, life_cycle_state="RUNNING", message="")
        elif run.status.phase is Phase.RUNNING and run.outcome.phase is not Phase.RUNNING:
            self._end(run, run.outcome)

    def _end(self, run: FakeRun, outcome: FakeOutcome) -> None:
        lcs, result = _LEGACY[outcome.phase]
        run.status = replace(
            run.status,
            phase=outcome.phase,
            failure=outcome.failure,
            code=outcome.code,
            message=outcome.message,
            life_cycle_state=lcs,
            result_state=result,
            ended_at=self.clock.now(),
        )


def _filled(request: LaunchRequest) -> dict[str, str] | list[str]:
    parameters = request.task.parameters
    if isinstance(parameters, dict):
        return {k: fill_placeholders(v, request.context) for k, v in parameters.items()}
    return [fill_placeholders(a, request.context) for a in parameters]


def _error(method: Method, failure: _Failure) -> SchedulerError:
    """What the SDK adapter raises for this status (see `databricks_sdk._external`)."""
    if failure.status == 404 and method != "launch":
        return NotFound(f"databricks {method}: {failure.message}")
    retryable = failure.status == 429 or (failure.status >= 500 and failure.status != 501)
    return ExternalError(
        f"databricks {method}: HTTP {failure.status}: {failure.message}",
        retryable=retryable,
        retry_after=failure.retry_after if retryable else None,
    )
