"""The due index: one row per schedule the tick must visit, keyed by when.

PartitionKey is a shard `d00`..`dNN` (a stable hash of the job id), RowKey is
`{next fire epoch ms:013d}~{tenant}~{job id}`. The tick reads `RowKey < horizon`
in each shard, so its cost grows with what is due, not with how many schedules
exist. The index is a hint: the job row is the truth, a stale row is deleted by
whoever finds it, and writers add the new row *before* committing the job and
delete the old one after, so a crash leaves a stale row (harmless) rather than
a missing one (a schedule that never fires).
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.adapters.table import Table, Write
from shared.domain.errors import NotFound
from shared.domain.job import Job


@dataclass(frozen=True, slots=True)
class DueEntry:
    shard: str
    fire_at: datetime
    tenant: str
    job_id: str

    @property
    def rk(self) -> str:
        return f"{_ms(self.fire_at):013d}~{self.tenant}~{self.job_id}"


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class DueIndex:
    def __init__(self, table: Table, shards: int) -> None:
        self.table = table
        self.shards = [f"d{i:02d}" for i in range(shards)]

    def shard_of(self, job_id: str) -> str:
        return self.shards[zlib.crc32(job_id.encode()) % len(self.shards)]

    def entry(self, job: Job) -> DueEntry | None:
        """The row `job` should have, or None if the tick has nothing to do for it."""
        if not job.is_due_indexed or job.next_fire_at is None:
            return None
        return DueEntry(self.shard_of(job.id), job.next_fire_at, job.tenant, job.id)

    def put(self, entry: DueEntry) -> None:
        self.table.write(entry.shard, [Write("upsert", entry.rk, {})])

    def remove(self, entry: DueEntry) -> None:
        with contextlib.suppress(NotFound):  # the tick or a reconcile already removed it
            self.table.write(entry.shard, [Write("delete", entry.rk)])

    def due(self, shard: str, horizon: datetime) -> Iterator[DueEntry]:
        """Entries in `shard` firing before `horizon`, earliest first."""
        for row in self.table.query(shard, rk_lt=f"{_ms(horizon):013d}"):
            ms, tenant, job_id = row.rk.split("~", 2)
            yield DueEntry(shard, datetime.fromtimestamp(int(ms) / 1000, UTC), tenant, job_id)
