"""The PostgreSQL side of `PrivacyStore` (collector/store_privacy.py): the registry and retention.

The same rules as `SqlitePrivacy`, statement for statement: every change bumps the one revision counter,
an opt-out withdraws the device's consent and clears its token from stored visits, a strict put that
meets an opted-out device writes nothing, a dry run rolls back after counting. The revision row is
updated inside each transaction, so two collectors on one database serialise on it.

What retention deletes or rewrites is left to autovacuum to reclaim; unlike SQLite there is no file to
truncate, and the old row versions are not readable through SQL once the transaction committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

import psycopg

from collector.store_privacy import (
    ConsentedVisit,
    ListName,
    PrivacySets,
    PutOutcome,
    PutResult,
    RegistryEntry,
    RemoveResult,
    RetentionCounts,
    RetentionCutoffs,
    _dt,
    _us,
)


class _Pg(Protocol):
    """The parts of PostgresStore this mixin works through."""

    _db: psycopg.Connection[Any]
    _lock: threading.Lock

    def _errors(self, doing: str) -> AbstractContextManager[None]: ...


def _revision(db: psycopg.Connection[Any], bump: bool) -> int:
    if bump:
        db.execute("UPDATE privacy_revision SET revision = revision + 1 WHERE id = 1")
    row = db.execute("SELECT revision FROM privacy_revision WHERE id = 1").fetchone()
    assert row is not None  # migration 0002 inserts it
    return int(row[0])


def _put(db: psycopg.Connection[Any], e: RegistryEntry, added_us: int) -> PutOutcome:
    if (
        e.list == "consent"
        and db.execute(
            "SELECT 1 FROM privacy_registry WHERE list = 'optout' AND token = %s", (e.token,)
        ).fetchone()
    ):
        return PutOutcome.OPTED_OUT
    new = (e.profile, _us(e.at), e.source)
    old = db.execute(
        "SELECT profile, at_us, source FROM privacy_registry WHERE list = %s AND token = %s FOR UPDATE",
        (e.list, e.token),
    ).fetchone()
    if old is None:
        db.execute(
            "INSERT INTO privacy_registry VALUES (%s, %s, %s, %s, %s, %s)", (e.list, e.token, *new, added_us)
        )
        return PutOutcome.ADDED
    if tuple(old) == new:
        return PutOutcome.UNCHANGED
    db.execute(
        "UPDATE privacy_registry SET profile = %s, at_us = %s, source = %s, added_us = %s"
        " WHERE list = %s AND token = %s",
        (*new, added_us, e.list, e.token),
    )
    return PutOutcome.UPDATED


class PostgresPrivacy:
    """The PostgreSQL side of `PrivacyStore`, mixed into PostgresStore."""

    def registry_put(
        self: _Pg, entries: Sequence[RegistryEntry], now: datetime, *, strict: bool = False
    ) -> PutResult:
        added_us = _us(now)
        with self._lock, self._errors(f"record {len(entries)} registry entries"), self._db.transaction():
            db = self._db
            before = _revision(db, False)
            outcomes = [_put(db, e, added_us) for e in entries]
            if strict and PutOutcome.OPTED_OUT in outcomes:
                result = PutResult(tuple(outcomes), False, 0, 0, before)
                raise psycopg.Rollback()
            withdrawn = cleared = 0
            for token in sorted({e.token for e in entries if e.list == "optout"}):
                withdrawn += db.execute(
                    "DELETE FROM privacy_registry WHERE list = 'consent' AND token = %s", (token,)
                ).rowcount
                cleared += db.execute(
                    "UPDATE visits SET consent = NULL WHERE consent = %s", (token,)
                ).rowcount
            changed = withdrawn + cleared > 0 or any(
                o in (PutOutcome.ADDED, PutOutcome.UPDATED) for o in outcomes
            )
            result = PutResult(tuple(outcomes), True, withdrawn, cleared, _revision(db, changed))
        return result

    def registry_remove(self: _Pg, list_: ListName, tokens: Sequence[str]) -> RemoveResult:
        with self._lock, self._errors(f"remove {len(tokens)} {list_} entries"), self._db.transaction():
            db = self._db
            removed = cleared = 0
            for token in tokens:
                removed += db.execute(
                    "DELETE FROM privacy_registry WHERE list = %s AND token = %s", (list_, token)
                ).rowcount
                if list_ == "consent":
                    cleared += db.execute(
                        "UPDATE visits SET consent = NULL WHERE consent = %s", (token,)
                    ).rowcount
            revision = _revision(db, removed + cleared > 0)
        return RemoveResult(removed, len(set(tokens)) - removed, cleared, revision)

    def registry_entries(self: _Pg, list_: ListName) -> list[RegistryEntry]:
        with self._lock, self._errors(f"list the {list_} registry"):
            rows = self._db.execute(
                "SELECT token, profile, at_us, source FROM privacy_registry WHERE list = %s"
                " ORDER BY added_us, at_us, token",
                (list_,),
            ).fetchall()
        return [RegistryEntry(list_, r[0], r[1], _dt(r[2]), r[3]) for r in rows]

    def registry_sets(self: _Pg) -> PrivacySets:
        with self._lock, self._errors("read the privacy registry"), self._db.transaction():
            rows = self._db.execute("SELECT list, token FROM privacy_registry ORDER BY token").fetchall()
            revision = _revision(self._db, False)
        return PrivacySets(
            revision,
            tuple(t for list_, t in rows if list_ == "optout"),
            tuple(t for list_, t in rows if list_ == "consent"),
        )

    def registry_revision(self: _Pg) -> int:
        with self._lock, self._errors("read the privacy registry revision"):
            return _revision(self._db, False)

    def consented_visits(self: _Pg, store: str, start: datetime, end: datetime) -> list[ConsentedVisit]:
        with self._lock, self._errors(f"join the visits of {store} to consents"):
            rows = self._db.execute(
                "SELECT r.profile, v.sensor, v.start_us, v.end_us, v.dwell_s, v.kind FROM visits v"
                " JOIN privacy_registry r ON r.list = 'consent' AND r.token = v.consent"
                " WHERE v.store = %s AND v.start_us >= %s AND v.start_us < %s ORDER BY v.start_us, r.profile",
                (store, _us(start), _us(end)),
            ).fetchall()
        return [ConsentedVisit(r[0], r[1], _dt(r[2]), _dt(r[3]), r[4], r[5]) for r in rows]

    def apply_retention(
        self: _Pg, cutoffs: RetentionCutoffs, *, dry_run: bool, label: Callable[[int], str]
    ) -> RetentionCounts:
        with self._lock, self._errors("apply retention"), self._db.transaction():
            counts = _retention(self._db, cutoffs, label)
            if dry_run:
                raise psycopg.Rollback()  # the exact figures, then nothing kept
        return counts


def _retention(
    db: psycopg.Connection[Any], cutoffs: RetentionCutoffs, label: Callable[[int], str]
) -> RetentionCounts:
    deleted = db.execute("DELETE FROM visits WHERE end_us < %s", (_us(cutoffs.visits),)).rowcount
    # A whole (store, epoch, device) group gets one label at once, as in SQLite (store_privacy.py).
    due = db.execute(
        "SELECT DISTINCT store, epoch, device FROM visits WHERE pseudonym_dropped = 0 AND end_us < %s",
        (_us(cutoffs.pseudonyms),),
    ).fetchall()
    labels = {tuple(g): label(len(g[2]) // 2) for g in due}
    updates = []
    if labels:
        for event_id, *group in db.execute(
            "SELECT event_id, store, epoch, device FROM visits WHERE pseudonym_dropped = 0"
        ).fetchall():
            new = labels.get(tuple(group))
            if new is not None:
                updates.append((new, event_id))
    with db.cursor() as cursor:
        cursor.executemany(
            "UPDATE visits SET device = %s, pseudonym_dropped = 1 WHERE event_id = %s", updates
        )
    cleared = db.execute(
        "UPDATE visits SET consent = NULL WHERE consent IS NOT NULL AND (end_us < %s OR (pseudonym_dropped = 1"
        " AND consent NOT IN (SELECT token FROM privacy_registry WHERE list = 'consent')))",
        (_us(cutoffs.consents),),
    ).rowcount
    letters = db.execute("DELETE FROM dead_letters WHERE at_us < %s", (_us(cutoffs.pseudonyms),)).rowcount
    return RetentionCounts(deleted, len(updates), len(labels), cleared, letters)
