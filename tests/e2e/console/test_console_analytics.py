"""Analytics in the console: how runs that ended went, in figures, charts and rankings.

Two jobs run now on the local stack (its Databricks emulator): one succeeds, one fails. Once the
API counts both, the Analytics page (reached from the main navigation) shows the same headline
figures as `GET /api/analytics` for the same window and grouping; grouped by job, both jobs are in
"Slowest" (the failing one in "Most failing" too), each linking to its page; the charts are images
named by a summary, with their data as a table on request. Window and grouping live in the link.
The page passes axe and does not scroll sideways on a phone.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.console.conftest import Stack, axe_violations, horizontal_overflow, unique

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(180)]


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@dataclass
class Ran:
    """Two jobs whose runs ended: `ok`'s SUCCEEDED, `failing`'s FAILED."""

    ok: dict[str, Any]
    failing: dict[str, Any]


def _script(stack: Stack, name: str) -> dict[str, Any]:
    return {
        "kind": "databricks_run",
        "python_file": str(stack.scripts / name),
        "existing_cluster_id": "local-cluster",
    }


def _run_now(stack: Stack, job: dict[str, Any], states: set[str]) -> dict[str, Any]:
    r = stack.http.post(f"/api/jobs/{job['job_id']}/run")
    assert r.status_code in (200, 201, 202), r.text
    return stack.wait_run(job["job_id"], states, seconds=60)


def report(stack: Stack, window: str = "P7D", group_by: str = "job_type") -> dict[str, Any]:
    r = stack.http.get("/api/analytics", params={"window": window, "group_by": group_by})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _wait_counted(stack: Stack, job_ids: list[str], seconds: float = 30) -> None:
    """Analytics counts each job's ended run (a run is counted right after its end)."""
    deadline = time.monotonic() + seconds
    counted: dict[str, int] = {}
    while time.monotonic() < deadline:
        counted = {g["key"]: g["runs"] for g in report(stack, group_by="job")["groups"]}
        if all(counted.get(job_id, 0) >= 1 for job_id in job_ids):
            return
        time.sleep(0.3)
    raise AssertionError(f"analytics did not count the runs of {job_ids}: {counted}")


def _settled_total(stack: Stack, seconds: float = 20) -> dict[str, Any]:
    """The window's total once two reads a second apart agree (other tests' runs may still end)."""
    deadline = time.monotonic() + seconds
    before = report(stack)["total"]
    while time.monotonic() < deadline:
        time.sleep(1)
        now = report(stack)["total"]
        if now == before:
            return dict(now)
        before = now
    raise AssertionError(f"analytics kept changing: {before}")


@pytest.fixture(scope="module")
def ran(console_stack: Stack) -> Iterator[Ran]:
    ok = console_stack.create(unique("analytics-ok"), task=_script(console_stack, "ok.py"))
    failing = console_stack.create(
        unique("analytics-fail"), task=_script(console_stack, "fail.py"), job_type="data_processing"
    )
    try:
        _run_now(console_stack, ok, {"SUCCEEDED"})
        _run_now(console_stack, failing, {"FAILED"})
        _wait_counted(console_stack, [ok["job_id"], failing["job_id"]])
        yield Ran(ok, failing)
    finally:
        for job in (ok, failing):
            console_stack.http.delete(f"/api/jobs/{job['job_id']}")


def percent(rate: float | None) -> str:
    """A rate as the console writes it: "93.4%", "50%" (half up; never 100% or 0% unless exactly)."""
    if rate is None:
        return "—"
    tenths = math.floor(rate * 1000 + 0.5)
    if tenths >= 1000 and rate < 1:
        tenths = 999
    if tenths <= 0 and rate > 0:
        tenths = 1
    return f"{tenths // 10}%" if tenths % 10 == 0 else f"{tenths / 10:.1f}%"


def figure(page: Any, term: str) -> Any:
    """The value of one of the headline figures ("Runs", "Success rate")."""
    totals = page.get_by_role("region", name="Totals")
    named = page.get_by_role("term").filter(has_text=re.compile(rf"^{re.escape(term)}$"))
    return totals.locator("div").filter(has=named).get_by_role("definition")


def ranking_row(page: Any, table: str, name: str) -> Any:
    rows = page.get_by_role("table", name=table).get_by_role("row")
    return rows.filter(has=page.get_by_role("link", name=name, exact=True))


