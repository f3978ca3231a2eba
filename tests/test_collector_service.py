"""The collector against a real Mosquitto: storage, rejections, duplicates, restarts and SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import CollectorConfig
from collector.ingest.service import Collector
from collector.storage.sqlite import SqliteStore
from tests.conftest import REPO, Broker
from tests.test_collector_ingest import StalledStore
from tests.test_report import count, status, visit

pytestmark = pytest.mark.mqtt

T0 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
DAY = (T0 - timedelta(days=1), T0 + timedelta(days=1))


def config(broker: Broker, db: Path, client_id: str = "collector-test", **ingest: float) -> CollectorConfig:
    return CollectorConfig.model_validate(
        {
            "mqtt": {"port": broker.port, "client_id": client_id, "session_expiry_s": 600},
            "store": {"path": str(db)},
            "ingest": {"flush_interval_s": 0.2, **ingest},
        }
    )


@pytest.fixture
def publisher(broker: Broker) -> Iterator[Callable[[str, bytes], None]]:
    """A plain paho client: publish at QoS 1 and wait for the broker's PUBACK."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher", protocol=paho.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()

    def publish(topic: str, payload: bytes) -> None:
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    yield publish
    client.disconnect()
    client.loop_stop()


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def serve(collector: Collector) -> threading.Thread:
    collector.start()
    thread = threading.Thread(target=collector.wait, daemon=True)
    thread.start()
    time.sleep(0.2)  # start() returns on CONNACK; let the SUBACK land before the test publishes
    return thread


def stored_visits(db: Path) -> list[str]:
    store = SqliteStore(db)
    try:
        return sorted(v.device for v in store.visits("paris-01", *DAY))
    finally:
        store.close()


def topic(kind: str, sensor: str = "s1") -> str:
    return f"footfall/v1/paris-01/{sensor}/{kind}"


def test_valid_events_are_stored_bad_ones_counted_and_the_service_keeps_running(
    broker: Broker, publisher: Callable[[str, bytes], None], tmp_path: Path
) -> None:
    collector = Collector(config(broker, tmp_path / "f.db"))
    serve(collector)
    publisher(topic("visit"), visit(T0, 600, device="d1").to_json())
    publisher(topic("visit"), b"\x00garbage")
    publisher(topic("visit"), visit(T0, 600, device="d2", store="lyon").to_json())
    publisher(topic("count"), visit(T0, 600, device="d3").to_json())
    publisher(topic("visit"), b"{" + b" " * 70_000 + b"}")
    publisher(topic("status"), status(T0, sensor="s1").to_json())
    publisher(topic("count"), count(T0, 1.0).to_json())
    publisher(topic("visit"), visit(T0, 60, device="d4").to_json())  # after all the bad ones
    wait_for(lambda: collector.stats.received == 8, "8 messages")
    wait_for(lambda: collector.stats.pending == 0, "the flush")
    stats = collector.stop()
    assert stats.stored == 4
    assert stats.rejected == {"not_json": 1, "topic_mismatch": 1, "wrong_schema": 1, "oversized": 1}
    assert stored_visits(tmp_path / "f.db") == sorted(visit(T0, 1, device=d).device for d in ("d1", "d4"))
    store = SqliteStore(tmp_path / "f.db")
    assert store.rejections() == {"not_json": 1, "topic_mismatch": 1, "wrong_schema": 1, "oversized": 1}
    assert len(store.dead_letters()) == 4
    store.close()


def test_a_stalled_database_never_stalls_the_mqtt_network_thread(
    broker: Broker, publisher: Callable[[str, bytes], None], tmp_path: Path
) -> None:
    store = StalledStore(tmp_path / "f.db", patience_s=20)
    collector = Collector(config(broker, tmp_path / "f.db", batch_size=2), store=store)
    serve(collector)
    try:
        for n in range(2):  # a full batch: its commit hangs
            publisher(topic("visit"), visit(T0, 60, device=f"d{n}").to_json())
        assert store.committing.wait(10)
        # Were the commit on the network thread, these would not even reach the handler until released.
        for n in range(2, 5):
            publisher(topic("visit"), visit(T0, 60, device=f"d{n}").to_json())
        wait_for(lambda: collector.stats.received == 5, "5 messages taken in during the stalled commit")
        assert collector.stats.stored == 0
        store.release.set()
        wait_for(lambda: collector.stats.stored == 5, "all 5 stored once released")
    finally:
        store.release.set()
        stats = collector.stop()
        store.close()
    assert (stats.stored, stats.duplicates, stats.pending) == (5, 0, 0)
    assert stored_visits(tmp_path / "f.db") == sorted(visit(T0, 1, device=f"d{n}").device for n in range(5))


