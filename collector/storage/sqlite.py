"""The SQLite backend of `Store` (collector/storage/base.py): events, the privacy registry, retention, profiles.

One file in WAL mode: one writer (the collector) and any number of readers (reports) at once. The SQL
is the backends' shared text (events_sql.py, privacy_sql.py, profiles.py); this module gives it the
connection, the lock and the transactions.

Deleting or rewriting a row in SQLite leaves the old bytes in free pages and in the WAL; the store runs
with `secure_delete` on (freed space is zeroed) and retention truncates the WAL after it changed
anything, so what retention removes is gone from the files, not just from the tables.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.online.profiles import OnlineEvent, Profile
from collector.storage.base import DeadLetter, ProfileStore, PutCounts, StoreError, migrations, pending, us
from collector.storage.events_sql import DEAD_LETTER_SQL, EVENT_INSERTS, StoreReads, insert_rows
from collector.storage.privacy import (
    ListName,
    PrivacySets,
    PutResult,
    RegistryEntry,
    RemoveResult,
    RetentionCounts,
    RetentionCutoffs,
)
from collector.storage.privacy_sql import current_revision, put_entries, read_sets, remove_entries, retention
from collector.storage.profiles import (
    ADD_ONLINE_EVENTS,
    DELETE_ONLINE_EVENTS,
    ProfileReads,
    erase_profile,
    upsert_profiles,
)
from footfall.events import Event
from footfall.sqlite import immediate_transaction

Errors = Callable[[str], AbstractContextManager[None]]


class _Rollback(Exception):
    """Raised inside a transaction to roll it back (strict refusals, dry runs) with a result in hand."""

    def __init__(self, result: PutResult | RetentionCounts) -> None:
        super().__init__("rolled back")
        self.result = result


class SqliteStore(StoreReads):
    """SQLite in WAL mode: one writer (the collector) and any number of readers (reports) at once.

    `synchronous=NORMAL` in WAL mode can lose the last transactions on power loss but never corrupts
    the file; the broker's persistent session and deterministic ids make a re-send harmless.
    `secure_delete` zeroes freed space, so a deleted or rewritten pseudonym does not linger in the file.
    """

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = str(path)
        if not create and self.path != ":memory:" and not Path(self.path).is_file():
            raise StoreError(f"no database at {self.path}")
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("PRAGMA secure_delete=ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from None
        self._lock = threading.Lock()  # the MQTT thread, the flush timer and the caller may all use it
        self.migrate()

    # -- schema -------------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self._lock, self._errors("read the schema version"):
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_us INTEGER NOT NULL)"
            )
            row = self._db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
            return int(row[0])

    def migrate(self) -> int:
        """Apply the migrations not applied yet; returns the resulting schema version."""
        known = migrations()
        self.schema_version()  # creates the table
        with self._lock, self._errors("read the applied migrations"):
            applied = [int(r[0]) for r in self._db.execute("SELECT version FROM schema_migrations")]
        for migration in pending(known, applied, self.path):
            applied_us = us(datetime.now(UTC))
            with self._lock, self._errors(f"apply migration {migration.version:04d}_{migration.name}"):
                try:
                    self._db.executescript(
                        f"BEGIN;\n{migration.sql}\n;"
                        f"INSERT INTO schema_migrations VALUES ({migration.version}, '{migration.name}', {applied_us});"
                        "\nCOMMIT;"
                    )
                except sqlite3.Error:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
        return self.schema_version()

    def profiles(self) -> ProfileStore:
        return SqliteProfiles(self._db, self._lock, self._errors)

    # -- events -------------------------------------------------------------------------------------------
    def add(self, events: Sequence[Event]) -> int:
        by_table = insert_rows(events, EVENT_INSERTS)
        with self._lock, self._errors(f"store {len(events)} events"), immediate_transaction(self._db):
            # rowcount, not total_changes: the latter also counts the roll-up rows the triggers write.
            return sum(max(self._db.executemany(sql, rows).rowcount, 0) for sql, rows in by_table.items())

    def dead_letter(self, letters: Sequence[DeadLetter], rejected: Mapping[str, int], keep: int) -> None:
        rows = [(us(d.at), d.reason, d.topic, d.detail, d.size, d.payload) for d in letters[-keep:] if keep]
        with (
            self._lock,
            self._errors(f"record {len(letters)} rejected payloads"),
            immediate_transaction(self._db),
        ):
            self._db.executemany(DEAD_LETTER_SQL[0], rows)
            self._db.execute(DEAD_LETTER_SQL[1], (keep,))
            self._db.executemany(DEAD_LETTER_SQL[2], [(reason, n) for reason, n in rejected.items() if n])

    # -- the privacy registry -------------------------------------------------------------------------------
    def registry_put(
        self, entries: Sequence[RegistryEntry], now: datetime, *, strict: bool = False
    ) -> PutResult:
        try:
            with (
                self._lock,
                self._errors(f"record {len(entries)} registry entries"),
                immediate_transaction(self._db),
            ):
                result = put_entries(self._db, entries, us(now), strict=strict, lock="")
                if not result.applied:
                    raise _Rollback(result)
                return result
        except _Rollback as rollback:
            assert isinstance(rollback.result, PutResult)
            return rollback.result

    def registry_remove(self, list_: ListName, tokens: Sequence[str]) -> RemoveResult:
        with (
            self._lock,
            self._errors(f"remove {len(tokens)} {list_} entries"),
            immediate_transaction(self._db),
        ):
            return remove_entries(self._db, list_, tokens)

    def registry_sets(self) -> PrivacySets:
        with self._lock, self._errors("read the privacy registry"):
            return read_sets(self._db)

    def registry_revision(self) -> int:
        with self._lock, self._errors("read the privacy registry revision"):
            return current_revision(self._db, False)

    # -- retention ------------------------------------------------------------------------------------------
    def apply_retention(
        self, cutoffs: RetentionCutoffs, *, dry_run: bool, label: Callable[[int], str]
    ) -> RetentionCounts:
        try:
            with self._lock, self._errors("apply retention"), immediate_transaction(self._db):
                counts = retention(self._db, cutoffs, label, "rowid")
                if dry_run:
                    raise _Rollback(counts)  # the exact figures, then nothing kept
        except _Rollback as rollback:
            assert isinstance(rollback.result, RetentionCounts)
            return rollback.result
        if counts.changed:
            with self._lock, self._errors("truncate the write-ahead log"):
                # The WAL still holds the old page images (the pseudonyms just dropped) until it is reused.
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return counts

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing -----------------------------------------------------------------------------------------
    def query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors(doing):
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot {doing}: {exc}") from None


class SqliteProfiles(ProfileReads):
    """`ProfileStore` on the connection (and lock) of an open `SqliteStore`."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, errors: Errors) -> None:
        self._db, self._lock, self._errors = db, lock, errors

    def query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors(doing):
            return self._db.execute(sql, params).fetchall()

    def put_profiles(self, profiles: Sequence[Profile], now: datetime) -> PutCounts:
        with self._lock, self._errors(f"store {len(profiles)} profiles"), immediate_transaction(self._db):
            return upsert_profiles(self._db, profiles, us(now), lock="")

    def add_online_events(self, events: Sequence[OnlineEvent]) -> int:
        rows = [(e.id, e.profile_id, us(e.at), e.channel, e.type, e.product, e.value) for e in events]
        with self._lock, self._errors(f"store {len(events)} online events"), immediate_transaction(self._db):
            before = self._db.total_changes
            self._db.executemany(ADD_ONLINE_EVENTS, rows)
            return self._db.total_changes - before

    def consent_profiles(self, tokens: Sequence[str]) -> dict[str, str]:
        wanted = sorted(set(tokens))
        if not wanted:
            return {}
        rows = self.query(
            "look up consent tokens",
            "SELECT token, profile FROM privacy_registry WHERE list = 'consent'"
            f" AND token IN ({', '.join('?' * len(wanted))})",
            wanted,
        )
        return {str(t): str(p) for t, p in rows}

    def delete_online_events(self, before: datetime, *, dry_run: bool) -> int:
        if dry_run:
            return self.count_online_events(before)
        with self._lock, self._errors("delete old online events"), immediate_transaction(self._db):
            return int(self._db.execute(DELETE_ONLINE_EVENTS, (us(before),)).rowcount)

    def erase(self, profile_id: str) -> tuple[int, int]:
        with self._lock, self._errors(f"erase profile {profile_id}"), immediate_transaction(self._db):
            return erase_profile(self._db, profile_id)
