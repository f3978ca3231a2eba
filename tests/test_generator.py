"""The synthetic store generator: deterministic, realistic where counting is hard, and honest truth."""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from footfall_dev.craft import channel_frequency, radiotap_probe_request
from footfall_dev.generator import (
    CLASSES,
    TWO_SENSORS,
    GeneratedDay,
    Kind,
    ModelError,
    SensorPlace,
    StoreModel,
    Truth,
    generate,
    lab,
    scale_to_frames,
    truth_path,
    write_day,
    write_store,
)
from footfall_dev.generator.__main__ import DEMO_CAPTURE, main
from footfall_dev.generator.radio import device_emissions
from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11Elt, Dot11ProbeReq, RadioTap

from sensor.decode.capture import read_capture
from sensor.decode.decoder import FrameDecoder

NS = 1_000_000_000
# a short morning keeps scapy's share of the run down; every kind of person and device is in it
SMALL = StoreModel(
    seed=11,
    capture_hours=(9, 13),
    opening_hours=(10, 12),
    visitor_profile=(1.0, 1.5),
    street_profile=(1.0, 0.8, 1.2, 1.5),
    staff_shift_hours=(9.5, 12.5),
    visitors=60,
    passersby=180,
    staff=2,
    fixed_devices=2,
)
TINY = dataclasses.replace(SMALL, visitors=20, passersby=80, staff=1)  # for scapy, ~1 ms a frame


@pytest.fixture(scope="module")
def day() -> GeneratedDay:
    return generate(SMALL)


@pytest.fixture(scope="module")
def records(day: GeneratedDay) -> list[tuple[int, bytes]]:
    return list(day.records())


def element_ids(body: bytes) -> tuple[int, ...]:
    ids, i = [], 0
    while i < len(body):
        ids.append(body[i])
        i += 2 + body[i + 1]
    return tuple(ids)


def scapy_ids(frame: RadioTap) -> tuple[int, ...]:
    ids, elt = [], frame.getlayer(Dot11Elt)
    while isinstance(elt, Dot11Elt):
        ids.append(elt.ID)
        elt = elt.payload
    return tuple(ids)


def crafted(day: GeneratedDay) -> Iterator[tuple[int, bytes, int, bytes, tuple[int, ...], int, int]]:
    """What each probe request was built from, straight from the simulation."""
    for person in day.people:
        if person.device is None:
            continue
        for t, addr, seq, ch, rssi, ssid, elements in device_emissions(day.model, person):
            ts_ns = day.truth.start_ns + round(t * 1e6) * 1000
            yield ts_ns, addr, seq, ssid, (0, *element_ids(elements)), rssi, channel_frequency(ch)


# -- determinism ------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_day_and_another_seed_another(records: list[tuple[int, bytes]]) -> None:
    again = generate(SMALL)
    assert list(again.records()) == records
    assert again.truth == generate(SMALL).truth
    other = generate(dataclasses.replace(SMALL, seed=12))
    assert other.truth.people != again.truth.people
    assert next(iter(other.records())) != records[0]


def test_records_come_in_time_order_within_the_capture_window(
    day: GeneratedDay, records: list[tuple[int, bytes]]
) -> None:
    stamps = [ts for ts, _ in records]
    assert stamps == sorted(stamps)
    assert day.truth.start_ns <= stamps[0] and stamps[-1] < day.truth.end_ns + NS
    assert all(ts % 1000 == 0 for ts in stamps)  # µs resolution: a pcap round trip is exact


def test_regenerating_the_demo_is_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "demo-store.pcap"
    write_day(StoreModel.demo(), out)
    assert out.read_bytes() == DEMO_CAPTURE.read_bytes()
    assert truth_path(out).read_bytes() == truth_path(DEMO_CAPTURE).read_bytes()


def test_the_demo_is_small_enough_to_ship_and_holds_a_few_hundred_people() -> None:
    assert DEMO_CAPTURE.stat().st_size < 2_200_000
    truth = Truth.load(truth_path(DEMO_CAPTURE))
    assert 300 <= truth.visitors + truth.passersby <= 600


# -- the capture ----------------------------------------------------------------------------------------


def test_every_probe_request_decodes_with_scapy_to_the_crafted_fields() -> None:
    day = generate(TINY)
    decoded: Counter[tuple[int, bytes, int, bytes, tuple[int, ...], int, int]] = Counter()
    beacons = 0
    for ts, data in day.records():
        frame = RadioTap(data)
        if frame.haslayer(Dot11Beacon):
            beacons += 1
            continue
        assert frame.haslayer(Dot11ProbeReq), frame.summary()
        dot11 = frame[Dot11]
        decoded[
            (
                ts,
                bytes.fromhex(dot11.addr2.replace(":", "")),
                dot11.SC >> 4,
                frame[Dot11Elt].info,
                scapy_ids(frame),
                frame.dBm_AntSignal,
                frame.ChannelFrequency,
            )
        ] += 1
    assert decoded == Counter(crafted(day))
    assert sum(decoded.values()) == day.truth.probe_requests
    assert beacons == day.truth.other_frames > 0  # the decoder's skip path gets exercised


