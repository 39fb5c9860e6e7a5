"""A Studio user schedules, finds, edits, cancels and retries jobs in the console (issue 10).

Each test clicks through real pages in chromium against the local stack; the API is used only
to arrange what a test needs besides the journey it drives, and to check what the clicks did.
Accessible names are the console's contract (console/README.md).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.api.identity import encode_principal
from tests.e2e.console.conftest import Stack, axe_violations, horizontal_overflow, unique

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(180)]


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def row(page: Any, name: str) -> Any:
    """The jobs table's row of a job (not its expanded details)."""
    selector = page.get_by_role("checkbox", name=f"Select {name}", exact=True)
    return page.get_by_role("table", name="Jobs").get_by_role("row").filter(has=selector)


def search(page: Any, text: str) -> None:
    page.goto("/console/")
    page.get_by_role("searchbox", name="Search jobs").fill(text)


def fill_cron_job(page: Any, name: str, cron: str = "30 2 * * *", zone: str = "America/New_York") -> None:
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Job type").select_option("model_training")
    page.get_by_label("Task kind").select_option(label="Databricks job")
    page.get_by_label("Databricks job id").fill("123")
    page.get_by_role("radio", name="Cron").check()
    page.get_by_label("Cron expression").fill(cron)
    page.get_by_label("Time zone").fill(zone)


def test_root_leads_to_the_console_and_deep_links_open(page: Any, console_stack: Stack) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    job = console_stack.create(unique("deep-link"))
    page.goto(f"/console/jobs/{job['job_id']}")
    expect(page.get_by_role("heading", name=job["name"])).to_be_visible()


def test_schedule_a_cron_job_with_a_dst_preview_then_find_and_expand_it(page: Any) -> None:
    name = unique("nightly-churn")
    page.goto("/console/")
    page.get_by_role("link", name="Schedule a job").first.click()
    expect(page.get_by_role("heading", name="Schedule a job")).to_be_visible()
    fill_cron_job(page, name)
    page.get_by_label("Start").fill("2027-03-12T00:00")
    page.get_by_role("button", name="Add parameter").click()
    page.get_by_label("Parameter name").fill("run_date")
    page.get_by_label("Parameter value").fill("{{scheduled_date}}")
    expect(page.locator("#cron-reading")).to_contain_text("02:30")
    preview = page.get_by_role("region", name="Next fire times")
    # 02:30 does not exist in New York on 2027-03-14: that fire time is shifted, and flagged.
    expect(preview).to_contain_text("DST")
    expect(preview.get_by_role("listitem")).to_have_count(5)
    page.get_by_role("button", name="Schedule job", exact=True).click()
    confirmation = page.get_by_role("status").filter(has_text="Job scheduled")
    expect(confirmation).to_be_visible()
    expect(confirmation).to_contain_text(re.compile(r"[0-9A-HJKMNP-TV-Z]{26}"))

    search(page, name)
    expect(row(page, name)).to_have_count(1)
    page.get_by_role("searchbox", name="Search jobs").fill("")
    page.get_by_label("Type").select_option("model_training")
    page.get_by_label("Tag").fill("")
    page.get_by_role("searchbox", name="Search jobs").fill(name)
    expect(row(page, name)).to_have_count(1)
    page.get_by_label("Status").select_option("PAUSED")
    expect(row(page, name)).to_have_count(0)
    page.get_by_label("Status").select_option("ACTIVE")
    details = page.get_by_role("button", name=f"Details for {name}")
    details.click()
    expect(details).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_text("At 02:30 AM").first).to_be_visible()
    expect(page.get_by_role("button", name="Run now", exact=True)).to_be_visible()


def test_invalid_cron_and_end_before_start_show_both_errors_and_keep_the_input(page: Any) -> None:
    name = unique("broken")
    page.goto("/console/new")
    fill_cron_job(page, name, cron="61 * * * *")
    page.get_by_label("Start").fill("2027-03-12T00:00")
    page.get_by_label("End").fill("2027-03-01T00:00")
    page.get_by_role("button", name="Schedule job", exact=True).click()
    cron = page.get_by_label("Cron expression")
    end = page.get_by_label("End", exact=True)
    expect(cron).to_have_attribute("aria-invalid", "true")
    expect(end).to_have_attribute("aria-invalid", "true")
    for field in (cron, end):
        described = field.get_attribute("aria-describedby")
        assert described, "a field error must be tied to its field"
        message = page.locator(f'[id="{described.split()[0]}"]')
        expect(message).not_to_be_empty()
    expect(cron).to_have_value("61 * * * *")
    expect(end).to_have_value("2027-03-01T00:00")
    expect(page.get_by_label("Name", exact=True)).to_have_value(name)
    expect(page.get_by_role("status").filter(has_text="Job scheduled")).to_have_count(0)


