"""Scan rates per fingerprint (sensor/estimate/rates.py) on a real excerpt: a class arriving in the lab.

tests/data/fryza-2022-11-22-class.pcap is five minutes of the Fryza lab on 2022-11-22 (12:00-12:05
UTC): the room is empty (the all-day PCs probe) until a class of 16 arrives at 12:03 (the day's
CSV, README there).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import pytest

from sensor.decode.capture import read_capture
from sensor.decode.decoder import FrameDecoder
from sensor.decode.frames import ProbeRequest, Sighting
from sensor.estimate.devices import DeviceResolver, ResolverParams
from sensor.estimate.rates import ScanRates
from sensor.keys.pseudonym import FixedSalt, Pseudonymizer

NS = 1_000_000_000
CLASS = Path(__file__).resolve().parent / "data" / "fryza-2022-11-22-class.pcap"
START = 1_669_118_400 * NS  # 2022-11-22 12:00:00 UTC
ARRIVAL = START + 180 * NS  # the class comes in at 12:03


def class_sightings() -> list[Sighting]:
    decoder, pseudonyms = FrameDecoder(), Pseudonymizer(FixedSalt(b"r" * 32))
    out = []
    for r in read_capture(CLASS):
        p = decoder.decode(r.ts_ns, r.linktype, r.data)
        if isinstance(p, ProbeRequest):
            address = pseudonyms.pseudonym(p.transmitter, p.ts_ns)
            out.append(
                Sighting(
                    p.ts_ns, address, pseudonyms.epoch, p.randomized, p.rssi_dbm, p.channel,
                    p.seq, p.fingerprint, p.ie_ids, p.ssid != "",
                )
            )  # fmt: skip
    return sorted(out, key=lambda s: s.ts_ns)  # as the sensor sees them: in time order


def inside(sightings: list[Sighting], dbm: int = -67) -> list[Sighting]:
    """The frames the estimator feeds the scan rates: at the inside level (its default threshold)."""
    return [s for s in sightings if s.rssi_dbm is None or s.rssi_dbm >= dbm]


def fed(sightings: list[Sighting], linked: bool = True) -> tuple[ScanRates, DeviceResolver]:
    rates, resolver = ScanRates(), DeviceResolver(ResolverParams())
    for s in sightings:
        device = resolver.resolve(s) if linked else s.address
        rates.observe(s.ts_ns, s.address, s.fingerprint, s.randomized, device)
    return rates, resolver


def test_frames_of_one_address_less_than_a_second_apart_are_one_scan_burst() -> None:
    sightings = class_sightings()
    times: dict[tuple[str, str], list[int]] = defaultdict(list)
    for s in sightings:
        times[(s.fingerprint, s.address)].append(s.ts_ns)
    bursts: dict[str, int] = defaultdict(int)
    addresses: dict[str, int] = defaultdict(int)
    for (fp, _), ts in times.items():
        addresses[fp] += 1
        bursts[fp] += 1 + sum(b - a >= NS for a, b in itertools.pairwise(ts))
    rates, _ = fed(sightings, linked=False)
    window = rates.window(START, START + 300 * NS, lambda d: False)
    assert {f.fingerprint: f.bursts for f in window.fingerprints} == bursts
    assert {f.fingerprint: f.new_addresses for f in window.fingerprints} == addresses
    assert window.bursts < len(sightings)  # a burst is several frames (channels, retries)


def test_the_class_arriving_shows_in_the_scan_bursts_per_minute() -> None:
    rates, resolver = fed(inside(class_sightings()))
    before = rates.window(START, ARRIVAL, resolver.is_fixed)
    after = rates.window(ARRIVAL, START + 300 * NS, resolver.is_fixed)
    assert after.bursts / after.minutes > 3 * before.bursts / before.minutes
    assert after.devices > before.devices


def test_the_rate_figure_takes_linked_devices_where_sure_and_scans_over_the_rate_elsewhere() -> None:
    rates, resolver = fed(inside(class_sightings()))
    window = rates.window(ARRIVAL, START + 300 * NS, resolver.is_fixed)
    randomizing = [f for f in window.fingerprints if f.randomized]
    sure = sum(f.devices for f in window.fingerprints if not f.randomized)
    assert randomizing and sure
    # A rate no phone reaches: every fingerprint counts its linked devices.
    assert window.figure({}, 600.0) == window.devices
    # At one scan a minute per phone, a fingerprint counts its scans over its minutes when they say
    # more phones than linking found; global-address fingerprints keep their linked count.
    expected = sure + sum(max(f.devices, f.bursts / window.minutes) for f in randomizing)
    assert window.figure({}, 1.0) == pytest.approx(expected)
    assert window.figure({}, 1.0) > window.devices
    # A fingerprint's own rate overrides the default.
    top = max(randomizing, key=lambda f: f.bursts)
    slow = window.figure({top.fingerprint: 0.1}, 1.0)
    assert slow == pytest.approx(
        expected - max(top.devices, top.bursts / window.minutes) + top.bursts / (0.1 * window.minutes)
    )


def test_fixed_devices_and_their_fingerprints_are_left_out() -> None:
    rates, _ = fed(class_sightings())
    assert rates.window(START, START + 300 * NS, lambda d: True).fingerprints == ()


def test_memory_holds_only_the_retained_buckets_and_recently_heard_addresses() -> None:
    sightings = class_sightings()
    rates, resolver = fed(sightings)
    assert rates.addresses == len({(s.address, s.fingerprint) for s in sightings})
    later = sightings[-1].ts_ns + 7200 * NS
    rates.observe(later, "new", "f" * 16, True, "d")
    assert rates.addresses == 1
    assert rates.window(START, START + 300 * NS, resolver.is_fixed).fingerprints == ()  # forgotten
    assert rates.window(later - 60 * NS, later + 60 * NS, resolver.is_fixed).devices == 1


def test_an_empty_or_inverted_window_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty interval"):
        ScanRates().window(START, START, lambda d: False)
    with pytest.raises(ValueError, match="bucket_s"):
        ScanRates(bucket_s=0)
