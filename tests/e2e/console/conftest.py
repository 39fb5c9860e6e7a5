"""The console in a real browser: Debian's chromium driven by Playwright, against the local stack.

One local stack (Azurite, the Databricks emulator, the function app serving `console/dist`) for
the module's tests; a fresh browser context per test. The stack's Azurite Blob service is on a
port the tests know (`Stack.upload`): a blob written there reaches the scheduler as an Event Grid
BlobCreated event, as in Azure (devstack/blob_events.py). `make test` builds the console and
installs chromium first (`make console`, `scripts/ensure-chromium`).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from devstack.azurite import ACCOUNT, KEY, free_port
from devstack.databricks_emulator import Emulator
from devstack.process import emulator_env, local_stack

ROOT = Path(__file__).resolve().parents[3]
DIST = Path(os.environ.get("CONSOLE_DIST") or ROOT / "console" / "dist") / "index.html"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / ".pytest_cache" / "console"  # screenshots of each run (git-ignored)

SCRIPTS = {
    "ok.py": "print('ok')\n",
    "fail.py": "import sys\nprint('boom', file=sys.stderr)\nsys.exit(1)\n",
    # holds its pool's slot for two minutes (tests cancel it when done)
    "sleep.py": "import time\ntime.sleep(120)\n",
    # exits 1 on its first run, 0 after (counts its runs in a file beside it)
    "fails_once.py": (
        "import pathlib, sys\n"
        "marker = pathlib.Path(__file__).with_suffix('.count')\n"
        "n = int(marker.read_text()) if marker.exists() else 0\n"
        "marker.write_text(str(n + 1))\n"
        "sys.exit(1 if n == 0 else 0)\n"
    ),
}

_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_names)}"


@dataclass
class Stack:
    base: str
    scripts: Path
    blob_port: int = 0  # the stack's Azurite Blob service
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base, timeout=15)

    def create(self, name: str, headers: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": name,
            "job_type": "model_training",
            "task": {"kind": "databricks_job", "job_id": 123},
            "schedule": {"cron": "30 1 * * *", "timezone": "America/New_York"},
        }
        body.update(overrides)
        r = self.http.post("/api/jobs/schedule", json=body, headers=headers or {})
        assert r.status_code == 201, r.text
        return dict(r.json()["job"])

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"/api/jobs/{job_id}").json())

    def upload(self, container: str, name: str, data: bytes) -> str:
        """Write a blob to the stack's storage account (creating the container); its URL."""
        from azure.storage.blob import BlobServiceClient

        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.blob_port}/{ACCOUNT};"
        )
        with BlobServiceClient.from_connection_string(connection) as service:
            client = service.get_container_client(container)
            if not client.exists():
                client.create_container()
            return str(client.upload_blob(name, data, overwrite=True).url)

    def wait_run(self, job_id: str, states: set[str], seconds: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            items = self.http.get(f"/api/jobs/{job_id}/runs").json()["items"]
            run = items[0] if items else {}
            if run.get("state") in states:
                return run
            time.sleep(0.3)
        raise AssertionError(f"run did not reach {states}: {run}")


@pytest.fixture(scope="session")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not DIST.is_file():
        pytest.fail("the console is not built: run `make console` (make test does it first)")
    scripts = tmp_path_factory.mktemp("console-scripts")
    for name, text in SCRIPTS.items():
        (scripts / name).write_text(text)
    blob_port = free_port()
    with Emulator(setup_delay=0.1) as emulator:
        env = {**emulator_env(emulator.url, scripts), "DEVSTACK_BLOB_PORT": str(blob_port)}
        with local_stack(env, tick_seconds=1) as (_, base):
            yield Stack(base, scripts, blob_port)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `scripts/ensure-chromium` (make test does it first)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, console_stack: Stack, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in a fresh context: the browser's zone is New York, its locale en-US."""
    context = browser.new_context(
        base_url=console_stack.base,
        timezone_id="America/New_York",
        locale="en-US",
        viewport={"width": 1280, "height": 900},
        bypass_csp=True,  # lets the accessibility scan inject axe-core
    )
    context.set_default_timeout(10_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => (await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target)}))"
    )
    return list(result)


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no sideways scrolling)."""
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))
