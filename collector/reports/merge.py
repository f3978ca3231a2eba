"""Multi-sensor stores: one person heard by two sensors at once is one visit, not two.

All sensors of one store derive their pseudonyms from the same seed, so in one epoch one phone has one
device pseudonym on every sensor. Visits from different sensors with the same (epoch, device) whose
times overlap (or touch) are merged into one: the earliest start, the latest end, the dwell between them, and the
sensor, kind and visit number of the visit with the strongest signal (`rssi_max`; when the signal is not
known, the longest dwell). Different epochs never merge: their pseudonyms are unrelated by design.
Recognised (consented) visits merge the same way by profile, the consent token being stable. Two
visits of one sensor never merge with each other: that sensor has already sessionised them.

Visits of one device from different sensors also merge when they do not overlap but lie within
`SAME_DEVICE_GAP` of each other (the sensor's own visit timeout): one sensor hearing every frame would have
made them one visit, and a passerby heard by the door at one scan and by the back at the next is one person.

The name joins only the visits both sensors began on the same address. A phone that changes address at
every scan is named after the first address each sensor heard, so one that the second sensor first heard a
scan later, or that one sensor split in two, keeps two names: on the generated stores (design seeds 1-2)
the back sensor's random-address visitor visits found the door's copy within the gap for only 64-78 % of
them, its factory-address ones for all. `store_visits` uses that: a factory address is the same pseudonym
on every sensor, so the share of a sensor's factory-address visits that an earlier sensor heard too is how
many people the two share, and the sensor's unjoined random-address visits beyond that share are dropped
as the copies they must be (see the comment before `store_visits`).

Pure functions over stored rows; the report, the dashboard and the omnichannel KPIs call them before
counting.
"""

from __future__ import annotations

import statistics
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
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


SAME_DEVICE_GAP = timedelta(seconds=600)
"""Visits of one device on two sensors this close merge: the sensor's default `presence.visit_timeout_s`."""


def merge_overlapping(
    visits: Sequence[V],
    key: Callable[[V], Hashable],
    strength: Callable[[V], float | None] = rssi_of,
    gap: timedelta = timedelta(0),
) -> list[V]:
    """Merge visits of different sensors with equal `key` and [start, end] overlapping or `gap` apart.

    Returns the visits sorted by start, then sensor.
    """
    merged = [_one(c, strength) for c in clusters(visits, key, gap)]
    return sorted(merged, key=lambda v: (v.start, v.sensor))


def clusters(
    visits: Sequence[V], key: Callable[[V], Hashable], gap: timedelta = timedelta(0)
) -> list[list[V]]:
    """The groups `merge_overlapping` makes one visit of: equal key, at most one visit per sensor."""
    groups: dict[Hashable, list[V]] = defaultdict(list)
    for v in visits:
        groups[key(v)].append(v)
    out: list[list[V]] = []
    for group in groups.values():
        group.sort(key=lambda v: (v.start, v.sensor))
        found: list[list[V]] = []
        for v in group:  # into the first cluster it reaches that has no visit of its sensor yet
            into = next(
                (
                    c
                    for c in found
                    if v.start <= max(x.end for x in c) + gap and all(x.sensor != v.sensor for x in c)
                ),
                None,
            )
            if into is None:
                found.append([v])
            else:
                into.append(v)
        out.extend(found)
    return out


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


def _device(v: VisitRow) -> tuple[str, str]:
    return (v.epoch, v.device)


def merge_recognised(visits: Sequence[ConsentedVisit]) -> list[ConsentedVisit]:
    """One recognised visit per profile at any moment, across the sensors of one store."""
    return merge_overlapping(visits, lambda v: v.profile, lambda v: None)


# -- the store: visits, people present and people estimates, each person once -----------------------------
#
# The sensors are taken in order, the one with the most visitor time first. Of each later sensor's visits
# of a kind (visitor, passerby), a share `shared` was heard by an earlier sensor too. Its factory-address
# visits measure that share: their name is the address, the same on every sensor, so the name join misses
# none of them (on the generated stores: every back-sensor visitor visit of a factory address found the
# door's copy). Random-address visits join by name less often, and which of a sensor's unjoined ones are
# copies cannot be told apart; how many can: all but (1 - shared) of the sensor's visits. So the store
# keeps every visit of the first sensor, every merged one, every unjoined factory-address one, and of a later
# sensor's unjoined random-address visits as many as make (1 - shared) of its visits, dropping first those
# most covered in time by an earlier sensor's visits of the kind. A sensor with few factory-address visits
# leans on the share the name join shows for all its visits (`PRIOR_VISITS` of them), which can only be
# lower: when in doubt the store counts more, never fewer, than its sensors heard apart.
#
# People present follow the same shares: an interval's store `present` is its first sensor's plus
# (1 - shared visitor share) of each later sensor's, and so are the ends of its 80 % interval. That is the
# sum for sensors that hear different people and the first sensor's figure for two that hear everybody.
# People estimates (`visitors_est`, `passersby_est`) follow the shares of their kind (`store_people`).

