"""What only the dashboard reads and writes (people present now, sensor health, calibration reports, and
the transactions its accounts use), one SQL text for both backends.

Everything else the dashboard shows comes from the report and the KPIs (collector/reports/report.py,
collector/online/kpis.py): these reads add only what those do not cover.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from collector.storage.base import CountRow, Store, us
from collector.storage.sql import Db, Placeholders
from collector.storage.sqlite import SqliteStore
from footfall.calibration import CalibrationReport
from footfall.sqlite import immediate_transaction
from footfall.times import from_us as _dt

Transaction = Callable[[str], AbstractContextManager[Db]]
Query = Callable[[str, str, Sequence[Any]], list[tuple[Any, ...]]]


class _Reads(Protocol):
    def query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def _q(db: Store, doing: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    reads: _Reads = db  # type: ignore[assignment]  # both backends' StoreReads give query
    return reads.query(doing, sql, params)


@dataclass(frozen=True, slots=True)
class SensorHealth:
    """A sensor's latest retained status (online, or offline by its last will) and its last event."""

    sensor: str
    state: str  # online | offline | unknown (counts or visits, but no status yet)
    status_at: datetime | None
    last_event: datetime
    version: str | None
    epoch: str | None
    frames_per_s: float | None
    drops: int | None
    spool_depth: int | None
    signal_ref_dbm: float | None = None  # the signal scale the sensor learned (footfall/events.py)
    signal_offset_db: float | None = None  # ...its distance from the thresholds' scale
    signal_drift: bool = False  # the offset passed the sensor's drift bound: moved, or a new antenna?


