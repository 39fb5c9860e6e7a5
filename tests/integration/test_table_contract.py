"""The Table port's contract: the in-memory fake and Azurite must behave the same."""

from __future__ import annotations

import pytest

from shared.adapters.table import Write
from shared.domain.errors import AlreadyExists, ConcurrencyConflict, NotFound
from tests.conftest import TableFactory


@pytest.fixture
def table(table_factory: TableFactory):  # type: ignore[no-untyped-def]
    return table_factory("contract")


def test_insert_then_get_round_trips_every_value_type(table) -> None:
    data = {"s": "text ü", "i": 42, "neg": -7, "f": 1.5, "b": True, "empty": ""}
    table.write("p", [Write("insert", "r", data)])
    row = table.get("p", "r")
    assert (row.pk, row.rk) == ("p", "r")
    assert dict(row.data) == data
    assert row.etag


def test_insert_of_an_existing_row_is_already_exists(table) -> None:
    table.write("p", [Write("insert", "r", {"v": 1})])
    with pytest.raises(AlreadyExists):
        table.write("p", [Write("insert", "r", {"v": 2})])
    assert table.get("p", "r").data["v"] == 1


def test_get_of_a_missing_row_is_not_found(table) -> None:
    with pytest.raises(NotFound):
        table.get("p", "missing")


def test_replace_with_a_stale_etag_is_a_conflict_and_changes_nothing(table) -> None:
    table.write("p", [Write("insert", "r", {"v": 1})])
    first = table.get("p", "r")
    table.write("p", [Write("replace", "r", {"v": 2}, etag=first.etag)])
    with pytest.raises(ConcurrencyConflict):
        table.write("p", [Write("replace", "r", {"v": 3}, etag=first.etag)])
    assert table.get("p", "r").data["v"] == 2


def test_replace_of_a_row_deleted_since_read_is_a_conflict(table) -> None:
    table.write("p", [Write("insert", "r", {"v": 1})])
    etag = table.get("p", "r").etag
    table.write("p", [Write("delete", "r")])
    with pytest.raises(ConcurrencyConflict):
        table.write("p", [Write("replace", "r", {"v": 2}, etag=etag)])


def test_upsert_replaces_the_whole_row(table) -> None:
    table.write("p", [Write("upsert", "r", {"a": "1", "b": "2"})])
    table.write("p", [Write("upsert", "r", {"a": "3"})])
    assert dict(table.get("p", "r").data) == {"a": "3"}


def test_delete_of_a_missing_row_is_not_found(table) -> None:
    with pytest.raises(NotFound):
        table.write("p", [Write("delete", "nope")])


def test_conditional_delete_with_a_stale_etag_is_a_conflict(table) -> None:
    table.write("p", [Write("insert", "r", {"v": 1})])
    etag = table.get("p", "r").etag
    table.write("p", [Write("upsert", "r", {"v": 2})])
    with pytest.raises(ConcurrencyConflict):
        table.write("p", [Write("delete", "r", etag=etag)])
    assert table.get("p", "r").data["v"] == 2


def test_a_batch_is_all_or_nothing(table) -> None:
    table.write("p", [Write("insert", "b", {"v": 1})])
    with pytest.raises(AlreadyExists):
        table.write("p", [Write("insert", "a", {"v": 1}), Write("insert", "b", {"v": 2})])
    assert [r.rk for r in table.query("p")] == ["b"]
    assert table.get("p", "b").data["v"] == 1


def test_a_batch_with_a_stale_etag_writes_nothing(table) -> None:
    table.write("p", [Write("insert", "job", {"v": 1})])
    stale = table.get("p", "job").etag
    table.write("p", [Write("upsert", "job", {"v": 2})])
    with pytest.raises(ConcurrencyConflict):
        table.write(
            "p",
            [Write("replace", "job", {"v": 3}, etag=stale), Write("insert", "index", {"v": 3})],
        )
    assert [r.rk for r in table.query("p")] == ["job"]


def test_a_batch_applies_inserts_replaces_and_deletes_together(table) -> None:
    table.write("p", [Write("insert", "a", {"v": 1}), Write("insert", "b", {"v": 1})])
    etag = table.get("p", "a").etag
    table.write(
        "p",
        [Write("replace", "a", {"v": 2}, etag=etag), Write("delete", "b"), Write("insert", "c", {"v": 1})],
    )
    assert {r.rk: r.data["v"] for r in table.query("p")} == {"a": 2, "c": 1}


