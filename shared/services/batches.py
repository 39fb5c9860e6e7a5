"""Batches (shared/domain/batch.py): create, the rounds' progress, cancel, retry-failed, and the view.

* `create` (POST /api/batches): every point validated before anything is written (one 422 naming
  each wrong value); then the round's run with its points' values, in chunks, in ONE transaction of
  the job's runs partition; then the job row; then the round's launch. A crash before the job row
  leaves a round whose job does not exist: its launch (sent by the watchdog) ends it SKIPPED.
* `start` (the launch of a round): RUNNING, and the first `max_parallel` points' runs inserted in
  the same write (ETag-guarded), then their launches sent. Points' runs go through admission
  (pools, priorities) like any run.
* `point_ended` (after a point's run ends, any way): the round hears it (a bit per position, so a
  second hearing changes nothing) and starts the next point in the same write: at most
  `max_parallel` points are ever between start and end, and each starts once.
* `check` (the watchdog, every few minutes while a round runs): points that ended unheard are heard.
* `cancel`: CANCELLING first (nothing more starts), then the active points' runs, then CANCELLED.
* `retry_failed`: a new round of the points whose latest run failed or timed out (once: a marker
  names the round).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import ValidationError

from shared.domain.batch import MAX_BATCH_CHARS, MAX_POINT_CHARS, BatchSpec, chunked, task_parameters
from shared.domain.errors import AlreadyExists, ConcurrencyConflict, Conflict, InvalidInput, NotFound
from shared.domain.ids import new_id
from shared.domain.job import Actor, BatchInfo, Job, JobDefinition, JobStatus, Scalar, TemplateRef
from shared.domain.run import (
    BatchProgress,
    Cause,
    Run,
    RunState,
    Trigger,
    manual_run_key,
)
from shared.domain.template import ParameterErrors, Template
from shared.services.job_service import JobService
from shared.services.messages import launch_intent
from shared.services.ports import Point
from shared.services.run_context import Outcome, RunContext
from shared.services.templates import TemplateService
from shared.telemetry import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")
PER_WRITE = 40  # point runs inserted with one write of the round (2 rows each; a transaction holds 100)
TRIES = 40  # conflicting writes of one round (max_parallel points ending at once) before giving up
MAX_ERRORS = 20  # wrong values named in one 422
MAX_ROUNDS = 20
FAILED = frozenset({RunState.FAILED, RunState.TIMED_OUT})


def _until_saved(attempt: Callable[[], T], what: str) -> T:
    """Read, decide, write until the write lands: a round is written by every point that ends, so
    conflicts are expected; a little random backoff spreads them."""
    for n in range(TRIES):
        try:
            return attempt()
        except ConcurrencyConflict:
            time.sleep(random.uniform(0, 0.002 * min(n + 1, 10)))
    raise Conflict(f"{what} kept changing; try again")


def point_key(round_key: str, point: int) -> str:
    return f"{round_key}.p{point:05d}"


# -- create ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    definition: JobDefinition
    template: TemplateRef | None
    points: list[Point]


def _where(spec: BatchSpec, i: int, own: Mapping[str, Scalar], name: str) -> str:
    """Where a point's value came from, as the body names it."""
    if spec.runs is not None and name in own:
        return f"runs.{i}.{name}"
    if spec.grid is not None and name in spec.grid:
        return f"grid.{name}"
    return f"parameters.{name}"


