"""The registry's token sets to the sensors: one retained control message per store (footfall/control.py).

On `<prefix>/<store>/control/privacy` (schema `footfall.privacy/1`): tokens only, no profile id, no times.
Per store, although the sets are the deployment's, so that a broker ACL can confine each sensor to its
own store's topics. The stores are those in `privacy.stores` plus every store with events. The running
service publishes through its own connection (`control_messages`, `publish_control`); the CLI connects
once for it (`publish_now`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from collector.config import CollectorConfig
from collector.storage.base import Store
from collector.storage.privacy import PrivacySets
from footfall.broker import broker_settings
from footfall.control import ControlMessage, control_topic
from footfall.mqtt import MqttClient, MqttError
from footfall.tokens import TokenKey


def control_stores(config: CollectorConfig, db: Store) -> list[str]:
    return sorted(set(config.privacy.stores) | set(db.stores()))


def control_messages(
    sets: PrivacySets, key: TokenKey, stores: Iterable[str], prefix: str, now: datetime
) -> list[tuple[str, bytes]]:
    """(topic, payload) of every store's control message."""
    out = []
    for store in stores:
        message = ControlMessage(
            store=store,
            revision=sets.revision,
            issued=now.astimezone(UTC),
            key_id=key.key_id,
            optout=sets.optout,
            consent=sets.consent,
        )
        out.append((control_topic(prefix, store), message.to_json()))
    return out


def publish_control(client: MqttClient, messages: Sequence[tuple[str, bytes]]) -> set[int]:
    """Queue the retained messages (QoS 1); returns their message ids, to wait on where that is allowed."""
    return {client.publish(topic, payload, qos=1, retain=True) for topic, payload in messages}


def publish_now(
    config: CollectorConfig, db: Store, key: TokenKey, now: datetime, ack_timeout_s: float = 10.0
) -> PrivacySets:
    """Connect as a one-off client, publish every store's control message, wait for the broker's acks.

    The client id is the collector's plus `-admin-<pid>` with a clean session, so a running collector
    (which owns the persistent session) is not thrown off. Raises MqttError or ConfigError.
    """
    sets = db.registry_sets()
    messages = control_messages(sets, key, control_stores(config, db), config.mqtt.topic_prefix, now)
    # Not `replace` on the service's settings: the admin client's session is clean (expiry 0).
    settings = broker_settings(config.mqtt, f"{config.mqtt.client_id}-admin-{os.getpid()}")
    client = MqttClient(settings)
    client.connect(config.mqtt.connect_timeout_s)
    try:
        pending = client.wait_acked(publish_control(client, messages), ack_timeout_s)
    finally:
        client.close()
    if pending:
        raise MqttError(
            f"{len(pending)} of {len(messages)} messages not acknowledged within {ack_timeout_s:g} s"
        )
    return sets