def test_edit_in_the_modal_changes_the_next_run_and_a_stale_edit_is_explained(
    page: Any, console_stack: Stack
) -> None:
    job = console_stack.create(unique("editable"), schedule={"cron": "30 1 * * *", "timezone": "UTC"})
    search(page, job["name"])
    table_row = row(page, job["name"])
    before = table_row.inner_text()
    page.get_by_role("button", name=f"Details for {job['name']}").click()
    page.get_by_role("button", name="Edit", exact=True).click()
    dialog = page.get_by_role("dialog", name=f"Edit {job['name']}")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Cron expression")).to_have_value("30 1 * * *")
    dialog.get_by_label("Cron expression").fill("45 3 * * *")
    dialog.get_by_role("button", name="Save changes", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(table_row).not_to_have_text(before)
    assert console_stack.job(job["job_id"])["next_fire_at"].endswith("03:45:00Z")

    # Someone else saves while the dialog is open: the save is refused and said so.
    page.get_by_role("button", name="Edit", exact=True).click()
    expect(dialog).to_be_visible()
    current = console_stack.job(job["job_id"])
    other = {k: current[k] for k in ("name", "job_type", "task", "schedule")}
    other["schedule"] = {"cron": "0 5 * * *", "timezone": "UTC"}
    assert console_stack.http.put(f"/api/jobs/{job['job_id']}", json=other).status_code == 200
    dialog.get_by_label("Cron expression").fill("15 4 * * *")
    dialog.get_by_role("button", name="Save changes", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("changed by someone else")
    assert console_stack.job(job["job_id"])["schedule"]["cron"] == "0 5 * * *"


def test_cancel_through_the_dialog_dismiss_then_confirm(page: Any, console_stack: Stack) -> None:
    job = console_stack.create(unique("cancellable"))
    search(page, job["name"])
    page.get_by_role("button", name=f"Details for {job['name']}").click()
    page.get_by_role("button", name="Cancel job", exact=True).click()
    dialog = page.get_by_role("alertdialog", name=f"Cancel {job['name']}?")
    expect(dialog).to_contain_text("No further runs")
    dialog.get_by_role("button", name="Keep job", exact=True).click()
    expect(dialog).to_be_hidden()
    assert console_stack.job(job["job_id"])["status"] == "ACTIVE"

    page.get_by_role("button", name="Cancel job", exact=True).click()
    dialog.get_by_role("button", name="Cancel job", exact=True).click()
    expect(page.get_by_role("status").filter(has_text=f"Cancelled {job['name']}")).to_be_visible()
    expect(row(page, job["name"])).to_contain_text("CANCELLED")
    assert console_stack.job(job["job_id"])["status"] == "CANCELLED"


def test_a_failed_run_is_retried_from_its_page_and_the_new_attempt_ends(
    page: Any, console_stack: Stack
) -> None:
    at = datetime.now(UTC) + timedelta(seconds=3)
    job = console_stack.create(
        unique("fails-once"),
        task={
            "kind": "databricks_run",
            "python_file": str(console_stack.scripts / "fails_once.py"),
            "existing_cluster_id": "local-cluster",
        },
        schedule={"at": at.isoformat()},
        retry={"max_attempts": 1},
    )
    page.goto(f"/console/jobs/{job['job_id']}")
    runs = page.get_by_role("table", name="Runs")
    expect(runs).to_contain_text("FAILED", timeout=60_000)
    retry = page.get_by_role("button", name="Retry", exact=True)
    expect(retry).to_be_visible()
    retry.click()
    # The page follows the new attempt live until it ends, without a reload.
    expect(runs).to_contain_text("SUCCEEDED", timeout=60_000)
    run = console_stack.wait_run(job["job_id"], {"SUCCEEDED"}, seconds=5)
    assert [a["result"] for a in run["attempts"]] == ["FAILED", "SUCCEEDED"]
    expect(runs.get_by_role("link", name=re.compile(r"Databricks run \d+"))).to_have_count(2)
    expect(page.get_by_role("button", name="Retry", exact=True)).to_have_count(0)


def test_bulk_pause_of_three_selected_jobs(page: Any, console_stack: Stack) -> None:
    tag = unique("bulk").replace("-", ".")
    jobs = [console_stack.create(unique("bulk"), tags=[tag]) for _ in range(3)]
    other = console_stack.create(unique("bulk-other"))
    page.goto("/console/")
    page.get_by_label("Tag").fill(tag)
    for job in jobs:
        page.get_by_role("checkbox", name=f"Select {job['name']}").check()
    page.get_by_role("button", name="Pause selected").click()
    expect(page.get_by_role("status").filter(has_text="Paused 3 jobs")).to_be_visible()
    for job in jobs:
        expect(row(page, job["name"])).to_contain_text("PAUSED")
        assert console_stack.job(job["job_id"])["status"] == "PAUSED"
    assert console_stack.job(other["job_id"])["status"] == "ACTIVE"


def test_the_form_works_from_the_keyboard_alone(page: Any, console_stack: Stack) -> None:
    name = unique("keyboard")
    page.goto("/console/new")
    typed = {"Name": name, "Databricks job id": "77", "Cron expression": "0 6 * * 1-5"}
    seen: set[str] = set()
    for _ in range(120):
        page.keyboard.press("Tab")
        label = page.evaluate(
            "() => { const el = document.activeElement;"
            " const label = el && el.labels && el.labels[0];"
            " if (label) return label.textContent.trim();"
            " return el ? (el.getAttribute('aria-label') || el.textContent || '').trim() : ''; }"
        )
        if label in typed and label not in seen:
            page.keyboard.press("Control+A")
            page.keyboard.type(typed[label])
            seen.add(label)
        if label == "Schedule job" and seen == set(typed):
            page.keyboard.press("Enter")
            break
    else:
        pytest.fail(f"never reached the submit button with every field filled by keyboard: filled {seen}")
    expect(page.get_by_role("status").filter(has_text="Job scheduled")).to_be_visible()
    listed = console_stack.http.get("/api/jobs", params={"q": name}).json()["items"]
    assert [(j["name"], j["schedule"]["cron"]) for j in listed] == [(name, "0 6 * * 1-5")]
    # A dialog opens and closes from the keyboard, and gives focus back.
    search(page, name)
    page.get_by_role("button", name=f"Details for {name}").focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Cancel job", exact=True).focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("alertdialog", name=f"Cancel {name}?")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Cancel job", exact=True)).to_be_focused()
    assert listed and console_stack.job(listed[0]["job_id"])["status"] == "ACTIVE"


