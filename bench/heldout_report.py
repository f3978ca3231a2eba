"""The held-out tables of bench/accuracy.py: per month and pooled, for the count models compared.

The folds themselves (replays, fits, cross-validation) are bench/heldout.py's.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench.heldout import (
    BUSY,
    MODELS,
    SHIPPED_MODEL,
    VARIANTS,
    DayRun,
    Fitted,
    Scored,
    cross_validate,
    replay_variants,
)
from sensor.estimate.occupancy import EstimatorParams
from sensor.estimate.scale import ScaleParams


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


def report(
    runs: dict[str, list[DayRun]], floor: float, model: str = "v1", per_event: bool = False
) -> dict[str, str]:
    spec = MODELS[model]
    scored, fits = cross_validate(runs, floor, spec, per_event=per_event)
    parts = " + ".join(spec.linear) + (f" (rates over {spec.rate_minutes} min)" if spec.rate_minutes else "")
    fitted = ", fitted on count events" if spec.on_events else ""
    scoring = "per count event, as the sensor publishes" if per_event else "on the windows' mean inputs"
    print(
        f"count model {model!r}: {parts or 'devices x site factor'}{', + trees' if spec.trees else ''}"
        f"{fitted}; scored {scoring}"
    )
    header = f"{'held-out month':<15}{'variant':<9}{'factor':>7}{'weights':>22}{'interval':>12}" + "".join(
        f"{title:>11}" for _, title in COLUMNS
    )
    print(header)
    print("-" * len(header))
    for month, f in fits.items():
        row = summary([w for w in scored if w.month == month])
        print(
            f"{month:<15}{f.variant:<9}{f.factor:>7.3f}{_weights(f):>22}"
            f"{f'x{f.low:.2f}-{f.high:.2f}':>12}" + "".join(f"{row.get(k, '-'):>11}" for k, _ in COLUMNS)
        )
    pooled = summary(scored)
    print("-" * len(header))
    print(f"{'pooled':<65}" + "".join(f"{pooled.get(k, '-'):>11}" for k, _ in COLUMNS))
    return pooled


def _weights(f: Fitted) -> str:
    m = f.model
    text = (
        "/".join(f"{w:.2f}" for w in (m.device_weight, m.visitor_weight, m.rate_weight))
        if f.spec.linear
        else "-"
    )
    return text + (f" +{len(m.trees)}t" if m.trees else "")


def per_day(runs: dict[str, list[DayRun]], floor: float, kinds: Sequence[str] = ("busy", "light")) -> None:
    scored, fits = cross_validate(runs, floor, MODELS[SHIPPED_MODEL])
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


def _pooled_line(label: str, row: dict[str, str]) -> None:
    print(f"  {label:<28}" + ", ".join(f"{title} {row.get(k, '-')}" for k, title in COLUMNS[1:]))


def lab_heldout(quick: bool, show_days: bool) -> dict[str, str]:
    runs = replay_variants(quick)
    n = len(next(iter(runs.values())))
    what = "a quick subset of" if quick else "all"
    print(f"Fryza lab, position 1: {what} {n} days, 15-minute windows, whole months held out of every fit")
    print("(variant, site factor, scan rates, blend, trees and interval fitted on the other months;")
    print(" scored on the held-out month)")
    print()
    floor = EstimatorParams().interval_floor
    shipped = next((name for name, v in VARIANTS.items() if v == ScaleParams()), "dz8")
    done: dict[tuple[tuple[str, ...], str], dict[str, str]] = {}

    def pooled(variants: Sequence[str], model: str) -> dict[str, str]:
        key = (tuple(variants), model)
        if key not in done:
            done[key] = summary(cross_validate({v: runs[v] for v in variants}, floor, MODELS[model])[0])
        return done[key]

    print(
        f"As shipped: the count model {SHIPPED_MODEL!r} with the sensor's default scale variant ({shipped}):"
    )
    done[((shipped,), SHIPPED_MODEL)] = out = report({shipped: runs[shipped]}, floor, SHIPPED_MODEL)
    print(
        "targets: busy MAE <= 1.5, MAPE <= 10 %, >= 75 % within +-1, coverage 75-85 %; "
        "light MAE <= 0.4; empty MAE <= 0.1"
    )
    print()
    print("As shipped, scored as the sensor publishes it (the model on every count event, a window the")
    print("mean of them; the shipped model is fitted that way):")
    report({shipped: runs[shipped]}, floor, SHIPPED_MODEL, per_event=True)
    print()
    print("Before (the version-4 model, the same folds, both ways):")
    report({shipped: runs[shipped]}, floor, "v4")
    report({shipped: runs[shipped]}, floor, "v4", per_event=True)
    print()
    print("Scored as the sensor publishes it (the model on every count event, a window the mean of them):")
    for model in ("trees", "v4", SHIPPED_MODEL):
        scored = cross_validate({shipped: runs[shipped]}, floor, MODELS[model], per_event=True)[0]
        _pooled_line(f"{model}, per count event", summary(scored))
    print()
    print(f"Each count model with scale variant {shipped} in every fold (pooled, held out):")
    for model in MODELS:
        _pooled_line(model, pooled([shipped], model))
    print()
    print("Each signal-scale variant forced in every fold (pooled, held out):")
    for variant in runs:
        _pooled_line(f"v1, {variant}", pooled([variant], "v1"))
    print()
    print("Scale variant chosen per fold by its training error (pooled, held out):")
    for model in ("devices", "v1", SHIPPED_MODEL):
        _pooled_line(model, pooled(list(runs), model))
    _pooled_line("devices, fixed dBm ('off')", pooled(["off"], "devices"))
    if show_days:
        print()
        per_day(runs, floor)
    return out
