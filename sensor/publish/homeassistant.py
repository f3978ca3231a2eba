"""Home Assistant MQTT discovery: "people present" and "visitors today" appear as HA sensors by themselves.

Discovery configs are retained under `<discovery_prefix>/sensor/<node>/<object>/config` and sent again
whenever the connection comes back or HA announces itself (`<discovery_prefix>/status` = online), so a
broker or HA without persistence still learns them. The sensor's own retained status event tells HA
whether the sensor is available (its `state`: online/offline, with the broker's last will).

The state is a small retained JSON document on `<state_prefix>/<store>/<sensor>/state`, outside the
event topics (the collector rejects anything else under its prefix): `people_present` is the latest
interval's estimate, `visitors_today` adds up the count events of the store's local day. At start the
retained state is read back, so a restart keeps today's total. Nothing here is per device.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from footfall.broker import broker_settings
from footfall.events import CountEvent, Event
from footfall.mqtt import Message, MqttClient, MqttError
from sensor.config import SensorConfig

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bool], object]  # topic, payload, retain

# (object id, name, value key in the state document, unit, state class, icon): the entities, declared once.
ENTITIES = (
    ("people_present", "People present", "people_present", "people", "measurement", "mdi:account-group"),
    ("visitors_today", "Visitors today", "visitors_today", "visitors", "total_increasing", "mdi:walk"),
)


class HomeAssistant:
    def __init__(self, config: SensorConfig, version: str, publish: Publish) -> None:
        ha, site = config.health.home_assistant, config.site
        self._config = config
        self._version = version
        self._publish = publish
        self._zone = ZoneInfo(site.timezone)
        self.node = f"footfall_{_slug(site.store)}_{_slug(site.sensor)}"
        self.discovery_prefix = ha.discovery_prefix
        self.state_topic = f"{ha.state_prefix}/{site.store}/{site.sensor}/state"
        self.status_topic = f"{config.mqtt.topic_prefix}/{site.store}/{site.sensor}/status"
        self.day = ""
        self.visitors_today = 0
        self.people_present: float | None = None
        self._restorable = True

    def discovery(self) -> list[tuple[str, bytes]]:
        """(topic, retained payload) of every entity's discovery config."""
        site = self._config.site
        device = {
            "identifiers": [self.node],
            "name": f"footfall {site.store} {site.sensor}",
            "manufacturer": "footfall",
            "model": "Wi-Fi presence sensor",
            "sw_version": self._version,
        }
        out = []
        for object_id, name, key, unit, state_class, icon in ENTITIES:
            config = {
                "name": name,
                "unique_id": f"{self.node}_{object_id}",
                "state_topic": self.state_topic,
                "value_template": f"{{{{ value_json.{key} }}}}",
                "unit_of_measurement": unit,
                "state_class": state_class,
                "icon": icon,
                "availability_topic": self.status_topic,
                "availability_template": "{{ value_json.state }}",
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": device,
            }
            topic = f"{self.discovery_prefix}/sensor/{self.node}/{object_id}/config"
            out.append((topic, json.dumps(config, separators=(",", ":")).encode()))
        return out

    def announce(self) -> None:
        for topic, payload in self.discovery():
            self._publish(topic, payload, True)

    def remove(self) -> None:
        """Retract the entities (an empty retained config deletes them in HA)."""
        for topic, _ in self.discovery():
            self._publish(topic, b"", True)

    def observe(self, event: Event) -> None:
        """Fold a count event into today's figures and publish the state."""
        if not isinstance(event, CountEvent):
            return
        self._restorable = False
        day = event.start.astimezone(self._zone).date().isoformat()
        if day != self.day:
            self.day, self.visitors_today = day, 0
        self.visitors_today += event.visitors
        self.people_present = round(event.present, 2)
        self._publish(self.state_topic, self.state_payload(event.end), True)

    def state_payload(self, at: datetime) -> bytes:
        doc = {
            "people_present": self.people_present,
            "visitors_today": self.visitors_today,
            "day": self.day,
            "updated": at.astimezone(UTC).isoformat(),
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    def restore(self, payload: bytes, now: datetime) -> bool:
        """Take today's total back from the retained state (before the first count event only)."""
        if not self._restorable:
            return False
        try:
            doc = json.loads(payload)
            day, visitors = str(doc["day"]), int(doc["visitors_today"])
        except (ValueError, KeyError, TypeError):
            return False
        if day != now.astimezone(self._zone).date().isoformat() or visitors < 0:
            return False
        self.day, self.visitors_today = day, visitors
        log.info("Home Assistant: %d visitors so far today restored from the retained state", visitors)
        return True


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower())


class HomeAssistantLink:
    """A `HomeAssistant` on its own MQTT connection (so the event sink stays events-only)."""

    def __init__(self, config: SensorConfig, version: str, now: Callable[[], datetime]) -> None:
        site = config.site
        self._client = MqttClient(
            broker_settings(config.mqtt, f"footfall-sensor-{site.store}-{site.sensor}-ha")
        )
        self.ha = HomeAssistant(config, version, self._send)
        self._now = now
        self._client.on_connect(self.ha.announce)
        self._client.subscribe(self.ha.state_topic, self._on_state)
        self._client.subscribe(f"{self.ha.discovery_prefix}/status", self._on_ha_status)

    def _send(self, topic: str, payload: bytes, retain: bool) -> None:
        try:
            self._client.publish(topic, payload, 1, retain)
        except MqttError as exc:
            log.warning("Home Assistant publish to %s failed: %s", topic, exc)

    def _on_state(self, message: Message) -> None:
        if message.retain:
            self.ha.restore(message.payload, self._now())

    def _on_ha_status(self, message: Message) -> None:
        if message.payload == b"online":
            self.ha.announce()

    def start(self, timeout_s: float = 10.0) -> None:
        self._client.connect(timeout_s)

    def observe(self, event: Event) -> None:
        self.ha.observe(event)

    def close(self) -> None:
        self._client.close()