def _template_points(spec: BatchSpec, template: Template, errors: dict[str, str]) -> list[Point]:
    """Each point's values as the template resolves them (defaults filled in); what is wrong goes
    to `errors`, a grid's values one by one (`grid.<name>.<j>`)."""
    check = template.spec
    for name, values in [*((n, [v]) for n, v in spec.parameters.items()), *(spec.grid or {}).items()]:
        where = f"grid.{name}" if spec.grid and name in spec.grid else f"parameters.{name}"
        p = check.parameter(name)
        if p is None:
            errors[where] = f"is not a parameter of template {check.name!r}"
            continue
        for j, value in enumerate(values):
            problem = p.problem(value)
            if problem:
                errors[f"{where}.{j}" if where.startswith("grid") else where] = problem
    points: list[Point] = []
    for i, own in enumerate(spec.points()):
        try:
            points.append((i, check.resolve({**spec.parameters, **own}, prefix="")))
        except ParameterErrors as err:
            for key, message in err.errors.items():
                where = _where(spec, i, own, key.lstrip("."))
                if not where.startswith("grid"):  # a grid's values were named one by one above
                    errors.setdefault(where, message)
        if len(errors) >= MAX_ERRORS:
            break
    return points


def _task_points(spec: BatchSpec, used: set[str], errors: dict[str, str]) -> list[Point]:
    """Each point's values for a task given as is: exactly the `{{params.<name>}}` it uses."""
    points: list[Point] = []
    for i, own in enumerate(spec.points()):
        values = {**spec.parameters, **own}
        for name in sorted(set(values) - used):
            errors.setdefault(_where(spec, i, own, name), "is not used by the task")
        for name in sorted(used - set(values)):
            errors.setdefault(
                f"runs.{i}.{name}" if spec.runs is not None else f"parameters.{name}", "is required"
            )
        points.append((i, values))
        if len(errors) >= MAX_ERRORS:
            break
    return points


def plan(spec: BatchSpec, template: Template | None) -> Plan:
    """The batch's job and every point's values, checked: InvalidInput naming each wrong value
    (`parameters.<name>`, `runs.<i>.<name>`, `grid.<name>.<j>`) if any is wrong; nothing is
    written then."""
    errors: dict[str, str] = {}
    if template is not None:
        points = _template_points(spec, template, errors)
        settings = template.spec.settings()
    else:
        assert spec.task is not None
        settings = {"job_type": spec.job_type.value, "task": spec.task.model_dump(mode="json")}
        if spec.retry is not None:
            settings["retry"] = spec.retry.model_dump(mode="json")
        points = _task_points(spec, task_parameters(settings["task"]), errors)
    total = 0
    for number, values in points:
        size = len(json.dumps(values, ensure_ascii=False))
        total += size
        if size > MAX_POINT_CHARS:
            errors.setdefault(f"runs.{number}", f"a point's values are at most {MAX_POINT_CHARS} characters")
    if total > MAX_BATCH_CHARS:
        errors.setdefault(
            "runs" if spec.runs is not None else "grid",
            f"the points' values total {total} characters; at most {MAX_BATCH_CHARS}",
        )
    if errors:
        summary = "; ".join(f"{k}: {v}" for k, v in list(errors.items())[:5])
        raise InvalidInput(f"the batch has invalid values (nothing was created): {summary}", errors=errors)
    tags = settings.get("tags")
    data = {
        **settings,
        "name": spec.name or (template.spec.name if template else "batch"),
        "description": template.spec.description if template else "",
        "overlap": "allow",  # a retry-failed round never waits for, or is skipped because of, another
        "tags": list(dict.fromkeys([*(tags if isinstance(tags, list) else []), "batch"])),
    }
    if spec.priority is not None:
        data["priority"] = spec.priority.value
    if spec.pool is not None:
        data["pool"] = spec.pool
    try:
        definition = JobDefinition.model_validate(data)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(
            f"the batch's job is not valid: {field}: {first['msg']}", errors={field: str(first["msg"])}
        ) from None
    return Plan(definition, template.ref(dict(spec.parameters)) if template else None, points)


