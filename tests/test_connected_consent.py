"""A consent given through the captive portal is recognised on every visit while the phone is connected, on real
parts: the sensor's pipeline publishing to a real Mosquitto, the collector storing into SQLite, then the journey
and the KPIs. An opted-out connected phone is dropped before anything and never published."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from hashlib import blake2b
from pathlib import Path

import pytest
from footfall_dev.craft import (
    FC_NULL,
    FC_QOS_DATA,
    radiotap_probe_request,
    radiotap_station_frame,
    rates_element,
)

from collector.config import CollectorConfig, ReportConfig
from collector.ingest.service import Collector
from collector.online import journeys
from collector.online import kpis as omnichannel
from collector.online.profiles import Profile
from collector.storage.privacy import RegistryEntry
from collector.storage.sqlite import SqliteStore
from footfall.mqtt import BrokerSettings, Message, MqttClient
from footfall.times import NS
from sensor.config import SensorConfig
from sensor.keys.consent import PrivacyFilter
from sensor.keys.pseudonym import Pseudonymizer
from sensor.pipeline import Pipeline
from sensor.publish.mqttsink import MqttSink
from tests.conftest import Broker
from tests.test_collector_service import wait_for
from tests.test_consent import KEY, SALT, control

pytestmark = pytest.mark.mqtt

AP = bytes.fromhex("f29fc2000001")
ZOE = bytes.fromhex("9a11c0ffee01")  # the per-network address the captive portal saw (consented)
PLAIN = bytes.fromhex("5e00000000a2")  # another guest, no consent
OUT = bytes.fromhex("be00000000a3")  # a guest who opted out
DAY1 = int(datetime(2024, 5, 1, 8, 0, tzinfo=UTC).timestamp()) * NS
DAY2 = int(datetime(2024, 5, 3, 15, 0, tzinfo=UTC).timestamp()) * NS
NOW = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)


def connected(mac: bytes, start: int, seconds: int = 1200) -> list[tuple[int, bytes]]:
    """A phone on the guest Wi-Fi inside: a null frame a second at -55 dBm, QoS data down every 10 s."""
    out = [
        (start + i * NS, radiotap_station_frame(FC_NULL, mac, AP, i % 4096, -55, 2437))
        for i in range(seconds)
    ]
    out += [
        (start + i * NS + 1, radiotap_station_frame(FC_QOS_DATA, mac, AP, i, -40, 2437, uplink=False))
        for i in range(0, seconds, 10)
    ]
    return out


def scans(start: int, first_octet: int, seconds: int = 1200) -> list[tuple[int, bytes]]:
    """The same phone's background scans: a fresh random address a minute, no SSID, a far-off counter."""
    rates = rates_element((2, 4, 11, 22))
    return [
        (start + i * NS + 7, radiotap_probe_request(bytes([first_octet, 0, 0, 0, i // 60, 1]), 3000 + i // 60, b"", rates, -52, 2437))
        for i in range(30, seconds, 60)
    ]  # fmt: skip


@pytest.fixture
def collector(broker: Broker, tmp_path: Path) -> Iterator[Collector]:
    db = SqliteStore(tmp_path / "f.db")
    token = KEY.token(ZOE)
    assert db.registry_put([RegistryEntry("consent", token, "zoe", NOW, "captive-portal")], NOW).applied
    db.profiles().put_profiles([Profile(id="zoe")], NOW)
    db.close()
    c = Collector(
        CollectorConfig.model_validate(
            {
                "mqtt": {"port": broker.port, "client_id": "connected-test"},
                "store": {"path": str(tmp_path / "f.db")},
                "ingest": {"flush_interval_s": 0.1},
            }
        )
    )
    c.start()
    threading.Thread(target=c.wait, daemon=True).start()
    time.sleep(0.2)  # start() returns on CONNACK; let the SUBACK land
    yield c
    c.stop()


def test_a_portal_consent_is_recognised_on_every_connected_visit_through_mqtt_to_journeys_and_kpis(
    broker: Broker, tmp_path: Path, collector: Collector
) -> None:
    heard: list[Message] = []
    spy = MqttClient(BrokerSettings(broker.host, broker.port, client_id="spy"))
    spy.connect()
    assert spy.subscribe("#", heard.append, wait_s=5)
    config = SensorConfig.model_validate(
        {
            "site": {"store": "paris-01", "sensor": "door"},
            "privacy": {"mode": "consent"},
            "mqtt": {"port": broker.port},
            "spool": {"path": str(tmp_path / "spool.db")},
            "capture": {"filter": "probe_requests", "store_networks": [{"ssid": "Shop", "bssids": [AP.hex(":")]}]},
        }
    )  # fmt: skip
    privacy = PrivacyFilter("paris-01", KEY)
    assert privacy.apply(control(optout=(KEY.token(OUT),), consent=(KEY.token(ZOE),)).to_json()).accepted
    sink = MqttSink.connect(config, "test", DAY1, ack_timeout_s=20)
    pipeline = Pipeline(config, SALT, sink, drop_mac=privacy.drop, consent_of_mac=privacy.consent_token)
    frames = connected(ZOE, DAY1) + scans(DAY1, 0x02) + connected(ZOE, DAY2) + scans(DAY2, 0x06)
    frames += connected(PLAIN, DAY1 + 300 * NS) + connected(OUT, DAY1 + 60 * NS) + connected(OUT, DAY2)
    for ts, data in sorted(frames):
        pipeline.feed(ts, 127, data)
    pipeline.finish()
    assert pipeline.dropped_optout == len(connected(OUT, 0)) * 2

    db = SqliteStore(tmp_path / "f.db", create=False)
    try:
        start, end = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 4, tzinfo=UTC)
        wait_for(lambda: len(db.visits("paris-01", start, end)) == 5, "the five visits stored")
        visits = db.visits("paris-01", start, end)
        # zoe twice and the other guest once, connected; zoe's scans (random addresses, no link) apart
        assert (
            sorted((v.kind, v.connected) for v in visits)
            == [("visitor", False)] * 2 + [("visitor", True)] * 3
        )
        journey = journeys.for_profile(db.profiles(), "zoe")
        assert journey.store_visits == 2 and {s.kind for s in journey.steps} == {"visitor"}
        k = omnichannel.for_store(
            db, db.profiles(), "paris-01", date(2024, 5, 1), date(2024, 5, 3), ReportConfig(timezone="UTC"), 7
        )
        assert (k.visitor_visits, k.connected_visits, k.recognised_visits, k.recognised_connected) == (
            5,
            3,
            2,
            2,
        )
        assert k.recognised_share == pytest.approx(2 / 3)  # over the visits that could be recognised
        counts = db.counts("paris-01", start, end)
        assert (
            max(c.connected or 0 for c in counts) == 2
        )  # zoe and the other guest; never the opted-out phone
    finally:
        db.close()
    # Nothing of the opted-out phone was published: not its device, not its token.
    out_device = blake2b(
        Pseudonymizer(SALT, config.privacy.pseudonym_bits).pseudonym(OUT, DAY1).encode(), digest_size=8
    )
    published = b"\n".join(m.payload for m in heard)
    assert (
        heard
        and out_device.hexdigest().encode() not in published
        and KEY.token(OUT).encode() not in published
    )
    visit_messages = [json.loads(m.payload) for m in heard if b'"footfall.visit/1"' in m.payload]
    assert sum(1 for v in visit_messages if v.get("consent") == KEY.token(ZOE)) == 2
    spy.close()
