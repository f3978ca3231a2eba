"""Inputs a count model could read per count event, held out by month (what version 5 was chosen by).

    .venv/bin/python -m bench.eventfeatures [--windows] [--smooth A ...] [FEATURES ...]

Each FEATURES argument is a comma-separated list of per-count-event inputs (`FEATS`), the first two
always `d,v` (the inside devices and the open visitor visits, which the blend weighs); the others
are causal, as a sensor has them at the end of an interval: the previous intervals' inputs (lags,
means and maxima over the last 3 or 12 intervals, the last 15 minutes or hour), the scan-rate counts
of the trailing 5, 15 or 30 minutes as the replay recorded them (sensor/estimate/rates.py: linked
devices, global and random ones, fingerprints, scan bursts and new addresses per minute) and a few
ratios of them. Every month is held out in turn; on the other months: the site factor, the blend
(least squares) and 60 LAD trees over all the inputs (bench/trees.py, version 4's settings),
fitted on every count event (its inputs, the truth of the windows it overlaps; `--windows`: on the
windows' mean inputs, as version 4), then scored as the sensor publishes: the model on every count
event, a window the mean of them. `--smooth A`: also a causal exponential smoother over the count
events' estimates (each the A-weighted mean of the last smoothed one and its own).

Uses the accuracy bench's cached replays (dz8, all 103 days). The interval is left out (coverage is
bench/accuracy.py's); prints busy MAE, MAPE, within +-1, light and empty MAE, and the busy MAE of
each held-out month with busy windows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench.* importable
from bench.heldout import BLEND_FROM, BUSY, RATE_MINUTES, DayRun, replay_variants
from bench.ratefeatures import nonneg_solve, overlaps
from bench.trees import boost, predict
from sensor.estimate.count_model import Tree

Feat = Callable[[DayRun, int], float]


def _rate(minutes: int, what: str) -> Feat:
    def f(r: DayRun, i: int) -> float:
        w = r.events[minutes][i][2]
        per_minute = w.minutes or 1.0
        match what:
            case "linked":
                return float(w.devices)
            case "global":
                return float(sum(x.devices for x in w.fingerprints if not x.randomized))
            case "random":
                return float(sum(x.devices for x in w.fingerprints if x.randomized))
            case "fps":
                return float(len(w.fingerprints))
            case "bursts":
                return w.bursts / per_minute
            case "new":
                return sum(x.new_addresses for x in w.fingerprints) / per_minute
        raise KeyError(what)

    return f


def _series(r: DayRun, base: str) -> list[float]:
    return r.event_devices if base == "d" else r.event_visitors


def _lag(base: str, k: int) -> Feat:
    return lambda r, i: _series(r, base)[max(i - k, 0)]


def _mean(base: str, k: int) -> Feat:
    return lambda r, i: statistics.fmean(_series(r, base)[max(i - k + 1, 0) : i + 1])


def _max(base: str, k: int) -> Feat:
    return lambda r, i: max(_series(r, base)[max(i - k + 1, 0) : i + 1])


def _ratio(a: Feat, b: Feat) -> Feat:
    def f(r: DayRun, i: int) -> float:
        den = b(r, i)
        return a(r, i) / den if den > 0 else 1.0

    return f


FEATS: dict[str, Feat] = {
    "d": lambda r, i: r.event_devices[i],
    "v": lambda r, i: r.event_visitors[i],
    **{f"{b}-{k}": _lag(b, k) for b in "dv" for k in (1, 3)},
    **{f"{b}mean{k}": _mean(b, k) for b in "dv" for k in (3, 12)},
    **{f"{b}max12": _max(b, 12) for b in "dv"},
    **{
        f"{w}@{m}": _rate(m, w)
        for m in RATE_MINUTES
        for w in ("linked", "global", "random", "fps", "bursts", "new")
    },
}
FEATS |= {
    "lk5/15": _ratio(_rate(5, "linked"), _rate(15, "linked")),  # a class leaving: fewer heard lately
    "lk5/30": _ratio(_rate(5, "linked"), _rate(30, "linked")),
    "b5/15": _ratio(_rate(5, "bursts"), _rate(15, "bursts")),
    "b5/30": _ratio(_rate(5, "bursts"), _rate(30, "bursts")),
    "new/b5": _ratio(_rate(5, "new"), _rate(5, "bursts")),  # a class arriving: new addresses
    "v/d": _ratio(FEATS["v"], FEATS["d"]),
    "d/d-1": _ratio(FEATS["d"], FEATS["d-1"]),
    "v/v-1": _ratio(FEATS["v"], FEATS["v-1"]),
    "v/vmax12": _ratio(FEATS["v"], FEATS["vmax12"]),
}


@dataclass(frozen=True, slots=True)
class Day:
    run: DayRun
    x: list[list[float]]  # per count event, the inputs
    weights: list[list[tuple[int, float]]]  # per truth window: (count event, weight) of its mean


def prepare(runs: Sequence[DayRun], names: Sequence[str]) -> list[Day]:
    return [
        Day(
            r,
            [[FEATS[k](r, i) for k in names] for i in range(len(r.event_devices))],
            overlaps(r.events[RATE_MINUTES[0]], r.windows, r.span),
        )
        for r in runs
    ]


Row = tuple[list[float], float, str]  # inputs, truth, day kind


def window_rows(days: Sequence[Day]) -> list[Row]:
    rows = []
    for day in days:
        k = len(day.x[0]) if day.x else 0
        for ws, y in zip(day.weights, day.run.truth, strict=True):
            rows.append(([sum(day.x[i][j] * w for i, w in ws) for j in range(k)], y, day.run.kind))
    return rows


def event_rows(days: Sequence[Day]) -> list[Row]:
    """Each count event with the truth of the windows it overlaps (their overlap-weighted mean)."""
    rows = []
    for day in days:
        acc: dict[int, list[float]] = {}
        for ws, y in zip(day.weights, day.run.truth, strict=True):
            for i, w in ws:
                a = acc.setdefault(i, [0.0, 0.0])
                a[0] += w * y
                a[1] += w
        rows += [(day.x[i], s / t, day.run.kind) for i, (s, t) in sorted(acc.items())]
    return rows


@dataclass(frozen=True, slots=True)
class Model:
    """CountModel.people's formula over any inputs (the first two devices and open visits)."""

    factor: float
    device_weight: float
    visitor_weight: float
    trees: tuple[Tree, ...] = ()
    bound: float = 0.25

    def people(self, x: Sequence[float]) -> float:
        alone = self.factor * x[0]
        if alone < BLEND_FROM:
            return alone
        linear = self.device_weight * x[0] + self.visitor_weight * x[1]
        bend = sum(predict(t, x) for t in self.trees)
        limit = self.bound * abs(linear)
        return max(linear + min(max(bend, -limit), limit), 0.0)


