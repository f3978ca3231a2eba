"""Store acknowledgements on a real Mosquitto: the spool releases an event once the collector stored it, not before."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.config import CollectorConfig
from collector.ingest.service import Collector
from collector.storage.sqlite import SqliteStore
from footfall.acks import ack_payloads, ack_topic, parse_ack
from footfall.mqtt import BrokerSettings, MqttClient
from sensor.config import SensorConfig
from sensor.publish.mqttsink import MqttSink
from tests.conftest import Broker
from tests.poison import counts
from tests.test_collector_service import wait_for

pytestmark = pytest.mark.mqtt

START = time.time_ns()
T0_COUNTS = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)


def sensor(broker: Broker, spool: Path) -> MqttSink:
    config = SensorConfig.model_validate(
        {
            "site": {"store": "paris-01", "sensor": "s1"},
            "mqtt": {"port": broker.port},
            "spool": {"path": str(spool), "sync": "normal"},
        }
    )
    return MqttSink.connect(config, "test", START, ack_timeout_s=20)


def collector(broker: Broker, db: Path) -> Collector:
    return Collector(
        CollectorConfig.model_validate(
            {
                "mqtt": {"port": broker.port, "client_id": "acks-test", "session_expiry_s": 600},
                "store": {"path": str(db)},
                "ingest": {"flush_interval_s": 0.1},
            }
        )
    )


def test_the_spool_keeps_what_the_broker_acknowledged_until_the_collector_stored_it(
    broker: Broker, tmp_path: Path
) -> None:
    c = collector(broker, tmp_path / "f.db")
    c.start()
    c.stop()  # its session exists; it is offline
    sink = sensor(broker, tmp_path / "spool.db")
    events = counts(T0_COUNTS, 30)
    for event in events:
        sink.send(event)
    wait_for(lambda: sink.spool.pending_count == 0, "the broker's PUBACKs")
    assert sink.spool.unreleased_count == 30, "acknowledged by the broker is not stored"
    c = collector(broker, tmp_path / "f.db")
    c.start()
    try:
        wait_for(lambda: sink.spool.unreleased_count == 0, "the collector's store acknowledgements")
        assert sink.store_acks is not None and sink.store_acks.released == 30
        assert sink.spool.stats().totals["stored"] == 30
        sink.close()  # returns at once: nothing left
    finally:
        c.stop()
    db = SqliteStore(tmp_path / "f.db")
    assert len(db.counts("paris-01", T0_COUNTS, T0_COUNTS.replace(year=2025))) == 30
    db.close()


def test_a_duplicate_is_acknowledged_again_and_a_malformed_ack_is_ignored(
    broker: Broker, tmp_path: Path
) -> None:
    c = collector(broker, tmp_path / "f.db")
    c.start()
    try:
        first = sensor(broker, tmp_path / "one.db")
        events = counts(T0_COUNTS, 5)
        for event in events:
            first.send(event)
        first.close()
        again = sensor(broker, tmp_path / "two.db")  # another spool re-sends the same events
        for event in events:
            again.send(event)
        again.close()  # would raise if the duplicates were not acknowledged
        assert c.stats.duplicates == 5
        assert again.store_acks is not None
        forger = MqttClient(BrokerSettings(broker.host, broker.port, client_id="forger"))
        forger.connect()
        probe = sensor(broker, tmp_path / "three.db")
        time.sleep(0.3)  # connect() returns on CONNACK: let the acknowledgement topic's SUBACK land
        probe.send(counts(T0_COUNTS.replace(year=2024, month=6), 1)[0])
        forger.wait_acked({forger.publish(ack_topic("footfall/v1", "paris-01", "s1"), b"[1]")}, 5)
        wait_for(lambda: probe.spool.unreleased_count == 0, "the real acknowledgement")
        assert probe.store_acks is not None
        wait_for(lambda: probe.store_acks is not None and probe.store_acks.malformed == 1, "the forgery seen")
        probe.close()
        forger.close()
    finally:
        c.stop()


def test_acknowledgements_are_batched_and_round_trip() -> None:
    ids = [f"{i:032x}" for i in range(2500)]
    payloads = list(ack_payloads(ids))
    assert len(payloads) == 3
    assert [i for p in payloads for i in parse_ack(p) or []] == ids
    assert parse_ack(b'{"schema": "footfall.ack/1", "ids": ["AA"]}') is None
