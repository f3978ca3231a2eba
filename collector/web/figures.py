"""What the pages show, built from the report and the KPIs (`report.for_store`, `kpis.for_store`).

No arithmetic of footfall is redone here: every figure is a field of a `Report` or `Kpis` (the very
objects `footfall-collector report` and `kpis` print), or a sum of their hourly rows regrouped by day,
week or hour x weekday. Charts are `Chart` values, so a chart and its CSV show the same numbers.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from collector.config import ReportConfig
from collector.online import kpis as omnichannel
from collector.reports import report as reports
from collector.reports import rollup
from collector.reports.merge import StoreInterval, store_intervals
from collector.reports.report import HourRow, Report
from collector.storage.base import ProfileStore, Store
from collector.storage.dashboard import (
    SensorHealth,
    calibrations,
    extents,
    latest_counts_each,
    sensor_health,
    sensor_health_each,
    visit_totals_each,
)
from collector.storage.trigger_log import trigger_log as logged_triggers
from collector.web.charts import Chart, Series
from footfall.calibration import CalibrationReport

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
COMPARE_WEEKS = 4
DEFAULT_RANGE_DAYS = 7


VISIT_LOOKBACK = timedelta(days=1)  # visits that may still overlap the latest interval started since


def present_now(db: Store, store: str) -> StoreInterval | None:
    """People present in the store's latest count interval, combined over its sensors by the report's
    own rule (`merge.store_intervals`: with several sensors, people heard by two count once)."""
    return present_now_each(db, [store])[0]


def present_now_each(db: Store, stores: Sequence[str]) -> list[StoreInterval | None]:
    """`present_now` of each store: one query for all, and the visits of those with several sensors."""
    out: list[StoreInterval | None] = []
    for store, counts in zip(stores, latest_counts_each(db, stores), strict=True):
        if not counts:
            out.append(None)
            continue
        start = counts[0].start
        raw = (
            db.visits(store, start - VISIT_LOOKBACK, start + timedelta(hours=1))
            if len({c.sensor for c in counts}) > 1
            else []
        )
        out.append(store_intervals(counts, raw)[-1])
    return out


def reference_day(
    db: Store,
    store: str,
    zone: ZoneInfo,
    today: date,
    extent: tuple[datetime, datetime] | Literal["read"] | None = "read",
) -> date:
    """Today, or the store's last day with data when it has none today (a closed store, the demo);
    `extent` is the store's (`Store.extent`), when the caller has read it already."""
    extent = db.extent(store) if extent == "read" else extent
    if extent is None:
        return today
    last = extent[1].astimezone(zone).date()
    return today if last >= today else last


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """One row of the chain overview."""

    store: str
    day: date
    present: StoreInterval | None
    report: Report  # of `day`
    sensors_online: int
    sensors_total: int
    same_weekday_visitors: tuple[int, ...]  # visitors on the same weekday 1..4 weeks before

    @property
    def same_weekday_mean(self) -> float | None:
        n = self.same_weekday_visitors
        return sum(n) / len(n) if n else None

    @property
    def against_same_weekday(self) -> float | None:
        """Today's visitors relative to the mean of the same weekday of the last four weeks (+0.1 = +10 %)."""
        mean = self.same_weekday_mean
        return None if not mean else self.report.visitors / mean - 1


def summaries(db: Store, stores: Sequence[str], config: ReportConfig, today: date) -> list[StoreSummary]:
    """The chain overview's rows: each figure read for all the stores at once (a dozen queries for the
    chain, not a dozen a store), from the same report as `footfall-collector report` (`rollup.reports`
    is `report.for_store` for many stores)."""
    spans = extents(db, stores)
    days = [reference_day(db, s, config.zone, today, e) for s, e in zip(stores, spans, strict=True)]
    health = sensor_health_each(db, list(zip(stores, spans, strict=True)))
    before = [[d - timedelta(weeks=w) for w in range(1, COMPARE_WEEKS + 1)] for d in days]
    visitors_before = _visitors_each(
        db, [(s, b) for s, bs in zip(stores, before, strict=True) for b in bs], config
    )
    day_reports = rollup.reports(db, [(s, d, d) for s, d in zip(stores, days, strict=True)], config)
    present = present_now_each(db, stores)
    return [
        StoreSummary(
            store,
            day,
            present[i],
            day_reports[i],
            sum(1 for h in health[i] if h.state == "online"),
            len(health[i]),
            tuple(visitors_before[i * COMPARE_WEEKS : (i + 1) * COMPARE_WEEKS]),
        )
        for i, (store, day) in enumerate(zip(stores, days, strict=True))
    ]


