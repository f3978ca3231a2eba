"""The event tables in SQL, one text for both backends: what is inserted where, and the reading half of `Store`.

`EVENT_INSERTS` is the one place that maps the wire schema (footfall/events.py) to tables; `StoreReads`
reads them back for the report and the service. `?` placeholders (collector/storage/sql.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from collector.storage.base import CountRow, DeadLetter, VisitRow, us
from collector.storage.conflicts import Conflict, find_conflicts
from collector.storage.privacy_sql import PrivacyReads
from collector.storage.sql import Insert, Rows
from footfall.events import CountEvent, Event, StatusEvent, VisitEvent, VisitOpenEvent
from footfall.times import from_us

# Recording rejected payloads: add the sample, trim it to the newest `keep`, add to the totals.
DEAD_LETTER_SQL = (
    "INSERT INTO dead_letters (at_us, reason, topic, detail, size, payload) VALUES (?, ?, ?, ?, ?, ?)",
    "DELETE FROM dead_letters WHERE id <= (SELECT COALESCE(MAX(id), 0) FROM dead_letters) - ?",
    "INSERT INTO rejections VALUES (?, ?)"
    " ON CONFLICT (reason) DO UPDATE SET count = rejections.count + excluded.count",
)


def insert_rows(events: Sequence[Event], inserts: Mapping[type[Any], Insert]) -> dict[str, Rows]:
    """The rows to insert, by statement of `inserts` (a backend's event model -> statement, row builder)."""
    by_table: dict[str, Rows] = {}
    for event in events:
        if isinstance(event, VisitOpenEvent):
            continue  # feeds the real-time trigger only; the closing visit event is the record
        sql, row = inserts[type(event)]
        by_table.setdefault(sql, []).append(row(event))
    return by_table


def _visit_row(e: VisitEvent) -> tuple[Any, ...]:
    return (
        e.event_id, e.store, e.sensor, e.epoch, e.device, us(e.start), us(e.end), e.dwell_s, e.kind,
        e.frames, e.addresses, int(e.randomized), e.rssi_max, e.rssi_median, e.visit_no, e.consent,
        None if e.connected is None else int(e.connected),
    )  # fmt: skip


def _count_row(e: CountEvent) -> tuple[Any, ...]:
    return (
        e.event_id, e.store, e.sensor, e.epoch, us(e.start), us(e.end), e.present, e.visitors,
        e.passersby, e.visitors_present, e.new_visitors, e.returning_visitors, e.fixed_devices, e.frames,
        e.frames_randomized, e.addresses, e.addresses_randomized, e.devices, e.visitors_est, e.passersby_est,
        e.present_low, e.present_high, e.connected,
    )  # fmt: skip


def _status_row(e: StatusEvent) -> tuple[Any, ...]:
    return (
        e.event_id, e.store, e.sensor, e.epoch, e.state, us(e.at), e.version, e.uptime_s, e.source,
        e.frames, e.probe_requests, json.dumps(e.decode_errors, sort_keys=True), e.frames_per_s, e.drops,
        e.spool_depth, e.signal_ref_dbm, e.signal_offset_db, e.signal_drift,
    )  # fmt: skip


def _insert(table: str, columns: int) -> str:
    # Columns named: later migrations add columns with defaults (visits.pseudonym_dropped).
    names = _COLUMNS[table][:columns]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * columns)}) ON CONFLICT(event_id) DO NOTHING"


_COLUMNS = {
    "visits": (
        "event_id", "store", "sensor", "epoch", "device", "start_us", "end_us", "dwell_s", "kind", "frames",
        "addresses", "randomized", "rssi_max", "rssi_median", "visit_no", "consent", "connected",
    ),
    "counts": (
        "event_id", "store", "sensor", "epoch", "start_us", "end_us", "present", "visitors", "passersby",
        "visitors_present", "new_visitors", "returning_visitors", "fixed_devices", "frames",
        "frames_randomized", "addresses", "addresses_randomized", "devices", "visitors_est", "passersby_est",
        "present_low", "present_high", "connected",
    ),
    "statuses": (
        "event_id", "store", "sensor", "epoch", "state", "at_us", "version", "uptime_s", "source", "frames",
        "probe_requests", "decode_errors", "frames_per_s", "drops", "spool_depth", "signal_ref_dbm",
        "signal_offset_db", "signal_drift",
    ),
}  # fmt: skip


