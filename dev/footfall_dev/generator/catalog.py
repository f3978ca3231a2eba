"""Every device class by name, and the default phone mix: the lab-measured fingerprints and their shares."""

from __future__ import annotations

from footfall_dev.generator.devices import FIXED_CLASSES, HAND_CLASSES, DeviceClass
from footfall_dev.generator.lab import load

LAB = load()
CLASSES: dict[str, DeviceClass] = {c.name: c for c in (*HAND_CLASSES, *(p.cls for p in LAB))}
LAB_MIX: tuple[tuple[str, float], ...] = tuple((p.cls.name, p.share) for p in LAB)

__all__ = ["CLASSES", "FIXED_CLASSES", "LAB_MIX"]