def test_query_is_in_key_order_within_bounds(table) -> None:
    for rk in ["~i~b", "~i~a", "~i~c", "A", "~j~a"]:
        table.write("p", [Write("insert", rk, {"k": rk})])
    table.write("other", [Write("insert", "~i~a", {"k": "x"})])
    rows = list(table.query("p", rk_ge="~i~", rk_lt="~i~~"))
    assert [r.rk for r in rows] == ["~i~a", "~i~b", "~i~c"]
    rows = list(table.query("p", rk_gt="~i~a", rk_lt="~i~~"))
    assert [r.rk for r in rows] == ["~i~b", "~i~c"]


def test_query_pages_through_more_rows_than_one_page(table) -> None:
    for start in range(0, 250, 50):
        table.write("p", [Write("insert", f"r{i:04d}", {"i": i}) for i in range(start, start + 50)])
    rows = list(table.query("p", page_size=100))
    assert [r.data["i"] for r in rows] == list(range(250))


def test_query_filters_by_equal_properties_and_selects_columns(table) -> None:
    table.write(
        "p",
        [
            Write("insert", "1", {"kind": "a", "status": "ACTIVE", "big": "x" * 100}),
            Write("insert", "2", {"kind": "b", "status": "ACTIVE", "big": "y"}),
            Write("insert", "3", {"kind": "a", "status": "PAUSED", "big": "z"}),
        ],
    )
    rows = list(table.query("p", equals={"kind": "a", "status": "ACTIVE"}, select=["kind"]))
    assert [(r.rk, dict(r.data)) for r in rows] == [("1", {"kind": "a"})]


def test_query_across_partitions_by_row_key(table) -> None:
    table.write("t1", [Write("insert", "job1", {"v": 1})])
    table.write("t2", [Write("insert", "job2", {"v": 2})])
    rows = list(table.query(None, rk_eq="job2"))
    assert [(r.pk, r.rk) for r in rows] == [("t2", "job2")]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("x' or PartitionKey ne 'x", id="quote-breakout"),
        pytest.param("x' or '1' eq '1", id="tautology"),
        pytest.param('x" or true or "', id="double-quote"),
        pytest.param("') or (RowKey ne '", id="paren-breakout"),
    ],
)
def test_filter_values_cannot_change_the_query(table, value: str) -> None:
    table.write("p", [Write("insert", "1", {"kind": "a"}), Write("insert", "2", {"kind": "b"})])
    assert list(table.query("p", equals={"kind": value})) == []
    assert list(table.query(value)) == []
    assert list(table.query("p", rk_eq=value)) == []


def test_property_names_are_checked_not_trusted(table) -> None:
    with pytest.raises(ValueError):
        list(table.query("p", equals={"kind eq 'a' or true": "x"}))


@pytest.mark.parametrize("key", ["a/b", "a#b", "a?b", "a\\b", "a\nb", ""])
def test_invalid_keys_are_refused_before_any_request(table, key: str) -> None:
    with pytest.raises(ValueError):
        table.write("p", [Write("insert", key or "", {"v": 1})])
    with pytest.raises(ValueError):
        table.write(key, [Write("insert", "r", {"v": 1})])


def test_a_row_may_appear_only_once_in_a_batch(table) -> None:
    with pytest.raises(ValueError):
        table.write("p", [Write("insert", "r", {"v": 1}), Write("upsert", "r", {"v": 2})])


def test_values_outside_int32_are_refused(table) -> None:
    with pytest.raises(ValueError):
        table.write("p", [Write("insert", "r", {"v": 2**40})])


def test_discard_deletes_a_row_and_ignores_a_missing_one(table) -> None:
    table.write("p", [Write("insert", "r", {"v": 1})])
    table.discard("p", "r")
    table.discard("p", "r")
    table.discard("never", "seen")
    assert list(table.query("p")) == []


def test_query_can_start_after_a_partition(table) -> None:
    for pk in ["a", "b", "c"]:
        table.write(pk, [Write("insert", "r1", {"v": 1}), Write("insert", "r2", {"v": 2})])
    rows = list(table.query(None, pk_gt="a", rk_lt="r2"))
    assert [(r.pk, r.rk) for r in rows] == [("b", "r1"), ("c", "r1")]


def test_query_filters_on_boolean_properties(table) -> None:
    table.write("p", [Write("insert", "1", {"t_ab": True}), Write("insert", "2", {"other": True})])
    assert [r.rk for r in table.query("p", equals={"t_ab": True})] == ["1"]
