"""Where accepted events live: a small storage interface and its SQLite implementation.

`Store` is the seam both backends implement (SQLite here, PostgreSQL in store_pg.py); nothing above it knows SQL. Events are
keyed by their deterministic `event_id`, so `add` is idempotent: a re-sent or replayed event is
counted as a duplicate, never stored twice. Times cross this interface as aware UTC datetimes; SQLite
keeps them as integer microseconds so period scans are numeric range scans on an index.

The schema evolves by numbered migrations (`collector/storage/migrations/NNNN_name.sql`), each applied once in
its own transaction and recorded in `schema_migrations`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from collector.config import StoreConfig
from collector.storage.conflicts import Conflict, find_conflicts
from collector.storage.privacy import PrivacyReads, PrivacyStore, SqlitePrivacy
from collector.storage.sql import DEAD_LETTER_SQL, Insert, insert_rows
from footfall.events import CountEvent, Event, StatusEvent, VisitEvent
from footfall.sqlite import immediate_transaction

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class StoreError(Exception):
    """The database refused or failed an operation; the backend's own exception is converted to text."""


class StoreRefused(StoreError):
    """The database refused the data itself (a value out of its range, a constraint): retrying cannot help.

    Any other StoreError (the database unreachable, locked, out of disk) may pass; the Ingestor retries
    those and isolates these (collector/ingest/poison.py).
    """


# Backend-neutral Python errors raised while a driver adapts a value (an int past int64: OverflowError).
DATA_ERRORS: tuple[type[Exception], ...] = (OverflowError, ValueError, TypeError)


@dataclass(frozen=True, slots=True)
class VisitRow:
    """What the report needs of one visit."""

    sensor: str
    epoch: str
    device: str
    start: datetime  # aware, UTC
    end: datetime
    dwell_s: float
    kind: str  # visitor | passerby | fixed
    visit_no: int
    rssi_max: int | None = None  # decides which sensor's copy wins when sensors' visits merge


