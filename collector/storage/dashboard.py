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
    return latest_counts_each(db, [store])[0]


def latest_counts_each(db: Store, stores: Sequence[str]) -> list[list[CountRow]]:
    """`latest_counts` of each store, in one query."""
    found = query_each(
        db,
        "read the latest counts of the stores",
        "SELECT sensor, start_us, end_us, present, visitors_est, passersby_est, present_low, present_high,"
        " connected FROM counts WHERE store = ? AND start_us = (SELECT MAX(start_us) FROM counts WHERE store = ?)"
        " ORDER BY sensor",
        [(s, s) for s in stores],
    )
    return [
        [CountRow(r[0], _dt(r[1]), _dt(r[2]), r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]
        for rows in found
    ]


Extent = tuple[datetime, datetime] | None


def extents(db: Store, stores: Sequence[str]) -> list[Extent]:
    """`Store.extent` of each store, in one query: the same four index probes a store."""
    found = query_each(
        db,
        "find the periods of the stores",
        "SELECT (SELECT MIN(start_us) FROM visits WHERE store = ?), (SELECT MAX(start_us) FROM visits WHERE store = ?),"
        " (SELECT MIN(start_us) FROM counts WHERE store = ?), (SELECT MAX(start_us) FROM counts WHERE store = ?)",
        [(s,) * 4 for s in stores],
    )
    out: list[Extent] = []
    for (row,) in found:
        los = [v for v in row[0::2] if v is not None]
        his = [v for v in row[1::2] if v is not None]
        out.append((_dt(min(los)), _dt(max(his))) if los else None)
    return out


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
    return sensor_health_each(db, [(store, span)])[0]


def sensor_health_each(db: Store, stores: Sequence[tuple[str, Extent]]) -> list[list[SensorHealth]]:
    """`sensor_health` of each (store, its extent), in two queries."""
    since = [us(span[1]) - RECENT_US if span else 0 for _, span in stores]
    last_each = query_each(
        db,
        "read the last events of the stores' sensors",
        "SELECT sensor, MAX(t) FROM ("
        " SELECT sensor, at_us AS t FROM sensor_latest WHERE store = ?"
        " UNION ALL SELECT sensor, MAX(end_us) FROM counts WHERE store = ? AND start_us >= ? GROUP BY sensor"
        " UNION ALL SELECT sensor, MAX(end_us) FROM visits WHERE store = ? AND start_us >= ? GROUP BY sensor"
        ") AS kinds GROUP BY sensor ORDER BY sensor",
        [(s, s, t, s, t) for (s, _), t in zip(stores, since, strict=True)],
    )
    statuses_each = query_each(
        db,
        "read the statuses of the stores' sensors",
        "SELECT s.sensor, s.state, s.at_us, s.version, s.epoch, s.frames_per_s, s.drops, s.spool_depth,"
        " s.signal_ref_dbm, s.signal_offset_db, s.signal_drift"
        " FROM sensor_latest l JOIN statuses s ON s.event_id = l.event_id WHERE l.store = ?",
        [(s,) for s, _ in stores],
    )
    return [_health(last, statuses) for last, statuses in zip(last_each, statuses_each, strict=True)]


def _health(last: Sequence[tuple[Any, ...]], statuses: Sequence[tuple[Any, ...]]) -> list[SensorHealth]:
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


EACH_CHUNK = 100  # the branches of one UNION ALL: a chain of hundreds of stores takes a few round trips


def query_each(
    store: Store, doing: str, sql: str, params_each: Sequence[Sequence[Any]]
) -> list[list[tuple[Any, ...]]]:
    """The rows of `sql` for each of `params_each`, in one round trip per `EACH_CHUNK` of them.

    The one SELECT runs once per parameter set, as branches of a UNION ALL tagged with their index:
    each branch keeps its own plan (an index probe of one store's span), and the chain overview asks
    for 50 stores in one query instead of 50 (on PostgreSQL a round trip costs more than the probe).
    `sql` is one SELECT; its own ORDER BY and LIMIT hold inside its branch.
    """
    out: list[list[tuple[Any, ...]]] = [[] for _ in params_each]
    branch = f"SELECT CAST(? AS INTEGER), each_q.* FROM ({sql}) AS each_q"
    for lo in range(0, len(params_each), EACH_CHUNK):
        chunk = params_each[lo : lo + EACH_CHUNK]
        rows = _q(
            store,
            doing,
            " UNION ALL ".join([branch] * len(chunk)),
            [x for i, params in enumerate(chunk, lo) for x in (i, *params)],
        )
        for r in rows:
            out[int(r[0])].append(tuple(r[1:]))
    return out


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
    return visit_totals_each(store, [(name, start, end)])[0]


def visit_totals_each(store: Store, spans: Sequence[tuple[str, datetime, datetime]]) -> list[VisitTotals]:
    """`visit_totals` of each (store, start, end), in one query (the overview asks for four days of
    every store)."""
    found = query_each(
        store,
        "read the visit roll-up of the stores",
        "SELECT COALESCE(SUM(visitors), 0), COALESCE(SUM(passersby), 0), COUNT(DISTINCT sensor)"
        " FROM visit_rollup WHERE store = ? AND bucket_us >= ? AND bucket_us < ?"
        " AND (visitors > 0 OR passersby > 0 OR fixed > 0)",
        [(name, us(start), us(end)) for name, start, end in spans],
    )
    return [VisitTotals(int(r[0]), int(r[1]), int(r[2])) for (r,) in found]
