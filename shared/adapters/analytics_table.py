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
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from shared.adapters.table import Row, Table, Value, Write
from shared.domain.analytics import Aggregate, Tally, folded
from shared.domain.errors import AlreadyExists, ConcurrencyConflict, NotFound

_CHUNK = 30_000  # characters per property (Table Storage: 64 KiB per string property)
VERSION = 1


def _tally_key(tally: Tally) -> str:
    return f"e~{tally.tenant}~{tally.job_id}~{tally.end}"


def tally_write(tally: Tally) -> Write:
    """The insert, in a run's ending transaction, of what the end adds to analytics."""
    data: dict[str, Value] = {
        "tally": json.dumps(tally.dump(), separators=(",", ":")),
        "schema_version": VERSION,
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
    return {job: Aggregate.load(raw) for job, raw in (json.loads(text) if text else {}).items()}


def _props(aggregates: dict[str, Aggregate]) -> dict[str, Value]:
    text = json.dumps({job: agg.dump() for job, agg in aggregates.items()}, separators=(",", ":"))
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
        """Add `tallies` (all one tenant and day, at most 99) to their day's aggregate and delete their
        `e~` rows, in one transaction. False: one was counted already; ConcurrencyConflict: the day's
        aggregate moved meanwhile. Either way nothing was written."""
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
        with ThreadPoolExecutor(min(16, len(jobs)) or 1) as pool:
            for rows in pool.map(read, jobs):
                for row in rows:
                    _, tenant, day = row.rk.split("~")[:3]
                    for job_id, agg in _aggregates(row).items():
                        yield tenant, date.fromisoformat(day), job_id, agg
