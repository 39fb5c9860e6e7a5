"""Runs started by events: files created in blob storage (`file_arrival`) and webhook calls.

Exactly one run per cause, however often the cause is delivered:

* **Files.** Event Grid delivers each BlobCreated event at least once, and one upload can emit
  several (only `PutBlob`, `PutBlockList`, `CopyBlob` and `FlushWithClose` complete a blob; the
  others are ignored). A file's identity is its URL and version (ETag, else sequencer), so a
  duplicate delivery, or a second event with a new id for the same blob version, finds the
  file's *marker* row and changes nothing. The marker is inserted in the same transaction as the
  run the file joins.
* **Folding.** The trigger's *state* row points at its newest run. While that run has not begun
  to launch (SCHEDULED, not sealed), a new file joins it and moves its launch to
  `wait_after_last_change` after now; otherwise the file opens a new run, due no sooner than
  `min_time_between_triggers` after the previous one. The run records the message it waits for
  (its launch intent) like any other, so the watchdog sends a lost one; the launch handler seals
  the run (one write) before anything else, after which it takes no more files.
* **Webhooks.** `POST /api/jobs/{id}/trigger` with an `Idempotency-Key`: the key's marker is
  inserted with the run; the same key again answers with that run (a different body: 409).

Handling never waits on Databricks: it records the run and sends its launch message; the launch
goes through the usual path (pool admission, retries, timeouts).

A paused job records each event as a SKIPPED run (`record_skipped_while_paused`) or drops it; in
both cases the cause's marker is written, so a late redelivery after the job is resumed does not
start a run for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    Conflict,
    ExternalError,
    InvalidInput,
    NotFound,
)
from shared.domain.job import FileArrivalTrigger, Job, JobStatus
from shared.domain.run import (
    Cause,
    CausedFile,
    Run,
    RunState,
    SkipReason,
    Trigger,
    caused_run_key,
    run_key_time,
)
from shared.services.conflicts import until_saved
from shared.services.messages import launch_id, launch_intent
from shared.services.ports import Watch
from shared.services.run_context import RunContext
from shared.telemetry import metrics

log = logging.getLogger(__name__)

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
# The storage operations that complete a blob; others (e.g. CreateFile before FlushWithClose on
# Data Lake Storage) announce one that is not written yet (Azure/azure-sdk-for-net#47158).
COMPLETING_APIS = frozenset({"PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose"})
MAX_FILES = 100  # files one run lists; the next file opens a new run
EARLY = timedelta(seconds=1)  # a file run's launch this much before its (moved) due time waits


# --- the event ---------------------------------------------------------------------------------------


class _BlobData(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    api: str = Field(max_length=64)
    url: str = Field(min_length=1, max_length=2048)
    e_tag: str | None = Field(None, alias="eTag", max_length=256)
    sequencer: str | None = Field(None, max_length=256)


class _EventGridEvent(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    id: str = Field(min_length=1, max_length=256)
    topic: str = Field(max_length=1024)
    subject: str = Field(min_length=1, max_length=2048)
    event_type: str = Field(alias="eventType", max_length=256)
    event_time: datetime = Field(alias="eventTime")
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BlobCreated:
    """A completed blob, from an Event Grid BlobCreated event."""

    event_id: str
    account: str
    container: str
    blob: str
    url: str
    version: str
    at: datetime

    @property
    def identity(self) -> str:
        return f"{self.account}/{self.container}/{self.blob}|{self.version}"


def parse_blob_event(raw: Mapping[str, Any]) -> BlobCreated | None:
    """The blob a BlobCreated event announces, or None for an event that starts nothing (another
    type, or an operation that does not complete a blob). InvalidInput for a malformed event."""
    try:
        event = _EventGridEvent.model_validate(raw)
    except ValidationError as err:
        raise InvalidInput(f"not an Event Grid event: {_first_error(err)}") from err
    if event.event_type != BLOB_CREATED:
        return None
    try:
        data = _BlobData.model_validate(event.data)
    except ValidationError as err:
        raise InvalidInput(f"not a BlobCreated event: {_first_error(err)}") from err
    if data.api not in COMPLETING_APIS:
        return None
    # subject: /blobServices/default/containers/{container}/blobs/{name}
    head, sep, blob = event.subject.partition("/blobs/")
    container = head.rpartition("/containers/")[2]
    if not sep or not blob or not container or "/" in container:
        raise InvalidInput(f"not a blob subject: {event.subject!r}")
    account = event.topic.rstrip("/").rpartition("/storageAccounts/")[2].lower()
    version = data.e_tag or data.sequencer or event.id
    return BlobCreated(event.id, account, container, unquote(blob), data.url, version, event.event_time)


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc']) or 'event'}: {first['msg']}"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- the handler -------------------------------------------------------------------------------------


class Events:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def blob_event(self, raw: Mapping[str, Any]) -> list[str]:
        """Handle one Event Grid event: what it did for each trigger that watches its container
        (`[]`: nothing watches it, or it is not a completed blob). InvalidInput: a malformed event
        (nothing changed); ExternalError: storage failed (raise, so Event Grid delivers it again)."""
        blob = parse_blob_event(raw)
        if blob is None:
            metrics.events.add(1, {"outcome": "ignored"})
            return []
        outcomes = []
        for watch in self.ctx.job_repository.watchers(blob.container):
            if watch.matches(blob.account, blob.blob):
                outcomes.append(self._file(watch, blob))
        for outcome in outcomes or ["unwatched"]:
            metrics.events.add(1, {"outcome": outcome})
        return outcomes

    def _file(self, watch: Watch, blob: BlobCreated) -> str:
        ctx = self.ctx
        job = ctx.job(watch.tenant, watch.job_id)
        trigger = _trigger_of(job, watch)
        if job is None or trigger is None or job.status is JobStatus.CANCELLED:
            ctx.job_repository.unwatch(watch)  # stale: the job changed and a crash kept the row
            return "stale"
        if not trigger.matches(blob.account, blob.container, blob.blob):
            return "unmatched"
        now = ctx.clock.now()
        shard = ctx.due_index.shard_for(job)
        marker = (f"f{watch.index}~{_hash(blob.identity)}", {"event_id": blob.event_id})
        file = CausedFile(url=blob.url, event_id=blob.event_id, at=blob.at)
        if job.status is not JobStatus.ACTIVE:  # paused (a COMPLETED job has no triggers)
            return self._while_paused(job, shard, marker, Cause(kind=Trigger.FILE_ARRIVAL, files=[file]), now)

        def attempt() -> tuple[str, Run | None]:
            return self._gather(job, shard, int(watch.index), trigger, marker, file, blob, ctx.clock.now())

        outcome, run = until_saved(attempt, f"file {blob.url} for job {job.id}")
        if run is not None:
            _send(ctx, run)
        return outcome

    def _gather(
        self,
        job: Job,
        shard: str,
        index: int,
        trigger: FileArrivalTrigger,
        marker: tuple[str, dict[str, str]],
        file: CausedFile,
        blob: BlobCreated,
        now: datetime,
    ) -> tuple[str, Run | None]:
        """One try: the file joins the trigger's open run, or opens one. ("duplicate", run to send
        again) when the file was seen before; ConcurrencyConflict when a write raced ours."""
        ctx = self.ctx
        repo = ctx.run_repository
        state_name = f"f{index}"
        state = repo.trigger_state(shard, job.tenant, job.id, state_name)
        newest: tuple[Run, str] | None = None
        if state is not None:
            try:
                newest = repo.get(shard, job.tenant, job.id, state[0])
            except NotFound:
                newest = None
        wait = trigger.wait_after_last_change
        try:
            if newest is not None and _open(newest[0]):
                run, etag = newest
                files = [*(run.cause.files if run.cause and run.cause.files else []), file]
                due = max(run.scheduled_for, now + wait)
                after = run.model_copy(
                    update={
                        "cause": Cause(kind=Trigger.FILE_ARRIVAL, files=files),
                        "scheduled_for": due,
                        "updated_at": now,
                        "reason": f"{len(files)} files",
                    }
                )
                if due != run.scheduled_for:  # its launch moves: a new message for the new time
                    message = f"{launch_id(run, 1)}.f{len(files)}"
                    after = after.model_copy(update={"intent": launch_intent(run, 1, due, message)})
                after = ctx.watched(after, now)
                repo.gather((run, etag), after, marker, None)
                return "joined", after if due != run.scheduled_for else None
            due = now + wait
            if newest is not None and trigger.min_time_between_triggers:
                due = max(due, newest[0].scheduled_for + trigger.min_time_between_triggers)
            run = Run.caused(
                tenant=job.tenant,
                job_id=job.id,
                run_key=caused_run_key("f", now, f"{index}|{blob.identity}"),
                cause=Cause(kind=Trigger.FILE_ARRIVAL, files=[file]),
                job_version=job.version,
                now=now,
                due=due,
                reason=f"file {blob.blob}",
                shard=shard,
            )
            run = ctx.watched(run.model_copy(update={"intent": launch_intent(run, 1, due)}), now)
            repo.gather(None, run, marker, (state_name, state[1] if state else None))
            log.info("file arrival run", extra={"job_id": job.id, "run_key": run.run_key})
            return "started", run
        except AlreadyExists:
            if repo.marker(shard, job.tenant, job.id, marker[0]) is None:
                raise ConcurrencyConflict("the run's key was taken: try again") from None
            # Seen before. Its first handling may have died before sending: send the open run's
            # launch again (same id: Service Bus drops it if the first send got through).
            again = newest[0] if newest is not None and _open(newest[0]) else None
            return "duplicate", again

    def _while_paused(
        self, job: Job, shard: str, marker: tuple[str, dict[str, str]], cause: Cause, now: datetime
    ) -> str:
        """A paused job's event: a SKIPPED run that records it, or only its marker (dropped)."""
        run = None
        if job.definition.record_skipped_while_paused:
            run = Run.caused(
                tenant=job.tenant,
                job_id=job.id,
                run_key=caused_run_key(cause.kind.value[0], now, marker[0]),
                cause=cause,
                job_version=job.version,
                now=now,
                skipped=SkipReason.PAUSED,
                shard=shard,
            )
        if not self.ctx.run_repository.add_caused(shard, job.tenant, job.id, run, dict([marker])):
            return "duplicate"
        return "skipped" if run else "dropped"

    # -- webhooks ---------------------------------------------------------------------------------

    def webhook(
        self, tenant: str, job_id: str, key: str, payload: Mapping[str, str], caller: str
    ) -> tuple[Run, bool]:
        """Start the job's run for the webhook call with Idempotency-Key `key`: (the run, whether it
        was started by an earlier call with this key). Conflict: the job has no webhook trigger, is
        cancelled, is paused and drops events, or the key came before with another body."""
        ctx = self.ctx
        job, _ = ctx.job_repository.get(tenant, job_id)
        if not job.definition.has_webhook:
            raise Conflict(f'job {job_id} has no webhook trigger: add {{"kind": "webhook"}} to its triggers')
        shard = ctx.due_index.shard_for(job)
        name = f"h~{_hash(key)}"
        body = _hash(json.dumps(dict(payload), sort_keys=True, separators=(",", ":")))
        known = _earlier(ctx, job, shard, name, body)
        if known is not None:
            return known, True
        if job.status is JobStatus.CANCELLED:
            raise Conflict(f"job {job_id} is cancelled; it cannot run")
        now = ctx.clock.now()
        cause = Cause(kind=Trigger.WEBHOOK, idempotency_key=key, payload=dict(payload))
        paused = job.status is not JobStatus.ACTIVE
        if paused and not job.definition.record_skipped_while_paused:
            raise Conflict(
                f"job {job_id} is paused: the call was not recorded (resume the job, or set "
                "record_skipped_while_paused to record calls while paused)"
            )
        run = Run.caused(
            tenant=tenant,
            job_id=job_id,
            run_key=caused_run_key("h", now, key),
            cause=cause,
            job_version=job.version,
            now=now,
            reason=f"webhook by {caller}",
            skipped=SkipReason.PAUSED if paused else None,
            shard=shard,
        )
        if not paused:
            run = ctx.watched(run.model_copy(update={"intent": launch_intent(run, 1, now)}), now)
        marker = {"run_key": run.run_key, "body": body}
        if not ctx.run_repository.add_caused(shard, tenant, job_id, run, {name: marker}):
            known = _earlier(ctx, job, shard, name, body)  # a concurrent call with the same key won
            if known is None:
                raise ConcurrencyConflict(f"webhook call {key!r} raced another: try again")
            return known, True
        metrics.events.add(1, {"outcome": "webhook"})
        if not paused:
            _send(ctx, run)
        return run, False

    # -- replays ----------------------------------------------------------------------------------

    def replay(self, tenant: str, job_id: str, caller: str) -> list[Run]:
        """Run again the events (files, webhook calls) recorded as SKIPPED while the job was last
        paused: one new run per skipped run, with its cause, never two (a replay marker is inserted
        with it). Conflict unless the job is ACTIVE. The runs started now (none the second time)."""
        ctx = self.ctx
        job, _ = ctx.job_repository.get(tenant, job_id)
        if job.status is not JobStatus.ACTIVE:
            raise Conflict(
                f"job {job_id} is {job.status}: resume it first", errors={"status": job.status.value}
            )
        if job.paused_at is None:
            return []
        shard = ctx.due_index.shard_for(job)
        started = []
        for skipped in _skipped_while_paused(ctx, job, shard, job.paused_at):
            now = ctx.clock.now()
            run = Run.caused(
                tenant=tenant,
                job_id=job_id,
                run_key=caused_run_key(skipped.run_key[0], now, f"replay|{skipped.run_key}"),
                cause=skipped.cause or Cause(kind=skipped.trigger),
                job_version=job.version,
                now=now,
                reason=f"replay of {skipped.run_key} by {caller}",
                shard=shard,
            )
            run = ctx.watched(run.model_copy(update={"intent": launch_intent(run, 1, now)}), now)
            if ctx.run_repository.add_caused(
                shard, tenant, job_id, run, {f"r~{skipped.run_key}": {"run_key": run.run_key}}
            ):
                _send(ctx, run)
                started.append(run)
        return started


