"""The presence model: device sightings → visits and per-interval counts.

A visit opens at a device's first frame and closes once the device has been silent for
`visit_timeout_s`. It is a *visitor* visit if its signal reached `visitor_rssi` and it lasted at least
`min_dwell_s`, otherwise a *passerby* (the Meraki / Cloud4Wi definitions); a device the estimator
flags as fixed or staff is reported as `fixed` and never counted as a visitor.

Time comes only from the sightings (frame timestamps in replay, a clock in live capture via
`advance`), so a day of traffic runs through here in milliseconds and the same input always gives the
same events.

A visitor's visit event ends after its last frame by the stay's expected unheard ends (`unheard`: the
device resolver's measure of its phones' gaps between scans, sensor/estimate/dwell.py), so its dwell is
the stay's, not only the part heard; the counts keep the heard span.

Count events carry people estimates too (PresenceParams says how): `visitors_est` from the visitor visits,
`passersby_est` from a rate, the scan bursts heard at the edge of range, since passers-by of one phone
model chain into one device and visits lose them.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from footfall.events import CountEvent, VisitEvent, VisitKind, VisitOpenEvent, event_id, utc
from footfall.times import NS
from sensor.decode.frames import Sighting
from sensor.estimate.spans import InsideVisits, PeopleEstimate, VisitSpan, span

__all__ = ["PeopleEstimate", "PresenceModel", "PresenceParams", "VisitSpan"]

_SIGNAL_LOW: Final = -128  # the signal of rssi_hist's first count (a signed byte's range)
_SIGNAL_SLOTS: Final = 256
EXPIRY_TICK_NS = 5 * NS  # how often (frame time) open visits are checked for their timeout
# Before every frame time (int64 ns): an int, not -inf, so the compiled build keeps `_due_ns` a native int.
DUE_AT_ONCE = -(2**63)

Emit = Callable[[VisitEvent | CountEvent | VisitOpenEvent], None]


@dataclass(frozen=True, slots=True)
class PresenceParams:
    """The visit model's numbers (Meraki/Cloud4Wi style): the defaults are the common industry ones.

    The `presence` section of the sensor config (sensor/config.py) composes these, with their bounds.
    """

    visit_timeout_s: float = 600  # close a visit after this long unheard
    visitor_rssi: int = -70  # a visit whose strongest frame reached this (dBm) is inside...
    # 180 s, not the industry's 5 minutes: phones scan every 0.5-2 minutes, so a 5-minute stay is heard
    # for about 4, and a 300 s threshold drops real short visits (bench/accuracy.py, generated days).
    min_dwell_s: float = 180  # ...and that lasted at least this long
    interval_s: int = 300  # count events every this many seconds; divides 3600
    # People per found visit, the uncalibrated defaults fitted on generated store seeds 1-2 and 9-16
    # (the shops' people, a quarter with no probing phone; `.venv/bin/python -m bench.visitfactors`: 60
    # fitting days, since people per visitor visit moves 1.04-1.79 from day to day); a site's own
    # override them. visitors_est = visitor visits x visitor_factor.
    visitor_factor: float = 1.37
    # passersby_est = street bursts x passerby_factor: a rate, not the passerby visits. Streams of
    # same-model passers-by chain into one long "device" (the mall front's 300 an hour), so counting
    # visits loses them; how often phones scan at the edge of the sensor's range does not. A street burst
    # is a scan burst (an address's frames less than a second apart) whose first frame is weaker than
    # `street_rssi`: at -85 dBm, mostly the street's far side and the pavement's ends (-82 left the
    # worst fitting day as far off, 38 %: the grid's pick by a hair). A fixed level, not moved with the
    # learned signal scale as the inside level is: the scale's median follows the crowd inside (a busy
    # shop raises it), and moving the level with it left a fitting day of seeds 1-2 38 % off. The
    # factor is people per such burst, fitted by the same command. None: passersby_est = passerby
    # visits x passerby_factor (a site's per-visit factor).
    passerby_factor: float = 5.03
    street_rssi: int | None = -85

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or 3600 % self.interval_s:
            raise ValueError(
                f"interval_s must divide 3600 so intervals align to the hour, got {self.interval_s}"
            )


@dataclass(slots=True)
class _Visit:
    device: str
    epoch: str
    start_ns: int
    last_ns: int
    visit_no: int
    frames: int = 0
    addresses: set[str] = field(default_factory=set)
    randomized: bool = False
    rssi_max: int | None = None
    # Frames by signal, a count per dBm of a signal byte's range (radiotap's: one list index a frame,
    # where a dict took two lookups and a boxed int); a signal outside it (a Prism header's wider field)
    # is counted in `rssi_other`.
    rssi_hist: list[int] = field(default_factory=lambda: [0] * _SIGNAL_SLOTS)
    rssi_other: dict[int, int] = field(default_factory=dict)
    inside: bool = False
    visitor: bool = False
    consent: str | None = None

    def span(self, fixed: bool) -> VisitSpan:
        return span(self.device, self.start_ns, self.last_ns, self.inside, fixed)


@dataclass(slots=True)
class _Interval:
    start_ns: int
    end_ns: int
    frames: int = 0
    frames_randomized: int = 0
    addresses: set[str] = field(default_factory=set)
    addresses_randomized: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    fixed: set[str] = field(default_factory=set)
    visitors: int = 0
    new_visitors: int = 0
    passersby: int = 0
    street_bursts: int = 0  # scan bursts that began below the street level (PresenceParams)
    # Visits closed in the interval, with their fixed flag; spans are made only if the estimate
    # iterates them (a closed _Visit never changes again).
    closed: list[tuple[_Visit, bool]] = field(default_factory=list)


class PresenceModel:
    """Feed it sightings with the device they were resolved to; it emits visit and count events."""

    def __init__(
        self,
        config: PresenceParams,
        store: str,
        sensor: str,
        emit: Emit,
        *,
        is_fixed: Callable[[str], bool] = lambda device: False,
        people: PeopleEstimate | None = None,
        consent_of: Callable[[str], str | None] = lambda device: None,
        per_visit: bool = True,
        refine: Callable[[float, int], tuple[float, float, float]] | None = None,
        is_live: Callable[[str], bool] | None = None,
        unheard: Callable[[], int] | None = None,
    ) -> None:
        # per_visit=False (privacy mode `aggregate`): visits are still tracked for the counts, but no
        # per-device event is ever built, so none can leave the sensor.
        self._per_visit = per_visit
        self._timeout_ns = int(config.visit_timeout_s * NS)
        self._min_dwell_ns = int(config.min_dwell_s * NS)
        self._visitor_rssi = config.visitor_rssi
        self._visitor_factor = config.visitor_factor
        self._passerby_factor = config.passerby_factor
        self._street_rssi = config.street_rssi
        self._street = -1000 if config.street_rssi is None else config.street_rssi  # no rssi is below it
        self._last_frame: dict[str, int] = {}  # address -> its last frame, for the scan bursts
        self._interval_ns = config.interval_s * NS
        self._store = store
        self._sensor = sensor
        self._emit = emit
        self._is_fixed = is_fixed
        self._people = people or InsideVisits()
        self._consent_of = consent_of
        self._refine = refine  # (present, visitor visits open) → (present, low, high)
        # Least recently heard first, so timed-out visits are found at the front without a scan.
        self._open: OrderedDict[str, _Visit] = OrderedDict()
        self._visits_in_epoch: dict[str, int] = {}
        # A device the resolver has forgotten can never visit again under its id: at each interval its
        # visit count is dropped, so the counts follow the devices live at once, not the day's total.
        self._is_live = is_live
        self._unheard = unheard  # ns a visitor's stay lasts beyond its heard span, on average
        self._epoch = ""
        self._interval: _Interval | None = None
        self._next_expiry_ns = 0
        # The first frame time at which an interval ends or the expiry tick is due (DUE_AT_ONCE: no
        # interval yet), so a frame costs one comparison for both.
        self._due_ns = DUE_AT_ONCE
        self.visits_emitted = 0
        self.counts_emitted = 0
        # The last frame's device, its visit and address (see observe); forgotten whenever a visit may
        # close or the interval change (_expire, _roll, flush) and at a new epoch.
        self._same_device: str | None = None
        self._same_visit: _Visit | None = None
        self._same_address: str | None = None

    # -- input -----------------------------------------------------------------------------------------
    def observe(self, s: Sighting, device: str) -> None:
        ts = s.ts_ns
        if ts >= self._due_ns:
            self._tick(ts)
        if s.epoch != self._epoch:
            self._new_epoch(s.epoch)
        interval: _Interval = self._interval  # type: ignore[assignment]  # set by _tick

        address = s.address
        visit = self._same_visit
        # The device of the last frame again (3 frames in 4 in a crowd: a burst), nothing expired or
        # rolled over since: its visit is open and last in the order heard already.
        repeat = device is self._same_device and visit is not None
        if not repeat or visit is None:
            open_visits = self._open
            visit = open_visits.get(device)
            if visit is None:
                visit = self._open_visit(s.epoch, device, ts)
            else:
                open_visits.move_to_end(device)
            self._same_device, self._same_visit = device, visit
        # ...and of its address too: the address is in the visit's and the interval's sets already.
        known = repeat and address is self._same_address
        self._same_address = address
        visit.last_ns = ts
        visit.frames += 1
        if not known:
            visit.addresses.add(address)
        rssi = s.rssi_dbm
        last = self._last_frame.get(address)
        if (last is None or ts - last >= NS) and rssi is not None and rssi < self._street:
            interval.street_bursts += 1
        self._last_frame[address] = ts
        if rssi is not None:
            slot = rssi - _SIGNAL_LOW
            if 0 <= slot < _SIGNAL_SLOTS:
                hist = visit.rssi_hist
                hist[slot] = hist[slot] + 1  # (`+=` on an item is a generic in-place add, compiled)
            else:
                other = visit.rssi_other
                other[rssi] = other.get(rssi, 0) + 1
            peak = visit.rssi_max
            if peak is None or rssi > peak:
                visit.rssi_max = rssi
                if rssi >= self._visitor_rssi and not visit.inside:
                    visit.inside = True
                    if visit.consent is not None:
                        self._announce(visit, ts)
        if s.randomized:
            visit.randomized = True
            interval.frames_randomized += 1
            if not known:
                interval.addresses_randomized.add(address)
        if visit.inside and not visit.visitor and ts - visit.start_ns >= self._min_dwell_ns:
            self._qualify(visit, interval)
        interval.frames += 1
        if not known:
            interval.addresses.add(address)
            interval.devices.add(device)

    def advance(self, now_ns: int) -> None:
        """Let time pass without frames (live capture): close timed-out visits and finished intervals."""
        if self._interval is None:
            return
        if now_ns >= self._interval.end_ns:
            self._roll(now_ns)
        else:
            self._expire(now_ns)

    def flush(self) -> None:
        """End of input: close every open visit and emit the last (partial) interval."""
        if self._interval is None:
            return
        for visit in list(self._open.values()):
            self._close(visit, self._interval)
        self._open.clear()
        self._same_device = self._same_visit = None
        self._emit_count(self._interval)
        self._interval = None
        self._due_ns = DUE_AT_ONCE

    @property
    def open_visits(self) -> int:
        return len(self._open)

    @property
    def street_addresses(self) -> int:
        """Addresses the street-burst count remembers (those heard since the interval began, or the
        second before)."""
        return len(self._last_frame)

    # -- internals -------------------------------------------------------------------------------------
    def _tick(self, ts: int) -> None:
        """`ts` reached `_due_ns`: roll the interval over, or check open visits for their timeout."""
        interval = self._interval
        if interval is None or ts >= interval.end_ns:
            self._roll(ts)
        else:
            self._expire(ts)

    def _open_visit(self, epoch: str, device: str, ts: int) -> _Visit:
        n = self._visits_in_epoch.get(device, 0) + 1
        self._visits_in_epoch[device] = n
        visit = _Visit(device, epoch, ts, ts, n, consent=self._consent_of(device))
        self._open[device] = visit
        return visit

    def _roll(self, ts: int) -> _Interval:
        """Emit every interval that ended at or before `ts` (zeros for silent ones) and open the next."""
        self._same_device = self._same_visit = None
        current = self._interval
        if current is None:
            start = ts - ts % self._interval_ns
            current = self._interval = _Interval(start, start + self._interval_ns)
        while ts >= current.end_ns:
            # Visits that timed out before the boundary belong to the interval that is ending.
            self._expire(current.end_ns)
            self._emit_count(current)
            current = self._interval = _Interval(current.end_ns, current.end_ns + self._interval_ns)
            self._forget_gone()
            self._forget_quiet_addresses(ts)
        self._next_expiry_ns = ts + EXPIRY_TICK_NS
        self._due_ns = min(current.end_ns, self._next_expiry_ns)
        return current

    def _expire(self, now: int) -> None:
        self._same_device = self._same_visit = None
        self._next_expiry_ns = now + EXPIRY_TICK_NS
        interval = self._interval
        assert interval is not None
        self._due_ns = min(interval.end_ns, self._next_expiry_ns)
        limit = now - self._timeout_ns
        open_visits = self._open
        while open_visits:
            visit = next(iter(open_visits.values()))
            if visit.last_ns >= limit:
                break
            del open_visits[visit.device]
            self._close(visit, interval)

    def _qualify(self, visit: _Visit, interval: _Interval) -> None:
        if self._is_fixed(visit.device):
            return
        visit.visitor = True
        interval.visitors += 1
        if visit.visit_no == 1:
            interval.new_visitors += 1

    def _announce(self, visit: _Visit, ts: int) -> None:
        """A consented device is inside now: tell the collector at once (its real-time trigger)."""
        if not self._per_visit or visit.consent is None or self._is_fixed(visit.device):
            return
        self._emit(
            VisitOpenEvent(
                event_id=event_id(
                    self._store, self._sensor, "visit_open", visit.epoch, visit.device, visit.start_ns
                ),
                store=self._store,
                sensor=self._sensor,
                epoch=visit.epoch,
                device=visit.device,
                start=utc(visit.start_ns),
                at=utc(ts),
                consent=visit.consent,
            )
        )

    def _close(self, visit: _Visit, interval: _Interval) -> None:
        fixed = self._is_fixed(visit.device)
        kind: VisitKind = "fixed" if fixed else "visitor" if visit.visitor else "passerby"
        if kind == "passerby":
            interval.passersby += 1
        interval.closed.append((visit, fixed))
        if not self._per_visit:
            return
        self.visits_emitted += 1
        end_ns = visit.last_ns
        if kind == "visitor" and self._unheard is not None:
            # Never more than the silence that closed it: the person left within the timeout, or the
            # phone slept through it and its next scan opens the next visit.
            end_ns += min(self._unheard(), self._timeout_ns)
        # model_validate of a dict: the same validation as VisitEvent(...), without __init__'s keyword
        # packing (17 % of the event's validation time; one event per closed visit).
        self._emit(
            VisitEvent.model_validate(
                {
                    "event_id": event_id(
                        self._store, self._sensor, "visit", visit.epoch, visit.device, visit.start_ns
                    ),
                    "store": self._store,
                    "sensor": self._sensor,
                    "epoch": visit.epoch,
                    "device": visit.device,
                    "start": utc(visit.start_ns),
                    "end": utc(end_ns),
                    "dwell_s": round((end_ns - visit.start_ns) / NS, 3),
                    "kind": kind,
                    "frames": visit.frames,
                    "addresses": len(visit.addresses),
                    "randomized": visit.randomized,
                    "rssi_max": visit.rssi_max,
                    "rssi_median": _median(visit.rssi_hist, visit.rssi_other),
                    "visit_no": visit.visit_no,
                    "consent": visit.consent,
                }
            )
        )

    def _emit_count(self, interval: _Interval) -> None:
        spans = itertools.chain(
            (v.span(fixed) for v, fixed in interval.closed),
            (v.span(self._is_fixed(v.device)) for v in self._open.values()),
        )
        fixed = {d for d in interval.devices if self._is_fixed(d)}
        open_visitors = sum(1 for v in self._open.values() if v.visitor)
        present, low, high = self._people.present(interval.start_ns, interval.end_ns, spans), None, None
        if self._refine is not None:  # the count model and its 80 % interval
            present, low, high = self._refine(present, open_visitors)
        self.counts_emitted += 1
        self._emit(
            CountEvent(
                event_id=event_id(self._store, self._sensor, "count", interval.start_ns),
                store=self._store,
                sensor=self._sensor,
                epoch=self._epoch,
                start=utc(interval.start_ns),
                end=utc(interval.end_ns),
                present=round(present, 3),
                present_low=low,
                present_high=high,
                visitors=interval.visitors,
                passersby=interval.passersby,
                visitors_est=round(interval.visitors * self._visitor_factor, 3),
                passersby_est=round(
                    (interval.passersby if self._street_rssi is None else interval.street_bursts)
                    * self._passerby_factor,
                    3,
                ),
                visitors_present=open_visitors,
                new_visitors=interval.new_visitors,
                returning_visitors=interval.visitors - interval.new_visitors,
                fixed_devices=len(fixed),
                frames=interval.frames,
                frames_randomized=interval.frames_randomized,
                addresses=len(interval.addresses),
                addresses_randomized=len(interval.addresses_randomized),
                devices=len(interval.devices - fixed),
            )
        )

    def _forget_quiet_addresses(self, ts: int) -> None:
        """At an interval's start: forget addresses silent for a second (their next frame opens a burst)."""
        limit = ts - NS
        self._last_frame = {a: t for a, t in self._last_frame.items() if t > limit}

    def _forget_gone(self) -> None:
        live = self._is_live
        if live is not None:
            opened = self._open
            self._visits_in_epoch = {d: n for d, n in self._visits_in_epoch.items() if d in opened or live(d)}

    def _new_epoch(self, epoch: str) -> None:
        # Pseudonyms of the old epoch can never be seen again: forget how often they visited.
        self._epoch = epoch
        self._same_device = self._same_visit = None
        self._visits_in_epoch = {d: n for d, n in self._visits_in_epoch.items() if d in self._open}


def _median(counts: list[int], other: dict[int, int]) -> int | None:
    """The median signal of a visit's frames (the lower middle of an even count), from its counts."""
    if not other:  # every signal in a byte's range: the counts are in dBm order already
        total = 0
        for n in counts:
            total += n
        if not total:
            return None
        half = (total + 1) // 2
        seen = 0
        for i, n in enumerate(counts):
            seen += n
            if seen >= half:
                return i + _SIGNAL_LOW
    hist = {i + _SIGNAL_LOW: n for i, n in enumerate(counts) if n}
    hist.update(other)
    total = sum(hist.values())
    if not total:
        return None
    half = (total + 1) // 2
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= half:
            return value
    raise AssertionError("unreachable")
