"""Train the shipped count model (sensor/estimate/count_model.json) on all 103 position-1 lab days.

    .venv/bin/python -m bench.train [--quick] [--dry-run]

The same fit as each fold of bench/heldout.py, on every day: the days replayed under each signal
scale variant (count model off), the variant with the lowest balanced error, the site factor and
the blend's two weights by least squares; the weights are stored in units of the default site
factor (so `site_factor` stays the one number a site calibrates), and the 80 % interval's
quantiles are printed for `estimator.interval_low` / `interval_high`. The held-out figures of this recipe are the
cross-validation's (bench/accuracy.py); the file is what the sensor ships.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.heldout import VARIANTS, fit, replay_variants
from sensor.estimate.count_model import MODEL_FILE, CountModel
from sensor.estimate.occupancy import EstimatorParams

TARGET = Path(__file__).resolve().parents[1] / "sensor" / "estimate" / MODEL_FILE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the development subset of days")
    parser.add_argument("--dry-run", action="store_true", help="print the model, do not write it")
    parser.add_argument(
        "--variant", choices=sorted(VARIANTS), help="fit with this signal-scale variant (default: the best)"
    )
    args = parser.parse_args(argv)
    runs = replay_variants(args.quick)
    if args.variant:
        runs = {args.variant: runs[args.variant]}
    fitted = fit(runs, blend=True)  # the recipe of every cross-validation fold, on all months
    days = runs[fitted.variant]
    default = EstimatorParams().site_factor
    model = CountModel(
        device_weight=fitted.model.device_weight / default,
        visitor_weight=fitted.model.visitor_weight / default,
        blend_from_people=fitted.model.blend_from_people,
        trained_on=(
            f"{len(days)} Fryza lab position-1 days ({days[0].name} to {days[-1].name}), signal scale "
            f"variant {fitted.variant}, in units of site_factor {default:g}; python -m bench.train"
        ),
    )
    print(
        f"signal scale variant {fitted.variant}: {VARIANTS[fitted.variant]}\n"
        f"site factor (devices only) {fitted.factor:.3f}; blend {fitted.model.device_weight:.3f} x devices + "
        f"{fitted.model.visitor_weight:.3f} x open visitor visits from {fitted.model.blend_from_people:g} people"
    )
    print(f"80 % interval: interval_low {fitted.low:.2f}, interval_high {fitted.high:.2f}")
    if VARIANTS[fitted.variant] != EstimatorParams().scale:
        print(f"note: the shipped estimator.scale defaults are not variant {fitted.variant}: update them")
    text = json.dumps(model.to_json(), indent=2) + "\n"
    print(text, end="")
    if not args.dry_run:
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
