"""Calibration that never hurts: fit on part of the ground truth, judge on the rest, shrink toward the defaults.

A site factor fitted on one day and judged on the same day always looks better; on another day it
was worse as often as not (the issue's lab days from a second sensor position: after a one-day fit,
two busy days went from MAE 2.4 to 3.1 and 3.0 to 4.0). So the windows are split into *units*: whole
days when there are two or more, else hour-long blocks of one day (alternate windows when even that
leaves one block). Every other unit is fitted on, the rest are held out.

The factor is shrunk toward the default: factor = w * fitted + (1 - w) * default, with the weight
w chosen on the fit units alone (leave one fit unit out: the w whose factor from the other units
predicts the unit left out best). Consistent units give w = 1, disagreeing ones pull it toward the
default. The result is scored on the held-out units, beside the defaults; `beats` is true only
when it is strictly better there, and the CLI refuses to write a fit that is not.

Pure: the device counts per window come in (the caller replays the captures), numbers come out.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

SHRINK_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
BLOCK_WINDOWS = 4  # an hour of 15-minute windows


@dataclass(frozen=True, slots=True)
class Unit:
    """A day (or an hour of one) of windows: the device count and the true people per window."""

    name: str
    devices: tuple[float, ...]
    truth: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class HeldOutFit:
    default_factor: float
    raw_factor: float  # least squares on the fit units
    weight: float  # shrinkage weight chosen on the fit units
    factor: float  # what would be written
    fit_units: tuple[str, ...]
    held_units: tuple[str, ...]
    mae_default: float  # on the held-out units
    mae_fitted: float
    held_windows: int

    @property
    def beats(self) -> bool:
        return self.mae_fitted < self.mae_default

    def reason(self) -> str:
        """Why the fit is (not) worth writing, in one line."""
        verdict = "better than" if self.beats else "not better than"
        return (
            f"on the {self.held_windows} held-out windows ({', '.join(self.held_units)}) the fit scores "
            f"MAE {self.mae_fitted:.2f}, {verdict} the defaults' {self.mae_default:.2f}"
        )


def units_of(days: Sequence[Unit]) -> list[Unit]:
    """Days as units when there are two or more; else the day cut into hours (or single windows)."""
    if len(days) >= 2:
        return list(days)
    (day,) = days
    n = len(day.truth)
    size = BLOCK_WINDOWS if n >= 2 * BLOCK_WINDOWS else 1
    return [
        Unit(
            f"{day.name} windows {i + 1}-{min(i + size, n)}",
            day.devices[i : i + size],
            day.truth[i : i + size],
        )
        for i in range(0, n, size)
    ]


def least_squares_factor(units: Sequence[Unit], default: float) -> float:
    sxx = sum(x * x for u in units for x in u.devices)
    sxy = sum(x * y for u in units for x, y in zip(u.devices, u.truth, strict=True))
    return min(max(sxy / sxx, 0.0), 100.0) if sxx else default


def mae(units: Sequence[Unit], factor: float) -> float:
    errors = [abs(x * factor - y) for u in units for x, y in zip(u.devices, u.truth, strict=True)]
    return statistics.fmean(errors) if errors else 0.0


def shrink_weight(units: Sequence[Unit], default: float) -> float:
    """The weight of the fitted factor against the default, by leave-one-unit-out over `units`."""
    if len(units) < 2:
        return 0.5  # nothing to check it against: halfway
    best = (float("inf"), 0.0)
    for w in SHRINK_GRID:
        err = 0.0
        for i, left_out in enumerate(units):
            rest = [u for j, u in enumerate(units) if j != i]
            f = w * least_squares_factor(rest, default) + (1 - w) * default
            err += mae([left_out], f)
        if err < best[0] - 1e-12:
            best = (err, w)
    return best[1]


def fit_held_out(days: Sequence[Unit], default: float) -> HeldOutFit:
    """Fit the site factor on every other unit, shrunk toward `default`, scored on the others."""
    if not days or not any(d.truth for d in days):
        raise ValueError("no windows to fit on")
    units = [u for u in units_of(days) if u.truth]
    if len(units) < 2:
        raise ValueError(f"need at least 2 windows to fit on part and judge on the rest, got {len(units)}")
    fit_units, held = units[0::2], units[1::2]
    raw = least_squares_factor(fit_units, default)
    w = shrink_weight(fit_units, default)
    factor = round(w * raw + (1 - w) * default, 4)
    return HeldOutFit(
        default_factor=default,
        raw_factor=raw,
        weight=w,
        factor=factor,
        fit_units=tuple(u.name for u in fit_units),
        held_units=tuple(u.name for u in held),
        mae_default=mae(held, default),
        mae_fitted=mae(held, factor),
        held_windows=sum(len(u.truth) for u in held),
    )
