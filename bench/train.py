"""Train the shipped count model (sensor/estimate/count_model.json) on all 103 position-1 lab days,
and fit the default site factor of an uncalibrated site on generated store training seeds.

    .venv/bin/python -m bench.train [--quick] [--dry-run] [--variant dz8]

The same fit as each fold of bench/heldout.py, on every day: the days replayed under the sensor's
default signal-scale variant (count model off), the site factor, the blend's weights by
least squares and the boosted trees on its residuals (bench/trees.py); the model is stored at the
lab's site factor 1.34 (`reference_site_factor`: its shape is in device units, and `site_factor` stays
the one number a site calibrates), and the 80 % interval's quantiles, from windows each predicted by
a fit without its month, are printed for `estimator.interval_low` / `interval_high`.

The lab room is one site, where people carry laptops and idle phones sit on the room's Wi-Fi (1.3
people per counted device); a shop's people carry one phone or none. So the default site factor,
`estimator.site_factor` of a sensor nobody calibrated (the file's `default_site_factor`), is fitted (least squares over every window,
the shipped model's shape held) on the generated store days of `TRAIN_SEEDS` (bench/storedays.py:
the demo boutique, a store and a mall front, the lab-measured phone mix) and stored; seeds 3-5 are
held out for bench/generated.py. The held-out figures of this recipe are the cross-validation's
(bench/accuracy.py) and bench/generated.py's; the file is what the sensor ships.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bench.heldout import MODELS, SHIPPED_MODEL, VARIANTS, fit, replay_variants
from bench.storedays import TRAIN_SEEDS, StoreDay, store_days
from sensor.estimate.count_model import MODEL_FILE, CountModel, load_model
from sensor.estimate.occupancy import EstimatorParams
from sensor.estimate.scale import ScaleParams

# The Fryza lab room's people per counted device (least squares on 2022-11-22, `calibrate counts`):
# the site factor the model file's numbers are stored at.
LAB_SITE_FACTOR = 1.34
TARGET = Path(__file__).resolve().parents[1] / "sensor" / "estimate" / MODEL_FILE


def model_text(model: CountModel) -> str:
    """The model file: indented, one tree a line (60 nested trees would take 1,900 lines)."""
    values = model.to_json()
    trees = values.pop("trees")
    lines = json.dumps(values, indent=2).splitlines()
    body = ",\n".join(f"    {json.dumps(t)}" for t in trees)
    lines.insert(-1, f'  "trees": [\n{body}\n  ]')
    lines[-3] += ","
    return "\n".join(lines) + "\n"


def store_factor(model: CountModel, days: list[StoreDay]) -> float:
    """The site factor whose `model.people` fits the days' people inside best (least squares, 0.01 grid:
    below `blend_from_people` the estimate is the device count's, so the fit is not one closed form).
    A window's estimate is the mean of the model on each of its count events, as the sensor publishes
    (version 5 is fitted that way: fitted on the windows' mean inputs instead, 2.42 against 2.45, the
    held-out seeds 3-8 read people present about a point lower)."""

    def error(factor: float) -> float:
        total = 0.0
        for day in days:
            sums = [[0.0, 0.0] for _ in day.truth]
            for i, w, d, v in day.events:
                sums[i][0] += model.people(factor, d, v) * w
                sums[i][1] += w
            total += sum((p / w - y) ** 2 for (p, w), y in zip(sums, day.truth, strict=True))
        return total

    return min((k / 100 for k in range(50, 501)), key=error)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the development subset of days")
    parser.add_argument("--dry-run", action="store_true", help="print the model, do not write it")
    parser.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        help="fit with this signal-scale variant (default: the sensor's)",
    )
    args = parser.parse_args(argv)
    runs = replay_variants(args.quick)
    variant = args.variant or next(name for name, v in VARIANTS.items() if v == ScaleParams())
    spec = MODELS[SHIPPED_MODEL]
    fitted = fit({variant: runs[variant]}, spec)  # the recipe of every cross-validation fold, on all months
    days = runs[variant]
    # Stored at the lab's calibrated factor: a sensor configured with it counts as fitted
    # (`people` scales by site_factor / reference_site_factor: the shape is the model's, the scale the site's).
    m = replace(fitted.model, reference_site_factor=LAB_SITE_FACTOR)
    stores = store_days(TRAIN_SEEDS)
    default = store_factor(load_model(model_text(m), MODEL_FILE), stores)  # as the file rounds it
    model = replace(
        m,
        default_site_factor=default,
        trained_on=(
            f"{len(days)} Fryza lab position-1 days ({days[0].name} to {days[-1].name}), signal scale "
            f"variant {variant}, count model {SHIPPED_MODEL!r} at the lab's site_factor "
            f"{LAB_SITE_FACTOR:g}; default site_factor {default:g} fitted on generated store "
            f"seeds {', '.join(map(str, TRAIN_SEEDS))}; python -m bench.train"
        ),
    )
    print(
        f"signal scale variant {variant}: {VARIANTS[variant]}\n"
        f"site factor (devices only) {fitted.factor:.3f}; blend {m.device_weight:.3f} x devices + "
        f"{m.visitor_weight:.3f} x open visitor visits + {m.rate_weight:.3f} x rate devices, "
        f"+ {len(m.trees)} trees, from {m.blend_from_people:g} people"
    )
    print(f"80 % interval (out of fold): interval_low {fitted.low:.2f}, interval_high {fitted.high:.2f}")
    params = EstimatorParams()
    print(
        f"default site factor (generated stores, seeds {', '.join(map(str, TRAIN_SEEDS))}, "
        f"{len(stores)} days): {default:g}"
    )
    if (round(fitted.low, 2), round(fitted.high, 2)) != (params.interval_low, params.interval_high):
        print("note: the shipped estimator.interval_low / interval_high defaults differ: update them")
    text = model_text(model)
    print(text, end="")
    if not args.dry_run:
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
