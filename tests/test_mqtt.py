"""The paho wrapper against a real Mosquitto: delivery, acknowledgements, last will, resubscription."""

from __future__ import annotations

import queue
import time

import pytest

from footfall.mqtt import BrokerSettings, Message, MqttClient, MqttError, Will
from tests.conftest import Broker, free_port

pytestmark = pytest.mark.mqtt


def client(broker: Broker, name: str, will: Will | None = None, expiry: int = 0) -> MqttClient:
    c = MqttClient(
        BrokerSettings(broker.host, broker.port, client_id=name, session_expiry_s=expiry, reconnect_max_s=1),
        will,
    )
    c.connect()
    return c


def collect(c: MqttClient, topic: str) -> queue.Queue[Message]:
    got: queue.Queue[Message] = queue.Queue()
    assert c.subscribe(topic, got.put, wait_s=5), "no SUBACK"
    return got


def test_qos1_publish_is_delivered_and_acknowledged(broker: Broker) -> None:
    sub, pub = client(broker, "sub"), client(broker, "pub")
    got = collect(sub, "t/#")
    mids = {pub.publish("t/a", b"one"), pub.publish("t/b", b"two")}
    assert pub.wait_acked(mids, 5) == set()
    received = {got.get(timeout=5).payload, got.get(timeout=5).payload}
    assert received == {b"one", b"two"}
    sub.close()
    pub.close()


def test_last_will_is_published_retained_when_the_client_vanishes(broker: Broker) -> None:
    dying = client(broker, "dying", Will("s/status", b"offline"))
    # Drop the TCP connection without DISCONNECT, as a power cut would.
    dying._client.socket().close()  # type: ignore[union-attr]
    time.sleep(1.0)
    late = client(broker, "late")
    got = collect(late, "s/status")
    msg = got.get(timeout=60)
    assert (msg.payload, msg.retain) == (b"offline", True)
    dying.close()
    late.close()


def test_subscriptions_survive_a_broker_restart(broker: Broker) -> None:
    sub = client(broker, "resub")
    got = collect(sub, "r/#")
    broker.stop()
    deadline = time.monotonic() + 10
    while not sub.disconnects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (sub.disconnects, sub.connected) == (1, False), "client did not notice the broker going away"
    broker.start()
    assert sub.wait_connected(20), "client did not reconnect"
    time.sleep(0.3)
    pub = client(broker, "pub2")
    pub.wait_acked({pub.publish("r/x", b"after")}, 5)
    assert got.get(timeout=5).payload == b"after"
    assert sub.connects == 2
    sub.close()
    pub.close()


def test_unreachable_broker_is_a_clear_error() -> None:
    c = MqttClient(BrokerSettings("127.0.0.1", free_port(), client_id="nobody"))
    with pytest.raises(MqttError, match=r"no connection to mqtt://127.0.0.1:\d+ within 1 s"):
        c.connect(timeout_s=1)
