"""What the sensor hears from one device: scans, addresses, sequence numbers and signal strength.

`device_emissions` simulates one device over its person's legs and yields the frames a sensor
would record, as plain tuples (no bytes yet, so the truth pass is cheap). Each device draws from
its own `random.Random`, seeded by the model seed and the device index, so any device can be
replayed alone and the frames do not depend on the order devices are merged in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from footfall_dev.generator.catalog import CLASSES
from footfall_dev.generator.devices import SCAN_CHANNELS, AddressPolicy, SeqPolicy
from footfall_dev.generator.model import SensorPlace, StoreModel
from footfall_dev.generator.population import Leg, Person

# (seconds from capture start, transmitter, seq, channel, rssi dBm, ssid, elements after the SSID)
Emission = tuple[float, bytes, int, int, int, bytes, bytes]

_ISPS = ("Livebox", "Freebox", "SFR_", "Bbox", "Wifi-Home", "TP-Link_", "Vodafone-")


@dataclass(slots=True)
class DeviceStats:
    """What one device did, filled in while its emissions are consumed."""

    addresses: int = 0  # addresses used while in the capture
    frames: int = 0  # frames the sensor recorded
    heard: set[bytes] = field(default_factory=set)  # addresses with at least one recorded frame


def device_rng(model: StoreModel, device: int) -> random.Random:
    return random.Random(f"footfall-device:{model.seed}:{device}")


def device_emissions(
    model: StoreModel, person: Person, stats: DeviceStats | None = None, sensor: int = 0
) -> Iterator[Emission]:
    """The frames of `person`'s device that sensor number `sensor` of the model records, in time order.

    Every sensor's run draws the same numbers in the same order (the signal for all of them at every
    scan and frame), so all sensors hear the same scans, addresses and sequence numbers, each with its
    own signal: the same phone in one store, heard from two places.
    """
    assert person.device is not None and person.device_class is not None
    cls = CLASSES[person.device_class]
    rng = device_rng(model, person.device)
    stats = stats if stats is not None else DeviceStats()
    variant = rng.randrange(len(cls.variants))
    encoded = {ch: cls.encode(variant, ch) for ch in SCAN_CHANNELS}
    offset = rng.gauss(0.0, model.device_offset_sigma_db)
    ssids = _remembered_networks(rng) if cls.directed_share else ()
    lo, hi = cls.interval_s
    log_lo, log_hi = math.log(lo), math.log(hi)
    rotation = rng.uniform(*cls.rotation_s)
    heard_channels = frozenset(model.heard_channels)
    clip_lo, clip_hi = model.rssi_clip_dbm
    floor = model.sensitivity_dbm
    gauss, uniform, rand = rng.gauss, rng.uniform, rng.random
    here = model.sensors[sensor]
    n_sensors = len(model.sensors)

    policy = cls.address
    address = _address(rng, cls.oui) if policy is AddressPolicy.GLOBAL else b""
    changed_at = -math.inf
    if policy is AddressPolicy.INTERVAL:  # the address in use on arrival is part-way through its life
        address, changed_at = _address(rng, b""), person.legs[0].t0 - uniform(0.0, rotation)
    stats.addresses = 1 if address else 0
    seq = rng.randrange(4096)
    reset_seq = cls.seq is SeqPolicy.RESET

    def renew() -> None:
        nonlocal address, seq
        address = _address(rng, b"")
        stats.addresses += 1
        if reset_seq:
            seq = rng.randrange(4096)

    spot = _Spot()
    t_first, t_last = person.active_s
    t = t_first + uniform(0.0, hi)  # the scan cycle started before the device came into range
    legs, leg_i = person.legs, 0
    while t < t_last:
        while legs[leg_i].t1 <= t:
            leg_i += 1
        mean = _burst_mean_dbm(model, legs[leg_i], leg_i, spot, t, offset, rng, here, sensor, n_sensors)
        if policy is AddressPolicy.PER_BURST or (
            policy is AddressPolicy.INTERVAL and t - changed_at >= rotation
        ):
            renew()
            changed_at = t
        channels = (rng.choice(SCAN_CHANNELS),) if rand() < cls.partial_share else SCAN_CHANNELS
        tt = t
        for channel in channels:
            if policy is AddressPolicy.PER_CHANNEL:
                renew()
            for _ in range(rng.randint(*cls.frames_per_channel)):
                if n_sensors > 1:
                    fading = [gauss(0.0, model.fading_sigma_db) for _ in range(n_sensors)][sensor]
                else:
                    fading = gauss(0.0, model.fading_sigma_db)
                rssi = round(mean + fading)
                ssid = rng.choice(ssids) if ssids and rand() < cls.directed_share else b""
                if rssi >= floor and channel in heard_channels and tt < t_last:  # gone: not heard
                    stats.frames += 1
                    stats.heard.add(address)
                    yield tt, address, seq, channel, min(max(rssi, clip_lo), clip_hi), ssid, encoded[channel]
                seq = (seq + 1) & 0xFFF
                tt += uniform(*cls.frame_gap_ms) / 1000.0
            tt += uniform(*cls.channel_gap_ms) / 1000.0
        gap = math.exp(uniform(log_lo, log_hi))
        if cls.idle_share and rand() < cls.idle_share:
            gap = uniform(*cls.idle_s)
        elif cls.screen and rand() < model.screen_on_share:
            gap *= model.screen_on_interval_factor
        t += max(gap, tt - t + 1.0)


@dataclass(slots=True)
class _Spot:
    """Where a person inside stands at their last scan: a person walks between scans, never jumps."""

    leg: int = -1  # the leg it belongs to; a new leg starts from a uniform draw
    t: float = 0.0
    distance_m: float = 0.0
    angle: float = 0.0


def _reflect(x: float, lo: float, hi: float) -> float:
    """`x` folded back into [lo, hi], as a walker turns at the shop's walls."""
    if hi <= lo:
        return lo
    span = 2.0 * (hi - lo)
    x = (x - lo) % span
    return lo + (span - x if x > hi - lo else x)


