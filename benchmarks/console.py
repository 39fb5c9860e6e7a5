"""Benchmark and screenshots of the web console, in Debian's chromium against the local stack.

    python -m benchmarks.console size          # gzip size of the built assets (make console first)
    python -m benchmarks.console render        # time to first render of the jobs view, 10,000 jobs
    python -m benchmarks.console screenshots   # docs/images/console-*.png, for the user guide

`render` starts its own Azurite, seeds N jobs in one tenant through the job service (as
`make bench` does), starts the local stack on a free loopback port and opens the jobs view in
a fresh browser context five times (cold: nothing cached) and five times in one context (warm:
assets cached), timing from navigation to the first page of rows visible. Prints the medians.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx

from devstack.azurite import Azurite
from devstack.process import emulator_env, local_stack

ROOT = Path(__file__).resolve().parent.parent
DIST = Path(os.environ.get("CONSOLE_DIST") or ROOT / "console" / "dist")
IMAGES = ROOT / "docs" / "images"
CHROMIUM = "/usr/bin/chromium"


def size() -> int:
    if not (DIST / "index.html").is_file():
        print("the console is not built: run `make console`", file=sys.stderr)
        return 1
    total = {"js": 0, "css": 0, "other": 0}
    raw_total = 0
    print(f"{'file':48} {'bytes':>9} {'gzip':>9}")
    for path in sorted(p for p in DIST.rglob("*") if p.is_file()):
        data = path.read_bytes()
        packed = len(gzip.compress(data, 6, mtime=0))
        kind = path.suffix.lstrip(".") if path.suffix in (".js", ".css") else "other"
        total[kind] += packed
        raw_total += len(data)
        print(f"{path.relative_to(DIST).as_posix():48} {len(data):9,} {packed:9,}")
    packed_total = sum(total.values())
    print(f"\nall: {raw_total:,} bytes; gzip {packed_total:,} (JS {total['js']:,}, CSS {total['css']:,})")
    return 0


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


def first_render_ms(page: Any, base: str) -> float:
    """Milliseconds from the navigation to the jobs table's first page of rows being visible."""
    page.goto(f"{base}/console/", wait_until="commit")
    page.get_by_role("table", name="Jobs").get_by_role("row").nth(50).wait_for(state="visible")
    return float(page.evaluate("performance.now()"))  # measured from the navigation's start


def render(jobs: int, runs: int) -> int:
    from benchmarks.api_list import seed
    from shared.config import Settings

    with Azurite() as azurite:
        settings = Settings(TABLES_CONNECTION_STRING=azurite.connection_string, AUTH_MODE="development")
        started = time.perf_counter()
        seed(settings, jobs)
        print(f"seeded {jobs} jobs in {time.perf_counter() - started:.1f}s")
        env = {
            "TABLES_CONNECTION_STRING": azurite.connection_string,
            "AUTH_MODE": "development",
            "DEV_TENANT": "bench",
        }
        with local_stack(env) as (_, base), browser() as chromium:
            cold = []
            for _ in range(runs):
                context = chromium.new_context(viewport={"width": 1280, "height": 900})
                cold.append(first_render_ms(context.new_page(), base))
                context.close()
            context = chromium.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            first_render_ms(page, base)  # fills the cache
            warm = [first_render_ms(page, base) for _ in range(runs)]
            context.close()
    print(f"first render of the jobs view, {jobs} jobs, first page of 50 rows visible (median of {runs}):")
    for label, samples in (("cold (nothing cached)", cold), ("warm (assets cached)", warm)):
        each = ", ".join(f"{t:.0f}" for t in samples)
        print(f"  {label:22} {statistics.median(samples):.0f} ms   runs: {each}")
    return 0


FAILS_ONCE = (
    "import pathlib, sys\n"
    "marker = pathlib.Path(__file__).with_suffix('.count')\n"
    "n = int(marker.read_text()) if marker.exists() else 0\n"
    "marker.write_text(str(n + 1))\n"
    "sys.exit(1 if n == 0 else 0)\n"
)
PARIS = "Europe/Paris"
EXAMPLES = [
    (
        "nightly-churn-training",
        "model_training",
        {"cron": "30 1 * * *", "timezone": "America/New_York"},
        ["churn"],
    ),
    ("feature-store-refresh", "data_processing", {"every": "PT15M"}, ["features"]),
    (
        "weekly-forecast",
        "pipeline",
        {"cron": "0 6 * * 1", "timezone": PARIS},
        ["forecast", "weekly"],
    ),
    ("quarterly-backfill", "data_processing", {"at": "2027-01-04T09:00:00+01:00"}, ["backfill"]),
    ("fraud-model-eval", "model_training", {"cron": "0 */4 * * *", "timezone": "UTC"}, ["fraud"]),
]


