"""Blocked cross-validation of the people estimate over the 103 position-1 lab days.

Every whole month is held out in turn. Whatever is fitted is fitted on the other months only:
which signal-scale variant to run (a small grid of `estimator.scale` settings, each a full replay),
the site factor (least squares over the training windows), the count model (`MODELS`: the blend's
weights, boosted trees on its residuals, the per-fingerprint scan rates of the variants that read
them) and the 80 % interval (quantiles of truth / estimate over the training months' busy windows;
for trees, windows predicted by inner fits without their month). The held-out month is then scored
with those numbers. Per month and pooled: busy windows (>= 3 people: MAE, MAPE, share within +-1 person,
interval coverage), light days and empty days (MAE).

A replay is the product's own pipeline (`Pipeline.observe` on the cached sightings, CountEvents
out), run with `site_factor = 1`, so `present` is the device count and a factor is a product;
every count event also records the scan-rate counts of its trailing 5, 15 and 30 minutes.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import pickle
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.labdays import CACHE, SALT, LabDay, lab_days
from bench.ratefeatures import Event, fit_rates, nonneg_solve, overlaps, window_features
from bench.trees import ROUNDS, boost
from footfall.events import CountEvent
from footfall.events import Event as Event_
from sensor.config import SensorConfig
from sensor.estimate.calibrate import Window, window_means
from sensor.estimate.count_model import CountModel
from sensor.estimate.occupancy import EstimatorParams, OccupancyEstimator
from sensor.estimate.rates import ScanRates, WindowRates
from sensor.estimate.scale import ScaleParams
from sensor.pipeline import ListSink, Pipeline
from sensor.replay import with_estimator

NS = 1_000_000_000
BUSY = 3.0
RATE_MINUTES = (5, 15, 30)  # trailing windows the scan-rate counts are taken over
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
    # Per trailing rate window (minutes): every count event's span and the scan-rate counts of the
    # window ending with it (sensor/estimate/rates.py).
    events: dict[int, list[Event]]
    windows: list[Window]
    span: tuple[int, int]
    # Per count event (as `events`' spans): its device count and the visitor visits open at its end,
    # so a model can be scored as the sensor runs it, once per count event (`cross_validate`).
    event_devices: list[float] = field(default_factory=list)
    event_visitors: list[float] = field(default_factory=list)


class _RateSink(ListSink):
    """Keeps each count event's scan-rate counts, as the estimator computed them for its interval."""

    def __init__(self) -> None:
        super().__init__()
        self.occupancy: OccupancyEstimator | None = None
        self.is_fixed: Callable[[str], bool] = lambda device: False
        self.rates: dict[int, list[WindowRates]] = {m: [] for m in RATE_MINUTES}

    def send(self, event: Event_) -> None:
        if isinstance(event, CountEvent) and self.occupancy is not None:
            end = int(event.end.timestamp()) * NS
            rates = self.occupancy.rates
            assert rates is not None
            for m, out in self.rates.items():
                out.append(rates.window(end - m * 60 * NS, end, self.is_fixed))
        super().send(event)


def replay(params: EstimatorParams, day: LabDay) -> DayRun:
    config = with_estimator(SensorConfig(), replace(params, site_factor=1.0))
    # The device count and the open visits apart: each fold fits the count model's blend itself.
    config = config.model_copy(
        update={"estimator": config.estimator.model_copy(update={"count_model": False})}
    )
    sink = _RateSink()
    pipeline = Pipeline(config, SALT, sink)
    sink.occupancy = pipeline.occupancy
    if pipeline.occupancy is not None:  # counted whatever the model reads: the folds weigh them
        pipeline.occupancy.rates = ScanRates(retain_s=7200.0)
    sink.is_fixed = pipeline.resolver.is_fixed
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
    events = {m: [(a, b, w) for (a, b), w in zip(spans, ws, strict=True)] for m, ws in sink.rates.items()}
    return DayRun(
        day.name,
        day.month,
        day.kind,
        devices,
        visitors,
        day.truth,
        drift,
        events,
        day.windows,
        day.span,
        [e.present for e in counts],
        [float(e.visitors_present) for e in counts],
    )


