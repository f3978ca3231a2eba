"""Blocked cross-validation of the people estimate over the 103 position-1 lab days.

Every whole month is held out in turn. Whatever is fitted is fitted on the other months only:
which signal-scale variant to run (a small grid of `estimator.scale` settings, each a full replay),
the site factor (least squares over the training windows) and the 80 % interval (quantiles of
truth / estimate over the training months' busy windows). The held-out month is then scored with
those numbers. Per month and pooled: busy windows (>= 3 people: MAE, MAPE, share within +-1 person,
interval coverage), light days and empty days (MAE).

A replay is the product's own pipeline (`Pipeline.observe` on the cached sightings, CountEvents
out), run with `site_factor = 1`, so `present` is the device count and a factor is a product.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import statistics
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from bench.labdays import CACHE, SALT, LabDay, lab_days
from footfall.events import CountEvent
from sensor.config import SensorConfig
from sensor.estimate.calibrate import window_means
from sensor.estimate.count_model import CountModel
from sensor.estimate.occupancy import EstimatorParams
from sensor.estimate.scale import ScaleParams
from sensor.pipeline import ListSink, Pipeline
from sensor.replay import with_estimator

NS = 1_000_000_000
BUSY = 3.0
BENCH = Path(__file__).resolve().parent
SENSOR = BENCH.parent / "sensor"

# The scale variants a fold chooses among (by its training months' error). "off" is the fixed-dBm
# estimator of before; the others follow the learned reference (sensor/estimate/scale.py).
VARIANTS: dict[str, ScaleParams] = {
    "off": ScaleParams(enabled=False),
    "g0.5": ScaleParams(gain=0.5, deadzone_db=0.0, max_down_db=0.0),  # half of every offset, upwards
    "dz8": ScaleParams(gain=1.0, deadzone_db=8.0, max_down_db=5.0),  # the offset past 8 dB
}


@dataclass(frozen=True, slots=True)
class DayRun:
    """One day replayed under one variant: per 15-minute window, the device count and the truth."""

    name: str
    month: str
    kind: str
    devices: list[float]
    visitors: list[float]  # visitor visits open (time-weighted over the window's count events)
    truth: list[float]
    drift: bool  # the scale reported a drift at the end of the day


def replay(params: EstimatorParams, day: LabDay) -> DayRun:
    config = with_estimator(SensorConfig(), replace(params, site_factor=1.0))
    # The device count and the open visits apart: each fold fits the count model's blend itself.
    config = config.model_copy(
        update={"estimator": config.estimator.model_copy(update={"count_model": False})}
    )
    sink = ListSink()
    pipeline = Pipeline(config, SALT, sink)
    for s in day.sightings:
        pipeline.observe(s)
    drift = pipeline.occupancy.scale.drift if pipeline.occupancy is not None else False
    pipeline.finish()
    counts = [e for e in sink.events if isinstance(e, CountEvent)]
    spans = [(int(e.start.timestamp()) * NS, int(e.end.timestamp()) * NS) for e in counts]
    devices = window_means(
        [(a, b, e.present) for (a, b), e in zip(spans, counts, strict=True)], day.windows, day.span
    )
    visitors = window_means(
        [(a, b, float(e.visitors_present)) for (a, b), e in zip(spans, counts, strict=True)],
        day.windows,
        day.span,
    )
    return DayRun(day.name, day.month, day.kind, devices, visitors, day.truth, drift)


def _replay_all(args: tuple[str, ScaleParams, bool]) -> tuple[str, list[DayRun]]:
    name, scale, quick = args
    params = replace(EstimatorParams(), scale=scale)
    return name, [replay(params, day) for day in lab_days(quick=quick)]


def _code_key(quick: bool, variants: dict[str, ScaleParams]) -> str:
    """What the replays depend on: the sensor's and the bench's code, the variants, the day set."""
    h = hashlib.sha256(repr((quick, sorted(variants.items()))).encode())
    for path in sorted([*SENSOR.rglob("*.py"), BENCH / "labdays.py"]):  # and `replay` below
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def replay_variants(quick: bool, variants: dict[str, ScaleParams] = VARIANTS) -> dict[str, list[DayRun]]:
    """Every day under every variant; kept in bench/.cache until the code changes (bench.train reuses it)."""
    cached = CACHE / f"runs-{'quick' if quick else 'all'}-{_code_key(quick, variants)}.pickle"
    if cached.exists():
        with cached.open("rb") as f:
            runs: dict[str, list[DayRun]] = pickle.load(f)
        return runs
    with ProcessPoolExecutor(max_workers=2) as pool:
        runs = dict(pool.map(_replay_all, [(n, v, quick) for n, v in variants.items()]))
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        pickle.dump(runs, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(cached)
    return runs


@dataclass(frozen=True, slots=True)
class Fitted:
    variant: str
    factor: float  # people per inside device (the device-only estimate)
    model: CountModel  # the blend, in people (site factor 1)
    low: float  # interval: truth / estimate quantiles over busy training windows
    high: float

    def estimate(self, devices: float, visitors: float) -> float:
        alone = devices * self.factor
        if alone < self.model.blend_from_people:
            return alone
        return self.model.device_weight * devices + self.model.visitor_weight * visitors


def _windows(runs: Sequence[DayRun]) -> list[tuple[float, float, float, str]]:
    """(devices, visitors, truth, day kind) of every window."""
    return [(x, v, y, r.kind) for r in runs for x, v, y in zip(r.devices, r.visitors, r.truth, strict=True)]


def _factor(runs: Sequence[DayRun]) -> float:
    xs = [(x, y) for x, _, y, kind in _windows(runs) if kind != "empty"]
    sxx = sum(x * x for x, _ in xs)
    return sum(x * y for x, y in xs) / sxx if sxx else 1.0


def least_squares_2(rows: Sequence[tuple[float, float, float]]) -> tuple[float, float]:
    """y = a x1 + b x2 by least squares (normal equations of two unknowns; no numpy on the Pi)."""
    s11 = sum(x1 * x1 for x1, _, _ in rows)
    s12 = sum(x1 * x2 for x1, x2, _ in rows)
    s22 = sum(x2 * x2 for _, x2, _ in rows)
    s1y = sum(x1 * y for x1, _, y in rows)
    s2y = sum(x2 * y for _, x2, y in rows)
    det = s11 * s22 - s12 * s12
    if abs(det) < 1e-9:
        return (s1y / s11 if s11 else 1.0), 0.0
    return (s1y * s22 - s2y * s12) / det, (s2y * s11 - s1y * s12) / det


def fit_blend(runs: Sequence[DayRun], factor: float, blend_from: float = 2.0) -> CountModel:
    rows = [(x, v, y) for x, v, y, _ in _windows(runs) if x * factor >= blend_from]
    a, b = least_squares_2(rows)
    a, b = max(a, 0.0), max(b, 0.0)
    return CountModel(device_weight=a, visitor_weight=b, blend_from_people=blend_from)


def _quantile(xs: Sequence[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(int(q * len(xs)), len(xs) - 1)]


def _balanced_error(pairs: Sequence[tuple[float, float, str]]) -> float:
    """Mean of the per-class MAEs: busy windows, light days, empty days weigh alike."""
    by: dict[str, list[float]] = defaultdict(list)
    for x, y, kind in pairs:
        by["busy" if y >= BUSY else kind].append(abs(x - y))
    return statistics.fmean(statistics.fmean(v) for v in by.values())


def fit(train: dict[str, list[DayRun]], blend: bool) -> Fitted:
    """Variant, factor and blend with the lowest balanced error on the training months; then the interval."""
    best: tuple[float, Fitted] | None = None
    for variant, runs in train.items():
        f = _factor(runs)
        model = fit_blend(runs, f) if blend else CountModel(device_weight=f, blend_from_people=0.0)
        trial = Fitted(variant, f, model, 1.0, 1.0)
        err = _balanced_error([(trial.estimate(x, v), y, k) for x, v, y, k in _windows(runs)])
        if best is None or err < best[0]:
            best = (err, trial)
    assert best is not None
    chosen = best[1]
    pairs = [(chosen.estimate(x, v), y) for x, v, y, _ in _windows(train[chosen.variant])]
    ratios = [y / e for e, y in pairs if y >= BUSY and e > 0]
    return replace(chosen, low=_quantile(ratios, 0.1), high=_quantile(ratios, 0.9))


@dataclass(frozen=True, slots=True)
class Scored:
    """A held-out window: estimate, 80 % interval, truth, and the day it belongs to."""

    month: str
    day: str
    kind: str
    estimate: float
    low: float
    high: float
    truth: float


def cross_validate(
    runs: dict[str, list[DayRun]], floor: float, blend: bool = True
) -> tuple[list[Scored], dict[str, Fitted]]:
    months = sorted({r.month for r in next(iter(runs.values()))})
    scored: list[Scored] = []
    fits = {}
    for month in months:
        train = {v: [r for r in rs if r.month != month] for v, rs in runs.items()}
        f = fits[month] = fit(train, blend)
        for r in runs[f.variant]:
            if r.month != month:
                continue
            for x, v, y in zip(r.devices, r.visitors, r.truth, strict=True):
                est = f.estimate(x, v)
                low = max(min(est * f.low, est - floor), 0.0)
                high = max(est * f.high, est + floor)
                scored.append(Scored(month, r.name, r.kind, est, low, high, y))
    return scored, fits


def summary(windows: Sequence[Scored]) -> dict[str, str]:
    """Busy-window MAE, MAPE, within +-1, coverage; light and empty MAE (as printed strings)."""
    busy = [w for w in windows if w.truth >= BUSY]
    light = [w for w in windows if w.kind == "light"]
    empty = [w for w in windows if w.kind == "empty"]

    def mae(ws: Sequence[Scored]) -> str:
        return f"{statistics.fmean(abs(w.estimate - w.truth) for w in ws):.2f}" if ws else "-"

    out = {"busy_n": str(len(busy)), "busy_mae": mae(busy), "light_mae": mae(light), "empty_mae": mae(empty)}
    if busy:
        out["mape"] = f"{100 * statistics.fmean(abs(w.estimate - w.truth) / w.truth for w in busy):.1f}"
        out["within1"] = f"{100 * statistics.fmean(abs(w.estimate - w.truth) <= 1 for w in busy):.0f}"
        out["cover"] = f"{100 * statistics.fmean(w.low <= w.truth <= w.high for w in busy):.0f}"
    return out


COLUMNS = (
    ("busy_n", "busy win"),
    ("busy_mae", "busy MAE"),
    ("mape", "MAPE %"),
    ("within1", "+-1 %"),
    ("cover", "80% cover"),
    ("light_mae", "light MAE"),
    ("empty_mae", "empty MAE"),
)


def report(runs: dict[str, list[DayRun]], floor: float, blend: bool = True) -> dict[str, str]:
    scored, fits = cross_validate(runs, floor, blend)
    header = f"{'held-out month':<15}{'variant':<9}{'factor':>7}{'blend':>11}{'interval':>12}" + "".join(
        f"{title:>11}" for _, title in COLUMNS
    )
    print(header)
    print("-" * len(header))
    for month, f in fits.items():
        row = summary([w for w in scored if w.month == month])
        print(
            f"{month:<15}{f.variant:<9}{f.factor:>7.3f}"
            f"{f'{f.model.device_weight:.2f}/{f.model.visitor_weight:.2f}' if blend else '-':>11}"
            f"{f'x{f.low:.2f}-{f.high:.2f}':>12}" + "".join(f"{row.get(k, '-'):>11}" for k, _ in COLUMNS)
        )
    pooled = summary(scored)
    print("-" * len(header))
    print(f"{'pooled':<54}" + "".join(f"{pooled.get(k, '-'):>11}" for k, _ in COLUMNS))
    return pooled


def per_day(runs: dict[str, list[DayRun]], floor: float, kinds: Sequence[str] = ("busy", "light")) -> None:
    scored, fits = cross_validate(runs, floor)
    print(f"{'day':<12}{'kind':<7}{'windows':>8}{'truth':>7}{'estimate':>9}{'MAE':>7}{'drift':>7}")
    for name in sorted({w.day for w in scored}):
        ws = [w for w in scored if w.day == name]
        if ws[0].kind not in kinds:
            continue
        variant = fits[ws[0].month].variant
        drift = next(r.drift for r in runs[variant] if r.name == name)
        print(
            f"{name:<12}{ws[0].kind:<7}{len(ws):>8}{statistics.fmean(w.truth for w in ws):>7.1f}"
            f"{statistics.fmean(w.estimate for w in ws):>9.1f}"
            f"{statistics.fmean(abs(w.estimate - w.truth) for w in ws):>7.2f}{'yes' if drift else '':>7}"
        )


def lab_heldout(quick: bool, show_days: bool) -> dict[str, str]:
    runs = replay_variants(quick)
    n = len(next(iter(runs.values())))
    what = "a quick subset of" if quick else "all"
    print(f"Fryza lab, position 1: {what} {n} days, 15-minute windows, whole months held out of every fit")
    print("(variant, site factor and interval fitted on the other months; scored on the held-out month)")
    print()
    floor = EstimatorParams().interval_floor
    pooled = report(runs, floor)
    print(
        "targets: busy MAE <= 1.5, MAPE <= 10 %, >= 75 % within +-1, coverage 75-85 %; "
        "light MAE <= 0.4; empty MAE <= 0.1"
    )
    print()
    print("Each signal-scale variant forced in every fold (pooled, held-out):")
    for variant in runs:
        row = summary(cross_validate({variant: runs[variant]}, floor)[0])
        print(f"  {variant:<6}" + ", ".join(f"{title} {row.get(k, '-')}" for k, title in COLUMNS[1:]))
    print()
    shipped = next((name for name, v in VARIANTS.items() if v == ScaleParams()), None)
    if shipped is not None:
        print()
        print(
            f"As shipped: the count model with the sensor's default scale variant ({shipped}) in every fold:"
        )
        report({shipped: runs[shipped]}, floor)
    print()
    print("Before: devices only, fixed dBm thresholds (variant 'off' and no blend in every fold):")
    report({"off": runs["off"]}, floor, blend=False)
    print()
    print("Devices only, with the scale variants (no blend):")
    report(runs, floor, blend=False)
    if show_days:
        print()
        per_day(runs, floor)
    return pooled