def screenshots(scripts: Path) -> int:
    from devstack.databricks_emulator import Emulator

    scripts.mkdir(parents=True, exist_ok=True)
    (scripts / "fails_once.py").write_text(FAILS_ONCE)
    (scripts / "fails_once.count").unlink(missing_ok=True)
    IMAGES.mkdir(parents=True, exist_ok=True)
    with Emulator(setup_delay=0.1) as emulator:
        env = emulator_env(emulator.url, scripts)
        with local_stack(env, tick_seconds=1) as (_, base), browser() as chromium:
            http = httpx.Client(base_url=base, timeout=15)
            for name, kind, schedule, tags in EXAMPLES:
                body = {"name": name, "job_type": kind, "schedule": schedule, "tags": tags}
                body["task"] = {"kind": "databricks_job", "job_id": 1000 + len(name)}
                http.post("/api/jobs/schedule", json=body).raise_for_status()
            at = datetime.now(UTC) + timedelta(seconds=2)
            retried = http.post(
                "/api/jobs/schedule",
                json={
                    "name": "sales-model-retrain",
                    "job_type": "model_training",
                    "task": {
                        "kind": "databricks_run",
                        "python_file": str(scripts / "fails_once.py"),
                        "existing_cluster_id": "local-cluster",
                    },
                    "schedule": {"at": at.isoformat()},
                    "tags": ["sales"],
                },
            ).json()["job_id"]
            run = _wait_run(http, retried, {"FAILED"})
            http.post(f"/api/runs/{run['run_id']}/retry").raise_for_status()
            _wait_run(http, retried, {"SUCCEEDED"})
            http.post(f"/api/jobs/{retried}/run").raise_for_status()
            _wait_run(http, retried, {"SUCCEEDED"})

            context = chromium.new_context(
                base_url=base, viewport={"width": 1280, "height": 860}, timezone_id="America/New_York"
            )
            page = context.new_page()
            page.goto("/console/")
            page.get_by_role("button", name="Details for nightly-churn-training").click()
            page.get_by_role("button", name="Run now").wait_for()
            page.wait_for_timeout(500)
            page.screenshot(path=str(IMAGES / "console-jobs.png"))
            page.goto("/console/new")
            page.get_by_label("Name", exact=True).fill("nightly-churn-training")
            page.get_by_label("Databricks job id").fill("123")
            page.get_by_label("Cron expression").fill("30 2 * * *")
            page.get_by_label("Time zone").fill("America/New_York")
            page.get_by_label("Start").fill("2027-03-12T00:00")
            page.get_by_role("region", name="Next fire times").get_by_role("listitem").nth(4).wait_for()
            page.wait_for_timeout(500)
            page.screenshot(path=str(IMAGES / "console-schedule.png"), full_page=True)
            page.goto(f"/console/jobs/{retried}")
            page.get_by_role("table", name="Runs").wait_for()
            page.wait_for_timeout(500)
            page.screenshot(path=str(IMAGES / "console-runs.png"), full_page=True)
            context.close()
    for name in ("console-jobs.png", "console-schedule.png", "console-runs.png"):
        print(IMAGES / name)
    return 0


def _wait_run(http: httpx.Client, job_id: str, states: set[str], seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        items = http.get(f"/api/jobs/{job_id}/runs").json()["items"]
        if items and items[0]["state"] in states:
            return dict(items[0])
        time.sleep(0.3)
    raise RuntimeError(f"the run of {job_id} did not reach {states}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["size", "render", "screenshots"])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.what == "size":
        return size()
    if args.what == "render":
        return render(args.jobs, args.runs)
    return screenshots(ROOT / ".devstack" / "screenshot-scripts")


if __name__ == "__main__":
    sys.exit(main())
