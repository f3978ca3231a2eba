"""Sinks that take events out of the sensor: MQTT (the normal path) and JSON lines (analysis)."""

from __future__ import annotations

import logging
import time
from typing import BinaryIO

from footfall.events import Event, StatusEvent, event_id, topic_for, utc
from footfall.mqtt import BrokerSettings, MqttClient, MqttError, TlsSettings, Will
from sensor.config import SensorConfig

log = logging.getLogger(__name__)


class JsonlSink:
    """One event per line, byte for byte the MQTT payload."""

    def __init__(self, stream: BinaryIO, *, close_stream: bool = False) -> None:
        self._stream = stream
        self._close_stream = close_stream
        self.sent = 0

    def send(self, event: Event) -> None:
        self._stream.write(event.to_json() + b"\n")
        self.sent += 1

    def close(self) -> None:
        self._stream.flush()
        if self._close_stream:
            self._stream.close()


def broker_settings(config: SensorConfig, client_id: str) -> BrokerSettings:
    m = config.mqtt
    password = m.password_file.read_text().strip() if m.password_file else None
    tls = TlsSettings(m.tls.ca_file, m.tls.cert_file, m.tls.key_file) if m.tls else None
    return BrokerSettings(
        host=m.host,
        port=m.port,
        client_id=client_id,
        username=m.username,
        password=password,
        tls=tls,
        keepalive_s=m.keepalive_s,
    )


def status_event(config: SensorConfig, state: str, at_ns: int, version: str, **figures: object) -> StatusEvent:
    site = config.site
    return StatusEvent.model_validate(
        {
            "event_id": event_id(site.store, site.sensor, "status", state, at_ns),
            "store": site.store,
            "sensor": site.sensor,
            "epoch": "",
            "state": state,
            "at": utc(at_ns),
            "version": version,
            **figures,
        },
        strict=False,
    )


class MqttSink:
    """Publishes events with QoS 1 and, on close, waits until the broker has acknowledged every one.

    Status events are retained; the broker publishes the sensor's `offline` status as its last will.
    """

    def __init__(self, config: SensorConfig, client: MqttClient, *, ack_timeout_s: float = 60.0) -> None:
        self._prefix = config.mqtt.topic_prefix
        self._client = client
        self._ack_timeout_s = ack_timeout_s
        self._pending: set[int] = set()
        self.sent = 0
        self.acked = 0

    @classmethod
    def connect(cls, config: SensorConfig, version: str, now_ns: int) -> MqttSink:
        site = config.site
        will_event = status_event(config, "offline", now_ns, version)
        will = Will(f"{config.mqtt.topic_prefix}/{site.store}/{site.sensor}/status", will_event.to_json())
        client = MqttClient(broker_settings(config, f"footfall-sensor-{site.store}-{site.sensor}"), will)
        client.connect()
        return cls(config, client)

    def send(self, event: Event) -> None:
        retain = isinstance(event, StatusEvent)
        self._pending.add(self._client.publish(topic_for(self._prefix, event), event.to_json(), 1, retain))
        self.sent += 1
        if len(self._pending) >= 1000:
            self._collect_acks()

    def _collect_acks(self) -> None:
        done = self._client.take_acked()
        self.acked += len(self._pending & done)
        self._pending -= done

    def close(self) -> None:
        deadline = time.monotonic() + self._ack_timeout_s
        while self._pending and time.monotonic() < deadline:
            self._pending = self._client.wait_acked(self._pending, max(0.0, deadline - time.monotonic()))
        self.acked = self.sent - len(self._pending)
        self._client.close()
        if self._pending:
            raise MqttError(
                f"{len(self._pending)} of {self.sent} events were not acknowledged by the broker "
                f"within {self._ack_timeout_s:g} s"
            )
        log.info("published %d events, all acknowledged", self.sent)
