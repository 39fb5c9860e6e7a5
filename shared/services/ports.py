"""The ports the services talk to: where jobs and runs are kept, and the indexes over them.

The Table Storage adapters implement them (`shared/adapters/jobs_table.py`, `runs_table.py`);
the tests run the same adapters on an in-memory table, and one contract suite holds both to the
same behaviour. The values here are what crosses a port: no storage key ever does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Generic, Protocol, TypeVar

from shared.domain.analytics import Aggregate, Tally
from shared.domain.job import AuditEntry, Job, JobSummary
from shared.domain.pool import Lease, Pool, QueueEntry
from shared.domain.run import Run
from shared.domain.template import Template

T = TypeVar("T")
Point = tuple[int, dict[str, bool | int | float | str]]  # a batch's point: its number and its values


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    continuation: str | None


@dataclass(frozen=True, slots=True)
class JobQuery:
    sort: str = "-created_at"
    job_type: str | None = None
    status: str | None = None
    tag: str | None = None
    text: str | None = None
    limit: int = 50
    continuation: str | None = None


@dataclass(frozen=True, slots=True)
class DueEntry:
    """ "Visit this job at `fire_at`": the tick's index entry of one job."""

    shard: str
    fire_at: datetime
    tenant: str
    job_id: str


@dataclass(frozen=True, slots=True)
class WatchHint:
    """ "Look at this run at `at`": the index entry behind a run's `watch_at`."""

    shard: str
    at: datetime
    tenant: str
    job_id: str
    run_key: str

    @classmethod
    def of(cls, run: Run) -> WatchHint | None:
        if run.watch_at is None:
            return None
        return cls(run.shard, run.watch_at, run.tenant, run.job_id, run.run_key)


@dataclass(frozen=True, slots=True)
class Watch:
    """A file arrival trigger watching a container: the job's `triggers[index]`."""

    tenant: str
    job_id: str
    index: str
    container: str
    account: str = ""
    prefix: str = ""
    suffix: str = ""

    def matches(self, account: str, blob: str) -> bool:
        """Whether a blob created in `account` (and this container) is one the trigger waits for."""
        return (
            (not self.account or self.account == account)
            and blob.startswith(self.prefix)
            and blob.endswith(self.suffix)
        )

    @property
    def row_key(self) -> str:
        return f"{self.container}~{self.tenant}~{self.job_id}~{self.index}"


class TemplateRepository(Protocol):
    def get(self, tenant: str, name: str) -> tuple[Template, str]:
        """The template at its newest version and the ETag to save it with; NotFound if none."""
        ...

    def version(self, tenant: str, name: str, version: int) -> Template:
        """The template as it was at `version`; NotFound if it never was."""
        ...

    def list(self, tenant: str) -> list[Template]:
        """The tenant's templates at their newest versions, by name."""
        ...

    def add(self, template: Template) -> None:
        """Insert version 1; AlreadyExists if the name is taken."""
        ...

    def save(self, etag: str, after: Template) -> None:
        """Make `after` the newest version if unchanged since read (else ConcurrencyConflict)."""
        ...


class JobRepository(Protocol):
    def get(self, tenant: str, job_id: str) -> tuple[Job, str]:
        """The job and the ETag to save it back with; NotFound if there is none."""
        ...

    def watchers(self, container: str) -> list[Watch]:
        """The file arrival triggers watching `container`, of every tenant (one range query)."""
        ...

    def unwatch(self, watch: Watch) -> None:
        """Drop a watch row its job no longer has."""
        ...

    def locate(self, job_id: str) -> str | None:
        """The tenant that owns `job_id` (a cross-partition lookup: for admins only)."""
        ...

    def add(self, job: Job, audit: AuditEntry, marker: tuple[str, Mapping[str, str]] | None = None) -> None:
        """Insert a new job and its first audit entry (and `marker`: a name, unique in the tenant, and
        what it records), atomically; AlreadyExists if the marker names another job."""
        ...

    def marker(self, tenant: str, name: str) -> dict[str, str] | None:
        """What a marker `add` inserted records, or None."""
        ...

    def save(self, before: Job, etag: str, after: Job, audit: AuditEntry | None) -> None:
        """Replace `before` (read with `etag`) by `after`; ConcurrencyConflict if it changed since."""
        ...

    def save_all(self, items: Sequence[tuple[Job, str, Job]]) -> list[str]:
        """Save many jobs of one tenant, as few transactions as fit (no audit: the tick's changes).

        Returns the ids of the jobs saved; a job whose transaction failed (one of its jobs changed
        since it was read) is not among them, and nothing of that transaction was written."""
        ...

    def find(self, tenant: str, query: JobQuery) -> Page[JobSummary]:
        """A page of the tenant's jobs: filtered, searched and sorted as `query` says."""
        ...

    def audit_trail(
        self, tenant: str, job_id: str, limit: int, continuation: str | None
    ) -> Page[AuditEntry]: ...

    def overdue(self, tenant: str, before: datetime) -> list[Job]:
        """The tenant's jobs whose next fire time is before `before` (the tick has not advanced
        them): read from the next-fire index, so the cost is what is overdue, not what exists."""
        ...

    def tenants(self) -> list[str]:
        """Every tenant that has ever had a job."""
        ...

    def dependents(self, tenant: str, job_id: str) -> list[str]:
        """The jobs whose `after` triggers name `job_id`."""
        ...

    def dependencies(self, tenant: str) -> list[tuple[str, str]]:
        """Every (upstream, dependent) pair of the tenant's `after` triggers."""
        ...


