"""The report of a one-sensor period from the roll-ups: the same `Report` as `report.build`, without the rows.

With one sensor nothing merges (merge.py: two visits of one sensor never do, and one sensor's present is
its own), so every figure of the report is a sum the roll-ups keep (collector/storage/rollups.py), except
those of single visitor and fixed visits (dwell, devices, repeats), read from those visits alone. A store
whose period has visits or counts of two sensors or more gets `None`: only the rows can say what merges.
Means are sums over counts here and `fmean` in `build`, so a mean may differ in its last bit or so.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from collector.config import ReportConfig
from collector.reports import report as r
from collector.storage.base import Store, us
from collector.storage.rollups import KeptVisit, PeriodSums, kept_visits_each, period_sums_each
from footfall.times import from_us


def for_store(
    db: Store, store: str, first: date, last: date, zone: ZoneInfo, dwell_edges_min: Sequence[float]
) -> r.Report | None:
    """The report from the roll-ups, or None when it cannot equal `report.build`'s (several sensors)."""
    return for_stores(db, [(store, first, last)], zone, dwell_edges_min)[0]


Wanted = tuple[str, date, date]  # a store, and the local days of its report


def for_stores(
    db: Store, wanted: Sequence[Wanted], zone: ZoneInfo, dwell_edges_min: Sequence[float]
) -> list[r.Report | None]:
    """`for_store` of each (store, first, last), in five queries however many stores (the chain
    overview: on PostgreSQL each query is a round trip, which costs more than reading one day)."""
    periods = [r.period(first, last, zone) for _, first, last in wanted]
    # A zone's historical offset off the quarter hour has no bucket boundary there: the rows' report.
    aligned = [
        i
        for i, (start, end) in enumerate(periods)
        if not int(start.timestamp()) % 900 and not int(end.timestamp()) % 900
    ]
    sums = dict(
        zip(
            aligned,
            period_sums_each(
                db,
                [(wanted[i][0], *periods[i]) for i in aligned],
                [whole_hours(zone, *periods[i]) for i in aligned],
            ),
            strict=True,
        )
    )
    one_sensor = [i for i in aligned if len(sums[i].data_sensors) <= 1]
    read = [i for i in one_sensor if sums[i].hours]
    visits = dict(zip(read, kept_visits_each(db, [(wanted[i][0], *periods[i]) for i in read]), strict=True))
    out: list[r.Report | None] = [None] * len(wanted)
    for i in one_sensor:
        store, first, last = wanted[i]
        out[i] = build(store, first, last, zone, *periods[i], sums[i], visits.get(i, []), dwell_edges_min)
    return out


def reports(db: Store, wanted: Sequence[Wanted], config: ReportConfig) -> list[r.Report]:
    """`report.for_store` of each (store, first, last): from the roll-ups in a few queries for all the
    one-sensor stores, from the rows for the others (where visits heard by two sensors merge)."""
    fast = for_stores(db, wanted, config.zone, config.dwell_edges_min)
    return [
        f if f is not None else r.from_rows(db, store, first, last, config)
        for f, (store, first, last) in zip(fast, wanted, strict=True)
    ]


def whole_hours(zone: ZoneInfo, start: datetime, end: datetime) -> bool:
    """Whether every local hour of [start, end) starts on a UTC hour (the hourly roll-ups hold it):
    the zone's offset is whole hours throughout. Offsets last months between changes, so one look
    every 12 hours sees each (a year: 730 looks, about a millisecond)."""
    if start.timestamp() % 3600:
        return False
    at = start
    while at < end:
        offset = at.astimezone(zone).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
        at += HALF_DAY
    last = (end - MICROSECOND).astimezone(zone).utcoffset()
    return last is not None and not last.total_seconds() % 3600


HALF_DAY = timedelta(hours=12)
MICROSECOND = timedelta(microseconds=1)


def _mean(total: float, n: int) -> float | None:
    return total / n if n else None


def _mean_all(total: float, known: int, n: int) -> float | None:
    """The mean when all `n` carried the value (`report._mean_known`'s rule)."""
    return total / n if n and known == n else None


def build(
    store: str,
    first: date,
    last: date,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    sums: PeriodSums,
    visits: Sequence[KeptVisit],
    dwell_edges_min: Sequence[float],
) -> r.Report:
    # The report's `connected` is None unless a visit of the period, of any kind, came from a sensor
    # that listens to a store network (`kept_visits_each` holds one passerby of such a sensor, if any).
    listens = any(v.connected is not None for v in visits)
    slots = int((end - start) / r.HOUR)
    connected = [0] * slots  # visitor visits connected to a store network, by hour
    lo = us(start)
    for v in visits:
        if v.kind == "visitor" and v.connected:
            connected[(v.start_us - lo) // 3_600_000_000] += 1
    rows = []
    for i in range(slots):
        h = sums.hours.get(i)
        at = (start + i * r.HOUR).astimezone(zone)
        if h is None:
            rows.append(r.HourRow(at, 0, 0, None, connected=connected[i]))
            continue
        rows.append(
            r.HourRow(
                at,
                h.passersby,
                h.visitors,
                _mean(h.present_sum, h.intervals),
                _mean_all(h.low_sum, h.low_n, h.intervals),
                _mean_all(h.high_sum, h.high_n, h.intervals),
                connected[i],
            )
        )
    hours = sums.hours.values()
    passersby, visitors = sum(h.passersby for h in hours), sum(h.visitors for h in hours)
    intervals = sum(h.intervals for h in hours)
    per_device: dict[tuple[str, str], int] = defaultdict(int)
    dwells = []
    fixed_devices: set[tuple[str, str]] = set()
    for v in visits:
        if v.kind == "visitor":
            per_device[(v.epoch, v.device)] += 1
            dwells.append(v.dwell_s)
        elif v.kind == "fixed":
            fixed_devices.add((v.epoch, v.device))
    sensors = sorted({*sums.data_sensors, *sums.status_sensors})
    peak_at = None if sums.peak is None else from_us(sums.peak[1]).astimezone(zone)
    return r.Report(
        store=store,
        first=first,
        last=last,
        timezone=zone.key,
        sensors=tuple(sensors),
        hours=tuple(r._active_hours(rows)),
        passersby=passersby,
        visitors=visitors,
        capture_rate=r.capture_rate(visitors, passersby),
        unique_visitors=len(per_device),
        repeat_visitors=sum(1 for n in per_device.values() if n > 1),
        median_dwell_s=statistics.median(dwells) if dwells else None,
        dwell=r.dwell_buckets(dwells, dwell_edges_min),
        present_mean=_mean(sum(h.present_sum for h in hours), intervals),
        present_peak=None if sums.peak is None else sums.peak[0],
        present_peak_at=peak_at,
        present_low=_mean_all(sum(h.low_sum for h in hours), sum(h.low_n for h in hours), intervals),
        present_high=_mean_all(sum(h.high_sum for h in hours), sum(h.high_n for h in hours), intervals),
        fixed_visits=sum(h.fixed for h in hours),
        fixed_devices=len(fixed_devices),
        notes=r._notes(store, sensors, empty=not sums.hours),
        visitors_people=_people(sums.visitors_est),
        passersby_people=_people(sums.passersby_est),
        connected=sum(connected) if listens else None,
    )


def _people(est: tuple[int, float]) -> float | None:
    """`merge.store_people` with one sensor (nothing shared to take off), as reported."""
    return r.people_total(est[1]) if est[0] else None
