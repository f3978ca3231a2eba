"""Reads of the roll-ups the triggers keep (visit_rollup: 0007, count_rollup: 0009, their hourly twins:
0010), one SQL text for both backends.

A period of a store is read by local hour: the buckets are 15 minutes of UTC, and a local midnight is a
whole number of quarter hours in every time zone, so each bucket lies in one hour counted from the
period's start; where the zone's offset is whole hours, each UTC hour is one local hour, and the hourly
tables give the same sums from a quarter of the rows. Every read takes many stores' periods at once (the
chain overview). Only sums cross this module; what they mean is the report's (collector/reports/rollup.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from collector.storage.base import Store, us
from collector.storage.dashboard import query_each, query_spans

BUCKET_US = 900_000_000  # the roll-ups' 15 minutes
HOUR_US = 3_600_000_000


@dataclass(frozen=True, slots=True)
class HourSums:
    """The sums of one local hour of a period (hour 0 starts at the period's start)."""

    visitors: int = 0
    passersby: int = 0
    fixed: int = 0
    intervals: int = 0  # count intervals that started in the hour
    present_sum: float = 0.0
    low_n: int = 0  # ...of them with a present_low
    low_sum: float = 0.0
    high_n: int = 0
    high_sum: float = 0.0


@dataclass(frozen=True, slots=True)
class PeriodSums:
    """What the roll-ups hold of a store's period [start, end)."""

    data_sensors: tuple[str, ...]  # sensors with a visit or a count interval (with two or more: some)
    status_sensors: tuple[str, ...]  # sensors with a status event in the period
    hours: dict[int, HourSums]
    peak: tuple[float, int] | None  # the highest present and the earliest start it had (UTC us)
    visitors_est: tuple[int, float]  # intervals that carried an estimate, their sum
    passersby_est: tuple[int, float]


_SPAN = "store IN ({stores}) AND bucket_us >= {lo} AND bucket_us < {hi}"
_VISITS_NONZERO = "(visitors > 0 OR passersby > 0 OR fixed > 0)"
_HOUR = "(bucket_us - {lo}) / 3600000000"
_W = "store TEXT, lo BIGINT, hi BIGINT"

Span = tuple[str, datetime, datetime]  # a store, and the [start, end) of its period


def status_sensors_each(db: Store, spans: Sequence[Span]) -> list[list[str]]:
    """The sensors with a status event in each (store, start, end)."""
    found = query_spans(
        db,
        "list the sensors of the stores' statuses",
        "SELECT DISTINCT store, sensor FROM statuses WHERE store IN ({stores}) AND at_us >= {lo} AND at_us < {hi}",
        [(store, us(start), us(end)) for store, start, end in spans],
    )
    return [sorted(str(r[0]) for r in rows) for rows in found]


def period_sums(db: Store, store: str, start: datetime, end: datetime, hourly: bool = False) -> PeriodSums:
    """The roll-ups of the period, summed by hour from `start` (which must be on a 15-minute boundary)."""
    return period_sums_each(db, [(store, start, end)], [hourly])[0]


HOUR_TABLES = ("count_rollup_hour", "visit_rollup_hour")  # 0010: the same columns, a bucket a UTC hour
QUARTER_TABLES = ("count_rollup", "visit_rollup")


def period_sums_each(
    db: Store, spans: Sequence[Span], hourly: Sequence[bool] | None = None
) -> list[PeriodSums]:
    """`period_sums` of each (store, start, end), in four queries however many stores (the overview).

    A span marked `hourly` (each of its local hours starts on a UTC hour: the caller knows the zone) is
    read from the hourly roll-ups, a quarter of the rows; the others from the 15-minute ones.
    """
    marks = list(hourly) if hourly is not None else [False] * len(spans)
    for _, start, end in spans:
        if us(start) % BUCKET_US or us(end) % BUCKET_US:
            raise ValueError(f"a roll-up period starts and ends on a quarter hour, not {start} to {end}")
    out: list[PeriodSums | None] = [None] * len(spans)
    for mark, tables in ((True, HOUR_TABLES), (False, QUARTER_TABLES)):
        chosen = [i for i, m in enumerate(marks) if m == mark]
        if chosen:
            for i, sums in zip(chosen, _period_sums(db, [spans[i] for i in chosen], *tables), strict=True):
                out[i] = sums
    return [s for s in out if s is not None]


def _period_sums(db: Store, spans: Sequence[Span], counts: str, visits: str) -> list[PeriodSums]:
    wanted = [(store, us(start), us(end)) for store, start, end in spans]
    counts_each = query_spans(
        db,
        "read the count roll-up of the stores",
        f"SELECT store, {_HOUR}, SUM(intervals), SUM(present_sum), SUM(low_n), SUM(low_sum), SUM(high_n),"
        " SUM(high_sum), SUM(visitors_est_n), SUM(visitors_est_sum), SUM(passersby_est_n),"
        f" SUM(passersby_est_sum), MIN(sensor), MAX(sensor) FROM {counts} WHERE {_SPAN} GROUP BY 1, 2",
        wanted,
    )
    visits_each = query_spans(
        db,
        "read the visit roll-up of the stores",
        f"SELECT store, {_HOUR}, SUM(visitors), SUM(passersby), SUM(fixed), MIN(sensor), MAX(sensor)"
        f" FROM {visits} WHERE {_SPAN} AND {_VISITS_NONZERO} GROUP BY 1, 2",
        wanted,
    )
    # The highest present of the period and its earliest start, by the one index range of each store.
    top = (
        f"FROM {counts} r WHERE r.store = w.store AND r.bucket_us >= w.lo AND r.bucket_us < w.hi"
        " ORDER BY r.peak DESC, r.peak_us LIMIT 1"
    )
    peak_each = query_each(
        db,
        "find the peak of the stores' count roll-up",
        _W,
        f"SELECT w.i, (SELECT r.peak {top}), (SELECT r.peak_us {top}) FROM w",
        wanted,
    )
    statuses_each = status_sensors_each(db, spans)
    return [_sums(*each) for each in zip(counts_each, visits_each, peak_each, statuses_each, strict=True)]


def _sums(
    counts: Sequence[tuple[Any, ...]],
    visits: Sequence[tuple[Any, ...]],
    peak: Sequence[tuple[Any, ...]],
    statuses: Sequence[str],
) -> PeriodSums:
    # Each hour's first and last sensor: with one sensor in the period they are all it; with two or
    # more, at least two of them show, which is all the report asks (one sensor, or the rows).
    data = sorted({str(x) for r in counts for x in r[11:13]} | {str(x) for r in visits for x in r[4:6]})
    by_visits = {int(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in visits}
    hours: dict[int, HourSums] = {}
    visitors_est, passersby_est = [0, 0.0], [0, 0.0]
    for r in counts:
        v = by_visits.pop(int(r[0]), (0, 0, 0))
        hours[int(r[0])] = HourSums(
            *v, int(r[1]), float(r[2]), int(r[3]), float(r[4]), int(r[5]), float(r[6])
        )
        visitors_est[0] += int(r[7])
        visitors_est[1] += float(r[8])
        passersby_est[0] += int(r[9])
        passersby_est[1] += float(r[10])
    for slot, v in by_visits.items():
        hours[slot] = HourSums(*v)
    return PeriodSums(
        tuple(data),
        tuple(statuses),
        hours,
        (float(peak[0][0]), int(peak[0][1])) if peak and peak[0][0] is not None else None,
        (int(visitors_est[0]), visitors_est[1]),
        (int(passersby_est[0]), passersby_est[1]),
    )


class KeptVisit(NamedTuple):
    """What the report needs of a visitor or fixed visit beyond the roll-ups: who, and how long.

    A row as the database gives it (a year of a store is some 15 k of them: no conversion per field).
    """

    kind: str  # visitor | fixed (| passerby: one, to show a sensor listens to a store network)
    epoch: str
    device: str
    dwell_s: float
    start_us: int
    connected: int | None  # to a store network (1/0, true/false); None: the sensor listens to none


def kept_visits_each(db: Store, spans: Sequence[Span]) -> list[list[KeptVisit]]:
    """Visitor and fixed visits of each (store, start, end), in one query (passersby, most visits, are only
    counted: the roll-up), and one passerby of a sensor listening to a store network if there is one,
    which is all the report needs of them to tell that its `connected` figure is 0 rather than not
    measured."""
    span = "store IN ({stores}) AND start_us >= {lo} AND start_us < {hi}"
    found = query_spans(
        db,
        "read the visitor visits of the stores",
        f"SELECT store, kind, epoch, device, dwell_s, start_us, connected FROM visits WHERE {span}"
        " AND kind <> 'passerby'"
        # ...and, for each store, whether a passerby of the period came from a sensor that listens to a
        # store network (its `connected` is then not null): one row for them, if any.
        f" UNION ALL SELECT store, 'passerby', '', '', 0.0, 0, MIN(connected) FROM visits WHERE {span}"
        " AND kind = 'passerby' AND connected IS NOT NULL GROUP BY store",
        [(store, us(start), us(end)) for store, start, end in spans],
    )
    make = KeptVisit._make
    return [[make(r) for r in rows if r[0] != "passerby" or r[5] is not None] for rows in found]
