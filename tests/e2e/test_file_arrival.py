"""A file landing in blob storage starts its job's run, on the local stack as `make run` starts it.

`python -m devstack` runs Azurite (Table and Blob), the function host and its local Event Grid
stand-in; the test starts the Databricks emulator itself (to read what the launch call carried),
creates a job with a file arrival trigger through the HTTP API, and uploads blobs with the Azure
Storage SDK.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from devstack.azurite import blob_connection_string, free_port
from devstack.databricks_emulator import Emulator
from devstack.process import emulator_env, local_stack

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(180)]
FILES = "{{trigger.files}}"  # becomes a JSON list of the run's file URLs


@dataclass
class Stack:
    http: httpx.Client
    emulator: Emulator
    databricks: httpx.Client  # the emulator's Jobs API
    landing: ContainerClient

    def databricks_job(self) -> int:
        """A job in the emulator (one simulated notebook task) for the scheduler to run."""
        task = {"task_key": "load", "notebook_task": {"notebook_path": "/load_sales"}}
        r = self.databricks.post("/api/2.2/jobs/create", json={"name": "load-sales", "tasks": [task]})
        r.raise_for_status()
        return int(r.json()["job_id"])

    def runs(self, job_id: str) -> list[dict[str, Any]]:
        r = self.http.get(f"/api/jobs/{job_id}/runs")
        r.raise_for_status()
        return list(r.json()["items"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    scratch = tmp_path_factory.mktemp("file-arrival")
    blob_port = free_port()
    with Emulator(setup_delay=0.1) as emulator:
        env = {**emulator_env(emulator.url, scratch), "DEVSTACK_BLOB_PORT": str(blob_port)}
        with (
            local_stack(env, tick_seconds=1) as (_, base),
            httpx.Client(base_url=base, timeout=15) as http,
            httpx.Client(base_url=emulator.url, headers={"Authorization": "Bearer t"}, timeout=15) as dbx,
            BlobServiceClient.from_connection_string(blob_connection_string(blob_port)) as blobs,
        ):
            yield Stack(http, emulator, dbx, blobs.create_container("landing"))


def test_a_matching_file_starts_a_run_that_gets_its_url(stack: Stack) -> None:
    databricks_job = stack.databricks_job()
    job = {
        "name": "load-sales",
        "job_type": "other",
        "task": {"kind": "databricks_job", "job_id": databricks_job, "parameters": {"files": FILES}},
        "triggers": [{"kind": "file_arrival", "container": "landing", "prefix": "sales/", "suffix": ".csv"}],
        "overlap": "allow",
    }
    created = stack.http.post("/api/jobs/schedule", json=job)
    assert created.status_code == 201, created.text
    job_id = created.json()["job_id"]
    assert created.json()["job"]["schedule"] is None

    stack.landing.upload_blob("other/x.csv", b"not watched")  # another prefix
    stack.landing.upload_blob("sales/notes.txt", b"not watched")  # another suffix
    url = stack.landing.upload_blob("sales/day1.csv", b"id,amount\n1,10\n").url

    run = _wait_for_launch(stack, job_id, seconds=60)

    assert run["cause"]["kind"] == "file_arrival"
    assert [f["url"] for f in run["cause"]["files"]] == [url]
    # What the launch call carried: the task's parameter with {{trigger.files}} filled in.
    got = stack.databricks.get("/api/2.2/jobs/runs/get", params={"run_id": run["databricks_run_id"]})
    got.raise_for_status()
    assert got.json()["job_id"] == databricks_job
    parameters = {p["name"]: p["value"] for p in got.json().get("job_parameters", [])}
    assert json.loads(parameters["files"]) == [url]

    # Files that do not match start nothing, before or after the one that does.
    stack.landing.upload_blob("other/y.csv", b"not watched")
    time.sleep(2.0)  # several polls and deliveries
    runs = stack.runs(job_id)
    assert [r["run_id"] for r in runs] == [run["run_id"]]
    launched = [r.run_id for r in stack.emulator.runs() if r.job_id == databricks_job]
    assert launched == [run["databricks_run_id"]]


def test_a_file_in_an_unwatched_place_starts_nothing(stack: Stack) -> None:
    databricks_job = stack.databricks_job()
    job = {
        "name": "only-sales",
        "job_type": "other",
        "task": {"kind": "databricks_job", "job_id": databricks_job},
        "triggers": [{"kind": "file_arrival", "container": "landing", "prefix": "sales/", "suffix": ".csv"}],
    }
    job_id = stack.http.post("/api/jobs/schedule", json=job).json()["job_id"]
    stack.landing.upload_blob("other/x.csv", b"not watched", overwrite=True)
    stack.landing.upload_blob("salesx/x.csv", b"not watched", overwrite=True)
    time.sleep(2.0)
    assert stack.runs(job_id) == []
    assert not [r for r in stack.emulator.runs() if r.job_id == databricks_job]


def _wait_for_launch(stack: Stack, job_id: str, seconds: float) -> dict[str, Any]:
    """The job's file arrival run once Databricks has its run id (AssertionError after `seconds`)."""
    deadline = time.monotonic() + seconds
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = stack.runs(job_id)
        launched = [r for r in runs if r["trigger"] == "file_arrival" and r.get("databricks_run_id")]
        if launched:
            return launched[0]
        time.sleep(0.25)
    raise AssertionError(f"no file arrival run was launched within {seconds:.0f} s: {runs}")
