"""One SQLite write transaction, shared by the sensor's spool and the collector's store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error; inside an open transaction, just that one.

    IMMEDIATE takes the write lock at BEGIN, so a second writer waits (busy timeout) there instead
    of failing at its first write after it has read. The connection must be in autocommit mode
    (isolation_level=None): the transaction is ours, not the sqlite3 module's.
    """
    if db.in_transaction:
        yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        # A failed COMMIT or a disk error may have ended the transaction already.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
