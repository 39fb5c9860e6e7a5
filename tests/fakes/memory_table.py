"""In-memory Table for fast tests: same semantics as AzureTable, proven by the same contract tests."""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence

from shared.adapters.table import (
    OperationCounter,
    Row,
    Value,
    Write,
    check_batch,
    check_key,
    check_property,
)
from shared.domain.errors import AlreadyExists, ConcurrencyConflict, NotFound


class _Partition:
    def __init__(self) -> None:
        self.keys: list[str] = []
        self.rows: dict[str, tuple[dict[str, Value], str]] = {}


class InMemoryTable:
    def __init__(self, name: str, counter: OperationCounter | None = None) -> None:
        self.name = name
        self.counter = counter or OperationCounter()
        self._partitions: dict[str, _Partition] = {}
        self._lock = threading.RLock()
        self._etags = itertools.count(1)

    def create(self) -> None:
        self.counter.add()

    def get(self, pk: str, rk: str, select: Sequence[str] | None = None) -> Row:
        for name in select or []:
            check_property(name)
        self.counter.add()
        with self._lock:
            part = self._partitions.get(pk)
            if part is None or rk not in part.rows:
                raise NotFound("no such row")
            data, etag = part.rows[rk]
            if select is not None:
                data = {k: data[k] for k in select if k in data}
            return Row(pk, rk, dict(data), etag)

    def query(
        self,
        pk: str | None,
        *,
        pk_gt: str | None = None,
        rk_gt: str | None = None,
        rk_ge: str | None = None,
        rk_lt: str | None = None,
        rk_eq: str | None = None,
        equals: Mapping[str, str | bool] | None = None,
        select: Sequence[str] | None = None,
        page_size: int = 1000,
    ) -> Iterator[Row]:
        for name in [*(equals or {}), *(select or [])]:
            check_property(name)
        page: list[Row] = []
        self.counter.add()
        for row in self._scan(pk, pk_gt, rk_gt, rk_ge, rk_lt, rk_eq):
            if equals and any(row.data.get(k) != v for k, v in equals.items()):
                continue
            if select is not None:
                page.append(Row(row.pk, row.rk, {k: row.data[k] for k in select if k in row.data}, row.etag))
            else:
                page.append(row)
            if len(page) == page_size:
                yield from page
                page = []
                self.counter.add()
        yield from page

    def _scan(
        self,
        pk: str | None,
        pk_gt: str | None,
        gt: str | None,
        ge: str | None,
        lt: str | None,
        eq: str | None,
    ) -> Iterator[Row]:
        with self._lock:
            pks = [pk] if pk is not None else sorted(self._partitions)
            if pk_gt is not None:
                pks = [key for key in pks if key > pk_gt]
            snapshot: list[Row] = []
            for key in pks:
                part = self._partitions.get(key)
                if part is None:
                    continue
                start = 0
                if ge is not None:
                    start = bisect.bisect_left(part.keys, ge)
                if gt is not None:
                    start = max(start, bisect.bisect_right(part.keys, gt))
                stop = len(part.keys) if lt is None else bisect.bisect_left(part.keys, lt)
                for rk in part.keys[start:stop]:
                    if eq is not None and rk != eq:
                        continue
                    data, etag = part.rows[rk]
                    snapshot.append(Row(key, rk, dict(data), etag))
        yield from snapshot

    def write(self, pk: str, writes: Sequence[Write]) -> list[str]:
        check_batch(pk, writes)
        self.counter.add(entities=len(writes))
        etags: list[str] = []
        with self._lock:
            part = self._partitions.setdefault(pk, _Partition())
            staged = dict(part.rows)
            for w in writes:
                current = staged.get(w.rk)
                if w.kind == "insert" and current is not None:
                    raise AlreadyExists("the row exists")
                if w.kind in ("replace", "delete") and current is None:
                    if w.etag is not None:
                        raise ConcurrencyConflict("the row is gone")
                    raise NotFound("no such row")
                if w.etag is not None and current is not None and current[1] != w.etag:
                    raise ConcurrencyConflict("the row changed")
                if w.kind == "delete":
                    del staged[w.rk]
                    etags.append("")
                else:
                    etag = f'W/"{next(self._etags)}"'
                    staged[w.rk] = (dict(w.data), etag)
                    etags.append(etag)
            part.rows = staged
            part.keys = sorted(staged)
        return etags

    def discard(self, pk: str, rk: str) -> None:
        check_key(pk)
        check_key(rk)
        self.counter.add(entities=1)
        with self._lock:
            part = self._partitions.get(pk)
            if part is not None and part.rows.pop(rk, None) is not None:
                part.keys.remove(rk)

    def clear(self) -> None:
        with self._lock:
            self._partitions.clear()
