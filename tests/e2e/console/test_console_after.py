"""The console shows what a job waits for and what waits for it (`after` triggers, issue 12),
and its edit form keeps a job's triggers and its lack of a schedule."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.console.conftest import Stack, axe_violations, unique

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(120)]


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def test_a_job_page_shows_what_it_waits_for_and_what_waits_for_it(page: Any, console_stack: Stack) -> None:
    s = console_stack
    prepare = s.create(unique("prepare"))
    report = s.create(
        unique("report"),
        schedule=None,
        triggers=[{"kind": "after", "jobs": [prepare["job_id"]], "within": "PT6H"}],
    )

    page.goto(f"/console/jobs/{report['job_id']}")
    expect(page.get_by_text("No schedule: runs after other jobs")).to_be_visible()
    waits = page.locator("dt", has_text="Waits for").locator("xpath=following-sibling::dd[1]")
    expect(waits).to_contain_text("when all have succeeded, within 6 hours")
    expect(waits.get_by_role("link", name=prepare["name"])).to_be_visible()
    assert axe_violations(page) == []

    waits.get_by_role("link", name=prepare["name"]).click()
    by = page.locator("dt", has_text="Waited on by").locator("xpath=following-sibling::dd[1]")
    expect(by.get_by_role("link", name=report["name"])).to_be_visible()

    # Editing the waiting job in the console keeps its trigger and its lack of a schedule.
    page.goto(f"/console/jobs/{report['job_id']}")
    page.get_by_role("button", name="Edit", exact=True).click()
    dialog = page.get_by_role("dialog", name=f"Edit {report['name']}")
    expect(dialog.get_by_role("checkbox", name="On a schedule")).not_to_be_checked()
    expect(dialog.get_by_role("group", name="After other jobs")).to_contain_text(
        "when all have succeeded, within 6 hours"
    )
    dialog.get_by_role("textbox", name="Description").fill("the morning numbers")
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog).to_be_hidden()
    after = s.job(report["job_id"])
    assert after["description"] == "the morning numbers"
    assert after["schedule"] is None and after["triggers"][0]["jobs"] == [prepare["job_id"]]
