"""Pools: how many runs may hold Databricks capacity at once, who holds it, and who waits.

A pool has `slots` (None: unbounded, no admission at all) and an optional `tenant_limit`. A run
of a job in a bounded pool holds a *lease* on `slots` of them from admission until it ends,
retries included (a retry never queues behind new work); with no room it waits as a *queue
entry*, and the pool's dispatch policy (`shared/domain/dispatch.py`) picks who goes next.

Everything here is a value: the adapter (`shared/adapters/pools_table.py`) stores a pool's leases
on its row and its entries beside it, and the admission service decides with these functions.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.dispatch import POLICIES, PoolState, Waiting, admit
from shared.domain.job import DEFAULT_POOL, MAX_SLOTS, PoolName
from shared.domain.run import Priority

PolicyName = Literal["fifo", "priority", "edf", "default", "learned"]
assert set(POLICIES) == {"fifo", "priority", "edf", "default", "learned"}


class PoolSpec(BaseModel):
    """The body of `PUT /api/pools/{name}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    slots: int | None = Field(
        description="Runs (of one slot each) that may hold capacity at once; null: unbounded (no queue).",
        ge=1,
        le=MAX_SLOTS,
    )
    tenant_limit: int | None = Field(None, ge=1, le=MAX_SLOTS, description="Most slots one tenant may hold.")
    policy: PolicyName = Field("default", description="Who goes first when slots free up.")


class Pool(PoolSpec):
    name: PoolName
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def bounded(self) -> bool:
        return self.slots is not None


def default_pool() -> Pool:
    """The `default` pool before anyone configured it: unbounded, as every job was before pools."""
    return Pool(name=DEFAULT_POOL, slots=None)


@dataclass(frozen=True, slots=True)
class Lease:
    """A run holding `slots` of a pool. `check_at`: when the watchdog makes sure the run still
    runs (a lease whose run ended without releasing it is freed then)."""

    run_id: str
    shard: str
    tenant: str
    slots: int
    since: datetime
    expected: timedelta
    check_at: datetime


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A run waiting for slots."""

    run_id: str
    shard: str
    tenant: str
    priority: Priority
    enqueued_at: datetime
    expected: timedelta
    slots: int = 1
    deadline_at: datetime | None = None
    job_name: str = ""

    def waiting(self) -> Waiting:
        return Waiting(
            key=self.run_id,
            tenant=self.tenant,
            priority=self.priority,
            enqueued_at=self.enqueued_at,
            expected=self.expected,
            deadline_at=self.deadline_at,
            slots=self.slots,
        )

    def lease(self, now: datetime) -> Lease:
        return Lease(
            self.run_id,
            self.shard,
            self.tenant,
            self.slots,
            now,
            self.expected,
            first_check(now, self.expected),
        )


def first_check(now: datetime, expected: timedelta) -> datetime:
    """A lease is first checked when its run should long have ended: twice its expected duration,
    at least 10 minutes; each later check doubles the interval (`next_check`)."""
    return now + max(2 * expected, timedelta(minutes=10))


def next_check(lease: Lease, now: datetime) -> Lease:
    return replace(lease, check_at=now + max(now - lease.since, timedelta(minutes=10)))


def state_of(pool: Pool, leases: Mapping[str, Lease]) -> PoolState:
    used: dict[str, int] = {}
    for lease in leases.values():
        used[lease.tenant] = used.get(lease.tenant, 0) + lease.slots
    assert pool.slots is not None
    return PoolState(pool.slots, pool.tenant_limit, sum(used.values()), used)


def demand(pool: Pool, slots: int) -> int:
    """Slots a run of `slots` takes in `pool`: never more than the pool (or tenant) has, or it
    would wait forever and block every run behind it."""
    return min(slots, pool.slots or slots, pool.tenant_limit or slots)


def fits(pool: Pool, leases: Mapping[str, Lease], tenant: str, slots: int) -> bool:
    state = state_of(pool, leases)
    if slots > state.free:
        return False
    return pool.tenant_limit is None or state.used_by_tenant.get(tenant, 0) + slots <= pool.tenant_limit


def choose(
    pool: Pool, leases: Mapping[str, Lease], waiting: Sequence[QueueEntry], now: datetime
) -> list[QueueEntry]:
    """The entries to admit now, by the pool's policy (the same `admit` the simulator runs)."""
    by_key = {entry.run_id: entry for entry in waiting}
    chosen = admit([e.waiting() for e in waiting], state_of(pool, leases), now, POLICIES[pool.policy])
    return [by_key[w.key] for w in chosen]


def in_order(pool: Pool, waiting: Sequence[QueueEntry], now: datetime) -> list[QueueEntry]:
    """The queue as the pool's policy orders it now: position 1 goes first."""
    key = POLICIES[pool.policy]
    return sorted(waiting, key=lambda e: (*key(e.waiting(), now), e.run_id))


def estimated_starts(
    pool: Pool, leases: Mapping[str, Lease], ordered: Sequence[QueueEntry], now: datetime
) -> dict[str, datetime]:
    """When each waiting run will likely start, if runs take their expected durations and the
    queue keeps its order: each slot frees when its lease's run should end (now, if overdue)."""
    assert pool.slots is not None
    free_at = [
        max(now, lease.since + lease.expected) for lease in leases.values() for _ in range(lease.slots)
    ]
    free_at += [now] * max(0, pool.slots - len(free_at))
    heapq.heapify(free_at)
    starts: dict[str, datetime] = {}
    for entry in ordered:
        need = demand(pool, entry.slots)
        taken = [heapq.heappop(free_at) for _ in range(min(need, len(free_at)))]
        start = max(taken) if taken else now
        starts[entry.run_id] = start
        for _ in taken:
            heapq.heappush(free_at, start + entry.expected)
    return starts


WAIT_CLASSES: Sequence[Priority] = (Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.LOW)