def test_the_pcap_on_disk_holds_exactly_the_records(
    tmp_path: Path, day: GeneratedDay, records: list[tuple[int, bytes]]
) -> None:
    truth = write_day(SMALL, tmp_path / "small.pcap")
    back = [(r.ts_ns, r.data) for r in read_capture(tmp_path / "small.pcap")]
    assert back == records
    assert {r.linktype for r in read_capture(tmp_path / "small.pcap")} == {127}
    assert Truth.load(tmp_path / "small.truth.json") == truth == day.truth


def test_the_pipelines_decoder_accepts_every_probe_and_skips_the_beacons(
    records: list[tuple[int, bytes]],
) -> None:
    decode = pytest.importorskip("sensor.decode.decoder")
    decoder = decode.FrameDecoder()
    probes = [p for ts, data in records if (p := decoder.decode(ts, 127, data)) is not None]
    assert decoder.stats.errors == {}
    assert decoder.stats.skipped == {"beacon": len(records) - len(probes)}


# -- realism ------------------------------------------------------------------------------------------------


def test_visitors_are_heard_stronger_than_passersby(day: GeneratedDay) -> None:
    rssi: dict[Kind, list[int]] = {Kind.VISITOR: [], Kind.PASSERBY: []}
    for person in day.people:
        if person.device is not None and person.kind in rssi:
            inside = [
                e[4] for e in device_emissions(day.model, person) if person.start_s <= e[0] <= person.end_s
            ]
            rssi[person.kind] += inside
    visitors, passersby = statistics.mean(rssi[Kind.VISITOR]), statistics.mean(rssi[Kind.PASSERBY])
    assert visitors > passersby + 10, (visitors, passersby)
    assert min(rssi[Kind.PASSERBY]) >= day.model.sensitivity_dbm


def test_randomizing_phones_use_many_addresses_and_fixed_devices_one(day: GeneratedDay) -> None:
    for person in day.truth.people:
        dev = person.device
        if dev is None:
            continue
        if person.kind is Kind.FIXED or not dev.randomized:
            assert (dev.addresses, dev.addresses_heard) == (1, 1 if dev.frames else 0), person
        elif CLASSES[dev.device_class].address in ("per_burst", "per_channel"):
            per_scan = 3 * CLASSES[dev.device_class].frames_per_channel[1]  # most frames one scan sends
            assert dev.addresses_heard * per_scan >= dev.frames, person  # a new address every scan
    fixed = [p.device for p in day.truth.people if p.kind is Kind.FIXED]
    assert fixed and all(d is not None and d.frames > 100 for d in fixed)  # probing all morning


def test_addresses_are_locally_administered_exactly_when_the_class_randomizes(day: GeneratedDay) -> None:
    for person in day.people:
        if person.device is None or person.device_class is None:
            continue
        flags = {(e[1][0] & 0x02, e[1][0] & 0x01) for e in device_emissions(day.model, person)}
        expected = 0x02 if CLASSES[person.device_class].randomizes else 0
        assert flags <= {(expected, 0)}, person.device_class


def test_passersby_are_in_range_seconds_to_minutes_and_visitors_stay_minutes(day: GeneratedDay) -> None:
    passing = [p.dwell_s for p in day.truth.people if p.kind is Kind.PASSERBY]
    assert min(passing) > 5 and max(passing) < 200
    assert 40 < statistics.median(passing) < 90
    dwell = [p.dwell_s for p in day.truth.people if p.kind is Kind.VISITOR]
    assert 0.7 * SMALL.dwell_median_s < statistics.median(dwell) < 1.3 * SMALL.dwell_median_s


def test_only_a_share_of_people_carry_a_phone(day: GeneratedDay) -> None:
    people = [p for p in day.truth.people if p.kind is not Kind.FIXED]
    share = sum(p.device is not None for p in people) / len(people)
    assert abs(share - SMALL.phone_share) < 0.1


# -- the truth ---------------------------------------------------------------------------------------------


