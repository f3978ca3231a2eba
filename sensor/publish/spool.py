"""Store and forward: every event is on disk before it is sent, and leaves only once it is safe.

Safe is, by `spool.release`: `stored` (the default), the collector's store acknowledgement (`release`,
sensor/publish/storeacks.py), end to end; `broker`, the broker's PUBACK (`mark_acked`), as below.

`Spool` is the durable queue: SQLite in WAL mode, one row per event, written (and with `sync: full`,
fsynced) before `put` returns. `sensor.publish.forwarder.Forwarder` moves it to the broker in order, QoS 1, at most
`inflight` events awaiting their PUBACK, marks an event acknowledged only on its PUBACK, and after a
reconnection sends again what is not acknowledged. Paho's in-memory queue never holds more than that
window, so a long outage costs disk, not memory, and a killed sensor loses nothing it had queued:
on restart every unacknowledged row is sent again (the collector drops duplicates by event id).

A broker can acknowledge an event and then crash before passing it on. Acknowledged rows are kept for
`keep_acked_s` and sent again after every reconnection, which covers that window at the price of a
few duplicates.

Bounds and the full policy: the spool holds at most `max_events` rows and `max_bytes` of payload.
When a new event would not fit, acknowledged rows go first (they are delivered), then pending events
in the policy's order: `drop_visits_first` drops the oldest visit events, then statuses, and counts
last (the aggregate figures are what a store is billed on); `drop_oldest` ignores the kind. Pending
events older than `max_age_s` are dropped too. Every drop is counted by cause and kind (the counts
survive restarts), logged at WARNING (once a minute per cause, with how many since) and reported in
`stats()`. The ids of the newest `DROPPED_KEPT` dropped events are kept too (`dropped_ids()`; on a
full disk the older half of them gives way first): an event id is a random name, not personal data,
and with it an audit tells a drop that really lost an event from one whose event the collector had
stored before the acknowledgement came back (a broker killed between passing an event on and its
PUBACK). An event the policy values more than the new one is never dropped for it: the new one is
refused instead (and counted). A disk that is really full (SQLITE_FULL) is met the same way: drop by
the policy, try again twice freeing more, and count the event as `unwritable` if it still does not fit.
The figures and the rate-limited warnings are in sensor/publish/spoolstats.py.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from footfall.events import Event, StatusEvent, topic_for, topic_kind
from footfall.sqlite import immediate_transaction
from sensor.publish.spoolstats import SpoolStats, Warner

__all__ = ["DROPPED_KEPT", "DROP_RANK", "Entry", "FullPolicy", "Spool", "SpoolError", "SpoolStats", "Sync"]

log = logging.getLogger(__name__)

FullPolicy = Literal["drop_visits_first", "drop_oldest"]
Sync = Literal["full", "normal"]

# Kind → order in which pending events are given up when the spool is full (lowest first).
DROP_RANK: Mapping[str, Mapping[str, int]] = {
    "drop_visits_first": {"visit_open": 0, "visit": 0, "status": 1, "count": 2},
    "drop_oldest": {"visit_open": 0, "visit": 0, "status": 0, "count": 0},
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    queued_at REAL NOT NULL,
    acked_at REAL
);
CREATE INDEX IF NOT EXISTS pending_by_kind ON events (kind, seq) WHERE acked_at IS NULL;
CREATE INDEX IF NOT EXISTS pending_by_age ON events (queued_at) WHERE acked_at IS NULL;
CREATE INDEX IF NOT EXISTS acked_by_age ON events (acked_at) WHERE acked_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dropped (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    cause TEXT NOT NULL,
    dropped_at REAL NOT NULL
);
"""
DROPPED_KEPT = 10_000  # ids of the newest drops kept for an audit; older ones live on in the counters
_DISK_FULL_SLACK = (None, 0.01, 0.10)  # a first try, then two after SQLITE_FULL freeing 1% and 10% more


class SpoolError(Exception):
    """The spool file cannot be opened or used; names the file."""


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    event_id: str
    kind: str
    topic: str
    payload: bytes
    retain: bool


