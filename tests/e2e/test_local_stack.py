"""The local stack as a newcomer runs it: `python -m devstack`, real HTTP, Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest

from devstack.process import local_stack

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]
ROOT = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
                parents[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    family = {pid}
    while True:
        more = {child for child, parent in parents.items() if parent in family} - family
        if not more:
            return family
        family |= more


def _listening_ports(pid: int) -> set[int]:
    """TCP ports `pid` and its descendants listen on (read from /proc: no extra tools)."""
    inodes: set[str] = set()
    for member in _descendants(pid):
        try:
            for fd in Path(f"/proc/{member}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def stack() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    with local_stack(tick_seconds=2) as running:
        yield running


def test_a_newcomer_schedules_lists_and_cancels_a_job(stack: tuple[subprocess.Popen[bytes], str]) -> None:
    _, base = stack
    job = {
        "name": "nightly-churn-training",
        "job_type": "model_training",
        "task": {"kind": "databricks_job", "job_id": 123},
        "schedule": {"cron": "30 1 * * *", "timezone": "America/New_York"},
    }
    with httpx.Client(base_url=base, timeout=10) as http:
        created = http.post("/api/jobs/schedule", json=job)
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]
        assert [i["job_id"] for i in http.get("/api/jobs").json()["items"]] == [job_id]
        assert http.delete(f"/api/jobs/{job_id}").json()["status"] == "CANCELLED"
        bad = http.post("/api/jobs/schedule", json={**job, "schedule": {"cron": "nope"}})
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        assert http.get("/api/docs").status_code == 200
        assert http.get("/outside-the-prefix").status_code == 404


def test_ctrl_c_stops_everything_it_started(stack: tuple[subprocess.Popen[bytes], str]) -> None:
    process, base = stack
    port = int(base.rsplit(":", 1)[1])
    ports = _listening_ports(process.pid)
    assert port in ports and len(ports) >= 2  # the API and Azurite
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends to the foreground group
    assert process.wait(timeout=30) == 0
    time.sleep(0.5)
    for p in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", p)) != 0, f"port {p} still listening"


def test_a_one_time_job_fires_within_a_second_of_its_time(stack: tuple[subprocess.Popen[bytes], str]) -> None:
    _, base = stack
    at = datetime.now(UTC) + timedelta(seconds=6)
    job = {
        "name": "one-shot",
        "job_type": "other",
        "task": {"kind": "databricks_job", "job_id": 7},
        "schedule": {"at": at.isoformat()},
    }
    with httpx.Client(base_url=base, timeout=10) as http:
        job_id = http.post("/api/jobs/schedule", json=job).json()["job_id"]
        deadline = time.monotonic() + 30
        runs: list = []
        while time.monotonic() < deadline:
            runs = http.get(f"/api/jobs/{job_id}/runs").json()["items"]
            if runs and runs[0]["state"] != "SCHEDULED":
                break
            time.sleep(0.3)
        (run,) = runs
        # The local stack's Databricks emulator has no job 7: the launch is refused, and says why.
        assert run["state"] == "FAILED" and "launch refused" in run["reason"], run
        (attempt,) = run["attempts"]
        launched = datetime.fromisoformat(attempt["launched_at"].replace("Z", "+00:00"))
        scheduled = datetime.fromisoformat(run["scheduled_for"].replace("Z", "+00:00"))
        assert timedelta(0) <= launched - scheduled < timedelta(seconds=1)
        assert attempt["failure"] == "launch_error"
        # The end of its only run completes the job (written just after the run's end).
        status = ""
        while time.monotonic() < deadline + 5 and status != "COMPLETED":
            status = http.get(f"/api/jobs/{job_id}").json()["status"]
            time.sleep(0.1)
        assert status == "COMPLETED"