def latest_counts(db: Store, store: str) -> list[CountRow]:
    """The count intervals of the store's latest start, one a sensor (an index probe and one read)."""
    rows = _q(
        db,
        f"read the latest counts of {store}",
        "SELECT sensor, start_us, end_us, present, visitors_est, passersby_est, present_low, present_high,"
        " connected FROM counts WHERE store = ? AND start_us = (SELECT MAX(start_us) FROM counts WHERE store = ?)"
        " ORDER BY sensor",
        (store, store),
    )
    return [CountRow(r[0], _dt(r[1]), _dt(r[2]), r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]


RECENT_US = 86_400_000_000  # a day: how far back from the store's latest event counts and visits are read


def sensor_health(
    db: Store, store: str, extent: tuple[datetime, datetime] | Literal["read"] | None = "read"
) -> list[SensorHealth]:
    """Every sensor with a status, or with a count or visit in the store's last day of events.

    The last event of a sensor is the latest of its status and its counts and visits of that day: the
    status is retained and sent at least at every start, so a sensor silent for longer still shows
    when it was last heard, and no query reads more than a day of a store's events (chain scale); the
    latest status of each sensor is one row of `sensor_latest` (0009), however many statuses it sent.
    `extent` is the store's (`Store.extent`), when the caller has read it already.
    """
    span = db.extent(store) if extent == "read" else extent
    since = us(span[1]) - RECENT_US if span else 0
    last = _q(
        db,
        f"read the last events of {store}'s sensors",
        "SELECT sensor, MAX(t) FROM ("
        " SELECT sensor, at_us AS t FROM sensor_latest WHERE store = ?"
        " UNION ALL SELECT sensor, MAX(end_us) FROM counts WHERE store = ? AND start_us >= ? GROUP BY sensor"
        " UNION ALL SELECT sensor, MAX(end_us) FROM visits WHERE store = ? AND start_us >= ? GROUP BY sensor"
        ") AS kinds GROUP BY sensor ORDER BY sensor",
        (store, store, since, store, since),
    )
    statuses = _q(
        db,
        f"read the statuses of {store}'s sensors",
        "SELECT s.sensor, s.state, s.at_us, s.version, s.epoch, s.frames_per_s, s.drops, s.spool_depth,"
        " s.signal_ref_dbm, s.signal_offset_db, s.signal_drift"
        " FROM sensor_latest l JOIN statuses s ON s.event_id = l.event_id WHERE l.store = ?",
        (store,),
    )
    latest = {r[0]: r for r in statuses}
    out = []
    for sensor, last_us in last:
        s = latest.get(sensor)
        out.append(
            SensorHealth(
                sensor,
                s[1] if s else "unknown",
                _dt(s[2]) if s else None,
                _dt(int(last_us)),
                s[3] if s else None,
                s[4] if s else None,
                s[5] if s else None,
                s[6] if s else None,
                s[7] if s else None,
                s[8] if s else None,
                s[9] if s else None,
                bool(s[10]) if s else False,
            )
        )
    return out


def transaction_of(store: Store) -> Transaction:
    """`transaction(doing)`: a `Db` (shared `?` SQL) inside one write transaction of the store's backend."""
    lock, errors, connection = store._lock, store._errors, store._db  # type: ignore[attr-defined]

    @contextmanager
    def transaction(doing: str) -> Iterator[Db]:
        if isinstance(store, SqliteStore):
            with lock, errors(doing), immediate_transaction(connection):
                yield connection
        else:  # PostgresStore
            with lock, errors(doing), connection.transaction():
                yield Placeholders(connection)

    return transaction


def query_of(store: Store) -> Query:
    def query(doing: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return _q(store, doing, sql, params)

    return query


def put_calibration(store: Store, report: CalibrationReport) -> bool:
    """Keep `report` as its sensor's latest, unless a newer one is stored; True if it was kept."""
    with transaction_of(store)(f"store the calibration report of {report.sensor}") as db:
        return bool(
            db.execute(
                "INSERT INTO calibration_reports VALUES (?, ?, ?, ?) ON CONFLICT (store, sensor) DO UPDATE"
                " SET made_us = excluded.made_us, report = excluded.report"
                " WHERE excluded.made_us >= calibration_reports.made_us",
                (report.store, report.sensor, us(report.made_at), report.to_json()),
            ).rowcount
        )


def calibrations(store: Store, name: str) -> list[CalibrationReport]:
    """The latest report of each sensor of store `name`, by sensor."""
    rows = _q(
        store,
        f"read the calibration reports of {name}",
        "SELECT report FROM calibration_reports WHERE store = ? ORDER BY sensor",
        (name,),
    )
    return [CalibrationReport.model_validate_json(r[0]) for r in rows]


@dataclass(frozen=True, slots=True)
class VisitTotals:
    """Visits of a store started in a period, from the roll-up (one row per sensor and 15 minutes)."""

    visitors: int
    passersby: int
    sensors: int  # sensors with a visit in the period


def visit_totals(store: Store, name: str, start: datetime, end: datetime) -> VisitTotals:
    """From `visit_rollup`, for [start, end) on 15-minute boundaries (local midnights always are)."""
    return visit_totals_each(store, name, [(start, end)])[0]


def visit_totals_each(
    store: Store, name: str, spans: Sequence[tuple[datetime, datetime]]
) -> list[VisitTotals]:
    """`visit_totals` of each span, in one query (the overview asks for four days of every store)."""
    one = (
        "SELECT ?, COALESCE(SUM(visitors), 0), COALESCE(SUM(passersby), 0), COUNT(DISTINCT sensor)"
        " FROM visit_rollup WHERE store = ? AND bucket_us >= ? AND bucket_us < ?"
        " AND (visitors > 0 OR passersby > 0 OR fixed > 0)"
    )
    rows = _q(
        store,
        f"read the visit roll-up of {name}",
        " UNION ALL ".join([one] * len(spans)),
        [x for i, (start, end) in enumerate(spans) for x in (i, name, us(start), us(end))],
    )
    found = {int(r[0]): VisitTotals(int(r[1]), int(r[2]), int(r[3])) for r in rows}
    return [found[i] for i in range(len(spans))]
