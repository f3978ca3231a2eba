"""The running collector fires real-time triggers: stored visits in over a real Mosquitto, triggers out
over the same broker and to a real HTTP webhook, signed with the configured secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from collector.config import CollectorConfig
from collector.ingest.service import Collector
from collector.online.profiles import Profile
from collector.storage.privacy import RegistryEntry
from collector.storage.sqlite import SqliteStore
from footfall.configfile import ConfigError
from footfall.mqtt import BrokerSettings, Message, MqttClient
from tests.conftest import Broker
from tests.test_collector_service import publisher, serve, wait_for  # noqa: F401
from tests.test_omnichannel import NOW, TOKENS, VISITS, at

pytestmark = pytest.mark.mqtt

BOB, ANON, ERIN = VISITS[0], VISITS[1], VISITS[2]
CAROL_PASSING = VISITS[-1]
SECRET = b"webhook secret"


class Receiver:
    """A real HTTP server standing in for the marketing tool: records each POST, answers 204."""

    def __init__(self) -> None:
        self.got: queue.Queue[tuple[bytes, str]] = queue.Queue()
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                got.put((body, self.headers.get("X-Footfall-Signature", "")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def consents_and_profiles(path: Path) -> None:
    """bob and erin's devices: bob consented and has a profile, erin never consented."""
    db = SqliteStore(path)
    try:
        entry = RegistryEntry("consent", TOKENS["B"], "bob", at(4, 1, 12), "test")
        assert db.registry_put([entry], NOW).applied
        db.profiles().put_profiles([Profile(id="bob"), Profile(id="erin")], NOW)
    finally:
        db.close()


def test_a_stored_consented_visit_triggers_over_mqtt_and_the_signed_webhook(
    broker: Broker,
    tmp_path: Path,
    receiver: Receiver,
    publisher: Callable[[str, bytes], None],  # noqa: F811
) -> None:
    db = tmp_path / "f.db"
    consents_and_profiles(db)
    secret = tmp_path / "webhook.secret"
    secret.write_bytes(SECRET + b"\n")
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"port": broker.port, "client_id": "collector-triggers"},
            "store": {"path": str(db)},
            "ingest": {"flush_interval_s": 0.2},
            "triggers": {"enabled": True, "webhook_url": receiver.url, "webhook_secret_file": str(secret)},
        }
    )
    received: queue.Queue[Message] = queue.Queue()
    listener = MqttClient(BrokerSettings(broker.host, broker.port, client_id="marketing"))
    listener.connect()
    collector = Collector(config)
    try:
        assert listener.subscribe("footfall/v1/+/trigger", received.put, wait_s=5)
        serve(collector)
        for event in (BOB, ANON, ERIN, CAROL_PASSING, BOB):  # bob's visit re-sent: still one trigger
            publisher(f"footfall/v1/{event.store}/{event.sensor}/visit", event.to_json())
        message = received.get(timeout=20)
        body, signature = receiver.got.get(timeout=20)
        wait_for(lambda: collector.stats.received == 5, "the five visits")
    finally:
        stats = collector.stop()
        listener.close()
    assert stats.stored == 4 and stats.duplicates == 1
    assert collector.triggers is not None and collector.triggers.sent == 1
    assert message.topic == "footfall/v1/paris-01/trigger" and not message.retain
    assert message.payload == body
    trigger = json.loads(body)
    assert (trigger["profile_id"], trigger["visit"], trigger["store"]) == ("bob", BOB.event_id, "paris-01")
    assert signature == "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    assert received.empty() and receiver.got.empty()


def test_without_the_triggers_section_a_consented_visit_fires_nothing(
    broker: Broker,
    tmp_path: Path,
    publisher: Callable[[str, bytes], None],  # noqa: F811
) -> None:
    db = tmp_path / "f.db"
    consents_and_profiles(db)
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"port": broker.port, "client_id": "collector-quiet"},
            "store": {"path": str(db)},
            "ingest": {"flush_interval_s": 0.2},
        }
    )
    received: queue.Queue[Message] = queue.Queue()
    listener = MqttClient(BrokerSettings(broker.host, broker.port, client_id="marketing"))
    listener.connect()
    collector = Collector(config)
    try:
        assert listener.subscribe("footfall/v1/+/trigger", received.put, wait_s=5)
        serve(collector)
        publisher("footfall/v1/paris-01/s1/visit", BOB.to_json())
        wait_for(lambda: collector.stats.stored == 1, "bob's visit stored")
    finally:
        collector.stop()
    try:
        with pytest.raises(queue.Empty):
            received.get(timeout=0.5)
    finally:
        listener.close()
    assert collector.triggers is None


def test_a_webhook_secret_without_a_url_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="webhook_url is not"):
        CollectorConfig.model_validate({"triggers": {"webhook_secret_file": "/run/secret"}})


def test_an_unreadable_webhook_secret_stops_the_collector_before_it_connects(tmp_path: Path) -> None:
    config = CollectorConfig.model_validate(
        {
            "store": {"path": str(tmp_path / "f.db")},
            "triggers": {
                "enabled": True,
                "webhook_url": "http://127.0.0.1:9/hook",
                "webhook_secret_file": str(tmp_path / "missing.secret"),
            },
        }
    )
    with pytest.raises(ConfigError, match=r"triggers\.webhook_secret_file: cannot read"):
        Collector(config)
    assert not (tmp_path / "f.db").exists()  # nothing was opened
