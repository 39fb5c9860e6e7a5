"""The runs table: runs, the tick's due index and the watchdog's hints, one partition per shard.

A job belongs to one shard (`s00`..`sNN`, a stable hash of its id, recorded on the job when it
is created). Everything the scheduler writes on the hot path for that job lives in the shard's
partition, so each step is ONE entity-group transaction:

    d~{fire epoch ms:013d}~{tenant}~{job id}                the job is due then (the tick's index)
    r~{tenant}~{job id}~{inverted ms:013d}~{run key}        a run (a job's history: newest first)
    w~{watch epoch ms:013d}~{tenant}~{job id}~{run key}     look at this run then (the watchdog's index)

* The tick records a fire (its runs, their hints, the due row moved on) in one transaction:
  a crash leaves either all of it or none of it.
* Every run write moves the run's hint from its old `watch_at` to its new one in the same
  transaction, so a run that waits for a message always has a hint, and an ended run none.
* The tick reads `d~ < horizon` and the watchdog `w~ < now` in each shard: their cost grows with
  what is due or overdue, not with how many jobs or runs exist.

Row keys stay derived from what they index, so "insert if absent" on a run key still works.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.adapters.analytics_table import tally_write
from shared.adapters.jobs_table import decode_token, page_of
from shared.adapters.row_schema import RUN_VERSION, known, upgraded
from shared.adapters.table import MAX_BATCH, Row, Table, Value, Write
from shared.domain.analytics import Tally
from shared.domain.errors import AlreadyExists, NotFound
from shared.domain.job import Job
from shared.domain.run import Run, epoch_ms, run_key_time
from shared.services.ports import DueEntry, Page, Point, WatchHint

log = logging.getLogger(__name__)

_MAX_MS = 10**13 - 1
_JSON_FIELDS = ("transitions", "attempts", "intent", "steps", "repair_history", "cause", "notices", "batch")
_NOT_STORED = ("tenant", "job_id", "shard", *_JSON_FIELDS)


def shard_name(index: int) -> str:
    return f"s{index:02d}"


def shard_of(job_id: str, shards: int) -> str:
    """The shard a new job goes to (crc32 of its id): stable across processes and releases."""
    return shard_name(zlib.crc32(job_id.encode()) % shards)


def _run_rk(tenant: str, job_id: str, run_key: str) -> str:
    """A run's RowKey; a pipeline step's run (`{parent}.{step}`) lives under `c~`, beside the
    job's history rather than in it."""
    parent, dot, step = run_key.partition(".")
    if dot:
        return f"{_children_prefix(tenant, job_id, parent)}{step}"
    return f"r~{tenant}~{job_id}~{_MAX_MS - epoch_ms(run_key_time(run_key)):013d}~{run_key}"


def _children_prefix(tenant: str, job_id: str, parent_key: str) -> str:
    return f"c~{tenant}~{job_id}~{parent_key}~"


def _runs_prefix(tenant: str, job_id: str) -> str:
    return f"r~{tenant}~{job_id}~"


def _marker_rk(tenant: str, job_id: str, name: str) -> str:
    """A cause seen: `m~{tenant}~{job id}~{name}` (a file's identity, a webhook's key, hashed)."""
    return f"m~{tenant}~{job_id}~{name}"


def _points_prefix(tenant: str, job_id: str, round_key: str) -> str:
    """A batch round's point values: `v~{tenant}~{job id}~{round key}~{chunk start:05d}`."""
    return f"v~{tenant}~{job_id}~{round_key}~"


def _state_rk(tenant: str, job_id: str, name: str) -> str:
    """A trigger's state: `t~{tenant}~{job id}~{name}`, pointing at its newest run."""
    return f"t~{tenant}~{job_id}~{name}"


def _time(ms: str) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def due_key(entry: DueEntry) -> str:
    return f"d~{epoch_ms(entry.fire_at):013d}~{entry.tenant}~{entry.job_id}"


def hint_key(hint: WatchHint) -> str:
    return f"w~{epoch_ms(hint.at):013d}~{hint.tenant}~{hint.job_id}~{hint.run_key}"


