"""The footfall report: pure functions from stored rows to a `Report`, and its three renderings.

Events are in UTC; the report is in the store's time zone. The period is whole local days, from the
first day's midnight to the midnight after the last day, and hours are the absolute hours counted from
that midnight, so a daylight-saving day simply has 23 or 25 of them. A visit belongs to the hour its
visit started; `fixed` devices (printers, tills, staff phones left on site) are reported apart and
take no part in visitors, passersby or capture rate. Visits of one device heard by several sensors of the
store at overlapping times count once (collector/reports/merge.py: the strongest signal wins), and so do
the people present and the people estimates: a later sensor adds only the share of its people the sensors
before it did not hear, measured on its factory-address visits (merge.py's `store_visits`).
`present_low`/`present_high`, the 80 % interval the sensor sends with `present`, are carried along and
averaged like it.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import textwrap
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from collector.config import ReportConfig
from collector.reports.merge import StoreInterval, store_intervals, store_people, store_visits
from collector.storage.base import CountRow, Store, VisitRow

HOUR = timedelta(hours=1)
REPEAT_NOTE = (
    "Repeat visitors are devices seen on more than one visitor visit within one pseudonym epoch: "
    "pseudonyms change when the salt rotates, so a return in a later epoch counts as a new device."
)
FIXED_NOTE = "Fixed devices (always there: printers, tills, staff phones) are left out of the figures above."


@dataclass(frozen=True, slots=True)
class HourRow:
    start: datetime  # local, aware
    passersby: int
    visitors: int
    present_mean: float | None  # mean over the count intervals that started in this hour
    present_low: float | None = None  # mean of their 80 % interval ends, when every interval had them
    present_high: float | None = None
    connected: int = 0  # ...of the visitors, those connected to a store network

    @property
    def capture_rate(self) -> float | None:
        return capture_rate(self.visitors, self.passersby)


@dataclass(frozen=True, slots=True)
class DwellBucket:
    low_min: float | None  # inclusive; None = from 0
    high_min: float | None  # exclusive; None = no upper bound
    visitors: int

    @property
    def label(self) -> str:
        if self.low_min is None:
            return f"under {self.high_min:g} min"
        if self.high_min is None:
            return f"{self.low_min:g} min and more"
        return f"{self.low_min:g}-{self.high_min:g} min"


@dataclass(frozen=True, slots=True)
class Report:
    store: str
    first: date
    last: date
    timezone: str
    sensors: tuple[str, ...]
    hours: tuple[HourRow, ...]  # per day, from its first to its last hour with activity
    passersby: int
    visitors: int
    capture_rate: float | None
    unique_visitors: int  # distinct (sensor, epoch, device) with a visitor visit
    repeat_visitors: int  # ...with more than one
    median_dwell_s: float | None
    dwell: tuple[DwellBucket, ...]
    present_mean: float | None
    present_peak: float | None
    present_peak_at: datetime | None  # local start of the interval of the peak
    present_low: float | None  # the mean of the intervals' 80 % bounds around `present`, when all had them
    present_high: float | None
    fixed_visits: int
    fixed_devices: int
    notes: tuple[str, ...]
    # People behind the device visits (sensor-side site factors); None when no sensor sent estimates.
    visitors_people: float | None = None
    passersby_people: float | None = None
    # Visitor visits of devices connected to a store network (Meraki's third figure, a share of visitors);
    # None when no sensor of the period listens to a store network.
    connected: int | None = None


def capture_rate(visitors: int, passersby: int) -> float | None:
    """Share of the people who came by that came in; None when nobody came by."""
    total = visitors + passersby
    return visitors / total if total else None


def period(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC bounds [start, end) of the local days `first`..`last` inclusive."""
    start = datetime.combine(first, time(0), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), zone).astimezone(UTC)
    return start, end