class RunRepository(Protocol):
    def get(self, shard: str, tenant: str, job_id: str, run_key: str) -> tuple[Run, str]: ...

    def recent(self, shard: str, tenant: str, job_id: str, limit: int = 50) -> list[tuple[Run, str]]:
        """The job's newest runs with their ETags, newest first (active runs are among them)."""
        ...

    def children(self, shard: str, tenant: str, job_id: str, parent_key: str) -> list[tuple[Run, str]]:
        """The runs of a pipeline run's steps, with their ETags."""
        ...

    def history(
        self,
        shard: str,
        tenant: str,
        job_id: str,
        *,
        state: str | None = None,
        limit: int = 50,
        continuation: str | None = None,
    ) -> Page[Run]: ...

    def overdue(self, shard: str, now: datetime) -> Iterator[WatchHint]:
        """Watch hints in `shard` due before `now`, oldest first."""
        ...

    def add(self, run: Run) -> tuple[Run, bool]:
        """Record `run` and its hint unless a run with its key exists: the stored run, and whether new."""
        ...

    def save(self, before: Run, etag: str, after: Run, tally: Tally | None = None) -> str:
        """Replace the run if unchanged since read, moving its hint with it; the new ETag. `tally`:
        the run ended: what it adds to analytics, recorded in the same transaction."""
        ...

    def claims(self, shard: str, tenant: str, job_id: str, since: datetime) -> set[str]:
        """The upstream runs the job's `after` runs have used, of those that ended since `since`."""
        ...

    def add_claiming(self, run: Run, used: Sequence[tuple[datetime, str]]) -> bool:
        """Insert `run` and claim the upstream runs it uses, atomically; False if either exists."""
        ...

    def marker(self, shard: str, tenant: str, job_id: str, name: str) -> dict[str, str] | None:
        """A cause already seen (a file, a webhook call): its marker's properties, or None."""
        ...

    def add_round(self, run: Run, chunks: Mapping[int, Sequence[Point]], marker: str | None = None) -> bool:
        """Insert a batch's round: its run (with its hint), its points' values in chunks (by the
        position each starts at) and, if given, a marker naming it, in one transaction; False (nothing
        written) if the marker exists."""
        ...

    def points(
        self, shard: str, tenant: str, job_id: str, round_key: str, start: int | None = None
    ) -> dict[int, list[Point]]:
        """A round's stored points (number, values), by chunk start: every chunk, or the one at `start`."""
        ...

    def add_caused(
        self, shard: str, tenant: str, job_id: str, run: Run | None, markers: Mapping[str, Mapping[str, str]]
    ) -> bool:
        """Insert `run` (if any) and the markers of its causes atomically; False if one exists."""
        ...

    def trigger_state(self, shard: str, tenant: str, job_id: str, name: str) -> tuple[str, str] | None:
        """The run key a trigger's state points at (its newest run) and the state's ETag, or None."""
        ...

    def gather(
        self,
        before: tuple[Run, str] | None,
        after: Run,
        marker: tuple[str, Mapping[str, str]],
        state: tuple[str, str | None] | None,
    ) -> None:
        """A file joins a run (inserted or replaced) with its marker, and a new run becomes the
        trigger's newest: one transaction (AlreadyExists, ConcurrencyConflict: nothing written)."""
        ...

    def save_family(
        self, before: Run, etag: str, after: Run, children: Sequence[Run], tally: Tally | None = None
    ) -> str:
        """Save a pipeline run and insert its new steps' runs, in one transaction (ConcurrencyConflict
        if the parent changed, AlreadyExists if a step's run exists; nothing written then)."""
        ...

    def record_fire(
        self, shard: str, runs: Sequence[Run], due_from: DueEntry | None, due_to: DueEntry | None
    ) -> list[Run]:
        """A job's new runs with their hints, and its due entry moved, in one transaction."""
        ...

    def record_fires(
        self, shard: str, fires: Sequence[tuple[Sequence[Run], DueEntry | None, DueEntry | None]]
    ) -> list[list[Run] | None]:
        """Many jobs' `record_fire`s in as few transactions as fit; per fire, the runs recorded, or
        None if its transaction failed (nothing of it was written: record it alone)."""
        ...

    def drop_hint(self, hint: WatchHint) -> None: ...

    def rehome(self, hint: WatchHint, run: Run) -> None:
        """Drop a stale hint and make sure the run's own hint exists."""
        ...


