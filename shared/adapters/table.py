"""The port every store is built on: one Table Storage table, as little of it as we use.

Two implementations pass the same contract tests (tests/integration/test_table_contract.py):
`AzureTable` (azure-data-tables, against Azure or Azurite) and `InMemoryTable`
(fast unit tests). Everything above this port (job store, due index, runs) is
written once and runs on either.

Values are str, int (32-bit), float and bool. Times are stored as ISO-8601
strings by the layers above, so both implementations round-trip them exactly.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Value = str | int | float | bool
Entity = Mapping[str, Value]

# Characters Table Storage forbids in keys: / \ # ? and control characters.
_BAD_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
MAX_BATCH = 100
_INT32 = (-(2**31), 2**31 - 1)


@dataclass(frozen=True, slots=True)
class Row:
    pk: str
    rk: str
    data: Mapping[str, Value]
    etag: str = ""


@dataclass(frozen=True, slots=True)
class Write:
    """One write in a batch.

    insert: fails with AlreadyExists if the row exists.
    upsert: creates or replaces, unconditionally.
    replace: replaces a row only if its ETag is still `etag` (else ConcurrencyConflict).
    delete: deletes; with `etag`, only if unchanged (else ConcurrencyConflict).
    """

    kind: Literal["insert", "upsert", "replace", "delete"]
    rk: str
    data: Mapping[str, Value] = field(default_factory=dict)
    etag: str | None = None


class Table(Protocol):
    name: str

    def create(self) -> None:
        """Create the table if it does not exist."""

    def get(self, pk: str, rk: str, select: Sequence[str] | None = None) -> Row:
        """The row (only the `select` properties, if given), or NotFound."""

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
        """Rows of one partition (or all, if pk is None) in key order, fetched page by page as iterated.

        `equals` keys are property names chosen by the code, never by a user; their
        values, and every key bound, are sent as query parameters.
        """

    def write(self, pk: str, writes: Sequence[Write]) -> list[str]:
        """Apply writes to one partition atomically (an entity-group transaction).

        Returns the new ETag of each written row, in order ("" for a delete), so a caller can
        write the same row again without reading it first."""

    def discard(self, pk: str, rk: str) -> None:
        """Delete a row if it exists (one plain request; a missing row is not an error)."""


def check_key(key: str) -> None:
    if not key or len(key.encode("utf-8")) > 1024 or _BAD_KEY.search(key):
        raise ValueError(f"invalid table key {key!r}")


def check_property(name: str) -> None:
    if not _PROPERTY.match(name) or name in ("PartitionKey", "RowKey", "Timestamp"):
        raise ValueError(f"invalid property name {name!r}")


def check_entity(data: Mapping[str, Value]) -> None:
    for name, value in data.items():
        check_property(name)
        if isinstance(value, bool | float | str):
            continue
        if isinstance(value, int) and _INT32[0] <= value <= _INT32[1]:
            continue
        raise ValueError(f"property {name!r}: unsupported value {value!r}")


def check_batch(pk: str, writes: Sequence[Write]) -> None:
    check_key(pk)
    if not 1 <= len(writes) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} writes, got {len(writes)}")
    seen: set[str] = set()
    for w in writes:
        check_key(w.rk)
        check_entity(w.data)
        if w.rk in seen:
            raise ValueError(f"row {w.rk!r} appears twice in one batch")
        seen.add(w.rk)


class OperationCounter:
    """Counts storage requests (one per HTTP request, a batch is one) and the entities they write,
    for benchmarks and tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.entities = 0

    def add(self, n: int = 1, entities: int = 0) -> None:
        with self._lock:
            self.requests += n
            self.entities += entities

    def reset(self) -> int:
        """The requests counted since the last reset (entities are reset too)."""
        with self._lock:
            n, self.requests, self.entities = self.requests, 0, 0
            return n

    def take(self) -> tuple[int, int]:
        """(requests, entities written) since the last reset, and reset."""
        with self._lock:
            counts = (self.requests, self.entities)
            self.requests, self.entities = 0, 0
            return counts
