"""The learned part of the people estimate: a small linear blend, shipped as a versioned file.

Time-averaged inside devices (`OccupancyEstimator.devices_inside`) undercount a full room and lag
it: phones connected to the room's Wi-Fi barely probe, so a class of 15 shows as 8-12 inside
devices whose holdovers come and go. The visitor visits open at the end of the interval (devices
heard at the visitor level for `min_dwell_s` and not yet timed out) hold the room's people
between their scans. On the Fryza lab days, blending the two cut the held-out busy-window error by
a quarter (bench/accuracy.py, whole months held out of every fit):

    present = site_factor * (device_weight * devices_inside + visitor_weight * visitors_present)

where the device-only estimate (`site_factor * devices_inside`) reaches `blend_from_people`; below
it (an evening, a single visitor) the device-only estimate stands, since a lingering visit would
count somebody who has left. The weights come from `count_model.json` (package data), written by
`python -m bench.train` (least squares on all 103 lab days, in units of the default site factor,
so `calibrate counts` still fits one factor per site on top). Reading the file is the only I/O,
once, at the first use of the defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

MODEL_FILE = "count_model.json"
MODEL_VERSION = 1


@dataclass(frozen=True, slots=True)
class CountModel:
    device_weight: float = 1.0  # the device-only estimate when visitor_weight is 0
    visitor_weight: float = 0.0
    blend_from_people: float = 2.0
    version: int = MODEL_VERSION
    trained_on: str = ""  # what the weights were fitted on, and by which command

    def __post_init__(self) -> None:
        if self.version != MODEL_VERSION:
            raise ValueError(f"count model version {self.version}: this sensor reads version {MODEL_VERSION}")
        for name in ("device_weight", "visitor_weight"):
            if not 0 <= getattr(self, name) <= 10:
                raise ValueError(f"{name} must be in 0..10, got {getattr(self, name)}")
        if not 0 <= self.blend_from_people <= 1000:
            raise ValueError(f"blend_from_people must be in 0..1000, got {self.blend_from_people}")

    def people(self, site_factor: float, devices: float, visitors_present: float) -> float:
        """People present from inside devices and open visitor visits (see the module docstring)."""
        alone = site_factor * devices
        if alone < self.blend_from_people:
            return alone
        return site_factor * (self.device_weight * devices + self.visitor_weight * visitors_present)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "device_weight": round(self.device_weight, 4),
            "visitor_weight": round(self.visitor_weight, 4),
            "blend_from_people": self.blend_from_people,
            "trained_on": self.trained_on,
        }


@cache
def shipped_model() -> CountModel:
    """The model file that ships with the sensor."""
    text = resources.files("sensor.estimate").joinpath(MODEL_FILE).read_text(encoding="utf-8")
    return CountModel(**json.loads(text))
