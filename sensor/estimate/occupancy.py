"""The people estimate: resolved devices → people present over time.

A device counts as *inside* from a frame whose signal reaches `inside_rssi_dbm` until `holdover_s`
after its last such frame (phones probe every few seconds to minutes, so a device stays counted
between its scans), unless it is heard leaving first: a later scan burst at least `exit_margin_db`
below the inside level (the phone on its way out, in the corridor or on the pavement) ends its stay
at that burst instead of `holdover_s` later. Without that, everybody leaving at the end of a class
stays counted for the whole holdover.

Devices the resolver flags as fixed (PCs, tills, staff phones) are left out, judged when the
interval is asked for, so a device found fixed an hour in is left out of that hour too. The number
of inside devices (a device probing with its global address counts `global_weight`), time-averaged
over an interval, times `site_factor` (people per counted device: some people carry no probing
phone, some carry two, and the resolver merges or splits devices in a way that depends on the
site) is `present`.

`EstimatorParams` holds every number of the estimate, resolver included, so calibration writes one
object. `fit_site` fits the site's numbers against a ground-truth series.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from footfall.times import NS
from sensor.decode.frames import Sighting
from sensor.estimate.count_model import CountModel, shipped_model
from sensor.estimate.devices import ResolverParams
from sensor.estimate.rates import ScanRates, WindowRates
from sensor.estimate.scale import ScaleParams, SignalScale

_BURST_NS = NS  # frames of one scan burst are less than this apart


@dataclass(frozen=True, slots=True)
class EstimatorParams:
    """Every number of the people estimate.

    `inside_rssi_dbm`, `holdover_s` and `exit_margin_db` were chosen on the Fryza lab days by
    leave-one-day-out error (bench/accuracy.py). `site_factor`, people per counted device, is a
    property of the site: the default is the count model file's `default_site_factor`, fitted on
    generated store days (one phone per person or none; `python -m bench.train`), since a shop is
    what an uncalibrated sensor is put in. The Fryza lab room, where people carry laptops and idle
    phones sit on its Wi-Fi, has 1.34 (least squares on 2022-11-22). A site with ground truth refits
    it (`fit_site`, `footfall-sensor calibrate counts`).
    """

    inside_rssi_dbm: int = -67  # a frame this strong (dBm) says the device is inside, not passing by
    holdover_s: float = 300.0  # a device stays counted this long after its last inside frame
    site_factor: float = field(default_factory=lambda: shipped_model().default_site_factor)
    # Weight of a device that probes with its global (factory) address. Phones have randomized
    # their probes by default since 2020 (iOS 14, Android 10); what still probes with a global
    # address is mostly laptops (a second device of a person already counted), older phones and
    # equipment. 0.3 is the least-squares weight of such devices next to randomized ones on the
    # lab days (0.2-0.37 in every leave-one-day-out fold).
    global_weight: float = 0.3
    # A scan burst this many dB below inside_rssi_dbm after the last inside frame: the device left.
    exit_margin_db: float = 10.0
    # The 80 % interval of `present`: [present * interval_low, present * interval_high], widened to at
    # least `interval_floor` people either side. The 10th and 90th percentiles of truth / estimate over
    # busy 15-minute windows of all 103 lab days, each window the mean of the count events of a count
    # model fitted without its month (python -m bench.train); the held-out coverage of the same
    # recipe, fitted fold by fold, is bench/accuracy.py's.
    interval_low: float = 0.77
    interval_high: float = 1.37
    interval_floor: float = 0.5
    resolver: ResolverParams = field(default_factory=ResolverParams)
    scale: ScaleParams = field(default_factory=ScaleParams)
    model: CountModel = field(default_factory=shipped_model)  # sensor/estimate/count_model.py

    def __post_init__(self) -> None:
        if not -120 <= self.inside_rssi_dbm <= 0:
            raise ValueError(f"inside_rssi_dbm must be in -120..0 dBm, got {self.inside_rssi_dbm}")
        if not 0 < self.holdover_s <= 86_400:
            raise ValueError(f"holdover_s must be in (0, 86400], got {self.holdover_s}")
        if not 0 <= self.site_factor <= 100:
            raise ValueError(f"site_factor must be in 0..100, got {self.site_factor}")
        if not 0 <= self.global_weight <= 1:
            raise ValueError(f"global_weight must be in 0..1, got {self.global_weight}")
        if not 0 <= self.exit_margin_db <= 100:
            raise ValueError(f"exit_margin_db must be in 0..100 dB, got {self.exit_margin_db}")
        if not 0 <= self.interval_low <= 1 <= self.interval_high <= 10:
            raise ValueError(
                f"need 0 <= interval_low <= 1 <= interval_high <= 10, got {self.interval_low}, {self.interval_high}"
            )
        if not 0 <= self.interval_floor <= 100:
            raise ValueError(f"interval_floor must be in 0..100 people, got {self.interval_floor}")


@dataclass(slots=True)
class _Open:
    start_ns: int
    end_ns: int  # last inside frame + holdover, or the burst it was heard leaving in
    inside_ns: int  # last inside frame
    queued_ns: int  # its entry in the expiry heap (<= end_ns; see OccupancyEstimator._prune)


class OccupancyEstimator:
    """Call `observe` once per resolved sighting (time order); ask `present` when an interval closes.

    Each device's inside time is kept as segments [first inside frame, last inside frame + holdover);
    extending the open segment of a device is O(1) per frame. Closed segments are kept until the
    intervals that could ask for them have passed (`retain_s`), so memory is bounded by the traffic
    of that window.
    """

    _SETTLE_EVERY = 16  # prunes between two filterings of the closed segments (see _prune)

    def __init__(
        self,
        params: EstimatorParams | None = None,
        is_fixed: Callable[[str], bool] = lambda device: False,
        retain_s: float = 7200.0,
    ) -> None:
        self.params = p = params or EstimatorParams()
        self._is_fixed = is_fixed
        self._hold_ns = int(p.holdover_s * NS)
        self.scale = SignalScale(p.scale)
        # The scale itself, not its bound `add`: compiled, a call through a typed attribute is native.
        self._scale_on: SignalScale | None = self.scale if p.scale.enabled else None
        self._inside = p.inside_rssi_dbm
        self._retain_ns = int(retain_s * NS)
        self._global_weight = p.global_weight
        self._exit = p.inside_rssi_dbm - p.exit_margin_db
        self._global: set[str] = set()  # devices heard only with a global address so far
        self._open: dict[str, _Open] = {}
        self._expiry: list[tuple[int, str]] = []  # heap of (queued_ns, device), see _prune
        self._closed: list[tuple[str, int, int]] = []
        self._prune_limit = 0  # the last prune's limit, and how many closed segments it covers
        self._prune_covers = 0
        self._prunes = 0
        self._next_prune_ns = 0
        # Scan bursts per fingerprint of the inside-level frames (sensor/estimate/rates.py), counted
        # only for a count model that reads them (the shipped one does not: README, "tried and
        # dropped"); `last_rates` is the last interval's, set by `present`. The bench sets `rates`
        # to measure them.
        self.rates: ScanRates | None = ScanRates(retain_s=retain_s) if p.model.reads_rates else None
        self.last_rates = WindowRates(0.0, ())

    def observe(self, s: Sighting, device: str) -> None:
        rssi = s.rssi_dbm
        ts = s.ts_ns
        if ts >= self._next_prune_ns:
            self._prune(ts)
        scale = self._scale_on
        if rssi is not None and scale is not None and s.randomized:
            scale.add(ts, rssi)
        if rssi is not None and rssi < self._inside:
            if rssi < self._exit:
                seg = self._open.get(device)
                # Past the burst of its last inside frame (a burst mixes channels, and the frames
                # a radio hears on a neighbouring channel are 20-40 dB weaker) and still held over.
                if seg is not None and seg.inside_ns + _BURST_NS < ts < seg.end_ns:
                    seg.end_ns = ts
                    if ts < seg.queued_ns:
                        self._queue(device, seg)
            return
        if self.rates is not None:
            self.rates.observe(ts, s.address, s.fingerprint, s.randomized, device)
        seg = self._open.get(device)
        if seg is None:
            end = ts + self._hold_ns
            self._open[device] = seg = _Open(ts, end, ts, end)
            heapq.heappush(self._expiry, (end, device))
            if not s.randomized:
                self._global.add(device)
        elif ts <= seg.end_ns:
            seg.end_ns = end = ts + self._hold_ns
            seg.inside_ns = ts
            if end < seg.queued_ns:  # only when a frame goes back in time
                self._queue(device, seg)
        else:
            self._closed.append((device, seg.start_ns, seg.end_ns))
            seg.start_ns, seg.end_ns, seg.inside_ns = ts, ts + self._hold_ns, ts
        if s.randomized and device in self._global:
            self._global.discard(device)

    def present(self, start_ns: int, end_ns: int, visits: Iterable[object] = ()) -> float:
        """Estimated people inside, time-averaged over [start_ns, end_ns).

        `visits` is accepted (and ignored) so the estimator plugs into `PresenceModel` as its
        `PeopleEstimate`; the estimate works on devices, not on visits. The interval's scan-rate
        counts are kept for `refine`.
        """
        if self.rates is not None:
            self.last_rates = self.rates.window(start_ns, end_ns, self._is_fixed)
        return self.devices_inside(start_ns, end_ns) * self.params.site_factor

    def refine(self, present: float, visitors_present: int) -> tuple[float, float, float]:
        """The device-only `present` and the open visitor visits → (people, low, high), rounded to
        3 decimals: the count model's blend (sensor/estimate/count_model.py) and its 80 % interval."""
        p = self.params
        rates = self.last_rates.figure(p.model.rates, p.model.default_rate) if self.rates is not None else 0.0
        people = p.model.people(
            p.site_factor, present / p.site_factor if p.site_factor else 0.0, visitors_present, rates
        )
        low = min(people * p.interval_low, people - p.interval_floor)
        high = max(people * p.interval_high, people + p.interval_floor)
        people = round(people, 3)  # as the event carries them, low <= people <= high
        return people, min(round(max(low, 0.0), 3), people), max(round(high, 3), people)

    def devices_inside(self, start_ns: int, end_ns: int) -> float:
        """Time-averaged number of inside, non-fixed devices over [start_ns, end_ns)."""
        if end_ns <= start_ns:
            raise ValueError(f"empty interval: start {start_ns} >= end {end_ns}")
        self._settle()
        fixed, weak, weight = self._is_fixed, self._global, self._global_weight
        covered = 0.0
        for device, a, b in self._closed:
            if b > start_ns and a < end_ns and not fixed(device):
                covered += (min(b, end_ns) - max(a, start_ns)) * (weight if device in weak else 1.0)
        for device, seg in self._open.items():
            if seg.end_ns > start_ns and seg.start_ns < end_ns and not fixed(device):
                span = min(seg.end_ns, end_ns) - max(seg.start_ns, start_ns)
                covered += span * (weight if device in weak else 1.0)
        return covered / (end_ns - start_ns)

    def _prune(self, now: int) -> None:
        """Every minute of frame time: drop the segments that ended `retain_s` before `now`.

        The closed segments are filtered lazily, with the same outcome: a prune notes its limit and
        how many segments it covers (those closed so far), and `_settle` filters them when the list
        is next read (once per interval) or every `_SETTLE_EVERY` prunes. Limits only grow, so the
        last prune's limit drops whatever an earlier one would have.
        """
        self._next_prune_ns = now + 60 * NS
        # The thresholds follow the learned signal scale (sensor/estimate/scale.py), once a minute.
        self._inside = round(self.params.inside_rssi_dbm + self.scale.shift_db)
        self._exit = self._inside - self.params.exit_margin_db
        limit = now - self._retain_ns
        self._prune_limit, self._prune_covers = limit, len(self._closed)
        self._prunes += 1
        if self._prunes % self._SETTLE_EVERY == 0:
            self._settle()
        # Open segments that ended before the limit, from the expiry heap: each holds one live entry
        # at most its end (a later end leaves the entry as it is, an earlier one queues a new entry);
        # an entry that is not its segment's live one is stale and skipped.
        expiry, open_segments = self._expiry, self._open
        while expiry and expiry[0][0] < limit:
            queued, device = heapq.heappop(expiry)
            seg = open_segments.get(device)
            if seg is None or seg.queued_ns != queued:
                continue
            if seg.end_ns < limit:
                del open_segments[device]
                self._global.discard(device)
            else:
                self._queue(device, seg)

    def _queue(self, device: str, seg: _Open) -> None:
        seg.queued_ns = seg.end_ns
        heapq.heappush(self._expiry, (seg.end_ns, device))

    def _settle(self) -> None:
        """Apply the last prune to the closed segments it covers (order kept: it is summed in)."""
        covers, limit, closed = self._prune_covers, self._prune_limit, self._closed
        if covers:
            self._closed = [c for c in closed[:covers] if c[2] > limit] + closed[covers:]
            self._prune_covers = 0


