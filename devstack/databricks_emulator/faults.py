"""Fault injection: HTTP errors, slow responses and runs that fail, hang or wait.

HTTP faults match an endpoint name such as ``jobs/run-now`` (``"*"`` matches every Jobs endpoint) and are
consumed one per matching request. Run faults are consumed one per newly created run, oldest first;
a request answered from an idempotency token creates no run and consumes nothing.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal

from devstack.databricks_emulator.errors import ApiError
from devstack.databricks_emulator.records import (
    HOLD_PHASES,
    RESULT_STATES,
    TERMINATION_CODES,
    TERMINATION_TYPES,
)

ANY_ENDPOINT = "*"

# The error codes Databricks pairs with these statuses; the SDK maps status + error_code to its exceptions.
_ERROR_CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    409: "RESOURCE_CONFLICT",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
}

RunFaultKind = Literal["fail", "hang", "hold"]


@dataclass
class HttpFault:
    endpoint: str
    status: int
    remaining: int
    retry_after: int | None
    error_code: str
    message: str

    def to_error(self) -> ApiError:
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return ApiError(self.status, self.error_code, self.message, headers)


@dataclass
class SlowFault:
    endpoint: str
    delay: float
    remaining: int | None  # None: every matching request until reset


@dataclass
class RunFault:
    kind: RunFaultKind
    remaining: int
    # kind == "fail": how the run ends, without executing anything.
    code: str = "CLUSTER_ERROR"
    type: str = "CLOUD_FAILURE"
    message: str = "Cluster 'emulator-cluster' failed to start: cloud provider launch failure (injected)."
    life_cycle_state: str = "TERMINATED"
    result_state: str = "FAILED"
    # kind == "hold": the legacy state shown before the run goes on (hold_seconds None: until cancelled).
    hold_state: str = "QUEUED"
    hold_seconds: float | None = None


def normalize_endpoint(endpoint: str) -> str:
    """``/api/2.2/jobs/run-now``, ``api/2.1/jobs/run-now`` and ``jobs/run-now`` all name ``jobs/run-now``."""
    name = endpoint.strip().strip("/")
    for prefix in ("api/2.2/", "api/2.1/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name or ANY_ENDPOINT


def _matches(fault_endpoint: str, endpoint: str) -> bool:
    return fault_endpoint in (ANY_ENDPOINT, endpoint)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


class FaultBook:
    """The pending faults; safe to use from the HTTP threads and the run threads at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._http: list[HttpFault] = []
        self._slow: list[SlowFault] = []
        self._runs: list[RunFault] = []

    def add_http(
        self,
        endpoint: str,
        *,
        status: int,
        times: int = 1,
        retry_after: int | None = None,
        message: str | None = None,
        error_code: str | None = None,
    ) -> HttpFault:
        _require(400 <= status <= 599, f"status must be an HTTP error status, not {status}")
        _require(times >= 1, "times must be at least 1")
        if retry_after is None and status in (429, 503):
            retry_after = 1  # what real throttling sends; the SDK waits Retry-After seconds (+ <1 s jitter)
        fault = HttpFault(
            endpoint=normalize_endpoint(endpoint),
            status=status,
            remaining=times,
            retry_after=retry_after,
            error_code=error_code or _ERROR_CODES.get(status, "INTERNAL_ERROR"),
            message=message or f"Injected HTTP {status} from the Databricks emulator.",
        )
        with self._lock:
            self._http.append(fault)
        return fault

    def add_slow(self, endpoint: str, *, delay: float, times: int | None = None) -> SlowFault:
        _require(delay >= 0, "delay must not be negative")
        _require(times is None or times >= 1, "times must be at least 1 (or None for every request)")
        fault = SlowFault(endpoint=normalize_endpoint(endpoint), delay=delay, remaining=times)
        with self._lock:
            self._slow.append(fault)
        return fault

    def add_run(self, fault: RunFault) -> RunFault:
        _require(fault.remaining >= 1, "times must be at least 1")
        _require(fault.kind in ("fail", "hang", "hold"), f"unknown run fault kind {fault.kind!r}")
        _require(fault.code in TERMINATION_CODES, f"unknown termination code {fault.code!r}")
        _require(fault.type in TERMINATION_TYPES, f"unknown termination type {fault.type!r}")
        _require(fault.result_state in RESULT_STATES, f"unknown result state {fault.result_state!r}")
        _require(
            fault.life_cycle_state in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED"),
            "life_cycle_state must be TERMINATED, INTERNAL_ERROR or SKIPPED",
        )
        _require(fault.hold_state in HOLD_PHASES, f"hold_state must be one of {sorted(HOLD_PHASES)}")
        with self._lock:
            self._runs.append(fault)
        return fault

    def take_http(self, endpoint: str) -> HttpFault | None:
        with self._lock:
            for fault in self._http:
                if fault.remaining > 0 and _matches(fault.endpoint, endpoint):
                    fault.remaining -= 1
                    return fault
        return None

    def take_delay(self, endpoint: str) -> float:
        with self._lock:
            for fault in self._slow:
                if fault.remaining != 0 and _matches(fault.endpoint, endpoint):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault.delay
        return 0.0

    def take_run(self) -> RunFault | None:
        with self._lock:
            for fault in self._runs:
                if fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._http.clear()
            self._slow.clear()
            self._runs.clear()

    def describe(self) -> dict[str, list[dict[str, Any]]]:
        """The faults still pending, for ``GET /emulator/state``."""
        with self._lock:
            return {
                "http": [asdict(f) for f in self._http if f.remaining > 0],
                "slow": [asdict(f) for f in self._slow if f.remaining != 0],
                "runs": [_describe_run_fault(f) for f in self._runs if f.remaining > 0],
            }


def _describe_run_fault(fault: RunFault) -> dict[str, Any]:
    relevant = {
        "fail": ("code", "type", "message", "life_cycle_state", "result_state"),
        "hold": ("hold_state", "hold_seconds"),
        "hang": (),
    }[fault.kind]
    described = asdict(fault)
    return {k: v for k, v in described.items() if k in ("kind", "remaining", *relevant)}
