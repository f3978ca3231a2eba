"""Omnichannel KPIs of one store and period: how online activity and store visits lead to each other.

Pure functions from stored rows to `Kpis`, like collector/reports/report.py, over the same period (whole local
days in the store's time zone, see `report.period`). Only *visitor* visits count as visits (passersby
did not come in; fixed devices are not customers), and only consented profiles are joined: a visit is
*recognised* when its consent token is registered to a profile. With N = `days`:

- web-to-store rate: of the consented profiles with an online event in the period, the share that
  visited the store within N days after one of those events (after it, at most N days later);
- store-to-web rate: of the recognised visits started in the period, the share followed by an online
  purchase of the same profile within N days after the visit ended;
- median lag: over the recognised visits of the period that had an online event of the same profile in
  the N days before the visit started, the median time from the last such event to the visit's start;
- recognised share: recognised visits / all visitor visits of the period; when the store's sensors hear
  its Wi-Fi (`capture.store_networks`), recognised *connected* visits / connected visitor visits instead:
  a consent names the address the captive portal saw, which a phone that randomizes shows only while
  connected, so the visits that could be recognised are the connected ones (the others' share stays
  where the few factory addresses put it);
- per local day: visitor visits (footfall), recognised visits and recognised profiles.

Several sensors in one store hear one visit once each; visits of one device (recognised: one profile)
at overlapping times count once, and the visitor visits are the report's (collector/reports/merge.py,
`store_visits`: a person two sensors named apart counts once too).
"""

from __future__ import annotations

import bisect
import json
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from collector.config import ReportConfig
from collector.online.profiles import OnlineEvent
from collector.reports.merge import merge_recognised, store_visits
from collector.reports.report import day_span, pct, period
from collector.storage.base import ProfileStore, Store, VisitRow
from collector.storage.privacy import ConsentedVisit

DEFAULT_DAYS = 7
MULTI_SENSOR_NOTE = "{n} sensors: a visit heard by several of them at overlapping times counts once."
CONNECTED_NOTE = (
    "Recognised share over the {n} visitor visits connected to the store's Wi-Fi: consents name the address"
    " the captive portal saw, which a phone shows only while connected."
)


@dataclass(frozen=True, slots=True)
class DayRow:
    day: date  # local
    visitors: int  # visitor visits
    recognised: int  # ...of them recognised
    recognised_profiles: int


@dataclass(frozen=True, slots=True)
class Kpis:
    store: str
    first: date
    last: date
    timezone: str
    days: int  # N
    online_profiles: int  # consented profiles with an online event in the period
    web_to_store_profiles: int  # ...that visited within N days after
    visitor_visits: int
    recognised_visits: int
    recognised_profiles: int
    store_to_web_visits: int  # recognised visits followed by an online purchase within N days
    lag_visits: int  # recognised visits with an online event in the N days before
    median_lag_s: float | None
    daily: tuple[DayRow, ...]
    notes: tuple[str, ...]
    connected_visits: int = 0  # visitor visits of devices connected to a store network
    recognised_connected: int = 0  # ...of them recognised

    @property
    def web_to_store_rate(self) -> float | None:
        return _share(self.web_to_store_profiles, self.online_profiles)

    @property
    def store_to_web_rate(self) -> float | None:
        return _share(self.store_to_web_visits, self.recognised_visits)

    @property
    def recognised_share(self) -> float | None:
        if self.connected_visits:
            return _share(self.recognised_connected, self.connected_visits)
        return _share(self.recognised_visits, self.visitor_visits)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def build(
    store: str,
    first: date,
    last: date,
    zone: ZoneInfo,
    days: int,
    *,
    visits: Sequence[VisitRow],
    recognised: Sequence[ConsentedVisit],
    online: Sequence[OnlineEvent],
    sensors: int = 1,
) -> Kpis:
    """The KPIs from rows of the store: `visits` of the period, `recognised` visits of the period and the N
    days after it, `online` events of consented profiles from N days before the period to N days after."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    start, end = period(first, last, zone)
    window = timedelta(days=days)
    visitor_visits = [
        v for v in store_visits(visits).visits if v.kind == "visitor" and start <= v.start < end
    ]
    came = [v for v in merge_recognised(recognised) if v.kind == "visitor"]
    in_period = [v for v in came if start <= v.start < end]

    times: dict[str, list[datetime]] = defaultdict(list)  # online events per profile, sorted
    purchases: dict[str, list[datetime]] = defaultdict(list)
    for e in sorted(online, key=lambda e: e.at):
        times[e.profile_id].append(e.at)
        if e.type == "purchase":
            purchases[e.profile_id].append(e.at)

    active = {e.profile_id for e in online if start <= e.at < end}
    converted = _web_to_store(active, came, times, start, end, window)
    followed = sum(1 for v in in_period if _any_in(purchases[v.profile], v.end, v.end + window))
    lags = _lags_s(in_period, times, window)

    notes = []
    if sensors > 1:
        notes.append(MULTI_SENSOR_NOTE.format(n=sensors))
    connected = sum(1 for v in visitor_visits if v.connected)
    if connected:
        notes.append(CONNECTED_NOTE.format(n=connected))
    return Kpis(
        store=store,
        first=first,
        last=last,
        timezone=zone.key,
        days=days,
        online_profiles=len(active),
        web_to_store_profiles=len(converted),
        visitor_visits=len(visitor_visits),
        recognised_visits=len(in_period),
        recognised_profiles=len({v.profile for v in in_period}),
        store_to_web_visits=followed,
        lag_visits=len(lags),
        median_lag_s=statistics.median(lags) if lags else None,
        daily=_daily(first, last, zone, visitor_visits, in_period),
        notes=tuple(notes),
        connected_visits=connected,
        recognised_connected=sum(1 for v in in_period if v.connected),
    )


def _web_to_store(
    active: set[str],
    came: Sequence[ConsentedVisit],
    times: Mapping[str, Sequence[datetime]],
    start: datetime,
    end: datetime,
    window: timedelta,
) -> set[str]:
    """Profiles of `active` with an online event in the period, then a visit in (event, event + N]."""
    visit_starts: dict[str, list[datetime]] = defaultdict(list)  # sorted: `came` is by start
    for v in sorted(came, key=lambda v: v.start):
        visit_starts[v.profile].append(v.start)
    return {
        p
        for p in active
        if any(_any_in(visit_starts[p], at, at + window) for at in times[p] if start <= at < end)
    }


def _lags_s(
    visits: Sequence[ConsentedVisit], times: Mapping[str, Sequence[datetime]], window: timedelta
) -> list[float]:
    """Seconds from a profile's last online event to its visit, for visits with one within N days before."""
    lags = []
    for v in visits:
        before = times[v.profile][: bisect.bisect_left(times[v.profile], v.start)]
        if before and v.start - before[-1] <= window:
            lags.append((v.start - before[-1]).total_seconds())
    return lags


