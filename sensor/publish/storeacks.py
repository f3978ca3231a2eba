"""The sensor's side of store acknowledgements (footfall/acks.py): delete from the spool what the collector stored.

Subscribed on `<prefix>/<store>/ack/<sensor>` (only the collector may publish there; the ACL lets this
sensor read its own and nobody else's). Each message lists event ids whose outcome the collector made
durable; the spool deletes them whether or not the broker's PUBACK came yet. Ids the spool no longer
holds (a re-acknowledged duplicate) are ignored; a message that is not an acknowledgement is counted
and logged, never trusted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from footfall.acks import ack_topic, parse_ack
from footfall.mqtt import Message, MqttClient
from sensor.publish.spool import Spool, SpoolError

log = logging.getLogger(__name__)


class StoreAcks:
    """Releases spooled events on the collector's store acknowledgements (paho's network thread)."""

    def __init__(self, spool: Spool, released: Callable[[], None]) -> None:
        self._spool = spool
        self._released = released  # room in the spool: tell the forwarder
        self.received = 0  # acknowledgement messages
        self.released = 0  # events deleted on them
        self.malformed = 0

    def attach(self, client: MqttClient, prefix: str, store: str, sensor: str) -> None:
        """Subscribe (now and after every reconnection)."""
        client.subscribe(ack_topic(prefix, store, sensor), self.on_message, qos=1)

    def on_message(self, message: Message) -> None:
        ids = parse_ack(message.payload)
        if ids is None:
            self.malformed += 1
            log.warning("ignored a message on %s that is not a store acknowledgement", message.topic)
            return
        self.received += 1
        try:
            self.released += self._spool.release(ids)
        except SpoolError as exc:  # kept: sent again after the next reconnection, acknowledged again
            log.error("cannot release %d stored events from the spool: %s", len(ids), exc)
            return
        self._released()
