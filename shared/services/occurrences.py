"""What a due job's fire writes, decided without storage: its occurrences up to the horizon, with
the misfire policy and the pause applied, and the job as it stands after them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.job import Job, JobStatus, MisfirePolicy
from shared.domain.policies import CatchUpBounds, WatchPolicy, misfire_verdict, watch_at
from shared.domain.run import Run, SkipReason
from shared.domain.schedule import DstNote
from shared.services.messages import launch_intent

MISFIRE_GRACE = timedelta(seconds=60)  # later than this, a fire time counts as missed
# Rows one job's fire may write (a transaction holds 100: each run and its hint, the due row moved);
# a longer backlog continues on the next tick.
MAX_ROWS_PER_FIRE = 98
CATCH_UP_CAP = 100


@dataclass(frozen=True)
class Plan:
    runs: list[Run]
    next_fire: datetime | None
    next_dst: DstNote | None


def plan_occurrences(job: Job, now: datetime, horizon: datetime, shard: str, watch: WatchPolicy) -> Plan:
    """Occurrences from the next fire time up to the horizon, with the misfire policy applied."""
    spec = job.definition.schedule
    if spec is None:  # triggered only: the tick has nothing to fire (a stale due row)
        return Plan([], None, None)
    paused = job.status is JobStatus.PAUSED
    limit = now if paused else horizon  # a paused job records a skip only once the time has passed
    policy = job.definition.misfire
    missed_before = now - MISFIRE_GRACE
    catch_up = catch_up_bounds(job, now) if policy is MisfirePolicy.CATCH_UP else None
    runs: list[Run] = []
    rows = 0
    at, dst = job.next_fire_at, job.next_fire_dst
    while at is not None and at < limit and rows + 2 <= MAX_ROWS_PER_FIRE:
        following = spec.next_fire(at)
        if paused:
            skip: SkipReason | None = SkipReason.PAUSED
        else:
            skip = misfire_verdict(policy, at, following.at if following else None, missed_before, catch_up)
        runs.append(_occurrence(job, at, now, skip, shard, watch))
        rows += 1 if skip else 2
        at, dst = (following.at, following.dst) if following else (None, None)
    return Plan(runs, at, dst)


def _occurrence(
    job: Job, at: datetime, now: datetime, skip: SkipReason | None, shard: str, watch: WatchPolicy
) -> Run:
    run = Run.occurrence(
        tenant=job.tenant,
        job_id=job.id,
        scheduled_for=at,
        job_version=job.version,
        now=now,
        skipped=skip,
        shard=shard,
    )
    if skip is None:
        run = run.model_copy(update={"intent": launch_intent(run, 1, at)})
        run = run.model_copy(update={"watch_at": watch_at(run, watch, now)})
    return run


def catch_up_bounds(job: Job, now: datetime) -> CatchUpBounds:
    """Where the catch-up window starts, and the earliest of the last CATCH_UP_CAP missed times in it."""
    window_start = now - job.definition.catch_up_window
    recent: deque[datetime] = deque(maxlen=CATCH_UP_CAP)
    spec = job.definition.schedule
    fire = spec.next_fire(window_start - timedelta(microseconds=1)) if spec else None
    steps = 0
    while spec is not None and fire is not None and fire.at < now - MISFIRE_GRACE and steps < 20_000:
        recent.append(fire.at)
        fire = spec.next_fire(fire.at)
        steps += 1
    floor = recent[0] if len(recent) == CATCH_UP_CAP else window_start
    return CatchUpBounds(window_start, floor)


def advanced(job: Job, plan: Plan, recorded: list[Run]) -> Job:
    """The job after this fire: next fire time moved on, the newest occurrence noted."""
    update: dict[str, object] = {"next_fire_at": plan.next_fire, "next_fire_dst": plan.next_dst}
    live = any(not r.state.is_terminal for r in recorded)
    scheduled = job.definition.schedule is not None
    if plan.next_fire is None and job.status is JobStatus.ACTIVE and not live and scheduled:
        update["status"] = JobStatus.COMPLETED  # else the end of its last run completes it
    if recorded:
        newest = max(recorded, key=lambda r: r.scheduled_for)
        update["last_run_state"] = newest.state
        update["last_run_at"] = newest.scheduled_for
    return job.model_copy(update=update)
