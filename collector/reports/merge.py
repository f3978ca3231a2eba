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

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
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