def new_round(
    *,
    tenant: str,
    job_id: str,
    shard: str,
    version: int,
    points: Sequence[int],
    max_parallel: int,
    chunk_starts: Sequence[int],
    number: int,
    now: datetime,
    by: str,
) -> Run:
    """A round's run, SCHEDULED with its launch due now."""
    run = Run.manual(
        tenant=tenant,
        job_id=job_id,
        run_key=manual_run_key(new_id(now)),
        job_version=version,
        now=now,
        shard=shard,
    ).model_copy(
        update={
            "trigger": Trigger.BATCH,
            "reason": f"batch round {number} by {by}",
            "cause": Cause(kind=Trigger.BATCH),
            "batch": BatchProgress(
                points=list(points), max_parallel=max_parallel, chunks=list(chunk_starts), round=number
            ),
        }
    )
    return run.model_copy(update={"intent": launch_intent(run, 1, now)})


def _chunks(points: Sequence[Point]) -> dict[int, list[Point]]:
    """Points in stored chunks, by the position each chunk starts at."""
    out: dict[int, list[Point]] = {}
    position = 0
    for chunk in chunked(points):
        out[position] = list(chunk)
        position += len(chunk)
    return out


class Batches:
    def __init__(self, ctx: RunContext, jobs: JobService, templates: TemplateService) -> None:
        self.ctx = ctx
        self.jobs = jobs
        self.templates = templates

    def plan(self, tenant: str, spec: BatchSpec) -> Plan:
        template = None
        if spec.template is not None:
            try:
                template = self.templates.get(tenant, spec.template, spec.version)
            except NotFound as err:
                raise InvalidInput(
                    str(err), errors={"version" if spec.version else "template": "not found"}
                ) from None
        return plan(spec, template)

    def create(
        self,
        tenant: str,
        actor: Actor,
        spec: BatchSpec,
        planner: Callable[[], Plan] | None = None,
        key: str | None = None,
    ) -> tuple[Job, bool]:
        """The batch's job, its first round launched (see the module's docstring), and whether an
        earlier request with the Idempotency-Key `key` made it (then nothing new is made; the same
        key with another body: Conflict)."""
        ctx = self.ctx
        marker = None
        if key is not None:
            name = hashlib.sha256(key.encode()).hexdigest()[:32]
            marker = (name, {"body": hashlib.sha256(spec.model_dump_json().encode()).hexdigest()})
            earlier = self._earlier(tenant, key, marker)
            if earlier is not None:
                return earlier, True
        planned = planner() if planner is not None else self.plan(tenant, spec)
        now = ctx.clock.now()
        job_id = new_id(now)
        shard = ctx.due_index.new_shard(job_id)
        chunks = _chunks(planned.points)
        first = new_round(
            tenant=tenant,
            job_id=job_id,
            shard=shard,
            version=1,
            points=[n for n, _ in planned.points],
            max_parallel=spec.parallelism,
            chunk_starts=sorted(chunks),
            number=1,
            now=now,
            by=actor.name,
        )
        first = ctx.watched(first, now)
        ctx.run_repository.add_round(first, chunks)
        info = BatchInfo(
            size=len(planned.points), execution_mode=spec.execution_mode.value, max_parallel=spec.parallelism
        )
        try:
            job = self.jobs.create(
                tenant, actor, planned.definition, planned.template, job_id=job_id, batch=info, marker=marker
            )
        except AlreadyExists:  # a concurrent request with the key won: this round never launches a job
            assert key is not None and marker is not None
            earlier = self._earlier(tenant, key, marker)
            if earlier is None:
                raise
            return earlier, True
        _send(ctx, first)
        metrics.events.add(1, {"outcome": "batch"})
        log.info("batch created", extra={"tenant": tenant, "job_id": job_id, "points": info.size})
        return job, False

    def _earlier(self, tenant: str, key: str, marker: tuple[str, Mapping[str, str]]) -> Job | None:
        """The batch an earlier request with this key made, or None; Conflict for another body."""
        seen = self.jobs.repository.marker(tenant, marker[0])
        if seen is None:
            return None
        if seen.get("body") != marker[1]["body"]:
            raise Conflict(
                f"Idempotency-Key {key!r} was used before with another body",
                errors={"Idempotency-Key": "used with another body"},
            )
        return self.jobs.get(tenant, seen["job_id"])

    # -- retry-failed --------------------------------------------------------------------------------

    def retry_failed(self, tenant: str, job_id: str, actor: Actor) -> Run:
        """A new round of the points whose latest run failed or timed out: 409 while a round runs,
        or if none failed."""
        ctx = self.ctx
        job = self._batch_job(tenant, job_id)
        if job.status is JobStatus.CANCELLED:
            raise Conflict(f"batch {job_id} is cancelled", errors={"status": job.status.value})
        view = self.view(job)
        latest = view.rounds[0]
        if not latest.state.is_terminal:
            raise Conflict(
                f"batch {job_id} is still running (round {latest.batch.round if latest.batch else 1})",
                errors={"state": latest.state.value},
            )
        failed = [p for p in view.points if p.state in FAILED]
        if not failed:
            raise Conflict(f"batch {job_id} has no failed point", errors={"points": "none failed"})
        if len(view.rounds) >= MAX_ROUNDS:
            raise Conflict(f"batch {job_id} has had {MAX_ROUNDS} rounds", errors={"rounds": str(MAX_ROUNDS)})
        now = ctx.clock.now()
        number = (latest.batch.round if latest.batch else 1) + 1
        chunks = _chunks([(p.point, p.values) for p in failed])
        assert job.batch is not None
        run = new_round(
            tenant=tenant,
            job_id=job_id,
            shard=job.shard or ctx.due_index.shard_for(job),
            version=job.version,
            points=[p.point for p in failed],
            max_parallel=job.batch.max_parallel,
            chunk_starts=sorted(chunks),
            number=number,
            now=now,
            by=actor.name,
        )
        run = ctx.watched(run, now)
        if not ctx.run_repository.add_round(run, chunks, marker=f"round{number}"):
            raise Conflict(
                f"round {number} of batch {job_id} was started by another request; read the batch again"
            )
        _send(ctx, run)
        log.info("batch retry", extra={"job_id": job_id, "round": number, "points": len(failed)})
        return run

    def cancel(self, tenant: str, job_id: str, actor: Actor) -> Run:
        """Cancel the running round (its points not started never start, its active ones are
        cancelled in Databricks too). A round that ended is returned as it is."""
        job = self._batch_job(tenant, job_id)
        shard = job.shard or self.ctx.due_index.shard_for(job)
        rounds = self.ctx.run_repository.history(shard, tenant, job_id, limit=1).items
        if not rounds:
            raise NotFound(f"batch {job_id} has no round yet")
        latest = rounds[0]  # the newest round only: its points and values need not be read
        if latest.state.is_terminal:
            return latest
        return cancel(self.ctx, latest, f"cancelled by {actor.name}")

    # -- the view ------------------------------------------------------------------------------------

    def _batch_job(self, tenant: str, job_id: str) -> Job:
        job = self.jobs.get(tenant, job_id)
        if job.batch is None:
            raise NotFound(f"batch {job_id} not found (job {job_id} is not a batch)")
        return job

    def get(self, tenant: str, job_id: str) -> BatchView:
        return self.view(self._batch_job(tenant, job_id))

    def view(self, job: Job) -> BatchView:
        """Every point with its latest run (or none yet), and the rounds, newest first: one query
        for the rounds, and per round one for its point runs and one for its points' values."""
        ctx = self.ctx
        shard = job.shard or ctx.due_index.shard_for(job)
        page = ctx.run_repository.history(shard, job.tenant, job.id, limit=MAX_ROUNDS)
        rounds = [r for r in page.items if r.batch is not None]
        if not rounds:
            raise NotFound(f"batch {job.id} has no round yet")
        points: dict[int, PointView] = {}
        for rnd in reversed(rounds):  # oldest first: a later round's run of a point replaces the earlier one
            assert rnd.batch is not None
            runs = {
                c.cause.point: c
                for c, _ in ctx.run_repository.children(shard, job.tenant, job.id, rnd.run_key)
                if c.cause is not None and c.cause.point is not None
            }
            stored = ctx.run_repository.points(shard, job.tenant, job.id, rnd.run_key)
            for chunk in stored.values():
                for number, values in chunk:
                    child = runs.get(number)
                    state = child.state if child else (RunState.CANCELLED if rnd.state.is_terminal else None)
                    points[number] = PointView(number, values, rnd.batch.round, child, state)
        return BatchView(job, rounds, [points[n] for n in sorted(points)])