def fit(days: Sequence[Day], on_events: bool) -> Model:
    windows = window_rows(days)
    xs = [(x[0], y) for x, y, kind in windows if kind != "empty"]
    factor = sum(a * y for a, y in xs) / sum(a * a for a, _ in xs)
    rows = [(x, y) for x, y, _ in (event_rows(days) if on_events else windows) if x[0] * factor >= BLEND_FROM]
    w = nonneg_solve([[x[0], x[1]] for x, _ in rows], [y for _, y in rows])
    blend = Model(factor, w[0], w[1])
    start = [blend.people(x) for x, _ in rows]
    trees = boost([x for x, _ in rows], [y for _, y in rows], start, "lad")
    return Model(factor, w[0], w[1], trees)


def score_day(m: Model, day: Day, smooth: float = 0.0) -> list[float]:
    """Per truth window: the mean of the model's estimate on each count event (smoothed causally)."""
    est: list[float] = []
    for x in day.x:
        p = m.people(x)
        est.append(smooth * est[-1] + (1 - smooth) * p if smooth and est else p)
    return [sum(est[i] * w for i, w in ws) for ws in day.weights]


@dataclass(frozen=True, slots=True)
class Result:
    busy: float
    mape: float
    within1: float
    light: float
    empty: float
    months: dict[str, float]


def cross_validate(days: Sequence[Day], on_events: bool, smooth: float = 0.0) -> Result:
    scored: list[tuple[str, float, float, str]] = []  # month, estimate, truth, kind
    for month in sorted({d.run.month for d in days}):
        m = fit([d for d in days if d.run.month != month], on_events)
        for d in days:
            if d.run.month == month:
                scored += [
                    (month, e, y, d.run.kind)
                    for e, y in zip(score_day(m, d, smooth), d.run.truth, strict=True)
                ]
    busy = [s for s in scored if s[2] >= BUSY]
    return Result(
        statistics.fmean(abs(e - y) for _, e, y, _ in busy),
        100 * statistics.fmean(abs(e - y) / y for _, e, y, _ in busy),
        100 * statistics.fmean(abs(e - y) <= 1 for _, e, y, _ in busy),
        statistics.fmean(abs(e - y) for _, e, y, k in scored if k == "light"),
        statistics.fmean(abs(e - y) for _, e, y, k in scored if k == "empty"),
        {
            month: statistics.fmean(abs(e - y) for mo, e, y, _ in busy if mo == month)
            for month in sorted({s[0] for s in busy})
        },
    )


def show(label: str, r: Result) -> None:
    print(
        f"{label:<44} busy {r.busy:.2f}  MAPE {r.mape:.1f} %  +-1 {r.within1:.0f} %  light {r.light:.2f}  "
        f"empty {r.empty:.2f} | months " + " ".join(f"{v:.2f}" for v in r.months.values()),
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("features", nargs="*", help=f"comma-separated, from d,v: {', '.join(FEATS)}")
    parser.add_argument("--windows", action="store_true", help="fit on the windows' means (version 4)")
    parser.add_argument("--smooth", type=float, nargs="*", default=[], help="causal smoother weights")
    args = parser.parse_args(argv)
    runs = replay_variants(False)["dz8"]
    for spec in args.features or ["d,v"]:
        names = spec.split(",")
        if names[:2] != ["d", "v"] or not set(names) <= set(FEATS):
            parser.error(f"{spec}: must start with d,v and use only {', '.join(FEATS)}")
        days = prepare(runs, names)
        fitted = "windows" if args.windows else "events"
        show(f"{spec} (fitted on {fitted})", cross_validate(days, not args.windows))
        for a in args.smooth:
            show(f"{spec} (fitted on {fitted}), smoothed {a:g}", cross_validate(days, not args.windows, a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