KINDS = ("visitor", "passerby")
PRIOR_VISITS = 3.0  # pseudo-visits at the name join's share, for a sensor with few factory-address visits


@dataclass(frozen=True, slots=True)
class StoreVisits:
    """The store's visits, each person once, and what each sensor shares with the ones before it."""

    visits: list[VisitRow]  # sorted by start, then sensor
    order: tuple[str, ...]  # sensors, the most visitor time first
    shared: dict[tuple[str, str], float]  # (sensor, kind): share of its visits an earlier sensor heard
    # kind -> (the sensors in the order its people estimate takes them, each later one's shared share):
    # visitors in `order`, passersby the sensor that hears the street best first (`store_people`)
    people: dict[str, tuple[tuple[str, ...], dict[str, float]]]


def store_visits(raw: Sequence[VisitRow]) -> StoreVisits:
    """The store's visits from every sensor's (see the comment above)."""
    heard: dict[str, float] = defaultdict(float)
    for v in raw:
        heard[v.sensor] += v.dwell_s if v.kind == "visitor" else 0.0
    order = tuple(sorted(heard, key=lambda name: (-heard[name], name)))
    rank = {name: i for i, name in enumerate(order)}
    groups = clusters(raw, _device, SAME_DEVICE_GAP)
    lead = [min(rank[v.sensor] for v in c) for c in groups]

    shared = {
        (sensor, kind): share for kind in KINDS for sensor, share in _shares(groups, order, kind).items()
    }

    merged = {id(c): _one(c, rssi_of) for c in groups}
    dropped: set[int] = set()
    for sensor in order[1:]:
        for kind in KINDS:
            mine = sum(1 for v in raw if v.sensor == sensor and v.kind == kind)
            alone = [
                c
                for c, lead_rank in zip(groups, lead, strict=True)
                if order[lead_rank] == sensor and merged[id(c)].kind == kind
            ]
            keep = round(mine * (1.0 - shared.get((sensor, kind), 0.0)))
            doubtful = [c for c in alone if any(v.randomized is not False for v in c)]
            surplus = min(len(alone) - keep, len(doubtful))
            if surplus <= 0:
                continue
            earlier = _union(v for v in raw if rank[v.sensor] < rank[sensor] and v.kind == kind)
            doubtful.sort(key=lambda c: (-_covered(merged[id(c)], earlier), merged[id(c)].device))
            dropped.update(id(c) for c in doubtful[:surplus])
    visits = sorted((m for key, m in merged.items() if key not in dropped), key=lambda v: (v.start, v.sensor))
    # Passersby are the street's: the sensor that hears the street best (the strongest median signal of
    # its passerby visits: the one at the window) leads their people.
    street = tuple(sorted(order, key=lambda name: (-_street_signal(raw, name), rank[name])))
    people = {
        "visitor": (
            order,
            {name: shared[(name, "visitor")] for name in order[1:] if (name, "visitor") in shared},
        )
    }
    people["passerby"] = (street, _shares(groups, street, "passerby"))
    return StoreVisits(visits, order, shared, people)


def _street_signal(raw: Sequence[VisitRow], sensor: str) -> float:
    """The median strongest signal (dBm) of the sensor's passerby visits; -inf with none known."""
    heard = [
        v.rssi_max for v in raw if v.sensor == sensor and v.kind == "passerby" and v.rssi_max is not None
    ]
    return statistics.median(heard) if heard else float("-inf")


