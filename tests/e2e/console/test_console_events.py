"""Event triggers in the console (issue 13): a job that runs when files arrive or when it is called.

The form makes a job with a file arrival and a webhook trigger (and no schedule) and shows the
server's refusal at its field; the job page says the triggers in words, shows the webhook's URL
and a curl example, and calls it through its "Trigger…" dialog (once per Idempotency-Key); the
runs say why they started ("Webhook {key}", "1 file") and their details show the cause; webhook
calls recorded as skipped while the job was paused run once it is resumed and they are replayed
("Replay skipped events…"), each once. A file
is written to the local stack's Azurite Blob service, whose events reach the scheduler as Event
Grid's do in Azure (the stack runs in a child process: its `services` are not reachable from here).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e.console.conftest import Stack, axe_violations, horizontal_overflow, unique
from tests.e2e.console.helpers import described_by, expect, fact

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(180)]

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def wait_for_run(stack: Stack, job_id: str, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        items = stack.http.get(f"/api/jobs/{job_id}/runs").json()["items"]
        if items:
            return dict(items[0])
        time.sleep(0.3)
    raise AssertionError(f"no run of job {job_id} within {seconds} s")


def test_a_job_with_file_and_webhook_triggers_is_made_in_the_form(page: Any, console_stack: Stack) -> None:
    name = unique("sales-load")
    page.goto("/console/new")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Job type").select_option("data_processing")
    page.get_by_label("Databricks job id").fill("123")
    page.get_by_role("checkbox", name="On a schedule").uncheck()
    expect(page.get_by_text("No schedule and no triggers:")).to_be_visible()

    page.get_by_role("button", name="Add “When files arrive”").click()
    files = page.get_by_role("group", name="When files arrive")
    files.get_by_label("Container", exact=True).fill("Landing_Zone")
    files.get_by_label("Prefix", exact=True).fill("sales/")
    files.get_by_label("Suffix", exact=True).fill(".parquet")
    files.get_by_label("Storage account (optional)").fill("salesacct")
    files.get_by_label("Wait after last change", exact=True).fill("1")
    files.get_by_label("Minimum time between runs", exact=True).fill("300")
    files.get_by_label("Minimum time between runs unit").select_option("seconds")
    expect(files).to_contain_text(
        "When a blob is created in salesacct: Landing_Zone/sales/*.parquet, waiting 1 minute after the last "
        "file, at most one run every 5 minutes"
    )
    page.get_by_role("button", name="Add “When called (webhook)”").click()
    expect(page.get_by_role("button", name="Add “When called (webhook)”")).to_have_count(0)
    page.get_by_role("radio", name="Record them as skipped runs").check()

    # The server refuses the container name: its error shows at the field, the input is kept.
    page.get_by_role("button", name="Schedule job", exact=True).click()
    container = files.get_by_label("Container", exact=True)
    expect(container).to_have_attribute("aria-invalid", "true")
    expect(described_by(page, container)).to_have_text(
        "Not a container name: 3 to 63 lowercase letters, digits and single hyphens, starting and ending "
        "with a letter or digit."
    )
    expect(container).to_be_focused()
    expect(container).to_have_value("Landing_Zone")
    assert axe_violations(page) == []

    container.fill("landing")
    page.get_by_role("button", name="Schedule job", exact=True).click()
    confirmation = page.get_by_role("status").filter(has_text="Job scheduled")
    expect(confirmation).to_contain_text("It has no schedule: it runs when its triggers fire.")
    found = re.search(r"[0-9A-HJKMNP-TV-Z]{26}", confirmation.inner_text())
    assert found
    job_id = found.group(0)

    saved = console_stack.job(job_id)
    assert saved["name"] == name and saved["schedule"] is None
    assert saved["record_skipped_while_paused"] is True
    assert saved["triggers"] == [
        {
            "kind": "file_arrival",
            "container": "landing",
            "prefix": "sales/",
            "suffix": ".parquet",
            "account": "salesacct",
            "min_time_between_triggers": "PT5M",
            "wait_after_last_change": "PT1M",
        },
        {"kind": "webhook"},
    ]

    confirmation.get_by_role("link", name="View job").click()
    triggers = page.get_by_role("region", name="Triggers")
    expect(triggers).to_contain_text(
        "When a blob is created in salesacct: landing/sales/*.parquet, waiting 1 minute after the last file, "
        "at most one run every 5 minutes"
    )
    expect(triggers).to_contain_text("While the job is paused, files and webhook calls")
    expect(triggers).to_contain_text("are recorded as skipped runs")
    schedule = fact(page, "Schedule")
    expect(schedule).to_have_text("No schedule: runs when files arrive or when called (webhook)")

    # Editing keeps the triggers as they were entered.
    page.get_by_role("button", name="Edit", exact=True).click()
    dialog = page.get_by_role("dialog", name=f"Edit {name}")
    edit_files = dialog.get_by_role("group", name="When files arrive")
    expect(edit_files.get_by_label("Container", exact=True)).to_have_value("landing")
    expect(edit_files.get_by_label("Minimum time between runs", exact=True)).to_have_value("5")
    expect(edit_files.get_by_label("Minimum time between runs unit")).to_have_value("minutes")
    expect(dialog.get_by_role("radio", name="Record them as skipped runs")).to_be_checked()
    dialog.get_by_role("textbox", name="Description").fill("each drop of sales files")
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog).to_be_hidden()
    after = console_stack.job(job_id)
    assert after["description"] == "each drop of sales files"
    assert after["triggers"] == saved["triggers"] and after["schedule"] is None


def test_a_webhook_is_called_from_the_job_page_and_its_run_says_why(page: Any, console_stack: Stack) -> None:
    s = console_stack
    job = s.create(unique("score"), schedule=None, triggers=[{"kind": "webhook"}])
    job_id = job["job_id"]
    page.goto("/console/")  # the list says what starts a job without a schedule
    row = page.locator("tr", has_text=job["name"])
    expect(row).to_contain_text("No schedule: runs when called (webhook)")
    page.goto(f"/console/jobs/{job_id}")
    triggers = page.get_by_role("region", name="Triggers")
    url = f"{s.base}/api/jobs/{job_id}/trigger"
    expect(fact(triggers, "Endpoint")).to_have_text(url)
    expect(triggers.locator("pre")).to_contain_text(f"curl -X POST '{url}'")
    expect(triggers.locator("pre")).to_contain_text('-H "Idempotency-Key: $(uuidgen)"')
    assert axe_violations(page) == []

    opener = triggers.get_by_role("button", name="Trigger…")
    opener.click()
    dialog = page.get_by_role("dialog", name=f"Trigger {job['name']}")
    parameters = dialog.get_by_label("Parameters (JSON object)")
    key_field = dialog.get_by_label("Idempotency key")
    expect(parameters).to_be_focused()
    assert UUID.fullmatch(key_field.input_value())

    # Checked in the browser first: nothing is sent.
    parameters.fill('{"model": churn}')
    dialog.get_by_role("button", name="Trigger run").click()
    expect(parameters).to_have_attribute("aria-invalid", "true")
    expect(described_by(page, parameters)).to_contain_text("Not valid JSON")
    assert s.http.get(f"/api/jobs/{job_id}/runs").json()["items"] == []

    key = unique("order")
    parameters.fill('{"model": "churn", "full": true, "n": 3}')
    key_field.fill(key)
    dialog.get_by_role("button", name="Trigger run").click()
    result = dialog.get_by_role("status")
    expect(result).to_contain_text(f"Run started with the key {key}")
    run_id = result.locator("code.url").inner_text()
    assert run_id.startswith(f"{job_id}_")
    assert axe_violations(page) == []

    # The same key again: the same run, and no other.
    dialog.get_by_role("button", name="Trigger run").click()
    expect(result).to_contain_text(f"No new run: the key {key} already started this run")
    expect(result.locator("code.url")).to_have_text(run_id)
    assert [r["run_id"] for r in s.http.get(f"/api/jobs/{job_id}/runs").json()["items"]] == [run_id]
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()

    row = page.get_by_role("table", name="Runs").get_by_role("row").filter(has_text=f"Webhook {key}")
    expect(row).to_have_count(1)
    row.get_by_role("button", name=re.compile(r"^Details of the run")).click()
    cause = page.locator(".cause-row")
    expect(fact(cause, "Idempotency key")).to_have_text(key)
    payload = cause.get_by_role("table", name="Payload")
    expect(payload.locator("tbody tr")).to_have_count(3)
    cells = [row.locator("th, td").all_inner_texts() for row in payload.locator("tbody tr").all()]
    assert cells == [["model", "churn"], ["full", "true"], ["n", "3"]]
    assert axe_violations(page) == []

    cause.get_by_role("link", name=re.compile(r"^Open run")).click()
    expect(page.get_by_role("heading", name=f"Run of {job['name']}")).to_be_visible()
    expect(fact(page, "Started by")).to_have_text(f"Webhook {key}")
    expect(page.get_by_role("table", name="Payload")).to_contain_text("churn")
    assert axe_violations(page) == []

    # A paused job that drops events refuses the call: the dialog shows the server's problem.
    assert s.http.post(f"/api/jobs/{job_id}/pause").status_code == 200
    page.goto(f"/console/jobs/{job_id}")
    page.get_by_role("region", name="Triggers").get_by_role("button", name="Trigger…").click()
    dialog.get_by_role("button", name="Trigger run").click()
    alert = dialog.get_by_role("alert")
    expect(alert).to_contain_text("Refused (HTTP 409):")
    expect(alert).to_contain_text("paused")
    assert len(s.http.get(f"/api/jobs/{job_id}/runs").json()["items"]) == 1


def test_a_run_started_by_a_file_shows_the_file_on_a_phone(page: Any, console_stack: Stack) -> None:
    s = console_stack
    bucket = unique("drop")
    job = s.create(
        unique("files"),
        schedule=None,
        triggers=[{"kind": "file_arrival", "container": bucket, "prefix": "sales/", "suffix": ".csv"}],
    )
    url = s.upload(bucket, "sales/a.csv", b"id,amount\n1,10\n")
    run = wait_for_run(s, job["job_id"])
    assert run["trigger"] == "file_arrival" and [f["url"] for f in run["cause"]["files"]] == [url]
    event_id = run["cause"]["files"][0]["event_id"]

    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"/console/jobs/{job['job_id']}")
    triggers = page.get_by_role("region", name="Triggers")
    expect(triggers).to_contain_text(f"When a blob is created in {bucket}/sales/*.csv")
    row = page.get_by_role("table", name="Runs").get_by_role("row").filter(has_text="1 file")
    expect(row).to_have_count(1)
    row.get_by_role("button", name=re.compile(r"^Details of the run")).click()
    files = page.get_by_role("table", name="Files")
    expect(files).to_contain_text(url)
    expect(files).to_contain_text(event_id)
    assert horizontal_overflow(page) == 0
    assert axe_violations(page) == []

    page.locator(".cause-row").get_by_role("link", name=re.compile(r"^Open run")).click()
    expect(page.get_by_role("heading", name=f"Run of {job['name']}")).to_be_visible()
    expect(page.get_by_role("table", name="Files")).to_contain_text(url)
    assert horizontal_overflow(page) == 0
    assert axe_violations(page) == []

    # A webhook job's page on the phone: the URL and the curl example wrap, the dialog fits.
    hook = s.create(unique("hook"), schedule=None, triggers=[{"kind": "webhook"}])
    page.goto(f"/console/jobs/{hook['job_id']}")
    expect(page.get_by_role("region", name="Triggers").locator("pre")).to_be_visible()
    assert horizontal_overflow(page) == 0
    page.get_by_role("button", name="Trigger…").click()
    expect(page.get_by_role("dialog", name=f"Trigger {hook['name']}")).to_be_visible()
    assert horizontal_overflow(page) == 0
    assert axe_violations(page) == []


def test_webhook_calls_skipped_while_paused_are_replayed_once_when_asked(
    page: Any, console_stack: Stack
) -> None:
    s = console_stack
    task = {
        "kind": "databricks_run",
        "python_file": str(s.scripts / "ok.py"),
        "existing_cluster_id": "local-cluster",
    }
    job = s.create(
        unique("replay"),
        task=task,
        schedule=None,
        triggers=[{"kind": "webhook"}],
        record_skipped_while_paused=True,
    )
    job_id, name = job["job_id"], job["name"]
    assert s.http.post(f"/api/jobs/{job_id}/pause").status_code == 200
    keys = [unique("call"), unique("call")]
    for n, key in enumerate(keys):
        r = s.http.post(f"/api/jobs/{job_id}/trigger", json={"n": n}, headers={"Idempotency-Key": key})
        assert r.status_code < 300 and r.json()["state"] == "SKIPPED", r.text

    # Paused: nothing to replay yet; resuming says that the skipped calls wait to be asked for.
    page.goto(f"/console/jobs/{job_id}")
    runs = page.get_by_role("table", name="Runs")
    expect(runs.locator("tbody tr").filter(has_text="SKIPPED")).to_have_count(2)
    opener = page.get_by_role("button", name="Replay skipped events…")
    expect(opener).to_have_count(0)
    page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(
        f"Resumed {name}. Files and webhook calls skipped while it was paused are not run unless you "
        "replay them."
    )
    expect(page.locator(".job-actions .note")).to_contain_text("not run unless you ask")
    expect(opener).to_be_visible()
    assert len(s.http.get(f"/api/jobs/{job_id}/runs").json()["items"]) == 2  # resuming replays nothing
    paused_at = s.job(job_id)["paused_at"]
    assert paused_at

    opener.click()
    dialog = page.get_by_role("dialog", name=f"Replay skipped events of {name}")
    expect(dialog).to_contain_text(
        "Runs the file arrivals and webhook calls recorded as skipped since the job was paused at"
    )
    expect(dialog).to_contain_text("each only once")
    assert axe_violations(page) == []
    dialog.get_by_role("button", name="Replay events").click()
    result = dialog.get_by_role("status")
    expect(result).to_contain_text("Started 2 runs")
    assert axe_violations(page) == []
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()

    # Two new runs, each a webhook run with its key, saying which skipped run it replays (and, until
    # it starts, who asked): still so once they have run and the server's reason moved on.
    items = s.http.get(f"/api/jobs/{job_id}/runs").json()["items"]
    assert len(items) == 4
    skipped = {r["cause"]["idempotency_key"]: r["run_key"] for r in items if r["state"] == "SKIPPED"}
    assert sorted(skipped) == sorted(keys)
    replays = runs.locator("tbody tr").filter(has_text="replay of ")
    expect(replays).to_have_count(2)
    for key in keys:
        row = replays.filter(has_text=f"Webhook {key}")
        expect(row).to_have_count(1)
        expect(row.locator(".origin")).to_contain_text(f"replay of {skipped[key]}")
    expect(runs.locator("tbody tr").filter(has_text="SUCCEEDED")).to_have_count(2, timeout=60_000)
    expect(replays).to_have_count(2)
    assert axe_violations(page) == []

    # Asked again: each skipped call was replayed already.
    opener.click()
    dialog.get_by_role("button", name="Replay events").click()
    expect(result).to_contain_text("Nothing to replay")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    assert len(s.http.get(f"/api/jobs/{job_id}/runs").json()["items"]) == 4
    expect(replays).to_have_count(2)