def _burst_mean_dbm(
    model: StoreModel,
    leg: Leg,
    leg_i: int,
    spot: _Spot,
    t: float,
    offset: float,
    rng: random.Random,
    here: SensorPlace,
    sensor: int,
    n_sensors: int,
) -> float:
    """The mean signal at sensor `here` of one scan burst at `t`: path loss, window loss, shadowing.

    Draws from `rng` in the generator's fixed order (inside: the distance, then with several sensors the
    bearing; then one shadowing draw per sensor), so the same seed gives the same capture and every
    sensor's run draws the same numbers. Inside, the first scan of a leg places the person uniformly
    between `near_m` and `far_m`; each later scan moves them from there by a walk of
    `inside_walk_m` (s.d.) per minute since the last scan, turned back at the leg's bounds.
    """
    if leg.inside:
        if spot.leg != leg_i:
            spot.leg, spot.t = leg_i, t
            spot.distance_m = rng.uniform(leg.near_m, leg.far_m)
            if n_sensors > 1:
                spot.angle = rng.uniform(0.0, math.pi)
        else:
            step = model.inside_walk_m * math.sqrt(max(t - spot.t, 0.0) / 60.0)
            spot.t = t
            spot.distance_m = _reflect(spot.distance_m + rng.gauss(0.0, step), leg.near_m, leg.far_m)
            if n_sensors > 1:  # the same walk across the bearing, at that distance
                spot.angle = _reflect(
                    spot.angle + rng.gauss(0.0, step) / max(spot.distance_m, 1.0), 0.0, math.pi
                )
        distance = spot.distance_m
        if n_sensors > 1:  # somewhere at that distance from the first sensor, into the store
            angle = spot.angle
            distance = math.hypot(
                distance * math.cos(angle) - here.along_m, distance * math.sin(angle) - here.depth_m
            )
        mean = model.p0_dbm + offset - 10.0 * model.path_loss_inside * math.log10(max(distance, 0.5))
    else:
        x, perp = leg.street_position(t)
        distance = math.hypot(x - here.along_m, perp + here.depth_m)
        mean = model.p0_dbm + offset - 10.0 * model.path_loss_outside * math.log10(max(distance, 0.5))
        mean -= model.window_loss_db
    mean -= here.extra_loss_db
    if n_sensors > 1:
        return mean + [rng.gauss(0.0, model.shadowing_sigma_db) for _ in range(n_sensors)][sensor]
    return mean + rng.gauss(0.0, model.shadowing_sigma_db)


def _address(rng: random.Random, oui: bytes) -> bytes:
    """A global address under `oui`, or a random one: locally administered bit set, group bit clear."""
    if oui:
        return oui + rng.randbytes(3)
    raw = rng.randbytes(6)
    return bytes(((raw[0] & 0xFC) | 0x02,)) + raw[1:]


def _remembered_networks(rng: random.Random) -> tuple[bytes, ...]:
    """1-3 home-router style network names (made up here; real ones are personal data)."""
    return tuple(
        f"{rng.choice(_ISPS)}{rng.randbytes(2).hex().upper()}".encode() for _ in range(rng.randint(1, 3))
    )


def beacon_emissions(
    model: StoreModel, ap: int, span_s: float
) -> Iterator[tuple[float, bytes, int, int, int, bytes]]:
    """Beacons of access point `ap` (0 is the store's own, strong; others are neighbours, weak):
    (t, bssid, seq, channel, rssi, ssid), thinned to one per `beacon_period_s`."""
    rng = random.Random(f"footfall-ap:{model.seed}:{ap}")
    bssid = bytes.fromhex("f4ca24") + rng.randbytes(3)
    channel = model.heard_channels[ap % len(model.heard_channels)]
    ssid = b"Store-Guest" if ap == 0 else f"{rng.choice(_ISPS)}{rng.randbytes(2).hex().upper()}".encode()
    mean = -45.0 if ap == 0 else -82.0
    seq = rng.randrange(4096)
    t = rng.uniform(0.0, model.beacon_period_s)
    while t < span_s:
        rssi = round(mean + rng.gauss(0.0, model.fading_sigma_db))
        yield t, bssid, seq, channel, min(max(rssi, model.rssi_clip_dbm[0]), model.rssi_clip_dbm[1]), ssid
        seq = (seq + 1) & 0xFFF
        t += model.beacon_period_s * rng.uniform(0.9, 1.1)
