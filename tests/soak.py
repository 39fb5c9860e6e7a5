"""A seeded, bounded fault-injection soak of the whole run path, in simulated time.

A few hundred occurrences (one-time and cron jobs; tasks that succeed, fail and are retried,
always fail, and outlive their timeout; jobs whose runs overlap under each overlap policy) run
through the real tick, launch, poll, watchdog and commands, on in-memory tables, the Service Bus
twin and a scripted fake Databricks, while faults strike at random:

- storage errors before a read or write, and after a write landed (the answer was lost);
- sends that fail, and sends whose acknowledgement was lost after Service Bus took them;
- duplicate deliveries; hosts that die after a handler did its work (the lock runs out);
- two ticks running at once; Databricks answering 429 or 503.

File arrival and webhook jobs get their causes (36 files, 12 webhook keys) at random times,
each delivered one to three times (a copy with the same event id or a new one, some 20 minutes
late), and again 10-60 s later whenever the handler raised: every file and key must end up in
exactly one run.

Every third job runs in a bounded pool (`POOL_SLOTS` slots): after every delivery the pool is read
(past the faults) and must hold no more than its slots; at the end it must hold nothing and have
nobody waiting (a slot released exactly once, no waiting run lost).

Then the schedules end, the world settles, and the report counts what must be zero: stuck runs,
wrong final states, Databricks runs started twice for one idempotency token, and occurrences
missing or recorded twice. `python -m benchmarks.soak` runs more seeds and prints the figures.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.databricks import LaunchRequest, Phase, idempotency_token
from shared.adapters.pools_table import PoolsTable
from shared.adapters.queue import OutgoingMessage
from shared.adapters.table import Row, Write
from shared.domain.batch import BatchSpec
from shared.domain.errors import ExternalError
from shared.domain.job import Job, JobDefinition
from shared.domain.notifications import NoticeState
from shared.domain.pool import PoolSpec
from shared.domain.run import FailureKind, Run, RunState
from shared.services.ports import PoolSnapshot
from tests.fakes.clock import FixedClock
from tests.fakes.databricks import FakeDatabricks, FakeOutcome, FakeRun, _error, _Failure
from tests.fakes.memory_table import InMemoryTable
from tests.fakes.poster import FakePoster
from tests.world import ALICE, World

START = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
POOL, POOL_SLOTS = "soak", 3
CUTOFF = START + timedelta(hours=2)  # schedules end here
# The world runs on until here. A storm builds a backlog in the 3-slot pool that takes hours to
# drain: a run of the last occurrence was seen waiting 169 minutes for its slot, then retrying
# twice, still running (correctly) 3 hours after the cutoff. Every run must end; the margin is 4 h.
SETTLE = CUTOFF + timedelta(hours=4)

HOOK = "https://hooks.example.com/soak"
NOTIFY = {
    "on_start": [{"kind": "webhook", "url": HOOK}],
    "on_success": [{"kind": "slack", "url": HOOK}],
    "on_failure": [{"kind": "teams", "url": HOOK}],
}

_NAME = re.compile(r"^(?P<job>.+) \[(?P<key>[^ ]+) a(?P<attempt>\d+)\]$")


@dataclass(frozen=True, slots=True)
class Behavior:
    """What a task does on one attempt: how it ends, and after how long."""

    outcome: FakeOutcome
    duration: timedelta


SUCCESS = FakeOutcome.SUCCESS
FAIL = FakeOutcome.failed(FailureKind.USER, "RUN_EXECUTION_ERROR")
HANG = FakeOutcome.HANG


@dataclass(frozen=True)
class Kind:
    """A job's task and policies, and the final state each occurrence must reach."""

    name: str
    job: Mapping[str, Any]
    behaviors: Sequence[Behavior]  # per attempt; the last repeats
    expected: RunState | None  # None: depends on timing (overlap): checked by invariants instead
    expected_attempts: int | None = None


def _b(outcome: FakeOutcome, minutes: float) -> Behavior:
    return Behavior(outcome, timedelta(minutes=minutes))