@dataclass(frozen=True)
class PointView:
    point: int
    values: dict[str, Scalar]
    round: int
    run: Run | None  # None: not started (yet, or ever: its round ended first)
    state: RunState | None  # None: waiting for its turn (max_parallel)


@dataclass(frozen=True)
class BatchView:
    job: Job
    rounds: list[Run]  # newest first
    points: list[PointView]


# -- the rounds' progress (launch, point ends, the watchdog) --------------------------------------------


def _child(parent: Run, point: int, values: Mapping[str, Scalar], now: datetime) -> Run:
    child = Run(
        tenant=parent.tenant,
        job_id=parent.job_id,
        run_key=point_key(parent.run_key, point),
        shard=parent.shard,
        trigger=Trigger.BATCH,
        scheduled_for=now,
        state=RunState.SCHEDULED,
        job_version=parent.job_version,
        created_at=now,
        updated_at=now,
        transitions={RunState.SCHEDULED.value: now},
        parent=parent.run_key,
        cause=Cause(kind=Trigger.BATCH, point=point, values=dict(values)),
        deadline_at=parent.deadline_at,
    )
    return child.model_copy(update={"intent": launch_intent(child, 1, now)})


def _send(ctx: RunContext, run: Run) -> None:
    from shared.services.endings import send_recorded

    send_recorded(ctx, run)


