"""Capacity in the console (issue 11): pools, the queue, and moving a waiting run up.

A pool of one slot is made through the API; one job's run holds the slot (a script that sleeps)
and another's waits QUEUED behind it. The tests then look at that through the browser, change
the waiting run's priority through the dialog, and create a pool through the form. The runs are
cancelled at the end so that nothing keeps running in the stack.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.console.conftest import Stack, axe_violations, horizontal_overflow, unique

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(120)]


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@dataclass
class Held:
    """A pool of one slot: `holder`'s run RUNNING in it, `waiter`'s run QUEUED behind it."""

    pool: str
    holder: dict[str, Any]
    waiter: dict[str, Any]
    holder_run: dict[str, Any]
    waiter_run: dict[str, Any]


def _run_now(stack: Stack, job: dict[str, Any], states: set[str]) -> dict[str, Any]:
    r = stack.http.post(f"/api/jobs/{job['job_id']}/run")
    assert r.status_code in (200, 201, 202), r.text
    return stack.wait_run(job["job_id"], states, seconds=30)


@pytest.fixture(scope="module")
def held(console_stack: Stack) -> Iterator[Held]:
    pool = unique("e2e-pool")
    r = console_stack.http.put(
        f"/api/pools/{pool}", json={"slots": 1, "tenant_limit": None, "policy": "default"}
    )
    assert r.status_code == 200, r.text
    sleeper = {
        "kind": "databricks_run",
        "python_file": str(console_stack.scripts / "sleep.py"),
        "existing_cluster_id": "local-cluster",
    }
    holder = console_stack.create(unique("slot-holder"), task=sleeper, pool=pool)
    waiter = console_stack.create(unique("slot-waiter"), task=sleeper, pool=pool, deadline="PT6H")
    runs: list[dict[str, Any]] = []
    try:
        runs.append(_run_now(console_stack, holder, {"RUNNING"}))
        runs.append(_run_now(console_stack, waiter, {"QUEUED"}))
        yield Held(pool, holder, waiter, runs[0], runs[1])
    finally:
        # The waiting run first: cancelling the holder first would admit it.
        for run in reversed(runs):
            r = console_stack.http.post(f"/api/runs/{run['run_id']}/cancel")
            assert r.status_code in (200, 409), r.text  # 409: it had ended already
        for job in (waiter, holder):
            console_stack.http.delete(f"/api/jobs/{job['job_id']}")
        _wait_empty(console_stack, pool)


def _wait_empty(stack: Stack, pool: str, seconds: float = 15) -> None:
    """The pool holds and queues nothing any more: the stack is clean for what runs next."""
    deadline = time.monotonic() + seconds
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        found = stack.http.get(f"/api/pools/{pool}").json()
        if (found["used"], found["pending"]) == (0, 0):
            return
        time.sleep(0.3)
    raise AssertionError(f"pool {pool} still holds or queues runs: {found}")


def pool_row(page: Any, name: str) -> Any:
    table = page.get_by_role("table", name="Pools")
    return table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name, exact=True))


def waiting_row(page: Any, job_name: str) -> Any:
    table = page.get_by_role("table", name="Your waiting runs")
    return table.get_by_role("row").filter(has=page.get_by_role("link", name=job_name, exact=True))


def test_the_pools_page_shows_one_slot_used_and_one_run_waiting(page: Any, held: Held) -> None:
    page.goto("/console/")
    page.get_by_role("link", name="Pools", exact=True).click()
    expect(page.get_by_role("heading", name="Pools", exact=True)).to_be_visible()
    row = pool_row(page, held.pool)
    expect(row).to_have_count(1)
    cells = row.get_by_role("cell")
    # slots, tenant limit, policy, used, running, waiting, then waiting per priority
    expect(cells.nth(0)).to_have_text("1")
    expect(cells.nth(3)).to_have_text("1/1")
    expect(cells.nth(4)).to_have_text("1")
    expect(cells.nth(5)).to_have_text("1")
    expect(row).to_contain_text(re.compile(r"1 · oldest \d+[smh]"))
    expect(pool_row(page, "default").get_by_role("cell").nth(0)).to_have_text("unbounded")
    assert axe_violations(page) == []


def test_the_queue_shows_the_waiting_run_and_its_priority_changes_through_the_dialog(
    page: Any, console_stack: Stack, held: Held
) -> None:
    page.goto("/console/")
    page.get_by_role("link", name="Queue", exact=True).click()
    expect(page.get_by_role("heading", name="Queue", exact=True)).to_be_visible()
    page.get_by_label("Pool", exact=True).select_option(held.pool)
    expect(page).to_have_url(re.compile(rf"pool={held.pool}$"))
    row = waiting_row(page, held.waiter["name"])
    expect(row).to_have_count(1)
    cells = row.get_by_role("cell")
    expect(cells.nth(0)).to_have_text("1")  # position
    expect(cells.nth(2)).to_have_text(held.pool)
    expect(cells.nth(3)).to_have_text("normal")
    expect(cells.nth(4)).to_have_text(re.compile(r"^\d+[smh]( \d+[sm])?$"))  # waited, in words
    classes = page.get_by_role("table", name="Waiting by priority")
    expect(classes.get_by_role("row").filter(has_text="Normal").get_by_role("cell").first).to_have_text("1")
    assert axe_violations(page) == []

    opener = row.get_by_role("button", name="Change priority")
    opener.click()
    dialog = page.get_by_role("dialog", name=f"Change priority: {held.waiter['name']}")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Priority")).to_be_focused()
    # No reason: refused in place, nothing sent.
    dialog.get_by_role("button", name="Save priority").click()
    expect(dialog.get_by_label("Reason")).to_have_attribute("aria-invalid", "true")
    expect(dialog.get_by_label("Reason")).to_be_focused()
    assert axe_violations(page) == []
    dialog.get_by_label("Priority").select_option("urgent")
    dialog.get_by_label("Reason").fill("the model review is at noon")
    dialog.get_by_role("button", name="Save priority").click()
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
    expect(page.get_by_role("status")).to_contain_text(f"{held.waiter['name']}: priority set to urgent")
    expect(cells.nth(3)).to_have_text("urgent")
    expect(cells.nth(0)).to_have_text("1")
    expect(classes.get_by_role("row").filter(has_text="Urgent").get_by_role("cell").first).to_have_text("1")
    run = console_stack.http.get(f"/api/runs/{held.waiter_run['run_id']}").json()
    assert (run["state"], run["priority"], run["queue_position"]) == ("QUEUED", "urgent", 1)

    # The change and its reason are in the job's audit trail.
    row.get_by_role("link", name=held.waiter["name"]).click()
    audit = page.locator("section", has=page.get_by_role("heading", name="Audit"))
    expect(audit).to_contain_text("run_priority")
    expect(audit).to_contain_text("the model review is at noon")
    expect(audit).to_contain_text("urgent")


def test_a_jobs_runs_show_where_its_queued_run_stands(page: Any, held: Held) -> None:
    page.goto(f"/console/jobs/{held.waiter['job_id']}")
    runs = page.get_by_role("table", name="Runs")
    queued = runs.get_by_role("row").filter(has_text="QUEUED")
    expect(queued).to_have_count(1)
    expect(queued).to_contain_text(f"in pool {held.pool}")
    expect(queued).to_contain_text(re.compile(r"position 1 · starts ~"))
    expect(queued.get_by_role("button", name="Change priority")).to_be_visible()
    expect(page.get_by_text(re.compile(rf"^{held.pool}, 1 slot per run$"))).to_be_visible()
    expect(page.get_by_text("6 hours after the scheduled time")).to_be_visible()
    # The holder's run is RUNNING: no priority to change.
    page.goto(f"/console/jobs/{held.holder['job_id']}")
    running = page.get_by_role("table", name="Runs").get_by_role("row").filter(has_text="RUNNING")
    expect(running).to_have_count(1)
    expect(page.get_by_role("button", name="Change priority")).to_have_count(0)


def test_a_pool_is_created_through_the_form_and_a_bad_value_is_shown_beside_its_field(
    page: Any, console_stack: Stack
) -> None:
    name = unique("form-pool")
    page.goto("/console/pools")
    form = page.get_by_role("form", name="Create or change a pool")
    form.get_by_label("Pool name").fill(name)
    form.get_by_label("Slots").fill("5000")
    form.get_by_role("button", name="Save pool").click()
    slots = form.get_by_label("Slots")
    expect(slots).to_have_attribute("aria-invalid", "true")
    described = slots.get_attribute("aria-describedby")
    assert described
    expect(page.locator(f'[id="{described.split()[0]}"]')).to_contain_text("1000")
    expect(slots).to_be_focused()
    assert axe_violations(page) == []

    slots.fill("3")
    form.get_by_label("Tenant limit").fill("2")
    form.get_by_label("Policy").select_option("edf")
    form.get_by_role("button", name="Save pool").click()
    expect(page.get_by_role("status")).to_contain_text(f"Created pool {name}")
    row = pool_row(page, name)
    expect(row).to_have_count(1)
    expect(row.get_by_role("cell").nth(0)).to_have_text("3")
    expect(row.get_by_role("cell").nth(1)).to_have_text("2")
    expect(row.get_by_role("cell").nth(2)).to_have_text("edf")
    saved = console_stack.http.get(f"/api/pools/{name}").json()
    assert (saved["slots"], saved["tenant_limit"], saved["policy"]) == (3, 2, "edf")

    # Change it from its row: the form is filled in, only the slots change.
    row.get_by_role("button", name=f"Change {name}").click()
    expect(form.get_by_label("Pool name")).to_have_value(name)
    expect(form.get_by_label("Slots")).to_be_focused()
    form.get_by_label("Slots").fill("")
    form.get_by_role("button", name="Save pool").click()
    expect(page.get_by_role("status")).to_contain_text(f"Changed pool {name}")
    expect(row.get_by_role("cell").nth(0)).to_have_text("unbounded")
    assert console_stack.http.get(f"/api/pools/{name}").json()["policy"] == "edf"


def test_the_queue_at_375px_does_not_scroll_sideways(page: Any, held: Held) -> None:
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(f"/console/queue?pool={held.pool}")
    expect(waiting_row(page, held.waiter["name"])).to_have_count(1)
    assert horizontal_overflow(page) == 0
    page.goto("/console/pools")
    expect(pool_row(page, held.pool)).to_have_count(1)
    assert horizontal_overflow(page) == 0
