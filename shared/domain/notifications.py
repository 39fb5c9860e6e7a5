"""Notifications: who hears about a job's runs (webhook, Teams, Slack), when, and what a run records
about each delivery.

A job's `notifications` lists destinations per event. When a run's write moves it into an event
(its first attempt starts, it ends, it misses its deadline, it runs too long), the same write
records one `Notice` per destination on the run: the outbox of the notify queue. Delivering a
notice never touches the run's own progress; each try is recorded on the notice.

Everything here is pure: which notices a write adds (`new_notices`), when a failed try is tried
again (`retry_delay`), and what each destination is sent (`render`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

if TYPE_CHECKING:
    from shared.domain.run import Run

_Frozen = ConfigDict(frozen=True, extra="forbid")

SCHEMA = "ml-scheduler.notification/v1"  # the generic webhook's body (docs/api.md)
SIGNATURE_HEADER = "X-Scheduler-Signature"  # `sha256=<hex HMAC-SHA256 of the body>`
MAX_TRIES = 5
_DELAYS = (timedelta(seconds=15), timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15))

SecretRef = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
]


def _url(value: AnyUrl) -> AnyUrl:
    if value.scheme != "https" and value.host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("a destination is reached over https (plain http only on loopback)")
    return value


class WebhookDestination(BaseModel):
    """A generic webhook: POST of the JSON body documented in docs/api.md (`ml-scheduler.notification/v1`),
    signed with HMAC-SHA256 in `X-Scheduler-Signature` when `secret_ref` names a signing secret."""

    model_config = _Frozen
    kind: Literal["webhook"]
    url: AnyUrl = Field(description="Where the JSON is posted (https).")
    secret_ref: SecretRef | None = Field(
        None,
        description="The signing secret's name: app setting `NOTIFICATION_SECRET_<NAME>`, a Key Vault "
        "reference in Azure (docs/deployment.md).",
    )
    _https = field_validator("url")(_url)


class TeamsDestination(BaseModel):
    """A Microsoft Teams Workflows webhook ("Post to a channel when a webhook request is received"):
    an Adaptive Card."""

    model_config = _Frozen
    kind: Literal["teams"]
    url: AnyUrl = Field(description="The workflow's HTTP trigger URL (https).")
    _https = field_validator("url")(_url)


class SlackDestination(BaseModel):
    """A Slack incoming webhook: a message in Block Kit."""

    model_config = _Frozen
    kind: Literal["slack"]
    url: AnyUrl = Field(description="The incoming webhook URL (https).")
    _https = field_validator("url")(_url)


Destination = Annotated[WebhookDestination | TeamsDestination | SlackDestination, Field(discriminator="kind")]
Destinations = Annotated[list[Destination], Field(max_length=5)]


class NoticeEvent(StrEnum):
    """What a notice is about."""

    START = "start"  # the run's first attempt started on Databricks
    SUCCESS = "success"  # the run succeeded
    FAILURE = "failure"  # the run failed or timed out (or an attempt did: only_on_last_attempt false)
    SKIPPED = "skipped"  # the run was skipped (on_failure destinations, unless no_alert_for_skipped)
    CANCELLED = "cancelled"  # the run was cancelled (on_failure destinations, unless no_alert_for_cancelled)
    DEADLINE_MISSED = "deadline_missed"  # unfinished at its deadline
    DURATION_WARNING = "duration_warning"  # still running `duration_warning_after` after it started


class Notifications(BaseModel):
    """Who hears about the job's runs, and when."""

    model_config = _Frozen
    on_start: Destinations = Field(default_factory=list, description="When a run's first attempt starts.")
    on_success: Destinations = Field(default_factory=list, description="When a run succeeds.")
    on_failure: Destinations = Field(
        default_factory=list,
        description="When a run fails or times out (and, unless told otherwise, not when an attempt "
        "fails with a retry left); also when one is skipped or cancelled, if the flags below allow.",
    )
    on_deadline_missed: Destinations = Field(
        default_factory=list, description="When a run is unfinished at the job's `deadline`."
    )
    on_duration_warning: Destinations = Field(
        default_factory=list,
        description="When a run is still running `duration_warning_after` after it started.",
    )
    duration_warning_after: timedelta | None = Field(
        None, ge=timedelta(minutes=1), le=timedelta(days=7), description="ISO-8601 duration, e.g. PT2H."
    )
    only_on_last_attempt: bool = Field(
        True, description="A failed attempt with a retry left is not a failure (no alert storms)."
    )
    no_alert_for_skipped: bool = Field(True, description="Skipped runs notify nobody.")
    no_alert_for_cancelled: bool = Field(True, description="Cancelled runs notify nobody.")

    @model_validator(mode="after")
    def _warning_has_a_time(self) -> Notifications:
        if self.on_duration_warning and self.duration_warning_after is None:
            raise ValueError("on_duration_warning needs duration_warning_after (e.g. PT2H)")
        return self

    def destinations(
        self, event: NoticeEvent
    ) -> list[WebhookDestination | TeamsDestination | SlackDestination]:
        match event:
            case NoticeEvent.START:
                return list(self.on_start)
            case NoticeEvent.SUCCESS:
                return list(self.on_success)
            case NoticeEvent.FAILURE:
                return list(self.on_failure)
            case NoticeEvent.SKIPPED:
                return [] if self.no_alert_for_skipped else list(self.on_failure)
            case NoticeEvent.CANCELLED:
                return [] if self.no_alert_for_cancelled else list(self.on_failure)
            case NoticeEvent.DEADLINE_MISSED:
                return list(self.on_deadline_missed)
            case NoticeEvent.DURATION_WARNING:
                return list(self.on_duration_warning)

    @property
    def any(self) -> bool:
        return bool(
            self.on_start
            or self.on_success
            or self.on_failure
            or self.on_deadline_missed
            or self.on_duration_warning
        )


