"""Generated store days as the count model's folds see lab days: per 15-minute window, devices, open visits, truth.

Each scenario of bench/generated.py (the demo boutique, a store, a mall front; one sensor at the door,
footfall_dev.generator with the lab-measured phone mix) is replayed per seed through the real sensor
pipeline with the count model off and `site_factor = 1` (as bench/heldout.py replays lab days), so a
window's `devices` is the device count and `visitors` the open visitor visits; the truth is the
generator's people inside (visitors and staff, with or without a phone). Seeds are split by role:
`TRAIN_SEEDS` may be fitted on (bench/train.py, the folds of bench/heldout.py), the others only scored.
Cached under bench/.cache/stores until the sensor's code or the generator changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from footfall_dev.generator import StoreModel
from footfall_dev.stores import sensor_events

from bench.labdays import CACHE
from footfall.events import CountEvent
from sensor.config import SensorConfig

WINDOW_MIN = 15
TRAIN_SEEDS = (1, 2)  # fitted on; seeds 3-8 are held out (bench/generated.py --seeds 3-8)
HELD_OUT_SEEDS = (3, 4, 5)
SCENARIOS: dict[str, Callable[[int], StoreModel]] = {
    "demo": lambda seed: dataclasses.replace(StoreModel.demo(), seed=seed),
    "store": lambda seed: StoreModel(seed=seed),
    "mall": StoreModel.mall,
}
_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class StoreDay:
    """One generated day: per 15-minute window of its capture, devices, open visits, people inside."""

    scenario: str
    seed: int
    devices: list[float]
    visitors: list[float]
    truth: list[float]
    # Every count event as the sensor evaluates the count model on it: (window index, seconds,
    # devices, open visits); a window's estimate is the time-weighted mean over its events.
    events: list[tuple[int, float, float, float]] = dataclasses.field(default_factory=list)


def _config() -> SensorConfig:
    config = SensorConfig()
    section = config.estimator.model_copy(update={"site_factor": 1.0, "count_model": False})
    return config.model_copy(update={"estimator": section})


def store_day(args: tuple[str, int]) -> StoreDay:
    scenario, seed = args
    truth, events = sensor_events(SCENARIOS[scenario](seed), _config())
    (door,) = events.values()
    step = WINDOW_MIN * 60 * 1_000_000_000
    occupancy = truth.occupancy(WINDOW_MIN)
    sums = [[0.0, 0.0, 0.0] for _ in occupancy]  # devices x time, visits x time, time
    per_event = []
    for e in door:
        if not isinstance(e, CountEvent):
            continue
        a, b = int(e.start.timestamp() * 1e9), int(e.end.timestamp() * 1e9)
        i = (a - truth.start_ns) // step
        if 0 <= i < len(sums):
            w = (b - a) / 1e9
            sums[i][0] += e.present * w
            sums[i][1] += e.visitors_present * w
            sums[i][2] += w
            per_event.append((i, w, e.present, float(e.visitors_present)))
    index = {i: k for k, i in enumerate(i for i, s in enumerate(sums) if s[2] > 0)}
    kept = [(s, o) for s, o in zip(sums, occupancy, strict=True) if s[2] > 0]
    return StoreDay(
        scenario,
        seed,
        [s[0] / s[2] for s, _ in kept],
        [s[1] / s[2] for s, _ in kept],
        [o.people for _, o in kept],
        [(index[i], w, d, v) for i, w, d, v in per_event],
    )


def _key(seeds: Sequence[int]) -> str:
    h = hashlib.sha256(repr((WINDOW_MIN, sorted(SCENARIOS), tuple(seeds))).encode())
    for path in sorted([*(_ROOT / "sensor").rglob("*.py"), *(_ROOT / "dev" / "footfall_dev").rglob("*.py")]):
        if path.name != "count_model.py":  # replayed with the count model off
            h.update(path.read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def store_days(seeds: Sequence[int]) -> list[StoreDay]:
    """Every scenario under every seed (two processes), cached."""
    cached = CACHE.parent / "stores" / f"days-{_key(seeds)}.pickle"
    if cached.exists():
        with cached.open("rb") as f:
            days: list[StoreDay] = pickle.load(f)
        return days
    with ProcessPoolExecutor(max_workers=2) as pool:
        days = list(pool.map(store_day, [(s, seed) for s in SCENARIOS for seed in seeds]))
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        pickle.dump(days, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(cached)
    return days
