"""The PostgreSQL side of `PrivacyStore` (collector/storage/privacy.py): the registry and retention.

The same rules as `SqlitePrivacy`, by the very same statements (store_privacy.py's `put_entries`,
`remove_entries` and `retention`, run through `Placeholders`): every change bumps the one revision
counter, an opt-out withdraws the device's consent and clears its token from stored visits, a strict put
that meets an opted-out device writes nothing, a dry run rolls back after counting. The revision row is
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

from collector.storage.privacy import (
    ListName,
    PrivacySets,
    PutResult,
    RegistryEntry,
    RemoveResult,
    RetentionCounts,
    RetentionCutoffs,
    _revision,
    put_entries,
    read_sets,
    remove_entries,
    retention,
)
from collector.storage.sql import Placeholders
from collector.storage.store import us


class _Pg(Protocol):
    """The parts of PostgresStore this mixin works through."""

    _db: psycopg.Connection[Any]
    _lock: threading.Lock

    def _errors(self, doing: str) -> AbstractContextManager[None]: ...


class PostgresPrivacy:
    """The PostgreSQL side of `PrivacyStore`, mixed into PostgresStore (the SQL is `SqlitePrivacy`'s)."""

    def registry_put(
        self: _Pg, entries: Sequence[RegistryEntry], now: datetime, *, strict: bool = False
    ) -> PutResult:
        with self._lock, self._errors(f"record {len(entries)} registry entries"), self._db.transaction():
            # FOR UPDATE: two collectors putting the same token serialise on its row.
            result = put_entries(Placeholders(self._db), entries, us(now), strict=strict, lock=" FOR UPDATE")
            if not result.applied:
                raise psycopg.Rollback()
        return result

    def registry_remove(self: _Pg, list_: ListName, tokens: Sequence[str]) -> RemoveResult:
        with self._lock, self._errors(f"remove {len(tokens)} {list_} entries"), self._db.transaction():
            return remove_entries(Placeholders(self._db), list_, tokens)

    def registry_sets(self: _Pg) -> PrivacySets:
        with self._lock, self._errors("read the privacy registry"), self._db.transaction():
            return read_sets(Placeholders(self._db))

    def registry_revision(self: _Pg) -> int:
        with self._lock, self._errors("read the privacy registry revision"):
            return _revision(Placeholders(self._db), False)

    def apply_retention(
        self: _Pg, cutoffs: RetentionCutoffs, *, dry_run: bool, label: Callable[[int], str]
    ) -> RetentionCounts:
        with self._lock, self._errors("apply retention"), self._db.transaction():
            counts = retention(Placeholders(self._db), cutoffs, label, "event_id")
            if dry_run:
                raise psycopg.Rollback()  # the exact figures, then nothing kept
        return counts