def _advance(ctx: RunContext, before: Run, etag: str, after: Run, now: datetime) -> Run:
    """Write the round `after` over `before` (as read, with `etag`), starting the points it has room
    for (PER_WRITE per write) and ending it when every point has ended (or, while CANCELLING, when
    none is active); then send the started points' launches. ConcurrencyConflict if the round
    changed since read (the caller reads it again)."""
    from shared.services import endings

    while True:
        progress = after.batch
        assert progress is not None
        stopping = after.state is RunState.CANCELLING
        positions = [] if stopping else list(progress.next_positions())[:PER_WRITE]
        values = _values(ctx, after, progress, positions)
        children = [ctx.watched(_child(after, progress.points[p], values[p], now), now) for p in positions]
        progress = progress.model_copy(update={"started": progress.started + len(positions)})
        after = after.model_copy(update={"batch": progress})
        if progress.done or (stopping and progress.active == 0):
            state = RunState.CANCELLED if stopping else progress.outcome()
            missed = progress.size - progress.counts.get(RunState.SUCCEEDED.value, 0)
            why = (
                None
                if stopping
                else (f"{missed} of {progress.size} points did not succeed" if missed else "")
            )
            after = after.moved(state, now, reason=why)
        saved, etag = ctx.write(before, etag, after, now, children)
        endings.after_parent_write(ctx, saved, children, now)
        if saved.state.is_terminal or len(positions) < PER_WRITE:
            return saved
        before = after = saved


def _values(
    ctx: RunContext, parent: Run, progress: BatchProgress, positions: Sequence[int]
) -> dict[int, dict[str, Scalar]]:
    """The values of the points at `positions`, read from their stored chunks."""
    out: dict[int, dict[str, Scalar]] = {}
    for start in sorted({progress.chunk_of(p) for p in positions}):
        chunk = ctx.run_repository.points(parent.shard, parent.tenant, parent.job_id, parent.run_key, start)[
            start
        ]
        for offset, (_, values) in enumerate(chunk):
            out[start + offset] = values
    return out


