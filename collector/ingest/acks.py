"""The collector's side of store acknowledgements (footfall/acks.py): ids whose outcome is durable, per sensor.

The Ingestor hands over, after every flush that made them durable, the (store, sensor, event_id) of each
payload it settled: stored, a duplicate, or a dead letter with an id the sensor can recognise. They are
grouped by sensor and published on that sensor's acknowledgement topic. The store and sensor are the
topic's levels, which the broker's ACL ties to the sensor's certificate, so a sensor can only ever cause
acknowledgements to itself.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence

from footfall.acks import ack_payloads, ack_topic
from footfall.events import HEX_ID_PATTERN, NAME_PATTERN
from footfall.mqtt import MqttError

log = logging.getLogger(__name__)

Settled = tuple[str, str, str]  # store, sensor, event_id
Publish = Callable[[str, bytes, int, bool], int]
_HEX_ID = re.compile(HEX_ID_PATTERN)
_NAME = re.compile(NAME_PATTERN)


class AckPublisher:
    """Publishes store acknowledgements through the collector's MQTT client; never raises."""

    def __init__(self, publish: Publish, prefix: str) -> None:
        self._publish = publish
        self._prefix = prefix
        self.published = 0  # ids acknowledged
        self.failed = 0

    def __call__(self, settled: Sequence[Settled]) -> None:
        by_sensor: dict[tuple[str, str], list[str]] = {}
        for store, sensor, event_id in settled:
            by_sensor.setdefault((store, sensor), []).append(event_id)
        for (store, sensor), ids in by_sensor.items():
            topic = ack_topic(self._prefix, store, sensor)
            for payload in ack_payloads(list(dict.fromkeys(ids))):
                try:
                    self._publish(topic, payload, 1, False)
                except MqttError as exc:  # the sensor sends again after its next reconnection
                    self.failed += 1
                    log.warning("cannot publish store acknowledgements on %s: %s", topic, exc)
            self.published += len(ids)


def claimed(prefix: Sequence[str], topic: str, payload: bytes) -> Settled | None:
    """The (store, sensor, event_id) a rejected payload claims, if its topic and id are well formed.

    Acknowledging a rejection lets the sensor drop an event the collector will never store, instead of
    sending it again after every reconnection until it expires.
    """
    levels = topic.split("/")
    n = len(prefix)
    if levels[:n] != list(prefix) or len(levels) != n + 3:
        return None
    store, sensor = levels[n], levels[n + 1]
    if not (_NAME.match(store) and _NAME.match(sensor)):
        return None
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    event_id = data.get("event_id") if isinstance(data, dict) else None
    if isinstance(event_id, str) and _HEX_ID.match(event_id):
        return store, sensor, event_id
    return None