@dataclass(frozen=True, slots=True)
class CountRow:
    """What the report needs of one count interval."""

    sensor: str
    start: datetime  # aware, UTC
    end: datetime
    present: float
    visitors_est: float | None = None  # people behind the visitor visits, when the sensor is calibrated
    passersby_est: float | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A sample of one rejected payload: enough to diagnose a misbehaving sensor, bounded in size."""

    at: datetime  # aware, UTC
    reason: str
    topic: str
    detail: str
    size: int  # of the whole payload
    payload: bytes  # its first bytes only


class Store(PrivacyStore, Protocol):
    """The storage the collector and the report need: SqliteStore, PostgresStore.

    The privacy registry and retention (collector/storage/privacy.py) are part of it.
    """

    def add(self, events: Sequence[Event]) -> int:
        """Store events not stored yet (by event_id); returns how many were new."""
        ...

    def dead_letter(self, letters: Sequence[DeadLetter], rejected: Mapping[str, int], keep: int) -> None:
        """Add `letters` to the sample, keep only the newest `keep`, add `rejected` to the totals."""
        ...

    def rejections(self) -> dict[str, int]:
        """Running totals of rejected payloads by reason, since the database was created."""
        ...

    def dead_letters(self) -> list[DeadLetter]:
        """The kept sample, oldest first."""
        ...

    def stores(self) -> list[str]:
        """Every store with at least one event."""
        ...

    def extent(self, store: str) -> tuple[datetime, datetime] | None:
        """Earliest and latest start of a visit or count interval of `store`; None if it has none."""
        ...

    def visits(self, store: str, start: datetime, end: datetime) -> list[VisitRow]:
        """Visits of `store` that started in [start, end)."""
        ...

    def counts(self, store: str, start: datetime, end: datetime) -> list[CountRow]:
        """Count intervals of `store` that started in [start, end)."""
        ...

    def sensors(self, store: str, start: datetime, end: datetime) -> list[str]:
        """Sensors of `store` with any event (visit, count or status) in [start, end)."""
        ...

    def conflicts(self, events: Sequence[Event]) -> list[Conflict]:
        """Events of `events` whose event_id is stored with other content (collector/storage/conflicts.py)."""
        ...

    def close(self) -> None: ...


def open_store(config: StoreConfig, *, create: bool = True) -> Store:
    """The configured backend (one entry per backend, so PostgreSQL is one more line)."""
    backends: dict[str, Callable[[StoreConfig, bool], Store]] = {
        "sqlite": lambda c, create_: SqliteStore(c.path, create=create_),
        "postgresql": _open_postgresql,
    }
    return backends[config.backend](config, create)


def _open_postgresql(config: StoreConfig, create: bool) -> Store:
    from collector.storage.postgres import PostgresStore  # psycopg is only needed by PostgreSQL users

    assert config.dsn_file is not None  # the config validator requires it
    try:
        dsn = config.dsn_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StoreError(
            f"{config.dsn_file}: cannot read the PostgreSQL connection string: {exc.strerror}"
        ) from None
    return PostgresStore(dsn, create=create)


def _us(value: datetime) -> int:
    if value.utcoffset() is None:
        raise StoreError(f"naive timestamp {value.isoformat()}: the store takes aware UTC times only")
    return (value - _EPOCH) // _US


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _visit_row(e: VisitEvent) -> tuple[Any, ...]:
    return (
        e.event_id, e.store, e.sensor, e.epoch, e.device, _us(e.start), _us(e.end), e.dwell_s, e.kind,
        e.frames, e.addresses, int(e.randomized), e.rssi_max, e.rssi_median, e.visit_no, e.consent,
    )  # fmt: skip


def _count_row(e: CountEvent) -> tuple[Any, ...]:
    return (
        e.event_id, e.store, e.sensor, e.epoch, _us(e.start), _us(e.end), e.present, e.visitors,
        e.passersby, e.visitors_present, e.new_visitors, e.returning_visitors, e.fixed_devices, e.frames,
        e.frames_randomized, e.addresses, e.addresses_randomized, e.devices, e.visitors_est, e.passersby_est,
    )  # fmt: skip


def _status_row(e: StatusEvent) -> tuple[Any, ...]:
    return (
        e.event_id, e.store, e.sensor, e.epoch, e.state, _us(e.at), e.version, e.uptime_s, e.source,
        e.frames, e.probe_requests, json.dumps(e.decode_errors, sort_keys=True),
    )  # fmt: skip


def _insert(table: str, columns: int) -> str:
    # Columns named: later migrations add columns with defaults (visits.pseudonym_dropped).
    names = _COLUMNS[table][:columns]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * columns)}) ON CONFLICT(event_id) DO NOTHING"


_COLUMNS = {
    "visits": (
        "event_id", "store", "sensor", "epoch", "device", "start_us", "end_us", "dwell_s", "kind", "frames",
        "addresses", "randomized", "rssi_max", "rssi_median", "visit_no", "consent",
    ),
    "counts": (
        "event_id", "store", "sensor", "epoch", "start_us", "end_us", "present", "visitors", "passersby",
        "visitors_present", "new_visitors", "returning_visitors", "fixed_devices", "frames",
        "frames_randomized", "addresses", "addresses_randomized", "devices", "visitors_est", "passersby_est",
    ),
    "statuses": (
        "event_id", "store", "sensor", "epoch", "state", "at_us", "version", "uptime_s", "source", "frames",
        "probe_requests", "decode_errors",
    ),
}  # fmt: skip


# Event model → (insert statement, row builder): the one place that maps the wire schema to tables.
_INSERTS: dict[type[Any], Insert] = {
    VisitEvent: (_insert("visits", 16), _visit_row),
    CountEvent: (_insert("counts", 20), _count_row),
    StatusEvent: (_insert("statuses", 12), _status_row),
}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(dialect: str = "") -> list[Migration]:
    """The numbered migrations shipped with the package, in order (SQLite's, or those in `dialect`/)."""
    found = []
    folder = resources.files("collector.storage") / "migrations"
    for entry in (folder / dialect if dialect else folder).iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"migrations must be numbered 1..{len(found)} without gaps, found {versions}")
    return found