def test_analytics_shows_the_apis_figures_and_ranks_both_jobs_linking_to_their_pages(
    page: Any, console_stack: Stack, ran: Ran
) -> None:
    s = console_stack
    total = _settled_total(s)
    assert total["runs"] >= 2 and total["failed"] >= 1 and total["succeeded"] >= 1

    page.goto("/console/")
    page.get_by_role("link", name="Analytics", exact=True).click()
    expect(page.get_by_role("heading", name="Analytics", exact=True)).to_be_visible()
    expect(page.get_by_label("Window")).to_have_value("P7D")
    expect(page.get_by_label("Group by")).to_have_value("job_type")
    # The headline figures are the API's for the same window and grouping, in words.
    expect(figure(page, "Runs")).to_have_text(f"{total['runs']:,}")
    expect(figure(page, "Success rate")).to_have_text(percent(total["success_rate"]))
    expect(figure(page, "Retry rate")).to_have_text(percent(total["retry_rate"]))
    expect(figure(page, "Deadline misses")).to_have_text(f"{total['deadline_misses']:,}")
    expect(figure(page, "Duration p50")).not_to_have_text("—")  # the runs started
    by_type = report(s)
    assert by_type["total"] == total, "the figures changed while the page loaded"
    processing = next(g for g in by_type["groups"] if g["key"] == "data_processing")
    # The charts are images named by what they show.
    rates = page.get_by_role("img", name=re.compile(r"^Success rate by day, "))
    durations = page.get_by_role("img", name=re.compile(r"^Duration p50 by day, "))
    expect(rates).to_be_visible()
    expect(durations).to_be_visible()
    expect(rates).to_have_attribute(
        "aria-label", re.compile(rf"Data processing {re.escape(percent(processing['success_rate']))} overall")
    )
    expect(page.get_by_role("heading", name="Success rate by day")).to_be_visible()
    expect(page.get_by_role("heading", name="Duration p50 by day")).to_be_visible()
    assert axe_violations(page) == []

    # Grouped by job: in the link, and each job in the rankings with a link to its page.
    page.get_by_label("Group by").select_option(label="Job")
    expect(page).to_have_url(re.compile(r"/console/analytics\?window=P7D&group_by=job$"))
    by_job = {g["key"]: g for g in report(s, group_by="job")["groups"]}
    ok, failing = ran.ok, ran.failing
    for job in (ok, failing):
        row = ranking_row(page, "Slowest", job["name"])
        expect(row).to_have_count(1)
        expect(row.get_by_role("link", name=job["name"], exact=True)).to_have_attribute(
            "href", f"/console/jobs/{job['job_id']}"
        )
        expect(row.get_by_role("cell").first).to_have_text(str(by_job[job["job_id"]]["runs"]))
    failed = ranking_row(page, "Most failing", failing["name"])
    expect(failed).to_have_count(1)
    # runs, failures (failed or timed out), success rate
    counted = by_job[failing["job_id"]]
    expect(failed.get_by_role("cell").nth(1)).to_have_text(str(counted["failed"] + counted["timed_out"]))
    expect(failed.get_by_role("cell").nth(2)).to_have_text("0%")
    expect(ranking_row(page, "Most failing", ok["name"])).to_have_count(0)
    expect(rates).to_have_attribute("aria-label", re.compile(rf"{re.escape(failing['name'])} 0% overall"))
    # The chart's figures as a table, on request: a column per job.
    chart = page.get_by_role("region", name="Success rate by day")
    show = chart.get_by_role("button", name=re.compile(r"^(Show|Hide) data table for success rate by day$"))
    expect(show).to_have_text(re.compile(r"^Show data table"))
    expect(show).to_have_attribute("aria-expanded", "false")
    show.click()
    expect(show).to_have_attribute("aria-expanded", "true")
    expect(show).to_have_text(re.compile(r"^Hide data table"))
    data = page.get_by_role("table", name="Success rate by day: data")
    expect(data.get_by_role("columnheader", name=ok["name"], exact=True)).to_be_visible()
    expect(data.get_by_role("columnheader", name=failing["name"], exact=True)).to_be_visible()
    assert axe_violations(page) == []

    # The link opens the same view; a job's name leads to its page.
    page.reload()
    expect(page.get_by_label("Group by")).to_have_value("job")
    ranking_row(page, "Most failing", failing["name"]).get_by_role("link", name=failing["name"]).click()
    expect(page).to_have_url(re.compile(rf"/console/jobs/{failing['job_id']}$"))
    expect(page.get_by_role("heading", name=failing["name"], exact=True)).to_be_visible()


def test_analytics_by_window_and_on_a_phone(page: Any, console_stack: Stack, ran: Ran) -> None:
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto("/console/analytics?window=P30D&group_by=job")
    expect(page.get_by_label("Window")).to_have_value("P30D")
    expect(ranking_row(page, "Slowest", ran.ok["name"])).to_have_count(1)
    expect(page.get_by_role("img", name=re.compile(r"^Duration p50 by day, "))).to_be_visible()
    assert horizontal_overflow(page) == 0
    page.get_by_role("button", name="Show data table for duration p50 by day").click()
    expect(page.get_by_role("table", name="Duration p50 by day: data")).to_be_visible()
    assert horizontal_overflow(page) == 0
    assert axe_violations(page) == []

    # Today only (P1D): both runs ended today, UTC, unless the day turned since.
    page.get_by_label("Window").select_option(label="Today")
    expect(page).to_have_url(re.compile(r"window=P1D&group_by=job$"))
    total = report(console_stack, "P1D", "job")["total"]
    expect(figure(page, "Runs")).to_have_text(f"{total['runs']:,}")
    assert horizontal_overflow(page) == 0

    # A link the console cannot use says so, and shows the default instead of an error.
    page.goto("/console/analytics?window=PT12H")
    expect(
        page.get_by_text(re.compile(r"The link asks for window “PT12H”, which the console does not know"))
    ).to_be_visible()
    expect(page.get_by_label("Window")).to_have_value("P7D")
    expect(page.get_by_role("alert")).to_have_count(0)
    assert horizontal_overflow(page) == 0
    assert axe_violations(page) == []
