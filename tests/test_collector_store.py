"""SqliteStore: migrations, idempotent batch inserts, period queries and the dead-letter sample."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.storage.base import DeadLetter, StoreError, migrations
from collector.storage.sqlite import SqliteStore
from footfall.events import Event
from tests.test_report import count, status, visit

T0 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_new_database_gets_every_migration_once_and_records_it(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    SqliteStore(path).close()
    SqliteStore(path).close()  # reopening applies nothing again
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT version, name FROM schema_migrations").fetchall()
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert (
        rows
        == [(m.version, m.name) for m in migrations()]
        == [
            (1, "init"),
            (2, "privacy"),
            (3, "people"),
            (4, "profiles"),
            (6, "present_interval"),
            (7, "dashboard"),
            (8, "connected"),
            (9, "rollups"),
            (10, "hour_rollups"),
        ]
    )
    assert {
        "visits",
        "counts",
        "statuses",
        "dead_letters",
        "rejections",
        "web_users",
        "web_sessions",
        "count_rollup",
        "trigger_log",
    } <= tables


def test_the_file_is_in_wal_mode_with_normal_sync(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "f.db")
    assert store._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    store.close()


def test_a_database_from_a_newer_collector_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    with pytest.raises(StoreError, match=r"schema version 99, newer than this collector knows \(10\)"):
        SqliteStore(path)


def test_opening_without_create_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no database at .*missing\.db"):
        SqliteStore(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


def test_add_counts_only_new_events_so_a_resend_is_stored_once() -> None:
    store = SqliteStore(":memory:")
    events: list[Event] = [
        visit(at(0), 600),
        visit(at(1), 60, "passerby", device="d2"),
        count(at(0), 1.5),
        status(at(0), sensor="s1"),
    ]
    assert store.add(events) == 4
    assert store.add(events) == 0
    assert store.add([events[0], events[0], visit(at(2), 30, device="d3")]) == 1  # in-batch repeat too
    assert len(store.visits("paris-01", at(-60), at(60))) == 3


def test_visits_come_back_as_aware_utc_rows_within_a_half_open_period() -> None:
    store = SqliteStore(":memory:")
    store.add(
        [
            visit(at(0), 600, device="d1"),
            visit(at(60), 30, "passerby", device="d2"),
            visit(at(30), 5, store="x"),
        ]
    )
    rows = store.visits("paris-01", at(0), at(60))  # at(60) is the end: excluded
    assert len(rows) == 1
    row = rows[0]
    assert (row.start, row.end, row.dwell_s, row.kind, row.epoch) == (at(0), at(10), 600.0, "visitor", "e1")
    assert row.start.tzinfo is not None and row.start.utcoffset() == timedelta(0)


def test_counts_sensors_stores_and_extent_answer_per_store() -> None:
    store = SqliteStore(":memory:")
    store.add(
        [
            count(at(0), 2.0),
            count(at(5), 3.0, sensor="s2"),
            visit(at(20), 60),
            status(at(30), sensor="s9"),
            visit(at(500), 60, store="lyon"),
        ]
    )
    assert [(c.sensor, c.start, c.present) for c in store.counts("paris-01", at(0), at(60))] == [
        ("s1", at(0), 2.0),
        ("s2", at(5), 3.0),
    ]
    assert store.sensors("paris-01", at(0), at(60)) == ["s1", "s2", "s9"]
    assert store.sensors("paris-01", at(0), at(25)) == ["s1", "s2"]
    assert store.stores() == ["lyon", "paris-01"]
    assert store.extent("paris-01") == (at(0), at(20))
    assert store.extent("nowhere") is None


def test_status_decode_errors_are_kept_as_json() -> None:
    store = SqliteStore(":memory:")
    event = status(at(0), sensor="s1").model_copy(update={"decode_errors": {"radiotap_truncated": 3}})
    store.add([event])
    assert store._db.execute("SELECT decode_errors FROM statuses").fetchone() == (
        '{"radiotap_truncated": 3}',
    )


def letter(n: int, reason: str = "not_json") -> DeadLetter:
    return DeadLetter(at(n), reason, f"footfall/v1/s/x/visit{n}", "detail", 10, b"x" * 10)


def test_the_dead_letter_sample_keeps_the_newest_and_totals_keep_everything() -> None:
    store = SqliteStore(":memory:")
    store.dead_letter([letter(n) for n in range(5)], {"not_json": 5}, keep=3)
    store.dead_letter([letter(5, "oversized")], {"oversized": 1, "not_json": 0}, keep=3)
    assert [d.topic[-6:] for d in store.dead_letters()] == ["visit3", "visit4", "visit5"]
    assert store.dead_letters()[-1] == letter(5, "oversized")
    assert store.rejections() == {"not_json": 5, "oversized": 1}
    store.dead_letter([letter(6)], {"not_json": 1}, keep=0)
    assert store.dead_letters() == []
    assert store.rejections() == {"not_json": 6, "oversized": 1}


def test_a_naive_time_is_refused_rather_than_guessed() -> None:
    store = SqliteStore(":memory:")
    with pytest.raises(StoreError, match="naive timestamp"):
        store.visits("paris-01", datetime(2024, 5, 1), datetime(2024, 5, 2))


def test_a_large_batch_is_stored_in_one_go() -> None:
    store = SqliteStore(":memory:")
    events = [visit(at(n / 100), 60, device=f"d{n}") for n in range(20_000)]
    assert store.add(events) == 20_000
    assert store.add(events[:100]) == 0


def test_a_migration_numbered_below_one_already_applied_is_still_applied(tmp_path: Path) -> None:
    """Branches number migrations apart (0006 may reach a database before 0005): apply by set, not by max."""
    path = tmp_path / "f.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:  # as if 0004 had arrived after 0006
        db.execute("DELETE FROM schema_migrations WHERE version = 4")
        db.execute("DROP TABLE online_events")
        db.execute("DROP TABLE profiles")
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        versions = [r[0] for r in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert versions == [m.version for m in migrations()]
    assert "profiles" in tables
