"""Batches in the console: a template's "Run a batch" builds a grid from its parameters' types (each
fixed or swept), counts its points live, and submits it; the batch's page follows it.

What the browser can judge (a sweep value that is not a number) is refused before asking; what only
the server judges (a required choice left empty, a fraction for an integer) comes back as its 422 and
shows at each parameter. The batch page counts the points by state, lists them with their values,
cancels the batch, and retries its failed points as a new round; the batch list and the batch's job
page lead to it. The points run in the stack's Databricks emulator (scripts in conftest).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.console.conftest import SCRIPTS, Stack, axe_violations, horizontal_overflow, unique
from tests.e2e.console.helpers import create_template, described_by, expect, fact

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(150)]


def make_template(stack: Stack, name: str, script: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    task = {
        "kind": "databricks_run",
        "python_file": str(stack.scripts / script),
        "existing_cluster_id": "local-cluster",
        "parameters": [f"--{p['name']}={{{{params.{p['name']}}}}}" for p in parameters],
    }
    return create_template(stack, name, "A sweep in the emulator", task, parameters)


SWEEP = [
    {"name": "market", "type": "enum", "options": ["de", "fr", "uk"], "required": True},
    {"name": "learning_rate", "type": "float", "default": 0.001},
    {"name": "epochs", "type": "int", "default": 10},
]


def count(page: Any, state: str) -> Any:
    return fact(page.get_by_role("region", name="Progress"), state)


def test_a_grid_is_built_refused_at_its_parameters_submitted_followed_and_cancelled(
    page: Any, console_stack: Stack
) -> None:
    template = make_template(console_stack, unique("sweep"), "sleep.py", SWEEP)  # points hold their slot
    name = template["name"]
    batch_name = unique("lr-by-epochs")

    page.goto(f"/console/templates/{name}")
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(page.get_by_role("tab", name="Create a job")).to_have_attribute("aria-selected", "true")
    page.get_by_role("tab", name="Run a batch").click()
    expect(page).to_have_url(re.compile(r"\?run=batch$"))
    form = page.get_by_role("form", name="Run a batch")
    count_line = form.locator(".point-count")
    expect(count_line).to_have_text("1 point (nothing swept)")

    # Each parameter is fixed (its default filled in) until swept.
    rate = form.get_by_role("group", name="learning_rate", exact=True)
    expect(rate.get_by_label("learning_rate value")).to_have_value("0.001")
    rate.get_by_label("Sweep").check()
    rate_values = rate.get_by_label("learning_rate values")
    expect(rate_values).to_have_value("0.001")  # a sweep starts from the default
    rate_values.fill("0.1, abc")
    expect(count_line).to_have_text("2 points")
    epochs = form.get_by_role("group", name="epochs", exact=True)
    epochs.get_by_label("Sweep").check()
    epochs_values = epochs.get_by_label("epochs values")
    epochs_values.fill("5, 10, 12.5")
    expect(count_line).to_have_text("2 \u00d7 3 = 6 points")
    form.get_by_label("Max parallel").fill("2")
    form.get_by_label("Batch name").fill(batch_name)

    # Not a number: refused before asking.
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if r.url.endswith("/api/batches") else None)
    form.get_by_role("button", name="Run batch").click()
    expect(rate_values).to_have_attribute("aria-invalid", "true")
    expect(described_by(page, rate_values)).to_have_text("abc: is not a number")
    expect(rate_values).to_be_focused()
    assert requests == []

    # What only the server judges: the required choice left empty, a fraction for an integer.
    rate_values.fill("0.1, 0.01")
    with page.expect_response(lambda r: r.url.endswith("/api/batches")) as answer:
        form.get_by_role("button", name="Run batch").click()
    assert answer.value.status == 422
    assert answer.value.json()["errors"] == {
        "parameters.market": "is required",
        "grid.epochs.2": "must be an integer",
    }
    market = form.get_by_role("group", name=re.compile("^market")).get_by_label("market value")
    expect(market).to_have_attribute("aria-invalid", "true")
    expect(described_by(page, market)).to_have_text("is required")
    expect(epochs_values).to_have_attribute("aria-invalid", "true")
    expect(described_by(page, epochs_values)).to_have_text("12.5: must be an integer")
    expect(market).to_be_focused()
    expect(rate_values).not_to_have_attribute("aria-invalid", "true")
    expect(form.get_by_role("alert")).to_have_count(0)  # every error has its field
    assert axe_violations(page) == []

    # Fixed: the range helper fills the integer sweep.
    market.select_option("fr")
    epochs.get_by_label("From").fill("5")
    epochs.get_by_label("To").fill("15")
    epochs.get_by_label("Step").fill("5")
    epochs.get_by_role("button", name="Fill values").click()
    expect(epochs_values).to_have_value("5, 10, 15")
    expect(count_line).to_have_text("2 \u00d7 3 = 6 points")
    with page.expect_response(lambda r: r.url.endswith("/api/batches")) as answer:
        form.get_by_role("button", name="Run batch").click()
    assert answer.value.status == 201, answer.value.text()
    sent = answer.value.request.post_data_json
    assert sent == {
        "template": name,
        "version": 1,
        "name": batch_name,
        "parameters": {"market": "fr"},
        "grid": {"learning_rate": [0.1, 0.01], "epochs": [5, 10, 15]},
        "execution_mode": "parallel",
        "max_parallel": 2,
    }

    # The batch's page.
    expect(page).to_have_url(re.compile(r"/console/batches/[^/]+$"))
    batch_id = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_role("heading", name=batch_name, exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(
        f"Started batch {batch_name} of 6 points from template {name} v1"
    )
    expect(fact(page, "Template")).to_have_text(f"{name} v1")
    expect(fact(page, "Runs")).to_have_text("parallel: at most 2 points at a time")
    expect(fact(page, "Size")).to_have_text("6 points")
    points = page.get_by_role("table", name="Points")
    expect(points.get_by_role("row")).to_have_count(7)  # the header and 6 points
    expect(points.get_by_role("columnheader")).to_have_text(
        ["Point", "learning_rate", "epochs", "State", "Round", "Attempt", "Run", "Databricks"]
    )
    expect(page.get_by_text("Every point has market = fr.")).to_be_visible()
    first = points.get_by_role("row").nth(1)
    expect(first.get_by_role("cell").nth(0)).to_have_text("0.1")
    expect(first.get_by_role("cell").nth(1)).to_have_text("5")
    # max parallel 2: two points run (sleep.py holds them), four wait their turn
    expect(count(page, "running")).to_have_text("2", timeout=30_000)
    expect(count(page, "pending")).to_have_text("4")
    expect(page.get_by_role("region", name="Progress")).to_contain_text("0 of 6 points ended")
    expect(points.get_by_role("link", name="Run of point 0", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Retry failed")).to_be_disabled()
    assert axe_violations(page) == []

    # The point's run opens in the run page.
    points.get_by_role("link", name="Run of point 0", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/console/jobs/{batch_id}/runs/[^/]+$"))
    expect(fact(page, "State")).to_contain_text("RUNNING")
    page.go_back()

    # Filter by state (in the page).
    page.get_by_label("Show points").select_option("pending")
    expect(points.get_by_role("row")).to_have_count(5)
    page.get_by_label("Show points").select_option("")

    # Cancel, confirmed.
    page.get_by_role("button", name="Cancel batch").click()
    dialog = page.get_by_role("alertdialog", name=f"Cancel batch {batch_name}?")
    expect(dialog).to_contain_text("Points not started yet never start")
    expect(dialog.get_by_role("button", name="Keep batch")).to_be_focused()
    dialog.get_by_role("button", name="Cancel batch").click()
    expect(dialog).to_be_hidden()
    expect(fact(page, "State")).to_have_text("CANCELLED", timeout=30_000)
    expect(page.get_by_role("status")).to_contain_text(f"Cancelled batch {batch_name}")
    expect(count(page, "cancelled")).to_have_text("6", timeout=30_000)
    expect(page.get_by_role("button", name="Cancel batch")).to_have_count(0)
    expect(page.get_by_role("button", name="Retry failed")).to_be_disabled()
    assert console_stack.http.get(f"/api/batches/{batch_id}").json()["state"] == "CANCELLED"

    # The batch list and the batch's job page lead to it.
    page.get_by_role("link", name="Batches", exact=True).first.click()
    expect(page.get_by_role("heading", name="Batches", exact=True)).to_be_visible()
    row = (
        page.get_by_role("table", name="Batches")
        .get_by_role("row")
        .filter(has=page.get_by_role("rowheader", name=batch_name, exact=True))
    )
    expect(row).to_have_count(1)
    assert axe_violations(page) == []
    row.get_by_role("link", name=f"job of {batch_name}").click()
    expect(page.get_by_role("heading", name=batch_name, exact=True)).to_be_visible()
    page.get_by_role("link", name="follow it on its batch page").click()
    expect(page).to_have_url(re.compile(rf"/console/batches/{batch_id}$"))


def test_a_small_batch_runs_to_its_end_and_its_failed_point_is_retried(
    page: Any, console_stack: Stack
) -> None:
    # A script of its own: its first run anywhere fails, every later one succeeds.
    script = f"{unique('fails_once')}.py".replace("-", "_")
    (console_stack.scripts / script).write_text(SCRIPTS["fails_once.py"])
    template = make_template(
        console_stack, unique("flags"), script, [{"name": "full_refresh", "type": "bool", "default": False}]
    )
    name = template["name"]

    page.goto(f"/console/templates/{name}?run=batch")
    form = page.get_by_role("form", name="Run a batch")
    flag = form.get_by_role("group", name="full_refresh", exact=True)
    flag.get_by_label("Sweep").check()
    expect(flag.get_by_label("full_refresh values")).to_have_value("both")
    expect(form.locator(".point-count")).to_have_text("2 points")
    form.get_by_label("Sequential (one at a time)").check()
    expect(form.get_by_label("Max parallel")).to_have_count(0)
    form.get_by_role("button", name="Run batch").click()

    expect(page).to_have_url(re.compile(r"/console/batches/[^/]+$"))
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()  # named after its template
    expect(fact(page, "Runs")).to_have_text("sequential: one point at a time")
    # Point 0 runs first and fails (the script's first run); point 1 succeeds.
    expect(fact(page, "State")).to_have_text("SUCCEEDED_WITH_FAILURES", timeout=60_000)
    expect(count(page, "succeeded")).to_have_text("1")
    expect(count(page, "failed")).to_have_text("1")
    expect(page.get_by_role("region", name="Progress")).to_contain_text("2 of 2 points ended")
    points = page.get_by_role("table", name="Points")
    expect(points.get_by_role("row").nth(1)).to_contain_text("failed")
    expect(points.get_by_role("row").nth(2)).to_contain_text("succeeded")
    expect(
        points.get_by_role("row").nth(1).get_by_role("link", name=re.compile("Databricks run of point 0"))
    ).to_be_visible()
    assert axe_violations(page) == []

    retry = page.get_by_role("button", name="Retry failed")
    expect(retry).to_be_enabled()
    expect(page.get_by_text("Runs the 1 failed point again, as a new round.")).to_be_visible()
    retry.click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Retrying the failed points of {name}: round 2, 1 point"
    )
    expect(fact(page, "State")).to_have_text("SUCCEEDED", timeout=60_000)
    expect(count(page, "succeeded")).to_have_text("2")
    expect(count(page, "failed")).to_have_text("0")
    rounds = page.get_by_role("region", name="Rounds")
    expect(rounds.get_by_role("listitem")).to_have_count(2)
    expect(rounds.get_by_role("listitem").first).to_contain_text("Round 2 (retry of the failed points)")
    expect(points.get_by_role("row").nth(1).get_by_role("cell").nth(2)).to_have_text("2")  # its round
    expect(retry).to_be_disabled()

    # Nothing failed any more: the server says so too.
    r = console_stack.http.post(f"/api/batches/{page.url.rsplit('/', 1)[-1]}/retry-failed")
    assert r.status_code == 409 and r.json()["errors"] == {"points": "none failed"}


def test_the_batch_pages_fit_a_phone(page: Any, console_stack: Stack) -> None:
    template = make_template(console_stack, unique("phone"), "ok.py", SWEEP)
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"/console/templates/{template['name']}?run=batch")
    form = page.get_by_role("form", name="Run a batch")
    form.get_by_role("group", name="epochs", exact=True).get_by_label("Sweep").check()
    form.get_by_role("group", name=re.compile("^market")).get_by_label("market value").select_option("de")
    expect(form.get_by_role("group", name="Fill epochs's values from a range")).to_be_visible()
    assert horizontal_overflow(page) == 0
    form.get_by_role("button", name="Run batch").click()
    expect(page).to_have_url(re.compile(r"/console/batches/[^/]+$"))
    expect(page.get_by_role("table", name="Points")).to_be_visible()
    assert horizontal_overflow(page) == 0
    page.goto("/console/batches")
    expect(page.get_by_role("table", name="Batches")).to_be_visible()
    assert horizontal_overflow(page) == 0
