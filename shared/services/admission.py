"""Admission: a run of a job in a bounded pool takes a slot before it calls Databricks, or waits.

* `claim` (the launch handler, before the Databricks call): a lease already held (a redelivery,
  a retry, an admitted run) goes on; else a free slot is taken when nobody waits; else the run is
  queued. Each is one conditional write of the pool partition, tried first against this process's
  last copy of the pool row: an uncontended launch costs one storage request more than an
  unpooled one. A crash after the take and before the call leaves the lease with the run still
  SCHEDULED; the redelivered (or the watchdog's re-sent) launch finds the lease and goes on.
* `release` (after every end, any reason): drops the run's lease or queue entry and admits the
  best waiting runs in the same transaction, then sends their launches. Safe to repeat: a second
  release finds nothing to drop. One request when nobody waits.
* `check_queued` and `sweep` (the watchdog): a queued run whose admission message was lost is
  launched; a lease whose run ended without releasing it is freed; a pool with room and a queue
  (its release lost) admits. So a waiting run is never lost and a slot never leaks.

A pool whose `slots` is null (the `default` pool until someone bounds it) has no admission at all.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from shared.domain.errors import AlreadyExists, ConcurrencyConflict, Conflict, ExternalError, NotFound
from shared.domain.job import Job
from shared.domain.pool import Lease, QueueEntry, choose, demand, fits, next_check, state_of
from shared.domain.run import Run, RunState, epoch_ms, parse_run_id
from shared.services.messages import RunRef, admitted_launch
from shared.services.ports import PoolSnapshot
from shared.services.run_context import RunContext
from shared.telemetry import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")
TRIES = 40  # conflicting writes to one pool row before giving up (16 handlers on one pool need ~10)
MAX_ADMIT = 90  # runs admitted in one transaction (the pool row and one delete each: <= 100 rows)


def _until_committed(attempt: Callable[[], T], what: str) -> T:
    """Call `attempt` (read, decide, commit) until its commit lands, backing off a little."""
    for n in range(TRIES):
        try:
            return attempt()
        except ConcurrencyConflict:
            time.sleep(random.uniform(0, 0.002 * min(n + 1, 10)))
    raise Conflict(f"{what} kept changing; try again")


@dataclass(frozen=True)
class Claim:
    run: Run  # with its pool, slots, priority and deadline set (pool None: unbounded)
    go: bool  # it holds its slot: call Databricks
    room: bool = False  # queued although the pool has free slots (a tenant limit, a queue ahead)


def pooled(run: Run, job: Job, pool: str, slots: int) -> Run:
    """`run` with what its pool needs to know; a priority set by hand on the run is kept."""
    deadline = job.definition.deadline
    return run.model_copy(
        update={
            "pool": pool,
            "slots": slots,
            "priority": run.priority or job.definition.priority,
            "deadline_at": run.deadline_at or (run.scheduled_for + deadline if deadline else None),
        }
    )


POOL_FIELDS = ("pool", "slots", "priority", "deadline_at", "admitted_at")


def pool_fields(run: Run) -> dict[str, object]:
    """What a run's writes carry over from its claim (a re-read row may not have them yet)."""
    return {name: getattr(run, name) for name in POOL_FIELDS}


def claim(
    ctx: RunContext, run: Run, job: Job, expected: timedelta, now: datetime, *, queue: bool = True
) -> Claim:
    """Take a slot for the launch of `run`, or queue it (`queue` False: only say there is none)."""
    name = job.definition.pool
    try:
        first = ctx.pools.read(name, remembered=True)
    except NotFound:
        log.warning("job names pool %s, which does not exist: launching unbounded", name)
        return Claim(run, True)
    if not first.pool.bounded:
        deadline = job.definition.deadline
        at = run.deadline_at or (run.scheduled_for + deadline if deadline else None)
        return Claim(run.model_copy(update={"deadline_at": at}), True)
    run = pooled(run, job, name, demand(first.pool, job.definition.slots))
    assert run.priority is not None
    entry = QueueEntry(
        run.id,
        run.shard,
        run.tenant,
        run.priority,
        now,
        expected,
        run.slots,
        run.deadline_at,
        job.definition.name,
    )
    copies = [first]

    def attempt() -> Claim:
        s = copies.pop() if copies else ctx.pools.read(name)
        held = s.leases.get(run.id)
        if held is not None:  # admitted from the queue, a redelivery, or a retry
            return Claim(run.model_copy(update={"admitted_at": run.admitted_at or held.since}), True)
        if s.waiting == 0 and fits(s.pool, s.leases, run.tenant, run.slots):
            ctx.pools.commit(s, leases={**s.leases, run.id: entry.lease(now)})
            return Claim(run.model_copy(update={"admitted_at": now}), True)
        room = s.pool.bounded and state_of(s.pool, s.leases).free > 0
        if not queue:
            return Claim(run, False, room)
        with contextlib.suppress(AlreadyExists):  # queued already (a redelivery)
            ctx.pools.commit(s, add=entry)
        return Claim(run, False, room)

    return _until_committed(attempt, f"pool {name}")


def release(ctx: RunContext, run: Run, now: datetime) -> list[QueueEntry]:
    """Free the slot `run` holds (or its place in the queue) and admit who goes next."""
    if not run.pool:
        return []
    return settle_pool(ctx, run.pool, now, run.id)