@dataclass(frozen=True, slots=True)
class Fit:
    params: EstimatorParams
    mae_before: float  # with the params the fit started from
    mae_after: float
    windows: int


def fit_site(
    count: Callable[[EstimatorParams], Sequence[float]],
    truth: Sequence[float],
    base: EstimatorParams,
    rssi_grid: Iterable[int] = range(-80, -54, 2),
    holdover_grid: Iterable[float] = (120.0, 180.0, 300.0, 450.0, 600.0),
) -> Fit:
    """Fit inside_rssi_dbm, holdover_s (grid) and site_factor (least squares) to a truth series.

    `count(params)` returns the time-averaged device count per window (`devices_inside`) for the
    windows of `truth` under `params`; the site factor for each grid point is the least-squares
    ratio sum(x*y)/sum(x*x), and the point with the lowest mean absolute error wins.
    """
    if not truth:
        raise ValueError("no ground-truth windows to fit on")
    before = _mae([x * base.site_factor for x in count(base)], truth)
    best = (before, base)
    for rssi in rssi_grid:
        for hold in holdover_grid:
            trial = replace(base, inside_rssi_dbm=rssi, holdover_s=hold, site_factor=1.0)
            xs = count(trial)
            sxx = sum(x * x for x in xs)
            factor = sum(x * y for x, y in zip(xs, truth, strict=True)) / sxx if sxx else 1.0
            factor = min(max(factor, 0.0), 100.0)
            err = _mae([x * factor for x in xs], truth)
            if err < best[0]:
                best = (err, replace(trial, site_factor=round(factor, 4)))
    return Fit(best[1], before, best[0], len(truth))


def _mae(estimate: Sequence[float], truth: Sequence[float]) -> float:
    return sum(abs(a - b) for a, b in zip(estimate, truth, strict=True)) / len(truth)
