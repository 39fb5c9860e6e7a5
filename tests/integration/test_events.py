"""Event triggers (issue 13), on the in-memory table and Azurite: files and webhook calls start
exactly one run per cause, whatever is duplicated, reordered, late or concurrent."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.adapters.databricks import Phase
from shared.domain.errors import Conflict, InvalidInput
from shared.domain.job import Job, JobDefinition
from shared.domain.run import Run, RunState, Trigger
from shared.services import events
from tests.conftest import TableFactory
from tests.fakes.databricks import FakeOutcome
from tests.world import ALICE, T0, World

ACCOUNT = "landingacct"


def blob_event(
    name: str,
    *,
    container: str = "landing",
    etag: str | None = None,
    api: str = "PutBlob",
    event_id: str | None = None,
    event_type: str = "Microsoft.Storage.BlobCreated",
    account: str = ACCOUNT,
) -> dict[str, Any]:
    """A BlobCreated event as Event Grid delivers it (its Event Grid schema)."""
    url = f"https://{account}.blob.core.windows.net/{container}/{name}"
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": f"/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{account}",
        "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
        "eventType": event_type,
        "eventTime": "2026-06-01T12:00:00Z",
        "dataVersion": "",
        "data": {
            "api": api,
            "url": url,
            "eTag": etag or f"0x8D{abs(hash(name)) % 10**12:012X}",
            "contentType": "text/csv",
            "contentLength": 10,
            "blobType": "BlockBlob",
            "sequencer": "0000000000000000000000000000000100000000000000a1",
        },
    }


def world(table_factory: TableFactory) -> World:
    w = World(table_factory)
    w.s.ensure_tables()
    return w


def file_job(w: World, tenant: str = "team-a", **trigger: Any) -> Job:
    spec = {"kind": "file_arrival", "container": "landing", "prefix": "sales/", "suffix": ".csv", **trigger}
    return w.job(
        tenant,
        task={"kind": "databricks_job", "job_id": 7, "parameters": {"files": "{{trigger.files}}"}},
        schedule=None,
        triggers=[spec],
    )


def file_runs(w: World, job: Job) -> list[Run]:
    return [r for r in w.runs(job) if r.trigger is Trigger.FILE_ARRIVAL]


def urls(run: Run) -> list[str]:
    assert run.cause is not None and run.cause.files is not None
    return [f.url for f in run.cause.files]


def launched(run: Run) -> bool:
    return run.databricks_run_id is not None


def sent_files(w: World, run: Run) -> list[str]:
    params = w.fake.runs[run.databricks_run_id or 0].parameters
    return list(json.loads(params["files"]))


def test_a_file_starts_one_run_that_lists_it(table_factory: TableFactory) -> None:
    w = world(table_factory)
    job = file_job(w)
    event = blob_event("sales/day1.csv")
    assert w.s.events.blob_event(event) == ["started"]
    w.deliver()
    (run,) = file_runs(w, job)
    assert launched(run) and run.cause is not None
    assert run.cause.kind is Trigger.FILE_ARRIVAL and run.cause.files is not None
    assert run.cause.files[0].event_id == event["id"]
    assert sent_files(w, run) == [event["data"]["url"]] == urls(run)


def test_duplicates_and_events_that_do_not_complete_a_blob_start_nothing(table_factory: TableFactory) -> None:
    w = world(table_factory)
    job = file_job(w)
    event = blob_event("sales/day1.csv", etag="0x1")
    assert w.s.events.blob_event(event) == ["started"]
    assert w.s.events.blob_event(event) == ["duplicate"]  # Event Grid delivered it again
    again = blob_event("sales/day1.csv", etag="0x1")  # a second event, a new id, the same blob version
    assert w.s.events.blob_event(again) == ["duplicate"]
    assert w.s.events.blob_event(blob_event("sales/day2.csv", api="CreateFile")) == []
    assert (
        w.s.events.blob_event(blob_event("sales/day2.csv", event_type="Microsoft.Storage.BlobDeleted")) == []
    )
    w.deliver()
    assert len(file_runs(w, job)) == 1
    assert w.s.events.blob_event(event) == ["duplicate"]  # late: after its run launched
    w.deliver()
    assert len(file_runs(w, job)) == 1
    # A new version of the same blob (overwritten: a new ETag) is a new cause.
    assert w.s.events.blob_event(blob_event("sales/day1.csv", etag="0x2")) == ["started"]
    w.deliver()
    assert len(file_runs(w, job)) == 2


def test_only_matching_blobs_in_watched_containers_count(table_factory: TableFactory) -> None:
    w = world(table_factory)
    job = file_job(w, account=ACCOUNT)
    assert w.s.events.blob_event(blob_event("sales/day1.csv", container="elsewhere")) == []
    assert w.s.events.blob_event(blob_event("other/day1.csv")) == []
    assert w.s.events.blob_event(blob_event("sales/day1.parquet")) == []
    assert w.s.events.blob_event(blob_event("sales/day1.csv", account="otheracct")) == []
    assert file_runs(w, job) == []


def test_files_within_the_wait_fold_into_one_run(table_factory: TableFactory) -> None:
    w = world(table_factory)
    job = file_job(w, wait_after_last_change="PT1M")
    names = ["sales/a.csv", "sales/b.csv", "sales/c.csv"]
    outcomes = []
    for i, name in enumerate(names):
        w.clock.set(T0 + timedelta(seconds=20 * i))
        outcomes += w.s.events.blob_event(blob_event(name))
    assert outcomes == ["started", "joined", "joined"]
    w.deliver(until=T0 + timedelta(seconds=99))  # the first two launches come early: they wait
    (run,) = file_runs(w, job)
    assert run.state is RunState.SCHEDULED and run.scheduled_for == T0 + timedelta(seconds=100)
    w.deliver(until=T0 + timedelta(seconds=101))
    (run,) = file_runs(w, job)
    assert launched(run) and run.sealed_at is not None
    assert sent_files(w, run) == urls(run) == [blob_event(n)["data"]["url"] for n in names]
    assert w.s.events.blob_event(blob_event("sales/d.csv")) == ["started"]  # after the launch: a new run
    w.deliver(until=T0 + timedelta(seconds=200))
    assert [len(urls(r)) for r in file_runs(w, job)] == [3, 1]


def test_runs_start_at_least_min_time_between_triggers_apart(table_factory: TableFactory) -> None:
    w = world(table_factory)
    job = file_job(w, min_time_between_triggers="PT5M")
    w.s.events.blob_event(blob_event("sales/a.csv"))
    w.deliver(until=T0 + timedelta(seconds=1))
    w.clock.set(T0 + timedelta(minutes=1))
    assert w.s.events.blob_event(blob_event("sales/b.csv")) == ["started"]
    assert w.s.events.blob_event(blob_event("sales/c.csv")) == ["joined"]
    w.deliver(until=T0 + timedelta(minutes=4))
    first, second = file_runs(w, job)
    assert launched(first) and second.state is RunState.SCHEDULED
    assert second.scheduled_for == first.scheduled_for + timedelta(minutes=5)
    w.deliver(until=T0 + timedelta(minutes=6))
    second = w.read(second)
    assert launched(second) and len(urls(second)) == 2


def test_files_wait_for_the_active_run_of_a_job_that_runs_one_at_a_time(table_factory: TableFactory) -> None:
    """With overlap `skip` (the default), a file run is not skipped while another run is active: it
    keeps taking files, and starts when the active run has ended."""
    w = world(table_factory)
    job = file_job(w)
    w.fake.outcomes.append(FakeOutcome.HANG)
    w.s.events.blob_event(blob_event("sales/a.csv"))
    w.deliver(until=T0 + timedelta(seconds=1))
    (first,) = file_runs(w, job)
    w.clock.set(T0 + timedelta(seconds=5))
    assert w.s.events.blob_event(blob_event("sales/b.csv")) == ["started"]
    w.deliver(until=T0 + timedelta(seconds=6))
    w.clock.set(T0 + timedelta(seconds=30))
    assert w.s.events.blob_event(blob_event("sales/c.csv")) == ["joined"]
    w.deliver(until=T0 + timedelta(minutes=3))
    first, second = file_runs(w, job)
    assert first.state is RunState.RUNNING and second.state is RunState.SCHEDULED
    w.fake.finish(first.databricks_run_id or 0, Phase.SUCCEEDED)
    w.run_until(T0 + timedelta(minutes=8))
    first, second = file_runs(w, job)
    assert first.state is RunState.SUCCEEDED and second.state is RunState.SUCCEEDED
    assert [u.rsplit("/", 1)[1] for u in sent_files(w, second)] == ["b.csv", "c.csv"]


def test_a_run_lists_at_most_max_files(table_factory: TableFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "MAX_FILES", 3)
    w = world(table_factory)
    job = file_job(w, wait_after_last_change="PT1M")
    outcomes = [o for i in range(7) for o in w.s.events.blob_event(blob_event(f"sales/{i}.csv"))]
    assert outcomes == ["started", "joined", "joined", "started", "joined", "joined", "started"]
    w.deliver(until=T0 + timedelta(minutes=2))
    assert sorted(len(urls(r)) for r in file_runs(w, job)) == [1, 3, 3]


def test_a_paused_job_records_or_drops_its_events_and_resume_does_not_replay_them(
    table_factory: TableFactory,
) -> None:
    w = world(table_factory)
    keeps = file_job(w, "team-a", wait_after_last_change="PT1M")
    keeps = w.s.job_service.update(
        keeps.tenant,
        keeps.id,
        ALICE,
        keeps.definition.model_copy(update={"record_skipped_while_paused": True}),
    )
    drops = file_job(w, "team-b")
    early = blob_event("sales/early.csv")
    assert sorted(w.s.events.blob_event(early)) == ["started", "started"]
    w.deliver(until=T0 + timedelta(seconds=1))  # drops' run launches; keeps' waits a minute for more
    for job in (keeps, drops):
        w.s.job_service.pause(job.tenant, job.id, ALICE)
    w.clock.set(T0 + timedelta(seconds=10))
    late = blob_event("sales/late.csv")
    assert sorted(w.s.events.blob_event(late)) == ["dropped", "skipped"]
    w.deliver(until=T0 + timedelta(minutes=5))
    runs = file_runs(w, keeps)
    assert [(r.state, urls(r)) for r in runs] == [
        (RunState.SKIPPED, [early["data"]["url"]]),  # gathered before the pause, due after it
        (RunState.SKIPPED, [late["data"]["url"]]),
    ]
    assert [launched(r) for r in file_runs(w, drops)] == [True]  # launched before the pause
    for job in (keeps, drops):
        w.s.job_service.resume(job.tenant, job.id, ALICE)
    assert sorted(w.s.events.blob_event(late)) == ["duplicate", "duplicate"]  # redelivered after resume
    w.deliver(until=T0 + timedelta(minutes=10))
    assert len(file_runs(w, keeps)) == 2 and len(file_runs(w, drops)) == 1


def test_files_skipped_while_paused_run_when_replayed(table_factory: TableFactory) -> None:
    w = world(table_factory)
    job = file_job(w)
    records = job.definition.model_copy(update={"record_skipped_while_paused": True})
    job = w.s.job_service.update(job.tenant, job.id, ALICE, records)
    w.s.job_service.pause(job.tenant, job.id, ALICE)
    w.s.events.blob_event(blob_event("sales/a.csv"))
    w.s.job_service.resume(job.tenant, job.id, ALICE)
    w.deliver()
    assert [r.state for r in file_runs(w, job)] == [RunState.SKIPPED]  # resuming replays nothing
    (replay,) = w.s.events.replay(job.tenant, job.id, "Alice")
    assert w.s.events.replay(job.tenant, job.id, "Alice") == []
    w.deliver()
    replay = w.read(replay)
    url = blob_event("sales/a.csv")["data"]["url"]
    assert launched(replay) and sent_files(w, replay) == urls(replay) == [url]


def test_malformed_events_are_rejected_and_change_nothing(table_factory: TableFactory) -> None:
    w = world(table_factory)
    job = file_job(w)
    good = blob_event("sales/a.csv")
    bad: list[dict[str, Any]] = [
        {},
        {**good, "id": ""},
        {**good, "subject": "/blobServices/default/containers/landing"},
        {**good, "data": {"api": "PutBlob"}},
        {**good, "eventTime": "yesterday"},
    ]
    for event in bad:
        with pytest.raises(InvalidInput):
            w.s.events.blob_event(event)
    assert w.runs(job) == []


def test_a_crash_after_the_write_loses_nothing(table_factory: TableFactory) -> None:
    """The handler dies after recording the run, before sending its launch: Event Grid delivers the
    event again (the duplicate sends the launch), or else the watchdog sends it."""
    w = world(table_factory)
    job = file_job(w)
    real_send = w.s.run_context.send
    w.s.run_context.send = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("host died"))  # type: ignore[method-assign]
    event = blob_event("sales/a.csv")
    with pytest.raises(RuntimeError):
        w.s.events.blob_event(event)
    w.s.run_context.send = real_send  # type: ignore[method-assign]
    assert w.s.events.blob_event(event) == ["duplicate"]
    w.deliver()
    (run,) = file_runs(w, job)
    assert launched(run)

    other = file_job(w, "team-b", container="landing2")
    w.s.run_context.send = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("host died"))  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        w.s.events.blob_event(blob_event("sales/b.csv", container="landing2"))
    w.s.run_context.send = real_send  # type: ignore[method-assign]
    w.run_until(w.clock.now() + timedelta(minutes=5))  # no redelivery: the watchdog sends it
    assert [r.state for r in file_runs(w, other)] == [RunState.SUCCEEDED]


def test_a_stale_watch_row_is_dropped_when_met(table_factory: TableFactory) -> None:
    w = world(table_factory)
    job = file_job(w)
    assert [x.job_id for x in w.s.job_repository.watchers("landing")] == [job.id]
    edited = JobDefinition.model_validate({**job.definition.model_dump(), "triggers": [{"kind": "webhook"}]})
    w.s.job_service.update(job.tenant, job.id, ALICE, edited)
    assert w.s.job_repository.watchers("landing") == []
    # A crash between the job's write and the old row's removal leaves the row: the handler drops it.
    w.s.job_repository._watch(None, job)  # type: ignore[attr-defined]
    assert w.s.events.blob_event(blob_event("sales/a.csv")) == ["stale"]
    assert w.s.job_repository.watchers("landing") == []
    assert w.runs(job) == []


@pytest.mark.azurite
def test_concurrent_and_duplicated_events_give_one_run_per_file(azurite_tables: TableFactory) -> None:
    """16 events (8 files, each delivered twice) handled at once by 8 threads: every file is in
    exactly one run, and no run was started twice."""
    w = world(azurite_tables)
    job = file_job(w)
    events = [blob_event(f"sales/{i}.csv") for i in range(8)]
    deliveries = events + [dict(e) for e in reversed(events)]
    outcomes: list[str] = []
    lock = threading.Lock()

    def handle(items: list[dict[str, Any]]) -> None:
        for event in items:
            for _ in range(5):
                try:
                    got = w.s.events.blob_event(event)
                    break
                except Conflict:
                    continue
            with lock:
                outcomes.extend(got)

    threads = [threading.Thread(target=handle, args=(deliveries[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    w.deliver()
    runs = file_runs(w, job)
    listed = [u for r in runs for u in urls(r)]
    assert sorted(listed) == sorted(e["data"]["url"] for e in events)  # each file once
    assert outcomes.count("duplicate") == 8
    assert outcomes.count("started") == len(runs)
    assert all(launched(r) for r in runs)
    assert len({r.databricks_run_id for r in runs}) == len(runs)


# -- webhooks -------------------------------------------------------------------------------------------


def webhook_job(w: World, **definition: Any) -> Job:
    params = {"model": "{{trigger.payload.model}}", "missing": "{{trigger.payload.nope}}"}
    body: dict[str, Any] = {
        "task": {"kind": "databricks_job", "job_id": 8, "parameters": params},
        "schedule": None,
        "triggers": [{"kind": "webhook"}],
        **definition,
    }
    return w.job(**body)


def test_a_webhook_call_starts_one_run_per_idempotency_key(table_factory: TableFactory) -> None:
    w = world(table_factory)
    job = webhook_job(w)
    run, replayed = w.s.events.webhook(job.tenant, job.id, "call-1", {"model": "churn"}, "studio")
    assert not replayed and run.trigger is Trigger.WEBHOOK
    again, replayed = w.s.events.webhook(job.tenant, job.id, "call-1", {"model": "churn"}, "studio")
    assert replayed and again.run_key == run.run_key
    with pytest.raises(Conflict, match="different body"):
        w.s.events.webhook(job.tenant, job.id, "call-1", {"model": "other"}, "studio")
    w.deliver()
    (stored,) = w.runs(job)
    assert launched(stored) and stored.cause is not None
    assert stored.cause.idempotency_key == "call-1" and stored.cause.payload == {"model": "churn"}
    assert w.fake.runs[stored.databricks_run_id or 0].parameters == {"model": "churn", "missing": ""}
    w.s.events.webhook(job.tenant, job.id, "call-2", {}, "studio")
    w.deliver()
    assert len(w.runs(job)) == 2


def test_webhook_calls_a_job_does_not_take(table_factory: TableFactory) -> None:
    w = world(table_factory)
    scheduled = w.job()
    with pytest.raises(Conflict, match="no webhook trigger"):
        w.s.events.webhook(scheduled.tenant, scheduled.id, "k", {}, "studio")
    job = webhook_job(w)
    w.s.job_service.pause(job.tenant, job.id, ALICE)
    with pytest.raises(Conflict, match="paused"):
        w.s.events.webhook(job.tenant, job.id, "k", {}, "studio")
    assert w.runs(job) == []
    recorder = webhook_job(w, record_skipped_while_paused=True)
    w.s.job_service.pause(recorder.tenant, recorder.id, ALICE)
    run, _ = w.s.events.webhook(recorder.tenant, recorder.id, "k", {}, "studio")
    assert run.state is RunState.SKIPPED and run.reason == "paused"
    w.s.job_service.cancel(job.tenant, job.id, ALICE)
    with pytest.raises(Conflict, match="cancelled"):
        w.s.events.webhook(job.tenant, job.id, "k2", {}, "studio")


@pytest.mark.azurite
def test_concurrent_webhook_retries_start_one_run(azurite_tables: TableFactory) -> None:
    w = world(azurite_tables)
    job = webhook_job(w)
    keys: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        run, _ = w.s.events.webhook(job.tenant, job.id, "same", {"model": "m"}, "studio")
        with lock:
            keys.append(run.run_key)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(keys) == 8 and len(set(keys)) == 1
    assert len(w.runs(job)) == 1


def test_a_job_with_neither_schedule_nor_triggers_runs_when_asked(table_factory: TableFactory) -> None:
    w = world(table_factory)
    job = w.job(schedule=None)
    assert job.status.value == "ACTIVE" and job.next_fire_at is None
    w.s.run_commands.run_now(job.tenant, job.id, ALICE)
    w.run_until(T0 + timedelta(minutes=5))
    (run,) = w.runs(job)
    assert run.state is RunState.SUCCEEDED
    assert w.s.job_service.get(job.tenant, job.id).status.value == "ACTIVE"


def test_cause_stored_by_an_earlier_release_still_reads(table_factory: TableFactory) -> None:
    """An `after` run stored its cause as {job id: run id} before causes had kinds."""
    from shared.domain.run import Cause

    cause = Cause.model_validate({"01J000000000000000000000AA": "x_s-1"})
    assert cause.kind is Trigger.AFTER and cause.runs == {"01J000000000000000000000AA": "x_s-1"}
    assert cause.parameters()["trigger.runs"] == "x_s-1"


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)