def _props(run: Run) -> dict[str, Value]:
    full = run.model_dump(mode="json", exclude_none=True)
    data: dict[str, Value] = {k: v for k, v in full.items() if k not in _NOT_STORED}
    for name in _JSON_FIELDS:
        if name in full:
            data[name] = json.dumps(full[name], separators=(",", ":"))
    if run.databricks_run_id is not None:
        data["databricks_run_id"] = str(run.databricks_run_id)  # Databricks ids exceed Int32
    data["schema_version"] = RUN_VERSION
    return data


def run_from_row(row: Row) -> Run:
    """A run row as this release reads it: upgraded, and lenient about fields it does not know."""
    _, tenant, job_id, _ = row.rk.split("~", 3)
    data: dict[str, Any] = {**upgraded("run", row.data), "tenant": tenant, "job_id": job_id, "shard": row.pk}
    for name in _JSON_FIELDS:
        raw = data.get(name)
        if raw:
            data[name] = json.loads(str(raw))
        else:
            data.pop(name, None)
    return Run.model_validate(known(Run, data))


def _fire_writes(runs: Sequence[Run], due_from: DueEntry | None, due_to: DueEntry | None) -> list[Write]:
    """A job's fire: its new runs with their hints, and its due row moved from `due_from` to `due_to`."""
    writes: list[Write] = []
    for run in runs:
        writes.append(Write("insert", _run_rk(run.tenant, run.job_id, run.run_key), _props(run)))
        writes += _hint_writes(None, run)
    if due_to is not None:
        writes.append(Write("upsert", due_key(due_to)))
    if due_from is not None and due_to is not None and due_key(due_from) != due_key(due_to):
        writes.append(Write("delete", due_key(due_from)))
    return writes


def _hint_writes(before: Run | None, after: Run) -> list[Write]:
    old, new = (WatchHint.of(before) if before else None), WatchHint.of(after)
    writes = []
    if new is not None and new != old:
        writes.append(Write("upsert", hint_key(new)))
    if old is not None and old != new:
        writes.append(Write("delete", hint_key(old)))
    return writes


def _tally_writes(after: Run, tally: Tally | None) -> list[Write]:
    """A run's end, waiting to be counted in analytics."""
    return [tally_write(tally)] if tally is not None else []


