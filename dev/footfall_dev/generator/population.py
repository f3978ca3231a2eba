"""Who is there and where: the people (and fixed devices) of a store day and how each moves.

Times are seconds from the start of the capture window. A person's movement is a few legs:
a passerby walks one street leg; a visitor or member of staff walks along the pavement to the
door, stays inside, and walks away again, so their phone is heard outside first, as a real
visitor's is. All randomness comes from one `random.Random` seeded by the model, drawn in a fixed
order, so a seed gives the same day.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum

from footfall_dev.generator.catalog import FIXED_CLASSES
from footfall_dev.generator.model import StoreModel


class Kind(StrEnum):
    VISITOR = "visitor"
    PASSERBY = "passerby"
    STAFF = "staff"
    FIXED = "fixed"  # a device that never moves; not a person, counted apart


@dataclass(frozen=True, slots=True)
class Leg:
    """A stretch of time spent either inside (a walk between `near_m` and `far_m`, radio.py) or on the street.

    On the street the position along the window is x(t) = x0 + v * (t - t0), frozen for `pause_s`
    once `pause_after_s` have passed (a window shopper); the distance to the sensor is
    hypot(x, perp).
    """

    t0: float
    t1: float
    inside: bool
    near_m: float = 0.0  # inside: distance range
    far_m: float = 0.0
    x0: float = 0.0  # street
    v: float = 0.0
    perp: float = 0.0
    pause_after_s: float = math.inf
    pause_s: float = 0.0

    def street_position(self, t: float) -> tuple[float, float]:
        """(along the window, off it) at `t`, metres from the first sensor."""
        moving = t - self.t0
        if moving > self.pause_after_s:
            moving = max(self.pause_after_s, moving - self.pause_s)
        return self.x0 + self.v * moving, self.perp


@dataclass(frozen=True, slots=True)
class Person:
    """One person (or fixed device) of the day; `start_s`/`end_s` bound what the truth counts:
    inside for visitors and staff, in range for passersby, the whole capture for fixed devices."""

    index: int
    kind: Kind
    start_s: float
    end_s: float
    legs: tuple[Leg, ...]
    device: int | None  # index of the device carried, None without one
    device_class: str | None

    @property
    def active_s(self) -> tuple[float, float]:
        return self.legs[0].t0, self.legs[-1].t1


def plan_day(model: StoreModel) -> tuple[Person, ...]:
    """Everybody of the day, ordered by start time, people and devices numbered in that order."""
    rng = random.Random(f"footfall-population:{model.seed}")
    c0, c1 = model.capture_hours
    o0, o1 = model.opening_hours
    span = (c1 - c0) * 3600.0
    opening, closing = (o0 - c0) * 3600.0, (o1 - c0) * 3600.0
    drafts: list[tuple[Kind, float, float, tuple[Leg, ...], str | None]] = []

    def phone() -> str | None:
        if rng.random() >= model.phone_share:
            return None
        names = [n for n, _ in model.device_mix]
        return rng.choices(names, weights=[w for _, w in model.device_mix])[0]

    for _ in range(model.staff):
        s0, s1 = model.staff_shift_hours
        t_in = (s0 - c0) * 3600.0 + rng.uniform(-900.0, 900.0)
        t_out = (s1 - c0) * 3600.0 + rng.uniform(-900.0, 900.0)
        legs = _through_door(model, rng, t_in, t_out, inside_m=model.staff_distance_m, span=span)
        drafts.append((Kind.STAFF, t_in, t_out, legs, phone()))
    for i in range(model.fixed_devices):
        d = rng.uniform(*model.fixed_distance_m)
        drafts.append(
            (Kind.FIXED, 0.0, span, (Leg(0.0, span, True, d, d),), FIXED_CLASSES[i % len(FIXED_CLASSES)])
        )
    last_entry = closing - 300.0
    for _ in range(model.visitors):
        t_in = _arrival(rng, model.visitor_profile, opening, last_entry)
        dwell = math.exp(rng.gauss(math.log(model.dwell_median_s), model.dwell_sigma))
        dwell = min(max(dwell, model.dwell_bounds_s[0]), model.dwell_bounds_s[1])
        t_out = min(t_in + dwell, closing + model.closing_grace_s)
        legs = _through_door(model, rng, t_in, t_out, inside_m=model.inside_distance_m, span=span)
        drafts.append((Kind.VISITOR, t_in, t_out, legs, phone()))
    for _ in range(model.passersby):
        leg = _walk_past(model, rng, _arrival(rng, model.street_profile, 0.0), span)
        drafts.append((Kind.PASSERBY, leg.t0, leg.t1, (leg,), phone()))

    drafts.sort(key=lambda d: (d[1], d[0].value))
    people: list[Person] = []
    devices = 0
    for index, (kind, start, end, legs, cls) in enumerate(drafts):
        device = None
        if cls is not None:
            device, devices = devices, devices + 1
        people.append(Person(index, kind, start, end, legs, device, cls))
    return tuple(people)


def _arrival(
    rng: random.Random, profile: tuple[float, ...], offset_s: float, latest_s: float = math.inf
) -> float:
    """An hour drawn by the profile's weights, then a uniform time in it (but not after `latest_s`)."""
    hour_s = offset_s + rng.choices(range(len(profile)), weights=profile)[0] * 3600.0
    return hour_s + rng.random() * max(min(3600.0, latest_s - hour_s), 0.0)


def _speed(model: StoreModel, rng: random.Random) -> float:
    if rng.random() < model.cyclist_share:
        return rng.uniform(*model.cyclist_speed_mps)
    return rng.uniform(*model.walking_speed_mps)


def _walk_past(model: StoreModel, rng: random.Random, t_mid: float, span: float) -> Leg:
    """A passerby's one street leg, centred on `t_mid`, kept within the capture window."""
    half = model.street_half_length_m
    v = _speed(model, rng)
    direction = rng.choice((-1.0, 1.0))
    pause = rng.uniform(*model.window_pause_s) if rng.random() < model.window_shopper_share else 0.0
    duration = 2.0 * half / v + pause
    t0 = min(max(t_mid - duration / 2.0, 0.0), span - duration)
    return Leg(
        t0,
        t0 + duration,
        False,
        x0=-direction * half,
        v=direction * v,
        perp=rng.uniform(*model.street_distance_m),
        pause_after_s=half / v if pause else math.inf,
        pause_s=pause,
    )


def _through_door(
    model: StoreModel,
    rng: random.Random,
    t_in: float,
    t_out: float,
    *,
    inside_m: tuple[float, float],
    span: float,
) -> tuple[Leg, ...]:
    """Walk along the pavement to the door, stay inside, walk off to either end of the street."""
    half, door = model.street_half_length_m, model.door_offset_m
    v_in, v_out = rng.uniform(*model.walking_speed_mps), rng.uniform(*model.walking_speed_mps)
    side_in, side_out = rng.choice((-1.0, 1.0)), rng.choice((-1.0, 1.0))
    walk_in = abs(side_in * half - door) / v_in
    walk_out = abs(side_out * half - door) / v_out
    t_start = max(t_in - walk_in, 0.0)
    t_end = min(t_out + walk_out, span)
    approach_x0 = door - (t_in - t_start) * (-side_in) * v_in
    return (
        Leg(
            t_start,
            t_in,
            False,
            x0=approach_x0,
            v=-side_in * v_in,
            perp=rng.uniform(*model.pavement_distance_m),
        ),
        Leg(t_in, t_out, True, *inside_m),
        Leg(t_out, t_end, False, x0=door, v=side_out * v_out, perp=rng.uniform(*model.pavement_distance_m)),
    )
