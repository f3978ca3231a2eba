"""The store's privacy part: the opt-out and consent registry, and retention; interface and SQLite side.

`PrivacyStore` is what collector/privacy/registry.py and collector/privacy/retention.py need; `Store` (collector/storage/store.py)
includes it, and `SqlitePrivacy` is the SQLite implementation `SqliteStore` mixes in. The registry holds
tokens, never a MAC address (they are tokenised before they get here). Every change to it bumps one
counter, the revision the control message carries.

Deleting or rewriting a row in SQLite leaves the old bytes in free pages and in the WAL; the store runs
with `secure_delete` on (freed space is zeroed) and retention truncates the WAL after it changed
anything, so what retention removes is gone from the files, not just from the tables.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol, cast

from collector.storage.sql import Db
from footfall.times import from_us, to_us

ListName = Literal["optout", "consent"]
LISTS: tuple[ListName, ...] = ("optout", "consent")


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One opt-out or consent: the device's token, never its MAC."""

    list: ListName
    token: str
    profile: str  # "" when the source gave none (opt-outs may be anonymous)
    at: datetime  # aware: when the person opted out or consented
    source: str


class PutOutcome(StrEnum):
    ADDED = "added"
    UPDATED = "updated"  # same token, another profile, time or source: the newer record wins
    UNCHANGED = "unchanged"
    OPTED_OUT = "opted_out"  # a consent for an opted-out device: refused until the opt-out is removed


@dataclass(frozen=True, slots=True)
class PutResult:
    outcomes: tuple[PutOutcome, ...]  # one per entry, in order
    applied: bool  # False: strict and something was refused, so nothing was written
    consents_withdrawn: int  # consents removed because the same device opted out
    visit_tokens_cleared: int  # stored visits that lost the consent token of a device now opted out
    revision: int


@dataclass(frozen=True, slots=True)
class RemoveResult:
    removed: int
    missing: int  # tokens that were not registered
    visit_tokens_cleared: int  # stored visits that lost a withdrawn consent token
    revision: int


@dataclass(frozen=True, slots=True)
class PrivacySets:
    """What the control message publishes: tokens only, sorted."""

    revision: int
    optout: tuple[str, ...]
    consent: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConsentedVisit:
    """A stored visit joined to the profile that consented for its device."""

    profile: str
    sensor: str
    start: datetime
    end: datetime
    dwell_s: float
    kind: str


@dataclass(frozen=True, slots=True)
class RetentionCutoffs:
    """Rows that ended before each of these instants lose what the field names (aware UTC)."""

    pseudonyms: datetime
    consents: datetime
    visits: datetime


