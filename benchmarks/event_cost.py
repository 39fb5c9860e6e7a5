"""What an event costs in storage: a BlobCreated event for a container nobody watches, one for a
watched container whose blob does not match, a file that starts a run, one that joins it, a
duplicate delivery, a webhook call and its retry; then a file run from its event to its end.

    .venv/bin/python -m benchmarks.event_cost

In-memory tables that count one request per call (as the Azure adapter's pipeline counter does)
and the entities each write touches; the Service Bus twin; the fake Databricks; a simulated
clock. 50 jobs watch other containers, so an index that scanned jobs would show it.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.run_cost import Meter, _deliver, _watchdog_pass
from devstack.service_bus_twin import ServiceBusTwin
from shared.adapters.table import OperationCounter
from shared.bootstrap import Tables, build
from shared.config import Settings
from shared.domain.job import Actor, JobDefinition
from tests.fakes.clock import FixedClock
from tests.fakes.databricks import FakeDatabricks, FakeOutcome
from tests.fakes.memory_table import InMemoryTable

T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
ACTOR = Actor(id="bench", name="bench")


def event(name: str, container: str = "landing", etag: str | None = None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
        "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": T0.isoformat(),
        "data": {
            "api": "PutBlob",
            "url": f"https://acct.blob.core.windows.net/{container}/{name}",
            "eTag": etag or f"0x{uuid.uuid4().hex[:16].upper()}",
        },
    }


def definition(name: str, triggers: list[dict[str, Any]]) -> JobDefinition:
    return JobDefinition.model_validate(
        {
            "name": name,
            "job_type": "data_processing",
            "task": {"kind": "databricks_job", "job_id": 1, "parameters": {"files": "{{trigger.files}}"}},
            "triggers": triggers,
        }
    )


def main() -> int:
    clock = FixedClock(T0)
    counter = OperationCounter()
    broker = ServiceBusTwin(clock)
    fake = FakeDatabricks(clock)
    fake.outcomes.append(FakeOutcome.HANG)
    tables = Tables(jobs=InMemoryTable("jobs", counter), runs=InMemoryTable("runs", counter))
    s = build(Settings(RUN_SHARDS=16), tables=tables, clock=clock, sender=broker, databricks=fake)
    for i in range(50):
        s.job_service.create(
            "team-a", ACTOR, definition(f"other-{i}", [{"kind": "file_arrival", "container": f"c{i:03d}"}])
        )
    trigger = {
        "kind": "file_arrival",
        "container": "landing",
        "prefix": "sales/",
        "wait_after_last_change": "PT1M",
    }
    job = s.job_service.create("team-a", ACTOR, definition("load", [trigger]))
    hook = s.job_service.create("team-a", ACTOR, definition("hook", [{"kind": "webhook"}]))
    counter.take()

    rows: list[tuple[str, int, int, int]] = []

    def measure(what: str, action: Any) -> None:
        sent = len(broker.sent)
        action()
        requests, entities = counter.take()
        rows.append((what, requests, entities, len(broker.sent) - sent))

    first = event("sales/a.csv")
    measure("unwatched container", lambda: s.events.blob_event(event("x.csv", container="elsewhere")))
    measure("watched container, blob not matching", lambda: s.events.blob_event(event("other/a.csv")))
    measure("a file that starts a run", lambda: s.events.blob_event(first))
    clock.set(T0 + timedelta(seconds=10))
    measure("a file that joins the open run", lambda: s.events.blob_event(event("sales/b.csv")))
    measure("a duplicate delivery", lambda: s.events.blob_event(first))
    measure(
        "an event that completes no blob",
        lambda: s.events.blob_event({**first, "data": {**first["data"], "api": "CreateFile"}}),
    )
    measure("a webhook call", lambda: s.events.webhook("team-a", hook.id, "k1", {"a": "b"}, "bench"))
    measure(
        "the same call again (retry)", lambda: s.events.webhook("team-a", hook.id, "k1", {"a": "b"}, "bench")
    )

    print("| event | table requests | entities written | queue sends |")
    print("| --- | --- | --- | --- |")
    for what, requests, entities, sends in rows:
        print(f"| {what} | {requests} | {entities} | {sends} |")

    # The file run from its first event to its end (a 1-minute Databricks run), less the handling above.
    meter = Meter(counter, broker, fake)
    for at in (T0.replace(minute=1), T0):  # what a watchdog pass costs with nothing overdue
        clock.set(at)
        s.watchdog.run_once()
        meter.fixed[_watchdog_pass(at)] = counter.take()[0]
    clock.set(T0 + timedelta(seconds=10))
    _deliver(s, broker, fake, clock, clock.now() + timedelta(minutes=2), meter)
    (run,) = [r for r, _ in s.run_repository.recent(s.due_index.shard_for(job), "team-a", job.id)]
    assert run.state.value == "SUCCEEDED" and run.cause and run.cause.files and len(run.cause.files) == 2, run
    print(
        f"\nthen the run of those 2 files, from its (early, then due) launch to its end: "
        f"launch {meter.requests['launch']} requests ({meter.entities['launch']} entities), "
        f"polls {meter.requests['polls']}, end {meter.requests['end']}, "
        f"watchdog {meter.requests['watchdog']} (beyond what its passes cost anyway)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