def _shares(groups: Sequence[Sequence[VisitRow]], order: Sequence[str], kind: str) -> dict[str, float]:
    """Per sensor after the first of `order`: the share of its visits of `kind` an earlier sensor heard."""
    rank = {name: i for i, name in enumerate(order)}
    lead = [min(rank[v.sensor] for v in c) for c in groups]
    out: dict[str, float] = {}
    for sensor in order[1:]:
        # each visit of `sensor` of `kind`: did an earlier sensor hear it, did it use a factory address
        joined = [
            (lead_rank < rank[sensor], v.randomized is False)
            for c, lead_rank in zip(groups, lead, strict=True)
            for v in c
            if v.sensor == sensor and v.kind == kind
        ]
        if joined:
            named = sum(j for j, _ in joined) / len(joined)
            factory = [j for j, f in joined if f]
            out[sensor] = (sum(factory) + PRIOR_VISITS * named) / (len(factory) + PRIOR_VISITS)
    return out


def _union(visits: Iterable[_Timed]) -> list[tuple[datetime, datetime]]:
    """The time the visits cover, as disjoint [start, end] spans in order."""
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted((v.start, v.end) for v in visits):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def _covered(visit: _Timed, spans: Sequence[tuple[datetime, datetime]]) -> float:
    """The share of `visit`'s span (taken as at least a second) that the disjoint `spans` cover."""
    total = 0.0
    i = max(bisect_right(spans, (visit.start, visit.start)) - 1, 0)
    while i < len(spans) and spans[i][0] <= visit.end:
        lo, hi = max(spans[i][0], visit.start), min(spans[i][1], visit.end)
        total += max((hi - lo).total_seconds(), 0.0)
        i += 1
    return total / max((visit.end - visit.start).total_seconds(), 1.0)


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


def store_intervals(
    counts: Sequence[_Count], raw: Sequence[VisitRow], merged: StoreVisits | None = None
) -> list[StoreInterval]:
    """One `StoreInterval` per count-interval start, in time order (see the comment before `store_visits`).

    `merged` is `store_visits(raw)` when the caller has it already.
    """
    store = merged if merged is not None else store_visits(raw)
    rank = {name: i for i, name in enumerate(store.order)}
    by_start: dict[datetime, list[_Count]] = defaultdict(list)
    for c in counts:
        by_start[c.start].append(c)
    out = []
    for start in sorted(by_start):
        # the first sensor of the store that counted this interval counts whole, the others their own part
        group = sorted(by_start[start], key=lambda c: (rank.get(c.sensor, len(rank)), c.sensor))
        weights = [1.0] + [1.0 - store.shared.get((c.sensor, "visitor"), 0.0) for c in group[1:]]
        lows, highs = [c.present_low for c in group], [c.present_high for c in group]
        out.append(
            StoreInterval(
                start,
                max(c.end for c in group),
                sum(w * c.present for w, c in zip(weights, group, strict=True)),
                None if None in lows else sum(w * (x or 0.0) for w, x in zip(weights, lows, strict=True)),
                None if None in highs else sum(w * (x or 0.0) for w, x in zip(weights, highs, strict=True)),
                len({c.sensor for c in group}),
            )
        )
    return out


class _Estimates(Protocol):
    @property
    def sensor(self) -> str: ...
    @property
    def visitors_est(self) -> float | None: ...
    @property
    def passersby_est(self) -> float | None: ...


def store_people(counts: Iterable[_Estimates], store: StoreVisits, kind: str) -> float | None:
    """The store's people estimate of `kind` (visitor, passerby): the first sensor's whole, each later
    sensor's (1 - shared) of its own, as people present (see the comment before `store_visits`); None when
    no count carried one.

    Not the summed estimates scaled by the share of visits the store keeps: a sensor's people per visit is
    its own (a back sensor that hears the shop's front below the visitor level makes long passerby visits,
    which its passerby estimate de-chains into more passers-by than the door's; on the generated stores'
    design seeds 1-2 the scaled sum read two sensors' passersby +22 to +48 % in the boutique and the store).
    """
    field = "visitors_est" if kind == "visitor" else "passersby_est"
    order, shared = store.people[kind]
    rank = {name: i for i, name in enumerate(order)}
    per_sensor: dict[str, float] = {}
    for c in counts:
        value: float | None = getattr(c, field)
        if value is not None:
            per_sensor[c.sensor] = per_sensor.get(c.sensor, 0.0) + value
    if not per_sensor:
        return None
    first = min(per_sensor, key=lambda name: (rank.get(name, len(rank)), name))
    return sum(
        people if name == first else people * (1.0 - shared.get(name, 0.0))
        for name, people in per_sensor.items()
    )