@dataclass(frozen=True, slots=True)
class RetentionCounts:
    visits_deleted: int = 0
    pseudonyms_dropped: int = 0  # visits whose device pseudonym became a random label
    devices_relabelled: int = 0  # (store, epoch, device) groups: one fresh label each
    consent_tokens_cleared: int = 0
    dead_letters_deleted: int = 0

    def items(self) -> list[tuple[str, int]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    @property
    def changed(self) -> bool:
        return any(n for _, n in self.items())


class PrivacyStore(Protocol):
    def registry_put(
        self, entries: Sequence[RegistryEntry], now: datetime, *, strict: bool = False
    ) -> PutResult:
        """Add or update entries; an opt-out withdraws the device's consent and its tokens on visits."""
        ...

    def registry_remove(self, list_: ListName, tokens: Sequence[str]) -> RemoveResult:
        """Remove entries; removing a consent also clears its token from stored visits."""
        ...

    def registry_entries(self, list_: ListName) -> list[RegistryEntry]:
        """The list, oldest record first."""
        ...

    def registry_sets(self) -> PrivacySets: ...

    def registry_revision(self) -> int:
        """The change counter alone (cheap: polled by the service)."""
        ...

    def consented_visits(self, store: str, start: datetime, end: datetime) -> list[ConsentedVisit]:
        """Visits of `store` started in [start, end) whose consent token belongs to a registered consent."""
        ...

    def apply_retention(
        self, cutoffs: RetentionCutoffs, *, dry_run: bool, label: Callable[[int], str]
    ) -> RetentionCounts:
        """Delete and anonymise per `cutoffs`; `label(n)` gives a fresh random label of n bytes, in hex."""
        ...


class _Sqlite(Protocol):
    """The parts of SqliteStore this mixin works through."""

    _db: sqlite3.Connection
    _lock: threading.Lock

    def _errors(self, doing: str) -> AbstractContextManager[None]: ...

    def _transaction(self) -> AbstractContextManager[None]: ...


class _Abort(Exception):
    """Raised inside a transaction to roll it back (strict refusals, dry runs) with a result in hand."""

    def __init__(self, result: object) -> None:
        super().__init__("rolled back")
        self.result = result


def _revision(db: Db, bump: bool) -> int:
    if bump:
        db.execute("UPDATE privacy_revision SET revision = revision + 1 WHERE id = 1")
    row = db.execute("SELECT revision FROM privacy_revision WHERE id = 1").fetchone()
    assert row is not None  # migration 0002 inserts it
    return int(row[0])


def _put(db: Db, e: RegistryEntry, added_us: int, lock: str) -> PutOutcome:
    if (
        e.list == "consent"
        and db.execute(
            "SELECT 1 FROM privacy_registry WHERE list = 'optout' AND token = ?", (e.token,)
        ).fetchone()
    ):
        return PutOutcome.OPTED_OUT
    new = (e.profile, to_us(e.at), e.source)
    old = db.execute(
        f"SELECT profile, at_us, source FROM privacy_registry WHERE list = ? AND token = ?{lock}",
        (e.list, e.token),
    ).fetchone()
    if old is None:
        db.execute(
            "INSERT INTO privacy_registry VALUES (?, ?, ?, ?, ?, ?)", (e.list, e.token, *new, added_us)
        )
        return PutOutcome.ADDED
    if tuple(old) == new:
        return PutOutcome.UNCHANGED
    db.execute(
        "UPDATE privacy_registry SET profile = ?, at_us = ?, source = ?, added_us = ? WHERE list = ? AND token = ?",
        (*new, added_us, e.list, e.token),
    )
    return PutOutcome.UPDATED


def put_entries(
    db: Db, entries: Sequence[RegistryEntry], added_us: int, *, strict: bool, lock: str
) -> PutResult:
    """`registry_put` inside the caller's transaction; not `applied`: the caller rolls it back."""
    before = _revision(db, False)
    outcomes = [_put(db, e, added_us, lock) for e in entries]
    if strict and PutOutcome.OPTED_OUT in outcomes:
        return PutResult(tuple(outcomes), False, 0, 0, before)
    withdrawn = cleared = 0
    for token in sorted({e.token for e in entries if e.list == "optout"}):
        withdrawn += db.execute(
            "DELETE FROM privacy_registry WHERE list = 'consent' AND token = ?", (token,)
        ).rowcount
        cleared += db.execute("UPDATE visits SET consent = NULL WHERE consent = ?", (token,)).rowcount
    changed = withdrawn + cleared > 0 or any(o in (PutOutcome.ADDED, PutOutcome.UPDATED) for o in outcomes)
    return PutResult(tuple(outcomes), True, withdrawn, cleared, _revision(db, changed))


def read_sets(db: Db) -> PrivacySets:
    """`registry_sets` (in the caller's transaction, where the backend wants one)."""
    rows = db.execute("SELECT list, token FROM privacy_registry ORDER BY token").fetchall()
    revision = _revision(db, False)
    return PrivacySets(
        revision,
        tuple(t for list_, t in rows if list_ == "optout"),
        tuple(t for list_, t in rows if list_ == "consent"),
    )


def remove_entries(db: Db, list_: ListName, tokens: Sequence[str]) -> RemoveResult:
    """`registry_remove` inside the caller's transaction."""
    removed = cleared = 0
    for token in tokens:
        removed += db.execute(
            "DELETE FROM privacy_registry WHERE list = ? AND token = ?", (list_, token)
        ).rowcount
        if list_ == "consent":
            cleared += db.execute("UPDATE visits SET consent = NULL WHERE consent = ?", (token,)).rowcount
    revision = _revision(db, removed + cleared > 0)
    return RemoveResult(removed, len(set(tokens)) - removed, cleared, revision)


class PrivacyReads:
    """The reading part of `PrivacyStore` both backends share: each gives `_query` for its connection."""

    def _query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def registry_entries(self, list_: ListName) -> list[RegistryEntry]:
        rows = self._query(
            f"list the {list_} registry",
            "SELECT token, profile, at_us, source FROM privacy_registry WHERE list = ?"
            " ORDER BY added_us, at_us, token",
            (list_,),
        )
        return [RegistryEntry(list_, r[0], r[1], from_us(r[2]), r[3]) for r in rows]

    def consented_visits(self, store: str, start: datetime, end: datetime) -> list[ConsentedVisit]:
        rows = self._query(
            f"join the visits of {store} to consents",
            "SELECT r.profile, v.sensor, v.start_us, v.end_us, v.dwell_s, v.kind FROM visits v"
            " JOIN privacy_registry r ON r.list = 'consent' AND r.token = v.consent"
            " WHERE v.store = ? AND v.start_us >= ? AND v.start_us < ? ORDER BY v.start_us, r.profile",
            (store, to_us(start), to_us(end)),
        )
        return [ConsentedVisit(r[0], r[1], from_us(r[2]), from_us(r[3]), r[4], r[5]) for r in rows]


class SqlitePrivacy:
    """The SQLite side of `PrivacyStore`, mixed into SqliteStore."""

    # -- registry -------------------------------------------------------------------------------------------
    def registry_put(
        self: _Sqlite, entries: Sequence[RegistryEntry], now: datetime, *, strict: bool = False
    ) -> PutResult:
        try:
            with self._lock, self._errors(f"record {len(entries)} registry entries"), self._transaction():
                result = put_entries(self._db, entries, to_us(now), strict=strict, lock="")
                if not result.applied:
                    raise _Abort(result)
                return result
        except _Abort as abort:
            return cast("PutResult", abort.result)

    def registry_remove(self: _Sqlite, list_: ListName, tokens: Sequence[str]) -> RemoveResult:
        with self._lock, self._errors(f"remove {len(tokens)} {list_} entries"), self._transaction():
            return remove_entries(self._db, list_, tokens)

    def registry_sets(self: _Sqlite) -> PrivacySets:
        with self._lock, self._errors("read the privacy registry"):
            return read_sets(self._db)

    def registry_revision(self: _Sqlite) -> int:
        with self._lock, self._errors("read the privacy registry revision"):
            return _revision(self._db, False)

    # -- retention --------------------------------------------------------------------------------------------
    def apply_retention(
        self: _Sqlite, cutoffs: RetentionCutoffs, *, dry_run: bool, label: Callable[[int], str]
    ) -> RetentionCounts:
        try:
            with self._lock, self._errors("apply retention"), self._transaction():
                counts = retention(self._db, cutoffs, label, "rowid")
                if dry_run:
                    raise _Abort(counts)  # the exact figures, then nothing kept
        except _Abort as abort:
            return cast("RetentionCounts", abort.result)
        if counts.changed:
            with self._lock, self._errors("truncate the write-ahead log"):
                # The WAL still holds the old page images (the pseudonyms just dropped) until it is reused.
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return counts


def retention(db: Db, cutoffs: RetentionCutoffs, label: Callable[[int], str], key: str) -> RetentionCounts:
    """Retention inside the caller's transaction; `key` names a visit row (rowid, or PostgreSQL's event_id)."""
    deleted = db.execute("DELETE FROM visits WHERE end_us < ?", (to_us(cutoffs.visits),)).rowcount
    # A whole (store, epoch, device) group gets one label at once — all sensors of a store share the
    # epoch's pseudonyms, so their visits keep merging — its younger visits too (earlier is only safer):
    # the report's repeat-visitor figure, which counts visits per group, stays right.
    due = db.execute(
        "SELECT DISTINCT store, epoch, device FROM visits WHERE pseudonym_dropped = 0 AND end_us < ?",
        (to_us(cutoffs.pseudonyms),),
    ).fetchall()
    labels = {tuple(g): label(len(g[2]) // 2) for g in due}
    updates = []
    if labels:
        for row_key, *group in db.execute(
            f"SELECT {key}, store, epoch, device FROM visits WHERE pseudonym_dropped = 0"
        ).fetchall():
            new = labels.get(tuple(group))
            if new is not None:
                updates.append((new, row_key))
    db.executemany(f"UPDATE visits SET device = ?, pseudonym_dropped = 1 WHERE {key} = ?", updates)
    # Consent tokens stay (by consent) on visits whose device still consents, until cutoffs.consents.
    cleared = db.execute(
        "UPDATE visits SET consent = NULL WHERE consent IS NOT NULL AND (end_us < ? OR (pseudonym_dropped = 1"
        " AND consent NOT IN (SELECT token FROM privacy_registry WHERE list = 'consent')))",
        (to_us(cutoffs.consents),),
    ).rowcount
    # Rejected payloads are kept as samples; a rejected visit may carry a pseudonym too.
    letters = db.execute("DELETE FROM dead_letters WHERE at_us < ?", (to_us(cutoffs.pseudonyms),)).rowcount
    return RetentionCounts(deleted, len(updates), len(labels), cleared, letters)
