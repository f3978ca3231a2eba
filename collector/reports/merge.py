"""Multi-sensor stores: one person heard by two sensors at once is one visit, not two.

All sensors of one store derive their pseudonyms from the same seed, so in one epoch one phone has one
device pseudonym on every sensor. Visits from different sensors with the same (epoch, device) whose
times overlap (or touch) are merged into one: the earliest start, the latest end, the dwell between them, and the
sensor, kind and visit number of the visit with the strongest signal (`rssi_max`; when the signal is not
known, the longest dwell). Different epochs never merge: their pseudonyms are unrelated by design.
Recognised (consented) visits merge the same way by profile, the consent token being stable. Two
visits of one sensor never merge with each other: that sensor has already sessionised them.

Pure functions over stored rows; the report and the omnichannel KPIs call them before counting.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol, TypeVar

from collector.storage.base import VisitRow
from collector.storage.privacy import ConsentedVisit


class _Timed(Protocol):
    @property
    def sensor(self) -> str: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def dwell_s(self) -> float: ...


V = TypeVar("V", bound=_Timed)


def rssi_of(visit: object) -> float | None:
    """A row's strongest signal (dBm), when the row carries one."""
    value = getattr(visit, "rssi_max", None)
    return float(value) if isinstance(value, int | float) else None


def merge_overlapping(
    visits: Sequence[V],
    key: Callable[[V], Hashable],
    strength: Callable[[V], float | None] = rssi_of,
) -> list[V]:
    """Merge visits of different sensors with equal `key` and overlapping [start, end].

    Returns the visits sorted by start, then sensor.
    """
    groups: dict[Hashable, list[V]] = defaultdict(list)
    for v in visits:
        groups[key(v)].append(v)
    merged: list[V] = []
    for group in groups.values():
        group.sort(key=lambda v: (v.start, v.sensor))
        clusters: list[list[V]] = []
        for v in group:  # into the first cluster it overlaps that has no visit of its sensor yet
            into = next(
                (
                    c
                    for c in clusters
                    if v.start <= max(x.end for x in c) and all(x.sensor != v.sensor for x in c)
                ),
                None,
            )
            if into is None:
                clusters.append([v])
            else:
                into.append(v)
        merged.extend(_one(c, strength) for c in clusters)
    return sorted(merged, key=lambda v: (v.start, v.sensor))


def _one(cluster: Sequence[V], strength: Callable[[V], float | None]) -> V:
    if len(cluster) == 1:
        return cluster[0]

    def rank(v: V) -> tuple[bool, float, float]:
        s = strength(v)
        return (s is not None, s if s is not None else 0.0, v.dwell_s)

    best = max(cluster, key=rank)  # the first of equals wins: the earliest start, then sensor name
    start, end = min(v.start for v in cluster), max(v.end for v in cluster)
    # The winner keeps its own rssi_max: the strongest of the cluster.
    return replace(best, start=start, end=end, dwell_s=(end - start).total_seconds())  # type: ignore[type-var]


def merge_sensors(visits: Sequence[VisitRow]) -> list[VisitRow]:
    """One visit per device and epoch at any moment, across the sensors of one store."""
    return merge_overlapping(visits, lambda v: (v.epoch, v.device))


def merge_recognised(visits: Sequence[ConsentedVisit]) -> list[ConsentedVisit]:
    """One recognised visit per profile at any moment, across the sensors of one store."""
    return merge_overlapping(visits, lambda v: v.profile, lambda v: None)


# -- counts: people present and people estimates across the sensors of one store ---------------------------
#
# A sensor's `present` counts the people it hears inside; two sensors of one store hear many of the same
# people, so their sum counts those twice. How many they share is read off the visits: in an interval, the
# visitor time of the merged visits (each person once) over the sum of each sensor's own visitor time is the
# share of the summed figure that is distinct people (1 when the sensors hear disjoint people, 1/2 when both
# hear everybody). The store's `present` is the sensors' sum times that share, as are the ends of its 80 %
# interval; an interval with no visitor visit takes the share of the whole period. People estimates
# (`visitors_est`, `passersby_est`) are scaled the same way by merged over per-sensor visit counts per kind.


class _Count(Protocol):
    @property
    def sensor(self) -> str: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def present(self) -> float: ...
    @property
    def present_low(self) -> float | None: ...
    @property
    def present_high(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class StoreInterval:
    """People present in the store over one count interval, every sensor's count combined."""

    start: datetime
    end: datetime
    present: float
    present_low: float | None  # None unless every sensor's count carried its interval
    present_high: float | None
    sensors: int


def _visitor_time(
    visits: Iterable[_Timed], starts: Sequence[datetime], ends: Sequence[datetime]
) -> list[float]:
    """Seconds of visitor visits inside each interval [starts[i], ends[i]) (starts sorted)."""
    out = [0.0] * len(starts)
    for v in visits:
        if getattr(v, "kind", "visitor") != "visitor":
            continue
        i = max(bisect_right(starts, v.start) - 1, 0)
        while i < len(starts) and starts[i] < v.end:
            out[i] += max((min(v.end, ends[i]) - max(v.start, starts[i])).total_seconds(), 0.0)
            i += 1
    return out


def store_intervals(
    counts: Sequence[_Count], raw: Sequence[_Timed], merged: Sequence[_Timed]
) -> list[StoreInterval]:
    """One `StoreInterval` per count-interval start, in time order (see the comment above)."""
    by_start: dict[datetime, list[_Count]] = defaultdict(list)
    for c in counts:
        by_start[c.start].append(c)
    starts = sorted(by_start)
    ends = [max(c.end for c in by_start[s]) for s in starts]
    sensors = [len({c.sensor for c in by_start[s]}) for s in starts]
    shares = [1.0] * len(starts)
    if any(n > 1 for n in sensors):
        summed, distinct = _visitor_time(raw, starts, ends), _visitor_time(merged, starts, ends)
        period = sum(distinct) / sum(summed) if sum(summed) > 0 else 1.0
        shares = [
            1.0 if n == 1 else (d / t if t > 0 else period)
            for n, d, t in zip(sensors, distinct, summed, strict=True)
        ]
    out = []
    for start, end, share, n in zip(starts, ends, shares, sensors, strict=True):
        group = by_start[start]
        lows, highs = [c.present_low for c in group], [c.present_high for c in group]
        out.append(
            StoreInterval(
                start,
                end,
                share * sum(c.present for c in group),
                None if None in lows else share * sum(x for x in lows if x is not None),
                None if None in highs else share * sum(x for x in highs if x is not None),
                n,
            )
        )
    return out


def distinct_visits(raw: Sequence[_Timed], merged: Sequence[_Timed], kind: str) -> float:
    """Merged over per-sensor visits of `kind`: the share of summed per-sensor people estimates to keep."""
    summed = sum(1 for v in raw if getattr(v, "kind", None) == kind)
    return sum(1 for v in merged if getattr(v, "kind", None) == kind) / summed if summed else 1.0
