"""Scan-rate features of the lab replays, fitted on training days only (bench/heldout.py's folds).

A replay records, per count event, the interval's per-fingerprint counts (`WindowRates`, from
sensor/estimate/rates.py as the sensor computes them). A fold measures each fingerprint's
per-device scan rate on its training days where linking is sure: intervals in which the
fingerprint (randomizing) had exactly one linked device, scans per minute, median over those
intervals (a fingerprint needs `MIN_SURE` of them; the others get the median of all sure
intervals). The per-window features then follow from the table: the rate figure the sensor
computes (`WindowRates.figure`) and a few plain counts the count model may weigh.

No time-of-day or calendar feature: those would learn the lab's timetable, not people.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence

from sensor.estimate.calibrate import Window
from sensor.estimate.rates import WindowRates

MIN_SURE = 12  # sure intervals a fingerprint needs for its own rate
Event = tuple[int, int, WindowRates]  # a count event's span and its rate counts


def fit_rates(days: Iterable[Sequence[Event]]) -> tuple[dict[str, float], float]:
    """Per-fingerprint scans per device-minute from the sure intervals, and the default rate."""
    sure: dict[str, list[float]] = defaultdict(list)
    for events in days:
        for _, _, w in events:
            if w.minutes <= 0:
                continue
            for f in w.fingerprints:
                if f.randomized and f.devices == 1 and f.bursts > 0:
                    sure[f.fingerprint].append(f.bursts / w.minutes)
    pooled = [r for rs in sure.values() for r in rs]
    default = statistics.median(pooled) if pooled else 1.0
    table = {fp: statistics.median(rs) for fp, rs in sure.items() if len(rs) >= MIN_SURE}
    return table, default


def _per_event(w: WindowRates, table: dict[str, float], default: float) -> dict[str, float]:
    m = w.minutes or 1.0
    randomized = [f for f in w.fingerprints if f.randomized]
    return {
        "rates": w.figure(table, default),
        "linked": float(w.devices),  # distinct linked devices heard inside (not time-averaged)
        "bursts": w.bursts / m / default,  # every scan over the default rate: linking ignored
        "new_addresses": sum(f.new_addresses for f in w.fingerprints) / m / default,
        "randomized_devices": float(sum(f.devices for f in randomized)),
        "fingerprints": float(len(w.fingerprints)),
    }


FEATURES = ("rates", "linked", "bursts", "new_addresses", "randomized_devices", "fingerprints")


def window_features(
    events: Sequence[Event],
    windows: Sequence[Window],
    span: tuple[int, int],
    table: dict[str, float],
    default: float,
) -> dict[str, list[float]]:
    """Each feature's time-weighted mean over the truth windows, as `window_means` averages
    `present` (an event the capture covers in part rescaled to the covered part)."""
    per = [_per_event(w, table, default) for _, _, w in events]
    out: dict[str, list[float]] = {name: [] for name in FEATURES}
    for weights in overlaps(events, windows, span):
        for name in FEATURES:
            out[name].append(sum(per[i][name] * k for i, k in weights))
    return out


def overlaps(
    events: Sequence[Event], windows: Sequence[Window], span: tuple[int, int]
) -> list[list[tuple[int, float]]]:
    """Per window: (event index, weight) with mean = sum(value * weight), as `window_means` weighs
    (events in time order, so a bisect finds each window's few)."""
    dense = []
    for i, (s, e, _) in enumerate(events):
        a, b = max(s, span[0]), min(e, span[1])
        if b > a:
            dense.append((a, b, i, (e - s) / (b - a)))
    starts = [a for a, _, _, _ in dense]
    out = []
    for w in windows:
        k = max(bisect_left(starts, w.a_ns) - 1, 0)
        weights = []
        while k < len(dense) and dense[k][0] < w.b_ns:
            a, b, i, scale = dense[k]
            overlap = min(b, w.b_ns) - max(a, w.a_ns)
            if overlap > 0:
                weights.append((i, scale * overlap / (w.b_ns - w.a_ns)))
            k += 1
        out.append(weights)
    return out


def solve(rows: Sequence[Sequence[float]], ys: Sequence[float]) -> list[float]:
    """Least squares without intercept (normal equations, Gauss-Jordan; k is a handful)."""
    k = len(rows[0]) if rows else 0
    a = [[sum(r[i] * r[j] for r in rows) for j in range(k)] for i in range(k)]
    b = [sum(r[i] * y for r, y in zip(rows, ys, strict=True)) for i in range(k)]
    for col in range(k):
        pivot = max(range(col, k), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12:
            continue
        a[col], a[pivot] = a[pivot], a[col]
        b[col], b[pivot] = b[pivot], b[col]
        for r in range(k):
            if r != col and a[r][col]:
                q = a[r][col] / a[col][col]
                a[r] = [x - q * y for x, y in zip(a[r], a[col], strict=True)]
                b[r] -= q * b[col]
    return [b[i] / a[i][i] if abs(a[i][i]) >= 1e-12 else 0.0 for i in range(k)]


def nonneg_solve(rows: Sequence[Sequence[float]], ys: Sequence[float]) -> list[float]:
    """Least squares with every weight >= 0: drop the most negative weight and refit until none is."""
    k = len(rows[0]) if rows else 0
    active = list(range(k))
    while active:
        w = solve([[r[i] for i in active] for r in rows], ys)
        worst = min(range(len(active)), key=lambda i: w[i])
        if w[worst] >= 0:
            out = [0.0] * k
            for i, x in zip(active, w, strict=True):
                out[i] = x
            return out
        del active[worst]
    return [0.0] * k


def apply(weights: Sequence[float], row: Sequence[float]) -> float:
    return sum(w * x for w, x in zip(weights, row, strict=True))