class StoreReads(PrivacyReads):
    """The reading half of `Store`, shared by both backends: each gives `_query` for its connection."""

    # -- reading (one SQL text for both backends; `_query` adapts it) -------------------------------------
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
            " SELECT MIN(start_us) AS lo, MAX(start_us) AS hi FROM visits WHERE store = ?"
            " UNION ALL SELECT MIN(start_us), MAX(start_us) FROM counts WHERE store = ?) AS both_kinds",
            (store, store),
        )
        lo, hi = rows[0]
        return None if lo is None else (_dt(lo), _dt(hi))

    def visits(self, store: str, start: datetime, end: datetime) -> list[VisitRow]:
        rows = self._query(
            f"read visits of {store}",
            "SELECT sensor, epoch, device, start_us, end_us, dwell_s, kind, visit_no, rssi_max FROM visits"
            " WHERE store = ? AND start_us >= ? AND start_us < ? ORDER BY start_us, event_id",
            (store, _us(start), _us(end)),
        )
        return [VisitRow(r[0], r[1], r[2], _dt(r[3]), _dt(r[4]), r[5], r[6], r[7], r[8]) for r in rows]

    def counts(self, store: str, start: datetime, end: datetime) -> list[CountRow]:
        rows = self._query(
            f"read counts of {store}",
            "SELECT sensor, start_us, end_us, present, visitors_est, passersby_est FROM counts"
            " WHERE store = ? AND start_us >= ? AND start_us < ? ORDER BY start_us, sensor",
            (store, _us(start), _us(end)),
        )
        return [CountRow(r[0], _dt(r[1]), _dt(r[2]), r[3], r[4], r[5]) for r in rows]

    def conflicts(self, events: Sequence[Event]) -> list[Conflict]:
        return find_conflicts(self._query, events, _INSERTS, _COLUMNS)

    def sensors(self, store: str, start: datetime, end: datetime) -> list[str]:
        span = (store, _us(start), _us(end))
        rows = self._query(
            f"list sensors of {store}",
            "SELECT sensor FROM visits WHERE store = ? AND start_us >= ? AND start_us < ?"
            " UNION SELECT sensor FROM counts WHERE store = ? AND start_us >= ? AND start_us < ?"
            " UNION SELECT sensor FROM statuses WHERE store = ? AND at_us >= ? AND at_us < ? ORDER BY 1",
            span * 3,
        )
        return [str(r[0]) for r in rows]


_SQLITE_REFUSALS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, sqlite3.DataError, *DATA_ERRORS)


class SqliteStore(SqlitePrivacy, StoreReads):
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
        current = self.schema_version()
        if current > len(known):
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this collector knows ({len(known)})"
            )
        for migration in known[current:]:
            applied = _us(datetime.now(UTC))
            with self._lock, self._errors(f"apply migration {migration.version:04d}_{migration.name}"):
                try:
                    self._db.executescript(
                        f"BEGIN;\n{migration.sql}\n;"
                        f"INSERT INTO schema_migrations VALUES ({migration.version}, '{migration.name}', {applied});"
                        "\nCOMMIT;"
                    )
                except sqlite3.Error:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
        return len(known)

    # -- writing ------------------------------------------------------------------------------------------
    def add(self, events: Sequence[Event]) -> int:
        by_table = insert_rows(events, _INSERTS)
        with self._lock, self._errors(f"store {len(events)} events"), self._transaction():
            before = self._db.total_changes
            for sql, rows in by_table.items():
                self._db.executemany(sql, rows)
            return self._db.total_changes - before

    def dead_letter(self, letters: Sequence[DeadLetter], rejected: Mapping[str, int], keep: int) -> None:
        rows = [(_us(d.at), d.reason, d.topic, d.detail, d.size, d.payload) for d in letters[-keep:] if keep]
        with self._lock, self._errors(f"record {len(letters)} rejected payloads"), self._transaction():
            self._db.executemany(DEAD_LETTER_SQL[0], rows)
            self._db.execute(DEAD_LETTER_SQL[1], (keep,))
            self._db.executemany(DEAD_LETTER_SQL[2], [(reason, n) for reason, n in rejected.items() if n])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing -----------------------------------------------------------------------------------------
    def _query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors(doing):
            return self._db.execute(sql, params).fetchall()

    def _transaction(self) -> AbstractContextManager[None]:
        # The privacy and profile mixins write through this too.
        return immediate_transaction(self._db)

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except _SQLITE_REFUSALS as exc:
            raise StoreRefused(f"{self.path}: cannot {doing}: {type(exc).__name__}: {exc}") from None
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot {doing}: {exc}") from None
