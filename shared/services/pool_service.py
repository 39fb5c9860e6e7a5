"""What the API does with pools: configure them, show their queues, move a waiting run.

Reads cost one query per pool (its row and its queue entries); nothing here scans runs or jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from shared.domain.audit import audit_entry
from shared.domain.errors import AlreadyExists, ConcurrencyConflict, Conflict, NotFound
from shared.domain.job import Actor, AuditEntry, FieldChange, Job
from shared.domain.pool import (
    WAIT_CLASSES,
    Pool,
    PoolSpec,
    QueueEntry,
    estimated_starts,
    in_order,
    state_of,
)
from shared.domain.run import Priority, Run, RunState
from shared.services import admission
from shared.services.conflicts import until_saved
from shared.services.ports import PoolSnapshot
from shared.services.run_context import RunContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassWait:
    length: int
    avg_wait: float  # seconds
    oldest_wait: float


@dataclass(frozen=True)
class Waiter:
    entry: QueueEntry
    position: int
    estimated_start_at: datetime | None


@dataclass(frozen=True)
class PoolUsage:
    pool: Pool
    used: int
    running: int  # runs holding slots
    waiting: list[Waiter]  # in the order they will go


def class_waits(usages: Iterable[PoolUsage], now: datetime) -> dict[Priority, ClassWait]:
    """Per priority class (urgent first): how many wait, their average and oldest wait."""
    waits: dict[Priority, list[float]] = {p: [] for p in WAIT_CLASSES}
    for u in usages:
        for w in u.waiting:
            waits[w.entry.priority].append((now - w.entry.enqueued_at).total_seconds())
    return {
        p: ClassWait(len(v), sum(v) / len(v) if v else 0.0, max(v, default=0.0)) for p, v in waits.items()
    }


def usage(snapshot: PoolSnapshot, now: datetime) -> PoolUsage:
    pool = snapshot.pool
    ordered = in_order(pool, snapshot.entries or [], now)
    starts = estimated_starts(pool, snapshot.leases, ordered, now) if pool.bounded else {}
    used = state_of(pool, snapshot.leases).used if pool.bounded else 0
    return PoolUsage(
        pool,
        used,
        len(snapshot.leases),
        [Waiter(e, i + 1, starts.get(e.run_id)) for i, e in enumerate(ordered)],
    )


class PoolService:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def pools(self) -> list[PoolUsage]:
        now = self.ctx.clock.now()
        return [self.usage(p.name, now) for p in self.ctx.pools.pools()]

    def usage(self, name: str, now: datetime | None = None) -> PoolUsage:
        return usage(self.ctx.pools.read(name, entries=True), now or self.ctx.clock.now())

    def put(self, name: str, spec: PoolSpec, actor: Actor) -> PoolUsage:
        """Create or change a pool; its leases and queue stay. A pool that grew admits at once."""
        now = self.ctx.clock.now()

        pool = Pool(name=name, **spec.model_dump(), updated_at=now, updated_by=actor.name)

        def attempt() -> None:
            try:
                before = self.ctx.pools.read(name)
            except NotFound:  # a new pool: its row is inserted
                before = PoolSnapshot(pool, {}, 0, "")
            try:
                self.ctx.pools.commit(before, pool=pool)
            except AlreadyExists as err:  # another PUT created it first: update it
                raise ConcurrencyConflict(str(err)) from err

        until_saved(attempt, f"pool {name}")
        admission.settle_pool(self.ctx, name, now)
        log.info("pool %s set to %s by %s", name, spec.model_dump(), actor.id)
        return self.usage(name, now)

    def exists(self, name: str) -> bool:
        try:
            self.ctx.pools.read(name, remembered=True)
            return True
        except NotFound:
            return False

    def place(self, run: Run) -> Waiter | None:
        """Where a QUEUED run stands in its pool's queue (None: it is not waiting for a slot)."""
        if run.state is not RunState.QUEUED or not run.pool:
            return None
        try:
            found = self.usage(run.pool)
        except NotFound:
            return None
        return next((w for w in found.waiting if w.entry.run_id == run.id), None)

    def place_of(self, run: Run) -> tuple[int, datetime | None] | None:
        """(queue position, estimated start) of a QUEUED run, for its API answer."""
        found = self.place(run)
        return (found.position, found.estimated_start_at) if found else None

    def set_priority(self, job: Job, run: Run, priority: Priority, reason: str, actor: Actor) -> Run:
        """Move a waiting run to another priority class: its queue entry (what dispatch reads), the
        run, and an audit entry on its job. 409 for a run that is not waiting for a slot."""
        if run.state is not RunState.QUEUED or not run.pool:
            raise Conflict(
                f"run {run.id} is {run.state}: only a run waiting for a slot can change priority",
                errors={"state": run.state.value},
            )
        pool = run.pool
        before_priority = run.priority

        def move_entry() -> None:
            s = self.ctx.pools.read(pool, entries=True)
            entry = s.entry(run.id)
            if entry is None:
                raise Conflict(
                    f"run {run.id} is no longer waiting: it was admitted or ended",
                    errors={"queue": "no longer waiting"},
                )
            if entry.priority is not priority:
                self.ctx.pools.commit(s, update=[_reprioritized(entry, priority)])

        until_saved(move_entry, f"pool {pool}")
        now = self.ctx.clock.now()

        def save_run() -> Run:
            current, etag = self.ctx.run_repository.get(run.shard, run.tenant, run.job_id, run.run_key)
            return self.ctx.write(current, etag, current.model_copy(update={"priority": priority}), now)[0]

        saved = until_saved(save_run, f"run {run.id}")
        self._audit(job, run, before_priority, priority, reason, actor, now)
        admission.settle_pool(self.ctx, pool, now)  # a run moved up may fit where the head did not
        return saved

    def _audit(
        self,
        job: Job,
        run: Run,
        before: Priority | None,
        after: Priority,
        reason: str,
        actor: Actor,
        now: datetime,
    ) -> None:
        def attempt() -> None:
            current, etag = self.ctx.job_repository.get(job.tenant, job.id)
            bumped = current.model_copy(
                update={"revision": current.revision + 1, "updated_at": now, "updated_by": actor}
            )
            entry = audit_entry("run_priority", current, bumped, actor, now)
            changes = [
                FieldChange(
                    field=f"runs.{run.run_key}.priority",
                    before=before.value if before else None,
                    after=after.value,
                ),
                FieldChange(field=f"runs.{run.run_key}.reason", before=None, after=reason),
            ]
            self.ctx.job_repository.save(
                current, etag, bumped, AuditEntry(**{**entry.model_dump(), "changes": changes})
            )

        until_saved(attempt, f"job {job.id}")


def _reprioritized(entry: QueueEntry, priority: Priority) -> QueueEntry:
    return replace(entry, priority=priority)
