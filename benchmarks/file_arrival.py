"""From a file's upload to its run's launch call, on the local stack (issue 13, file arrival triggers).

    .venv/bin/python -m benchmarks.file_arrival [--files 100] [--gap 0.3] [--poll SECONDS]

Starts the Databricks emulator and the local stack (Azurite Table and Blob, the Service Bus twin,
the function host and its local Event Grid stand-in, as `make run`), creates a job with a file
arrival trigger on container `landing`, prefix `bench/` (wait_after_last_change 0, overlap
allow), uploads one file to warm the launch path up, then `--files` files one after another, a
random 0-2 x `--gap` seconds apart (so uploads fall at every point of the poll interval), and
waits until every file's run was launched.

For each file: *upload finished* (the Storage SDK's upload returned) -> *event delivered* (the
local Event Grid dispatcher hands the BlobCreated event to `blob_created`; from the stack's log)
-> *launch call received* (the emulator's start time of the Databricks run for the file's run;
a file that joined a run not yet launching counts that run's launch). The first leg is the event
source's polling (plus one listing of the account); the second is the scheduler: the handler
records the run and sends its launch message (until `blob_created` returns, from its log line),
then the launch handler takes the message and calls Databricks.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
from azure.storage.blob import BlobServiceClient, ContainerClient

from benchmarks.admission import _pct
from devstack.azurite import blob_connection_string, free_port
from devstack.blob_events import DEFAULT_POLL_SECONDS
from devstack.databricks_emulator import Emulator
from devstack.process import emulator_env, local_stack

_TIME = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
_DELIVERY = re.compile(
    _TIME + r"INFO devstack\.host: delivering BlobCreated "
    r"/blobServices/default/containers/landing/blobs/(\S+) to blob_created \(event (\S+), attempt 1\)"
)
_HANDLED = re.compile(_TIME + r"INFO functions\.events: event (\S+): ")


def run(files: int, gap: float, poll: float, timeout: float, seed: int = 13) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as scratch, Emulator(setup_delay=0.1) as emulator:
        log_path = Path(scratch) / "stack.log"
        blob_port = free_port()
        env = {
            **emulator_env(emulator.url, scratch),
            "DEV_TENANT": "bench",
            "DEVSTACK_BLOB_PORT": str(blob_port),
            "DEVSTACK_BLOB_POLL_SECONDS": str(poll),
        }
        with (
            local_stack(env, tick_seconds=5, log_path=log_path) as (_, base),
            httpx.Client(base_url=base, timeout=30) as http,
            BlobServiceClient.from_connection_string(blob_connection_string(blob_port)) as blobs,
        ):
            landing = blobs.create_container("landing")
            job_id = _job(http, emulator)
            _upload(landing, "bench/warm-up.csv")
            _, warm_up_runs = _launches(http, emulator, job_id, {"bench/warm-up.csv"}, time.monotonic() + 60)
            uploaded: dict[str, float] = {}
            started = time.monotonic()
            for i in range(files):
                time.sleep(rng.uniform(0, 2 * gap))
                name = f"bench/f{i:03d}.csv"
                uploaded[name] = _upload(landing, name)
            launched, runs = _launches(http, emulator, job_id, set(uploaded), started + timeout)
            elapsed = time.monotonic() - started
            delivered, handled = _deliveries(log_path.read_text())
    return _figures(uploaded, delivered, handled, launched) | {
        "runs": runs - warm_up_runs,
        "elapsed": elapsed,
        "poll": poll,
    }


def databricks_job(emulator: Emulator) -> int:
    """A job at the emulator for the scheduler's jobs to launch: its Databricks job id."""
    r = httpx.post(
        f"{emulator.url}/api/2.2/jobs/create",
        headers={"Authorization": "Bearer bench"},
        json={"name": "bench", "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/bench"}}]},
    )
    r.raise_for_status()
    return int(r.json()["job_id"])


