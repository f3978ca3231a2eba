"""Train the shipped count model (sensor/estimate/count_model.json) on all 103 position-1 lab days.

    .venv/bin/python -m bench.train [--quick] [--dry-run]

The same fit as each fold of bench/heldout.py, on every day: the days replayed with the shipped
estimator (signal scale included, count model off), the site factor and the blend's two weights by
least squares, the weights stored in units of the default site factor (so `site_factor` stays the
one number a site calibrates), and the 80 % interval's quantiles printed for
`estimator.interval_low` / `interval_high`. The held-out figures of this recipe are the
cross-validation's (bench/accuracy.py); the file is what the sensor ships.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.heldout import BUSY, _factor, _quantile, _windows, fit_blend, replay
from bench.labdays import lab_days
from sensor.estimate.count_model import MODEL_FILE, CountModel
from sensor.estimate.occupancy import EstimatorParams

TARGET = Path(__file__).resolve().parents[1] / "sensor" / "estimate" / MODEL_FILE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the development subset of days")
    parser.add_argument("--dry-run", action="store_true", help="print the model, do not write it")
    args = parser.parse_args(argv)
    params = EstimatorParams()
    runs = [replay(params, day) for day in lab_days(quick=args.quick)]
    factor = _factor(runs)
    blend = fit_blend(runs, factor)
    default = params.site_factor
    model = CountModel(
        device_weight=blend.device_weight / default,
        visitor_weight=blend.visitor_weight / default,
        blend_from_people=blend.blend_from_people,
        trained_on=(
            f"{len(runs)} Fryza lab position-1 days ({runs[0].name} to {runs[-1].name}), "
            f"in units of site_factor {default:g}; python -m bench.train"
        ),
    )
    estimates = [(model.people(default, x, v), y) for x, v, y, _ in _windows(runs)]
    ratios = [y / e for e, y in estimates if y >= BUSY and e > 0]
    print(
        f"site factor (devices only) {factor:.3f}; blend {blend.device_weight:.3f} x devices + "
        f"{blend.visitor_weight:.3f} x open visitor visits from {blend.blend_from_people:g} people"
    )
    print(
        f"80 % interval: interval_low {_quantile(ratios, 0.1):.2f}, interval_high {_quantile(ratios, 0.9):.2f}"
    )
    text = json.dumps(model.to_json(), indent=2) + "\n"
    print(text, end="")
    if not args.dry_run:
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
