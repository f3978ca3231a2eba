"""Opt-outs and consents on the collector: a MAC comes in, a token goes on, and the sensors are told.

A MAC address given to the collector (the opt-out page, a captive portal or CRM export, the CLI) is
parsed in any common spelling and turned into its token (sensor/keys/consent.py: HMAC-SHA256 under the
deployment's token key, 128 bits) on the spot; the registry (collector/storage/privacy.py) keeps the token,
the profile id, when and where from, and never the MAC. Error messages never quote what was given as a
MAC either: a mistyped address is still personal data.

The token sets go to the sensors as one retained control message per store, on
`<prefix>/<store>/control/privacy` (schema `footfall.privacy/1`): tokens only, no profile id, no times.
Per store, although the sets are the deployment's, so that a broker ACL can confine each sensor to its
own store's topics. The stores are those in `privacy.stores` plus every store with events.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from collector.config import CollectorConfig
from collector.rows import BadRow
from collector.storage.base import Store
from collector.storage.privacy import ListName, PrivacySets, RegistryEntry
from footfall import mac
from footfall.broker import broker_settings
from footfall.control import ControlMessage, control_topic
from footfall.mqtt import MqttClient, MqttError
from footfall.secretfile import KeyFileError
from footfall.times import too_far_ahead
from footfall.tokens import TokenKey

CSV_COLUMNS = ("profile_id", "mac", "timestamp", "source")
MAX_TEXT = 200


class PrivacyError(ValueError):
    """A value the registry cannot take; the message never repeats a MAC-like input."""


def parse_mac(text: str) -> bytes:
    """The 6 bytes of a MAC in any spelling of footfall/mac.py; a group (multicast) address is refused."""
    try:
        raw = mac.parse_mac(text)
    except mac.MacError as exc:
        raise PrivacyError(str(exc)) from None
    if raw[0] & 0x01:
        raise PrivacyError("a group (multicast) address: no device sends from one")
    return raw


def parse_time(text: str, now: datetime) -> datetime:
    """ISO 8601 (naive = UTC) or Unix seconds; at most a day ahead of `now` (a clock or column mix-up)."""
    value = text.strip()
    try:
        when = (
            datetime.fromtimestamp(float(value), UTC)
            if re.fullmatch(r"\d{9,11}(?:\.\d+)?", value)
            else datetime.fromisoformat(value)
        )
    except (ValueError, OverflowError):
        raise PrivacyError(f"timestamp {value[:40]!r} is neither ISO 8601 nor Unix seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if too_far_ahead(when, now):
        raise PrivacyError(f"timestamp {when.isoformat()} is in the future")
    return when.astimezone(UTC)


def _text(name: str, value: str, *, required: bool) -> str:
    value = value.strip()
    if required and not value:
        raise PrivacyError(f"{name} is empty")
    if len(value) > MAX_TEXT:
        raise PrivacyError(f"{name} is {len(value)} characters, at most {MAX_TEXT}")
    if any(not ch.isprintable() for ch in value):
        raise PrivacyError(f"{name} has control characters")
    if mac.contains_mac(value):
        raise PrivacyError(f"{name} holds something shaped like a MAC address (columns swapped?); not stored")
    return value


def entry(
    list_: ListName, key: TokenKey, *, mac: str, profile: str, at: datetime, source: str
) -> RegistryEntry:
    """A checked registry entry: the MAC becomes its token here and goes no further."""
    return RegistryEntry(
        list_,
        key.token(parse_mac(mac)),
        _text("profile_id", profile, required=list_ == "consent"),
        at,
        _text("source", source, required=True),
    )


@dataclass(frozen=True, slots=True)
class CsvRows:
    """A CSV export, checked: good entries with their line numbers, and bad rows with why."""

    entries: tuple[RegistryEntry, ...]
    lines: tuple[int, ...]
    bad: tuple[BadRow, ...]
    ignored_columns: tuple[str, ...]


def read_csv(list_: ListName, stream: TextIO, key: TokenKey, now: datetime, default_source: str) -> CsvRows:
    """Rows `profile_id,mac,timestamp,source` under a header (any order; other columns are ignored)."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise PrivacyError("empty file: a header line profile_id,mac,timestamp,source is required")
    names = [h.strip().lower().lstrip("\ufeff") for h in header]
    missing = [c for c in CSV_COLUMNS if c not in names]
    if missing:
        raise PrivacyError(
            f"line 1: header lacks {', '.join(missing)} (expected {','.join(CSV_COLUMNS)}); is it there?"
        )
    where = {c: names.index(c) for c in CSV_COLUMNS}
    entries: list[RegistryEntry] = []
    lines: list[int] = []
    bad: list[BadRow] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            bad.append(BadRow(line, f"{len(row)} fields, the header has {len(names)}"))
            continue
        try:
            at = parse_time(row[where["timestamp"]], now)
            made = entry(
                list_,
                key,
                mac=row[where["mac"]],
                profile=row[where["profile_id"]],
                at=at,
                source=row[where["source"]] or default_source,
            )
        except PrivacyError as exc:
            bad.append(BadRow(line, str(exc)))
            continue
        entries.append(made)
        lines.append(line)
    ignored = tuple(n for n in names if n not in CSV_COLUMNS)
    return CsvRows(tuple(entries), tuple(lines), tuple(bad), ignored)


# -- the token key -----------------------------------------------------------------------------------------


def init_token_key(path: Path) -> str:
    """Create the deployment's token key file (0600, never overwritten); returns its public key id."""
    key = TokenKey.generate()
    try:
        key.save(path)
        return key.key_id
    finally:
        key.destroy()


def load_token_key(path: Path | None) -> TokenKey:
    if path is None:
        raise PrivacyError(
            "no token key: set privacy.token_key_file (create one with `footfall-collector tokens init`)"
        )
    try:
        return TokenKey.load(path)
    except KeyFileError as exc:
        raise PrivacyError(str(exc)) from None


# -- the control message -----------------------------------------------------------------------------------


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
