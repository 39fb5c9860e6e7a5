"""Pools, their leases and their queues, in one partition (`pools`) of the runs table.

    {name}|               the pool: spec, `waiting` (how many entries), leases (JSON, chunked)
    {name}|q|{run id}     a run waiting for slots

The pool row and its entries share a partition, so taking a slot, queueing a run and admitting
runs are each one entity-group transaction guarded by the pool row's ETag: two handlers can never
both take the last slot, and an entry is never admitted twice. A pool is one row, so every change
to it is serialised; a pool admits a few hundred runs a second, which is far more than Databricks
launches.

The adapter remembers the pool row it last read or wrote (and its ETag) per process: a write
tried against that copy costs one request when nobody else changed the pool, and fails cleanly
(ConcurrencyConflict, the copy dropped) when somebody did. A decision that something is *absent*
(no lease to release) is only ever taken on a fresh read.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.table import Row, Table, Value, Write
from shared.domain.errors import AlreadyExists, ConcurrencyConflict, NotFound
from shared.domain.job import DEFAULT_POOL
from shared.domain.pool import Lease, Pool, QueueEntry, default_pool
from shared.domain.run import Priority
from shared.services.ports import PoolSnapshot

PARTITION = "pools"
_CHUNK = 30_000  # characters per property (Table Storage allows 32K UTF-16 characters)
_UNBOUNDED_TRUST = 30.0  # seconds a remembered "unbounded" pool is believed (a PUT elsewhere may bound it)


def _pool_rk(name: str) -> str:
    return f"{name}|"


def _entry_rk(name: str, run_id: str) -> str:
    return f"{name}|q|{run_id}"


def _lease_json(lease: Lease) -> dict[str, Any]:
    return {
        "r": lease.run_id,
        "s": lease.shard,
        "t": lease.tenant,
        "n": lease.slots,
        "since": lease.since.isoformat(),
        "exp": lease.expected.total_seconds(),
        "chk": lease.check_at.isoformat(),
    }


def _lease(raw: Mapping[str, Any]) -> Lease:
    return Lease(
        run_id=raw["r"],
        shard=raw["s"],
        tenant=raw["t"],
        slots=int(raw["n"]),
        since=datetime.fromisoformat(raw["since"]),
        expected=timedelta(seconds=float(raw["exp"])),
        check_at=datetime.fromisoformat(raw["chk"]),
    )


def _pool_props(pool: Pool, leases: Mapping[str, Lease], waiting: int) -> dict[str, Value]:
    props: dict[str, Value] = {"kind": "pool", "name": pool.name, "policy": pool.policy, "waiting": waiting}
    if pool.slots is not None:
        props["slots"] = pool.slots
    if pool.tenant_limit is not None:
        props["tenant_limit"] = pool.tenant_limit
    if pool.updated_at is not None:
        props["updated_at"] = pool.updated_at.isoformat()
    if pool.updated_by is not None:
        props["updated_by"] = pool.updated_by
    text = json.dumps([_lease_json(lease) for lease in leases.values()], separators=(",", ":"))
    for i in range(0, max(len(text), 1), _CHUNK):
        props[f"leases{i // _CHUNK}"] = text[i : i + _CHUNK]
    return props


def _pool_of(row: Row) -> tuple[Pool, dict[str, Lease], int]:
    d = row.data
    pool = Pool(
        name=str(d["name"]),
        slots=int(d["slots"]) if "slots" in d else None,
        tenant_limit=int(d["tenant_limit"]) if "tenant_limit" in d else None,
        policy=str(d.get("policy", "default")),
        updated_at=datetime.fromisoformat(str(d["updated_at"])) if "updated_at" in d else None,
        updated_by=str(d["updated_by"]) if "updated_by" in d else None,
    )
    text = "".join(str(d[f"leases{i}"]) for i in range(100) if f"leases{i}" in d) or "[]"
    leases = {lease.run_id: lease for lease in map(_lease, json.loads(text))}
    return pool, leases, int(d.get("waiting", 0))


def _entry_props(entry: QueueEntry) -> dict[str, Value]:
    props: dict[str, Value] = {
        "kind": "entry",
        "run_id": entry.run_id,
        "shard": entry.shard,
        "tenant": entry.tenant,
        "priority": entry.priority.value,
        "enqueued_at": entry.enqueued_at.isoformat(),
        "expected_s": entry.expected.total_seconds(),
        "slots": entry.slots,
        "job_name": entry.job_name,
    }
    if entry.deadline_at is not None:
        props["deadline_at"] = entry.deadline_at.isoformat()
    return props


def _entry(row: Row) -> QueueEntry:
    d = row.data
    return QueueEntry(
        run_id=str(d["run_id"]),
        shard=str(d["shard"]),
        tenant=str(d["tenant"]),
        priority=Priority(str(d["priority"])),
        enqueued_at=datetime.fromisoformat(str(d["enqueued_at"])),
        expected=timedelta(seconds=float(d["expected_s"])),
        slots=int(d.get("slots", 1)),
        deadline_at=datetime.fromisoformat(str(d["deadline_at"])) if "deadline_at" in d else None,
        job_name=str(d.get("job_name", "")),
    )


class PoolsTable:
    def __init__(self, table: Table) -> None:
        self.table = table
        self._known: dict[str, PoolSnapshot] = {}
        self._lock = threading.Lock()

    # -- reads -----------------------------------------------------------------------------------------

    def read(self, name: str, *, entries: bool = False, remembered: bool = False) -> PoolSnapshot:
        """The pool (a `default` that was never configured reads as unbounded; any other unknown
        name is NotFound). `remembered`: the copy this process last saw, if any (one request less,
        and a write against it fails cleanly if it is stale). `entries`: its queue too."""
        if remembered and not entries:
            known = self._known.get(name)
            if known is not None and (
                known.pool.bounded or time.monotonic() - known.read_at < _UNBOUNDED_TRUST
            ):
                return known
        if entries:
            rows = list(self.table.query(PARTITION, rk_ge=_pool_rk(name), rk_lt=f"{name}}}"))
            head = next((r for r in rows if r.rk == _pool_rk(name)), None)
            found = [r for r in rows if r.rk != _pool_rk(name)]
            snapshot = self._snapshot(name, head, found)
        else:
            try:
                head = self.table.get(PARTITION, _pool_rk(name))
            except NotFound:
                head = None
            snapshot = self._snapshot(name, head, None)
        self._remember(snapshot)
        return snapshot

    def _snapshot(self, name: str, head: Row | None, entries: list[Row] | None) -> PoolSnapshot:
        if head is None:
            if name != DEFAULT_POOL:
                raise NotFound(f"pool {name} not found")
            pool, leases, waiting, etag = default_pool(), dict[str, Lease](), 0, ""
        else:
            (pool, leases, waiting), etag = _pool_of(head), head.etag
        if entries is None:
            return PoolSnapshot(pool, leases, waiting, etag)
        return PoolSnapshot(
            pool,
            leases,
            waiting,
            etag,
            [_entry(r) for r in entries],
            {str(r.data["run_id"]): r.etag for r in entries},
        )

    def pools(self) -> list[Pool]:
        """Every configured pool, and `default` (configured or not)."""
        found = [_pool_of(row)[0] for row in self.table.query(PARTITION, equals={"kind": "pool"})]
        if all(p.name != DEFAULT_POOL for p in found):
            found.append(default_pool())
        return sorted(found, key=lambda p: (p.name != DEFAULT_POOL, p.name))

    # -- writes ----------------------------------------------------------------------------------------

    def commit(
        self,
        before: PoolSnapshot,
        *,
        pool: Pool | None = None,
        leases: Mapping[str, Lease] | None = None,
        add: QueueEntry | None = None,
        remove: Iterable[str] = (),
        update: Iterable[QueueEntry] = (),
    ) -> PoolSnapshot:
        """Write the pool row over `before` (its ETag) with `pool`, `leases`, one entry added,
        entries removed (by run id) and entries replaced, in one transaction.

        ConcurrencyConflict if the pool or a removed entry changed since `before` was read;
        AlreadyExists if `add` is queued already. Either way nothing was written."""
        name = before.pool.name
        pool = pool or before.pool
        leases = dict(before.leases if leases is None else leases)
        removed = list(remove)
        waiting = before.waiting + (1 if add else 0) - len(removed)
        head = _pool_props(pool, leases, max(0, waiting))
        writes = [
            Write("replace", _pool_rk(name), head, before.etag)
            if before.etag
            else Write("insert", _pool_rk(name), head)
        ]
        if add is not None:
            writes.append(Write("insert", _entry_rk(name, add.run_id), _entry_props(add)))
        for run_id in removed:
            writes.append(Write("delete", _entry_rk(name, run_id), etag=before.entry_etags[run_id]))
        for entry in update:
            writes.append(
                Write(
                    "replace",
                    _entry_rk(name, entry.run_id),
                    _entry_props(entry),
                    before.entry_etags[entry.run_id],
                )
            )
        try:
            etag = self.table.write(PARTITION, writes)[0]
        except (ConcurrencyConflict, AlreadyExists):
            self._forget(name)
            raise
        except NotFound as err:  # an insert of the pool row raced another
            self._forget(name)
            raise ConcurrencyConflict(str(err)) from err
        after = PoolSnapshot(pool, leases, max(0, waiting), etag)
        self._remember(after)
        return after

    def _remember(self, snapshot: PoolSnapshot) -> None:
        with self._lock:
            self._known[snapshot.pool.name] = PoolSnapshot(
                snapshot.pool, snapshot.leases, snapshot.waiting, snapshot.etag
            )

    def _forget(self, name: str) -> None:
        with self._lock:
            self._known.pop(name, None)
