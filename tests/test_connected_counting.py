"""Connected phones counted: one device per association, in present, visits and the `connected` figure; linked
to probe addresses only when sure (own address, a store-SSID probe before joining, sequence continuity)."""

from __future__ import annotations

from pathlib import Path

import pytest
from footfall_dev.craft import FC_NULL, FC_QOS_DATA, radiotap_probe_request, radiotap_station_frame

from footfall.events import CountEvent, VisitEvent
from footfall.times import NS
from sensor.config import SensorConfig
from sensor.decode.capture import read_capture
from sensor.decode.frames import ConnectedSighting, Sighting
from sensor.estimate.connected import ConnectedParams, ConnectedTracker
from sensor.keys.pseudonym import FixedSalt
from sensor.pipeline import ListSink, Pipeline

T0 = 1_714_550_400 * NS  # 2024-05-01T08:00Z
AP = bytes.fromhex("f29fc2000001")
PHONE = bytes.fromhex("0a1b2c3d4e5f")  # a per-network (locally administered) address
SALT = FixedSalt(b"s" * 32, epoch="e1")


def conn(ts: int, address: str = "a1", *, seq: int | None = 10, rssi: int | None = -55, up: bool = True,
         kind: str = "null", epoch: str = "e1") -> ConnectedSighting:  # fmt: skip
    return ConnectedSighting(ts, address, epoch, True, "Shop", up, rssi, 6, seq, kind, None)


def probe(ts: int, address: str, seq: int, epoch: str = "e1") -> Sighting:
    return Sighting(ts, address, epoch, True, -60, 6, seq, "f" * 16, (0, 1), False)


def test_a_station_is_one_device_for_its_whole_association_and_counted_once_per_interval() -> None:
    t = ConnectedTracker()
    devices = {heard[1] for i in range(600) if (heard := t.connected(conn(T0 + i * NS, seq=i))) is not None}
    assert len(devices) == 1
    start = T0 - T0 % (300 * NS)
    assert (t.connected_in(start), t.connected_in(start + 300 * NS), t.connected_in(start + 600 * NS)) == (
        1,
        1,
        0,
    )


def test_heartbeats_carry_the_median_of_the_stations_own_frames_and_ap_frames_place_nothing() -> None:
    t = ConnectedTracker(ConnectedParams(tick_s=5))
    out = [t.connected(conn(T0, rssi=-80))]
    # a fading spike (-50) among weak frames does not lift the heartbeat: the median does not follow it
    out += [t.connected(conn(T0 + i * NS, rssi=-50 if i == 2 else -80)) for i in range(1, 5)]
    out.append(t.connected(conn(T0 + 5 * NS, rssi=-81)))
    out.append(t.connected(conn(T0 + 11 * NS, rssi=-30, up=False)))  # the access point's own signal
    sent = [o[0] for o in out if o is not None]
    assert [s.rssi_dbm for s in sent] == [-80, -80]
    assert all(s.fingerprint == "" and not s.directed for s in sent)


def test_a_probe_from_a_stations_own_address_is_that_station() -> None:
    t = ConnectedTracker()
    heard = t.connected(conn(T0, "a1"))
    assert heard is not None
    assert t.probe(probe(T0 + NS, "a1", 99), "resolver-id", False) == heard[1]
    assert t.links_by_address == 1


def test_a_new_random_address_continuing_a_stations_sequence_is_that_station_and_two_candidates_are_none() -> (
    None
):
    t = ConnectedTracker(ConnectedParams(seq_gap=8, seq_window_s=2))
    heard = t.connected(conn(T0, "a1", seq=4094))
    assert heard is not None
    assert t.probe(probe(T0 + NS, "p1", 1), "r1", False) == heard[1]  # 4094 -> 1 wraps: 3 after
    assert t.probe(probe(T0 + NS, "p2", 300), "r2", False) == "r2"  # no counter continues there
    t.connected(conn(T0 + NS, "a2", seq=4095))  # a second station right next to the first's counter
    t.connected(conn(T0 + NS, "a1", seq=4094))
    assert t.probe(probe(T0 + 2 * NS, "p3", 2), "r3", False) == "r3"  # both could have sent it: no guess
    t.connected(conn(T0 + 10 * NS, "a1", seq=100, kind="qos_data"))  # QoS counters are per traffic class
    assert t.probe(probe(T0 + 11 * NS, "p4", 101), "r4", False) == "r4"
    assert t.links_by_seq == 1


def test_a_store_ssid_probe_then_association_from_that_address_is_one_device() -> None:
    t = ConnectedTracker()
    assert t.probe(probe(T0, "a1", 5), "resolver-id", True) == "resolver-id"
    heard = t.connected(conn(T0 + 2 * NS, "a1", kind="auth"))
    assert heard is not None and heard[1] == "resolver-id" and t.links_by_join == 1
    # a wildcard probe from an address that then joins long after: the join window has passed
    t.probe(probe(T0, "a2", 5), "other", True)
    late = t.connected(conn(T0 + 120 * NS, "a2"))
    assert late is not None and late[1] != "other"


def test_a_station_on_the_store_network_all_day_is_fixed() -> None:
    t = ConnectedTracker(ConnectedParams(fixed_min_s=3600, fixed_gap_s=900))
    device = ""
    for i in range(0, 3700, 30):
        heard = t.connected(conn(T0 + i * NS, seq=i % 4096))
        device = heard[1] if heard is not None else device
    assert t.is_fixed(device)
    assert t.connected_in(T0 - T0 % (300 * NS) + 3600 * NS) == 0  # fixed stations are left out


