"""Fit the uncalibrated people-per-visit defaults on the generated stores' fitting seeds (1-2).

    .venv/bin/python -m bench.visitfactors [--seeds 1,2]

A visit is a device, not a person: a quarter of the generated people carry no probing phone, a phone
idle through a short stay is heard too briefly to make a visitor visit, and in a stream of passers-by
the ones with one phone model chain into one long "device". `presence.visitor_factor` (people per
visitor visit) and the passerby pieces (sensor/estimate/visits.py: a passerby visit is `1 + heard span
// passerby_span_s` passers-by, none if it reached `passerby_inside_rssi`) with `passerby_factor` make
the count events' `visitors_est` / `passersby_est` people. This replays the three scenarios of
bench/generated.py on the fitting seeds, in both layouts (the door sensor alone, and the door sensor of
the two-sensor store, whose day is drawn anew: twelve fitting days of the sensor at the window, the
default config) and fits, as `bench.train` fits the shops' site factor on the same seeds:

- each factor as the mean over the fitting days of truth / found (every scenario weighs the same);
- the passerby span and door level from a small grid, the pair whose fitted factor leaves the largest
  error on a fitting day smallest (the three scenarios agreeing is what makes a default).

Only the fitting seeds are replayed here; bench/generated.py scores the held-out seeds 3-8 through the
whole product. The pieces are counted from the visit events (a passerby event's dwell is its heard
span), as the sensor counts them when the visit closes.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from footfall_dev.generator import TWO_SENSORS
from footfall_dev.generator.model import ONE_SENSOR
from footfall_dev.stores import sensor_events

from bench.generated import SCENARIOS
from footfall.events import VisitEvent

SPANS_S: tuple[float | None, ...] = (15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, None)
DOOR_RSSI: tuple[int | None, ...] = (-55, -60, -65, -70, -75, None)


@dataclass(frozen=True, slots=True)
class Day:
    scenario: str
    seed: int
    sensors: int  # of the layout; the figures are the door sensor's
    visitors: int  # the truth: people
    passersby: int
    visitor_visits: int
    passerby_visits: tuple[tuple[float, int | None], ...]  # (heard span s, rssi_max)


def day(scenario: str, seed: int, sensors: int = 1) -> Day:
    model = dataclasses.replace(
        SCENARIOS[scenario](seed), sensors=ONE_SENSOR if sensors == 1 else TWO_SENSORS
    )
    truth, events = sensor_events(model)
    visits = [e for e in events[ONE_SENSOR[0].name] if isinstance(e, VisitEvent)]
    return Day(
        scenario,
        seed,
        sensors,
        truth.visitors,
        truth.passersby,
        sum(v.kind == "visitor" for v in visits),
        tuple((v.dwell_s, v.rssi_max) for v in visits if v.kind == "passerby"),
    )


def pieces(d: Day, span_s: float | None, door: int | None) -> int:
    """The passers-by of a day's passerby visits, as PresenceModel counts them."""
    return sum(
        1 + (int(dwell // span_s) if span_s is not None else 0)
        for dwell, rssi in d.passerby_visits
        if door is None or rssi is None or rssi < door
    )


@dataclass(frozen=True, slots=True)
class Fit:
    visitor_factor: float
    passerby_factor: float
    passerby_span_s: float | None
    passerby_inside_rssi: int | None
    visitor_worst: float  # the largest relative error on a fitting day
    passerby_worst: float


def fit(days: Sequence[Day]) -> Fit:
    ratios = [d.visitors / max(d.visitor_visits, 1) for d in days]
    vf = statistics.fmean(ratios)
    best: tuple[float, float, float | None, int | None] | None = None
    for door in DOOR_RSSI:
        for span in SPANS_S:
            rs = [d.passersby / max(pieces(d, span, door), 1) for d in days]
            pf = statistics.fmean(rs)
            worst = max(abs(pf / r - 1) for r in rs)
            if best is None or worst < best[0]:
                best = (worst, pf, span, door)
    assert best is not None
    return Fit(
        round(vf, 2), round(best[1], 2), best[2], best[3], max(abs(vf / r - 1) for r in ratios), best[0]
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--seeds", default="1,2", help="the fitting seeds (never the held-out 3-8)")
    args = ap.parse_args(argv)
    days = [day(s, int(seed), n) for s in SCENARIOS for seed in args.seeds.split(",") for n in (1, 2)]
    for d in days:
        print(
            f"{d.scenario:<6} seed {d.seed}, {d.sensors} sensor(s): {d.visitors} visitors / {d.visitor_visits} "
            "visitor visits, "
            f"{d.passersby} passersby / {len(d.passerby_visits)} passerby visits"
        )
    f = fit(days)
    print(
        f"presence.visitor_factor: {f.visitor_factor} (worst fitting day {f.visitor_worst:.0%})\n"
        f"presence.passerby_factor: {f.passerby_factor}, passerby_span_s: {f.passerby_span_s}, "
        f"passerby_inside_rssi: {f.passerby_inside_rssi} (worst fitting day {f.passerby_worst:.0%})"
    )


if __name__ == "__main__":
    main()