class Spool:
    """A durable FIFO of event payloads; thread-safe (the pipeline puts, the forwarder takes)."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_events: int = 1_000_000,
        max_age_s: float = 7 * 86_400,
        on_full: FullPolicy = "drop_visits_first",
        keep_acked_s: float = 120.0,
        sync: Sync = "full",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.max_bytes, self.max_events, self.max_age_s = max_bytes, max_events, max_age_s
        self.keep_acked_s = keep_acked_s
        self._rank = DROP_RANK[on_full]
        self._policy = on_full
        self._clock = clock
        self._lock = threading.RLock()
        self._warn = Warner(log, clock)
        self._rows = self._bytes = self._pending = self._pending_bytes = 0
        self._totals: dict[str, int] = {}
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            self._db.executescript(_SCHEMA)
            self._reload()
        except sqlite3.Error as exc:
            raise SpoolError(f"{self.path}: cannot open the spool: {exc}") from None
        if self._pending:
            log.info("spool %s: %d events from an earlier run still to send", self.path, self._pending)

    # -- in ---------------------------------------------------------------------------------------------
    def put_event(self, event: Event, prefix: str) -> bool:
        """Queue an event for `<prefix>/<store>/<sensor>/<kind>`; statuses are retained."""
        payload = event.to_json()
        retain = isinstance(event, StatusEvent)
        return self.put(event.event_id, topic_kind(event), topic_for(prefix, event), payload, retain=retain)

    def put(self, event_id: str, kind: str, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Queue one event durably; False if it was queued already or could not be kept (counted)."""
        size = len(payload)
        with self._lock:
            # After SQLITE_FULL, free what the event needs plus some slack, then try again.
            for slack in _DISK_FULL_SLACK:
                try:
                    with immediate_transaction(
                        self._db
                    ):  # one commit (one fsync) for the drops and the event
                        if self._db.execute(
                            "SELECT 1 FROM events WHERE event_id = ?", (event_id,)
                        ).fetchone():
                            self._count("already_queued", 1)
                            return False
                        if not self._make_room(event_id, size, kind, slack):
                            return False
                        self._db.execute(
                            "INSERT INTO events (event_id, kind, topic, payload, size, retain, queued_at)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (event_id, kind, topic, payload, size, int(retain), self._clock()),
                        )
                        self._count("queued", 1)
                except sqlite3.Error as exc:
                    self._reload()  # a rolled-back transaction: the figures in memory are off
                    if _is_full(exc) and slack != _DISK_FULL_SLACK[-1]:
                        continue
                    self._count_outside("dropped_unwritable_" + kind, 1)
                    self._warn.warn(
                        "unwritable", 1, "spool %s cannot store a %s event: %s", self.path, kind, exc
                    )
                    return False
                self._rows, self._bytes = self._rows + 1, self._bytes + size
                self._pending, self._pending_bytes = self._pending + 1, self._pending_bytes + size
                return True
        return False  # not reached: the last slack returns

    def _make_room(self, event_id: str, size: int, kind: str, slack: float | None) -> bool:
        """Drop acknowledged rows, then pending ones by the policy, until one more `size` bytes fit.

        Only events the policy values no more than the new one are dropped; if that is not enough, the
        new event is the one dropped (False). `slack` (after SQLITE_FULL) frees that fraction more.
        """
        budget = self.max_bytes if slack is None else min(self.max_bytes, int(self._bytes * (1 - slack)))
        if slack is not None:  # a full disk: the record of past drops gives way (its counters stay)
            self._db.execute(
                "DELETE FROM dropped WHERE seq <= (SELECT (MIN(seq) + MAX(seq)) / 2 FROM dropped)"
            )
        excess_rows = self._rows + 1 - self.max_events
        excess_bytes = self._bytes + size - budget
        if excess_rows <= 0 and excess_bytes <= 0:
            return True
        excess_rows, excess_bytes = self._drop_acked(excess_rows, excess_bytes)
        if excess_rows <= 0 and excess_bytes <= 0:
            return True
        dropped: dict[str, int] = {}
        victims = self._victims(
            tuple(k for k, r in self._rank.items() if r <= self._rank.get(kind, 0)), excess_rows, excess_bytes
        )
        fits = victims is not None
        with immediate_transaction(self._db):
            for seq, vkind, vsize, _ in victims or ():
                dropped[vkind] = dropped.get(vkind, 0) + 1
                self._rows, self._bytes = self._rows - 1, self._bytes - vsize
                self._pending, self._pending_bytes = self._pending - 1, self._pending_bytes - vsize
                self._db.execute("DELETE FROM events WHERE seq = ?", (seq,))
            if not fits:
                dropped[kind] = dropped.get(kind, 0) + 1
            for vkind, n in dropped.items():
                self._count(f"dropped_full_{vkind}", n)
            gone = [(v[3], v[1]) for v in victims] if victims is not None else [(event_id, kind)]
            self._record_drops(gone, "full")
        self._warn.warn(
            "full",
            sum(dropped.values()),
            "spool %s full (%d events, %d bytes; limits %d, %d): dropped %s by %s to %s a new %s event",
            self.path,
            self._rows,
            self._bytes,
            self.max_events,
            self.max_bytes,
            ", ".join(f"{n} {k}" for k, n in sorted(dropped.items())),
            self._policy,
            "keep" if fits else "refuse",
            kind,
        )
        return fits

    def _victims(
        self, kinds: tuple[str, ...], excess_rows: int, excess_bytes: int
    ) -> list[tuple[int, str, int, str]] | None:
        """Pending events to drop, policy order then oldest first; None if those of `kinds` are too few."""
        chosen = []
        for rank in sorted({self._rank[k] for k in kinds}):
            group = [k for k in kinds if self._rank[k] == rank]
            args: tuple[str, ...] = ()
            if set(group) == set(self._rank):  # every kind alike: the table's own order, no filter
                sql = "SELECT seq, kind, size, event_id FROM events WHERE acked_at IS NULL ORDER BY seq"
            else:  # one partial-index range per group (the spool may hold a million rows)
                marks = ", ".join("?" * len(group))
                sql = (
                    "SELECT seq, kind, size, event_id FROM events"
                    f" WHERE acked_at IS NULL AND kind IN ({marks}) ORDER BY seq"
                )
                args = tuple(group)
            cursor = self._db.execute(sql, args)
            for seq, vkind, vsize, vid in cursor:
                if excess_rows <= 0 and excess_bytes <= 0:
                    break
                chosen.append((seq, vkind, vsize, vid))
                excess_rows, excess_bytes = excess_rows - 1, excess_bytes - vsize
            cursor.close()
        return chosen if excess_rows <= 0 and excess_bytes <= 0 else None

    def _drop_acked(self, excess_rows: int, excess_bytes: int) -> tuple[int, int]:
        rows = self._db.execute(
            "SELECT seq, size FROM events WHERE acked_at IS NOT NULL ORDER BY acked_at LIMIT ?",
            (max(excess_rows, 256),),
        ).fetchall()
        chosen = []
        for seq, size in rows:
            if excess_rows <= 0 and excess_bytes <= 0:
                break
            chosen.append((seq,))
            excess_rows, excess_bytes = excess_rows - 1, excess_bytes - size
            self._rows, self._bytes = self._rows - 1, self._bytes - size
        if chosen:
            with immediate_transaction(self._db):
                self._db.executemany("DELETE FROM events WHERE seq = ?", chosen)
        return excess_rows, excess_bytes

    # -- out --------------------------------------------------------------------------------------------
    def pending(self, after_seq: int = 0, limit: int = 100) -> list[Entry]:
        """Unacknowledged events after `after_seq`, oldest first."""
        return self._entries("seq > ? AND acked_at IS NULL ORDER BY seq LIMIT ?", (after_seq, limit))

    def recently_acked(self) -> list[Entry]:
        """Acknowledged events still kept (see `keep_acked_s`), oldest first."""
        return self._entries("acked_at >= ? ORDER BY seq", (self._clock() - self.keep_acked_s,))

    def _entries(self, where: str, args: tuple[float, ...]) -> list[Entry]:
        with self._lock, self._errors("read events"):
            sql = f"SELECT seq, event_id, kind, topic, payload, retain FROM events WHERE {where}"
            rows = self._db.execute(sql, args).fetchall()
        return [Entry(r[0], r[1], r[2], r[3], bytes(r[4]), bool(r[5])) for r in rows]

    def mark_acked(self, seqs: Iterable[int]) -> int:
        """The broker acknowledged these: keep them `keep_acked_s` longer (or delete at once if 0)."""
        keys = [(s,) for s in seqs]
        if not keys:
            return 0
        with self._lock, self._errors("mark events acknowledged"), immediate_transaction(self._db):
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS acked (seq INTEGER PRIMARY KEY)")
            self._db.execute("DELETE FROM temp.acked")
            self._db.executemany("INSERT OR IGNORE INTO temp.acked VALUES (?)", keys)
            where = "acked_at IS NULL AND seq IN (SELECT seq FROM temp.acked)"
            n, size = self._db.execute(
                f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events WHERE {where}"
            ).fetchone()
            if self.keep_acked_s > 0:
                self._db.execute(f"UPDATE events SET acked_at = ? WHERE {where}", (self._clock(),))
            else:
                self._db.execute(f"DELETE FROM events WHERE {where}")
                self._rows, self._bytes = self._rows - n, self._bytes - size
            self._count("acked", n)
            self._pending, self._pending_bytes = self._pending - n, self._pending_bytes - size
        return int(n)

    def mark_unacked(self, seqs: Iterable[int]) -> int:
        """Pending again: a re-sent event the broker did not pass on (end to end, it must go out again)."""
        keys = [(s,) for s in seqs]
        if not keys:
            return 0
        with self._lock, self._errors("mark events pending again"), immediate_transaction(self._db):
            n = size = 0
            for (seq,) in keys:
                row = self._db.execute(
                    "SELECT size FROM events WHERE seq = ? AND acked_at IS NOT NULL", (seq,)
                ).fetchone()
                if row is not None:
                    self._db.execute("UPDATE events SET acked_at = NULL WHERE seq = ?", (seq,))
                    n, size = n + 1, size + row[0]
            self._pending, self._pending_bytes = self._pending + n, self._pending_bytes + size
        return n

    def release(self, event_ids: Iterable[str]) -> int:
        """The collector stored these (footfall/acks.py): delete them, whether the broker acknowledged them yet
        or not; returns how many were here. Ids the spool does not hold (released already) are ignored."""
        keys = [(i,) for i in event_ids]
        if not keys:
            return 0
        with self._lock, self._errors("release stored events"), immediate_transaction(self._db):
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS stored (event_id TEXT PRIMARY KEY)")
            self._db.execute("DELETE FROM temp.stored")
            self._db.executemany("INSERT OR IGNORE INTO temp.stored VALUES (?)", keys)
            where = "event_id IN (SELECT event_id FROM temp.stored)"
            n, size, n_pending, size_pending = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COUNT(*) - COUNT(acked_at),"
                f" COALESCE(SUM(CASE WHEN acked_at IS NULL THEN size END), 0) FROM events WHERE {where}"
            ).fetchone()
            self._db.execute(f"DELETE FROM events WHERE {where}")
            self._count("stored", n)
            self._rows, self._bytes = self._rows - n, self._bytes - size
            self._pending, self._pending_bytes = self._pending - n_pending, self._pending_bytes - size_pending
        return int(n)

    def expire(self) -> int:
        """Forget acknowledged rows past `keep_acked_s`; drop pending ones past `max_age_s` (counted)."""
        now = self._clock()
        gone = (
            ("acked_at < ?", now - self.keep_acked_s),
            ("acked_at IS NULL AND queued_at < ?", now - self.max_age_s),
        )
        total = 0
        with self._lock, self._errors("expire old events"), immediate_transaction(self._db):
            for i, (where, cutoff) in enumerate(gone):
                sql = f"SELECT kind, COUNT(*), SUM(size) FROM events WHERE {where} GROUP BY kind"
                for kind, n, size in self._db.execute(sql, (cutoff,)).fetchall():
                    self._rows, self._bytes = self._rows - n, self._bytes - size
                    if i:  # unsent: a loss, counted
                        self._pending, self._pending_bytes = self._pending - n, self._pending_bytes - size
                        self._count(f"dropped_expired_{kind}", n)
                        total += n
                if i:
                    lost = self._db.execute(f"SELECT event_id, kind FROM events WHERE {where}", (cutoff,))
                    self._record_drops(lost.fetchall(), "expired")
                self._db.execute(f"DELETE FROM events WHERE {where}", (cutoff,))
        if total:
            self._warn.warn(
                "expired",
                total,
                "spool %s: dropped %d events unsent after %g s",
                self.path,
                total,
                self.max_age_s,
            )
        return total

    # -- figures ----------------------------------------------------------------------------------------
    @property
    def pending_count(self) -> int:
        return self._pending

    @property
    def unreleased_count(self) -> int:
        """Events still in the spool, acknowledged by the broker or not (end to end: not stored yet)."""
        return self._rows

    def stats(self) -> SpoolStats:
        with self._lock, self._errors("read its figures"):
            oldest = self._db.execute("SELECT MIN(queued_at) FROM events WHERE acked_at IS NULL").fetchone()[
                0
            ]
            return SpoolStats(
                pending=self._pending,
                pending_bytes=self._pending_bytes,
                kept_acked=self._rows - self._pending,
                oldest_pending_age_s=max(0.0, self._clock() - oldest) if oldest is not None else 0.0,
                totals=dict(self._totals),
            )

    def dropped_ids(self) -> list[tuple[str, str, str]]:
        """(event id, kind, cause) of the newest DROPPED_KEPT events the spool gave up, oldest first."""
        with self._lock, self._errors("read its dropped events"):
            return self._db.execute("SELECT event_id, kind, cause FROM dropped ORDER BY seq").fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing ---------------------------------------------------------------------------------------
    def _reload(self) -> None:
        """Read the figures kept in memory from the file (on open, and after a failed write)."""
        try:
            self._rows, self._bytes, self._pending, self._pending_bytes = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COUNT(*) - COUNT(acked_at),"
                " COALESCE(SUM(CASE WHEN acked_at IS NULL THEN size END), 0) FROM events"
            ).fetchone()
            saved = dict(self._db.execute("SELECT name, value FROM counters"))
            # Totals only grow; one the disk could not take (a full disk) lives on in memory.
            self._totals = {k: max(saved.get(k, 0), self._totals.get(k, 0)) for k in {*saved, *self._totals}}
        except sqlite3.Error as exc:
            log.error("spool %s: cannot read its figures: %s", self.path, exc)

    def _count(self, name: str, n: int) -> None:
        """Add to a running total inside the caller's transaction (memory follows on commit)."""
        self._db.execute(
            "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, n),
        )
        self._totals[name] = self._totals.get(name, 0) + n

    def _record_drops(self, gone: Iterable[tuple[str, str]], cause: str) -> None:
        """Keep the ids of dropped events (inside the caller's transaction), the newest DROPPED_KEPT."""
        now = self._clock()
        rows = [(event_id, kind, cause, now) for event_id, kind in gone]
        if not rows:
            return
        self._db.executemany(
            "INSERT INTO dropped (event_id, kind, cause, dropped_at) VALUES (?, ?, ?, ?)", rows
        )
        self._db.execute(
            "DELETE FROM dropped WHERE seq <= (SELECT MAX(seq) FROM dropped) - ?", (DROPPED_KEPT,)
        )

    def _count_outside(self, name: str, n: int) -> None:
        """A running total when the write itself failed: best effort on disk, always in memory."""
        try:
            with immediate_transaction(self._db):
                self._count(name, n)
        except sqlite3.Error:
            self._totals[name] = self._totals.get(name, 0) + n

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise SpoolError(f"{self.path}: cannot {doing}: {exc}") from None


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