class NoticeState(StrEnum):
    PENDING = "pending"  # to be delivered (at `due_at`)
    DELIVERED = "delivered"
    FAILED = "failed"  # every try failed
    NOT_NEEDED = "not_needed"  # a duration warning for a run that ended in time


class DeliveryTry(BaseModel):
    """One try at delivering a notice."""

    model_config = ConfigDict(frozen=True)
    at: datetime
    status: int | None = Field(
        None, description="The HTTP status the destination answered (none: no answer)."
    )
    error: str | None = Field(None, description="Why it failed (never the URL: it may hold a token).")
    ms: int = Field(description="How long the try took.")


class Notice(BaseModel):
    """A notification a run owes a destination, and how delivering it went."""

    model_config = ConfigDict(frozen=True)
    id: str = Field(description="`{event}{attempt}.{destination index}`: unique on the run.")
    event: NoticeEvent
    attempt: int
    kind: Literal["webhook", "teams", "slack"]
    destination: int = Field(description="Its place in the event's destination list when it was recorded.")
    url: str = Field(description="Where it goes (never shown by the API: it may hold a token).")
    secret_ref: str | None = None
    host: str = Field(description="The destination's host, for people to tell destinations apart.")
    state: NoticeState = NoticeState.PENDING
    due_at: datetime = Field(description="When it is (next) to be delivered.")
    tries: list[DeliveryTry] = Field(default_factory=list)
    repairs: int = Field(0, description="Re-sends by the watchdog of a message that was lost.")

    @property
    def pending(self) -> bool:
        return self.state is NoticeState.PENDING

    def message_id(self, run_id: str) -> str:
        """The id of its current send: the first has none of the suffixes; the retry after try n
        adds `.t{n}`, the watchdog's m-th repair `.r{m}` (duplicate detection would drop a re-used id)."""
        suffix = f".t{len(self.tries)}" if self.tries else ""
        return f"{run_id}.n.{self.id}{suffix}" + (f".r{self.repairs}" if self.repairs else "")

    def tried(self, attempt: DeliveryTry, delivered: bool) -> Notice:
        """The notice with `attempt` recorded: delivered, due again after a backoff, or failed."""
        tries = [*self.tries, attempt]
        if delivered:
            return self.model_copy(update={"tries": tries, "state": NoticeState.DELIVERED})
        delay = retry_delay(len(tries))
        if delay is None:
            return self.model_copy(update={"tries": tries, "state": NoticeState.FAILED})
        return self.model_copy(update={"tries": tries, "due_at": attempt.at + delay})


