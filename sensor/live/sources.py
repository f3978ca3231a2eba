"""Where a publishing sensor's secrets come from: its ratcheting key file and the opt-out/consent list.

Both `footfall-sensor run` and `replay --to mqtt` open them here; a failure is a `SourceError`, one
line for the operator (the CLI prints it and exits non-zero).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from footfall.broker import broker_settings
from footfall.configfile import ConfigError
from footfall.control import control_topic
from footfall.mqtttypes import Message, MqttError
from footfall.tokens import TokenKey
from sensor.config import SensorConfig
from sensor.keys.consent import PrivacyFilter
from sensor.keys.keystore import KeyFileError, KeyStore

if TYPE_CHECKING:  # the client (paho, ssl) is imported where a replay subscribes, not by every replay
    from footfall.mqtt import MqttClient

log = logging.getLogger("footfall.sensor")


class SourceError(Exception):
    """The sensor cannot get its key or its opt-out list: it must not start."""


def key_salt_source(config: SensorConfig) -> KeyStore:
    """The live sensor's ratcheting key file (close it when done)."""
    key_file = config.privacy.key_file
    if key_file is None:
        raise SourceError("privacy.key_file is not set: provision one with `footfall-sensor keys provision`")
    try:
        return KeyStore.open(key_file)
    except KeyFileError as exc:
        raise SourceError(str(exc)) from None


def privacy_filter(
    config: SensorConfig, control_file: Path | None, subscribe: bool
) -> tuple[PrivacyFilter, MqttClient | None]:
    """The opt-out/consent filter, fed from a control file, or from the retained control topic.

    Publishing to MQTT with a token key fails closed: without the opt-out list no frame is processed.
    The client returned (subscribed to the control topic) is the caller's to close.
    """
    key_file, site = config.privacy.token_key_file, config.site
    try:
        key = TokenKey.load(key_file) if key_file is not None else None
    except KeyFileError as exc:
        raise SourceError(f"privacy.token_key_file: {exc}") from None
    privacy = PrivacyFilter(site.store, key)
    if control_file is not None:
        outcome = privacy.apply(control_file.read_bytes())
        if not outcome.accepted:
            raise SourceError(f"{control_file}: refused ({outcome.reason}): {outcome.detail}")
        return privacy, None
    if key is None:
        log.warning("privacy.token_key_file is not set: opt-outs and consents are not applied")
        return privacy, None
    if not subscribe:
        log.warning("no --privacy-control file: opt-outs and consents are not applied to this replay")
        return privacy, None
    return privacy, _subscribed(config, privacy)


def _subscribed(config: SensorConfig, privacy: PrivacyFilter) -> MqttClient:
    """A client on the store's retained control topic, once a usable control message has arrived."""
    site = config.site
    topic = control_topic(config.mqtt.topic_prefix, site.store)
    try:
        settings = broker_settings(config.mqtt, f"footfall-sensor-{site.store}-{site.sensor}-privacy")
    except ConfigError as exc:
        raise SourceError(str(exc)) from None
    from footfall.mqtt import MqttClient

    client = MqttClient(settings)

    def on_control(message: Message) -> None:
        privacy.apply(message.payload)

    client.subscribe(topic, on_control, qos=1)
    try:
        client.connect()
    except MqttError as exc:
        raise SourceError(str(exc)) from None
    if not privacy.received.wait(config.privacy.control_wait_s):
        client.close()
        refused = ", ".join(f"{r} {n}" for r, n in sorted(privacy.rejected.items()))
        raise SourceError(
            f"no usable privacy control message on {topic} within {config.privacy.control_wait_s:g} s"
            f"{f' (refused: {refused})' if refused else ''}: not publishing without the opt-out list"
            " (is the collector running with the same token key?)"
        )
    return client
