"""Connected stations take the probe requests' privacy path: opt-out dropped first, pseudonym at once, consent token."""

from __future__ import annotations

from footfall_dev.craft import FC_NULL, FC_QOS_DATA, radiotap_station_frame

from sensor.config import SensorConfig
from sensor.decode.frames import ConnectedSighting
from sensor.keys.pseudonym import Pseudonymizer
from sensor.pipeline import ListSink, Pipeline
from tests.test_consent import IN, KEY, OUT, PLAIN, SALT, T0, filter_in_force

AP = bytes.fromhex("f2 9f c2 00 00 01")
OTHER_AP = bytes.fromhex("f2 9f c2 00 00 02")


def pipeline(mode: str, got: list[ConnectedSighting]) -> Pipeline:
    config = SensorConfig.model_validate(
        {
            "site": {"store": "paris-01"},
            "privacy": {"mode": mode},
            "capture": {
                "filter": "probe_requests",
                "store_networks": [{"ssid": "Shop", "bssids": [AP.hex(":")]}],
            },
        }
    )
    privacy = filter_in_force()
    return Pipeline(
        config,
        SALT,
        ListSink(),
        drop_mac=privacy.drop,
        consent_of_mac=privacy.consent_token,
        on_connected=got.append,
    )


def station_frames(mac: bytes, bssid: bytes = AP) -> list[bytes]:
    return [
        radiotap_station_frame(FC_NULL, mac, bssid, 1, -48, 2437),
        radiotap_station_frame(FC_QOS_DATA, mac, bssid, 2, -61, 2437, uplink=False, payload=b"\x00" * 40),
    ]


def test_connected_stations_become_sightings_under_the_probe_requests_pseudonym() -> None:
    got: list[ConnectedSighting] = []
    p = pipeline("pseudonymous", got)
    for i, data in enumerate(station_frames(PLAIN)):
        p.feed(T0 + i, 127, data)
    expected = Pseudonymizer(SALT).pseudonym(PLAIN, T0)
    assert [(s.address, s.epoch, s.network, s.from_station, s.rssi_dbm, s.seq, s.kind) for s in got] == [
        (expected, "e1", "Shop", True, -48, 1, "null"),
        (expected, "e1", "Shop", False, -61, 2, "qos_data"),
    ]
    assert all(s.consent is None for s in got) and p.connected == 2


def test_opted_out_stations_are_dropped_before_pseudonymisation_and_counted() -> None:
    got: list[ConnectedSighting] = []
    p = pipeline("consent", got)
    p.pseudonyms.pseudonym = None  # type: ignore[assignment,method-assign]  # an opted-out frame must not get here
    for data in station_frames(OUT):
        p.feed(T0, 127, data)
    assert got == [] and p.dropped_optout == 2 and p.connected == 0


def test_a_consented_station_carries_its_consent_token_in_consent_mode_only() -> None:
    for mode, token in (("consent", KEY.token(IN)), ("pseudonymous", None)):
        got: list[ConnectedSighting] = []
        p = pipeline(mode, got)
        for data in station_frames(IN):
            p.feed(T0, 127, data)
        assert [s.consent for s in got] == [token, token], mode


def test_stations_of_another_network_never_reach_the_privacy_path() -> None:
    got: list[ConnectedSighting] = []
    p = pipeline("consent", got)
    for data in station_frames(OUT, OTHER_AP) + station_frames(PLAIN, OTHER_AP):
        p.feed(T0, 127, data)
    assert got == [] and p.dropped_optout == 0  # not even matched against the opt-outs
    assert p.decoder.stats.skipped == {"data": 4}
