"""The storage interface: what the collector, the report and the online features need of a database.

`Store` is the seam both backends implement (collector/storage/sqlite.py, collector/storage/postgres.py;
`open_store` in collector/storage/backends.py picks one); nothing above it knows SQL. Events are keyed by
their deterministic `event_id`, so `add` is idempotent: a re-sent or replayed event is counted as a
duplicate, never stored twice. Times cross this interface as aware UTC datetimes; the backends keep them as
integer microseconds (footfall/times.py) so period scans are numeric range scans on an index.

The privacy registry and retention (collector/storage/privacy.py) are part of `Store`; the profiles and
online events are reached through `Store.profiles()`, on the same connection, and meet the visits only
through the consent registry.

The schema evolves by numbered migrations (`collector/storage/migrations/NNNN_name.sql`, PostgreSQL's under
`postgresql/`), each applied once in its own transaction and recorded in `schema_migrations`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Protocol

from collector.online.profiles import OnlineEvent, Profile
from collector.storage.conflicts import Conflict
from collector.storage.privacy import PrivacyStore
from footfall.events import Event
from footfall.times import to_us

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


def us(value: datetime) -> int:
    """`to_us` for the store: a naive time is a StoreError, never guessed."""
    try:
        return to_us(value)
    except ValueError as exc:
        raise StoreError(str(exc)) from None


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
    connected: bool | None = None  # to a store network; None: the sensor listens to none
    # The device used random addresses; a factory address names it alike on every sensor, which is how the
    # store's merge measures how many people its sensors share (collector/reports/merge.py).
    randomized: bool | None = None


@dataclass(frozen=True, slots=True)
class CountRow:
    """What the report needs of one count interval."""

    sensor: str
    start: datetime  # aware, UTC
    end: datetime
    present: float
    visitors_est: float | None = None  # people behind the visitor visits, when the sensor is calibrated
    passersby_est: float | None = None
    present_low: float | None = None  # the 80 % interval around `present`, when the sensor sent one
    present_high: float | None = None
    connected: int | None = None  # devices connected to a store network; None: the sensor listens to none


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A sample of one rejected payload: enough to diagnose a misbehaving sensor, bounded in size."""

    at: datetime  # aware, UTC
    reason: str
    topic: str
    detail: str
    size: int  # of the whole payload
    payload: bytes  # its first bytes only


@dataclass(frozen=True, slots=True)
class StoreVisit:
    """A stored visit of a consented profile's device."""

    store: str
    sensor: str
    start: datetime  # aware, UTC
    end: datetime
    dwell_s: float
    kind: str  # visitor | passerby | fixed


@dataclass(frozen=True, slots=True)
class PutCounts:
    added: int
    updated: int
    unchanged: int


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
    # Gaps are allowed (branches number their migrations apart, 0006 may land before 0005); two files
    # of one number are not: which one a database has would depend on the order they arrived in.
    if len(set(versions)) != len(versions) or (versions and versions[0] < 1):
        raise StoreError(f"migrations must have distinct numbers from 1 up, found {versions}")
    return found


def pending(known: Sequence[Migration], applied: Sequence[int], where: str) -> list[Migration]:
    """The migrations of `known` not in `applied` (the versions a database records), in order.

    By set rather than by the highest version, so a migration numbered below one already applied (a
    branch merged late) is still applied; a recorded version this collector does not ship is refused.
    """
    versions = {m.version for m in known}
    newest = max(versions, default=0)
    unknown = sorted(set(applied) - versions)
    if unknown:
        raise StoreError(
            f"{where} has schema version {unknown[-1]}, newer than this collector knows ({newest})"
        )
    done = set(applied)
    return [m for m in known if m.version not in done]


class ProfileStore(Protocol):
    """Profiles and online events beside the `Store`; joins go through the consent registry only."""

    def put_profiles(self, profiles: Sequence[Profile], now: datetime) -> PutCounts:
        """Insert or replace, all in one transaction."""
        ...

    def add_online_events(self, events: Sequence[OnlineEvent]) -> int:
        """Store events not stored yet (by id), all in one transaction; returns how many were new."""
        ...

    def profile(self, profile_id: str) -> Profile | None: ...

    def consented(self, profile_id: str) -> bool:
        """The profile has at least one registered consent."""
        ...

    def online_events(self, profile_id: str) -> list[OnlineEvent]:
        """The profile's online events, oldest first."""
        ...

    def consented_online_events(self, start: datetime, end: datetime) -> list[OnlineEvent]:
        """Online events in [start, end) of profiles with a registered consent, oldest first."""
        ...

    def profile_visits(self, profile_id: str) -> list[StoreVisit]:
        """Visits, in any store, whose consent token is registered to the profile; oldest first."""
        ...

    def consent_profiles(self, tokens: Sequence[str]) -> dict[str, str]:
        """Registered consent token -> profile id, for those of `tokens` that are registered."""
        ...

    def erase(self, profile_id: str) -> tuple[int, int]:
        """Delete the profile and its online events (the right to erasure); returns both counts.

        Its consents stay in the registry: withdrawing them is `consent remove`, a separate decision.
        """
        ...

    def delete_online_events(self, before: datetime, *, dry_run: bool) -> int:
        """Delete online events that happened before `before` (with `dry_run`, only count them)."""
        ...


class Store(PrivacyStore, Protocol):
    """The storage the collector and the report need: SqliteStore, PostgresStore."""

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

    def profiles(self) -> ProfileStore:
        """The profile storage on the same database."""
        ...

    def close(self) -> None: ...
