"""footfall.sqlite.immediate_transaction: the one write transaction of the spool and the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from footfall.sqlite import immediate_transaction


def _db(tmp_path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    db.execute("CREATE TABLE t (x INTEGER)")
    return db


def _rows(db: sqlite3.Connection) -> list[int]:
    return [x for (x,) in db.execute("SELECT x FROM t ORDER BY x")]


def test_writes_commit_together_when_the_block_ends(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with immediate_transaction(db):
        db.execute("INSERT INTO t VALUES (1)")
        db.execute("INSERT INTO t VALUES (2)")
        assert db.in_transaction
    assert not db.in_transaction
    assert _rows(sqlite3.connect(tmp_path / "t.db")) == [1, 2]  # visible to another connection


def test_an_error_rolls_every_write_back_and_propagates(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with pytest.raises(RuntimeError, match="disk"), immediate_transaction(db):
        db.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("disk on fire")
    assert not db.in_transaction
    assert _rows(db) == []


def test_a_nested_block_joins_the_outer_transaction(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with pytest.raises(RuntimeError), immediate_transaction(db):
        with immediate_transaction(db):
            db.execute("INSERT INTO t VALUES (1)")
        assert db.in_transaction  # the inner block did not commit
        raise RuntimeError("outer fails after the inner block")
    assert _rows(db) == []


def test_the_write_lock_is_taken_at_begin(tmp_path: Path) -> None:
    db = _db(tmp_path)
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None, timeout=0)
    with immediate_transaction(db), pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("BEGIN IMMEDIATE")
