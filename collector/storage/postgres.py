"""The PostgreSQL backend of `Store` (collector/storage/base.py), for several collectors on one database.

The same tables and the same semantics as `SqliteStore`: events keyed by their deterministic event_id
(a re-sent event is stored once, whichever collector got it), times as integer UTC microseconds, the
schema grown by numbered migrations (collector/storage/migrations/postgresql/NNNN_name.sql, the same numbers and
names as SQLite's), each applied once in a transaction under an advisory lock, so collectors starting
together do not race. psycopg 3 (`pip install psycopg`), one connection in autocommit mode with
explicit transactions, shared by the service's threads behind a lock, as the SQLite store does.

The privacy registry and retention run the very statements SQLite's do (privacy_sql.py, through
`Placeholders`); the revision row is updated inside each transaction, so two collectors on one database
serialise on it. What retention deletes or rewrites is left to autovacuum to reclaim; unlike SQLite there
is no file to truncate, and the old row versions are not readable through SQL once the transaction committed.

The DSN (libpq key=value or URI) may hold a password; it never appears in an error message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

from collector.online.profiles import OnlineEvent, Profile
from collector.storage.base import DeadLetter, Migration, ProfileStore, PutCounts, StoreError, pending, us
from collector.storage.base import migrations as all_migrations
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
from collector.storage.sql import Insert, Placeholders, pg
from footfall.events import Event

MIGRATION_LOCK = 0x466F6F7466616C6C  # "Footfall": pg_advisory_xact_lock key for migrations


# The SQLite store's statements, with PostgreSQL's placeholders.
_INSERTS: dict[type[Any], Insert] = {kind: (pg(sql), row) for kind, (sql, row) in EVENT_INSERTS.items()}


def migrations() -> list[Migration]:
    """The PostgreSQL migrations shipped with the package, in order."""
    return all_migrations("postgresql")


class PostgresStore(StoreReads):
    """`Store` on PostgreSQL; `profiles()` gives the `ProfileStore` on the same connection."""

    def __init__(self, dsn: str, *, create: bool = True) -> None:
        try:
            self._db: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {_message(exc)}") from None
        info = self._db.info
        self.path = f"postgresql://{info.host}:{info.port}/{info.dbname}"  # no user, no password
        self._lock = threading.Lock()
        if not create and self.schema_version() == 0:
            self._db.close()
            raise StoreError(f"no footfall schema in {self.path}")
        self.migrate()

    # -- schema -------------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self._lock, self._errors("read the schema version"):
            row = self._db.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
            if not row or not row[0]:
                return 0
            row = self._db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
            return int(row[0]) if row else 0

    def migrate(self) -> int:
        """Apply the migrations not applied yet; returns the resulting schema version."""
        known = migrations()
        with self._lock, self._errors("migrate the schema"), self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_us BIGINT NOT NULL)"
            )
            applied = [int(r[0]) for r in self._db.execute("SELECT version FROM schema_migrations")]
            for migration in pending(known, applied, self.path):
                self._db.execute(migration.sql.encode())  # no parameters: several statements at once
                self._db.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                    (migration.version, migration.name, us(datetime.now(UTC))),
                )
        return self.schema_version()

    def profiles(self) -> ProfileStore:
        return PostgresProfiles(self._db, self._lock, self._errors)

    # -- writing ------------------------------------------------------------------------------------------
    def add(self, events: Sequence[Event]) -> int:
        by_table = insert_rows(events, _INSERTS)
        new = 0
        with (
            self._lock,
            self._errors(f"store {len(events)} events"),
            self._db.transaction(),
            self._db.cursor() as cursor,
        ):
            for sql, rows in by_table.items():
                cursor.executemany(sql.encode(), rows)
                new += max(cursor.rowcount, 0)
        return new

    def dead_letter(self, letters: Sequence[DeadLetter], rejected: Mapping[str, int], keep: int) -> None:
        rows = [(us(d.at), d.reason, d.topic, d.detail, d.size, d.payload) for d in letters[-keep:] if keep]
        with (
            self._lock,
            self._errors(f"record {len(letters)} rejected payloads"),
            self._db.transaction(),
            self._db.cursor() as cursor,
        ):
            cursor.executemany(pg(DEAD_LETTER_SQL[0]).encode(), rows)
            cursor.execute(pg(DEAD_LETTER_SQL[1]).encode(), (keep,))
            cursor.executemany(
                pg(DEAD_LETTER_SQL[2]).encode(), [(reason, n) for reason, n in rejected.items() if n]
            )

    # -- the privacy registry -------------------------------------------------------------------------------
    def registry_put(
        self, entries: Sequence[RegistryEntry], now: datetime, *, strict: bool = False
    ) -> PutResult:
        with self._lock, self._errors(f"record {len(entries)} registry entries"), self._db.transaction():
            # FOR UPDATE: two collectors putting the same token serialise on its row.
            result = put_entries(Placeholders(self._db), entries, us(now), strict=strict, lock=" FOR UPDATE")
            if not result.applied:
                raise psycopg.Rollback()
        return result

    def registry_remove(self, list_: ListName, tokens: Sequence[str]) -> RemoveResult:
        with self._lock, self._errors(f"remove {len(tokens)} {list_} entries"), self._db.transaction():
            return remove_entries(Placeholders(self._db), list_, tokens)

    def registry_sets(self) -> PrivacySets:
        with self._lock, self._errors("read the privacy registry"), self._db.transaction():
            return read_sets(Placeholders(self._db))

    def registry_revision(self) -> int:
        with self._lock, self._errors("read the privacy registry revision"):
            return current_revision(Placeholders(self._db), False)

    # -- retention ------------------------------------------------------------------------------------------
    def apply_retention(
        self, cutoffs: RetentionCutoffs, *, dry_run: bool, label: Callable[[int], str]
    ) -> RetentionCounts:
        with self._lock, self._errors("apply retention"), self._db.transaction():
            counts = retention(Placeholders(self._db), cutoffs, label, "event_id")
            if dry_run:
                raise psycopg.Rollback()  # the exact figures, then nothing kept
        return counts

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing -----------------------------------------------------------------------------------------
    def query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors(doing):
            return self._db.execute(pg(sql).encode(), params).fetchall()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise StoreError(f"{self.path}: cannot {doing}: {_message(exc)}") from None


def _message(exc: psycopg.Error) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class PostgresProfiles(ProfileReads):
    """`ProfileStore` on PostgreSQL (the SQL of `SqliteProfiles`, with PostgreSQL's placeholders)."""

    def __init__(
        self,
        db: psycopg.Connection[Any],
        lock: threading.Lock,
        errors: Callable[[str], AbstractContextManager[None]],
    ) -> None:
        self._db, self._lock, self._errors = db, lock, errors

    def query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors(doing):
            return self._db.execute(pg(sql).encode(), params).fetchall()

    def put_profiles(self, profiles: Sequence[Profile], now: datetime) -> PutCounts:
        with self._lock, self._errors(f"store {len(profiles)} profiles"), self._db.transaction():
            return upsert_profiles(Placeholders(self._db), profiles, us(now), lock=" FOR UPDATE")

    def add_online_events(self, events: Sequence[OnlineEvent]) -> int:
        rows = [(e.id, e.profile_id, us(e.at), e.channel, e.type, e.product, e.value) for e in events]
        with self._lock, self._errors(f"store {len(events)} online events"), self._db.transaction():
            return int(Placeholders(self._db).executemany(ADD_ONLINE_EVENTS, rows).rowcount)

    def consent_profiles(self, tokens: Sequence[str]) -> dict[str, str]:
        rows = self.query(
            "look up consent tokens",
            "SELECT token, profile FROM privacy_registry WHERE list = 'consent' AND token = ANY(?)",
            (sorted(set(tokens)),),
        )
        return {str(t): str(p) for t, p in rows}

    def erase(self, profile_id: str) -> tuple[int, int]:
        with self._lock, self._errors(f"erase profile {profile_id}"), self._db.transaction():
            return erase_profile(Placeholders(self._db), profile_id)

    def delete_online_events(self, before: datetime, *, dry_run: bool) -> int:
        """Delete online events that happened before `before` (with `dry_run`, only count them)."""
        if dry_run:
            return self.count_online_events(before)
        with self._lock, self._errors("delete old online events"), self._db.transaction():
            return int(self._db.execute(pg(DELETE_ONLINE_EVENTS).encode(), (us(before),)).rowcount)