def test_the_truths_aggregates_agree_with_its_people(day: GeneratedDay) -> None:
    truth = day.truth
    agg = truth.aggregates()
    kinds = Counter(p.kind for p in truth.people)
    assert (agg["visitors"], agg["passersby"], agg["staff"], agg["fixed_devices"]) == (
        SMALL.visitors,
        SMALL.passersby,
        SMALL.staff,
        SMALL.fixed_devices,
    )
    assert agg["visitors"] == kinds[Kind.VISITOR] and agg["passersby"] == kinds[Kind.PASSERBY]
    visitors = [p for p in truth.people if p.kind is Kind.VISITOR]
    assert agg["median_visitor_dwell_s"] == round(statistics.median(p.dwell_s for p in visitors), 3)
    assert agg["visitors_with_device"] == sum(p.device is not None for p in visitors)
    assert agg["probe_requests"] == sum(p.device.frames for p in truth.people if p.device is not None)

    hourly = truth.hourly()
    assert sum(h.visitors for h in hourly) == SMALL.visitors
    assert sum(h.passersby for h in hourly) == SMALL.passersby
    o0, o1 = SMALL.opening_hours
    c0 = SMALL.capture_hours[0]
    assert all(h.visitors == 0 for i, h in enumerate(hourly) if not o0 <= c0 + i < o1)

    # occupancy integrates to the time people spent inside, and the 5-minute series refines the 15-minute one
    inside_s = sum(p.dwell_s for p in truth.people if p.kind in (Kind.VISITOR, Kind.STAFF))
    q15, q5 = truth.occupancy(15), truth.occupancy(5)
    assert sum(o.people for o in q15) * 900 == pytest.approx(inside_s, rel=1e-3)
    for i, window in enumerate(q15):
        assert window.people == pytest.approx(sum(o.people for o in q5[3 * i : 3 * i + 3]) / 3, abs=1e-3)
        assert window.with_device <= window.people + 1e-9


def test_the_truth_file_round_trips_and_holds_no_mac_address(tmp_path: Path, day: GeneratedDay) -> None:
    path = tmp_path / "t.truth.json"
    day.truth.save(path)
    assert Truth.load(path) == day.truth
    text = path.read_text()
    assert not re.search(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}", text, re.IGNORECASE)
    addresses = {
        e[1].hex() for p in day.people if p.device is not None for e in device_emissions(day.model, p)
    }
    assert not any(a in text.lower() for a in addresses)


def test_a_model_that_contradicts_itself_is_refused_with_the_numbers() -> None:
    with pytest.raises(ModelError, match="visitor_profile has 3 weights, 10 hours open"):
        StoreModel(visitor_profile=(1.0, 1.0, 1.0))
    with pytest.raises(ModelError, match="capture 10-21 must contain opening 9-19"):
        StoreModel(capture_hours=(10, 21))
    with pytest.raises(ModelError, match="device_mix names"):
        StoreModel(device_mix=(("fixed_pc", 1.0),))
    with pytest.raises(ModelError, match=r"sensors \['door-1', 'door-1'\]"):
        StoreModel(sensors=(SensorPlace(), SensorPlace()))


# -- the lab-measured phones -------------------------------------------------------------------------------


def test_the_default_mix_is_at_least_forty_lab_fingerprints_with_shares_that_add_up() -> None:
    mix = dict(StoreModel().device_mix)
    assert len(mix) >= 40 and all(name.startswith("lab_") for name in mix)
    assert sum(mix.values()) == pytest.approx(1.0, abs=1e-3)
    policies = Counter(CLASSES[name].address.value for name in mix)
    assert set(policies) == {"global", "per_burst", "interval"}  # factory, per-scan and timed, as measured


def test_each_lab_class_sends_the_very_fingerprint_it_was_measured_with() -> None:
    """The sensor's fingerprint of a generated probe equals the one bench/fingerprints.py measured."""
    measured = {
        row["fingerprint"][:8]: row["fingerprint"]
        for row in json.loads((Path(lab.__file__).parent / "fingerprints.json").read_text())
    }
    decoder = FrameDecoder()
    for entry in lab.load():
        cls = entry.cls
        frame = radiotap_probe_request(b"\x02" * 6, 1, b"", cls.encode(0, 6), -50, channel_frequency(6))
        probe = decoder.decode(0, 127, frame)
        assert probe is not None and probe.fingerprint == measured[cls.name.removeprefix("lab_")], cls.like


def test_a_store_model_with_two_sensors_round_trips_through_its_truth_file(tmp_path: Path) -> None:
    model = dataclasses.replace(TINY, sensors=TWO_SENSORS)
    truth, paths = write_store(model, tmp_path / "two.pcap")
    assert [p.name for p in paths] == ["two.door-1.pcap", "two.back-1.pcap"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert Truth.load(tmp_path / "two.truth.json") == truth and truth.model.sensors == TWO_SENSORS


def test_scaling_to_a_frame_target_lands_within_ten_percent() -> None:
    model = scale_to_frames(SMALL, 40_000)
    assert model.visitors > SMALL.visitors and model.staff == SMALL.staff
    assert generate(model).truth.probe_requests == pytest.approx(40_000, rel=0.1)


def test_the_command_line_writes_a_capture_and_its_truth(tmp_path: Path) -> None:
    out = tmp_path / "cli.pcap"
    result = CliRunner().invoke(main, ["--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0 and Truth.load(tmp_path / "cli.truth.json").model.seed == 3
    assert CliRunner().invoke(main, []).exit_code == 2
