"""The learned part of the people estimate: a small model, shipped as a versioned file.

Time-averaged inside devices (`OccupancyEstimator.devices_inside`) undercount a full room and lag
it: phones connected to the room's Wi-Fi barely probe, so a class of 15 shows as 8-12 inside
devices whose holdovers come and go. The visitor visits open at the end of the interval (devices
heard at the visitor level for `min_dwell_s` and not yet timed out) hold the room's people
between their scans, but grow faster than the crowd (a full room keeps more visits of passers-by
and of split devices open). Versions 2-5 of the model are a linear blend plus a tiny ensemble of
regression trees (gradient boosting, depth 2) that bends it where the blend is off:

    linear = device_weight * devices + visitor_weight * visitors_present + rate_weight * rate_devices
    present = site_factor / reference_site_factor * (
        linear + clamp(sum(tree(devices, visitors_present, rate_devices) for tree in trees),
                       -tree_bound * linear, tree_bound * linear))

where the device-only estimate (`site_factor * devices_inside`) reaches `blend_from_people`; below
it (an evening, a single visitor) the device-only estimate stands, since a lingering visit would
count somebody who has left. The trees may move the blend by at most `tree_bound` of it (version 3):
fitted on one room, their corrections at a crowd the room never had (a boutique's few phones and
many open visits: -1.7 people on a blend of 2) would otherwise halve the count of a new site.
Version 4 has the same form, its trees boosted on absolute error (bench/trees.py). Version 5 has
version 4's form and loss, its blend and trees fitted on every count event's inputs (with the truth
of the windows the event overlaps) instead of on 15-minute windows' mean inputs: the sensor evaluates
the model once per count event, on one interval's inputs, which spread wider than a window's mean of
them; and with as many boosting rounds as a blocked inner cross-validation picks (300 in the shipped
file: a tree is two comparisons, so still microseconds per interval). `rate_devices` is the scan-rate figure (sensor/estimate/rates.py,
with this file's per-fingerprint `rates`); a model that neither weighs nor splits on it leaves
the estimator's scan-rate counting off. The numbers come from `count_model.json` (package data),
written by `python -m bench.train` (fitted on all 103 lab days at the lab's site factor,
`reference_site_factor`: the model's shape is in device units, and the site factor, people per
counted device, is the site's: `calibrate counts` fits it, `EstimatorParams.site_factor` is the
default of an uncalibrated site); reading it is the only I/O, once, at
the first use of the defaults. Evaluating the model is a few dozen comparisons per interval.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

MODEL_FILE = "count_model.json"
MODEL_VERSION = 5
FEATURES = ("devices", "visitors", "rate_devices")  # what a tree may split on, by index
# A tree: a leaf (people to add) or (feature index, threshold, left if <= threshold, right).
Tree = float | tuple[int, float, "Tree", "Tree"]
_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class CountModel:
    device_weight: float = 1.0  # the device-only estimate when the rest is 0
    visitor_weight: float = 0.0
    rate_weight: float = 0.0
    trees: tuple[Tree, ...] = ()
    blend_from_people: float = 2.0
    tree_bound: float = 0.25  # the trees move the blend by at most this share of it
    reference_site_factor: float = 1.0  # the site factor the numbers were fitted at (the lab's)
    # People per counted device at a site nobody calibrated (`estimator.site_factor`'s default):
    # fitted on generated stores by `python -m bench.train`, not on the lab room.
    default_site_factor: float = 1.0
    default_rate: float = 1.0  # scans per device-minute of a fingerprint not in `rates`
    # fingerprint -> scans per device-minute (left out of the hash: a dict is not hashable)
    rates: dict[str, float] = field(default_factory=dict, hash=False)
    version: int = MODEL_VERSION
    trained_on: str = ""  # what the numbers were fitted on, and by which command

    def __post_init__(self) -> None:
        if self.version != MODEL_VERSION:
            raise ValueError(f"count model version {self.version}: this sensor reads version {MODEL_VERSION}")
        for name in ("device_weight", "visitor_weight", "rate_weight"):
            if not 0 <= getattr(self, name) <= 10:
                raise ValueError(f"{name} must be in 0..10, got {getattr(self, name)}")
        if not 0 <= self.blend_from_people <= 1000:
            raise ValueError(f"blend_from_people must be in 0..1000, got {self.blend_from_people}")
        if not 0 <= self.tree_bound <= 1:
            raise ValueError(f"tree_bound must be in 0..1, got {self.tree_bound}")
        if not 0 < self.default_site_factor <= 100:
            raise ValueError(f"default_site_factor must be in (0, 100], got {self.default_site_factor}")
        if not 0 < self.reference_site_factor <= 100:
            raise ValueError(f"reference_site_factor must be in (0, 100], got {self.reference_site_factor}")
        for fingerprint, rate in {"default_rate": self.default_rate, **self.rates}.items():
            if not 0 < rate <= 600:
                raise ValueError(f"scan rate of {fingerprint} must be in (0, 600] per minute, got {rate}")
        for i, tree in enumerate(self.trees):
            _check_tree(tree, f"trees[{i}]", 0)

    @property
    def reads_rates(self) -> bool:
        """Whether the model needs the scan-rate figure (else the estimator does not count rates)."""
        return self.rate_weight > 0 or any(_splits_on(t, 2) for t in self.trees)

    def people(
        self, site_factor: float, devices: float, visitors_present: float, rate_devices: float = 0.0
    ) -> float:
        """People present from inside devices, open visitor visits and the scan-rate figure."""
        alone = site_factor * devices
        if alone < self.blend_from_people:
            return alone
        x = (devices, visitors_present, rate_devices)
        linear = (
            self.device_weight * devices
            + self.visitor_weight * visitors_present
            + self.rate_weight * rate_devices
        )
        bend = 0.0
        for tree in self.trees:
            node = tree
            while not isinstance(node, float):
                feature, threshold, left, right = node
                node = left if x[feature] <= threshold else right
            bend += node
        limit = self.tree_bound * abs(linear)
        total = linear + min(max(bend, -limit), limit)
        return max(site_factor / self.reference_site_factor * total, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "device_weight": round(self.device_weight, 4),
            "visitor_weight": round(self.visitor_weight, 4),
            "rate_weight": round(self.rate_weight, 4),
            "trees": [_tree_json(t) for t in self.trees],
            "blend_from_people": self.blend_from_people,
            "tree_bound": self.tree_bound,
            "reference_site_factor": round(self.reference_site_factor, 4),
            "default_site_factor": self.default_site_factor,
            "default_rate": round(self.default_rate, 4),
            "rates": {k: round(v, 4) for k, v in sorted(self.rates.items())},
            "trained_on": self.trained_on,
        }


def _check_tree(tree: Tree, where: str, depth: int) -> None:
    if isinstance(tree, float):
        if not math.isfinite(tree) or abs(tree) > 1000:
            raise ValueError(f"{where}: a leaf must be a finite number of people within +-1000, got {tree}")
        return
    feature, threshold, left, right = tree
    if not 0 <= feature < len(FEATURES):
        raise ValueError(f"{where}: feature index must be 0..{len(FEATURES) - 1} {FEATURES}, got {feature}")
    if not math.isfinite(threshold):
        raise ValueError(f"{where}: threshold must be finite, got {threshold}")
    if depth >= _MAX_DEPTH:
        raise ValueError(f"{where}: deeper than {_MAX_DEPTH}")
    _check_tree(left, f"{where}.left", depth + 1)
    _check_tree(right, f"{where}.right", depth + 1)


def _splits_on(tree: Tree, feature: int) -> bool:
    if isinstance(tree, float):
        return False
    return tree[0] == feature or _splits_on(tree[2], feature) or _splits_on(tree[3], feature)


def _tree_json(tree: Tree) -> Any:
    if isinstance(tree, float):
        return round(tree, 4)
    feature, threshold, left, right = tree
    return [feature, round(threshold, 4), _tree_json(left), _tree_json(right)]


def _tree_of(value: Any, where: str) -> Tree:
    """JSON → tree: a number, or [feature index, threshold, left, right]."""
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected a number or [feature, threshold, left, right], got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if (
        isinstance(value, list)
        and len(value) == 4
        and isinstance(value[0], int)
        and not isinstance(value[0], bool)
    ):
        if not isinstance(value[1], int | float) or isinstance(value[1], bool):
            raise ValueError(f"{where}: threshold must be a number, got {value[1]!r}")
        return (
            value[0],
            float(value[1]),
            _tree_of(value[2], f"{where}.left"),
            _tree_of(value[3], f"{where}.right"),
        )
    raise ValueError(f"{where}: expected a number or [feature, threshold, left, right], got {value!r}")


@cache
def shipped_model() -> CountModel:
    """The model file that ships with the sensor."""
    text = resources.files("sensor.estimate").joinpath(MODEL_FILE).read_text(encoding="utf-8")
    return load_model(text, MODEL_FILE)


def load_model(text: str, source: str) -> CountModel:
    """A model file's text → the model; a wrong version or field says which file and what."""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not JSON ({exc})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(values).__name__}")
    known = set(CountModel.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"{source}: unknown field(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}"
        )
    try:
        if values.get("version", MODEL_VERSION) != MODEL_VERSION:
            raise ValueError(
                f"count model version {values['version']}: this sensor reads version {MODEL_VERSION}"
            )
        trees = values.pop("trees", [])
        if not isinstance(trees, list):
            raise ValueError(f"trees: expected a list, got {type(trees).__name__}")
        parsed = tuple(_tree_of(t, f"trees[{i}]") for i, t in enumerate(trees))
        return CountModel(**values, trees=parsed)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None
