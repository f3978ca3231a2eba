"""Online profiles and their online events: the models and their storage (files: profile_files.py).

A profile is the marketing tool's pseudonymous id with attributes and segments; an online event is one
thing that profile did on the web, in the app or in an e-mail. Both arrive from the API
(collector/api/app.py) or a file (`footfall-collector profiles|events import`), are checked here with
`extra="forbid"` models, and are stored all or nothing: one bad item and the whole batch is refused,
each bad item named with its index or line and why (never its value: it may be personal data).

Online data meets the store visits only through the consent registry: a visit carries its device's
consent token, the registry maps the token to a profile id. `ProfileStore` is the storage seam (SQLite
here, beside `SqliteStore` on the same connection); it never joins a profile without a consent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from collector.privacy.registry import BadRow
from collector.storage.sql import Db
from collector.storage.store import SqliteStore, Store
from footfall.mac import contains_mac
from footfall.times import from_us, to_us, too_far_ahead

ProfileId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
"""Pseudonymous ids from the marketing tool: no spaces, no '/', at most 128 characters."""
Label = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
Text = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
AttributeValue = bool | int | float | Text | None
Channel = Literal["web", "app", "email"]
OnlineEventType = Literal["page_view", "product_view", "add_to_cart", "purchase"]
CHANNELS: tuple[Channel, ...] = ("web", "app", "email")
EVENT_TYPES: tuple[OnlineEventType, ...] = ("page_view", "product_view", "add_to_cart", "purchase")


def _no_mac(text: str, what: str) -> str:
    # The privacy rule: a MAC (in a profile id or attribute by mistake) must not reach the database.
    if contains_mac(text):
        raise ValueError(f"{what} holds something shaped like a MAC address; not stored")
    return text


class Profile(BaseModel):
    """One online profile, replaced whole when sent again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ProfileId = Field(description="the marketing tool's pseudonymous profile id")
    attributes: dict[Label, AttributeValue] = Field(
        default_factory=dict, max_length=100, description="name -> string, number, boolean or null"
    )
    segments: tuple[Label, ...] = Field((), max_length=100, description="segment names")

    @field_validator("id")
    @classmethod
    def _id_not_a_mac(cls, value: str) -> str:
        return _no_mac(value, "id")

    @field_validator("attributes")
    @classmethod
    def _values_not_macs(cls, value: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
        for name, item in value.items():
            if isinstance(item, str):
                _no_mac(item, f"attribute {name}")
        return value

    @field_validator("segments")
    @classmethod
    def _sorted_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(value)))


class OnlineEvent(BaseModel):
    """One online event of a profile; `id` is the source's, so a re-sent event is stored once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ProfileId = Field(description="the source's event id (deduplication key)")
    profile_id: ProfileId
    at: AwareDatetime = Field(description="when it happened, ISO 8601 with an offset")
    channel: Channel
    type: OnlineEventType
    product: Text | None = Field(None, description="product id or SKU, if any")
    value: float | None = Field(None, ge=0, allow_inf_nan=False, description="amount, e.g. of a purchase")

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_validator("product")
    @classmethod
    def _product_not_a_mac(cls, value: str | None) -> str | None:
        return None if value is None else _no_mac(value, "product")


Record = TypeVar("Record", Profile, OnlineEvent)


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


# -- checking ------------------------------------------------------------------------------------------------
def reason(exc: ValidationError) -> str:
    """One line per pydantic error, field path and message only: the input value is never repeated."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors())


def check_batch(
    records: Sequence[Profile | OnlineEvent], now: datetime, where: Sequence[int]
) -> list[BadRow]:
    """What the models alone cannot see: an id twice in one batch, an event in the future.

    `where[i]` is how the caller names record i (its index or line) in the reasons.
    """
    bad: list[BadRow] = []
    first: dict[str, int] = {}
    for record, at in zip(records, where, strict=True):
        if record.id in first and isinstance(record, Profile):
            bad.append(BadRow(at, f"id: profile id also given at {first[record.id]}"))
        first.setdefault(record.id, at)
        if isinstance(record, OnlineEvent) and too_far_ahead(record.at, now):
            bad.append(BadRow(at, f"at: {record.at.isoformat()} is more than a day in the future"))
    return bad


# -- storage -------------------------------------------------------------------------------------------------
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


@runtime_checkable
class OnlineRetention(Protocol):
    """Profile storage that can apply retention to online events (SQLite now; PostgreSQL to follow)."""

    def delete_online_events(self, before: datetime, *, dry_run: bool) -> int:
        """Delete online events that happened before `before` (with `dry_run`, only count them)."""
        ...


_EVENT_COLUMNS = "id, profile_id, at_us, channel, type, product, value"


def _event(row: Sequence[Any]) -> OnlineEvent:
    return OnlineEvent.model_construct(
        id=row[0],
        profile_id=row[1],
        at=from_us(row[2]),
        channel=row[3],
        type=row[4],
        product=row[5],
        value=row[6],
    )