def _job(http: httpx.Client, emulator: Emulator) -> str:
    body = {
        "name": "file-arrival-latency",
        "job_type": "other",
        "task": {
            "kind": "databricks_job",
            "job_id": databricks_job(emulator),
            "parameters": {"files": "{{trigger.files}}"},
        },
        "triggers": [{"kind": "file_arrival", "container": "landing", "prefix": "bench/", "suffix": ".csv"}],
        "overlap": "allow",
    }
    created = http.post("/api/jobs/schedule", json=body)
    created.raise_for_status()
    return str(created.json()["job_id"])


def _upload(landing: ContainerClient, name: str) -> float:
    landing.upload_blob(name, b"id,amount\n1,10\n")
    return time.time()


def _launches(
    http: httpx.Client, emulator: Emulator, job_id: str, names: set[str], deadline: float
) -> tuple[dict[str, float], int]:
    """When the emulator received the launch call of each blob's run (epoch s), and the job's runs."""
    while time.monotonic() < deadline:
        started = {r.run_id: r.start_ms / 1000 for r in emulator.runs()}
        items = http.get(f"/api/jobs/{job_id}/runs", params={"limit": 500}).json()["items"]
        found: dict[str, float] = {}
        for item in items:
            run_id = item.get("databricks_run_id")
            if item["trigger"] != "file_arrival" or run_id not in started:
                continue
            for f in (item.get("cause") or {}).get("files") or []:
                found[f["url"].split("/landing/", 1)[1]] = started[run_id]
        if names <= set(found):
            return found, len(items)
        time.sleep(1)
    raise SystemExit(f"not every file's run was launched in time ({len(names)} files)")


def _deliveries(log: str) -> tuple[dict[str, float], dict[str, float]]:
    """Blob name -> when its BlobCreated event was first handed to the function, and when the function
    had handled it (epoch s, from the stack's log)."""
    delivered: dict[str, float] = {}
    blob_of: dict[str, str] = {}  # event id -> blob name
    handled: dict[str, float] = {}
    for line in log.splitlines():
        if m := _DELIVERY.match(line):
            blob_of[m.group(3)] = m.group(2)
            delivered.setdefault(m.group(2), _log_time(m.group(1)))
        elif (m := _HANDLED.match(line)) and m.group(2) in blob_of:
            handled.setdefault(blob_of[m.group(2)], _log_time(m.group(1)))
    return delivered, handled


def _log_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()  # the log's local time


def _figures(
    uploaded: dict[str, float],
    delivered: dict[str, float],
    handled: dict[str, float],
    launched: dict[str, float],
) -> dict[str, Any]:
    """Milliseconds per file for the whole way and its legs."""
    total, polling, rest, handling, launching = [], [], [], [], []
    for name, at in uploaded.items():
        total.append((launched[name] - at) * 1000)
        polling.append((delivered[name] - at) * 1000)
        rest.append((launched[name] - delivered[name]) * 1000)
        handling.append((handled[name] - delivered[name]) * 1000)
        launching.append((launched[name] - handled[name]) * 1000)
    legs = [
        ("upload -> launch call received", total),
        ("  upload -> event delivered (polling)", polling),
        ("  event delivered -> launch call", rest),
        ("    of which blob_created handling", handling),
        ("    of which launch message -> call", launching),
    ]
    return {"files": len(uploaded), "legs": legs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.file_arrival", description=__doc__)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.3, help="mean seconds between uploads")
    parser.add_argument("--poll", type=float, default=DEFAULT_POLL_SECONDS, help="DEVSTACK_BLOB_POLL_SECONDS")
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds for every file's launch")
    args = parser.parse_args(argv)
    f = run(args.files, args.gap, args.poll, args.timeout)
    print(
        f"{f['files']} uploads to a watched container, {args.gap:g} s apart on average, polled every "
        f"{f['poll']:g} s: {f['runs']} runs launched in {f['elapsed']:.0f} s"
    )
    print(f"{'':40} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8}")
    for label, values in f["legs"]:
        mean = sum(values) / len(values)
        print(f"{label:40} {_pct(values, 50):8.0f} {_pct(values, 99):8.0f} {max(values):8.0f} {mean:8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