# Event model → (insert statement, row builder): the one place that maps the wire schema to tables.
EVENT_INSERTS: dict[type[Any], Insert] = {
    VisitEvent: (_insert("visits", 17), _visit_row),
    CountEvent: (_insert("counts", 23), _count_row),
    StatusEvent: (_insert("statuses", 18), _status_row),
}


class StoreReads(PrivacyReads):
    """The reading half of `Store`, shared by both backends: each gives `query` for its connection."""

    def rejections(self) -> dict[str, int]:
        rows = self.query("read rejection totals", "SELECT reason, count FROM rejections ORDER BY reason")
        return {str(reason): int(n) for reason, n in rows}

    def dead_letters(self) -> list[DeadLetter]:
        rows = self.query(
            "read dead letters",
            "SELECT at_us, reason, topic, detail, size, payload FROM dead_letters ORDER BY id",
        )
        return [DeadLetter(from_us(r[0]), r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]

    def stores(self) -> list[str]:
        # A skip scan of each table's (store, time) index: one index probe per store, not a pass over
        # every event (the dashboard asks on every page; a year of 50 stores is millions of rows).
        found: set[str] = set()
        for table in ("visits", "counts", "statuses"):
            rows = self.query(
                "list stores",
                f"WITH RECURSIVE s(store) AS (SELECT MIN(store) FROM {table}"
                f" UNION ALL SELECT (SELECT MIN(store) FROM {table} WHERE store > s.store) FROM s"
                " WHERE s.store IS NOT NULL) SELECT store FROM s WHERE store IS NOT NULL",
            )
            found.update(str(r[0]) for r in rows)
        return sorted(found)

    def extent(self, store: str) -> tuple[datetime, datetime] | None:
        # One MIN or MAX per subquery: each is then a single probe of the (store, start_us) index
        # (SQLite's min/max optimisation does not apply to a query with both).
        rows = self.query(
            f"find the period of {store}",
            "SELECT (SELECT MIN(start_us) FROM visits WHERE store = ?), (SELECT MAX(start_us) FROM visits WHERE store = ?),"
            " (SELECT MIN(start_us) FROM counts WHERE store = ?), (SELECT MAX(start_us) FROM counts WHERE store = ?)",
            (store,) * 4,
        )
        los = [v for v in rows[0][0::2] if v is not None]
        his = [v for v in rows[0][1::2] if v is not None]
        return (from_us(min(los)), from_us(max(his))) if los else None

    def visits(self, store: str, start: datetime, end: datetime) -> list[VisitRow]:
        rows = self.query(
            f"read visits of {store}",
            "SELECT sensor, epoch, device, start_us, end_us, dwell_s, kind, visit_no, rssi_max, connected, randomized"
            " FROM visits"
            " WHERE store = ? AND start_us >= ? AND start_us < ? ORDER BY start_us, event_id",
            (store, us(start), us(end)),
        )
        return [
            VisitRow(
                r[0],
                r[1],
                r[2],
                from_us(r[3]),
                from_us(r[4]),
                r[5],
                r[6],
                r[7],
                r[8],
                _flag(r[9]),
                _flag(r[10]),
            )
            for r in rows
        ]

    def counts(self, store: str, start: datetime, end: datetime) -> list[CountRow]:
        rows = self.query(
            f"read counts of {store}",
            "SELECT sensor, start_us, end_us, present, visitors_est, passersby_est, present_low, present_high,"
            " connected FROM counts"
            " WHERE store = ? AND start_us >= ? AND start_us < ? ORDER BY start_us, sensor",
            (store, us(start), us(end)),
        )
        return [
            CountRow(r[0], from_us(r[1]), from_us(r[2]), r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows
        ]

    def conflicts(self, events: Sequence[Event]) -> list[Conflict]:
        return find_conflicts(self.query, events, EVENT_INSERTS, _COLUMNS)

    def sensors(self, store: str, start: datetime, end: datetime) -> list[str]:
        span = (store, us(start), us(end))
        rows = self.query(
            f"list sensors of {store}",
            "SELECT sensor FROM visits WHERE store = ? AND start_us >= ? AND start_us < ?"
            " UNION SELECT sensor FROM counts WHERE store = ? AND start_us >= ? AND start_us < ?"
            " UNION SELECT sensor FROM statuses WHERE store = ? AND at_us >= ? AND at_us < ? ORDER BY 1",
            span * 3,
        )
        return [str(r[0]) for r in rows]


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)
