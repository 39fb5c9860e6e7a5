"""What a watchdog pass costs with many healthy jobs and a few broken ones, on Azurite:
`python -m benchmarks.reconcile [--healthy 1000 100000] [--broken 50]`.

Each size seeds the healthy jobs with exactly what a pass could read of them (their job row, their
next-fire index row, their due row: nothing of theirs is overdue) and the same broken ones, a
third each of:

- a missing due row: a job whose due row is gone, so the tick never visits it again;
- a lost launch: a SCHEDULED run whose launch message was lost, its hint overdue;
- a lost poll: a RUNNING run whose poll chain is gone and whose Databricks run has ended.

Then it runs watchdog passes (the clock at a minute the due-row check runs) and counts storage
requests per pass and what is still broken after each. The ratio of requests per pass between the
sizes should be about 1: a pass costs what is broken, not what exists.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from devstack.azurite import Azurite
from devstack.service_bus_twin import ServiceBusTwin
from shared.adapters.databricks import LaunchRequest, Phase
from shared.adapters.jobs_table import SORTS, _index_rows, job_props
from shared.adapters.runs_table import _props, _run_rk, due_key, hint_key
from shared.adapters.table import OperationCounter, Write
from shared.bootstrap import Services, azure_tables, build
from shared.config import Settings
from shared.domain.ids import new_id
from shared.domain.job import Actor, Job, JobDefinition
from shared.domain.run import Attempt, Run, RunState
from shared.services.messages import launch_intent, poll_intent
from shared.services.ports import WatchHint
from tests.fakes.clock import FixedClock
from tests.fakes.databricks import FakeDatabricks

NOW = datetime(2026, 6, 1, 12, 5, 30, tzinfo=UTC)  # 12:05: the due-row check runs this minute
ACTOR = Actor(id="bench", name="Benchmark")
TENANTS = 20


def _definition(cron: str) -> JobDefinition:
    return JobDefinition.model_validate(
        {
            "name": "j",
            "job_type": "other",
            "task": {"kind": "databricks_job", "job_id": 1},
            "schedule": {"cron": cron},
        }
    )


def _job(s: Services, i: int, cron: str, created: datetime) -> Job:
    job_id = new_id(created)
    job = Job.new(
        job_id=job_id, tenant=f"t{i % TENANTS}", definition=_definition(cron), actor=ACTOR, now=created
    )
    return job.model_copy(update={"shard": s.due_index.new_shard(job_id)})


def _seed(s: Services, writes: list[tuple[str, str, list[Write]]]) -> None:
    tables = {"jobs": s.tables.jobs, "runs": s.tables.runs}
    batches: dict[tuple[str, str], list[Write]] = {}
    for table, pk, rows in writes:
        batches.setdefault((table, pk), []).extend(rows)
    chunks = [
        (tables[t], pk, rows[i : i + 100])
        for (t, pk), rows in batches.items()
        for i in range(0, len(rows), 100)
    ]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda c: c[0].write(c[1], c[2]), chunks))


def _healthy(s: Services, count: int) -> list[tuple[str, str, list[Write]]]:
    code = SORTS["next_fire_at"].code
    writes = []
    for i in range(count):
        job = _job(s, i, "0 * * * *", NOW)  # next fire 13:00: not overdue
        nf = {rk: p for rk, p in _index_rows(job).items() if rk.startswith(f"~i{code}~")}
        writes.append(("jobs", job.tenant, [Write("upsert", job.id, job_props(job))]))
        writes.append(("jobs", job.tenant, [Write("upsert", rk, p) for rk, p in nf.items()]))
        entry = s.due_index.entry(job)
        assert entry is not None
        writes.append(("runs", entry.shard, [Write("upsert", due_key(entry))]))
    writes += [("jobs", "~tenants", [Write("upsert", f"t{i}")]) for i in range(TENANTS)]
    return writes


def _broken(s: Services, fake: FakeDatabricks, count: int) -> tuple[list[tuple[str, str, list[Write]]], dict]:
    writes = []
    broken: dict[str, list] = {"missing due row": [], "lost launch": [], "lost poll": []}
    for i in range(count):
        kind = list(broken)[i % 3]
        job = _job(s, i, "*/5 * * * *", NOW)
        if kind == "missing due row":
            job = job.model_copy(update={"next_fire_at": NOW - timedelta(minutes=10)})
        writes.append(("jobs", job.tenant, [Write("upsert", rk, p) for rk, p in _index_rows(job).items()]))
        writes.append(("jobs", job.tenant, [Write("upsert", job.id, job_props(job))]))
        if kind == "missing due row":
            broken[kind].append(job)
            continue
        entry = s.due_index.entry(job)
        assert entry is not None
        writes.append(("runs", entry.shard, [Write("upsert", due_key(entry))]))
        at = NOW - timedelta(minutes=10 if kind == "lost launch" else 120)
        run = Run.occurrence(
            tenant=job.tenant, job_id=job.id, scheduled_for=at, job_version=1, now=at, shard=job.shard
        )
        if kind == "lost launch":
            run = run.model_copy(
                update={"intent": launch_intent(run, 1, at), "watch_at": at + timedelta(minutes=2)}
            )
        else:
            launched = fake.launch(LaunchRequest(job.definition.task, f"bench-{i}", "bench"))
            fake.finish(launched.run_id, Phase.SUCCEEDED)
            run = run.moved(RunState.LAUNCHING, at).moved(RunState.RUNNING, at)
            run = run.with_attempt(Attempt(number=1, databricks_run_id=launched.run_id, launched_at=at))
            intent = poll_intent(run, 1, 1, launched.run_id, None, at + timedelta(seconds=15))
            run = run.model_copy(update={"intent": intent, "watch_at": at + timedelta(hours=1)})
        hint = WatchHint.of(run)
        assert hint is not None
        rows = [
            Write("upsert", _run_rk(run.tenant, run.job_id, run.run_key), _props(run)),
            Write("upsert", hint_key(hint)),
        ]
        writes.append(("runs", run.shard, rows))
        broken[kind].append(run)
    return writes, broken


def _still_broken(s: Services, broken: dict) -> int:
    left = 0
    for job in broken["missing due row"]:
        entry = s.due_index.entry(job)
        left += entry is None or not s.due_index.exists(entry)
    for run in broken["lost launch"]:
        current, _ = s.run_repository.get(run.shard, run.tenant, run.job_id, run.run_key)
        left += current.repairs == 0  # re-sent: its launch is on its way
    for run in broken["lost poll"]:
        current, _ = s.run_repository.get(run.shard, run.tenant, run.job_id, run.run_key)
        left += not current.state.is_terminal
    return left


def measure(healthy: int, broken_count: int) -> list[tuple[int, int, int]]:
    with Azurite() as azurite:
        settings = Settings(TABLES_CONNECTION_STRING=azurite.connection_string, RUN_SHARDS=16)
        counter = OperationCounter()
        clock = FixedClock(NOW)
        fake = FakeDatabricks(clock)
        s = build(
            settings,
            tables=azure_tables(settings, counter),
            clock=clock,
            sender=ServiceBusTwin(clock),
            databricks=fake,
        )
        s.ensure_tables()
        writes, broken = _broken(s, fake, broken_count)
        _seed(s, _healthy(s, healthy) + writes)
        print(f"seeded {healthy:,} healthy jobs and {broken_count} broken ones", flush=True)
        passes = []
        for n in range(1, 3):
            counter.take()
            report = s.watchdog.run_once()
            requests, _ = counter.take()
            passes.append((n, requests, _still_broken(s, broken)))
            counter.take()
            print(
                f"  pass {n}: {requests} storage requests; still broken: {passes[-1][2]} ({report})",
                flush=True,
            )
            clock.set(clock.now() + timedelta(minutes=5))  # the next pass that checks due rows
        return passes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reconcile", description=__doc__)
    parser.add_argument("--healthy", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--broken", type=int, default=50)
    args = parser.parse_args(argv)
    results = {size: measure(size, args.broken) for size in args.healthy}
    columns = ["healthy jobs", "broken", "pass 1 requests", "broken after", "pass 2 requests", "broken after"]
    print("\n| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for size, passes in results.items():
        (_, r1, b1), (_, r2, b2) = passes
        print(f"| {size:,} | {args.broken} | {r1} | {b1} | {r2} | {b2} |")
    first, last = results[args.healthy[0]], results[args.healthy[-1]]
    ratio = last[0][1] / first[0][1]
    print(f"pass 1 requests, {args.healthy[-1]:,} vs {args.healthy[0]:,} healthy jobs: ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