class TableDueIndex:
    """The tick's index: one row per job it must visit, at the job's next fire time."""

    def __init__(self, table: Table, shards: int) -> None:
        self.table = table
        self.shards = [shard_name(i) for i in range(shards)]
        self._count = shards

    def shard_for(self, job: Job) -> str:
        """The job's shard: recorded on the job, or (rows from before it was) its hash."""
        return job.shard or shard_of(job.id, self._count)

    def new_shard(self, job_id: str) -> str:
        return shard_of(job_id, self._count)

    def entry(self, job: Job) -> DueEntry | None:
        """The row `job` should have, or None if the tick has nothing to do for it."""
        if not job.is_due_indexed or job.next_fire_at is None:
            return None
        at = job.next_fire_at.replace(microsecond=job.next_fire_at.microsecond // 1000 * 1000)
        return DueEntry(self.shard_for(job), at, job.tenant, job.id)  # keys keep milliseconds

    def put(self, entry: DueEntry) -> None:
        self.table.write(entry.shard, [Write("upsert", due_key(entry))])

    def remove(self, entry: DueEntry) -> None:
        """Delete a row; already gone is fine (the tick or an edit got there first)."""
        self.table.discard(entry.shard, due_key(entry))

    def exists(self, entry: DueEntry) -> bool:
        try:
            self.table.get(entry.shard, due_key(entry))
        except NotFound:
            return False
        return True

    def due(self, shard: str, horizon: datetime) -> Iterator[DueEntry]:
        """Entries in `shard` firing before `horizon`, earliest first."""
        for row in self.table.query(shard, rk_ge="d~", rk_lt=f"d~{epoch_ms(horizon):013d}"):
            _, ms, tenant, job_id = row.rk.split("~", 3)
            yield DueEntry(shard, _time(ms), tenant, job_id)


class RunsTable:
    """Runs and their watch hints (the `RunRepository` port), on the shard partitions."""

    def __init__(self, table: Table) -> None:
        self.table = table

    # -- reading ---------------------------------------------------------------------------------------

    def get(self, shard: str, tenant: str, job_id: str, run_key: str) -> tuple[Run, str]:
        try:
            row = self.table.get(shard, _run_rk(tenant, job_id, run_key))
        except NotFound:
            raise NotFound(f"run {job_id}_{run_key} not found") from None
        return run_from_row(row), row.etag

    def recent(self, shard: str, tenant: str, job_id: str, limit: int = 50) -> list[tuple[Run, str]]:
        """The job's newest runs with their ETags, newest first (active runs are among them)."""
        prefix = _runs_prefix(tenant, job_id)
        rows = self.table.query(shard, rk_ge=prefix, rk_lt=prefix + "~", page_size=limit)
        out = []
        for row in rows:
            out.append((run_from_row(row), row.etag))
            if len(out) == limit:
                break
        return out

    def children(self, shard: str, tenant: str, job_id: str, parent_key: str) -> list[tuple[Run, str]]:
        """The runs of a pipeline run's steps, with their ETags (one range query)."""
        prefix = _children_prefix(tenant, job_id, parent_key)
        return [(run_from_row(r), r.etag) for r in self.table.query(shard, rk_ge=prefix, rk_lt=prefix + "~")]

    def history(
        self,
        shard: str,
        tenant: str,
        job_id: str,
        *,
        state: str | None = None,
        limit: int = 50,
        continuation: str | None = None,
    ) -> Page[Run]:
        """The job's runs, newest first."""
        scope = f"runs:{job_id}"
        prefix = _runs_prefix(tenant, job_id)
        after = decode_token(scope, continuation) if continuation else None
        rows = self.table.query(
            shard,
            rk_gt=after,
            rk_ge=None if after else prefix,
            rk_lt=prefix + "~",
            equals={"state": state} if state else None,
            page_size=limit + 1,
        )
        return page_of(rows, limit, scope, run_from_row)

    def overdue(self, shard: str, now: datetime) -> Iterator[WatchHint]:
        """Hints in `shard` due before `now`, oldest first."""
        for row in self.table.query(shard, rk_ge="w~", rk_lt=f"w~{epoch_ms(now):013d}"):
            _, ms, tenant, job_id, run_key = row.rk.split("~", 4)
            yield WatchHint(shard, _time(ms), tenant, job_id, run_key)

    # -- writing ---------------------------------------------------------------------------------------

    def add(self, run: Run) -> tuple[Run, bool]:
        """Record `run` (and its hint) unless a run with its key exists: the stored run, and whether new."""
        writes = [Write("insert", _run_rk(run.tenant, run.job_id, run.run_key), _props(run))]
        writes += _hint_writes(None, run)
        try:
            self.table.write(run.shard, writes)
            return run, True
        except AlreadyExists:
            return self.get(run.shard, run.tenant, run.job_id, run.run_key)[0], False

    def save(self, before: Run, etag: str, after: Run, tally: Tally | None = None) -> str:
        """Replace the run if unchanged since read (else ConcurrencyConflict), moving its hint with it
        (and, when it ended, recording what it adds to analytics: `tally`).

        Returns the run's new ETag."""
        run_write = Write("replace", _run_rk(after.tenant, after.job_id, after.run_key), _props(after), etag)
        hints = _hint_writes(before, after) + _tally_writes(after, tally)
        try:
            return self.table.write(after.shard, [run_write, *hints])[0]
        except NotFound:
            # The old hint was already gone (removed by hand, or a crash in older code): keep the rest.
            log.warning("run %s had lost its watch hint", after.id, extra={"job_id": after.job_id})
            return self.table.write(after.shard, [run_write, *[w for w in hints if w.kind != "delete"]])[0]

    def claims(self, shard: str, tenant: str, job_id: str, since: datetime) -> set[str]:
        """The upstream runs (ids) the job's `after` runs have used, of those that ended since `since`."""
        prefix = f"k~{tenant}~{job_id}~"
        rows = self.table.query(shard, rk_ge=f"{prefix}{epoch_ms(since):013d}", rk_lt=prefix + "~", select=[])
        return {row.rk.rsplit("~", 1)[1] for row in rows}

    def add_claiming(self, run: Run, used: Sequence[tuple[datetime, str]]) -> bool:
        """Insert `run` with one claim row per upstream run it uses (ended at, run id), in one
        transaction: False (nothing written) if the run exists or one of them is claimed already."""
        writes = [Write("insert", _run_rk(run.tenant, run.job_id, run.run_key), _props(run))]
        writes += _hint_writes(None, run)
        prefix = f"k~{run.tenant}~{run.job_id}~"
        writes += [Write("insert", f"{prefix}{epoch_ms(at):013d}~{run_id}") for at, run_id in used]
        try:
            self.table.write(run.shard, writes)
            return True
        except AlreadyExists:
            return False

    def marker(self, shard: str, tenant: str, job_id: str, name: str) -> dict[str, str] | None:
        """A cause already seen (a file, a webhook call), or None."""
        try:
            return {
                k: str(v) for k, v in self.table.get(shard, _marker_rk(tenant, job_id, name)).data.items()
            }
        except NotFound:
            return None

    def add_round(self, run: Run, chunks: Mapping[int, Sequence[Point]], marker: str | None = None) -> bool:
        """Insert a batch's round with its points' values (and its marker), in one transaction."""
        writes = [Write("insert", _run_rk(run.tenant, run.job_id, run.run_key), _props(run))]
        writes += _hint_writes(None, run)
        prefix = _points_prefix(run.tenant, run.job_id, run.run_key)
        for start, points in chunks.items():
            text = json.dumps([list(p) for p in points], separators=(",", ":"), ensure_ascii=False)
            writes.append(Write("insert", f"{prefix}{start:05d}", {"points": text}))
        if marker is not None:
            writes.append(
                Write("insert", _marker_rk(run.tenant, run.job_id, marker), {"run_key": run.run_key})
            )
        try:
            self.table.write(run.shard, writes)
            return True
        except AlreadyExists:
            return False

    def points(
        self, shard: str, tenant: str, job_id: str, round_key: str, start: int | None = None
    ) -> dict[int, list[Point]]:
        prefix = _points_prefix(tenant, job_id, round_key)
        if start is not None:
            rows = [self.table.get(shard, f"{prefix}{start:05d}")]
        else:
            rows = list(self.table.query(shard, rk_ge=prefix, rk_lt=prefix + "~"))
        return {
            int(row.rk[len(prefix) :]): [(int(n), dict(v)) for n, v in json.loads(str(row.data["points"]))]
            for row in rows
        }

    def add_caused(
        self, shard: str, tenant: str, job_id: str, run: Run | None, markers: Mapping[str, Mapping[str, str]]
    ) -> bool:
        """Insert `run` (if any) with its hint and the markers of the causes it records, in one
        transaction: False (nothing written) if one of them exists already."""
        writes = []
        if run is not None:
            writes.append(Write("insert", _run_rk(tenant, job_id, run.run_key), _props(run)))
            writes += _hint_writes(None, run)
        writes += [Write("insert", _marker_rk(tenant, job_id, n), dict(p)) for n, p in markers.items()]
        try:
            self.table.write(shard, writes)
            return True
        except AlreadyExists:
            return False

    def trigger_state(self, shard: str, tenant: str, job_id: str, name: str) -> tuple[str, str] | None:
        """The run key a trigger's state row points at (its newest run) with the row's ETag, or None."""
        try:
            row = self.table.get(shard, _state_rk(tenant, job_id, name))
        except NotFound:
            return None
        return str(row.data["run_key"]), row.etag

    def gather(
        self,
        before: tuple[Run, str] | None,
        after: Run,
        marker: tuple[str, Mapping[str, str]],
        state: tuple[str, str | None] | None,
    ) -> None:
        """One file joins a run: the file's marker inserted, the run inserted (`before` None) or
        replaced (if unchanged since read), and, for a new run, the trigger's state row pointed at
        it (inserted, or replaced if unchanged since read: `state` = (name, ETag or None)); one
        transaction. AlreadyExists if the marker (or the run) exists, ConcurrencyConflict if the run
        or the state row changed: nothing is written then."""
        rk = _run_rk(after.tenant, after.job_id, after.run_key)
        if before is None:
            writes = [Write("insert", rk, _props(after)), *_hint_writes(None, after)]
        else:
            writes = [Write("replace", rk, _props(after), before[1]), *_hint_writes(before[0], after)]
        name, props = marker
        writes.append(Write("insert", _marker_rk(after.tenant, after.job_id, name), dict(props)))
        if state is not None:
            state_name, etag = state
            state_rk = _state_rk(after.tenant, after.job_id, state_name)
            pointer = {"run_key": after.run_key}
            writes.append(
                Write("replace", state_rk, pointer, etag) if etag else Write("insert", state_rk, pointer)
            )
        self.table.write(after.shard, writes)

    def save_family(
        self, before: Run, etag: str, after: Run, children: Sequence[Run], tally: Tally | None = None
    ) -> str:
        """Save a pipeline run (as `save`) and insert its new steps' runs with their hints, in one
        transaction (AlreadyExists if one exists: nothing is written). The parent's new ETag."""
        writes = [Write("replace", _run_rk(after.tenant, after.job_id, after.run_key), _props(after), etag)]
        writes += _hint_writes(before, after) + _tally_writes(after, tally)
        for child in children:
            writes.append(Write("insert", _run_rk(child.tenant, child.job_id, child.run_key), _props(child)))
            writes += _hint_writes(None, child)
        return self.table.write(after.shard, writes)[0]

    def record_fire(
        self, shard: str, runs: Sequence[Run], due_from: DueEntry | None, due_to: DueEntry | None
    ) -> list[Run]:
        """The tick's write for one job: its new runs with their hints, and its due row moved from
        `due_from` to `due_to`, in one transaction. Runs recorded before (a second tick, a replay)
        are returned as stored and not written again."""
        writes = _fire_writes(runs, due_from, due_to)
        if len(writes) <= MAX_BATCH:
            try:
                self.table.write(shard, writes)
                return list(runs)
            except (AlreadyExists, NotFound):
                pass  # another tick got here first: take the slow path, one thing at a time
        recorded = [self.add(run)[0] for run in runs]
        if due_to is not None:
            self.table.write(shard, [Write("upsert", due_key(due_to))])
        if due_from is not None and due_to is not None and due_key(due_from) != due_key(due_to):
            self.table.discard(shard, due_key(due_from))
        return recorded

    def record_fires(
        self, shard: str, fires: Sequence[tuple[Sequence[Run], DueEntry | None, DueEntry | None]]
    ) -> list[list[Run] | None]:
        results: list[list[Run] | None] = [None] * len(fires)
        chunk: list[int] = []
        rows: list[Write] = []
        for i, fire in enumerate(fires):
            writes = _fire_writes(*fire)
            if len(rows) + len(writes) > MAX_BATCH and chunk:
                self._write_chunk(shard, chunk, rows, fires, results)
                chunk, rows = [], []
            if len(writes) > MAX_BATCH:
                continue  # too big to share: recorded alone (None)
            chunk.append(i)
            rows += writes
        if chunk:
            self._write_chunk(shard, chunk, rows, fires, results)
        return results

    def _write_chunk(
        self,
        shard: str,
        chunk: list[int],
        rows: list[Write],
        fires: Sequence[tuple[Sequence[Run], DueEntry | None, DueEntry | None]],
        results: list[list[Run] | None],
    ) -> None:
        try:
            self.table.write(shard, rows)
        except (AlreadyExists, NotFound):
            return  # one of them was recorded already, or its due row moved: each goes alone
        for i in chunk:
            results[i] = list(fires[i][0])

    def drop_hint(self, hint: WatchHint) -> None:
        self.table.discard(hint.shard, hint_key(hint))

    def rehome(self, hint: WatchHint, run: Run) -> None:
        """Drop a stale hint and make sure the run's own hint exists."""
        own = WatchHint.of(run)
        if own is not None:
            self.table.write(own.shard, [Write("upsert", hint_key(own))])
        self.drop_hint(hint)
