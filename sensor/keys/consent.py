"""The sensor's privacy filter: drops opted-out devices before anything else, tags consented ones.

A device's token is HMAC-SHA256 of its MAC under the deployment's token key (footfall/tokens.py, which
also says why one key per deployment and what that costs); the collector publishes the tokens of opted-out
and consented devices as one retained control message per store (footfall/control.py).

The control message replaces both sets at once. It is untrusted input: a bad one is rejected with a counted reason and the sets in
force stay; a message for another store or made with another token key is refused, loudly, since a
sensor with the wrong key cannot recognise a single opted-out device.

Memory: the token of each address heard is cached against its raw bytes (bounded, in memory only, like
the pseudonym cache) so the HMAC runs once per address, and not at all while both sets are empty.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pydantic import ValidationError

from footfall.control import SCHEMA_CONTROL, ControlMessage
from footfall.tokens import TokenKey

log = logging.getLogger(__name__)

MAX_CONTROL_BYTES: Final = 64 * 1024 * 1024  # ~1.7 M tokens: far above any real registry


class Reject(StrEnum):
    """Why a control message was refused: the counter keys."""

    OVERSIZED = "oversized"
    NOT_JSON = "not_json"
    WRONG_SCHEMA = "wrong_schema"
    INVALID = "invalid"
    WRONG_STORE = "wrong_store"
    NO_KEY = "no_key"
    KEY_MISMATCH = "key_mismatch"


@dataclass(frozen=True, slots=True)
class ControlOutcome:
    reason: Reject | None = None
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class _Sets:
    revision: int = -1
    optout: frozenset[str] = frozenset()
    consent: frozenset[str] = frozenset()


class PrivacyFilter:
    """`drop(mac)` and `consent_token(mac)` for the pipeline; `apply(payload)` from the MQTT thread.

    The two sets are replaced together by swapping one immutable reference, so the pipeline thread
    reads a consistent pair without a lock.
    """

    CACHE_LIMIT = 200_000

    def __init__(self, store: str, key: TokenKey | None) -> None:
        self.store = store
        self._key = key
        self._sets = _Sets()
        self._cache: dict[bytes, str] = {}
        self._lock = threading.Lock()  # serialises writers; readers take `_sets` in one load
        self.applied = 0
        self.rejected: Counter[str] = Counter()
        self.received = threading.Event()  # set once a control message has been accepted

    # -- the pipeline's seams ----------------------------------------------------------------------------
    def drop(self, mac: bytes) -> bool:
        """True for an opted-out device: the frame must go no further."""
        sets = self._sets
        return bool(sets.optout) and self._token(mac) in sets.optout

    def consent_token(self, mac: bytes) -> str | None:
        """The device's token if it consented, else None."""
        sets = self._sets
        if not sets.consent:
            return None
        token = self._token(mac)
        return token if token in sets.consent else None

    def _token(self, mac: bytes) -> str:
        cached = self._cache.get(mac)
        if cached is not None:
            return cached
        assert self._key is not None  # non-empty sets are only accepted with a key
        value = self._key.token(mac)
        if len(self._cache) >= self.CACHE_LIMIT:
            self._cache.clear()
        self._cache[mac] = value
        return value

    # -- control messages ---------------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        """Revision of the sets in force; -1 before the first control message."""
        return self._sets.revision

    @property
    def counts(self) -> tuple[int, int]:
        """(opt-outs, consents) in force."""
        sets = self._sets
        return len(sets.optout), len(sets.consent)

    def apply(self, payload: bytes) -> ControlOutcome:
        """Check a control payload and, if good, put its sets in force; never raises."""
        try:
            message = parse_control(payload)
        except ControlError as exc:
            return self._refuse(exc.reason, exc.detail)
        return self.apply_message(message)

    def apply_message(self, message: ControlMessage) -> ControlOutcome:
        if message.store != self.store:
            return self._refuse(
                Reject.WRONG_STORE, f"message for store {message.store!r}, this is {self.store!r}"
            )
        wanted = len(message.optout) + len(message.consent)
        if self._key is None:
            if wanted:
                return self._refuse(
                    Reject.NO_KEY,
                    f"cannot honour {len(message.optout)} opt-outs and {len(message.consent)} consents:"
                    " privacy.token_key_file is not set",
                )
        elif message.key_id != self._key.key_id:
            return self._refuse(
                Reject.KEY_MISMATCH,
                f"made with token key {message.key_id}, this sensor holds {self._key.key_id}: copy the"
                " collector's token key file to this sensor",
            )
        with self._lock:
            if message.revision < self._sets.revision:
                log.warning(
                    "privacy control revision %d replaces newer revision %d (collector database restored?)",
                    message.revision,
                    self._sets.revision,
                )
            self._sets = _Sets(message.revision, frozenset(message.optout), frozenset(message.consent))
            self.applied += 1
        log.info(
            "privacy control revision %d in force: %d opt-outs, %d consents",
            message.revision,
            len(message.optout),
            len(message.consent),
        )
        self.received.set()
        return ControlOutcome()

    def _refuse(self, reason: Reject, detail: str) -> ControlOutcome:
        with self._lock:
            self.rejected[reason.value] += 1
        level = logging.ERROR if reason in (Reject.NO_KEY, Reject.KEY_MISMATCH) else logging.WARNING
        log.log(
            level, "privacy control message refused (%s): %s; the sets in force stay", reason.value, detail
        )
        return ControlOutcome(reason, detail)


class ControlError(Exception):
    def __init__(self, reason: Reject, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_control(payload: bytes) -> ControlMessage:
    """A control payload, checked cheapest first; `ControlError` names the reason (never quotes the payload)."""
    if len(payload) > MAX_CONTROL_BYTES:
        raise ControlError(Reject.OVERSIZED, f"{len(payload)} bytes, at most {MAX_CONTROL_BYTES} allowed")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise ControlError(Reject.NOT_JSON, type(exc).__name__) from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema != SCHEMA_CONTROL:
        found = "no schema field" if schema is None else f"schema {str(schema)[:40]!r}"
        raise ControlError(Reject.WRONG_SCHEMA, f"{found}, expected {SCHEMA_CONTROL!r}")
    try:
        message = ControlMessage.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        # Locations and messages only: pydantic's default text repeats the input.
        parts = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()[:3]]
        raise ControlError(Reject.INVALID, "; ".join(parts)) from None
    if message.issued.utcoffset() is None:
        raise ControlError(Reject.INVALID, "issued: timestamp has no time zone")
    return message