class DueIndex(Protocol):
    shards: list[str]

    def shard_for(self, job: Job) -> str: ...

    def new_shard(self, job_id: str) -> str: ...

    def entry(self, job: Job) -> DueEntry | None:
        """The entry `job` should have, or None if the tick has nothing to do for it."""
        ...

    def put(self, entry: DueEntry) -> None: ...

    def remove(self, entry: DueEntry) -> None:
        """Delete an entry; one already gone is fine."""
        ...

    def exists(self, entry: DueEntry) -> bool: ...

    def due(self, shard: str, horizon: datetime) -> Iterator[DueEntry]:
        """Entries in `shard` firing before `horizon`, earliest first."""
        ...


@dataclass(frozen=True)
class PoolSnapshot:
    """A pool as read: its spec, leases and waiting count; `etag` "" if its row does not exist;
    `entries` (with their ETags) only when they were asked for."""

    pool: Pool
    leases: Mapping[str, Lease]
    waiting: int
    etag: str
    entries: Sequence[QueueEntry] | None = None
    entry_etags: Mapping[str, str] = field(default_factory=dict)
    read_at: float = field(default_factory=time.monotonic)

    def entry(self, run_id: str) -> QueueEntry | None:
        return next((e for e in self.entries or () if e.run_id == run_id), None)


class PoolRepository(Protocol):
    """Pools with their leases and queues (`shared/adapters/pools_table.py`)."""

    def read(self, name: str, *, entries: bool = False, remembered: bool = False) -> PoolSnapshot:
        """The pool, NotFound if unknown (`default` always exists). `remembered`: this process's
        last copy if it has one; `entries`: the queue too (always a fresh read)."""
        ...

    def pools(self) -> list[Pool]: ...

    def commit(
        self,
        before: PoolSnapshot,
        *,
        pool: Pool | None = None,
        leases: Mapping[str, Lease] | None = None,
        add: QueueEntry | None = None,
        remove: Iterable[str] = (),
        update: Iterable[QueueEntry] = (),
    ) -> PoolSnapshot:
        """One transaction over `before`: ConcurrencyConflict if it changed, AlreadyExists if
        `add` is queued already; nothing written then."""
        ...


class AnalyticsRepository(Protocol):
    """What runs' ends add up to, by tenant, day and job (shared/adapters/analytics_table.py)."""

    def count(self, shard: str, tallies: Sequence[Tally]) -> bool:
        """Add ends (one tenant and day, at most 98) to their day and drop their pending rows, at once
        (False: one was counted already; ConcurrencyConflict: the day moved; nothing written)."""
        ...

    def pending(self, shard: str, limit: int = 500) -> list[Tally]:
        """Ends in `shard` not counted yet."""
        ...

    def window(
        self, tenants: Sequence[str], first: date, last: date, by_job: bool = True
    ) -> Iterator[tuple[str, date, str, Aggregate]]:
        """(tenant, day, key, aggregate) for the tenants' runs ended in [first, last], by job (key:
        job id) or else by job type (key: the type)."""
        ...