def test_a_new_epoch_forgets_every_station_and_link() -> None:
    t = ConnectedTracker()
    heard = t.connected(conn(T0, "a1"))
    assert heard is not None and t.knows(heard[1])
    t.probe(probe(T0 + NS, "a9", 1, epoch="e2"), "x", False)
    assert not t.knows(heard[1]) and t.live_stations == 0


# -- through the pipeline ----------------------------------------------------------------------------------
def pipeline(store_networks: bool = True) -> tuple[Pipeline, ListSink]:
    capture: dict[str, object] = {"filter": "probe_requests"}
    if store_networks:
        capture["store_networks"] = [{"ssid": "Shop", "bssids": [AP.hex(":")]}]
    config = SensorConfig.model_validate({"site": {"store": "paris-01"}, "capture": capture})
    sink = ListSink()
    return Pipeline(config, SALT, sink), sink


def connected_phone(rssi: int, seconds: int, start: int = T0, mac: bytes = PHONE) -> list[tuple[int, bytes]]:
    """A phone on the guest network: a null frame a second, a QoS data frame down every 10 s."""
    frames = []
    for i in range(seconds):
        frames.append((start + i * NS, radiotap_station_frame(FC_NULL, mac, AP, i % 4096, rssi, 2437)))
        if i % 10 == 0:
            down = radiotap_station_frame(FC_QOS_DATA, mac, AP, i % 4096, -40, 2437, uplink=False)
            frames.append((start + i * NS + NS // 2, down))
    return frames


def run(p: Pipeline, frames: list[tuple[int, bytes]]) -> None:
    for ts, data in sorted(frames):
        p.feed(ts, 127, data)
    p.finish()


def test_a_connected_phone_inside_is_one_connected_visitor_counted_in_present_and_connected() -> None:
    p, sink = pipeline()
    run(p, connected_phone(-55, 1200))
    visits = [e for e in sink.events if isinstance(e, VisitEvent)]
    counts = [e for e in sink.events if isinstance(e, CountEvent)]
    assert [(v.kind, v.connected) for v in visits] == [("visitor", True)]
    assert max(c.present for c in counts) > 0
    assert [c.connected for c in counts] == [1] * len(counts) and len(counts) == 4


def test_a_connected_client_on_the_pavement_is_not_a_visitor_even_with_fading_spikes() -> None:
    p, sink = pipeline()
    frames = connected_phone(-82, 1200)
    # one frame in 20 fades up past the visitor level (-70): the strongest frame would call it inside
    frames += [
        (T0 + i * NS + 1, radiotap_station_frame(FC_NULL, PHONE, AP, 0, -64, 2437))
        for i in range(0, 1200, 20)
    ]
    run(p, frames)
    visits = [e for e in sink.events if isinstance(e, VisitEvent)]
    assert [(v.kind, v.connected) for v in visits] == [("passerby", True)]
    assert all(c.connected == 1 for c in sink.events if isinstance(c, CountEvent))


def test_a_phone_probing_with_its_connected_address_is_one_visit_not_two() -> None:
    p, sink = pipeline()
    frames = connected_phone(-55, 600)
    frames += [
        (T0 + i * NS + 3, radiotap_probe_request(PHONE, 2000 + i, b"Shop", b"", -50, 2437))
        for i in range(0, 600, 60)
    ]
    run(p, frames)
    visits = [e for e in sink.events if isinstance(e, VisitEvent)]
    assert len(visits) == 1 and visits[0].connected is True
    assert p.tracker is not None and p.tracker.links_by_address == 10


def test_without_store_networks_events_carry_no_connected_field() -> None:
    p, sink = pipeline(store_networks=False)
    run(p, [(T0 + i * NS, radiotap_probe_request(PHONE, i, b"", b"", -50, 2437)) for i in range(0, 600, 30)])
    assert sink.events and all(getattr(e, "connected", None) is None for e in sink.events)
    assert all(b'"connected"' not in e.to_json() for e in sink.events)  # old collectors still take them


@pytest.mark.realdata
def test_the_stations_of_the_real_pmkid_capture_are_counted_connected(shared_data: Path) -> None:
    config = SensorConfig.model_validate(
        {
            "site": {"store": "paris-01"},
            "capture": {
                "filter": "probe_requests",
                "store_networks": [{"ssid": "x", "bssids": ["8c:de:f9:d0:b4:61"]}],
            },
        }
    )
    sink = ListSink()
    p = Pipeline(config, SALT, sink)
    p.run(read_capture(shared_data / "captures/aircrack_pmkid-not-recognized.cap"))
    p.finish()
    counts = [e for e in sink.events if isinstance(e, CountEvent)]
    visits = [e for e in sink.events if isinstance(e, VisitEvent)]
    # 9 stations send frames to the access point (one also probes with its own address, before and while connected): 9 devices,
    # each one connected visit (link type 105 carries no signal, so none is placed inside: passersby)
    connected = [v for v in visits if v.connected]
    assert len(connected) == len({v.device for v in connected}) == 9 == len(visits)
    assert [c.connected for c in counts] == [5, 8]  # the 380 s capture spans two 5-minute intervals
    assert p.tracker is not None and p.tracker.links_by_address >= 1
