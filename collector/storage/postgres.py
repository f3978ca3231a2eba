"""The PostgreSQL backend of `Store` (collector/storage/store.py), for several collectors on one database.

The same tables and the same semantics as `SqliteStore`: events keyed by their deterministic event_id
(a re-sent event is stored once, whichever collector got it), times as integer UTC microseconds, the
schema grown by numbered migrations (collector/storage/migrations/postgresql/NNNN_name.sql, the same numbers and
names as SQLite's), each applied once in a transaction under an advisory lock, so collectors starting
together do not race. psycopg 3 (`pip install psycopg`), one connection in autocommit mode with
explicit transactions, shared by the service's threads behind a lock, as the SQLite store does.

The DSN (libpq key=value or URI) may hold a password; it never appears in an error message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

from collector.online.profiles import (
    ADD_ONLINE_EVENTS,
    DELETE_ONLINE_EVENTS,
    OnlineEvent,
    Profile,
    ProfileReads,
    ProfileStore,
    PutCounts,
    erase_profile,
    upsert_profiles,
)
from collector.storage.privacy_pg import PostgresPrivacy
from collector.storage.sql import DEAD_LETTER_SQL, Insert, Placeholders, insert_rows, pg
from collector.storage.store import _INSERTS as _SQLITE_INSERTS
from collector.storage.store import (
    DATA_ERRORS,
    DeadLetter,
    Migration,
    StoreError,
    StoreReads,
    StoreRefused,
    _us,
)
from collector.storage.store import migrations as all_migrations
from footfall.events import Event

MIGRATION_LOCK = 0x466F6F7466616C6C  # "Footfall": pg_advisory_xact_lock key for migrations


_PG_REFUSALS: tuple[type[Exception], ...] = (psycopg.DataError, psycopg.IntegrityError, *DATA_ERRORS)

# The SQLite store's statements, with PostgreSQL's placeholders.
_INSERTS: dict[type[Any], Insert] = {kind: (pg(sql), row) for kind, (sql, row) in _SQLITE_INSERTS.items()}


def migrations() -> list[Migration]:
    """The PostgreSQL migrations shipped with the package, in order."""
    return all_migrations("postgresql")


class PostgresStore(PostgresPrivacy, StoreReads):
    """`Store` on PostgreSQL; `profile_store()` gives the `ProfileStore` on the same connection."""

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
            row = self._db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
            current = int(row[0]) if row else 0
            if current > len(known):
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than this collector knows ({len(known)})"
                )
            for migration in known[current:]:
                self._db.execute(migration.sql.encode())  # no parameters: several statements at once
                self._db.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                    (migration.version, migration.name, _us(datetime.now(UTC))),
                )
        return len(known)

    def profile_store(self) -> ProfileStore:
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
        rows = [(_us(d.at), d.reason, d.topic, d.detail, d.size, d.payload) for d in letters[-keep:] if keep]
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

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing -----------------------------------------------------------------------------------------
    def _query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors(doing):
            return self._db.execute(pg(sql).encode(), params).fetchall()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except _PG_REFUSALS as exc:
            # DataError: integer out of range, a NUL in a text; IntegrityError: a CHECK constraint.
            raise StoreRefused(f"{self.path}: cannot {doing}: {type(exc).__name__}: {_text(exc)}") from None
        except psycopg.Error as exc:
            raise StoreError(f"{self.path}: cannot {doing}: {_message(exc)}") from None


def _text(exc: Exception) -> str:
    return _message(exc) if isinstance(exc, psycopg.Error) else str(exc)


def _message(exc: psycopg.Error) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class PostgresProfiles(ProfileReads):
    """`ProfileStore` on PostgreSQL (the SQL of `SqliteProfiles`, with PostgreSQL's placeholders)."""

    _time = staticmethod(_us)

    def __init__(
        self,
        db: psycopg.Connection[Any],
        lock: threading.Lock,
        errors: Callable[[str], AbstractContextManager[None]],
    ) -> None:
        self._db, self._lock, self._errors = db, lock, errors

    def _query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors(doing):
            return self._db.execute(pg(sql).encode(), params).fetchall()

    def put_profiles(self, profiles: Sequence[Profile], now: datetime) -> PutCounts:
        with self._lock, self._errors(f"store {len(profiles)} profiles"), self._db.transaction():
            return upsert_profiles(Placeholders(self._db), profiles, _us(now), lock=" FOR UPDATE")

    def add_online_events(self, events: Sequence[OnlineEvent]) -> int:
        rows = [(e.id, e.profile_id, _us(e.at), e.channel, e.type, e.product, e.value) for e in events]
        with self._lock, self._errors(f"store {len(events)} online events"), self._db.transaction():
            return int(Placeholders(self._db).executemany(ADD_ONLINE_EVENTS, rows).rowcount)

    def consent_profiles(self, tokens: Sequence[str]) -> dict[str, str]:
        rows = self._query(
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
            return self._count_online_events(before)
        with self._lock, self._errors("delete old online events"), self._db.transaction():
            return int(self._db.execute(pg(DELETE_ONLINE_EVENTS).encode(), (_us(before),)).rowcount)