def retry_delay(tries: int) -> timedelta | None:
    """How long after failed try number `tries` the next one goes (None: that was the last)."""
    if tries >= MAX_TRIES:
        return None
    return _DELAYS[min(tries, len(_DELAYS)) - 1]


def _notices(
    event: NoticeEvent, attempt: int, config: Notifications, due: datetime, existing: Sequence[Notice]
) -> list[Notice]:
    seen = {n.id for n in existing}
    out = []
    for i, dest in enumerate(config.destinations(event)):
        notice_id = f"{event.value}{attempt}.{i}"
        if notice_id in seen:
            continue
        out.append(
            Notice(
                id=notice_id,
                event=event,
                attempt=attempt,
                kind=dest.kind,
                destination=i,
                url=str(dest.url),
                secret_ref=getattr(dest, "secret_ref", None),
                host=dest.url.host or "",
                due_at=due,
            )
        )
    return out


def notifies(before: Run, after: Run) -> bool:
    """Whether the write of `after` over `before` is a move that may owe notifications (cheap: it
    decides whether the job must be read)."""
    from shared.domain.run import RunState

    if after.parent is not None:
        return False
    moved = before.state is not after.state and (
        after.state is RunState.RUNNING or after.state is RunState.RETRY_WAIT or after.state.is_terminal
    )
    return moved or (after.deadline_missed_at is not None and before.deadline_missed_at is None)


def new_notices(before: Run, after: Run, config: Notifications | None, now: datetime) -> list[Notice]:
    """The notices the write of `after` over `before` owes (none it already recorded)."""
    from shared.domain.run import RunState

    if config is None or not config.any or after.parent is not None:  # a pipeline's steps: its run notifies
        return []
    out: list[Notice] = []
    existing = after.notices
    moved = before.state is not after.state
    if (
        moved and after.state is RunState.RUNNING and after.attempt == 1
    ):  # ids keep a repair from repeating it
        out += _notices(NoticeEvent.START, 1, config, now, existing)
        if config.duration_warning_after is not None:
            out += _notices(
                NoticeEvent.DURATION_WARNING, 1, config, now + config.duration_warning_after, existing
            )
    if moved and after.state.is_terminal:
        event = {
            RunState.SUCCEEDED: NoticeEvent.SUCCESS,
            RunState.SUCCEEDED_WITH_FAILURES: NoticeEvent.FAILURE,
            RunState.FAILED: NoticeEvent.FAILURE,
            RunState.TIMED_OUT: NoticeEvent.FAILURE,
            RunState.SKIPPED: NoticeEvent.SKIPPED,
            RunState.CANCELLED: NoticeEvent.CANCELLED,
        }[after.state]
        out += _notices(event, after.attempt, config, now, [*existing, *out])
    if moved and after.state is RunState.RETRY_WAIT and not config.only_on_last_attempt:
        out += _notices(NoticeEvent.FAILURE, before.attempt, config, now, [*existing, *out])
    if after.deadline_missed_at is not None and before.deadline_missed_at is None:
        out += _notices(NoticeEvent.DEADLINE_MISSED, 1, config, now, [*existing, *out])
    return out


# What each destination is sent ------------------------------------------------------------------


def payload(notice: Notice, run: Run, job_name: str, console_url: str, now: datetime) -> dict[str, Any]:
    """The generic webhook's body (`ml-scheduler.notification/v1`); Teams and Slack render from it."""
    attempt = run.current_attempt
    started = run.transitions.get("RUNNING")
    ended = run.transitions.get(run.state.value) if run.state.is_terminal else None
    error = (attempt.error if attempt else None) or (run.reason if run.state.value != "SUCCEEDED" else None)
    return {
        "schema": SCHEMA,
        "id": f"{run.id}.{notice.id}",
        "event": notice.event.value,
        "sent_at": now.isoformat(),
        "job": {"id": run.job_id, "name": job_name, "tenant": run.tenant},
        "run": {
            "id": run.id,
            "state": run.state.value,
            "trigger": run.trigger.value,
            "attempt": notice.attempt if notice.event is NoticeEvent.FAILURE else run.attempt,
            "scheduled_for": run.scheduled_for.isoformat(),
            "started_at": started.isoformat() if started else None,
            "ended_at": ended.isoformat() if ended else None,
            "duration_seconds": int((ended or now).timestamp() - started.timestamp()) if started else None,
            "error": error,
            "deadline_at": run.deadline_at.isoformat() if run.deadline_at else None,
            "databricks_run_id": run.databricks_run_id,
            "databricks_run_url": run.run_page_url,
            "console_url": f"{console_url.rstrip('/')}/jobs/{run.job_id}/runs/{run.id}"
            if console_url
            else None,
        },
    }