def _replay_all(args: tuple[str, ScaleParams, bool]) -> tuple[str, list[DayRun]]:
    name, scale, quick = args
    params = replace(EstimatorParams(), scale=scale)
    return name, [replay(params, day) for day in lab_days(quick=quick)]


def _code_key(quick: bool, variants: dict[str, ScaleParams]) -> str:
    """What the replays depend on: the sensor's and the bench's code, the variants, the day set."""
    h = hashlib.sha256(repr((quick, sorted(variants.items()))).encode())
    # count_model.py is left out: a replay runs with the count model off (`CountModel()`, present =
    # devices), so a change to the model's evaluation leaves the replayed devices and visits as they are.
    for path in sorted([*SENSOR.rglob("*.py"), BENCH / "labdays.py"]):
        if path.name != "count_model.py":
            h.update(path.read_bytes())
    for part in (DayRun, _RateSink, replay, _replay_all):  # this module's replaying part
        h.update(inspect.getsource(part).encode())
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
class Spec:
    """A count model to fit: the linear blend's features, boosted trees on top or not, and the
    trailing window of the scan-rate figure (`rate_devices`) if it reads one."""

    linear: tuple[str, ...]  # of "devices", "visitors", "rate_devices"; none: devices x factor
    trees: bool = False
    rate_minutes: int | None = None
    loss: str = "ls"  # the trees' loss (bench/trees.py): "ls" least squares, "lad" absolute deviation
    # Fit the blend and the trees on every count event (its inputs, the truth of the windows it
    # overlaps) instead of on the windows' mean inputs: the sensor evaluates the model per count
    # event, and a window reads the mean of those (version 5).
    on_events: bool = False
    # The boosting rounds a fit chooses among (by its inner blocked CV, `fit`); the first is the
    # default of a fit that does not choose (`fit_one` alone), the largest is boosted.
    rounds: tuple[int, ...] = (ROUNDS,)

    def x(self, row: Mapping[str, float]) -> tuple[float, float, float]:
        """The count model's inputs (sensor/estimate/count_model.py FEATURES) from a window's row."""
        rate = row[f"rates@{self.rate_minutes}"] if self.rate_minutes else 0.0
        return (row["devices"], row["visitors"], rate)


DV = ("devices", "visitors")
MODELS: dict[str, Spec] = {
    "devices": Spec(()),
    "v1": Spec(DV),  # the version-1 model: the linear blend of devices and open visits
    **{f"rates@{m}": Spec((*DV, "rate_devices"), rate_minutes=m) for m in RATE_MINUTES},
    "trees": Spec(DV, trees=True),  # versions 2 and 3 (they differ in the bound on the trees)
    **{f"trees+rates@{m}": Spec(DV, trees=True, rate_minutes=m) for m in (5, 30)},
    "v4": Spec(DV, trees=True, loss="lad"),  # version 4: the same trees, boosted on absolute error
    # Version 5: v4 fitted on count events, its rounds chosen per fit by inner CV.
    "v5": Spec(DV, trees=True, loss="lad", on_events=True, rounds=(60, 120, 200, 300)),
}
SHIPPED_MODEL = "v5"
BLEND_FROM = 2.0


@dataclass(frozen=True, slots=True)
class Fitted:
    variant: str
    factor: float  # people per inside device (the device-only estimate)
    spec: Spec
    model: CountModel  # at site factor `factor` (its reference_site_factor)
    # Per rate window (minutes): scans per device-minute by fingerprint, and the default (training days)
    tables: Tables = field(hash=False)
    low: float = 1.0  # interval: truth / estimate quantiles over busy training windows
    high: float = 1.0

    def estimate(self, row: Mapping[str, float]) -> float:
        d, v, r = self.spec.x(row)
        return self.model.people(self.factor, d, v, r)


Row = tuple[dict[str, float], float, str]  # features, truth, day kind
Tables = dict[int, tuple[dict[str, float], float]]


