"""Notifications (issue 14): a run's moves owe notices, recorded in the same write as the move, and
delivered through the notify queue with retries; a destination that is down, slow or failing
delays nothing else and loses nothing. Through the whole host loop (World), on memory tables and
on Azurite, with a recording poster, and over real HTTP to the loopback receiver."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import pytest

from shared.adapters.webhooks import HttpPoster
from shared.domain.notifications import NoticeState
from shared.domain.run import FailureKind, RunState
from tests.conftest import TableFactory
from tests.fakes.databricks import FakeOutcome
from tests.fakes.poster import FakePoster
from tests.receiver import receiver
from tests.world import T0, World

HOOK = "https://hooks.example.com/ml"
TEAMS = "https://prod.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke"
SLACK = "https://hooks.slack.com/services/T0/B0/XYZ"
AT = {"at": "2026-06-01T12:05:00Z"}
FAIL = FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR", "boom")


def notifying(w: World, notifications: dict[str, Any], **overrides: Any) -> Any:
    return w.job(**{"schedule": AT, **overrides}, notifications=notifications)


def bodies(poster: FakePoster, url: str = HOOK) -> list[dict[str, Any]]:
    return [p.body for p in poster.to(url)]


def test_a_failure_with_retries_left_is_not_a_failure_unless_asked(table_factory: TableFactory) -> None:
    w = World(table_factory)
    retry = {"max_attempts": 2, "initial_delay": "PT1M", "retry_on": "any"}
    job = notifying(w, {"on_failure": [{"kind": "webhook", "url": HOOK}]}, retry=retry)
    chatty = notifying(
        w,
        {"on_failure": [{"kind": "webhook", "url": HOOK + "/all"}], "only_on_last_attempt": False},
        name="chatty",
        retry=retry,
    )
    w.fake.outcomes.extend([FAIL] * 4)
    w.run_until(T0 + timedelta(minutes=30))
    assert w.run(job).state is RunState.FAILED and w.run(chatty).state is RunState.FAILED
    [last] = bodies(w.poster)
    assert last["event"] == "failure" and last["run"]["attempt"] == 2 and last["run"]["state"] == "FAILED"
    assert last["run"]["error"] == "boom" and last["job"] == {
        "id": job.id,
        "name": "train",
        "tenant": "team-a",
    }
    assert [b["run"]["attempt"] for b in bodies(w.poster, HOOK + "/all")] == [1, 2]
    assert [n.state for n in w.run(chatty).notices] == [NoticeState.DELIVERED] * 2


def test_start_and_success_reach_each_kind_of_destination(table_factory: TableFactory) -> None:
    w = World(table_factory, settings={"CONSOLE_URL": "https://sched.example.com/console/"})
    job = notifying(
        w,
        {
            "on_start": [{"kind": "teams", "url": TEAMS}],
            "on_success": [{"kind": "slack", "url": SLACK}, {"kind": "webhook", "url": HOOK}],
        },
    )
    w.run_until(T0 + timedelta(minutes=15))
    run = w.run(job)
    assert run.state is RunState.SUCCEEDED
    [card] = bodies(w.poster, TEAMS)
    content = card["attachments"][0]["content"]
    assert card["type"] == "message" and content["type"] == "AdaptiveCard"
    assert content["body"][0]["text"] == "train: run started"
    assert {"title": "Run", "value": run.id} in content["body"][1]["facts"]
    links = {a["title"]: a["url"] for a in content["actions"]}
    assert links["Open in the console"] == f"https://sched.example.com/console/jobs/{job.id}/runs/{run.id}"
    assert links["Open the Databricks run"] == run.run_page_url
    [slack] = bodies(w.poster, SLACK)
    assert slack["text"] == "train: run succeeded" and slack["blocks"][0]["type"] == "header"
    [hook] = bodies(w.poster, HOOK)
    assert hook["schema"] == "ml-scheduler.notification/v1" and hook["event"] == "success"
    assert hook["run"]["id"] == run.id and hook["run"]["databricks_run_id"] == run.databricks_run_id
    assert [(n.event.value, n.kind, n.state.value) for n in run.notices] == [
        ("start", "teams", "delivered"),
        ("success", "slack", "delivered"),
        ("success", "webhook", "delivered"),
    ]
    assert all(len(n.tries) == 1 and n.tries[0].status == 200 for n in run.notices)


def test_a_destination_that_keeps_failing_is_retried_with_backoff_then_recorded_failed(
    table_factory: TableFactory,
) -> None:
    poster = FakePoster(answer=lambda url: (500, None) if url == HOOK else (200, None))
    w = World(table_factory, poster=poster)
    good = HOOK + "/good"
    job = notifying(w, {"on_success": [{"kind": "webhook", "url": HOOK}, {"kind": "webhook", "url": good}]})
    other = w.job(name="other", schedule=AT)
    w.run_until(T0 + timedelta(hours=1))
    run = w.run(job)
    # the run and the job next to it ended as they would have: nothing waited on the destination
    assert run.state is RunState.SUCCEEDED and w.run(other).state is RunState.SUCCEEDED
    assert run.transitions["SUCCEEDED"] == w.run(other).transitions["SUCCEEDED"]
    failing, delivered = run.notices
    assert delivered.state is NoticeState.DELIVERED and len(poster.to(good)) == 1
    assert failing.state is NoticeState.FAILED and len(poster.to(HOOK)) == 5
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(failing.tries, failing.tries[1:], strict=False)]
    assert gaps == [15, 60, 300, 900]
    assert {t.error for t in failing.tries} == {"HTTP 500"}
    # every try carried the same delivery id: a receiver can drop copies
    assert len({p.headers["X-Scheduler-Delivery"] for p in poster.to(HOOK)}) == 1
    assert run.watch_at is None  # nothing left for the watchdog


def test_a_lost_notify_message_is_sent_again_by_the_watchdog(table_factory: TableFactory) -> None:
    w = World(table_factory)
    job = notifying(w, {"on_success": [{"kind": "webhook", "url": HOOK}]})
    lost: list[str] = []  # the first notify message sent never reaches the queue
    original = w.broker.send

    def send(messages: Any) -> None:
        kept = [
            m for m in messages if not (m.queue == "notify" and not lost and not lost.append(m.message_id))
        ]
        original(kept)

    w.broker.send = send  # type: ignore[method-assign]
    w.run_until(T0 + timedelta(minutes=20))
    run = w.run(job)
    assert lost and run.state is RunState.SUCCEEDED
    [notice] = run.notices
    assert notice.state is NoticeState.DELIVERED and notice.repairs == 1
    assert len(w.poster.to(HOOK)) == 1


def test_a_crash_after_the_post_posts_again_with_the_same_delivery_id(table_factory: TableFactory) -> None:
    crashed: list[str] = []

    def crash_once(url: str) -> tuple[int, None]:
        if not crashed:
            crashed.append(url)
            raise RuntimeError("the host died after the post, before its record")
        return 200, None

    w = World(table_factory, poster=FakePoster(answer=crash_once))
    job = notifying(w, {"on_failure": [{"kind": "webhook", "url": HOOK}]})
    w.fake.outcomes.append(FAIL)
    w.run_until(T0 + timedelta(minutes=20))
    [notice] = w.run(job).notices
    posts = w.poster.to(HOOK)
    # at least once: posted by the crashed delivery and by the redelivery, recorded once
    assert crashed and len(posts) == 2 and notice.state is NoticeState.DELIVERED
    assert posts[0].headers["X-Scheduler-Delivery"] == posts[1].headers["X-Scheduler-Delivery"]
    assert len(notice.tries) == 1


def test_duration_warning_only_for_a_run_still_running(table_factory: TableFactory) -> None:
    w = World(table_factory)
    config = {"on_duration_warning": [{"kind": "webhook", "url": HOOK}], "duration_warning_after": "PT30M"}
    slow = notifying(w, config, name="slow")
    quick = notifying(
        w,
        {**config, "on_duration_warning": [{"kind": "webhook", "url": HOOK + "/q"}]},
        name="quick",
        schedule={"at": "2026-06-01T12:07:00Z"},  # launched after `slow`, which takes the HANG
    )
    w.fake.outcomes.extend([FakeOutcome.HANG, FakeOutcome.SUCCESS])
    w.run_until(T0 + timedelta(minutes=15))  # quick ended; its warning would be due at 12:37
    [early] = w.run(quick).notices
    assert w.run(quick).state is RunState.SUCCEEDED and early.state is NoticeState.NOT_NEEDED
    assert w.run(quick).watch_at is None  # settled by the ending write: nothing left to watch
    w.run_until(T0 + timedelta(minutes=50))
    [warning] = bodies(w.poster)
    assert warning["event"] == "duration_warning" and warning["run"]["state"] == "RUNNING"
    assert warning["run"]["duration_seconds"] >= 30 * 60
    assert w.poster.to(HOOK + "/q") == []
    [not_needed] = w.run(quick).notices
    assert w.run(quick).state is RunState.SUCCEEDED and not_needed.state is NoticeState.NOT_NEEDED
    assert w.run(slow).notices[0].state is NoticeState.DELIVERED


def test_deadline_missed_and_the_quiet_defaults_for_skipped_and_cancelled(
    table_factory: TableFactory,
) -> None:
    w = World(table_factory)
    late = notifying(
        w, {"on_deadline_missed": [{"kind": "webhook", "url": HOOK + "/late"}]}, name="late", deadline="PT10M"
    )
    quiet = notifying(w, {"on_failure": [{"kind": "webhook", "url": HOOK + "/quiet"}]}, name="quiet")
    loud = notifying(
        w,
        {"on_failure": [{"kind": "webhook", "url": HOOK + "/loud"}], "no_alert_for_cancelled": False},
        name="loud",
    )
    w.fake.outcomes.extend([FakeOutcome.HANG, FakeOutcome.HANG, FakeOutcome.HANG])
    w.run_until(T0 + timedelta(minutes=8))
    for job in (quiet, loud):
        w.s.run_commands.cancel(job.tenant, job.id, w.run(job).run_key, "not needed today")
    w.run_until(T0 + timedelta(minutes=30))
    assert [b["event"] for b in bodies(w.poster, HOOK + "/late")] == ["deadline_missed"]
    assert w.run(late).deadline_missed_at is not None
    assert w.run(quiet).state is RunState.CANCELLED and w.poster.to(HOOK + "/quiet") == []
    [cancelled] = bodies(w.poster, HOOK + "/loud")
    assert cancelled["event"] == "cancelled" and cancelled["run"]["state"] == "CANCELLED"


def test_a_signed_webhook_carries_the_hmac_of_its_body(
    table_factory: TableFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFICATION_SECRET_ML_HOOK", "s3cret")
    w = World(table_factory)
    job = notifying(
        w,
        {
            "on_success": [
                {"kind": "webhook", "url": HOOK, "secret_ref": "ml-hook"},
                {"kind": "webhook", "url": HOOK + "/unset", "secret_ref": "not-set"},
            ]
        },
    )
    w.run_until(T0 + timedelta(hours=1))
    [post] = w.poster.to(HOOK)
    expected = hmac.new(b"s3cret", post.data, hashlib.sha256).hexdigest()
    assert post.headers["X-Scheduler-Signature"] == f"sha256={expected}"
    # a secret that is not set is never replaced by sending unsigned: the notice fails, saying why
    assert w.poster.to(HOOK + "/unset") == []
    unset = w.run(job).notices[1]
    assert (
        unset.state is NoticeState.FAILED and unset.tries[-1].error == "signing secret 'not-set' is not set"
    )


def test_over_real_http_a_slow_or_failing_receiver_holds_up_nothing(table_factory: TableFactory) -> None:
    with receiver() as r:
        w = World(table_factory, poster=HttpPoster(), settings={"NOTIFICATION_TIMEOUT_SECONDS": 0.3})
        r.statuses["/flaky"] = [500, 200]
        job = notifying(
            w,
            {
                "on_failure": [
                    {"kind": "webhook", "url": r.url("/flaky")},
                    {"kind": "slack", "url": r.url("/slack")},
                ]
            },
        )
        w.fake.outcomes.append(FAIL)
        w.run_until(T0 + timedelta(minutes=10))
        flaky, slack = w.run(job).notices
        assert [t.status for t in flaky.tries] == [500, 200] and flaky.state is NoticeState.DELIVERED
        assert slack.state is NoticeState.DELIVERED and r.at("/slack")[0].body["text"] == "train: run failed"
        r.delay = 2.0  # slower than the timeout: a failed try, retried
        other = notifying(
            w,
            {"on_success": [{"kind": "webhook", "url": r.url("/slow")}]},
            name="other",
            schedule={"at": "2026-06-01T12:15:00Z"},
        )
        w.run_until(T0 + timedelta(minutes=20))
        [slow] = w.run(other).notices
        assert w.run(other).state is RunState.SUCCEEDED
        assert slow.tries[0].status is None and slow.tries[0].error == "no answer within 0.3 s"
        assert slow.state is NoticeState.PENDING


@pytest.mark.parametrize("kind", ["fake", "http"])
def test_posters_keep_the_same_contract(kind: str) -> None:
    with receiver() as r:
        r.statuses["/bad"] = [503]
        poster: Any = (
            HttpPoster()
            if kind == "http"
            else FakePoster(answer=lambda url: (503, None) if url.endswith("/bad") else (204, None))
        )
        if kind == "http":
            r.statuses["/ok"] = [204]
        assert poster.post(r.url("/ok"), b"{}", {"Content-Type": "application/json"}, 2.0) == (204, None)
        status, error = poster.post(r.url("/bad"), b"{}", {"Content-Type": "application/json"}, 2.0)
        assert status == 503 and error is not None and error.startswith("HTTP 503")
        assert "127.0.0.1" not in error  # never the URL: it may hold a token


def test_http_poster_says_why_without_the_url() -> None:
    with receiver() as r:
        url = r.url("/gone")
    status, error = HttpPoster().post(url, b"{}", {}, 1.0)  # the receiver has stopped: refused
    assert status is None and error == "could not connect"
