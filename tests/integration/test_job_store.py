"""The job store on both Table implementations: indexes, sorting, filtering, paging, audit, ETags."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.jobs_table import SORTS, JobsTable
from shared.domain.audit import audit_entry
from shared.domain.errors import ConcurrencyConflict, InvalidInput, NotFound
from shared.domain.ids import new_id
from shared.domain.job import Actor, Job, JobDefinition
from shared.services.ports import JobQuery
from tests.conftest import TableFactory

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ALICE = Actor(id="alice", name="Alice")


def make_job(name: str, *, tenant: str = "team-a", created: datetime = NOW, **overrides: Any) -> Job:
    body: dict[str, Any] = {
        "name": name,
        "job_type": "model_training",
        "task": {"kind": "databricks_job", "job_id": 1},
        "schedule": {"cron": "0 * * * *"},
    }
    body.update(overrides)
    return Job.new(
        job_id=new_id(created),
        tenant=tenant,
        definition=JobDefinition.model_validate(body),
        actor=ALICE,
        now=created,
    )


@pytest.fixture
def store(table_factory: TableFactory) -> JobsTable:
    return JobsTable(table_factory("jobs"))


def add(store: JobsTable, job: Job) -> Job:
    store.add(job, audit_entry("create", None, job, ALICE, job.created_at))
    return job


def names(store: JobsTable, tenant: str = "team-a", **query: Any) -> list[str]:
    return [s.name for s in store.find(tenant, JobQuery(**query)).items]


def test_a_job_round_trips_exactly(store: JobsTable) -> None:
    job = add(store, make_job("churn", description="d", tags=["a", "b"], timeout="PT2H"))
    got, etag = store.get("team-a", job.id)
    assert got == job and etag


def test_another_tenant_cannot_read_the_job(store: JobsTable) -> None:
    job = add(store, make_job("churn"))
    with pytest.raises(NotFound):
        store.get("team-b", job.id)
    assert store.locate(job.id) == "team-a"
    assert store.find("team-b", JobQuery()).items == []


def test_rows_that_are_not_jobs_are_not_found(store: JobsTable) -> None:
    job = add(store, make_job("churn"))
    with pytest.raises(NotFound):
        store.get("team-a", f"~a~{job.id}~999999998")


@pytest.mark.parametrize("sort", list(SORTS))
def test_every_sort_order_is_served_by_its_index(store: JobsTable, sort: str) -> None:
    rng = random.Random(7)
    words = ["beta", "Alpha", "gamma", "alpha2", "Émile", "zeta", "ab", "abc", "a"]
    jobs = []
    for i, word in enumerate(words):
        job = make_job(
            word, created=NOW + timedelta(minutes=i), schedule={"cron": f"{rng.randrange(60)} * * * *"}
        )
        if i % 3 == 0:  # some jobs edited later, so updated_at differs from created_at
            job = job.edited(job.definition, ALICE, NOW + timedelta(hours=1, minutes=rng.randrange(60)))
        jobs.append(add(store, job))
    key = sort.lstrip("-")

    def value(job: Job) -> Any:
        return {
            "name": job.definition.name.casefold(),
            "next_fire_at": job.next_fire_at,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
        }[key]

    expected = [
        j.definition.name for j in sorted(jobs, key=lambda j: (value(j), j.id), reverse=sort[0] == "-")
    ]
    got = names(store, sort=sort, limit=100)
    if key == "name":
        assert got == expected
    else:  # ties are broken by id in each direction; compare the sort values
        assert [value(j) for j in sorted(jobs, key=lambda j: got.index(j.definition.name))] == sorted(
            map(value, jobs), reverse=sort[0] == "-"
        )


def test_paging_visits_every_job_once_in_order(store: JobsTable) -> None:
    for i in range(23):
        add(store, make_job(f"job-{i:02d}", created=NOW + timedelta(seconds=i)))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = store.find("team-a", JobQuery(sort="name", limit=5, continuation=token))
        seen += [s.name for s in page.items]
        pages += 1
        token = page.continuation
        if token is None:
            break
    assert seen == [f"job-{i:02d}" for i in range(23)]
    assert pages == 5


def test_an_exactly_full_last_page_has_no_continuation(store: JobsTable) -> None:
    for i in range(4):
        add(store, make_job(f"j{i}"))
    page = store.find("team-a", JobQuery(limit=4))
    assert len(page.items) == 4 and page.continuation is None


def test_filters_by_type_status_tag_and_text(store: JobsTable) -> None:
    add(store, make_job("train-churn", tags=["churn"], description="Nightly model"))
    add(store, make_job("etl-sales", job_type="data_processing", tags=["sales"]))
    paused = make_job("etl-churn", job_type="data_processing", tags=["churn"])
    add(store, paused)
    store.save(paused, store.get("team-a", paused.id)[1], paused.paused(ALICE, NOW), None)
    assert sorted(names(store, job_type="data_processing")) == ["etl-churn", "etl-sales"]
    assert names(store, status="PAUSED") == ["etl-churn"]
    assert sorted(names(store, tag="churn")) == ["etl-churn", "train-churn"]
    assert names(store, text="NIGHTLY") == ["train-churn"]
    assert names(store, text="sales") == ["etl-sales"]
    assert names(store, job_type="data_processing", status="ACTIVE", tag="sales") == ["etl-sales"]


@pytest.mark.parametrize(
    "hostile",
    [
        "x' or 'a' eq 'a",
        "model_training' or job_type ne 'x",
        "') or (PartitionKey ne '",
        "ACTIVE' or status ne '",
    ],
)
def test_filter_values_are_data_not_odata(store: JobsTable, hostile: str) -> None:
    add(store, make_job("one"))
    add(store, make_job("two", tenant="team-b"))
    assert names(store, job_type=hostile) == []
    assert names(store, status=hostile) == []
    assert names(store, tag=hostile) == []
    assert names(store, text=hostile) == []
    assert names(store, tenant=hostile) == []


def test_saving_moves_the_index_rows_with_the_job(store: JobsTable) -> None:
    job = add(store, make_job("old-name"))
    _, etag = store.get("team-a", job.id)
    edited = job.edited(
        job.definition.model_copy(update={"name": "new-name"}), ALICE, NOW + timedelta(hours=1)
    )
    store.save(job, etag, edited, audit_entry("update", job, edited, ALICE, NOW))
    for sort in SORTS:
        assert names(store, sort=sort) == ["new-name"], sort
    rows = list(store.table.query("team-a"))
    assert len(rows) == 1 + len(SORTS) + 2  # job, one index row per sort, two audit rows


def test_a_stale_etag_writes_nothing(store: JobsTable) -> None:
    job = add(store, make_job("churn"))
    _, etag = store.get("team-a", job.id)
    first = job.paused(ALICE, NOW)
    store.save(job, etag, first, audit_entry("pause", job, first, ALICE, NOW))
    second = job.edited(job.definition.model_copy(update={"name": "lost"}), ALICE, NOW)
    before = sorted(r.rk for r in store.table.query("team-a"))
    with pytest.raises(ConcurrencyConflict):
        store.save(job, etag, second, audit_entry("update", job, second, ALICE, NOW))
    assert sorted(r.rk for r in store.table.query("team-a")) == before
    assert store.get("team-a", job.id)[0].definition.name == "churn"


def test_the_audit_trail_is_newest_first_and_pages(store: JobsTable) -> None:
    job = add(store, make_job("churn"))
    current = job
    for i in range(4):
        _, etag = store.get("team-a", job.id)
        nxt = current.paused(ALICE, NOW) if i % 2 == 0 else current.resumed(ALICE, NOW)
        store.save(
            current, etag, nxt, audit_entry("pause" if i % 2 == 0 else "resume", current, nxt, ALICE, NOW)
        )
        current = nxt
    first = store.audit_trail("team-a", job.id, 3, None)
    assert [e.action for e in first.items] == ["resume", "pause", "resume"]
    rest = store.audit_trail("team-a", job.id, 3, first.continuation)
    assert [e.action for e in rest.items] == ["pause", "create"] and rest.continuation is None


def test_a_forged_continuation_token_is_refused(store: JobsTable) -> None:
    add(store, make_job("a"))
    for token in ["garbage", "eyJzIjoibmFtZSIsImsiOiJ-YX4ifQ"]:
        with pytest.raises(InvalidInput):
            store.find("team-a", JobQuery(sort="name", continuation=token))
    page = store.find("team-a", JobQuery(sort="name", limit=1))
    add(store, make_job("b"))
    token = store.find("team-a", JobQuery(sort="name", limit=1)).continuation
    with pytest.raises(InvalidInput):
        store.find("team-a", JobQuery(sort="-name", continuation=token))
    assert page.items


def _fired(store: JobsTable, job: Job, at: datetime) -> None:
    """What the tick does to a job: moves its next fire time (a hot field, on the job row only)."""
    current, etag = store.get(job.tenant, job.id)
    store.save(current, etag, current.model_copy(update={"next_fire_at": at}), None)


def test_a_page_shows_hot_fields_in_two_requests_when_its_jobs_are_close(table_factory: TableFactory) -> None:
    from tests.fakes.memory_table import InMemoryTable

    table = table_factory("jobs")
    store = JobsTable(table)
    jobs = [add(store, make_job(f"j{i:02d}", created=NOW + timedelta(seconds=i))) for i in range(12)]
    moved = NOW + timedelta(days=3)
    _fired(store, jobs[5], moved)
    if isinstance(table, InMemoryTable):
        table.counter.reset()
    page = store.find("team-a", JobQuery(limit=10))  # newest first: j11 … j02
    assert [s.name for s in page.items] == [f"j{i:02d}" for i in range(11, 1, -1)]
    assert {s.name: s.next_fire_at for s in page.items}["j05"] == moved
    assert all(s.next_fire_at is not None for s in page.items)
    if isinstance(table, InMemoryTable):
        assert table.counter.reset() == 2  # the index page, then one range over the job rows


def test_a_page_spread_over_many_jobs_reads_the_rest_point_by_point(table_factory: TableFactory) -> None:
    from tests.fakes.memory_table import InMemoryTable

    table = table_factory("jobs")
    store = JobsTable(table)
    jobs = [
        add(
            store,
            make_job(f"j{i:02d}", created=NOW + timedelta(seconds=i), tags=["far"] if i in (0, 59) else []),
        )
        for i in range(60)
    ]
    moved = NOW + timedelta(days=3)
    _fired(store, jobs[59], moved)
    if isinstance(table, InMemoryTable):
        table.counter.reset()
    page = store.find("team-a", JobQuery(tag="far", limit=2))  # 60 job rows apart: more than 20 per job
    assert [(s.name, s.next_fire_at == moved) for s in page.items] == [("j59", True), ("j00", False)]
    assert page.items[1].next_fire_at is not None
    if isinstance(table, InMemoryTable):
        assert table.counter.reset() == 3  # index page, a range that stops short (found j00), j59 read alone