KINDS = [
    Kind("ok", {"overlap": "allow"}, [_b(SUCCESS, 2)], RunState.SUCCEEDED, 1),
    Kind(
        "flaky",
        {"overlap": "allow", "retry": {"max_attempts": 3, "initial_delay": "PT30S"}},
        [_b(FAIL, 1), _b(FAIL, 1), _b(SUCCESS, 1)],
        RunState.SUCCEEDED,
        3,
    ),
    Kind(
        "broken",
        {"overlap": "allow", "retry": {"max_attempts": 2, "initial_delay": "PT1M"}},
        [_b(FAIL, 1)],
        RunState.FAILED,
        2,
    ),
    Kind("slow", {"overlap": "allow", "timeout": "PT3M"}, [_b(HANG, 0)], RunState.TIMED_OUT, 1),
    Kind(
        "slow-then-ok",
        {
            "overlap": "allow",
            "timeout": "PT3M",
            "retry": {"max_attempts": 2, "initial_delay": "PT20S", "retry_on_timeout": True},
        },
        [_b(HANG, 0), _b(SUCCESS, 1)],
        RunState.SUCCEEDED,
        2,
    ),
]
OVERLAP_KINDS = [
    Kind(f"long-{policy}", {"overlap": policy, "timeout": "PT30M"}, [_b(SUCCESS, 8)], None)
    for policy in ("skip", "buffer_one", "allow", "cancel_previous")
]


class ScriptedDatabricks(FakeDatabricks):
    """The fake Databricks, with each attempt's behavior chosen by its job and attempt number, runs
    that take time on the clock, and calls that fail at random (429 or 503)."""

    def __init__(
        self, clock: FixedClock, kinds: Mapping[str, Kind], rng: random.Random, fail_rate: float
    ) -> None:
        super().__init__(clock)
        self.kinds = kinds
        self.rng = rng
        self.fail_rate = fail_rate
        self.ends: dict[int, datetime] = {}
        self.injected = 0

    def _call(self, method: Any) -> None:
        self.calls[method] += 1
        if self.rng.random() < self.fail_rate:
            self.injected += 1
            status = self.rng.choice([429, 503])
            raise _error(method, _Failure(method, status, 1.0, f"injected {status}", 1))

    def _start(self, request: LaunchRequest) -> FakeRun:
        run = super()._start(request)
        match = _NAME.match(request.run_name)
        assert match, request.run_name
        kind = self.kinds[match["job"].split("#")[0]]
        attempt = int(match["attempt"])
        behavior = kind.behaviors[min(attempt, len(kind.behaviors)) - 1]
        run.outcome = behavior.outcome
        self.ends[run.run_id] = self.clock.now() + behavior.duration
        return run

    def _advance(self, run: FakeRun) -> None:
        if run.status.phase is Phase.PENDING:
            super()._advance(run)
        ends = run.outcome.phase is not Phase.RUNNING and self.clock.now() >= self.ends[run.run_id]
        if run.status.phase is Phase.RUNNING and ends:
            self._end(run, run.outcome)


class FaultyTable:
    """A Table that fails at random: before a read or write, or after a write landed."""

    def __init__(self, inner: InMemoryTable, rng: random.Random, rate: float, lock: threading.Lock) -> None:
        self.inner = inner
        self.name = inner.name
        self.rng = rng
        self.rate = rate
        self.lock = lock
        self.injected = 0

    def _roll(self) -> bool:
        with self.lock:
            hit = self.rng.random() < self.rate
        self.injected += hit
        return hit

    def _fail(self) -> None:
        raise ExternalError("table storage: 503 injected", retryable=True)

    def create(self) -> None:
        self.inner.create()

    def get(self, pk: str, rk: str) -> Row:
        if self._roll():
            self._fail()
        return self.inner.get(pk, rk)

    def query(self, pk: str | None, **kwargs: Any) -> Iterator[Row]:
        if self._roll():
            self._fail()
        return self.inner.query(pk, **kwargs)

    def write(self, pk: str, writes: Sequence[Write]) -> list[str]:
        if self._roll():
            self._fail()
        etags = self.inner.write(pk, writes)
        if self._roll():
            self._fail()  # it landed; the answer did not
        return etags

    def discard(self, pk: str, rk: str) -> None:
        if self._roll():
            self._fail()
        self.inner.discard(pk, rk)