def _any_in(times: Sequence[datetime], after: datetime, until: datetime) -> bool:
    """Some time t in sorted `times` with after < t <= until."""
    i = bisect.bisect_right(times, after)
    return i < len(times) and times[i] <= until


def _daily(
    first: date, last: date, zone: ZoneInfo, visits: Sequence[VisitRow], recognised: Sequence[ConsentedVisit]
) -> tuple[DayRow, ...]:
    footfall: dict[date, int] = defaultdict(int)
    known: dict[date, list[str]] = defaultdict(list)
    for v in visits:
        footfall[v.start.astimezone(zone).date()] += 1
    for r in recognised:
        known[r.start.astimezone(zone).date()].append(r.profile)
    count = (last - first).days + 1
    return tuple(
        DayRow(d, footfall[d], len(known[d]), len(set(known[d])))
        for d in (first + timedelta(days=i) for i in range(count))
    )


def for_store(
    db: Store, profiles: ProfileStore, store: str, first: date, last: date, config: ReportConfig, days: int
) -> Kpis:
    """Fetch the rows the KPIs need and build them."""
    zone = config.zone
    start, end = period(first, last, zone)
    window = timedelta(days=days)
    return build(
        store,
        first,
        last,
        zone,
        days,
        visits=db.visits(store, start, end),
        recognised=db.consented_visits(store, start, end + window),
        online=profiles.consented_online_events(start - window, end + window),
        sensors=len(db.sensors(store, start, end)),
    )


# -- rendering ----------------------------------------------------------------------------------------------
def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f} h"


def render_table(k: Kpis) -> str:
    days = day_span(k.first, k.last)
    out = [
        f"Omnichannel KPIs: store {k.store}, {days} ({k.timezone}), window {k.days} days",
        "",
        f"Web-to-store     {pct(k.web_to_store_rate)}: {k.web_to_store_profiles} of {k.online_profiles} "
        f"consented profiles active online visited within {k.days} days",
        f"Store-to-web     {pct(k.store_to_web_rate)}: {k.store_to_web_visits} of {k.recognised_visits} "
        f"recognised visits followed by an online purchase within {k.days} days",
        f"Median lag       {_hours(k.median_lag_s)} from the last online event to the visit "
        f"({k.lag_visits} visits)",
        f"Recognised       {pct(k.recognised_share)}: "
        + (
            f"{k.recognised_connected} of {k.connected_visits} connected visitor visits; "
            if k.connected_visits
            else ""
        )
        + f"{k.recognised_visits} of {k.visitor_visits} visitor visits, by {k.recognised_profiles} profiles",
        "",
        f"{'Date':<10}  {'Visitors':>8}  {'Recognised':>10}  {'Profiles':>8}",
    ]
    out += [f"{d.day}  {d.visitors:>8}  {d.recognised:>10}  {d.recognised_profiles:>8}" for d in k.daily]
    out += ["", *k.notes] if k.notes else []
    return "\n".join(out) + "\n"


def to_dict(k: Kpis) -> dict[str, Any]:
    return {
        "store": k.store,
        "from": k.first.isoformat(),
        "to": k.last.isoformat(),
        "timezone": k.timezone,
        "days": k.days,
        "web_to_store": {
            "rate": k.web_to_store_rate,
            "profiles": k.web_to_store_profiles,
            "online_profiles": k.online_profiles,
        },
        "store_to_web": {
            "rate": k.store_to_web_rate,
            "visits": k.store_to_web_visits,
            "recognised_visits": k.recognised_visits,
        },
        "median_lag_s": k.median_lag_s,
        "lag_visits": k.lag_visits,
        "recognised": {
            "share": k.recognised_share,
            "visits": k.recognised_visits,
            "visitor_visits": k.visitor_visits,
            "profiles": k.recognised_profiles,
            "connected_visits": k.connected_visits,
            "recognised_connected": k.recognised_connected,
        },
        "daily": [
            {
                "date": d.day.isoformat(),
                "visitors": d.visitors,
                "recognised": d.recognised,
                "recognised_profiles": d.recognised_profiles,
            }
            for d in k.daily
        ],
        "notes": list(k.notes),
    }


def render_json(k: Kpis) -> str:
    return json.dumps(to_dict(k), indent=2) + "\n"


RENDERERS: dict[str, Callable[[Kpis], str]] = {"table": render_table, "json": render_json}
