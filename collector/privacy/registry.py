"""Opt-outs and consents on the collector: a MAC comes in, a checked registry entry with its token goes on.

A MAC address given to the collector (the opt-out page, a captive portal or CRM export, the CLI) is
parsed in any spelling of footfall/mac.py and turned into its token (footfall/tokens.py: HMAC-SHA256 under
the deployment's token key, 128 bits) on the spot; the registry (collector/storage/privacy.py) keeps the
token, the profile id, when and where from, and never the MAC. Error messages never quote what was given
as a MAC either: a mistyped address is still personal data.

The rest of the job, one module each: times (timestamps.py), CSV exports (csvimport.py), the token key
file (keys.py) and the control message to the sensors (control.py).
"""

from __future__ import annotations

from datetime import datetime

from collector.storage.privacy import ListName, RegistryEntry
from footfall import mac
from footfall.tokens import TokenKey

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