_TITLES = {
    NoticeEvent.START: "started",
    NoticeEvent.SUCCESS: "succeeded",
    NoticeEvent.FAILURE: "failed",
    NoticeEvent.SKIPPED: "was skipped",
    NoticeEvent.CANCELLED: "was cancelled",
    NoticeEvent.DEADLINE_MISSED: "missed its deadline",
    NoticeEvent.DURATION_WARNING: "is running long",
}


def _title(body: dict[str, Any]) -> str:
    return f"{body['job']['name']}: run {_TITLES[NoticeEvent(body['event'])]}"


def _facts(body: dict[str, Any]) -> list[tuple[str, str]]:
    run = body["run"]
    facts = [
        ("Job", f"{body['job']['name']} ({body['job']['id']})"),
        ("Run", run["id"]),
        ("State", run["state"]),
    ]
    facts.append(("Attempt", str(run["attempt"])))
    if run["duration_seconds"] is not None:
        facts.append(("Duration", f"{run['duration_seconds']} s"))
    if run["error"]:
        facts.append(("Error", str(run["error"])[:500]))
    return facts


def _links(body: dict[str, Any]) -> list[tuple[str, str]]:
    run = body["run"]
    links = []
    if run["console_url"]:
        links.append(("Open in the console", run["console_url"]))
    if run["databricks_run_url"]:
        links.append(("Open the Databricks run", run["databricks_run_url"]))
    return links


def teams_card(body: dict[str, Any]) -> dict[str, Any]:
    """An Adaptive Card in the envelope a Teams Workflows webhook takes."""
    failed = body["event"] in ("failure", "deadline_missed", "duration_warning")
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": _title(body),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": "Attention" if failed else "Default",
            },
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(body)]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": t, "url": u} for t, u in _links(body)],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def slack_blocks(body: dict[str, Any]) -> dict[str, Any]:
    """A Slack message in Block Kit (with `text` as the notification's fallback)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _title(body)[:150]}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in _facts(body)][:10],
        },
    ]
    links = _links(body)
    if links:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": t}, "url": u} for t, u in links
                ],
            }
        )
    return {"text": _title(body), "blocks": blocks}


def render(kind: str, body: dict[str, Any], secret: str | None) -> tuple[bytes, dict[str, str]]:
    """What is posted to a destination of `kind`: the bytes and the headers (a webhook's body signed
    with `secret`, if any)."""
    shaped = teams_card(body) if kind == "teams" else slack_blocks(body) if kind == "slack" else body
    data = json.dumps(shaped, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ml-scheduler",
        "X-Scheduler-Event": body["event"],
        "X-Scheduler-Delivery": body["id"],  # the same on every try: receivers dedupe on it
    }
    if kind == "webhook" and secret:
        headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
    return data, headers


def sample_run_body(
    job_id: str, job_name: str, tenant: str, console_url: str, now: datetime
) -> dict[str, Any]:
    """What `POST /api/jobs/{id}/notifications/test` sends: a failure of a run that never was."""
    return {
        "schema": SCHEMA,
        "id": f"{job_id}_test.{int(now.timestamp())}",
        "event": NoticeEvent.FAILURE.value,
        "test": True,
        "sent_at": now.isoformat(),
        "job": {"id": job_id, "name": job_name, "tenant": tenant},
        "run": {
            "id": f"{job_id}_test",
            "state": "FAILED",
            "trigger": "manual",
            "attempt": 1,
            "scheduled_for": now.isoformat(),
            "started_at": now.isoformat(),
            "ended_at": now.isoformat(),
            "duration_seconds": 0,
            "error": "This is a test notification: nothing failed.",
            "deadline_at": None,
            "databricks_run_id": None,
            "databricks_run_url": None,
            "console_url": f"{console_url.rstrip('/')}/jobs/{job_id}" if console_url else None,
        },
    }