REPLAYED = frozenset({Trigger.FILE_ARRIVAL, Trigger.WEBHOOK})
MAX_REPLAYED = 500
_SCAN = 2000  # runs read at most, newest first, looking for the pause's skipped events


def _skipped_while_paused(ctx: RunContext, job: Job, shard: str, since: datetime) -> list[Run]:
    """The job's event runs SKIPPED because it was paused, recorded since `since`, oldest first."""
    found: list[Run] = []
    continuation = None
    read = 0
    while read < _SCAN:
        page = ctx.run_repository.history(shard, job.tenant, job.id, limit=100, continuation=continuation)
        for run in page.items:
            if run_key_time(run.run_key) < since:
                return list(reversed(found))[:MAX_REPLAYED]
            if (
                run.trigger in REPLAYED
                and run.state is RunState.SKIPPED
                and run.reason == SkipReason.PAUSED.value
            ):
                found.append(run)
        read += len(page.items)
        continuation = page.continuation
        if continuation is None:
            break
    return list(reversed(found))[:MAX_REPLAYED]


def _earlier(ctx: RunContext, job: Job, shard: str, name: str, body: str) -> Run | None:
    seen = ctx.run_repository.marker(shard, job.tenant, job.id, name)
    if seen is None:
        return None
    if seen.get("body") != body:
        raise Conflict("this Idempotency-Key was used before with a different body")
    return ctx.run_repository.get(shard, job.tenant, job.id, seen["run_key"])[0]


def _trigger_of(job: Job | None, watch: Watch) -> FileArrivalTrigger | None:
    if job is None:
        return None
    return next(
        (
            t
            for i, t in job.definition.file_triggers
            if str(i) == watch.index and t.container == watch.container
        ),
        None,
    )


def _open(run: Run) -> bool:
    """Whether a file arrival run still takes files: not launching yet, and not full."""
    files = run.cause.files if run.cause and run.cause.files else []
    return (
        run.trigger is Trigger.FILE_ARRIVAL
        and run.state is RunState.SCHEDULED
        and run.sealed_at is None
        and len(files) < MAX_FILES
    )


def _send(ctx: RunContext, run: Run) -> None:
    try:
        ctx.send(run)
    except ExternalError as err:  # recorded on the run: the watchdog sends it
        log.warning("could not send an event run's launch; the watchdog will: %s", err.detail)
