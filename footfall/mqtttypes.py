"""What MQTT callers exchange with `footfall.mqtt`'s client, without paho: errors, messages, settings.

Apart from the client so that code which only names them (the broker config section, the sensor's
replay command) does not import paho and ssl: a replay to JSON lines never opens a connection.
`footfall.mqtt` re-exports all of them; import from there where the client is used anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class MqttError(Exception):
    """A broker or connection problem, with paho's detail converted to text."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int = 0
    connection: int = 0  # which connection (MqttClient.connects) delivered it: acks are only valid on it


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class TlsSettings:
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TlsSettings | None = None
    keepalive_s: int = 30
    # A persistent session (clean start off + expiry) lets QoS 1 messages queue at the broker while
    # this client is away; the collector wants that, a sensor publishing only does not need it.
    session_expiry_s: int = 0
    reconnect_min_s: int = 1
    reconnect_max_s: int = 60
    # Acknowledge received QoS 1 messages only through `MqttClient.ack` (after they are stored).
    manual_ack: bool = False
    # How many unacknowledged QoS 1 messages the broker may send us at once (MQTT 5 Receive Maximum);
    # 0 leaves the broker's default (Mosquitto: 20), too few for a receiver that acks in batches.
    receive_maximum: int = 0
    # How many of our QoS 1 publishes may await their PUBACK at once (paho queues the rest in memory).
    max_inflight: int = 20
