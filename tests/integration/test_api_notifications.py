"""The API of notifications (issue 14) on Azurite, over real HTTP to the loopback receiver: a job's
`notifications`, `POST /api/jobs/{job_id}/notifications/test`, how a run shows its deliveries
(never their URLs), and the errors that change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.http_api import create_api
from shared.bootstrap import Services
from shared.domain.notifications import DeliveryTry, Notice, NoticeEvent, NoticeState
from shared.domain.run import Run
from tests.integration.test_api import PROBLEM, A, B, all_rows, body, create, make_services
from tests.receiver import Receiver, receiver

pytestmark = pytest.mark.azurite


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
def services(azure_service: Any) -> Services:
    return make_services(azure_service, CONSOLE_URL="https://sched.example.com/console")


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_api(lambda: services)) as c:
        yield c


def test_a_job_keeps_its_notifications_and_the_test_reaches_each_destination(
    client: TestClient, hooks: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFICATION_SECRET_ML_HOOK", "s3cret")
    hooks.statuses["/down"] = [503]
    notifications = {
        "on_failure": [
            {"kind": "webhook", "url": hooks.url("/hook"), "secret_ref": "ml-hook"},
            {"kind": "teams", "url": hooks.url("/teams")},
            {"kind": "slack", "url": hooks.url("/down")},
        ],
        "on_success": [{"kind": "webhook", "url": hooks.url("/hook"), "secret_ref": "ml-hook"}],
        "on_duration_warning": [{"kind": "slack", "url": hooks.url("/down")}],
        "duration_warning_after": "PT2H",
    }
    job = create(client, notifications=notifications)
    read = client.get(f"/api/jobs/{job['job_id']}", headers=A).json()
    assert read["notifications"]["on_failure"][0] == notifications["on_failure"][0]  # type: ignore[index]
    assert read["notifications"]["only_on_last_attempt"] is True
    assert read["notifications"]["no_alert_for_skipped"] is True
    r = client.post(f"/api/jobs/{job['job_id']}/notifications/test", headers=A)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    # each destination once, however many events list it
    assert [(i["kind"], i["delivered"], i["status"]) for i in items] == [
        ("webhook", True, 200),
        ("teams", True, 200),
        ("slack", False, 503),
    ]
    assert items[2]["error"].startswith("HTTP 503") and "127.0.0.1" not in items[2]["error"]
    [sample] = hooks.at("/hook")
    assert sample.body["test"] is True and sample.body["event"] == "failure"
    assert sample.headers["X-Scheduler-Signature"].startswith("sha256=")
    assert sample.body["run"]["console_url"] == f"https://sched.example.com/console/jobs/{job['job_id']}"
    assert hooks.at("/teams")[0].body["attachments"][0]["content"]["type"] == "AdaptiveCard"


def test_the_test_needs_destinations_and_the_callers_own_job(client: TestClient, hooks: Receiver) -> None:
    plain = create(client)
    r = client.post(f"/api/jobs/{plain['job_id']}/notifications/test", headers=A)
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM and "no notification" in r.text
    job = create(client, notifications={"on_failure": [{"kind": "webhook", "url": hooks.url()}]})
    assert client.post(f"/api/jobs/{job['job_id']}/notifications/test", headers=B).status_code == 404
    assert hooks.received == []


def test_bad_notifications_are_refused_and_change_nothing(client: TestClient, services: Services) -> None:
    before = all_rows(services)
    hook = {"kind": "webhook", "url": "https://hooks.example.com/x"}
    cases: list[tuple[Any, str]] = [
        ({"on_failure": [{"kind": "webhook", "url": "http://hooks.example.com/x"}]}, "https"),
        ({"on_failure": [{"kind": "email", "url": "https://x.example.com"}]}, "kind"),
        ({"on_failure": [{"kind": "webhook", "url": "not a url"}]}, "url"),
        ({"on_failure": [hook] * 6}, "on_failure"),
        ({"on_duration_warning": [hook]}, "duration_warning_after"),
        ({"on_failure": [{**hook, "secret_ref": "Has Spaces"}]}, "secret_ref"),
        (
            {"on_failure": [{"kind": "teams", "url": "https://x.example.com", "secret_ref": "a"}]},
            "secret_ref",
        ),
        ({"on_fail": [hook]}, "on_fail"),
        ({"duration_warning_after": "PT10S", "on_duration_warning": [hook]}, "duration_warning_after"),
    ]
    for notifications, says in cases:
        r = client.post("/api/jobs/schedule", json=body(notifications=notifications), headers=A)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (notifications, r.text)
        assert says in r.text and "notifications" in r.text, (notifications, r.text)
    r = client.post(
        "/api/jobs/schedule",
        json=body(notifications={"on_failure": [hook, {"kind": "slack", "url": "http://hooks.slack.com/x"}]}),
        headers=A,
    )
    assert list(r.json()["errors"]) == ["notifications.on_failure.1.url"]  # as sent: no union tag
    assert all_rows(services) == before


def test_a_run_shows_its_deliveries_but_never_their_urls(client: TestClient, services: Services) -> None:
    job = create(
        client, notifications={"on_failure": [{"kind": "slack", "url": "https://hooks.slack.com/T/B/secret"}]}
    )
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    stored = services.job_repository.get("team-a", job["job_id"])[0]
    run = Run.manual(
        tenant="team-a",
        job_id=job["job_id"],
        run_key="m-01J0Z0000000000000000000AA",
        job_version=1,
        now=now,
        shard=services.due_index.shard_for(stored),
    )
    notice = Notice(
        id="failure1.0",
        event=NoticeEvent.FAILURE,
        attempt=1,
        kind="slack",
        destination=0,
        url="https://hooks.slack.com/T/B/secret",
        host="hooks.slack.com",
        state=NoticeState.PENDING,
        due_at=now,
        tries=[DeliveryTry(at=now, status=500, error="HTTP 500", ms=12)],
    )
    services.run_repository.add(run.model_copy(update={"notices": [notice]}))
    r = client.get(f"/api/runs/{run.id}", headers=A)
    assert r.status_code == 200, r.text
    assert r.json()["notifications"] == [
        {
            "id": "failure1.0",
            "event": "failure",
            "attempt": 1,
            "kind": "slack",
            "destination": 0,
            "host": "hooks.slack.com",
            "state": "pending",
            "due_at": "2026-06-01T12:00:00Z",
            "tries": [{"at": "2026-06-01T12:00:00Z", "status": 500, "error": "HTTP 500", "ms": 12}],
        }
    ]
    assert "secret" not in r.text.replace("secret_ref", "")


def test_the_audit_trail_keeps_a_destinations_host_not_its_url(client: TestClient) -> None:
    slack = {"kind": "slack", "url": "https://hooks.slack.com/services/T0/B0/secret-token"}
    job = create(client, notifications={"on_failure": [slack]})
    edited = body(
        notifications={"on_failure": [{**slack, "url": "https://hooks.slack.com/services/T0/B0/new"}]}
    )
    assert client.put(f"/api/jobs/{job['job_id']}", json=edited, headers=A).status_code == 200
    trail = client.get(f"/api/jobs/{job['job_id']}/audit", headers=A).text
    assert "secret-token" not in trail and "/B0/new" not in trail
    assert "https://hooks.slack.com/…" in trail
