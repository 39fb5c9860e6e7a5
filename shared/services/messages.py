"""The messages the scheduler sends ("launch attempt n of run X", "poll run X") and their ids.

A message is always the send of an `Intent` recorded on the run. Its first send carries the
intent's deterministic id (`{job}.{run key}.a{n}.launch`, `...a{n}.p{k}`): two ticks firing the
same occurrence, or a handler that sends again after a crash, send the same id, and Service Bus
duplicate detection keeps one. Any other re-send carries a fresh id, because the first may still
sit in the detection window and would swallow it: `.r{n}` for the watchdog's n-th repair,
`.d{n}` for the n-th deferral of a message whose handler met a passing error, `.release.{key}`
for the launch of a buffered run released by the end of run `key`.

Each message carries a W3C traceparent derived from the run: one trace per occurrence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.adapters.queue import OutgoingMessage
from shared.domain.errors import InvalidInput
from shared.domain.notifications import Notice
from shared.domain.run import Intent, IntentKind, Run
from shared.telemetry import traceparent


@dataclass(frozen=True, slots=True)
class Queues:
    launch: str
    poll: str
    notify: str = "notify"

    def of(self, kind: IntentKind) -> str:
        return self.poll if kind is IntentKind.POLL else self.launch


@dataclass(frozen=True, slots=True)
class RunRef:
    shard: str
    tenant: str
    job_id: str
    run_key: str
    attempt: int

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> RunRef:
        try:
            run = body["run"]
            return cls(
                str(run.get("shard") or ""),
                str(run["tenant"]),
                str(run["job_id"]),
                str(run["run_key"]),
                int(body.get("attempt", 1)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise InvalidInput(f"not a run message: {err}") from err

    @classmethod
    def of(cls, run: Run, attempt: int | None = None) -> RunRef:
        return cls(run.shard, run.tenant, run.job_id, run.run_key, attempt or run.attempt)


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


def launch_id(run: Run, attempt: int) -> str:
    return f"{run.job_id}.{run.run_key}.a{attempt}.launch"


def poll_id(run: Run | RunRef, attempt: int, poll: int) -> str:
    return f"{run.job_id}.{run.run_key}.a{attempt}.p{poll}"


def launch_intent(run: Run, attempt: int, due_at: datetime, message_id: str | None = None) -> Intent:
    return Intent(
        kind=IntentKind.LAUNCH,
        attempt=attempt,
        due_at=due_at,
        message_id=message_id or launch_id(run, attempt),
    )


def poll_intent(
    run: Run, attempt: int, poll: int, databricks_run_id: int, deadline: datetime | None, due_at: datetime
) -> Intent:
    return Intent(
        kind=IntentKind.POLL,
        attempt=attempt,
        due_at=due_at,
        message_id=poll_id(run, attempt, poll),
        poll=poll,
        databricks_run_id=databricks_run_id,
        deadline=deadline,
    )


def _ref(run: Run | RunRef) -> dict[str, str]:
    return {"shard": run.shard, "tenant": run.tenant, "job_id": run.job_id, "run_key": run.run_key}


def _properties(run: Run | RunRef, attempt: int) -> dict[str, str]:
    return {
        "job_id": run.job_id,
        "run_key": run.run_key,
        "tenant": run.tenant,
        "traceparent": traceparent(run.job_id, run.run_key, attempt),
    }


def message_for(
    run: Run,
    intent: Intent,
    queues: Queues,
    *,
    message_id: str | None = None,
    at: datetime | None = None,
    repair: int = 0,
) -> OutgoingMessage:
    """The message that carries `intent` (with its own id unless `message_id` says otherwise).

    `repair`: the watchdog's n-th re-send: the id gets `.r{n}` and the body says so, so the
    handler knows an earlier message may have reached Databricks."""
    body: dict[str, Any] = {"run": _ref(run), "attempt": intent.attempt, "kind": intent.kind.value}
    if repair:
        body["repair"] = repair
        message_id = f"{message_id or intent.message_id}.r{repair}"
    if intent.kind is IntentKind.POLL:
        body.update(
            poll=intent.poll,
            databricks_run_id=intent.databricks_run_id,
            deadline=intent.deadline.isoformat() if intent.deadline else None,
        )
    return OutgoingMessage(
        queue=queues.of(intent.kind),
        message_id=message_id or intent.message_id,
        body=body,
        scheduled_for=at or intent.due_at,
        properties=_properties(run, intent.attempt),
    )


def notice_message(run: Run, notice: Notice, queue: str) -> OutgoingMessage:
    """The message "deliver notice `notice.id` of run X", due at the notice's time, with the id of
    its current send (`Notice.message_id`)."""
    return OutgoingMessage(
        queue=queue,
        message_id=notice.message_id(run.id),
        body={"run": _ref(run), "notice": notice.id, "kind": "notify"},
        scheduled_for=notice.due_at,
        properties=_properties(run, run.attempt),
    )


def admitted_launch(ref: RunRef, queue: str, at: datetime, why: str) -> OutgoingMessage:
    """The launch of a run a pool admitted (attempt 1: a retry keeps its slot). Its id names the
    admission (`why`: `admit{lease ms}`, or the watchdog's `check{n}`), never the first launch's id,
    which Service Bus would drop as a duplicate of the launch that queued the run."""
    return OutgoingMessage(
        queue=queue,
        message_id=f"{ref.job_id}.{ref.run_key}.a1.launch.{why}",
        body={"run": _ref(ref), "attempt": 1, "kind": IntentKind.LAUNCH.value},
        scheduled_for=at,
        properties=_properties(ref, 1),
    )


def next_poll(ref: PollRef, queue: str, at: datetime) -> OutgoingMessage:
    """Poll `ref.poll + 1` of the same attempt: what a poll that saw no change sends, reading no table."""
    poll = ref.poll + 1
    body = {
        "run": _ref(ref.run),
        "attempt": ref.run.attempt,
        "kind": IntentKind.POLL.value,
        "poll": poll,
        "databricks_run_id": ref.databricks_run_id,
        "deadline": ref.deadline.isoformat() if ref.deadline else None,
    }
    return OutgoingMessage(
        queue=queue,
        message_id=poll_id(ref.run, ref.run.attempt, poll),
        body=body,
        scheduled_for=at,
        properties=_properties(ref.run, ref.run.attempt),
    )


def earlier_may_have_acted(body: Mapping[str, Any], delivery_count: int) -> bool:
    """Whether an earlier delivery, or the message this one re-sends, may already have done the work."""
    return delivery_count > 1 or bool(body.get("deferrals")) or bool(body.get("repair"))


def deferred(
    queue: str, message_id: str, body: Mapping[str, Any], properties: Mapping[str, str], at: datetime
) -> OutgoingMessage:
    """The same message again at `at`, with a fresh id: its handler met a passing error."""
    n = int(body.get("deferrals", 0)) + 1
    base = message_id.removesuffix(f".d{n - 1}")
    return OutgoingMessage(
        queue=queue,
        message_id=f"{base}.d{n}",
        body={**body, "deferrals": n},
        scheduled_for=at,
        properties=dict(properties),
    )
