"""What only the dashboard reads and writes (people present now, sensor health, calibration reports, and
the transactions its accounts use), one SQL text for both backends; and the two shapes in which it and
the roll-up reads ask for many stores in one query (`query_spans`, `query_each`).

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


def latest_counts_each(db: Store, stores: Sequence[str]) -> list[list[CountRow]]:
    """The count intervals of each store's latest start, one a sensor (an index probe and one read a
    store), in one query."""
    found = query_each(
        db,
        "read the latest counts of the stores",
        "store TEXT",
        "SELECT m.i, c.sensor, c.start_us, c.end_us, c.present, c.visitors_est, c.passersby_est, c.present_low,"
        " c.present_high, c.connected FROM (SELECT w.i, w.store, (SELECT MAX(start_us) FROM counts"
        " WHERE store = w.store) AS t FROM w) AS m JOIN counts c ON c.store = m.store AND c.start_us = m.t"
        " ORDER BY m.i, c.sensor",
        [(s,) for s in stores],
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
        "store TEXT",
        "SELECT w.i, (SELECT MIN(start_us) FROM visits WHERE store = w.store),"
        " (SELECT MAX(start_us) FROM visits WHERE store = w.store),"
        " (SELECT MIN(start_us) FROM counts WHERE store = w.store),"
        " (SELECT MAX(start_us) FROM counts WHERE store = w.store) FROM w",
        [(s,) for s in stores],
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
    last_each = query_spans(
        db,
        "read the last events of the stores' sensors",
        "SELECT store, sensor, MAX(t) FROM ("
        " SELECT store, sensor, at_us AS t FROM sensor_latest WHERE store IN ({stores})"
        " UNION ALL SELECT store, sensor, MAX(end_us) FROM counts WHERE store IN ({stores})"
        " AND start_us >= {lo} GROUP BY store, sensor"
        " UNION ALL SELECT store, sensor, MAX(end_us) FROM visits WHERE store IN ({stores})"
        " AND start_us >= {lo} GROUP BY store, sensor"
        ") AS kinds GROUP BY store, sensor ORDER BY store, sensor",
        [(s, t, 0) for (s, _), t in zip(stores, since, strict=True)],
    )
    statuses_each = query_each(
        db,
        "read the statuses of the stores' sensors",
        "store TEXT",
        "SELECT w.i, s.sensor, s.state, s.at_us, s.version, s.epoch, s.frames_per_s, s.drops, s.spool_depth,"
        " s.signal_ref_dbm, s.signal_offset_db, s.signal_drift"
        " FROM w JOIN sensor_latest l ON l.store = w.store JOIN statuses s ON s.event_id = l.event_id",
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


EACH_CHUNK = 500  # stores a query: a chain of thousands of stores takes a few round trips


def query_spans(
    store: Store, doing: str, sql: str, spans: Sequence[tuple[str, int, int]]
) -> list[list[tuple[Any, ...]]]:
    """The rows `sql` gives for each (store, lo, hi) of `spans`: one query per distinct (lo, hi) and
    `EACH_CHUNK` stores (the chain overview: one, since its stores mostly share today).

    `sql` selects the store first, and holds `{stores}` where the list of stores goes (`store IN
    ({stores})`, as often as it likes) and `{lo}`, `{hi}` where the span's bounds go, written in as integers: a planner that
    sees the constant range picks the (store, time) index, where a range joined from a table of
    wanted spans makes PostgreSQL estimate a third of the table and read all of it.
    """
    out: list[list[tuple[Any, ...]]] = [[] for _ in spans]
    by_span: dict[tuple[int, int], dict[str, list[int]]] = {}
    for i, (name, lo, hi) in enumerate(spans):
        by_span.setdefault((int(lo), int(hi)), {}).setdefault(name, []).append(i)
    for (lo, hi), stores in by_span.items():
        names = list(stores)
        for first in range(0, len(names), EACH_CHUNK):
            chunk = names[first : first + EACH_CHUNK]
            text = sql.format(stores=", ".join("?" * len(chunk)), lo=lo, hi=hi)
            rows = _q(store, doing, text, chunk * sql.count("{stores}"))
            if len(chunk) == 1:  # a store page: a year is tens of thousands of rows, kept in one go
                for i in stores[chunk[0]]:
                    out[i].extend([r[1:] for r in rows])
                continue
            for r in rows:
                for i in stores[str(r[0])]:
                    out[i].append(r[1:])
    return out


def query_each(
    store: Store, doing: str, columns: str, sql: str, wanted: Sequence[Sequence[Any]]
) -> list[list[tuple[Any, ...]]]:
    """The rows `sql` gives for each of `wanted`, in one round trip per `EACH_CHUNK` of them.

    `sql` reads the wanted rows as the table `w`: its column `i` (the index in `wanted`, which must be
    the first column `sql` selects) and `columns` ("store TEXT, lo BIGINT": names and types of the
    values of each wanted row). One plan for all the stores: a UNION ALL of one query a store costs
    PostgreSQL a plan per branch (~2 ms each), a join over `w` one; either way each store's rows are
    an index range of its own (store, time).
    """
    names = [c.split()[0] for c in columns.split(",")]
    types = [c.split()[1] for c in columns.split(",")]
    one = "(CAST(? AS INTEGER), " + ", ".join(f"CAST(? AS {t})" for t in types) + ")"
    out: list[list[tuple[Any, ...]]] = [[] for _ in wanted]
    for lo in range(0, len(wanted), EACH_CHUNK):
        chunk = wanted[lo : lo + EACH_CHUNK]
        rows = _q(
            store,
            doing,
            f"WITH w(i, {', '.join(names)}) AS (VALUES {', '.join([one] * len(chunk))}) {sql}",
            [x for i, values in enumerate(chunk, lo) for x in (i, *values)],
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
    found = query_spans(
        store,
        "read the visit roll-up of the stores",
        "SELECT store, SUM(visitors), SUM(passersby), COUNT(DISTINCT sensor) FROM visit_rollup"
        " WHERE store IN ({stores}) AND bucket_us >= {lo} AND bucket_us < {hi}"
        " AND (visitors > 0 OR passersby > 0 OR fixed > 0) GROUP BY store",
        [(name, us(start), us(end)) for name, start, end in spans],
    )
    return [
        VisitTotals(int(r[0][0]), int(r[0][1]), int(r[0][2])) if r else VisitTotals(0, 0, 0) for r in found
    ]
