"""The store day the generator simulates: every parameter, its default and why, in one value object.

Geometry: the sensor sits inside, a few metres behind the shop window. Visitors are 1-8 m from
it; the street runs along the window 5-20 m away (near pavement to far side), and is modelled
over ±`street_half_length_m` either side of the sensor, beyond which a phone is taken as out of
range (at 40 m along and 15 m off, the mean signal is ~-87 dBm, near the sensitivity floor).

Radio: rssi = P0 + device offset - 10 n log10(d) - loss + shadowing (per scan) + fading (per
frame), rounded, clipped, and dropped below the sensitivity. P0 -38 dBm at 1 m: a phone's
~15 dBm EIRP, 40 dB free-space loss at 1 m and 2.4 GHz, ~10 dB for a body or pocket. n = 3.0
inside: ITU-R P.1238 gives a distance power loss coefficient N = 10 n of 28 (residential) to 30
(office) at 2.4 GHz and 22 for open commercial floors; shelving and shoppers put a shop nearer
the former. 2.7 along the street; the window costs 7 dB (glazing is 2-10 dB depending on its
coating, ITU-R P.2040); shadowing 4 dB (the usual 3-6 dB indoors) and a per-device offset of
3 dB (phones differ in power and in how they are held); sensitivity -92 dBm (a 1 Mb/s DSSS
frame on a USB Wi-Fi card). A person inside walks: placed uniformly in the range on coming in, then
moved by a step of `inside_walk_m` (1 m s.d.) per minute between scans, turned back at the range's
ends. It was a new uniform draw at every scan, which put a visitor's next scan more than 10 dB outside
its channel range in 7.9 % of steps inside (99th percentile 21 dB), against 1.9 % (13.5 dB) for the lab's
phones while a class arrives or leaves and 1.1 % (10.5 dB) while the count holds (`bench/linking.py`);
with the walk, 2.4 % (12.5 dB): a shopper moves more than a seated student. Heard frames average -55 dBm from visitors, -80 dBm from passersby; the
tails meet: a visitor at the back of the shop and a passerby on the near pavement look alike.

People: visitors' dwell is log-normal, median 12 min (the brief's 10-15 min), sigma 0.7 (a
quick errand to an hour), cut to 1-90 min and at closing time + 10 min; three passersby to a
visitor (a shop converting ~25 % of the people who pass). Walking 1.0-1.6 m/s (Bohannon 1997:
comfortable gait 1.3-1.5 m/s); 10 % cyclists at 3.5-6 m/s (a few seconds in range); 10 % stop
at the window for 10-90 s. Visitors and staff are heard on the pavement as they come and go.
75 % carry a phone with Wi-Fi on (about 87 % of the French own a smartphone, ARCEP/CREDOC
Baromètre du numérique; most leave Wi-Fi on). The device mix is the lab's: 54 phone fingerprints
measured on the 103 Fryza lab days, each with its own scan behaviour, weighted by how many phones
its scans stand for (lab.py); the hand-written classes of devices.py stay available by name.

Sensors: one by default, `door-1`, a few metres behind the window (all distances above are from
it). `sensors` may place more in the same store: each at `along_m` along the window and `depth_m`
further back from it, with `extra_loss_db` for a shelf or a wall in the way; a person inside is
then at the drawn distance from the first sensor in a random direction into the store, and every
sensor hears the same scans with its own signal (radio.py). `write_store` writes one capture per
sensor and one truth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from footfall_dev.generator.catalog import CLASSES, FIXED_CLASSES, LAB_MIX
from footfall_dev.generator.devices import SCAN_CHANNELS

DEMO_SEED = 20240314

DEFAULT_MIX: tuple[tuple[str, float], ...] = LAB_MIX
# weight per opening hour 09..18: a slow morning, a lunch bump, the after-work peak
DEFAULT_VISITOR_PROFILE = (0.5, 0.8, 1.0, 1.3, 1.2, 0.9, 1.0, 1.3, 1.6, 1.1)
# weight per capture hour 08..20: commuters at 8 and 17-18, lunch, a quiet evening
DEFAULT_STREET_PROFILE = (1.4, 0.9, 0.8, 1.0, 1.5, 1.3, 0.9, 0.9, 1.1, 1.6, 1.5, 0.9, 0.5)


class ModelError(ValueError):
    """A StoreModel whose parameters contradict each other; the message names field and values."""


@dataclass(frozen=True, slots=True)
class SensorPlace:
    """Where one sensor of the store sits, relative to the first one (see the module docstring)."""

    name: str = "door-1"
    along_m: float = 0.0
    depth_m: float = 0.0
    extra_loss_db: float = 0.0
    clock_offset_s: float = 0.0  # its clock against the first one's (NTP keeps Pis within a few ms to s)


ONE_SENSOR = (SensorPlace(),)
# A second sensor at the back of the shop, 6 m along and 8 m deeper: it hears the street weaker and the
# people in the back stronger than the first one does; its clock is 0.35 s ahead.
TWO_SENSORS = (
    SensorPlace(),
    SensorPlace("back-1", along_m=6.0, depth_m=8.0, extra_loss_db=3.0, clock_offset_s=0.35),
)


@dataclass(frozen=True, slots=True)
class StoreModel:
    """One simulated store day. Hours are local (`timezone`); a range (a, b) is drawn uniformly."""

    seed: int = 1
    day: date = date(2024, 3, 14)  # a Thursday
    timezone: str = "Europe/Paris"
    capture_hours: tuple[int, int] = (8, 21)  # what the sensor records
    opening_hours: tuple[int, int] = (9, 19)
    visitors: int = 300
    passersby: int = 900
    staff: int = 3
    fixed_devices: int = 2
    visitor_profile: tuple[float, ...] = DEFAULT_VISITOR_PROFILE  # weight per opening hour
    street_profile: tuple[float, ...] = DEFAULT_STREET_PROFILE  # weight per capture hour
    dwell_median_s: float = 720.0
    dwell_sigma: float = 0.7  # of the log-normal
    dwell_bounds_s: tuple[float, float] = (60.0, 5400.0)
    closing_grace_s: float = 600.0  # the last visitors are out this long after closing
    staff_shift_hours: tuple[float, float] = (8.5, 19.5)  # ±15 min per person
    phone_share: float = 0.75  # people carrying a phone with Wi-Fi on
    device_mix: tuple[tuple[str, float], ...] = DEFAULT_MIX  # phone classes and their shares
    screen_on_share: float = 0.2  # scans made while the screen is on
    screen_on_interval_factor: float = 0.3  # scans come this much closer with the screen on
    inside_distance_m: tuple[float, float] = (1.0, 8.0)  # visitors: drawn on entering, then walked
    inside_walk_m: float = 1.0  # s.d. of a person's move inside per minute between scans (radio.py)
    staff_distance_m: tuple[float, float] = (2.0, 12.0)
    fixed_distance_m: tuple[float, float] = (2.0, 10.0)
    street_distance_m: tuple[float, float] = (5.0, 20.0)  # passersby, off the window
    pavement_distance_m: tuple[float, float] = (5.0, 8.0)  # people walking to or from the door
    street_half_length_m: float = 40.0
    door_offset_m: float = 3.0  # the door along the street, from the sensor
    walking_speed_mps: tuple[float, float] = (1.0, 1.6)
    cyclist_share: float = 0.1
    cyclist_speed_mps: tuple[float, float] = (3.5, 6.0)
    window_shopper_share: float = 0.1
    window_pause_s: tuple[float, float] = (10.0, 90.0)
    p0_dbm: float = -38.0  # mean signal at 1 m
    path_loss_inside: float = 3.0
    path_loss_outside: float = 2.7
    window_loss_db: float = 7.0
    shadowing_sigma_db: float = 4.0  # per scan
    fading_sigma_db: float = 2.0  # per frame
    device_offset_sigma_db: float = 3.0
    sensitivity_dbm: float = -92.0
    rssi_clip_dbm: tuple[int, int] = (-100, -20)
    heard_channels: tuple[int, ...] = SCAN_CHANNELS  # one channel for a sensor that does not hop
    access_points: int = 2  # beacons a sensor also hears: the store's own AP and a neighbour's
    beacon_period_s: float = 120.0  # thinned: a real AP beacons every 0.1 s
    fcs: bool = False  # frames carry their FCS (as some drivers deliver them)
    sensors: tuple[SensorPlace, ...] = ONE_SENSOR

    def __post_init__(self) -> None:
        c0, c1 = self.capture_hours
        o0, o1 = self.opening_hours
        if not 0 <= c0 <= o0 < o1 <= c1 <= 24:
            raise ModelError(f"hours must nest: capture {c0}-{c1} must contain opening {o0}-{o1}")
        if len(self.visitor_profile) != o1 - o0:
            raise ModelError(f"visitor_profile has {len(self.visitor_profile)} weights, {o1 - o0} hours open")
        if len(self.street_profile) != c1 - c0:
            raise ModelError(
                f"street_profile has {len(self.street_profile)} weights, {c1 - c0} hours captured"
            )
        s0, s1 = self.staff_shift_hours
        if not c0 + 0.25 <= s0 < s1 <= c1 - 0.25:
            raise ModelError(f"staff shift {s0}-{s1} h must lie 15 min inside the capture {c0}-{c1} h")
        for name, value in (("visitors", self.visitors), ("passersby", self.passersby)):
            if value < 0:
                raise ModelError(f"{name} = {value}, must be >= 0")
        if not 0.0 <= self.phone_share <= 1.0:
            raise ModelError(f"phone_share = {self.phone_share}, must be within 0..1")
        unknown = [name for name, _ in self.device_mix if name not in CLASSES or name in FIXED_CLASSES]
        if unknown or not self.device_mix:
            raise ModelError(f"device_mix names {unknown or 'nothing'}; phone classes are {sorted(CLASSES)}")
        if not self.heard_channels or not set(self.heard_channels) <= set(SCAN_CHANNELS):
            raise ModelError(f"heard_channels {self.heard_channels} must be some of {SCAN_CHANNELS}")
        names = [p.name for p in self.sensors]
        if not names or len(set(names)) != len(names) or self.sensors[0] != SensorPlace(names[0]):
            raise ModelError(f"sensors {names}: give one or more, distinctly named, the first at 0, 0, 0 dB")
        ZoneInfo(self.timezone)  # raises for an unknown zone

    # -- presets ------------------------------------------------------------------------------------

    @classmethod
    def demo(cls) -> StoreModel:
        """The boutique day that ships as sensor/demo/demo-store.pcap: ~400 people, under 2 MB."""
        return cls(
            seed=DEMO_SEED,
            capture_hours=(9, 20),
            opening_hours=(10, 19),
            visitor_profile=(0.6, 0.9, 1.2, 1.3, 1.0, 0.9, 1.1, 1.4, 1.5),
            street_profile=(1.0, 0.8, 0.9, 1.4, 1.4, 1.0, 0.9, 1.0, 1.5, 1.4, 0.9),
            visitors=75,
            passersby=325,
            staff=1,
            fixed_devices=2,
            staff_shift_hours=(9.5, 19.5),
            access_points=1,
        )

    @classmethod
    def bench(cls, seed: int = 7) -> StoreModel:
        """A busy mall-front day: about a million frames, for the pipeline benchmark."""
        return cls(
            seed=seed,
            capture_hours=(8, 22),
            opening_hours=(10, 21),
            visitor_profile=(0.6, 0.9, 1.3, 1.3, 1.0, 1.0, 1.1, 1.3, 1.6, 1.5, 1.0),
            street_profile=(1.0, 1.0, 1.1, 1.3, 1.6, 1.5, 1.1, 1.1, 1.3, 1.6, 1.6, 1.3, 1.0, 0.7),
            visitors=10700,
            passersby=37000,
            staff=25,
            fixed_devices=12,
        )

    @classmethod
    def mall(cls, seed: int = 1) -> StoreModel:
        """A mall-front store: 60 visitors and 300 passersby an hour."""
        return cls(seed=seed, visitors=600, passersby=3900, staff=4)

    def scaled(self, factor: float) -> StoreModel:
        """The same day with `factor` times the visitors and passersby (staff and fixed kept)."""
        return dataclasses.replace(
            self, visitors=round(self.visitors * factor), passersby=round(self.passersby * factor)
        )

    # -- JSON ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "sensors":
                out[f.name] = [dataclasses.asdict(p) for p in value]
            else:
                out[f.name] = value.isoformat() if isinstance(value, date) else _listify(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoreModel:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ModelError(f"unknown StoreModel fields {unknown}")
        values: dict[str, Any] = {
            k: date.fromisoformat(v) if k == "day" else _tupleize(v)
            for k, v in data.items()
            if k != "sensors"
        }
        if "sensors" in data:
            values["sensors"] = tuple(SensorPlace(**p) for p in data["sensors"])
        return cls(**values)


def _listify(value: Any) -> Any:
    return [_listify(v) for v in value] if isinstance(value, tuple) else value


def _tupleize(value: Any) -> Any:
    return tuple(_tupleize(v) for v in value) if isinstance(value, list) else value
