"""Notifications in the console (issue 14): who hears about a job's runs, a test, and each delivery.

The form adds a webhook and a Slack destination for a job's successes and shows the server's
refusal of a plain-http URL at its field; the job page says who is told about what by host (never
the URL: a Slack or Teams URL holds a token) and sends a test whose results say which destination
took it and which answered 503; the job runs on the local stack (its Databricks emulator), the
webhook gets the success, and the run's page, opened from the link the notification carries, shows
the webhook's notice delivered and the Slack one's failed try. The destinations are a loopback
receiver in this process (`tests/receiver.py`): the stack runs in a child process and posts to it.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e.console.conftest import Stack, axe_violations, horizontal_overflow, unique
from tests.e2e.console.helpers import described_by, expect
from tests.receiver import Received, Receiver, receiver

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(180)]

HOST = "127.0.0.1"  # the receiver's, as the console names a destination


def wait_for_post(r: Receiver, path: str, event: str, seconds: float = 60) -> Received:
    """The first notification (not a test) of `event` the receiver got at `path`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [x for x in r.at(path) if not x.body.get("test") and x.body.get("event") == event]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no {event} notification at {path} within {seconds} s: {r.at(path)}")


def test_notifications_are_set_tested_and_followed_to_the_run(page: Any, console_stack: Stack) -> None:
    s = console_stack
    with receiver() as r:
        r.statuses["/down"] = [503]
        name = unique("notified")
        page.goto("/console/new")
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Task kind").select_option(label="One-off run")
        page.get_by_label("Run what").select_option(label="Python file")
        page.get_by_label("Python file", exact=True).fill(str(s.scripts / "ok.py"))
        page.get_by_label("Existing cluster id").fill("local-cluster")
        page.get_by_role("checkbox", name="On a schedule").uncheck()

        # Nothing but a button until asked: the form stays short.
        notifications = page.get_by_role("group", name="Notifications", exact=True)
        expect(notifications).to_contain_text("None: nobody is told about its runs.")
        expect(notifications.get_by_role("checkbox")).to_have_count(0)
        expect(notifications.get_by_label("URL", exact=True)).to_have_count(0)

        notifications.get_by_role("button", name="Add notification").click()
        hook = notifications.get_by_role("group", name="Notification 1")
        hook.get_by_label("Event").select_option(label="Success")
        hook.get_by_label("Kind").select_option(label="Webhook (JSON)")
        hook.get_by_label("URL", exact=True).fill(r.url("/hook"))
        expect(hook.get_by_label("Signing secret")).to_be_visible()
        expect(hook).to_contain_text(f"Success → webhook ({HOST})")

        notifications.get_by_role("button", name="Add notification").click()
        slack = notifications.get_by_role("group", name="Notification 2")
        slack.get_by_label("Event").select_option(label="Success")
        slack.get_by_label("Kind").select_option(label="Slack")
        expect(slack.get_by_label("Signing secret")).to_have_count(0)
        slack.get_by_label("URL", exact=True).fill("http://example.com/hook")
        for label in (
            "Only alert on the last attempt",
            "No alerts for skipped runs",
            "No alerts for cancelled runs",
        ):
            expect(notifications.get_by_role("checkbox", name=label)).to_be_checked()

        # The server refuses plain http off loopback: its error shows at that URL, the input is kept.
        page.get_by_role("button", name="Schedule job", exact=True).click()
        url = slack.get_by_label("URL", exact=True)
        expect(url).to_have_attribute("aria-invalid", "true")
        expect(described_by(page, url)).to_contain_text("https")
        expect(url).to_be_focused()
        expect(url).to_have_value("http://example.com/hook")
        expect(hook.get_by_label("URL", exact=True)).not_to_have_attribute("aria-invalid", "true")
        assert axe_violations(page) == []

        url.fill(r.url("/down"))
        page.get_by_role("button", name="Schedule job", exact=True).click()
        confirmation = page.get_by_role("status").filter(has_text="Job scheduled")
        expect(confirmation).to_be_visible()
        found = re.search(r"[0-9A-HJKMNP-TV-Z]{26}", confirmation.inner_text())
        assert found
        job_id = found.group(0)
        saved = s.job(job_id)["notifications"]
        assert [(d["kind"], d["url"]) for d in saved["on_success"]] == [
            ("webhook", r.url("/hook")),
            ("slack", r.url("/down")),
        ]
        assert saved["on_failure"] == [] and saved["duration_warning_after"] is None
        assert (
            saved["only_on_last_attempt"]
            and saved["no_alert_for_skipped"]
            and saved["no_alert_for_cancelled"]
        )

        # The job page says who is told about what, by host: never a URL.
        confirmation.get_by_role("link", name="View job").click()
        region = page.get_by_role("region", name="Notifications")
        expect(region.get_by_role("listitem")).to_have_text([f"Success → webhook ({HOST}), Slack ({HOST})"])
        assert r.url("/") not in page.content()
        assert axe_violations(page) == []

        # A test reaches each destination once and says how each went; it records no run.
        region.get_by_role("button", name="Send test notification").click()
        results = region.get_by_role("list", name="Test results").get_by_role("listitem")
        expect(results).to_have_count(2)
        expect(region.get_by_role("status")).to_contain_text(
            "Sent a test to 2 destinations: 1 delivered, 1 failed."
        )
        expect(results.nth(0)).to_contain_text(f"webhook ({HOST}): delivered, HTTP 200")
        expect(results.nth(1)).to_contain_text(f"Slack ({HOST}): failed, HTTP 503")
        assert [x.body["test"] for x in r.at("/hook")] == [True]
        assert len(r.at("/down")) == 1
        assert s.http.get(f"/api/jobs/{job_id}/runs").json()["items"] == []
        assert axe_violations(page) == []

        # Editing shows the destinations as they were entered, and saving keeps them.
        page.get_by_role("button", name="Edit", exact=True).click()
        dialog = page.get_by_role("dialog", name=f"Edit {name}")
        edit_slack = dialog.get_by_role("group", name="Notification 2")
        expect(edit_slack.get_by_label("Kind")).to_have_value("slack")
        expect(edit_slack.get_by_label("URL", exact=True)).to_have_value(r.url("/down"))
        expect(
            dialog.get_by_role("group", name="Notification 1").get_by_label("URL", exact=True)
        ).to_have_value(r.url("/hook"))
        dialog.get_by_role("button", name="Save changes").click()
        expect(dialog).to_be_hidden()
        assert s.job(job_id)["notifications"] == saved

        # It runs: the webhook hears of the success, with the link to the run's page.
        page.get_by_role("button", name="Run now", exact=True).click()
        run = s.wait_run(job_id, {"SUCCEEDED"}, seconds=60)
        success = wait_for_post(r, "/hook", "success")
        assert success.body["run"]["id"] == run["run_id"]
        link = success.body["run"]["console_url"]
        assert link == f"{s.base}/console/jobs/{job_id}/runs/{run['run_id']}"

        page.goto(link)
        expect(page.get_by_role("heading", name=f"Run of {name}")).to_be_visible()
        table = page.get_by_role("region", name="Notifications").get_by_role("table", name="Notifications")
        rows = table.locator("tbody tr")
        expect(rows).to_have_count(2)
        delivered = rows.filter(has_text=f"webhook ({HOST})")
        expect(delivered.locator("th")).to_have_text("Success")
        expect(delivered.locator("td").nth(1)).to_have_text("Delivered", timeout=20_000)
        expect(delivered.locator("td").nth(3)).to_contain_text("delivered, HTTP 200")
        # The 503 is tried again after 15 s, then later, until it gives up: pending or failed, a try failed.
        refused = rows.filter(has_text=f"Slack ({HOST})")
        expect(refused.locator("td").nth(1)).to_have_text(re.compile(r"^(Pending|Failed)"))
        expect(refused.locator("td").nth(3)).to_contain_text("HTTP 503", timeout=20_000)
        expect(refused.locator("td").nth(3)).to_contain_text(
            re.compile(r"\d+:\d\d:\d\d [AP]M E[SD]T: HTTP 503")
        )
        assert r.url("/") not in page.content()
        assert axe_violations(page) == []

        # On a phone, the run's notifications and the job's test fit the screen.
        page.set_viewport_size({"width": 375, "height": 800})
        assert horizontal_overflow(page) == 0
        page.goto(f"/console/jobs/{job_id}")
        region.get_by_role("button", name="Send test notification").click()
        expect(region.get_by_role("list", name="Test results").get_by_role("listitem")).to_have_count(2)
        assert horizontal_overflow(page) == 0
        assert axe_violations(page) == []