def settle_pool(ctx: RunContext, name: str, now: datetime, release: str | None = None) -> list[QueueEntry]:
    """Drop `release`'s lease or entry, admit the best waiting runs, send their launches."""
    try:
        fast = [ctx.pools.read(name, remembered=True)] if release else []
    except NotFound:
        return []
    freed: list[bool] = []

    def attempt() -> list[QueueEntry]:
        freed.clear()
        s = fast.pop() if fast else None
        if s is not None and s.waiting == 0 and release in s.leases:
            ctx.pools.commit(s, leases=_without(s.leases, release))
            freed.append(True)
            return []
        s = ctx.pools.read(name, entries=True)
        leases = dict(s.leases)
        if release is not None and leases.pop(release, None) is not None:
            freed.append(True)
        dropped = [release] if release is not None and s.entry(release) is not None else []
        waiting = [e for e in s.entries or () if e.run_id not in dropped]
        if s.pool.bounded:
            admitted = choose(s.pool, leases, waiting, now)[:MAX_ADMIT]
            leases.update({e.run_id: e.lease(now) for e in admitted})
        else:
            admitted = waiting[:MAX_ADMIT]  # the pool was unbounded since: let them all go
        if not freed and not dropped and not admitted:
            return []
        ctx.pools.commit(s, leases=leases, remove=[*dropped, *(e.run_id for e in admitted)])
        return admitted

    admitted = _until_committed(attempt, f"pool {name}")
    if freed:
        metrics.slot_releases.add(1, {"pool": name})
    for entry in admitted:
        metrics.queue_wait_ms.record((now - entry.enqueued_at).total_seconds() * 1000, {"pool": name})
        _launch(ctx, entry.run_id, entry.shard, entry.tenant, now, f"admit{epoch_ms(now)}")
    return admitted


def _without(leases: Mapping[str, Lease], run_id: str | None) -> dict[str, Lease]:
    return {k: v for k, v in leases.items() if k != run_id}


def _launch(ctx: RunContext, run_id: str, shard: str, tenant: str, now: datetime, why: str) -> None:
    """Send the launch of an admitted run. A lost send is repaired by the watchdog (the run is
    QUEUED holding a lease), so a failure here never fails the handler that freed the slot."""
    job_id, run_key = parse_run_id(run_id)
    message = admitted_launch(RunRef(shard, tenant, job_id, run_key, 1), ctx.settings.queues.launch, now, why)
    try:
        ctx.sender.send([message])
    except ExternalError as err:
        log.warning(
            "could not send an admitted launch; the watchdog will: %s", err.detail, extra={"job_id": job_id}
        )


# -- the watchdog -------------------------------------------------------------------------------------


def check_queued(ctx: RunContext, run: Run, now: datetime) -> bool:
    """A QUEUED run the watchdog looks at: launch it if it holds a lease (its admission message
    was lost), admit from its pool if it waits there. False if the pool knows nothing of it: the
    caller launches it again, to claim anew."""
    assert run.pool is not None
    try:
        s = ctx.pools.read(run.pool, entries=True)
    except NotFound:
        return False
    if run.id in s.leases:
        _launch(ctx, run.id, run.shard, run.tenant, now, f"check{run.checks + 1}")
        return True
    if s.entry(run.id) is not None:
        settle_pool(ctx, run.pool, now)
        return True
    return False


@dataclass
class SweepReport:
    pools: int = 0
    leases_checked: int = 0
    leases_freed: int = 0
    relaunched: int = 0
    admitted: int = 0


def sweep(ctx: RunContext, now: datetime, limit: int = 50) -> SweepReport:
    """Each bounded pool: free leases whose run ended, launch leased runs that never started, admit
    if there is room and a queue. One query per pool, plus a run read per lease due for a check
    (a lease is checked at twice its run's expected duration, then at doubling intervals)."""
    report = SweepReport()
    for pool in ctx.pools.pools():
        if not pool.bounded:
            continue
        report.pools += 1
        s = ctx.pools.read(pool.name, entries=True)
        due = sorted(
            (lease for lease in s.leases.values() if lease.check_at <= now), key=lambda x: x.check_at
        )
        later: dict[str, Lease] = {}
        for lease in due[:limit]:
            report.leases_checked += 1
            run = _run(ctx, lease)
            if run is None or run.state.is_terminal:
                settle_pool(ctx, pool.name, now, lease.run_id)
                report.leases_freed += 1
                log.warning(
                    "freed a slot held by an ended run", extra={"run_id": lease.run_id, "pool": pool.name}
                )
                continue
            if run.state in (RunState.SCHEDULED, RunState.QUEUED):
                _launch(ctx, lease.run_id, lease.shard, lease.tenant, now, f"sweep{epoch_ms(now)}")
                report.relaunched += 1
            later[lease.run_id] = next_check(lease, now)
        if later:
            _push_checks(ctx, pool.name, later)
        if s.waiting and state_of(s.pool, s.leases).free > 0:
            report.admitted += len(settle_pool(ctx, pool.name, now))
    return report


def _run(ctx: RunContext, lease: Lease) -> Run | None:
    job_id, run_key = parse_run_id(lease.run_id)
    try:
        return ctx.run_repository.get(lease.shard, lease.tenant, job_id, run_key)[0]
    except NotFound:
        return None


def _push_checks(ctx: RunContext, name: str, later: Mapping[str, Lease]) -> None:
    def attempt() -> None:
        s: PoolSnapshot = ctx.pools.read(name)
        leases = dict(s.leases)
        leases.update({k: v for k, v in later.items() if k in leases})
        ctx.pools.commit(s, leases=leases)

    _until_committed(attempt, f"pool {name}")
