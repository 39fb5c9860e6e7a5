"""Analytics in the runs table, beside the runs they count (same shard partitions):

    e~{tenant}~{job id}~{run key}~{n}    a run's n-th end, not yet counted (its Tally): written in the
                                          same transaction as the ending itself
    a~{tenant}~{yyyy-mm-dd}               what the tenant's runs in this shard that ended that day add
                                          up to, by job (JSON in properties d0, d1, ...; k = "j")
    a~{tenant}~{yyyy-mm-dd}~t             the same by job type (k = "t"): what a report by job type or
                                          tenant reads (a handful of aggregates a row, not one per job)

Counting a run is one transaction in its shard: the day's two aggregates replaced (ETag) and the
run's `e~` row deleted. So a run is counted exactly once: a second try finds its `e~` row gone. The end's
handler counts it at once; the watchdog counts what a crash left (`pending`).

A window is read with one range query per shard (`a~{tenant}~{from}` .. `a~{tenant}~{to}~`): its
cost grows with shards x days, never with runs.

An aggregate row's JSON (schema version 2): {"a": {key: [job type, job name, the 8 counts, then
per sketch (duration, queue wait, fire lag) its zero count, offset, size and count, then the
buckets of the percentiles a report shows (`Aggregate.ranked()`)]}, "w": bytes per bucket, "b":
every sketch's buckets in that order, `w` bytes each little-endian, deflated, base64}. A report by
job reads every job's every day: binary buckets decode with a few C calls per row (version 1's JSON
lists cost a parse per bucket, and three times the bytes), and the stored percentiles spare
working out each job's days. Version 1 rows ({key: `Aggregate.dump()`}) are still read; a count
rewrites its day in version 2.
"""

from __future__ import annotations

import base64
import json
import threading
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

from shared.adapters.table import Row, Table, Value, Write
from shared.domain.analytics import BUCKET_BYTES, PERCENTILES, Aggregate, Sketch, Tally, folded
from shared.domain.errors import AlreadyExists, ConcurrencyConflict, NotFound

_CHUNK = 30_000  # characters per property (Table Storage: 64 KiB per string property)
VERSION = 2  # of aggregate rows
TALLY_VERSION = 1
_SKETCHES = ("duration", "queue_wait", "fire_lag")
_REPORTED = sum(len(qs) for _, qs in PERCENTILES)
_HEAD = 22  # an aggregate's fields before its percentiles' buckets


def _tally_key(tally: Tally) -> str:
    return f"e~{tally.tenant}~{tally.job_id}~{tally.end}"


def tally_write(tally: Tally) -> Write:
    """The insert, in a run's ending transaction, of what the end adds to analytics."""
    data: dict[str, Value] = {
        "tally": json.dumps(tally.dump(), separators=(",", ":")),
        "schema_version": TALLY_VERSION,
    }
    return Write("insert", _tally_key(tally), data)


def _day_key(tenant: str, day: date, kind: str = "j") -> str:
    """`j`: by job; `t`: by job type (the row after it: one range reads both)."""
    return f"a~{tenant}~{day.isoformat()}" + ("~t" if kind == "t" else "")


def _pending(row: Row) -> Tally:
    _, tenant, job_id, end = row.rk.split("~", 3)
    return Tally.load(tenant, job_id, end, json.loads(str(row.data["tally"])))


def _aggregates(row: Row) -> dict[str, Aggregate]:
    text = "".join(str(row.data[f"d{i}"]) for i in range(int(row.data.get("parts", 0))))
    if not text:
        return {}
    raw = json.loads(text)
    version = int(row.data.get("schema_version", 1))
    if version < 2:
        return {key: Aggregate.load(value) for key, value in raw.items()}
    return _unpacked(raw, ranked=version == VERSION)


def _unpacked(raw: dict[str, Any], ranked: bool) -> dict[str, Aggregate]:
    """Version 2's aggregates: the buckets widened to `BUCKET_BYTES` each (a slice assignment per
    byte of width), then each sketch one `int.from_bytes` of its slice. `ranked`: the stored
    percentiles' buckets are this version's `PERCENTILES` (else they are worked out again)."""
    known = _HEAD + _REPORTED if ranked else -1
    width = int(raw["w"])
    if width > BUCKET_BYTES:
        raise OverflowError(f"sketch buckets of {width} bytes: a sketch holds fewer than 2**32 values")
    narrow = zlib.decompress(base64.b64decode(raw["b"]))
    view = memoryview(narrow)
    if width != BUCKET_BYTES:
        wide = bytearray(len(narrow) // width * BUCKET_BYTES)
        for k in range(width):
            wide[k::BUCKET_BYTES] = narrow[k::width]
        view = memoryview(wide)
    unpack = int.from_bytes
    a = 0
    out = {}
    for key, h in raw["a"].items():
        b = a + BUCKET_BYTES * h[12]
        c = b + BUCKET_BYTES * h[16]
        d = c + BUCKET_BYTES * h[20]
        out[key] = Aggregate(
            h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9],
            Sketch(unpack(view[a:b], "little"), h[11], h[12], h[10], h[13]),
            Sketch(unpack(view[b:c], "little"), h[15], h[16], h[14], h[17]),
            Sketch(unpack(view[c:d], "little"), h[19], h[20], h[18], h[21]),
            tuple(h[_HEAD:]) if len(h) == known else None,
        )  # fmt: skip
        a = d
    return out


