"""The learned part of the people estimate: a small linear blend, shipped as a versioned file.

Time-averaged inside devices (`OccupancyEstimator.devices_inside`) undercount a full room and lag
it: phones connected to the room's Wi-Fi barely probe, so a class of 15 shows as 8-12 inside
devices whose holdovers come and go. The visitor visits open at the end of the interval (devices
heard at the visitor level for `min_dwell_s` and not yet timed out) hold the room's people
between their scans. On the Fryza lab days, blending the two cut the held-out busy-window error by
a quarter (bench/accuracy.py, whole months held out of every fit):

    present = site_factor * (device_weight * devices_inside + visitor_weight * visitors_present
                             + rate_weight * rate_devices)

where the device-only estimate (`site_factor * devices_inside`) reaches `blend_from_people`; below
it (an evening, a single visitor) the device-only estimate stands, since a lingering visit would
count somebody who has left. The weights come from `count_model.json` (package data), written by
`python -m bench.train` (least squares on all 103 lab days, in units of the default site factor,
so `calibrate counts` still fits one factor per site on top). Reading the file is the only I/O,
once, at the first use of the defaults.

Version 2 adds the scan-rate feature (sensor/estimate/rates.py): `rate_devices` is the interval's
devices in range, linked where linking is sure and from scan bursts over each fingerprint's
per-device scan rate (`rates`, scans per device-minute by fingerprint, `default_rate` for the
others) where it is not. With `rate_weight` 0 the model is version 1's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

MODEL_FILE = "count_model.json"
MODEL_VERSION = 2


@dataclass(frozen=True, slots=True)
class CountModel:
    device_weight: float = 1.0  # the device-only estimate when visitor_weight is 0
    visitor_weight: float = 0.0
    rate_weight: float = 0.0
    blend_from_people: float = 2.0
    default_rate: float = 1.0  # scans per device-minute of a fingerprint not in `rates`
    # fingerprint -> scans per device-minute (left out of the hash: a dict is not hashable)
    rates: dict[str, float] = field(default_factory=dict, hash=False)
    version: int = MODEL_VERSION
    trained_on: str = ""  # what the weights were fitted on, and by which command

    def __post_init__(self) -> None:
        if self.version != MODEL_VERSION:
            raise ValueError(f"count model version {self.version}: this sensor reads version {MODEL_VERSION}")
        for name in ("device_weight", "visitor_weight", "rate_weight"):
            if not 0 <= getattr(self, name) <= 10:
                raise ValueError(f"{name} must be in 0..10, got {getattr(self, name)}")
        if not 0 <= self.blend_from_people <= 1000:
            raise ValueError(f"blend_from_people must be in 0..1000, got {self.blend_from_people}")
        for fingerprint, rate in {"default_rate": self.default_rate, **self.rates}.items():
            if not 0 < rate <= 600:
                raise ValueError(f"scan rate of {fingerprint} must be in (0, 600] per minute, got {rate}")

    def people(
        self, site_factor: float, devices: float, visitors_present: float, rate_devices: float = 0.0
    ) -> float:
        """People present from inside devices, open visitor visits and the scan-rate figure."""
        alone = site_factor * devices
        if alone < self.blend_from_people:
            return alone
        return site_factor * (
            self.device_weight * devices
            + self.visitor_weight * visitors_present
            + self.rate_weight * rate_devices
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "device_weight": round(self.device_weight, 4),
            "visitor_weight": round(self.visitor_weight, 4),
            "rate_weight": round(self.rate_weight, 4),
            "blend_from_people": self.blend_from_people,
            "default_rate": round(self.default_rate, 4),
            "rates": {k: round(v, 4) for k, v in sorted(self.rates.items())},
            "trained_on": self.trained_on,
        }


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
        return CountModel(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None