def build(
    store: str,
    first: date,
    last: date,
    zone: ZoneInfo,
    *,
    visits: Sequence[VisitRow],
    counts: Sequence[CountRow],
    sensors: Sequence[str],
    dwell_edges_min: Sequence[float],
) -> Report:
    """The report over rows already restricted to the store and period (see `period`)."""
    start, end = period(first, last, zone)
    raw = [v for v in visits if start <= v.start < end]  # outside the period: no hour
    heard = store_visits(raw)  # each person once across the sensors
    visits = heard.visits
    counts = [c for c in counts if start <= c.start < end]
    intervals = store_intervals(counts, raw, heard)  # sensors combined, shared people once
    present_by_interval = {i.start: i.present for i in intervals}
    rows = _hour_rows(visits, intervals, start, int((end - start) / HOUR), zone)
    passersby, visitors = sum(r.passersby for r in rows), sum(r.visitors for r in rows)
    listens = any(v.connected is not None for v in visits)
    visitor_visits = [v for v in visits if v.kind == "visitor"]
    per_device: dict[tuple[str, str], int] = defaultdict(int)  # one seed per store: same pseudonym on all
    for v in visitor_visits:
        per_device[(v.epoch, v.device)] += 1
    fixed = [v for v in visits if v.kind == "fixed"]
    peak_at = max(
        present_by_interval, key=lambda at: (present_by_interval[at], -at.timestamp()), default=None
    )

    return Report(
        store=store,
        first=first,
        last=last,
        timezone=zone.key,
        sensors=tuple(sorted(sensors)),
        hours=tuple(_active_hours(rows)),
        passersby=passersby,
        visitors=visitors,
        capture_rate=capture_rate(visitors, passersby),
        unique_visitors=len(per_device),
        repeat_visitors=sum(1 for n in per_device.values() if n > 1),
        median_dwell_s=statistics.median(v.dwell_s for v in visitor_visits) if visitor_visits else None,
        dwell=dwell_buckets([v.dwell_s for v in visitor_visits], dwell_edges_min),
        present_mean=statistics.fmean(present_by_interval.values()) if present_by_interval else None,
        present_peak=present_by_interval[peak_at] if peak_at is not None else None,
        present_peak_at=peak_at.astimezone(zone) if peak_at is not None else None,
        present_low=_mean_known([i.present_low for i in intervals]),
        present_high=_mean_known([i.present_high for i in intervals]),
        fixed_visits=len(fixed),
        fixed_devices=len({(v.epoch, v.device) for v in fixed}),
        notes=_notes(store, sensors, empty=not visits and not counts),
        visitors_people=_people(store_people(counts, heard, "visitor")),
        passersby_people=_people(store_people(counts, heard, "passerby")),
        connected=sum(r.connected for r in rows) if listens else None,
    )


