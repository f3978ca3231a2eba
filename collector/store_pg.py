"""The PostgreSQL backend of `Store` (collector/store.py), for several collectors on one database.

The same tables and the same semantics as `SqliteStore`: events keyed by their deterministic event_id
(a re-sent event is stored once, whichever collector got it), times as integer UTC microseconds, the
schema grown by numbered migrations (collector/migrations/postgresql/NNNN_name.sql, the same numbers and
names as SQLite's), each applied once in a transaction under an advisory lock, so collectors starting
together do not race. psycopg 3 (`pip install psycopg`), one connection in autocommit mode with
explicit transactions, shared by the service's threads behind a lock, as the SQLite store does.

The DSN (libpq key=value or URI) may hold a password; it never appears in an error message.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import psycopg

from collector.profiles import OnlineEvent, Profile, ProfileStore, PutCounts, StoreVisit
from collector.store import (
    _COLUMNS,
    _MIGRATION_NAME,
    CountRow,
    DeadLetter,
    Migration,
    StoreError,
    VisitRow,
    _count_row,
    _dt,
    _status_row,
    _us,
    _visit_row,
)
from collector.store_pg_privacy import PostgresPrivacy
from footfall.events import CountEvent, Event, StatusEvent, VisitEvent, VisitOpenEvent

MIGRATION_LOCK = 0x466F6F7466616C6C  # "Footfall": pg_advisory_xact_lock key for migrations


def _insert(table: str, columns: int) -> str:
    names = _COLUMNS[table][:columns]
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * columns)})"
        " ON CONFLICT (event_id) DO NOTHING"
    )


_INSERTS: dict[type[Any], tuple[str, Callable[[Any], tuple[Any, ...]]]] = {
    VisitEvent: (_insert("visits", 16), _visit_row),
    CountEvent: (_insert("counts", 20), _count_row),
    StatusEvent: (_insert("statuses", 12), _status_row),
}


def migrations() -> list[Migration]:
    """The PostgreSQL migrations shipped with the package, in order."""
    found = []
    for entry in (resources.files("collector") / "migrations" / "postgresql").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"migrations must be numbered 1..{len(found)} without gaps, found {versions}")
    return found


class PostgresStore(PostgresPrivacy):
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
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for event in events:
            if isinstance(event, VisitOpenEvent):
                continue  # feeds the real-time trigger only; the closing visit event is the record
            sql, row = _INSERTS[type(event)]
            by_table.setdefault(sql, []).append(row(event))
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
            cursor.executemany(
                "INSERT INTO dead_letters (at_us, reason, topic, detail, size, payload)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                rows,
            )
            cursor.execute(
                "DELETE FROM dead_letters WHERE id <= (SELECT COALESCE(MAX(id), 0) FROM dead_letters) - %s",
                (keep,),
            )
            cursor.executemany(
                "INSERT INTO rejections VALUES (%s, %s)"
                " ON CONFLICT (reason) DO UPDATE SET count = rejections.count + excluded.count",
                [(reason, n) for reason, n in rejected.items() if n],
            )

    # -- reading ------------------------------------------------------------------------------------------
    def rejections(self) -> dict[str, int]:
        rows = self._query("read rejection totals", "SELECT reason, count FROM rejections ORDER BY reason")
        return {str(reason): int(n) for reason, n in rows}

    def dead_letters(self) -> list[DeadLetter]:
        rows = self._query(
            "read dead letters",
            "SELECT at_us, reason, topic, detail, size, payload FROM dead_letters ORDER BY id",
        )
        return [DeadLetter(_dt(r[0]), r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]

    def stores(self) -> list[str]:
        rows = self._query(
            "list stores",
            "SELECT store FROM visits UNION SELECT store FROM counts UNION SELECT store FROM statuses ORDER BY 1",
        )
        return [str(r[0]) for r in rows]

    def extent(self, store: str) -> tuple[datetime, datetime] | None:
        rows = self._query(
            f"find the period of {store}",
            "SELECT MIN(lo), MAX(hi) FROM ("
            " SELECT MIN(start_us) AS lo, MAX(start_us) AS hi FROM visits WHERE store = %s"
            " UNION ALL SELECT MIN(start_us), MAX(start_us) FROM counts WHERE store = %s) AS both_kinds",
            (store, store),
        )
        lo, hi = rows[0]
        return None if lo is None else (_dt(lo), _dt(hi))

    def visits(self, store: str, start: datetime, end: datetime) -> list[VisitRow]:
        rows = self._query(
            f"read visits of {store}",
            "SELECT sensor, epoch, device, start_us, end_us, dwell_s, kind, visit_no, rssi_max FROM visits"
            " WHERE store = %s AND start_us >= %s AND start_us < %s ORDER BY start_us, event_id",
            (store, _us(start), _us(end)),
        )
        return [VisitRow(r[0], r[1], r[2], _dt(r[3]), _dt(r[4]), r[5], r[6], r[7], r[8]) for r in rows]

    def counts(self, store: str, start: datetime, end: datetime) -> list[CountRow]:
        rows = self._query(
            f"read counts of {store}",
            "SELECT sensor, start_us, end_us, present, visitors_est, passersby_est FROM counts"
            " WHERE store = %s AND start_us >= %s AND start_us < %s ORDER BY start_us, sensor",
            (store, _us(start), _us(end)),
        )
        return [CountRow(r[0], _dt(r[1]), _dt(r[2]), r[3], r[4], r[5]) for r in rows]

    def sensors(self, store: str, start: datetime, end: datetime) -> list[str]:
        span = (store, _us(start), _us(end))
        rows = self._query(
            f"list sensors of {store}",
            "SELECT sensor FROM visits WHERE store = %s AND start_us >= %s AND start_us < %s"
            " UNION SELECT sensor FROM counts WHERE store = %s AND start_us >= %s AND start_us < %s"
            " UNION SELECT sensor FROM statuses WHERE store = %s AND at_us >= %s AND at_us < %s ORDER BY 1",
            span * 3,
        )
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing -----------------------------------------------------------------------------------------
    def _query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors(doing):
            return self._db.execute(sql.encode(), params).fetchall()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise StoreError(f"{self.path}: cannot {doing}: {_message(exc)}") from None


def _message(exc: psycopg.Error) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


_EVENT_COLUMNS = "id, profile_id, at_us, channel, type, product, value"


def _event(row: Sequence[Any]) -> OnlineEvent:
    return OnlineEvent.model_construct(
        id=row[0],
        profile_id=row[1],
        at=_dt(row[2]),
        channel=row[3],
        type=row[4],
        product=row[5],
        value=row[6],
    )


class PostgresProfiles:
    """`ProfileStore` on PostgreSQL (the SQL of `SqliteProfiles`, with PostgreSQL's placeholders)."""

    def __init__(
        self,
        db: psycopg.Connection[Any],
        lock: threading.Lock,
        errors: Callable[[str], AbstractContextManager[None]],
    ) -> None:
        self._db, self._lock, self._errors = db, lock, errors

    def _query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors(doing):
            return self._db.execute(sql.encode(), params).fetchall()

    def put_profiles(self, profiles: Sequence[Profile], now: datetime) -> PutCounts:
        added = updated = unchanged = 0
        with self._lock, self._errors(f"store {len(profiles)} profiles"), self._db.transaction():
            for p in profiles:
                new = (json.dumps(p.attributes, sort_keys=True), json.dumps(list(p.segments)))
                old = self._db.execute(
                    "SELECT attributes, segments FROM profiles WHERE id = %s FOR UPDATE", (p.id,)
                ).fetchone()
                if old is not None and tuple(old) == new:
                    unchanged += 1
                    continue
                self._db.execute(
                    "INSERT INTO profiles VALUES (%s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
                    " attributes = excluded.attributes, segments = excluded.segments, updated_us = excluded.updated_us",
                    (p.id, *new, _us(now)),
                )
                added, updated = (added + 1, updated) if old is None else (added, updated + 1)
        return PutCounts(added, updated, unchanged)

    def add_online_events(self, events: Sequence[OnlineEvent]) -> int:
        rows = [(e.id, e.profile_id, _us(e.at), e.channel, e.type, e.product, e.value) for e in events]
        with (
            self._lock,
            self._errors(f"store {len(events)} online events"),
            self._db.transaction(),
            self._db.cursor() as cursor,
        ):
            cursor.executemany(
                f"INSERT INTO online_events ({_EVENT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO NOTHING".encode(),
                rows,
            )
            return max(cursor.rowcount, 0)

    def profile(self, profile_id: str) -> Profile | None:
        rows = self._query(
            f"read profile {profile_id}",
            "SELECT attributes, segments FROM profiles WHERE id = %s",
            (profile_id,),
        )
        if not rows:
            return None
        return Profile.model_construct(
            id=profile_id, attributes=json.loads(rows[0][0]), segments=tuple(json.loads(rows[0][1]))
        )

    def consented(self, profile_id: str) -> bool:
        return bool(
            self._query(
                f"look up the consent of {profile_id}",
                "SELECT 1 FROM privacy_registry WHERE list = 'consent' AND profile = %s LIMIT 1",
                (profile_id,),
            )
        )

    def online_events(self, profile_id: str) -> list[OnlineEvent]:
        rows = self._query(
            f"read the online events of {profile_id}",
            f"SELECT {_EVENT_COLUMNS} FROM online_events WHERE profile_id = %s ORDER BY at_us, id",
            (profile_id,),
        )
        return [_event(r) for r in rows]

    def consented_online_events(self, start: datetime, end: datetime) -> list[OnlineEvent]:
        rows = self._query(
            "read the online events of consented profiles",
            f"SELECT {_EVENT_COLUMNS} FROM online_events WHERE at_us >= %s AND at_us < %s AND profile_id IN"
            " (SELECT profile FROM privacy_registry WHERE list = 'consent') ORDER BY at_us, id",
            (_us(start), _us(end)),
        )
        return [_event(r) for r in rows]

    def profile_visits(self, profile_id: str) -> list[StoreVisit]:
        rows = self._query(
            f"join the visits of {profile_id}",
            "SELECT v.store, v.sensor, v.start_us, v.end_us, v.dwell_s, v.kind FROM visits v"
            " JOIN privacy_registry r ON r.list = 'consent' AND r.token = v.consent"
            " WHERE r.profile = %s ORDER BY v.start_us, v.store, v.sensor",
            (profile_id,),
        )
        return [StoreVisit(r[0], r[1], _dt(r[2]), _dt(r[3]), r[4], r[5]) for r in rows]

    def consent_profiles(self, tokens: Sequence[str]) -> dict[str, str]:
        rows = self._query(
            "look up consent tokens",
            "SELECT token, profile FROM privacy_registry WHERE list = 'consent' AND token = ANY(%s)",
            (sorted(set(tokens)),),
        )
        return {str(t): str(p) for t, p in rows}

    def erase(self, profile_id: str) -> tuple[int, int]:
        with self._lock, self._errors(f"erase profile {profile_id}"), self._db.transaction():
            profiles = self._db.execute("DELETE FROM profiles WHERE id = %s", (profile_id,)).rowcount
            events = self._db.execute(
                "DELETE FROM online_events WHERE profile_id = %s", (profile_id,)
            ).rowcount
        return profiles, events

    def delete_online_events(self, before: datetime, *, dry_run: bool) -> int:
        """Delete online events that happened before `before` (with `dry_run`, only count them)."""
        if dry_run:
            return int(
                self._query(
                    "count old online events",
                    "SELECT count(*) FROM online_events WHERE at_us < %s",
                    (_us(before),),
                )[0][0]
            )
        with self._lock, self._errors("delete old online events"), self._db.transaction():
            return int(
                self._db.execute("DELETE FROM online_events WHERE at_us < %s", (_us(before),)).rowcount
            )
