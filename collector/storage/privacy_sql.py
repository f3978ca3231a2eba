"""The privacy registry and retention in SQL, one text for both backends (each runs it in its transaction).

The rules: every change bumps the one revision counter; an opt-out withdraws the device's consent and
clears its token from stored visits; a strict put that meets an opted-out device writes nothing; retention
gives a whole (store, epoch, device) group one fresh label at once. `?` placeholders (collector/storage/sql.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from collector.storage.base import us
from collector.storage.privacy import (
    ConsentedVisit,
    ListName,
    PrivacySets,
    PutOutcome,
    PutResult,
    RegistryEntry,
    RemoveResult,
    RetentionCounts,
    RetentionCutoffs,
)
from collector.storage.sql import Db
from footfall.times import from_us


def current_revision(db: Db, bump: bool) -> int:
    """The registry's change counter, bumped first when `bump`."""
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
    new = (e.profile, us(e.at), e.source)
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
    before = current_revision(db, False)
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
    return PutResult(tuple(outcomes), True, withdrawn, cleared, current_revision(db, changed))


def read_sets(db: Db) -> PrivacySets:
    """`registry_sets` (in the caller's transaction, where the backend wants one)."""
    rows = db.execute("SELECT list, token FROM privacy_registry ORDER BY token").fetchall()
    revision = current_revision(db, False)
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
    revision = current_revision(db, removed + cleared > 0)
    return RemoveResult(removed, len(set(tokens)) - removed, cleared, revision)


class PrivacyReads:
    """The reading part of `PrivacyStore` both backends share: each gives `query` for its connection."""

    def query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def registry_entries(self, list_: ListName) -> list[RegistryEntry]:
        rows = self.query(
            f"list the {list_} registry",
            "SELECT token, profile, at_us, source FROM privacy_registry WHERE list = ?"
            " ORDER BY added_us, at_us, token",
            (list_,),
        )
        return [RegistryEntry(list_, r[0], r[1], from_us(r[2]), r[3]) for r in rows]

    def consented_visits(self, store: str, start: datetime, end: datetime) -> list[ConsentedVisit]:
        rows = self.query(
            f"join the visits of {store} to consents",
            "SELECT r.profile, v.sensor, v.start_us, v.end_us, v.dwell_s, v.kind, v.connected FROM visits v"
            " JOIN privacy_registry r ON r.list = 'consent' AND r.token = v.consent"
            " WHERE v.store = ? AND v.start_us >= ? AND v.start_us < ? ORDER BY v.start_us, r.profile",
            (store, us(start), us(end)),
        )
        return [
            ConsentedVisit(r[0], r[1], from_us(r[2]), from_us(r[3]), r[4], r[5], bool(r[6])) for r in rows
        ]


def retention(db: Db, cutoffs: RetentionCutoffs, label: Callable[[int], str], key: str) -> RetentionCounts:
    """Retention inside the caller's transaction; `key` names a visit row (rowid, or PostgreSQL's event_id)."""
    deleted = db.execute("DELETE FROM visits WHERE end_us < ?", (us(cutoffs.visits),)).rowcount
    db.execute("DELETE FROM trigger_log WHERE at_us < ?", (us(cutoffs.visits),))  # the visits' triggers
    # A whole (store, epoch, device) group gets one label at once — all sensors of a store share the
    # epoch's pseudonyms, so their visits keep merging — its younger visits too (earlier is only safer):
    # the report's repeat-visitor figure, which counts visits per group, stays right.
    due = db.execute(
        "SELECT DISTINCT store, epoch, device FROM visits WHERE pseudonym_dropped = 0 AND end_us < ?",
        (us(cutoffs.pseudonyms),),
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
        (us(cutoffs.consents),),
    ).rowcount
    # Rejected payloads are kept as samples; a rejected visit may carry a pseudonym too.
    letters = db.execute("DELETE FROM dead_letters WHERE at_us < ?", (us(cutoffs.pseudonyms),)).rowcount
    return RetentionCounts(deleted, len(updates), len(labels), cleared, letters)