def _hour_rows(
    visits: Sequence[VisitRow],
    intervals: Sequence[StoreInterval],
    start: datetime,
    slots: int,
    zone: ZoneInfo,
) -> list[HourRow]:
    """One row per hour from `start`: passersby and visitors whose visit started in it, people present."""
    passersby, visitors, connected = [0] * slots, [0] * slots, [0] * slots
    for v in visits:
        slot = int((v.start - start) // HOUR)
        if v.kind == "visitor":
            visitors[slot] += 1
            connected[slot] += bool(v.connected)
        elif v.kind == "passerby":
            passersby[slot] += 1
    in_slot: dict[int, list[StoreInterval]] = defaultdict(list)
    for interval in intervals:
        in_slot[int((interval.start - start) // HOUR)].append(interval)
    return [
        HourRow(
            (start + i * HOUR).astimezone(zone),
            passersby[i],
            visitors[i],
            statistics.fmean(x.present for x in in_slot[i]) if in_slot.get(i) else None,
            _mean_known([x.present_low for x in in_slot.get(i, ())]),
            _mean_known([x.present_high for x in in_slot.get(i, ())]),
            connected[i],
        )
        for i in range(slots)
    ]


def _notes(store: str, sensors: Sequence[str], *, empty: bool) -> tuple[str, ...]:
    notes = [REPEAT_NOTE, FIXED_NOTE]
    if len(sensors) > 1:
        notes.append(
            f"{len(sensors)} sensors: a device heard by several at overlapping times is one visit;"
            " people present and people estimates are summed over them, less the people they share."
        )
    if empty:
        notes.insert(0, f"No visits or counts for store {store!r} in this period.")
    return tuple(notes)


def _people(total: float | None) -> float | None:
    return None if total is None else people_total(total)


def people_total(total: float) -> float:
    """A sum of people estimates as reported, to 0.1. The events carry 3 decimals, so the sum is a
    multiple of 0.001 but for the float error of the summing order (SQL's SUM or Python's): rounded to
    0.001 first, a tie such as 283.55 rounds the same way from the rows and from the roll-ups."""
    return round(round(total, 3), 1)


def _mean_known(values: Sequence[float | None]) -> float | None:
    """The mean, when every value is known (a bound missing on one interval leaves the mean undefined)."""
    return statistics.fmean(v for v in values if v is not None) if values and None not in values else None


def dwell_buckets(dwells_s: Sequence[float], edges_min: Sequence[float]) -> tuple[DwellBucket, ...]:
    """Counts per bucket: [0, e0), [e0, e1), ..., [e_last, ∞), edges in minutes."""
    bounds: list[float | None] = [None, *edges_min, None]
    counts = [0] * (len(edges_min) + 1)
    for dwell in dwells_s:
        counts[sum(1 for edge in edges_min if dwell >= edge * 60)] += 1
    return tuple(DwellBucket(bounds[i], bounds[i + 1], n) for i, n in enumerate(counts))


def _active_hours(rows: Sequence[HourRow]) -> list[HourRow]:
    """Each day's hours from its first to its last active one, quiet hours in between kept."""
    by_day: dict[date, list[HourRow]] = defaultdict(list)
    for row in rows:
        by_day[row.start.date()].append(row)
    kept: list[HourRow] = []
    for day_rows in by_day.values():
        active = [i for i, r in enumerate(day_rows) if r.visitors or r.passersby or (r.present_mean or 0) > 0]
        if active:
            kept.extend(day_rows[active[0] : active[-1] + 1])
    return kept


def for_store(db: Store, store: str, first: date, last: date, config: ReportConfig) -> Report:
    """The report from the roll-ups when it equals the rows' (one sensor), else from the rows."""
    from collector.reports import rollup  # it builds this module's Report

    zone = config.zone
    fast = rollup.for_store(db, store, first, last, zone, config.dwell_edges_min)
    if fast is not None:
        return fast
    return from_rows(db, store, first, last, config)


def from_rows(db: Store, store: str, first: date, last: date, config: ReportConfig) -> Report:
    """Fetch the period's rows from the store and build the report."""
    zone = config.zone
    start, end = period(first, last, zone)
    return build(
        store,
        first,
        last,
        zone,
        visits=db.visits(store, start, end),
        counts=db.counts(store, start, end),
        sensors=db.sensors(store, start, end),
        dwell_edges_min=config.dwell_edges_min,
    )


# -- rendering ----------------------------------------------------------------------------------------------
def pct(value: float | None) -> str:
    """A share as a percentage with one decimal; "-" when there is none (nothing to divide by)."""
    return "-" if value is None else f"{100 * value:.1f}%"


def day_span(first: date, last: date) -> str:
    """The days a report covers, for its title: 2024-03-14, or 2024-03-14 to 2024-03-20."""
    return f"{first}" if first == last else f"{first} to {last}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def render_table(report: Report) -> str:
    """Aligned text for a person: the hours, then the totals, then what the figures mean."""
    days = day_span(report.first, report.last)
    bounds = any(h.present_low is not None for h in report.hours)  # the column only when a sensor sends them
    listens = report.connected is not None  # the column only when a sensor listens to a store network
    out = [
        f"Footfall report: store {report.store}, {days} ({report.timezone})",
        f"Sensors: {', '.join(report.sensors) or 'none'}",
        "",
        f"{'Date':<10}  {'Hour':<5}  {'Passersby':>9}  {'Visitors':>8}"
        + (f"  {'Connected':>9}" if listens else "")
        + f"  {'Capture':>7}  {'Present':>7}"
        + (f"  {'80% range':>11}" if bounds else ""),
    ]
    for h in report.hours:
        out.append(
            f"{h.start:%Y-%m-%d}  {h.start:%H:%M}  {h.passersby:>9}  {h.visitors:>8}  "
            + (f"{h.connected:>9}  " if listens else "")
            + f"{pct(h.capture_rate):>7}  {_num(h.present_mean):>7}"
            + (f"  {_range(h.present_low, h.present_high):>11}" if bounds else "")
        )
    if not report.hours:
        out.append("(no activity)")
    out += [
        f"{'Total':<17}  {report.passersby:>9}  {report.visitors:>8}  "
        + (f"{report.connected:>9}  " if listens else "")
        + f"{pct(report.capture_rate):>7}",
        "",
        f"Visitors         {report.visitors} visits by {report.unique_visitors} devices, "
        f"{report.repeat_visitors} of them repeat visitors",
        f"Capture rate     {pct(report.capture_rate)} of the people who passed by came in",
        f"Median dwell     {_minutes(report.median_dwell_s)}",
    ]
    if report.connected is not None:
        share = pct(report.connected / report.visitors if report.visitors else None)
        out.append(
            f"Connected        {report.connected} visitor visits on the store's Wi-Fi ({share} of visitors)"
        )
    if report.visitors_people is not None or report.passersby_people is not None:
        out.append(
            f"People (est.)    {_num(report.visitors_people, 0)} visitors, {_num(report.passersby_people, 0)} "
            "passersby (people, not devices: the sensors' estimates)"
        )
    total = sum(b.visitors for b in report.dwell)
    width = max(len(b.label) for b in report.dwell)
    for i, bucket in enumerate(report.dwell):
        share = pct(bucket.visitors / total if total else None)
        out.append(
            f"{'Dwell time' if i == 0 else '':<17}{bucket.label:<{width}}  {bucket.visitors:>6}  {share:>6}"
        )
    peak = ""
    if report.present_peak_at is not None:
        peak = f", peak {_num(report.present_peak)} at {report.present_peak_at:%Y-%m-%d %H:%M}"
    if report.present_low is not None and report.present_high is not None:
        peak += f" (80% range of the mean {_range(report.present_low, report.present_high)})"
    out += [
        f"People present   mean {_num(report.present_mean)}{peak}",
        f"Fixed devices    {report.fixed_devices} ({report.fixed_visits} visits), not counted above",
        "",
        *(textwrap.fill(note, 100) for note in report.notes),
    ]
    return "\n".join(out) + "\n"


def render_csv(report: Report) -> str:
    """One row per hour and a total row, for a spreadsheet; the other figures are in table and json."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "store",
            "hour_start",
            "passersby",
            "visitors",
            "capture_rate",
            "present_mean",
            "present_low",
            "present_high",
            "connected",
        ]
    )
    for h in report.hours:
        writer.writerow(
            [
                report.store,
                h.start.isoformat(),
                h.passersby,
                h.visitors,
                _ratio(h.capture_rate),
                _ratio(h.present_mean),
                _ratio(h.present_low),
                _ratio(h.present_high),
                "" if report.connected is None else h.connected,
            ]
        )
    writer.writerow(
        [
            report.store,
            "total",
            report.passersby,
            report.visitors,
            _ratio(report.capture_rate),
            _ratio(report.present_mean),
            _ratio(report.present_low),
            _ratio(report.present_high),
            "" if report.connected is None else report.connected,
        ]
    )
    return buffer.getvalue()


def _range(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{low:.1f}-{high:.1f}"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def to_dict(report: Report) -> dict[str, Any]:
    return {
        "store": report.store,
        "from": report.first.isoformat(),
        "to": report.last.isoformat(),
        "timezone": report.timezone,
        "sensors": list(report.sensors),
        "hours": [
            {
                "start": h.start.isoformat(),
                "passersby": h.passersby,
                "visitors": h.visitors,
                "capture_rate": h.capture_rate,
                "present_mean": h.present_mean,
                "present_low": h.present_low,
                "present_high": h.present_high,
                "connected": None if report.connected is None else h.connected,
            }
            for h in report.hours
        ],
        "totals": {
            "passersby": report.passersby,
            "visitors": report.visitors,
            "capture_rate": report.capture_rate,
            "unique_visitors": report.unique_visitors,
            "repeat_visitors": report.repeat_visitors,
            "median_dwell_s": report.median_dwell_s,
            "present_mean": report.present_mean,
            "present_low": report.present_low,
            "present_high": report.present_high,
            "present_peak": report.present_peak,
            "present_peak_at": report.present_peak_at.isoformat() if report.present_peak_at else None,
            "fixed_visits": report.fixed_visits,
            "fixed_devices": report.fixed_devices,
            "visitors_people": report.visitors_people,
            "passersby_people": report.passersby_people,
            "connected": report.connected,
        },
        "dwell": [
            {"label": b.label, "from_min": b.low_min, "to_min": b.high_min, "visitors": b.visitors}
            for b in report.dwell
        ],
        "notes": list(report.notes),
    }


def render_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {
    "table": render_table,
    "csv": render_csv,
    "json": render_json,
}