def test_the_same_events_published_twice_are_stored_once(
    broker: Broker, publisher: Callable[[str, bytes], None], tmp_path: Path
) -> None:
    collector = Collector(config(broker, tmp_path / "f.db"))
    serve(collector)
    events = [visit(T0 + timedelta(minutes=n), 60, device=f"d{n}") for n in range(10)]
    for _ in range(2):
        for event in events:
            publisher(topic("visit"), event.to_json())
    wait_for(lambda: collector.stats.received == 20, "20 messages")
    stats = collector.stop()
    assert (stats.stored, stats.duplicates, sum(stats.rejected.values())) == (10, 10, 0)
    assert len(stored_visits(tmp_path / "f.db")) == 10


def test_events_published_while_the_collector_restarts_wait_in_its_session(
    broker: Broker, publisher: Callable[[str, bytes], None], tmp_path: Path
) -> None:
    db = tmp_path / "f.db"
    events = [visit(T0 + timedelta(minutes=n), 60, device=f"d{n}") for n in range(30)]
    first = Collector(config(broker, db))
    serve(first)
    for event in events[:10]:
        publisher(topic("visit"), event.to_json())
    wait_for(lambda: first.stats.received == 10, "the first 10")
    first.stop()
    for event in events[10:20]:  # nobody subscribed now: the broker queues them in the session
        publisher(topic("visit"), event.to_json())
    second = Collector(config(broker, db))
    serve(second)
    for event in events[20:]:
        publisher(topic("visit"), event.to_json())
    wait_for(lambda: second.stats.received == 20, "the 10 queued and the 10 new")
    second.stop()
    assert stored_visits(db) == sorted(e.device for e in events)


def test_without_a_session_the_events_sent_while_away_are_lost(
    broker: Broker, publisher: Callable[[str, bytes], None], tmp_path: Path
) -> None:
    """The contrast that shows the session is what saves them."""
    db = tmp_path / "f.db"
    cfg = config(broker, db)
    cfg = cfg.model_copy(update={"mqtt": cfg.mqtt.model_copy(update={"session_expiry_s": 0})})
    first = Collector(cfg)
    serve(first)
    first.stop()
    publisher(topic("visit"), visit(T0, 60, device="lost").to_json())
    second = Collector(cfg)
    serve(second)
    publisher(topic("visit"), visit(T0, 60, device="kept").to_json())
    wait_for(lambda: second.stats.received >= 1, "one message")
    second.stop()
    assert stored_visits(db) == [visit(T0, 1, device="kept").device]


def test_wait_returns_once_idle_for_the_given_time(broker: Broker, tmp_path: Path) -> None:
    collector = Collector(config(broker, tmp_path / "f.db"))
    collector.start()
    assert collector.wait(until_idle_s=0.3) == "idle"
    collector.stop()


def test_sigterm_stops_the_cli_gracefully_and_stores_the_batch_in_hand(
    broker: Broker, publisher: Callable[[str, bytes], None], tmp_path: Path
) -> None:
    db = tmp_path / "f.db"
    cfg = tmp_path / "collector.yaml"
    # A batch and a flush interval far bigger than the test: only the stop can store these events.
    cfg.write_text(
        f"mqtt:\n  port: {broker.port}\n  client_id: sigterm-test\nstore:\n  path: {db}\n"
        "ingest:\n  batch_size: 100000\n  flush_interval_s: 60\n  stats_log_interval_s: 0.1\n"
    )
    log = tmp_path / "collector.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "collector.cli.main", "run", "--config", str(cfg)],
            cwd=REPO,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        wait_for(lambda: "collecting footfall/v1/+/+/+" in log.read_text(), "the collector to subscribe")
        time.sleep(0.2)  # the SUBACK
        for n in range(5):
            publisher(topic("visit"), visit(T0 + timedelta(minutes=n), 60, device=f"d{n}").to_json())
        wait_for(lambda: "received 5, stored 0" in log.read_text(), "the 5 events to be received")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "received SIGTERM: stopping after flushing" in log.read_text()
    assert len(stored_visits(db)) == 5