def test_every_view_passes_the_accessibility_scan(page: Any, console_stack: Stack) -> None:
    job = console_stack.create(unique("accessible"))
    views: dict[str, list[dict[str, Any]]] = {}
    page.goto("/console/")
    expect(row(page, job["name"])).to_have_count(1)
    page.get_by_role("button", name=f"Details for {job['name']}").click()
    expect(page.get_by_role("button", name="Run now", exact=True)).to_be_visible()
    views["jobs, a row expanded"] = axe_violations(page)
    page.get_by_role("button", name="Cancel job", exact=True).click()
    expect(page.get_by_role("alertdialog")).to_be_visible()
    views["cancel dialog"] = axe_violations(page)
    page.get_by_role("button", name="Keep job", exact=True).click()
    page.get_by_role("button", name="Edit", exact=True).click()
    expect(page.get_by_role("dialog")).to_be_visible()
    views["edit dialog"] = axe_violations(page)
    page.goto("/console/new")
    fill_cron_job(page, unique("axe"))
    expect(page.get_by_role("region", name="Next fire times").get_by_role("listitem")).to_have_count(5)
    views["schedule form with preview"] = axe_violations(page)
    page.get_by_label("Cron expression").fill("61 * * * *")
    page.get_by_role("button", name="Schedule job", exact=True).click()
    expect(page.get_by_label("Cron expression")).to_have_attribute("aria-invalid", "true")
    views["schedule form with errors"] = axe_violations(page)
    page.goto(f"/console/jobs/{job['job_id']}")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    views["job page"] = axe_violations(page)
    page.goto("/console/no-such-page")
    expect(page.get_by_text("Page not found")).to_be_visible()
    views["not found"] = axe_violations(page)
    assert {view: found for view, found in views.items() if found} == {}