def _rows(runs: Sequence[DayRun], tables: Tables) -> list[Row]:
    """Every window's features (the rate features from the fold's own rate tables), truth and day kind."""
    out: list[Row] = []
    for r in runs:
        extra: dict[str, list[float]] = {}
        for m, (table, default) in tables.items():
            for name, values in window_features(r.events[m], r.windows, r.span, table, default).items():
                extra[f"{name}@{m}"] = values
        for i, (x, v, y) in enumerate(zip(r.devices, r.visitors, r.truth, strict=True)):
            row = {"devices": x, "visitors": v} | {k: vs[i] for k, vs in extra.items()}
            out.append((row, y, r.kind))
    return out


def _factor(rows: Sequence[Row]) -> float:
    xs = [(f["devices"], y) for f, y, kind in rows if kind != "empty"]
    sxx = sum(x * x for x, _ in xs)
    return sum(x * y for x, y in xs) / sxx if sxx else 1.0


def _quantile(xs: Sequence[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(int(q * len(xs)), len(xs) - 1)]


def _balanced_error(pairs: Sequence[tuple[float, float, str]]) -> float:
    """Mean of the per-class MAEs: busy windows, light days, empty days weigh alike."""
    by: dict[str, list[float]] = defaultdict(list)
    for x, y, kind in pairs:
        by["busy" if y >= BUSY else kind].append(abs(x - y))
    return statistics.fmean(statistics.fmean(v) for v in by.values())


def fit_one(variant: str, runs: Sequence[DayRun], spec: Spec) -> tuple[Fitted, list[Row]]:
    """Site factor, rate table, blend weights and trees on `runs` (training days only)."""
    tables = (
        {spec.rate_minutes: fit_rates(r.events[spec.rate_minutes] for r in runs)} if spec.rate_minutes else {}
    )
    rows = _rows(runs, tables)
    f = _factor(rows)
    if not spec.linear:
        return Fitted(variant, f, spec, CountModel(blend_from_people=0.0), tables), rows
    fitted_on = event_rows(runs) if spec.on_events else rows
    fit_rows = [(spec.x(row), y) for row, y, _ in fitted_on if row["devices"] * f >= BLEND_FROM]
    index = {"devices": 0, "visitors": 1, "rate_devices": 2}
    w = nonneg_solve([[x[index[n]] for n in spec.linear] for x, _ in fit_rows], [y for _, y in fit_rows])
    weights = dict(zip(spec.linear, w, strict=True))
    model = CountModel(
        device_weight=weights.get("devices", 0.0),
        visitor_weight=weights.get("visitors", 0.0),
        rate_weight=weights.get("rate_devices", 0.0),
        blend_from_people=BLEND_FROM,
        reference_site_factor=f,
        default_rate=tables[spec.rate_minutes][1] if spec.rate_minutes else 1.0,
        rates=tables[spec.rate_minutes][0] if spec.rate_minutes else {},
    )
    if spec.trees:
        xs = [x for x, _ in fit_rows]
        start = [model.people(f, *x) for x in xs]
        rounds = max(spec.rounds)
        model = replace(model, trees=boost(xs, [y for _, y in fit_rows], start, spec.loss, rounds))
    return Fitted(variant, f, spec, model, tables), rows


def event_rows(runs: Sequence[DayRun]) -> list[Row]:
    """Every count event's inputs, with the truth of the windows it overlaps (their mean, weighted by
    the overlap): the rows a model evaluated per count event is fitted on (`Spec.on_events`)."""
    out: list[Row] = []
    for r in runs:
        truth: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for weights, y in zip(overlaps(r.events[RATE_MINUTES[0]], r.windows, r.span), r.truth, strict=True):
            for i, k in weights:
                truth[i][0] += k * y
                truth[i][1] += k
        for i, (sy, sk) in sorted(truth.items()):
            row = {"devices": r.event_devices[i], "visitors": r.event_visitors[i]}
            out.append((row, sy / sk, r.kind))
    return out


def fit(train: dict[str, list[DayRun]], spec: Spec) -> Fitted:
    """Variant, factor and blend with the lowest balanced error on the training months; then the interval."""
    best: tuple[float, Fitted, list[Row]] | None = None
    for variant, runs in train.items():
        trial, rows = fit_one(variant, runs, spec)
        err = _balanced_error([(trial.estimate(row), y, k) for row, y, k in rows])
        if best is None or err < best[0]:
            best = (err, trial, rows)
    assert best is not None
    _, chosen, rows = best
    if spec.trees:  # trees fit their own windows closely: judge them on windows they did not see
        by_rounds = _out_of_fold(chosen.variant, train[chosen.variant], spec)
        # The rounds with the lowest busy MAE out of fold (ties: the fewer).
        rounds = min(sorted(by_rounds), key=lambda k: _busy_mae(by_rounds[k]))
        chosen = replace(chosen, model=replace(chosen.model, trees=chosen.model.trees[:rounds]))
        pairs = by_rounds[rounds]
    else:
        pairs = [(chosen.estimate(row), y) for row, y, _ in rows]
    ratios = [y / e for e, y in pairs if y >= BUSY and e > 0]
    return replace(chosen, low=_quantile(ratios, 0.1), high=_quantile(ratios, 0.9))


def _busy_mae(pairs: Sequence[tuple[float, float]]) -> float:
    errors = [abs(e - y) for e, y in pairs if y >= BUSY]
    return statistics.fmean(errors) if errors else 0.0


INNER_FOLDS = 3


def _out_of_fold(variant: str, runs: Sequence[DayRun], spec: Spec) -> dict[int, list[tuple[float, float]]]:
    """Per candidate number of rounds (`spec.rounds`): (estimate, truth) of every window from a fit
    without its month (months dealt to 3 blocks)."""
    months = sorted({r.month for r in runs})
    pairs: dict[int, list[tuple[float, float]]] = {k: [] for k in spec.rounds}
    for k in range(INNER_FOLDS):
        held = set(months[k::INNER_FOLDS])
        fitted, _ = fit_one(variant, [r for r in runs if r.month not in held], spec)
        held_runs = [r for r in runs if r.month in held]
        for rounds, out in pairs.items():
            inner = replace(fitted, model=replace(fitted.model, trees=fitted.model.trees[:rounds]))
            if spec.on_events:  # judged as the sensor publishes: per count event, a window their mean
                out += [(e, y) for r in held_runs for e, y in zip(_per_event(inner, r), r.truth, strict=True)]
            else:
                out += [(inner.estimate(row), y) for row, y, _ in _rows(held_runs, inner.tables)]
    return pairs


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
    runs: dict[str, list[DayRun]], floor: float, spec: Spec = MODELS["v1"], per_event: bool = False
) -> tuple[list[Scored], dict[str, Fitted]]:
    """Every month held out in turn. A window's estimate is the model on the window's mean inputs
    (as it is fitted); `per_event`: the window's mean of the model on every count event, which is
    what the sensor publishes (for models without scan rates)."""
    months = sorted({r.month for r in next(iter(runs.values()))})
    scored: list[Scored] = []
    fits = {}
    for month in months:
        train = {v: [r for r in rs if r.month != month] for v, rs in runs.items()}
        f = fits[month] = fit(train, spec)
        held = [r for r in runs[f.variant] if r.month == month]
        names = [r.name for r in held for _ in r.truth]
        ests = [e for r in held for e in _per_event(f, r)] if per_event else None
        for i, (name, (row, y, kind)) in enumerate(zip(names, _rows(held, f.tables), strict=True)):
            est = ests[i] if ests is not None else f.estimate(row)
            low = max(min(est * f.low, est - floor), 0.0)
            high = max(est * f.high, est + floor)
            scored.append(Scored(month, name, kind, est, low, high, y))
    return scored, fits


def _per_event(f: Fitted, r: DayRun) -> list[float]:
    """Per window of `r`, the time-weighted mean of the model's estimate on each count event."""
    if f.spec.rate_minutes:
        raise ValueError("per-event scoring of a model that reads scan rates is not built")
    people = [f.model.people(f.factor, d, v) for d, v in zip(r.event_devices, r.event_visitors, strict=True)]
    spans = [(a, b) for a, b, _ in r.events[RATE_MINUTES[0]]]
    return window_means([(a, b, p) for (a, b), p in zip(spans, people, strict=True)], r.windows, r.span)