ADD_ONLINE_EVENTS = (
    f"INSERT INTO online_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
DELETE_ONLINE_EVENTS = "DELETE FROM online_events WHERE at_us < ?"


def upsert_profiles(db: Db, profiles: Sequence[Profile], now_us: int, *, lock: str) -> PutCounts:
    """`put_profiles` inside the caller's transaction; `lock` is PostgreSQL's " FOR UPDATE" (or nothing)."""
    added = updated = unchanged = 0
    for p in profiles:
        new = (json.dumps(p.attributes, sort_keys=True), json.dumps(list(p.segments)))
        old = db.execute(f"SELECT attributes, segments FROM profiles WHERE id = ?{lock}", (p.id,)).fetchone()
        if old is not None and tuple(old) == new:
            unchanged += 1
            continue
        db.execute(
            "INSERT INTO profiles VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " attributes = excluded.attributes, segments = excluded.segments, updated_us = excluded.updated_us",
            (p.id, *new, now_us),
        )
        added, updated = (added + 1, updated) if old is None else (added, updated + 1)
    return PutCounts(added, updated, unchanged)


def erase_profile(db: Db, profile_id: str) -> tuple[int, int]:
    """`erase` inside the caller's transaction."""
    profiles = db.execute("DELETE FROM profiles WHERE id = ?", (profile_id,)).rowcount
    events = db.execute("DELETE FROM online_events WHERE profile_id = ?", (profile_id,)).rowcount
    return int(profiles), int(events)


class ProfileReads:
    """The reading part of `ProfileStore` both backends share: each gives `_query` for its connection."""

    def _query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    # Each backend's datetime -> microseconds (they differ only in the exception a naive time raises).
    _time: Callable[[datetime], int] = staticmethod(to_us)

    def profile(self, profile_id: str) -> Profile | None:
        rows = self._query(
            f"read profile {profile_id}",
            "SELECT attributes, segments FROM profiles WHERE id = ?",
            (profile_id,),
        )
        if not rows:
            return None
        return Profile.model_construct(
            id=profile_id, attributes=json.loads(rows[0][0]), segments=tuple(json.loads(rows[0][1]))
        )

    def consented(self, profile_id: str) -> bool:
        rows = self._query(
            f"look up the consent of {profile_id}",
            "SELECT 1 FROM privacy_registry WHERE list = 'consent' AND profile = ? LIMIT 1",
            (profile_id,),
        )
        return bool(rows)

    def online_events(self, profile_id: str) -> list[OnlineEvent]:
        rows = self._query(
            f"read the online events of {profile_id}",
            f"SELECT {_EVENT_COLUMNS} FROM online_events WHERE profile_id = ? ORDER BY at_us, id",
            (profile_id,),
        )
        return [_event(r) for r in rows]

    def consented_online_events(self, start: datetime, end: datetime) -> list[OnlineEvent]:
        rows = self._query(
            "read the online events of consented profiles",
            f"SELECT {_EVENT_COLUMNS} FROM online_events WHERE at_us >= ? AND at_us < ? AND profile_id IN"
            " (SELECT profile FROM privacy_registry WHERE list = 'consent') ORDER BY at_us, id",
            (self._time(start), self._time(end)),
        )
        return [_event(r) for r in rows]

    def profile_visits(self, profile_id: str) -> list[StoreVisit]:
        rows = self._query(
            f"join the visits of {profile_id}",
            "SELECT v.store, v.sensor, v.start_us, v.end_us, v.dwell_s, v.kind FROM visits v"
            " JOIN privacy_registry r ON r.list = 'consent' AND r.token = v.consent"
            " WHERE r.profile = ? ORDER BY v.start_us, v.store, v.sensor",
            (profile_id,),
        )
        return [StoreVisit(r[0], r[1], from_us(r[2]), from_us(r[3]), r[4], r[5]) for r in rows]

    def _count_online_events(self, before: datetime) -> int:
        rows = self._query(
            "count old online events",
            "SELECT count(*) FROM online_events WHERE at_us < ?",
            (self._time(before),),
        )
        return int(rows[0][0])


class SqliteProfiles(ProfileReads):
    """The SQLite side of `ProfileStore`, on the connection (and lock) of an open `SqliteStore`."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._db: sqlite3.Connection = store._db
        self._lock = store._lock

    def _errors(self, doing: str) -> AbstractContextManager[None]:
        return self._store._errors(doing)

    def _query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors(doing):
            return self._db.execute(sql, params).fetchall()

    def put_profiles(self, profiles: Sequence[Profile], now: datetime) -> PutCounts:
        with self._lock, self._errors(f"store {len(profiles)} profiles"), self._store._transaction():
            return upsert_profiles(self._db, profiles, self._time(now), lock="")

    def add_online_events(self, events: Sequence[OnlineEvent]) -> int:
        rows = [(e.id, e.profile_id, to_us(e.at), e.channel, e.type, e.product, e.value) for e in events]
        with self._lock, self._errors(f"store {len(events)} online events"), self._store._transaction():
            before = self._db.total_changes
            self._db.executemany(ADD_ONLINE_EVENTS, rows)
            return self._db.total_changes - before

    def consent_profiles(self, tokens: Sequence[str]) -> dict[str, str]:
        wanted = sorted(set(tokens))
        if not wanted:
            return {}
        rows = self._query(
            "look up consent tokens",
            "SELECT token, profile FROM privacy_registry WHERE list = 'consent'"
            f" AND token IN ({', '.join('?' * len(wanted))})",
            wanted,
        )
        return {str(t): str(p) for t, p in rows}

    def delete_online_events(self, before: datetime, *, dry_run: bool) -> int:
        if dry_run:
            return self._count_online_events(before)
        with self._lock, self._errors("delete old online events"), self._store._transaction():
            return int(self._db.execute(DELETE_ONLINE_EVENTS, (to_us(before),)).rowcount)

    def erase(self, profile_id: str) -> tuple[int, int]:
        with self._lock, self._errors(f"erase profile {profile_id}"), self._store._transaction():
            return erase_profile(self._db, profile_id)


def open_profiles(db: Store) -> ProfileStore:
    """The profile storage of an open store (one entry per backend, as in `open_store`)."""
    if isinstance(db, SqliteStore):
        return SqliteProfiles(db)
    other: Callable[[], ProfileStore] | None = getattr(db, "profile_store", None)  # PostgresStore
    if other is not None:
        return other()
    raise TypeError(f"no profile storage for a {type(db).__name__}")
