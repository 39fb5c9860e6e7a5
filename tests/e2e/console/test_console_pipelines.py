"""Pipeline runs in the console (issue 12): a run's steps as a graph and a table, and a cancel.

The pipelines are made and run through the API; the tests then look at their runs through the
browser (the graph by its accessible name, the table "Steps") and cancel one from its row. Each
step runs a small python file in the Databricks emulator (`SCRIPTS` in conftest).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e.console.conftest import Stack, axe_violations, horizontal_overflow, unique

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(120)]

ENDED = {"SUCCEEDED", "SUCCEEDED_WITH_FAILURES", "FAILED", "TIMED_OUT", "CANCELLED", "SKIPPED"}


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def step(stack: Stack, key: str, script: str, *depends_on: str, **fields: Any) -> dict[str, Any]:
    task = {
        "kind": "databricks_run",
        "python_file": str(stack.scripts / script),
        "existing_cluster_id": "local-cluster",
    }
    return {"key": key, "task": task, "depends_on": list(depends_on), **fields}


def pipeline(stack: Stack, prefix: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return stack.create(
        unique(prefix),
        job_type="pipeline",
        task={"kind": "pipeline", "steps": steps},
        schedule={"cron": "30 1 * * *", "timezone": "UTC"},
    )


def run_now(stack: Stack, job: dict[str, Any]) -> dict[str, Any]:
    r = stack.http.post(f"/api/jobs/{job['job_id']}/run")
    assert r.status_code == 202, r.text
    return dict(r.json())


def wait_for(what: str, check: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    found = None
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen in {seconds} s (last seen: {found})")


def steps_table_row(page: Any, key: str) -> Any:
    table = page.get_by_role("table", name="Steps")
    return table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=key, exact=True))


def test_a_pipeline_run_shows_its_steps_as_a_graph_and_a_table(page: Any, console_stack: Stack) -> None:
    s = console_stack
    job = pipeline(
        s,
        "pipeline-graph",
        [
            step(s, "a", "ok.py"),
            step(s, "b", "fail.py", "a"),
            step(s, "c", "ok.py", "a"),
            step(s, "d", "ok.py", "b", "c", run_if="ALL_DONE"),
            step(s, "rollback", "ok.py", "b", run_if="AT_LEAST_ONE_FAILED"),
            step(s, "notify", "ok.py", "b"),  # ALL_SUCCESS after a failed b: never runs
        ],
    )
    run_now(s, job)
    run = s.wait_run(job["job_id"], ENDED, seconds=60)
    states = {st["key"]: st["state"] for st in run["steps"]}
    assert states == {
        "a": "SUCCEEDED",
        "b": "FAILED",
        "c": "SUCCEEDED",
        "d": "SUCCEEDED",  # ALL_DONE: runs whatever b and c did
        "rollback": "SUCCEEDED",  # AT_LEAST_ONE_FAILED: b failed
        "notify": "UPSTREAM_FAILED",
    }
    # The result comes from the leaves (d, rollback, notify): notify is UPSTREAM_FAILED, which
    # counts as failed, so the run FAILED (not SUCCEEDED_WITH_FAILURES, which needs every leaf fine).
    assert run["state"] == "FAILED", run
    notify = next(st for st in run["steps"] if st["key"] == "notify")
    assert (notify["run_id"], notify["started_at"], notify["attempts"]) == (None, None, 0)

    page.goto(f"/console/jobs/{job['job_id']}")
    runs = page.get_by_role("table", name="Runs")
    expect(runs.get_by_role("row").nth(1)).to_contain_text("FAILED")
    expect(runs.get_by_role("button", name=re.compile(r"^Steps of the run scheduled for"))).to_have_attribute(
        "aria-expanded", "true"
    )
    graph = page.get_by_role("img", name="Pipeline steps: 4 succeeded, 1 failed, 1 upstream failed")
    expect(graph).to_be_visible()
    for key, state in states.items():
        expect(steps_table_row(page, key).get_by_role("cell").first).to_have_text(re.compile(rf"^{state}"))
    expect(steps_table_row(page, "notify")).to_contain_text("not run")
    expect(steps_table_row(page, "notify").get_by_role("link")).to_have_count(0)
    expect(steps_table_row(page, "d")).to_contain_text("ALL_DONE")
    databricks_link = re.compile(r"^Databricks run \d+$")
    expect(steps_table_row(page, "b").get_by_role("link", name=databricks_link)).to_be_visible()
    # A pipeline run and its steps are never retried (the API answers 409), nor cancelled once ended.
    expect(page.get_by_role("button", name="Retry", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Cancel (run|step)"))).to_have_count(0)
    assert axe_violations(page) == []

    # Repair: b and everything downstream of it run again in the same run (b fails again).
    page.get_by_role("button", name="Repair failed steps").click()
    expect(page.get_by_role("status")).to_have_text("Repair 1 started: b, d, notify, rollback run again")

    def repaired() -> dict[str, Any] | None:
        found = s.http.get(f"/api/runs/{run['run_id']}").json()
        return found if found["repair_history"] and found["state"] in ENDED else None

    again = wait_for("the repaired run to end", repaired, seconds=60)
    assert again["state"] == "FAILED" and [r["steps"] for r in again["repair_history"]] == [
        ["b", "d", "notify", "rollback"]
    ]
    expect(page.get_by_role("list", name="Repairs")).to_contain_text("Repair 1 by")
    assert axe_violations(page) == []

    # The jobs list's details show the same steps.
    page.goto("/console/")
    page.get_by_role("searchbox", name="Search jobs").fill(job["name"])
    page.get_by_role("button", name=f"Details for {job['name']}").click()
    recent = page.get_by_role("table", name=f"Recent runs of {job['name']}")
    expect(recent.get_by_role("img", name=re.compile(r"^Pipeline steps: 4 succeeded"))).to_be_visible()
    assert axe_violations(page) == []

    # 375 px: the page does not scroll sideways; the graph scrolls in its own box.
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(f"/console/jobs/{job['job_id']}")
    expect(graph).to_be_visible()
    assert horizontal_overflow(page) == 0
    box = page.get_by_role("group", name="Graph of the steps")
    assert box.evaluate("el => el.scrollWidth > el.clientWidth")
    assert box.evaluate("el => el.getBoundingClientRect().right") <= 375


def test_a_pipeline_run_is_cancelled_from_the_console_and_its_later_steps_never_start(
    page: Any, console_stack: Stack
) -> None:
    s = console_stack
    job = pipeline(
        s,
        "pipeline-cancel",
        [
            step(s, "first", "sleep.py"),
            step(s, "second", "ok.py", "first"),
            step(s, "third", "ok.py", "second"),
        ],
    )
    started = run_now(s, job)
    try:

        def first_runs() -> bool:
            run = s.http.get(f"/api/runs/{started['run_id']}").json()
            return bool(run["steps"]) and run["steps"][0]["state"] == "ACTIVE"

        wait_for("the first step starting", first_runs)
        page.goto(f"/console/jobs/{job['job_id']}")
        expect(page.get_by_role("img", name="Pipeline steps: 1 running, 2 pending")).to_be_visible()
        expect(steps_table_row(page, "first")).to_contain_text(re.compile(r"running for \d+"))
        expect(steps_table_row(page, "first").get_by_role("button", name="Cancel step first")).to_be_visible()
        expect(page.get_by_role("button", name="Retry", exact=True)).to_have_count(0)

        opener = page.get_by_role("table", name="Runs").get_by_role("button", name="Cancel run", exact=True)
        opener.click()
        dialog = page.get_by_role("alertdialog", name=f"Cancel this run of {job['name']}?")
        expect(dialog).to_contain_text("never will")
        dialog.get_by_role("button", name="Cancel run", exact=True).click()
        expect(dialog).to_be_hidden()
        expect(page.get_by_role("status")).to_contain_text(f"Cancelled the run of {job['name']}")
        expect(page.get_by_role("table", name="Runs").get_by_role("row").nth(1)).to_contain_text("CANCELLED")
        expect(page.get_by_role("img", name="Pipeline steps: 3 cancelled")).to_be_visible()
        for key in ("second", "third"):
            expect(steps_table_row(page, key)).to_contain_text("not run: cancelled before it started")
        expect(steps_table_row(page, "first")).not_to_contain_text("not run")
        expect(page.get_by_role("button", name=re.compile("^Cancel (run|step)"))).to_have_count(0)

        run = s.http.get(f"/api/runs/{started['run_id']}").json()
        assert run["state"] == "CANCELLED"
        assert [(st["key"], st["state"], st["started_at"] is None) for st in run["steps"]] == [
            ("first", "CANCELLED", False),
            ("second", "CANCELLED", True),
            ("third", "CANCELLED", True),
        ]
        first = s.http.get(f"/api/runs/{run['steps'][0]['run_id']}").json()
        assert first["state"] == "CANCELLED"
    finally:
        r = s.http.post(f"/api/runs/{started['run_id']}/cancel")
        assert r.status_code in (200, 409), r.text  # 409: the test cancelled it already