def start(ctx: RunContext, run: Run, etag: str, job: Job, now: datetime) -> Outcome:
    """The launch of a round: RUNNING, and its first points started."""
    deadline = job.definition.deadline
    running = run.moved(RunState.LAUNCHING, now).moved(
        RunState.RUNNING,
        now,
        reason="",
        deadline_at=run.deadline_at or (run.scheduled_for + deadline if deadline else None),
    )
    try:
        saved = _advance(ctx, run, etag, running, now)
    except ConcurrencyConflict:
        return Outcome("already_handled")  # another delivery started it
    log.info("batch round started", extra={"job_id": run.job_id, "run_key": run.run_key})
    return Outcome("launched", saved)


def point_ended(ctx: RunContext, child: Run, now: datetime) -> None:
    """The round hears that a point's run ended, and starts the next point. Safe to repeat."""
    assert child.parent is not None and child.cause is not None and child.cause.point is not None
    point = child.cause.point

    def attempt() -> None:
        try:
            parent, etag = ctx.run_repository.get(child.shard, child.tenant, child.job_id, child.parent or "")
        except NotFound:
            return
        progress = parent.batch
        if progress is None or parent.state.is_terminal:
            return
        position = progress.position_of(point)
        if (
            position is None
            or progress.has_ended(position)
            or child.run_key != point_key(parent.run_key, point)
        ):
            return  # heard already (a redelivery), or not a point of this round
        job = ctx.job(child.tenant, child.job_id)
        if job is None or job.status is JobStatus.CANCELLED:  # nothing more starts
            cancel(ctx, parent, "its job was cancelled")
            return
        _advance(
            ctx, parent, etag, parent.model_copy(update={"batch": progress.heard(position, child.state)}), now
        )

    _until_saved(attempt, f"batch round {child.parent}")


def check(ctx: RunContext, parent: Run, etag: str, now: datetime) -> None:
    """The watchdog's look at a running round: hear point runs that ended unheard, go on; else look
    again later."""
    progress = parent.batch
    assert progress is not None
    for child, _ in ctx.run_repository.children(parent.shard, parent.tenant, parent.job_id, parent.run_key):
        point = child.cause.point if child.cause else None
        position = progress.position_of(point) if point is not None else None
        if position is not None and child.state.is_terminal and not progress.has_ended(position):
            progress = progress.heard(position, child.state)
            log.warning("heard a batch point that ended unheard", extra={"run_key": child.run_key})
    if parent.state is RunState.CANCELLING:
        cancel(ctx, parent, parent.reason or "cancelled")
        return
    _advance(
        ctx, parent, etag, parent.model_copy(update={"batch": progress, "checks": parent.checks + 1}), now
    )


def cancel(ctx: RunContext, parent: Run, reason: str) -> Run:
    """Cancel a round: CANCELLING first (nothing more starts), then its active points' runs, then
    CANCELLED."""
    from shared.services.stopping import stop_children

    now = ctx.clock.now()
    current = stop_children(ctx, parent, reason, now, TRIES)
    if current.state.is_terminal:
        return current

    def finish() -> Run:
        current, etag = ctx.run_repository.get(parent.shard, parent.tenant, parent.job_id, parent.run_key)
        if current.state.is_terminal:
            return current
        assert current.batch is not None
        if current.batch.active == 0:
            return _advance(ctx, current, etag, current, now)
        return _end_cancelled(ctx, current, etag, now, reason)

    return _until_saved(finish, f"batch round {parent.id}")


def _end_cancelled(ctx: RunContext, current: Run, etag: str, now: datetime, reason: str) -> Run:
    """CANCELLED although some point runs were not heard ending (they were stopped just now)."""
    from shared.services import endings

    saved, _ = ctx.write(current, etag, current.moved(RunState.CANCELLED, now, reason=reason), now)
    metrics.runs_finished.add(1, {"state": saved.state.value, "job_id": saved.job_id, "tenant": saved.tenant})
    endings.after_end(ctx, saved, now, redo=False)
    return saved
