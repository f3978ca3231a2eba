"""Which build of the sensor's hot path runs: compiled by mypyc, or the pure-Python source.

The hot path (decode, pseudonymise, resolve devices, presence model) is plain typed Python; `setup.py`
compiles the modules listed here with mypyc when asked (FOOTFALL_COMPILE), from the same source, and the
source stays the fallback wherever no compiler is. A compiled module is an extension module next to its
`.py`, which the import system prefers. Standard library only: `setup.py` imports this before anything
is installed.
"""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES

# Chosen by profiling `bench/pipeline.py`: together they are ~95 % of a replayed frame's time.
# Not sensor.estimate.count_model: mypyc 2.4.1 crashes (a segfault) on its v2 source; it runs once an
# interval, so it stays interpreted.
HOT_MODULES = (
    "sensor.decode.errors",
    "sensor.decode.frames",
    "sensor.decode.radiotap",
    "sensor.decode.dot11",
    "sensor.decode.prism",
    "sensor.decode.decoder",
    "sensor.decode.capture",
    "sensor.decode.connected",
    "sensor.keys.pseudonym",
    "sensor.keys.consent",
    "sensor.estimate.candidates",
    "sensor.estimate.fixed",
    "sensor.estimate.devices",
    "sensor.estimate.occupancy",
    "sensor.estimate.spans",
    "sensor.estimate.dwell",
    "sensor.estimate.rates",
    "sensor.estimate.visits",
    "sensor.estimate.connected",
    "sensor.estimate.scale",
    "sensor.pipeline",
    "sensor.publish.jsonl",
)


def compiled_modules() -> tuple[str, ...]:
    """The hot modules that were loaded from a compiled extension (importing them if need be)."""
    return tuple(name for name in HOT_MODULES if _is_extension(importlib.import_module(name).__file__))


def build() -> str:
    """ "compiled" (every hot module), "pure" (none) or "mixed" (a partial or stale build: rebuild)."""
    done = len(compiled_modules())
    return "compiled" if done == len(HOT_MODULES) else "pure" if done == 0 else "mixed"


def _is_extension(path: str | None) -> bool:
    return path is not None and path.endswith(tuple(EXTENSION_SUFFIXES))