@dataclass
class Report:
    seed: int
    occurrences: int = 0
    runs: int = 0
    stuck: int = 0
    wrong_final_state: int = 0
    duplicate_starts: int = 0
    missing_or_duplicate_occurrences: int = 0
    overlapping_runs: int = 0
    over_capacity: int = 0  # deliveries after which the pool held more than its slots
    leaked: int = 0  # leases and queue entries left when everything had ended
    pooled_runs: int = 0
    waited_for_a_slot: int = 0
    event_causes: int = 0  # distinct files and webhook keys delivered (each 1-3 times, some late)
    event_runs: int = 0
    causes_lost_or_doubled: int = 0  # files or keys in no run, or in more than one
    notices: int = 0  # notifications owed (start, success, failure of every run that got there)
    notices_wrong: int = 0  # owed and not recorded, recorded twice, left pending, or never posted
    notice_tries_failed: int = 0  # tries the destination refused (injected), each retried
    batch_points: int = 0  # points of the batches (each must run once, to its kind's end)
    batch_wrong: int = 0  # points run twice or never, wrong ends, more than max_parallel at once
    faults: Counter[str] = field(default_factory=Counter)
    repairs: int = 0  # messages the watchdog re-sent (a lost launch, a dead-lettered message)
    deferrals: int = 0  # messages put off after a passing error
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.stuck
            or self.wrong_final_state
            or self.duplicate_starts
            or self.missing_or_duplicate_occurrences
            or self.overlapping_runs
            or self.over_capacity
            or self.leaked
            or self.causes_lost_or_doubled
            or self.notices_wrong
            or self.batch_wrong
        )


def _workload(rng: random.Random) -> list[tuple[Kind, dict[str, Any]]]:
    """(kind, schedule) for each job: one-time jobs, cron jobs, and jobs whose runs overlap."""
    jobs: list[tuple[Kind, dict[str, Any]]] = []
    end = CUTOFF.isoformat()
    for i in range(12):
        at = START + timedelta(minutes=rng.randint(4, 110), seconds=rng.choice([0, 15, 30, 45]))
        jobs.append((KINDS[i % len(KINDS)], {"at": at.isoformat()}))
    for i in range(20):
        every = rng.choice([10, 12, 15, 20])
        jobs.append((KINDS[i % len(KINDS)], {"cron": f"*/{every} * * * *", "end_at": end}))
    for kind in OVERLAP_KINDS:
        jobs.append((kind, {"cron": "*/5 * * * *", "end_at": end}))
    return jobs


