"""The due index: one row per schedule the tick must visit, keyed by when; and pending launches.

PartitionKey is a shard `d00`..`dNN` (a stable hash of the job id). In a shard:

    {next fire epoch ms:013d}~{tenant}~{job id}            the job is due then
    ~p~{scheduled epoch ms:013d}~{tenant}~{job id}~{run key} a launch was sent and not yet picked up

The tick reads `RowKey < horizon` in each shard, so its cost grows with what is
due, not with how many schedules exist (pending rows sort after every due row).
The reconcile reads pending rows older than a threshold: a launch message that
was lost. Both kinds of a job live in one partition, so the tick writes the new
due row and the pending rows of what it fired in one transaction.

The index is a hint: the job row is the truth. Writers add the new due row
*before* committing the job and delete the old one after, so a crash leaves a
stale row (whoever finds it drops it) rather than a missing one.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.adapters.table import Table, Write
from shared.domain.job import Job
from shared.domain.run import epoch_ms


@dataclass(frozen=True, slots=True)
class DueEntry:
    shard: str
    fire_at: datetime
    tenant: str
    job_id: str

    @property
    def rk(self) -> str:
        return f"{epoch_ms(self.fire_at):013d}~{self.tenant}~{self.job_id}"


@dataclass(frozen=True, slots=True)
class PendingLaunch:
    shard: str
    scheduled_for: datetime
    tenant: str
    job_id: str
    run_key: str

    @property
    def rk(self) -> str:
        return f"~p~{epoch_ms(self.scheduled_for):013d}~{self.tenant}~{self.job_id}~{self.run_key}"


def _time(ms: str) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


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

    def pending_for(self, tenant: str, job_id: str, run_key: str, scheduled_for: datetime) -> PendingLaunch:
        return PendingLaunch(self.shard_of(job_id), scheduled_for, tenant, job_id, run_key)

    def put(self, entry: DueEntry, pending: Sequence[PendingLaunch] = ()) -> None:
        """Add the due row and pending-launch rows of one job (one request)."""
        writes = [Write("upsert", entry.rk, {})] + [Write("upsert", p.rk, {}) for p in pending]
        self.table.write(entry.shard, writes)

    def put_pending(self, shard: str, pending: Sequence[PendingLaunch]) -> None:
        if pending:
            self.table.write(shard, [Write("upsert", p.rk, {}) for p in pending])

    def remove(self, entry: DueEntry | PendingLaunch) -> None:
        """Delete a row; already gone is fine (the tick or a reconcile got there first)."""
        self.table.discard(entry.shard, entry.rk)

    def due(self, shard: str, horizon: datetime) -> Iterator[DueEntry]:
        """Entries in `shard` firing before `horizon`, earliest first."""
        for row in self.table.query(shard, rk_lt=f"{epoch_ms(horizon):013d}"):
            ms, tenant, job_id = row.rk.split("~", 2)
            yield DueEntry(shard, _time(ms), tenant, job_id)

    def overdue_launches(self, shard: str, before: datetime) -> Iterator[PendingLaunch]:
        """Pending launches in `shard` scheduled before `before`, oldest first."""
        for row in self.table.query(shard, rk_ge="~p~", rk_lt=f"~p~{epoch_ms(before):013d}"):
            _, _, ms, tenant, job_id, run_key = row.rk.split("~", 5)
            yield PendingLaunch(shard, _time(ms), tenant, job_id, run_key)
