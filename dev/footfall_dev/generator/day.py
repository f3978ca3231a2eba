"""A generated day: the truth, and the capture records streamed in time order, built on demand.

Two passes over the same seeded simulation: the first only counts (frames and addresses per
device, for the truth), the second builds bytes. Both are streams: devices are started when their
person comes into range and dropped when they leave, so a million-frame day never sits in memory.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, time
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from footfall.times import NS
from footfall_dev.craft import channel_frequency, radiotap_beacon, radiotap_probe_request
from footfall_dev.generator.catalog import CLASSES
from footfall_dev.generator.guest import GuestNetwork
from footfall_dev.generator.model import StoreModel
from footfall_dev.generator.population import Kind, Person, plan_day
from footfall_dev.generator.radio import DeviceStats, beacon_emissions, device_emissions
from footfall_dev.generator.truth import DeviceTruth, PersonTruth, Truth
from sensor.decode.capture import PcapWriter

LINKTYPE_RADIOTAP = 127
Record = tuple[int, bytes]  # (UTC ns since the epoch, radiotap frame)


@dataclass(frozen=True, slots=True)
class GeneratedDay:
    model: StoreModel
    people: tuple[Person, ...]
    truth: Truth

    def records(self, sensor: int = 0, guest: GuestNetwork | None = None) -> Iterator[Record]:
        """Sensor number `sensor`'s records in time order (a fresh, identical stream on every call).

        Beacons are the same for every sensor of the store (they are the store's and a neighbour's).
        With `guest`, phones that join the store's guest Wi-Fi send its frames too (generator/guest.py).
        """
        model = self.model
        start_ns = self.truth.start_ns + round(model.sensors[sensor].clock_offset_s * 1e9)
        freq = {ch: channel_frequency(ch) for ch in range(1, 15)}
        fcs = model.fcs

        def probes(person: Person) -> Iterator[tuple[float, bytes]]:
            for t, addr, seq, ch, rssi, ssid, elements in device_emissions(model, person, sensor=sensor):
                yield t, radiotap_probe_request(addr, seq, ssid, elements, rssi, freq[ch], fcs=fcs)

        def device(person: Person) -> Iterator[tuple[float, bytes]]:
            return probes(person) if guest is None else guest.frames(model, person, probes(person), sensor)

        def beacons(ap: int) -> Iterator[tuple[float, bytes]]:
            tsf0 = 3_600_000_000 * (ap + 1)  # the AP booted a while before
            for t, bssid, seq, ch, rssi, ssid in beacon_emissions(model, ap, _span_s(model)):
                yield (
                    t,
                    radiotap_beacon(
                        bssid, seq, ssid, tsf_us=tsf0 + round(t * 1e6), channel=ch, rssi_dbm=rssi, fcs=fcs
                    ),
                )

        sources: list[tuple[float, Callable[[], Iterator[tuple[float, bytes]]]]] = [
            (0.0, partial(beacons, ap)) for ap in range(model.access_points)
        ]
        sources += [(p.active_s[0], partial(device, p)) for p in self.people if p.device is not None]
        sources.sort(key=lambda s: s[0])
        for t, data in _merge(sources):
            yield start_ns + round(t * 1e6) * 1000, data


def _merge(
    sources: list[tuple[float, Callable[[], Iterator[tuple[float, bytes]]]]],
) -> Iterator[tuple[float, bytes]]:
    """Merge time-ordered streams, each opened only once the merged time reaches its start."""
    heap: list[tuple[float, int, bytes, Iterator[tuple[float, bytes]]]] = []
    pending = 0
    while True:
        while pending < len(sources) and (not heap or sources[pending][0] <= heap[0][0]):
            stream = sources[pending][1]()
            first = next(stream, None)
            if first is not None:
                heapq.heappush(heap, (first[0], pending, first[1], stream))
            pending += 1
        if not heap:
            return
        t, key, data, stream = heap[0]
        yield t, data
        nxt = next(stream, None)
        if nxt is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (nxt[0], key, nxt[1], stream))


def _span_s(model: StoreModel) -> float:
    return (model.capture_hours[1] - model.capture_hours[0]) * 3600.0


def capture_start_ns(model: StoreModel) -> int:
    local = datetime.combine(model.day, time(model.capture_hours[0]), ZoneInfo(model.timezone))
    return int(local.timestamp()) * NS


def generate(model: StoreModel) -> GeneratedDay:
    """Plan the day and count what the sensor will hear (the truth); records are built on demand."""
    people = plan_day(model)
    start_ns = capture_start_ns(model)
    span_s = _span_s(model)

    def to_ns(t: float) -> int:  # the same rounding as records()
        return start_ns + round(t * 1e6) * 1000

    truths = []
    probes = 0
    for p in people:
        device = None
        if p.device is not None and p.device_class is not None:
            stats = DeviceStats()
            for _ in device_emissions(model, p, stats):
                pass
            probes += stats.frames
            randomized = CLASSES[p.device_class].randomizes
            device = DeviceTruth(
                p.device, p.device_class, randomized, stats.addresses, len(stats.heard), stats.frames
            )
        truths.append(PersonTruth(p.index, p.kind, to_ns(p.start_s), to_ns(p.end_s), device))
    beacons = sum(sum(1 for _ in beacon_emissions(model, ap, span_s)) for ap in range(model.access_points))
    truth = Truth(model, start_ns, to_ns(span_s), probes, beacons, tuple(truths))
    return GeneratedDay(model, people, truth)


def truth_path(capture_path: Path) -> Path:
    """demo-store.pcap → demo-store.truth.json"""
    return capture_path.with_name(capture_path.stem + ".truth.json")


def write_day(model: StoreModel, capture_path: Path) -> Truth:
    """Write the day's pcap (radiotap, µs timestamps) and its truth beside it; return the truth."""
    day = generate(model)
    _write(day, 0, capture_path)
    day.truth.save(truth_path(capture_path))
    return day.truth


def sensor_path(capture_path: Path, sensor: str) -> Path:
    """store.pcap, back-1 → store.back-1.pcap"""
    return capture_path.with_name(f"{capture_path.stem}.{sensor}{capture_path.suffix}")


def write_store(model: StoreModel, capture_path: Path) -> tuple[Truth, list[Path]]:
    """One capture per sensor of the model (`sensor_path`) and the one truth beside `capture_path`.

    The truth's frame counts are the first sensor's; the people are everybody's.
    """
    day = generate(model)
    paths = [sensor_path(capture_path, place.name) for place in model.sensors]
    for i, path in enumerate(paths):
        _write(day, i, path)
    day.truth.save(truth_path(capture_path))
    return day.truth, paths


def _write(day: GeneratedDay, sensor: int, path: Path) -> None:
    with PcapWriter(path, LINKTYPE_RADIOTAP) as writer:
        for ts_ns, data in day.records(sensor):
            writer.write(ts_ns, data)


def scale_to_frames(model: StoreModel, frames: int) -> StoreModel:
    """The model with visitors and passersby scaled so the day has about `frames` probe requests.

    Staff, fixed devices and beacons do not scale; two counting passes get within a few percent.
    """
    for _ in range(2):
        truth = generate(model).truth
        fixed = sum(
            p.device.frames
            for p in truth.people
            if p.device is not None and p.kind in (Kind.STAFF, Kind.FIXED)
        )
        variable = truth.probe_requests - fixed
        if variable <= 0:
            raise ValueError(f"the model has no visitors or passersby heard to scale to {frames} frames")
        model = model.scaled(max(frames - fixed, 0) / variable)
    return model