class Soak:
    def __init__(self, seed: int, *, rate: float = 0.02) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.rate = rate
        lock = threading.Lock()
        self.tables: list[FaultyTable] = []

        def factory(prefix: str) -> Any:
            table = FaultyTable(InMemoryTable(prefix), self.rng, 0.0, lock)
            self.tables.append(table)
            return table

        clock = FixedClock(START)
        kinds = {k.name: k for k in KINDS + OVERLAP_KINDS}
        self.databricks = ScriptedDatabricks(clock, kinds, self.rng, 0.0)
        self.refusals = 0.0  # the destination refuses this share of posts (armed with the faults)
        self.poster = FakePoster(answer=self._destination)
        self.world = World(factory, databricks=self.databricks, clock=clock, poster=self.poster)
        self.jobs: list[tuple[Kind, Job]] = []
        self.ack_lost = 0
        self.send_failures = 0
        self.duplicated = 0
        self.host_deaths = 0
        self.over_capacity = 0
        self.event_jobs: list[Job] = []
        self.expected_files: defaultdict[str, set[str]] = defaultdict(set)
        self.webhook_keys: set[str] = set()
        self._pending: list[tuple[datetime, tuple[str, Any]]] = []
        self.event_retries = 0

    def create_jobs(self) -> None:
        self.world.s.pool_service.put(POOL, PoolSpec(slots=POOL_SLOTS), ALICE)
        for n, (kind, schedule) in enumerate(_workload(self.rng)):
            body = {
                "name": f"{kind.name}#{n}",
                "job_type": "model_training",
                "task": {"kind": "databricks_job", "job_id": 1000 + n},
                "schedule": schedule,
                "misfire": "catch_up",
                "catch_up_window": "PT2H",
                "pool": POOL if n % 3 == 0 else "default",
                "notifications": NOTIFY,
                **kind.job,
            }
            job = self.world.s.job_service.create("team-a", ALICE, JobDefinition.model_validate(body))
            self.jobs.append((kind, job))

    def create_batches(self) -> None:
        """A batch of 10 points for three kinds (one in the pool, one sequential): each point must
        run once, to its kind's end, with never more than `max_parallel` between start and end."""
        self.batches: list[tuple[Kind, Job, int]] = []
        for n, (kind, extra) in enumerate(
            [
                (KINDS[0], {"max_parallel": 3}),
                (KINDS[1], {"execution_mode": "sequential"}),
                (KINDS[2], {"max_parallel": 4, "pool": POOL}),
            ]
        ):
            body = {
                "name": f"{kind.name}#b{n}",
                "task": {"kind": "databricks_job", "job_id": 2000 + n, "parameters": {"x": "{{params.x}}"}},
                "grid": {"x": [str(i) for i in range(10)]},
                "retry": kind.job.get("retry"),
                **extra,
            }
            job, _ = self.world.s.batches.create("team-a", ALICE, BatchSpec.model_validate(body))
            assert job.batch is not None
            self.batches.append((kind, job, job.batch.max_parallel))

    def _check_batches(self, report: Report) -> None:
        for kind, job, most in self.batches:
            view = self.world.s.batches.get("team-a", job.id)
            rnd = view.rounds[0]
            report.batch_points += len(view.points)
            expected = RunState.SUCCEEDED if kind.expected is RunState.SUCCEEDED else RunState.FAILED
            if rnd.state is not expected:
                report.batch_wrong += 1
                report.problems.append(f"batch {job.definition.name}: {rnd.state} ({rnd.reason})")
            children = self.world.s.run_repository.children(rnd.shard, rnd.tenant, rnd.job_id, rnd.run_key)
            runs = [c for c, _ in children]
            points = Counter(c.cause.point for c in runs if c.cause)
            if sorted(points) != list(range(10)) or set(points.values()) != {1}:
                report.batch_wrong += 1
                report.problems.append(f"batch {job.definition.name}: point runs {dict(points)}")
            for run in runs:
                self._check_run(report, kind, job, run, notices=False)
            events = sorted(
                [(r.created_at, 1) for r in runs]
                + [(r.transitions.get(r.state.value, SETTLE), -1) for r in runs],
                key=lambda e: (e[0], e[1]),
            )
            active = peak = 0
            for _, step in events:
                active += step
                peak = max(peak, active)
            if peak > most:
                report.batch_wrong += 1
                report.problems.append(f"batch {job.definition.name}: {peak} points at once > {most}")

    def create_event_jobs(self) -> None:
        """File arrival jobs (one folding files for 2 minutes, one at most every 10 minutes, one in
        the pool; all one run at a time) and a webhook job, with causes to deliver at random."""
        triggers = [
            {"wait_after_last_change": "PT2M"},
            {"min_time_between_triggers": "PT10M"},
            {},
        ]
        for n, extra in enumerate(triggers):
            body = {
                "name": f"ok#f{n}",
                "job_type": "data_processing",
                "task": {
                    "kind": "databricks_job",
                    "job_id": 2000 + n,
                    "parameters": {"f": "{{trigger.files}}"},
                },
                "triggers": [{"kind": "file_arrival", "container": f"drop{n}", **extra}],
                "overlap": "skip",  # a file run waits for the active one; it is never skipped
                "pool": POOL if n == 2 else "default",
                "notifications": NOTIFY,
            }
            job = self.world.s.job_service.create("team-a", ALICE, JobDefinition.model_validate(body))
            self.event_jobs.append(job)
        hook = {
            "name": "ok#w",
            "job_type": "other",
            "task": {"kind": "databricks_job", "job_id": 2100},
            "triggers": [{"kind": "webhook"}],
            "overlap": "allow",
            "notifications": NOTIFY,
        }
        self.webhook_job = self.world.s.job_service.create(
            "team-a", ALICE, JobDefinition.model_validate(hook)
        )
        rng = self.rng
        for i in range(36):
            n = i % len(triggers)
            at = START + timedelta(minutes=rng.randint(3, 100), seconds=rng.randint(0, 59))
            event = _blob_created(f"drop{n}", f"part-{i:03d}.csv", f"0x{i:04X}")
            self.expected_files[self.event_jobs[n].id].add(event["data"]["url"])
            for copy in range(rng.choice([1, 1, 2, 3])):  # duplicates: the same id, or a new one
                late = timedelta(minutes=rng.choice([0, 0, 1, 20])) * copy
                again = event if copy % 2 else {**event, "id": f"{event['id']}-{copy}"}
                self._pending.append((at + late, ("file", again)))
        for i in range(12):
            at = START + timedelta(minutes=rng.randint(3, 100))
            for copy in range(rng.choice([1, 2, 3])):  # a client retrying its call
                self._pending.append((at + timedelta(seconds=30 * copy), ("webhook", f"call-{i}")))
        self.webhook_keys = {f"call-{i}" for i in range(12)}

    def _deliver_events(self, until: datetime) -> None:
        """Run the world to each cause's time and hand it over; a handler that raises gets it again
        10-60 s later, as Event Grid (or a retrying client) would."""
        w = self.world
        while self._pending:
            self._pending.sort(key=lambda item: item[0])
            at, (kind, payload) = self._pending[0]
            if at > until:
                break
            self._pending.pop(0)
            w.run_until(max(at, w.clock.now()))
            try:
                if kind == "file":
                    w.s.events.blob_event(payload)
                else:
                    w.s.events.webhook("team-a", self.webhook_job.id, payload, {"n": payload}, "soak")
            except Exception:  # whatever the handler met, the cause comes again
                self.event_retries += 1
                retry = w.clock.now() + timedelta(seconds=self.rng.randint(10, 60))
                self._pending.append((retry, (kind, payload)))

    def _check_events(self, report: Report) -> None:
        for job in self.event_jobs:
            runs = self.world.runs(job)
            listed = Counter(f.url for r in runs if r.cause and r.cause.files for f in r.cause.files)
            expected = self.expected_files[job.id]
            report.event_causes += len(expected)
            report.event_runs += len(runs)
            wrong = {u for u in expected if listed[u] != 1} | (set(listed) - expected)
            report.causes_lost_or_doubled += len(wrong)
            if wrong:
                report.problems.append(
                    f"{job.definition.name}: files in no run or in two: {sorted(wrong)[:3]}"
                )
        runs = self.world.runs(self.webhook_job)
        keys = Counter(r.cause.idempotency_key for r in runs if r.cause)
        report.event_causes += len(self.webhook_keys)
        report.event_runs += len(runs)
        wrong_keys = {k for k in self.webhook_keys if keys[k] != 1}
        report.causes_lost_or_doubled += len(wrong_keys)
        if wrong_keys:
            report.problems.append(f"webhook keys in no run or in two: {sorted(wrong_keys)}")

    def _destination(self, url: str) -> tuple[int | None, str | None]:
        if self.refusals and self.rng.random() < self.refusals:
            return 503, None
        return 200, None

    def arm_faults(self) -> None:
        w, rng, rate = self.world, self.rng, self.rate
        self.refusals = rate * 10  # a flaky destination: 1 post in 5 refused at the default rate
        for table in self.tables:
            table.rate = rate
        self.databricks.fail_rate = rate * 2
        w.broker.fail_send_probability(rate, rng)
        original = w.broker.send

        def send(messages: Sequence[OutgoingMessage]) -> None:
            roll = rng.random()
            if roll < rate / 2:
                self.duplicated += 1
                w.broker.duplicate_next(len(messages))
            try:
                original(messages)
            except ExternalError:
                self.send_failures += 1  # the twin's own injected failure, before Service Bus took it
                raise
            if rate / 2 <= roll < rate:
                self.ack_lost += 1
                raise ExternalError("service bus: injected lost acknowledgement", retryable=True)

        w.broker.send = send  # type: ignore[method-assign]

        def crash(_: Any) -> bool:
            dies = rng.random() < rate
            self.host_deaths += dies
            return dies

        w.crash = crash
        self._watch_capacity()
        ticker = w.s.ticker
        tick = ticker.tick

        def twice_sometimes() -> Any:
            if rng.random() < 0.1:  # two tick invocations overlap
                other = threading.Thread(target=tick)
                other.start()
                report = tick()
                other.join()
                return report
            return tick()

        ticker.tick = twice_sometimes  # type: ignore[method-assign]

    def _pool(self, entries: bool = False) -> PoolSnapshot:
        """The pool as stored, read past the injected faults."""
        runs = next(t.inner for t in self.tables if t.inner.name.startswith("wruns"))
        return PoolsTable(runs).read(POOL, entries=entries)

    def _watch_capacity(self) -> None:
        handle = self.world.handle

        def checked(delivery: Any) -> str:
            action = handle(delivery)
            used = sum(lease.slots for lease in self._pool().leases.values())
            if used > POOL_SLOTS:
                self.over_capacity += 1
            return action

        self.world.handle = checked  # type: ignore[method-assign]

    def _check_notices(self, report: Report, run: Run) -> None:
        """Each notice the run owes is recorded once, settled, and was posted when delivered."""
        owed = set()
        if "RUNNING" in run.transitions and run.parent is None:
            owed.add("start1.0")
        if run.state is RunState.SUCCEEDED:
            owed.add(f"success{run.attempt}.0")
        elif run.state in (RunState.FAILED, RunState.TIMED_OUT):
            owed.add(f"failure{run.attempt}.0")
        ids = [n.id for n in run.notices]
        report.notices += len(owed)
        posted = {p.headers.get("X-Scheduler-Delivery") for p in self.poster.posts}
        wrong = [i for i in owed if i not in ids] + [i for i in set(ids) if ids.count(i) > 1]
        wrong += [n.id for n in run.notices if n.state is NoticeState.PENDING]
        wrong += [
            n.id for n in run.notices if n.state is NoticeState.DELIVERED and f"{run.id}.{n.id}" not in posted
        ]
        wrong += [n.id for n in run.notices if n.state is NoticeState.FAILED and len(n.tries) < 5]
        report.notice_tries_failed += sum(1 for n in run.notices for t in n.tries if t.error)
        if wrong:
            report.notices_wrong += len(wrong)
            report.problems.append(f"{run.id}: notices {sorted(wrong)} (recorded {ids})")

    def disarm_faults(self) -> None:
        for table in self.tables:
            table.rate = 0.0
        self.databricks.fail_rate = 0.0
        self.world.broker.fail_send_probability(0.0, self.rng)
        self.rate = 0.0
        self.refusals = 0.0

    def run(self) -> Report:
        self.create_jobs()
        self.create_event_jobs()
        self.create_batches()
        self.arm_faults()
        self._deliver_events(CUTOFF + timedelta(minutes=30))
        self.world.run_until(CUTOFF + timedelta(minutes=30))
        self._deliver_events(SETTLE)  # retries still owed when the storms end
        self.disarm_faults()  # storms end; repairs must finish what they left
        self.world.run_until(SETTLE)
        return self.report()

    def report(self) -> Report:
        report = Report(self.seed)
        sent = [m.message_id for m in self.world.broker.sent]
        report.repairs = sum(1 for i in sent if re.search(r"\.r\d+$", i))
        report.deferrals = sum(1 for i in sent if re.search(r"\.d\d+$", i))
        report.faults.update(
            storage=sum(t.injected for t in self.tables),
            databricks=self.databricks.injected,
            send_ack_lost=self.ack_lost,
            send_failed=self.send_failures,
            duplicated=self.duplicated,
            host_deaths=self.host_deaths,
            event_retries=self.event_retries,
        )
        self._check_events(report)
        self._check_batches(report)
        for job in [*self.event_jobs, self.webhook_job]:
            for run in self.world.runs(job):
                self._check_run(report, KINDS[0], job, run)
        for kind, job in self.jobs:
            runs = self.world.runs(job)
            scheduled = [r for r in runs if r.run_key.startswith("s-")]
            report.occurrences += len(scheduled)
            report.runs += len(runs)
            self._check_occurrences(report, job, scheduled)
            for run in runs:
                self._check_run(report, kind, job, run)
            if kind.job.get("overlap") in ("skip", "buffer_one", "cancel_previous"):
                self._check_no_overlap(report, job, runs)
        report.over_capacity = self.over_capacity
        if report.over_capacity:
            report.problems.append(f"the pool held more than {POOL_SLOTS} slots {report.over_capacity} times")
        pool = self._pool(entries=True)
        report.leaked = len(pool.leases) + len(pool.entries or [])
        if report.leaked:
            report.problems.append(f"left in the pool: leases {list(pool.leases)}, entries {pool.entries}")
        pooled = [r for _, j in self.jobs if j.definition.pool == POOL for r in self.world.runs(j)]
        report.pooled_runs = len(pooled)
        report.waited_for_a_slot = sum(1 for r in pooled if r.pool and "QUEUED" in r.transitions)
        for token, starts in self.databricks._starts.items():
            if starts > 1:
                report.duplicate_starts += 1
                report.problems.append(f"token {token} started {starts} Databricks runs")
        return report

    def _check_occurrences(self, report: Report, job: Job, scheduled: list[Run]) -> None:
        spec = job.definition.schedule
        expected = []
        fire = spec.next_fire(job.created_at)
        while fire is not None and fire.at < CUTOFF:
            expected.append(fire.at)
            fire = spec.next_fire(fire.at)
        got = sorted(r.scheduled_for for r in scheduled)
        if got != expected:
            report.missing_or_duplicate_occurrences += abs(len(got) - len(expected)) or 1
            report.problems.append(f"{job.definition.name}: occurrences {len(got)} != {len(expected)}")

    def _check_run(self, report: Report, kind: Kind, job: Job, run: Run, *, notices: bool = True) -> None:
        if notices:  # (a batch's points are not notified: the batch has no notifications here)
            self._check_notices(report, run)
        if not run.state.is_terminal:
            report.stuck += 1
            report.problems.append(f"{job.definition.name} {run.run_key}: stuck {run.state} ({run.reason})")
            return
        for attempt in run.attempts:
            if attempt.databricks_run_id is not None:
                token = idempotency_token(run.run_key, attempt.number, run.job_id)
                if self.databricks.starts_for_token(token) != 1:
                    report.problems.append(f"{run.id} a{attempt.number}: token started no run")
        missed = run.state is RunState.SKIPPED and run.reason in ("missed", "catch_up_limit")
        if kind.expected is None or missed:
            return
        wrong = run.state is not kind.expected or (
            kind.expected_attempts is not None and len(run.attempts) != kind.expected_attempts
        )
        if wrong:
            report.wrong_final_state += 1
            report.problems.append(
                f"{job.definition.name} {run.run_key}: {run.state} after {len(run.attempts)} attempts "
                f"(expected {kind.expected} after {kind.expected_attempts}): {run.reason}"
            )

    def _check_no_overlap(self, report: Report, job: Job, runs: list[Run]) -> None:
        spans = []
        for run in runs:
            started = run.transitions.get(RunState.RUNNING.value)
            if started is None:
                continue
            ended = run.transitions.get(run.state.value, run.updated_at)
            spans.append((started, ended, run.run_key))
        spans.sort()
        for (_, end_a, key_a), (start_b, _, key_b) in itertools.pairwise(spans):
            if start_b < end_a:
                report.overlapping_runs += 1
                report.problems.append(f"{job.definition.name}: {key_a} and {key_b} ran at once")


def _blob_created(container: str, name: str, etag: str) -> dict[str, Any]:
    return {
        "id": f"{container}-{name}",
        "topic": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/soak",
        "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": START.isoformat(),
        "data": {
            "api": "PutBlob",
            "url": f"https://soak.blob.core.windows.net/{container}/{name}",
            "eTag": etag,
        },
    }


def soak(seed: int, rate: float = 0.02) -> Report:
    return Soak(seed, rate=rate).run()