def _visitors_each(db: Store, days: Sequence[tuple[str, date]], config: ReportConfig) -> list[int]:
    """The report's visitors of each (store, day), from the roll-up when it gives the same number.

    With one sensor the report counts each stored visit once (merging sensors changes nothing), so
    the roll-up's sum is its figure; with several, visits heard by two sensors merge, and only the
    report itself can say how many there were.
    """
    spans = [(s, *reports.period(d, d, config.zone)) for s, d in days]
    return [
        t.visitors if t.sensors <= 1 else reports.for_store(db, s, d, d, config).visitors
        for (s, d), t in zip(days, visit_totals_each(db, spans), strict=True)
    ]


@dataclass(frozen=True, slots=True)
class StorePage:
    store: str
    day: date  # "today"
    first: date
    last: date
    present: StoreInterval | None
    today: Report
    period: Report
    sensors: tuple[SensorHealth, ...]
    charts: tuple[Chart, ...]


def store_page(
    db: Store, store: str, config: ReportConfig, today: date, first: date, last: date
) -> StorePage:
    day = reference_day(db, store, config.zone, today)
    today_report = reports.for_store(db, store, day, day, config)
    period = (
        today_report if (first, last) == (day, day) else reports.for_store(db, store, first, last, config)
    )
    return StorePage(
        store,
        day,
        first,
        last,
        present_now(db, store),
        today_report,
        period,
        tuple(sensor_health(db, store)),
        store_charts(today_report, period),
    )


def store_charts(today: Report, period: Report) -> tuple[Chart, ...]:
    hours = today.hours
    return (
        Chart(
            "today",
            f"Today by hour ({today.first})",
            "bar",
            "hour_start",
            tuple(f"{h.start:%H:%M}" for h in hours),
            (
                Series("passersby", tuple(h.passersby for h in hours)),
                Series("visitors", tuple(h.visitors for h in hours)),
            ),
        ),
        Chart(
            "capture",
            f"Capture rate by hour ({today.first})",
            "line",
            "hour_start",
            tuple(f"{h.start:%H:%M}" for h in hours),
            (Series("capture_rate_pct", tuple(_pct(h.capture_rate) for h in hours)),),
            unit="%",
        ),
        _occupancy(period),
        _daily(period),
        _weekly(period),
        Chart(
            "dwell",
            "Dwell time of visitors",
            "bar",
            "dwell",
            tuple(b.label for b in period.dwell),
            (Series("visitors", tuple(b.visitors for b in period.dwell)),),
        ),
        _heatmap(period),
    )


def _pct(share: float | None) -> float | None:
    return None if share is None else round(100 * share, 1)


OCCUPANCY_POINTS = 336  # two weeks of hours; a longer range is drawn in blocks of hours (server-side)
BLOCK_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)
BAR_DAYS = 62  # a longer daily trend is a line


def _occupancy(period: Report) -> Chart:
    hours = [h for h in period.hours if h.present_mean is not None]
    block = next((b for b in BLOCK_HOURS if len(hours) <= OCCUPANCY_POINTS * b), 24)
    groups: dict[datetime, list[HourRow]] = defaultdict(list)
    for h in hours:  # a block is `block` hours of one local day, from its first hour on the clock
        groups[h.start.replace(hour=h.start.hour - h.start.hour % block)].append(h)
    starts = sorted(groups)
    means = [_block_mean([h.present_mean for h in groups[s]]) for s in starts]
    lows = [_block_mean([h.present_low for h in groups[s]]) for s in starts]
    highs = [_block_mean([h.present_high for h in groups[s]]) for s in starts]
    what = "mean of each hour's count intervals" if block == 1 else f"mean of the hourly means, by {block} h"
    return Chart(
        "occupancy",
        f"People present ({what})",
        "line",
        "hour_start",
        tuple(f"{s:%Y-%m-%d %H:%M}" for s in starts),
        (
            Series("present_mean", tuple(_round(m) for m in means)),
            *(
                (  # the 80 % band, when the count events carry it (the report averages it like the mean)
                    Series("present_low", tuple(_round(x) for x in lows), band=True),
                    Series("present_high", tuple(_round(x) for x in highs), band=True),
                )
                if any(x is not None for x in lows)
                else ()
            ),
        ),
        unit="people",
    )


def _block_mean(values: Sequence[float | None]) -> float | None:
    """A block's mean of hourly figures; none when an hour lacks it (the report's rule for the bounds)."""
    return None if not values or None in values else sum(v for v in values if v is not None) / len(values)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _days(period: Report) -> list[date]:
    return [period.first + timedelta(days=i) for i in range((period.last - period.first).days + 1)]


def _daily(period: Report) -> Chart:
    visitors: dict[date, int] = defaultdict(int)
    passersby: dict[date, int] = defaultdict(int)
    for h in period.hours:
        visitors[h.start.date()] += h.visitors
        passersby[h.start.date()] += h.passersby
    days = _days(period)
    return Chart(
        "daily",
        "Daily trend",
        "bar" if len(days) <= BAR_DAYS else "line",  # hundreds of bars: pygal takes a second
        "date",
        tuple(d.isoformat() for d in days),
        (
            Series("passersby", tuple(passersby[d] for d in days)),
            Series("visitors", tuple(visitors[d] for d in days)),
        ),
    )


