"""The profiles and online events in SQL, one text for both backends (each runs it in its transaction).

What `ProfileStore` (collector/storage/base.py) does, written once with `?` placeholders
(collector/storage/sql.py); the backends (sqlite.py, postgres.py) give the connection, the lock and the
transaction. Joins to visits go through the consent registry only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from collector.online.profiles import OnlineEvent, Profile
from collector.storage.base import PutCounts, StoreVisit, us
from collector.storage.sql import Db
from footfall.times import from_us

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
    db.execute("DELETE FROM trigger_log WHERE profile_id = ?", (profile_id,))  # it names the profile too
    return int(profiles), int(events)


class ProfileReads:
    """The reading part of `ProfileStore` both backends share: each gives `query` for its connection."""

    def query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def profile(self, profile_id: str) -> Profile | None:
        rows = self.query(
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
        rows = self.query(
            f"look up the consent of {profile_id}",
            "SELECT 1 FROM privacy_registry WHERE list = 'consent' AND profile = ? LIMIT 1",
            (profile_id,),
        )
        return bool(rows)

    def online_events(self, profile_id: str) -> list[OnlineEvent]:
        rows = self.query(
            f"read the online events of {profile_id}",
            f"SELECT {_EVENT_COLUMNS} FROM online_events WHERE profile_id = ? ORDER BY at_us, id",
            (profile_id,),
        )
        return [_event(r) for r in rows]

    def consented_online_events(self, start: datetime, end: datetime) -> list[OnlineEvent]:
        rows = self.query(
            "read the online events of consented profiles",
            f"SELECT {_EVENT_COLUMNS} FROM online_events WHERE at_us >= ? AND at_us < ? AND profile_id IN"
            " (SELECT profile FROM privacy_registry WHERE list = 'consent') ORDER BY at_us, id",
            (us(start), us(end)),
        )
        return [_event(r) for r in rows]

    def profile_visits(self, profile_id: str) -> list[StoreVisit]:
        rows = self.query(
            f"join the visits of {profile_id}",
            "SELECT v.store, v.sensor, v.start_us, v.end_us, v.dwell_s, v.kind FROM visits v"
            " JOIN privacy_registry r ON r.list = 'consent' AND r.token = v.consent"
            " WHERE r.profile = ? ORDER BY v.start_us, v.store, v.sensor",
            (profile_id,),
        )
        return [StoreVisit(r[0], r[1], from_us(r[2]), from_us(r[3]), r[4], r[5]) for r in rows]

    def count_online_events(self, before: datetime) -> int:
        rows = self.query(
            "count old online events",
            "SELECT count(*) FROM online_events WHERE at_us < ?",
            (us(before),),
        )
        return int(rows[0][0])
