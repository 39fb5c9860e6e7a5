"""The run repository and the due index (`shared/adapters/runs_table.py`), held to their ports on the
in-memory table and on Azurite: a run and its watch hint move together, a fire is one transaction,
and the indexes read what is due or overdue, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.runs_table import RunsTable, TableDueIndex
from shared.domain.errors import ConcurrencyConflict, NotFound
from shared.domain.run import Run, RunState
from shared.services.messages import launch_intent
from shared.services.ports import DueEntry, WatchHint
from tests.conftest import TableFactory

T = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
SHARD = "s03"


def _run(at: datetime = T, job: str = "01KT1GX3SGTYHRDK6WZFZ39Y8V") -> Run:
    run = Run.occurrence(tenant="team-a", job_id=job, scheduled_for=at, job_version=1, now=at, shard=SHARD)
    return run.model_copy(update={"intent": launch_intent(run, 1, at), "watch_at": at + timedelta(minutes=2)})


@pytest.fixture
def store(table_factory: TableFactory) -> tuple[RunsTable, TableDueIndex]:
    table = table_factory("rt")
    return RunsTable(table), TableDueIndex(table, 16)


def _hints(runs: RunsTable, until: datetime) -> list[WatchHint]:
    return list(runs.overdue(SHARD, until))


def test_a_fire_records_its_runs_hints_and_moves_its_due_row_in_one_go(
    store: tuple[RunsTable, TableDueIndex],
) -> None:
    runs, due = store
    first = DueEntry(SHARD, T, "team-a", "J1")
    due.put(first)
    nxt = DueEntry(SHARD, T + timedelta(minutes=5), "team-a", "J1")
    recorded = runs.record_fire(SHARD, [_run()], first, nxt)
    assert [r.run_key for r in recorded] == [_run().run_key]
    assert list(due.due(SHARD, T + timedelta(hours=1))) == [nxt]
    (hint,) = _hints(runs, T + timedelta(minutes=3))
    assert hint == WatchHint.of(_run())
    again = runs.record_fire(SHARD, [_run().model_copy(update={"reason": "second tick"})], first, nxt)
    assert again[0].reason is None  # found, not recreated
    assert list(due.due(SHARD, T + timedelta(hours=1))) == [nxt]


def test_many_fires_share_a_transaction_and_one_already_recorded_sends_its_chunk_alone(
    store: tuple[RunsTable, TableDueIndex],
) -> None:
    runs, _ = store
    fires = [
        ([_run(job=f"J{i:025d}")], None, DueEntry(SHARD, T + timedelta(minutes=5), "team-a", f"J{i}"))
        for i in range(30)
    ]
    results = runs.record_fires(SHARD, fires)
    assert all(r is not None for r in results)
    assert len(_hints(runs, T + timedelta(minutes=3))) == 30
    redo = runs.record_fires(SHARD, fires[:2])  # a second tick: each must go alone
    assert redo == [None, None]


def test_saving_a_run_moves_its_hint_and_an_ended_run_has_none(
    store: tuple[RunsTable, TableDueIndex],
) -> None:
    runs, _ = store
    run, _ = runs.add(_run())
    stored, etag = runs.get(SHARD, run.tenant, run.job_id, run.run_key)
    later = stored.model_copy(update={"watch_at": T + timedelta(hours=1)})
    new_etag = runs.save(stored, etag, later)
    assert [h.at for h in _hints(runs, T + timedelta(days=1))] == [T + timedelta(hours=1)]
    with pytest.raises(ConcurrencyConflict):
        runs.save(stored, etag, later)  # the ETag it was read with is stale
    ended = later.moved(RunState.SKIPPED, T, reason="overlap").model_copy(update={"watch_at": None})
    runs.save(later, new_etag, ended)
    assert _hints(runs, T + timedelta(days=1)) == []
    assert runs.get(SHARD, run.tenant, run.job_id, run.run_key)[0].state is RunState.SKIPPED


def test_a_run_whose_hint_was_lost_still_saves(store: tuple[RunsTable, TableDueIndex]) -> None:
    runs, _ = store
    run, _ = runs.add(_run())
    hint = WatchHint.of(run)
    assert hint is not None
    runs.drop_hint(hint)  # removed by hand
    stored, etag = runs.get(SHARD, run.tenant, run.job_id, run.run_key)
    runs.save(stored, etag, stored.model_copy(update={"watch_at": T + timedelta(minutes=9)}))
    assert [h.at for h in _hints(runs, T + timedelta(days=1))] == [T + timedelta(minutes=9)]


def test_rehome_drops_a_stale_hint_and_restores_the_runs_own(store: tuple[RunsTable, TableDueIndex]) -> None:
    runs, _ = store
    run, _ = runs.add(_run())
    stale = WatchHint(SHARD, T - timedelta(minutes=1), run.tenant, run.job_id, run.run_key)
    own = WatchHint.of(run)
    assert own is not None
    runs.drop_hint(own)
    runs.rehome(stale, run)
    assert _hints(runs, T + timedelta(days=1)) == [own]


def test_history_is_newest_first_pages_and_filters(store: tuple[RunsTable, TableDueIndex]) -> None:
    runs, _ = store
    for minutes in range(0, 30, 5):
        runs.add(_run(T + timedelta(minutes=minutes)))
    page = runs.history(SHARD, "team-a", _run().job_id, limit=4)
    assert [r.scheduled_for.minute for r in page.items] == [30, 25, 20, 15]
    rest = runs.history(SHARD, "team-a", _run().job_id, limit=4, continuation=page.continuation)
    assert [r.scheduled_for.minute for r in rest.items] == [10, 5] and rest.continuation is None
    assert runs.history(SHARD, "team-a", _run().job_id, state="RUNNING").items == []
    assert [r.scheduled_for.minute for r, _ in runs.recent(SHARD, "team-a", _run().job_id, 2)] == [30, 25]


def test_an_unknown_run_is_not_found_without_a_key_in_the_message(
    store: tuple[RunsTable, TableDueIndex],
) -> None:
    runs, _ = store
    with pytest.raises(NotFound) as caught:
        runs.get(SHARD, "team-a", "J", "s-1780315500000")
    assert "~" not in caught.value.detail


def test_the_due_index_reads_only_what_is_due(store: tuple[RunsTable, TableDueIndex]) -> None:
    runs, due = store
    soon, later = DueEntry(SHARD, T, "team-a", "A"), DueEntry(SHARD, T + timedelta(hours=1), "team-a", "B")
    due.put(soon)
    due.put(later)
    runs.add(_run())  # runs and hints in the same partition are not due rows
    assert list(due.due(SHARD, T + timedelta(minutes=1))) == [soon]
    assert due.exists(later) and not due.exists(DueEntry(SHARD, T, "team-a", "C"))
    due.remove(soon)
    due.remove(soon)  # already gone is fine
    assert list(due.due(SHARD, T + timedelta(days=1))) == [later]