def _weekly(period: Report) -> Chart:
    visitors: dict[str, int] = defaultdict(int)
    passersby: dict[str, int] = defaultdict(int)
    week = {d: _week(d) for d in _days(period)}
    weeks = sorted(set(week.values()))
    for h in period.hours:
        visitors[week[h.start.date()]] += h.visitors
        passersby[week[h.start.date()]] += h.passersby
    return Chart(
        "weekly",
        "Weekly trend (ISO weeks)",
        "bar",
        "week",
        tuple(weeks),
        (
            Series("passersby", tuple(passersby[w] for w in weeks)),
            Series("visitors", tuple(visitors[w] for w in weeks)),
        ),
    )


def _week(d: date) -> str:
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


def _heatmap(period: Report) -> Chart:
    cells: dict[tuple[int, int], int] = defaultdict(int)
    for h in period.hours:
        cells[(h.start.weekday(), h.start.hour)] += h.visitors
    # From the first to the last hour with a visitor on any weekday: the night's empty columns would
    # only shrink the others (and each dot costs pygal time).
    busy = sorted({hour for (_, hour), n in cells.items() if n}) or [0, 23]
    hours = range(busy[0], busy[-1] + 1)
    return Chart(
        "heatmap",
        "Visitors by hour and weekday",
        "dot",
        "hour",
        tuple(f"{hour:02d}" for hour in hours),
        tuple(Series(WEEKDAYS[wd], tuple(cells[(wd, hour)] for hour in hours)) for wd in range(7)),
    )


@dataclass(frozen=True, slots=True)
class OmniPage:
    store: str
    first: date
    last: date
    kpis: omnichannel.Kpis
    charts: tuple[Chart, ...]


def omni_page(
    db: Store, profiles: ProfileStore, store: str, config: ReportConfig, first: date, last: date
) -> OmniPage:
    k = omnichannel.for_store(db, profiles, store, first, last, config, omnichannel.DEFAULT_DAYS)
    chart = Chart(
        "omni-daily",
        "Visitor visits and recognised visits by day",
        "bar",
        "date",
        tuple(d.day.isoformat() for d in k.daily),
        (
            Series("visitors", tuple(d.visitors for d in k.daily)),
            Series("recognised", tuple(d.recognised for d in k.daily)),
        ),
    )
    return OmniPage(store, first, last, k, (chart,))


@dataclass(frozen=True, slots=True)
class TriggerLine:
    """One line of the trigger log, in the store's time zone."""

    at: str  # when the visit started
    profile_id: str
    sensor: str
    sent: str
    visit: str  # the visit's event id, as the trigger carried it


def trigger_log(db: Store, store: str, zone: ZoneInfo, first: date, last: date) -> list[TriggerLine]:
    """The triggers sent for the store's visits started on the local days `first`..`last`."""
    return [
        TriggerLine(local(t.at, zone), t.profile_id, t.sensor, local(t.sent, zone), t.visit)
        for t in logged_triggers(db, store, *reports.period(first, last, zone))
    ]


def trigger_csv(lines: Sequence[TriggerLine]) -> str:
    """The trigger log's CSV: the lines the page shows, column for column."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["visit_start", "profile_id", "sensor", "sent", "visit"])
    writer.writerows([t.at, t.profile_id, t.sensor, t.sent, t.visit] for t in lines)
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class CalibrationPage:
    store: str
    reports: tuple[tuple[CalibrationReport, Chart], ...]  # the latest of each sensor, with its chart

    @property
    def charts(self) -> tuple[Chart, ...]:
        return tuple(chart for _, chart in self.reports)


def calibration_page(db: Store, store: str, zone: ZoneInfo) -> CalibrationPage:
    return CalibrationPage(store, tuple((r, _calibration_chart(r, zone)) for r in calibrations(db, store)))


def _calibration_chart(r: CalibrationReport, zone: ZoneInfo) -> Chart:
    return Chart(
        f"calibration-{r.sensor}",
        f"Sensor {r.sensor}: estimate against the people counted, per 15 minutes",
        "line",
        "window_start",
        tuple(f"{w.start.astimezone(zone):%Y-%m-%d %H:%M}" for w in r.windows),
        (
            Series("truth", tuple(w.truth for w in r.windows)),
            Series("before", tuple(round(w.before, 2) for w in r.windows)),
            Series("fitted", tuple(round(w.fitted, 2) for w in r.windows)),
        ),
        unit="people",
    )


def local(at: datetime | None, zone: ZoneInfo) -> str:
    return "-" if at is None else f"{at.astimezone(zone):%Y-%m-%d %H:%M:%S}"
