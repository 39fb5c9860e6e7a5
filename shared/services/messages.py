"""The messages the scheduler sends: "launch attempt n of run X" and "poll run X".

Ids are derived from the run and attempt (and poll number), so sending the same
message twice is harmless: Service Bus duplicate detection drops the copy, and a
handler that sees it anyway finds the run already moved on. Each message carries
a W3C traceparent derived from the run: one trace per occurrence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.adapters.queue import OutgoingMessage
from shared.domain.errors import InvalidInput
from shared.domain.run import Run
from shared.telemetry import traceparent


@dataclass(frozen=True, slots=True)
class RunRef:
    tenant: str
    job_id: str
    run_key: str
    attempt: int

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> RunRef:
        try:
            run = body["run"]
            return cls(
                str(run["tenant"]), str(run["job_id"]), str(run["run_key"]), int(body.get("attempt", 1))
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInput(f"not a run message: {err}") from err


@dataclass(frozen=True, slots=True)
class PollRef:
    run: RunRef
    poll: int
    databricks_run_id: int
    deadline: datetime | None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> PollRef:
        try:
            deadline = body.get("deadline")
            return cls(
                RunRef.parse(body),
                int(body["poll"]),
                int(body["databricks_run_id"]),
                datetime.fromisoformat(str(deadline)) if deadline else None,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInput(f"not a poll message: {err}") from err


def _properties(run: Run | RunRef, attempt: int) -> dict[str, str]:
    return {
        "job_id": run.job_id,
        "run_key": run.run_key,
        "tenant": run.tenant,
        "traceparent": traceparent(run.job_id, run.run_key, attempt),
    }


def _ref(run: Run | RunRef) -> dict[str, str]:
    return {"tenant": run.tenant, "job_id": run.job_id, "run_key": run.run_key}


def launch_message(queue: str, run: Run, attempt: int = 1, at: datetime | None = None) -> OutgoingMessage:
    """Launch attempt `attempt` of `run` at `at` (default: the run's scheduled time)."""
    return OutgoingMessage(
        queue=queue,
        message_id=f"{run.job_id}.{run.run_key}.a{attempt}.launch",
        body={"run": _ref(run), "attempt": attempt, "kind": "launch"},
        scheduled_for=at if at is not None else run.scheduled_for,
        properties=_properties(run, attempt),
    )


def poll_message(
    queue: str,
    run: Run | RunRef,
    attempt: int,
    poll: int,
    databricks_run_id: int,
    deadline: datetime | None,
    at: datetime,
) -> OutgoingMessage:
    """Poll number `poll`: it carries what a poll that sees no change needs, so that poll reads no table."""
    return OutgoingMessage(
        queue=queue,
        message_id=f"{run.job_id}.{run.run_key}.a{attempt}.p{poll}",
        body={
            "run": _ref(run),
            "attempt": attempt,
            "kind": "poll",
            "poll": poll,
            "databricks_run_id": databricks_run_id,
            "deadline": deadline.isoformat() if deadline else None,
        },
        scheduled_for=at,
        properties=_properties(run, attempt),
    )
