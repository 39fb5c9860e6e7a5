"""Notifications, the pure part: which notices a run's move owes, the retry backoff, the watchdog's
view of a notice whose message was lost, and what each kind of destination is sent."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.domain.notifications import (
    DeliveryTry,
    Notice,
    NoticeEvent,
    NoticeState,
    Notifications,
    new_notices,
    notifies,
    payload,
    render,
    retry_delay,
)
from shared.domain.policies import WatchAction, WatchPolicy, watch_action, watch_at
from shared.domain.run import Attempt, AttemptResult, Run, RunState

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
HOOK = {"kind": "webhook", "url": "https://hooks.example.com/a"}
SLACK = {"kind": "slack", "url": "https://hooks.slack.com/services/T/B/x"}


def config(**kw: object) -> Notifications:
    return Notifications.model_validate(kw)


def run(state: RunState = RunState.SCHEDULED, attempt: int = 1, **kw: object) -> Run:
    r = Run.manual(tenant="t", job_id="j", run_key="m-01J0Z0000000000000000000AA", job_version=1, now=NOW)
    return r.model_copy(update={"state": state, "attempt": attempt, **kw})


def moved(before: Run, state: RunState, **kw: object) -> Run:
    return before.model_copy(update={"state": state, **kw})


def notice_to(kind: str, event: NoticeEvent = NoticeEvent.FAILURE) -> Notice:
    """A notice of attempt 1 owed to destination 0 of `kind`, due at NOW."""
    return Notice.model_validate(
        {
            "id": f"{event.value}1.0",
            "event": event,
            "attempt": 1,
            "kind": kind,
            "destination": 0,
            "url": "https://x",
            "host": "x",
            "due_at": NOW,
        }
    )


def owed(before: Run, after: Run, c: Notifications) -> list[tuple[str, str]]:
    return [(n.id, n.kind) for n in new_notices(before, after, c, NOW)]


def test_each_move_owes_its_events_notices_once() -> None:
    c = config(on_start=[HOOK], on_success=[HOOK, SLACK], on_failure=[SLACK])
    launching = run(RunState.LAUNCHING)
    running = moved(launching, RunState.RUNNING)
    assert owed(launching, running, c) == [("start1.0", "webhook")]
    assert owed(running, moved(running, RunState.SUCCEEDED), c) == [
        ("success1.0", "webhook"),
        ("success1.1", "slack"),
    ]
    assert owed(running, moved(running, RunState.FAILED), c) == [("failure1.0", "slack")]
    # a repair that runs the pipeline run again owes no second start: the id is taken
    started = running.model_copy(update={"notices": new_notices(launching, running, c, NOW)})
    assert owed(moved(started, RunState.FAILED), started, c) == []
    assert not notifies(running, running.model_copy(update={"reason": "x"}))  # no move: no read of the job


def test_a_failed_attempt_with_a_retry_left_is_quiet_unless_asked() -> None:
    running = run(RunState.RUNNING)
    waiting = moved(running, RunState.RETRY_WAIT, attempt=2)
    assert owed(running, waiting, config(on_failure=[HOOK])) == []
    assert owed(running, waiting, config(on_failure=[HOOK], only_on_last_attempt=False)) == [
        ("failure1.0", "webhook")
    ]
    second = moved(waiting, RunState.RUNNING)
    assert owed(waiting, second, config(on_start=[HOOK])) == []  # a retry is not a start
    assert owed(second, moved(second, RunState.FAILED), config(on_failure=[HOOK])) == [
        ("failure2.0", "webhook")
    ]


def test_skipped_and_cancelled_are_quiet_by_default() -> None:
    s = run(RunState.SCHEDULED)
    for state in (RunState.SKIPPED, RunState.CANCELLED):
        assert owed(s, moved(s, state), config(on_failure=[HOOK])) == []
    loud = config(on_failure=[HOOK], no_alert_for_skipped=False, no_alert_for_cancelled=False)
    assert owed(s, moved(s, RunState.SKIPPED), loud) == [("skipped1.0", "webhook")]
    assert owed(s, moved(s, RunState.CANCELLED), loud) == [("cancelled1.0", "webhook")]


def test_deadline_and_duration_warning() -> None:
    c = config(on_deadline_missed=[HOOK], on_duration_warning=[SLACK], duration_warning_after="PT2H")
    launching = run(RunState.LAUNCHING)
    notices = new_notices(launching, moved(launching, RunState.RUNNING), c, NOW)
    assert [(n.id, n.due_at) for n in notices] == [("duration_warning1.0", NOW + timedelta(hours=2))]
    r = run(RunState.RUNNING)
    assert owed(r, r.model_copy(update={"deadline_missed_at": NOW}), c) == [("deadline_missed1.0", "webhook")]


def test_a_pipelines_steps_notify_nobody() -> None:
    step = run(RunState.LAUNCHING).model_copy(update={"parent": "m-01J0Z0000000000000000000AA", "step": "a"})
    assert owed(step, moved(step, RunState.RUNNING), config(on_start=[HOOK])) == []


def test_retries_back_off_then_give_up() -> None:
    assert [retry_delay(n) for n in range(1, 6)] == [
        timedelta(seconds=15),
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=15),
        None,
    ]
    notice = notice_to("webhook")
    for n in range(1, 6):
        notice = notice.tried(
            DeliveryTry(at=notice.due_at, status=500, error="HTTP 500", ms=3), delivered=False
        )
        assert notice.message_id("j_r") == f"j_r.n.failure1.0.t{n}"
    assert notice.state is NoticeState.FAILED and len(notice.tries) == 5


def test_the_watchdog_looks_at_an_ended_run_only_while_it_owes_a_notice() -> None:
    policy = WatchPolicy()
    ended = run(RunState.SUCCEEDED)
    assert watch_at(ended, policy, NOW) is None
    notice = notice_to("slack", NoticeEvent.SUCCESS)
    owing = ended.model_copy(update={"notices": [notice]})
    at = watch_at(owing, policy, NOW)
    assert at == NOW + policy.grace
    owing = owing.model_copy(update={"watch_at": at})
    assert watch_action(owing, at, at, policy) is WatchAction.NOTIFY
    done = owing.with_notice(notice.model_copy(update={"state": NoticeState.DELIVERED}))
    assert watch_at(done, policy, NOW) is None and watch_action(done, at, at, policy) is WatchAction.DROP


def test_destinations_are_https_and_bounded() -> None:
    for bad in (
        {"on_failure": [{"kind": "webhook", "url": "http://example.com"}]},
        {"on_failure": [HOOK] * 6},
        {"on_duration_warning": [HOOK]},
        {"on_failure": [{**HOOK, "secret_ref": "UPPER"}]},
        {"on_failure": [{**SLACK, "secret_ref": "a"}]},
    ):
        with pytest.raises(ValidationError):
            Notifications.model_validate(bad)
    assert config(
        on_failure=[{"kind": "webhook", "url": "http://127.0.0.1:8080/x"}]
    ).any  # loopback: local stack


def _ended_run() -> Run:
    r = run(RunState.FAILED, transitions={"RUNNING": NOW, "FAILED": NOW + timedelta(minutes=7)})
    return r.model_copy(
        update={
            "attempts": [
                Attempt(number=1, result=AttemptResult.FAILED, error="OOM on driver", databricks_run_id=9)
            ],
            "databricks_run_id": 9,
            "run_page_url": "https://adb.example.net/#job/1/run/9",
        }
    )


def test_the_generic_body_and_its_signature() -> None:
    r = _ended_run()
    notice = notice_to("webhook")
    body = payload(notice, r, "churn", "https://s.example.com/console", NOW)
    assert body["run"]["duration_seconds"] == 420 and body["run"]["error"] == "OOM on driver"
    assert body["run"]["console_url"] == f"https://s.example.com/console/jobs/j/runs/{r.id}"
    data, headers = render("webhook", body, "k")
    assert json.loads(data) == body and headers["X-Scheduler-Event"] == "failure"
    assert headers["X-Scheduler-Signature"] == "sha256=" + hmac.new(b"k", data, hashlib.sha256).hexdigest()
    assert "X-Scheduler-Signature" not in render("webhook", body, None)[1]


def test_teams_gets_an_adaptive_card_and_slack_blocks() -> None:
    r = _ended_run()
    notice = notice_to("teams")
    body = payload(notice, r, "churn", "", NOW)
    card = json.loads(render("teams", body, None)[0])["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["version"] == "1.4" and card["content"]["body"][0]["color"] == "Attention"
    assert [a["title"] for a in card["content"]["actions"]] == [
        "Open the Databricks run"
    ]  # no console url set
    slack = json.loads(render("slack", body, None)[0])
    assert slack["text"] == "churn: run failed"
    assert {"type": "mrkdwn", "text": "*Error*\nOOM on driver"} in slack["blocks"][1]["fields"]


def test_an_unresolved_key_vault_reference_is_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.adapters.webhooks import secret_from_settings

    monkeypatch.setenv("NOTIFICATION_SECRET_ML_HOOK", "s3cret")
    assert secret_from_settings("ml-hook") == "s3cret"
    # App Service passes a reference it could not resolve as its text: never sign with that
    monkeypatch.setenv(
        "NOTIFICATION_SECRET_ML_HOOK",
        "@Microsoft.KeyVault(VaultName=v;SecretName=notification-secret-ml-hook)",
    )
    assert secret_from_settings("ml-hook") is None
    assert secret_from_settings("unset") is None


def test_a_dead_letter_repairs_the_runs_own_chain_even_while_it_owes_a_notice() -> None:
    policy = WatchPolicy()
    owing = run(RunState.RUNNING).model_copy(update={"notices": [notice_to("webhook", NoticeEvent.START)]})
    at = NOW + policy.grace
    owing = owing.model_copy(update={"watch_at": at})
    assert watch_action(owing, at, at, policy) is WatchAction.NOTIFY
    assert watch_action(owing, at, at, policy, notices=False) is WatchAction.CHECK_DATABRICKS