def _props(aggregates: dict[str, Aggregate]) -> dict[str, Value]:
    heads: dict[str, list[Any]] = {}
    buckets = []
    most = 0  # no bucket holds more than that
    for key, agg in aggregates.items():
        head: list[Any] = [agg.job_type, agg.job_name, agg.runs, agg.succeeded, agg.failed, agg.timed_out]
        head += [agg.cancelled, agg.skipped, agg.retried, agg.deadline_missed]
        for name in _SKETCHES:
            sketch: Sketch = getattr(agg, name)
            head += [sketch.zero, sketch.offset, sketch.size, sketch.count]
            buckets.append(sketch.packed.to_bytes(BUCKET_BYTES * sketch.size, "little"))
            most = max(most, sketch.count - sketch.zero)
        heads[key] = [*head, *agg.ranked()]
    width = next(w for w in (1, 2, 4) if most < 256**w)
    wide = b"".join(buckets)
    narrow = bytearray(len(wide) // BUCKET_BYTES * width)
    for k in range(width):
        narrow[k::width] = wide[k::BUCKET_BYTES]
    packed = base64.b64encode(zlib.compress(narrow)).decode("ascii")
    text = json.dumps({"a": heads, "w": width, "b": packed}, separators=(",", ":")) if heads else ""
    parts = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    data: dict[str, Value] = {f"d{i}": part for i, part in enumerate(parts)}
    data.update(parts=len(parts), schema_version=VERSION)
    return data


def _by_job(tally: Tally) -> str:
    return tally.job_id


def _by_type(tally: Tally) -> str:
    return tally.job_type


class AnalyticsTable:
    def __init__(self, table: Table, shards: int) -> None:
        self.table = table
        self.shards = shards

    def count(self, shard: str, tallies: Sequence[Tally]) -> bool:
        """Add `tallies` (all one tenant and day, at most `MAX_COUNTED`) to their day's two aggregates
        and delete their `e~` rows, in one transaction. False: one was counted already;
        ConcurrencyConflict: the day's aggregate moved meanwhile. Either way nothing was written."""
        first = tallies[0]
        lo = _day_key(first.tenant, first.day)
        stored = {row.rk: row for row in self.table.query(shard, rk_ge=lo, rk_lt=lo + "~~")}
        writes = []
        for kind, key in (("j", _by_job), ("t", _by_type)):
            rk = _day_key(first.tenant, first.day, kind)
            row = stored.get(rk)
            aggregates, etag = (_aggregates(row), row.etag) if row is not None else ({}, "")
            props = {**_props(folded(aggregates, tallies, key)), "k": kind}
            writes.append(Write("replace", rk, props, etag) if etag else Write("insert", rk, props))
        try:
            self.table.write(shard, [*writes, *[Write("delete", _tally_key(t)) for t in tallies]])
        except NotFound:
            return False  # an `e~` row is gone: counted by someone else
        except AlreadyExists as err:
            raise ConcurrencyConflict("the day's aggregate was created meanwhile") from err
        return True

    def pending(self, shard: str, limit: int = 500) -> list[Tally]:
        """Ends not yet counted in `shard` (a handler crashed before counting them)."""
        out = []
        for row in self.table.query(shard, rk_ge="e~", rk_lt="e~~", page_size=limit):
            out.append(_pending(row))
            if len(out) >= limit:
                break
        return out

    def window(
        self, tenants: Sequence[str], first: date, last: date, by_job: bool = True
    ) -> Iterator[tuple[str, date, str, Aggregate]]:
        """(tenant, day, key, aggregate) for `tenants`' runs ended in [first, last], by job (key: the
        job id), or else by job type (key: the type): one range query per shard and tenant, run side
        by side."""
        kind = "j" if by_job else "t"
        from shared.adapters.runs_table import shard_name

        shards = [shard_name(i) for i in range(self.shards)]

        def read(args: tuple[str, str]) -> list[Row]:
            shard, tenant = args
            lo, hi = _day_key(tenant, first), _day_key(tenant, last) + "~~"
            return list(self.table.query(shard, rk_ge=lo, rk_lt=hi, equals={"k": kind}))

        jobs = [(shard, tenant) for tenant in tenants for shard in shards]
        for rows in _pool().map(read, jobs):
            for row in rows:
                _, tenant, day = row.rk.split("~")[:3]
                for job_id, agg in _aggregates(row).items():
                    yield tenant, date.fromisoformat(day), job_id, agg


_POOLS: list[ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The threads reports read shards with: one set per process (starting 16 threads took a
    millisecond or two of every report)."""
    with _POOL_LOCK:
        if not _POOLS:
            _POOLS.append(ThreadPoolExecutor(16, thread_name_prefix="analytics"))
        return _POOLS[0]