@pytest.mark.parametrize("path", ["/console/", "/console/new"])
def test_a_375px_wide_screen_does_not_scroll_sideways(page: Any, console_stack: Stack, path: str) -> None:
    console_stack.create(unique("narrow-screen-with-a-rather-long-job-name"), tags=["churn", "nightly"])
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(path)
    if path == "/console/":
        expect(page.get_by_role("table", name="Jobs").get_by_role("row").nth(1)).to_be_visible()
    else:
        fill_cron_job(page, unique("narrow"))
        expect(page.get_by_role("region", name="Next fire times").get_by_role("listitem")).to_have_count(5)
    assert horizontal_overflow(page) == 0


def test_api_failures_show_a_message_not_a_blank_page(page: Any, console_stack: Stack) -> None:
    page.route("**/api/jobs?*", lambda route: route.abort("connectionrefused"))
    page.goto("/console/")
    expect(page.get_by_role("alert")).to_be_visible()
    page.unroute("**/api/jobs?*")
    page.route(
        "**/api/jobs?*",
        lambda route: route.fulfill(
            status=503,
            headers={"Content-Type": "application/problem+json", "Retry-After": "5"},
            body=json.dumps(
                {
                    "type": "urn:ml-scheduler:problem:external_error",
                    "title": "Dependency unavailable",
                    "status": 503,
                    "detail": "a service the scheduler depends on is unavailable; try again shortly",
                    "code": "external_error",
                }
            ),
        ),
    )
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("unavailable")
    page.unroute("**/api/jobs?*")
    page.goto("/console/jobs/01KAB3X9M2Q8Z0C7D5E4F6G1H2")
    expect(page.get_by_role("alert")).to_contain_text(re.compile("not found", re.IGNORECASE))


def test_a_user_sees_only_their_tenants_jobs(browser: Any, console_stack: Stack) -> None:
    mine = console_stack.create(unique("team-a-job"), headers=_principal("team-a", "alice", "Alice"))
    theirs = console_stack.create(unique("team-b-job"), headers=_principal("team-b", "bob", "Bob"))
    context = browser.new_context(
        base_url=console_stack.base, extra_http_headers=_principal("team-a", "alice", "Alice")
    )
    try:
        page = context.new_page()
        page.goto("/console/")
        expect(page.get_by_text("Alice").first).to_be_visible()
        expect(row(page, mine["name"])).to_have_count(1)
        expect(row(page, theirs["name"])).to_have_count(0)
        page.goto(f"/console/jobs/{theirs['job_id']}")
        expect(page.get_by_role("alert")).to_contain_text(re.compile("not found", re.IGNORECASE))
    finally:
        context.close()


def _principal(tenant: str, oid: str, name: str) -> dict[str, str]:
    return {"X-MS-CLIENT-PRINCIPAL": encode_principal(oid, name, [f"Scheduler.Tenant.{tenant}"])}


def test_a_member_of_two_tenants_picks_one_and_sees_only_its_jobs(browser: Any, console_stack: Stack) -> None:
    in_a = console_stack.create(unique("picker-a"), headers=_principal("team-a", "alice", "Alice"))
    in_b = console_stack.create(unique("picker-b"), headers=_principal("team-b", "bob", "Bob"))
    both = {
        "X-MS-CLIENT-PRINCIPAL": encode_principal(
            "carol", "Carol", ["Scheduler.Tenant.team-a", "Scheduler.Tenant.team-b"]
        )
    }
    context = browser.new_context(base_url=console_stack.base, extra_http_headers=both)
    try:
        page = context.new_page()
        page.goto("/console/")
        picker = page.get_by_label("Tenant")
        expect(picker).to_have_value("team-a")
        expect(row(page, in_a["name"])).to_have_count(1)
        expect(row(page, in_b["name"])).to_have_count(0)
        picker.select_option("team-b")
        expect(row(page, in_b["name"])).to_have_count(1)
        expect(row(page, in_a["name"])).to_have_count(0)
    finally:
        context.close()
