"""The sensor's privacy filter: drops opted-out devices before anything else, tags consented ones.

Tokens. A device's token is HMAC-SHA256(token key, 6 raw MAC bytes) truncated to 128 bits, in hex. The
collector turns every MAC it is given (an opt-out page, a captive portal, a CRM export) into its token at
once and never keeps the MAC; a sensor computes the same token for each address it hears and looks it up
in the two sets the collector publishes. So the sensor needs the token key, and the sets on the network
are tokens only: no MAC, no profile id, no timestamp.

The token key is one per deployment (every store): a consent given once holds in every store, and a store
opened later honours the opt-outs made before it, which per-store keys cannot do since the MAC is gone
once tokenised. The price: whoever takes the key from any sensor, together with the published token sets,
can try all ~2^40 burned-in MACs (minutes on a GPU, see sensor/keys/keystore.py) and learn which of them opted out
or consented. Truncation does not slow that (2^128 >> 2^40: every token still has one preimage); what
limits it is that the key file is 0600 on the sensors and the collector only, that only the few tokens
of opted-out and consented devices are published, and that the key can be replaced (`footfall-collector
tokens init`, then a re-import of the registry from its sources). The README's privacy section has the whole model.

The control message (retained, `<prefix>/<store>/control/privacy`, schema `footfall.privacy/1`) replaces
both sets at once. It is untrusted input: a bad one is rejected with a counted reason and the sets in
force stay; a message for another store or made with another token key is refused, loudly, since a
sensor with the wrong key cannot recognise a single opted-out device.

Memory: the token of each address heard is cached against its raw bytes (bounded, in memory only, like
the pseudonym cache) so the HMAC runs once per address, and not at all while both sets are empty.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from hashlib import sha256
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from footfall import secretfile
from footfall.events import Name
from footfall.secretfile import KeyFileCorrupt

log = logging.getLogger(__name__)

SCHEMA_CONTROL: Final = "footfall.privacy/1"
TOKEN_BYTES: Final = 16  # 128 bits: no collision among any number of devices, same brute-force cost as 256
KEY_BYTES: Final = 32
KEY_ID_INFO: Final = b"footfall/v1/token-key-id"
MAX_CONTROL_BYTES: Final = 64 * 1024 * 1024  # ~1.7 M tokens: far above any real registry

_MAGIC, _VERSION = b"FFTK", 1
_FILE_SIZE = 4 + 2 + 1 + KEY_BYTES + 4  # magic, version (u16 LE), flags, key, crc32 (u32 LE)

Token = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
"""A device token: 32 lowercase hex digits (128 bits), never 12 (a bare MAC's shape)."""


def control_topic(prefix: str, store: str) -> str:
    """Where the collector publishes a store's opt-out and consent sets (retained)."""
    return f"{prefix}/{store}/control/privacy"


@dataclass(frozen=True, slots=True)
class TokenKey:
    """The deployment's token key. Secret: it never leaves the collector and the sensors, never logged."""

    secret: bytearray = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise ValueError(f"token key is {len(self.secret)} bytes, {KEY_BYTES} needed")

    def token(self, mac: bytes) -> str:
        """HMAC-SHA256(key, mac), first 128 bits, lowercase hex."""
        if len(mac) != 6:
            raise ValueError(f"a MAC address is 6 bytes, got {len(mac)}")
        return hmac.digest(self.secret, mac, sha256)[:TOKEN_BYTES].hex()

    @property
    def key_id(self) -> str:
        """A public fingerprint (64 bits) so sensor and collector can tell they hold the same key."""
        return hmac.digest(self.secret, KEY_ID_INFO, sha256)[:8].hex()

    @classmethod
    def generate(cls) -> TokenKey:
        secret = bytearray(KEY_BYTES)
        secretfile.urandom_into(secret)
        return cls(secret)

    @classmethod
    def load(cls, path: Path) -> TokenKey:
        """Read a key file; refused if group- or world-readable, a symlink, truncated or damaged."""
        buf = secretfile.read_private(path)
        try:
            if len(buf) != _FILE_SIZE:
                raise KeyFileCorrupt(path, f"{len(buf)} bytes; a token key file has exactly {_FILE_SIZE}")
            if bytes(buf[:4]) != _MAGIC:
                raise KeyFileCorrupt(path, f"not a footfall token key file (starts {bytes(buf[:4])!r})")
            version = int.from_bytes(buf[4:6], "little")
            if version != _VERSION:
                raise KeyFileCorrupt(
                    path, f"token key format version {version}; this footfall reads {_VERSION}"
                )
            stored, computed = int.from_bytes(buf[-4:], "little"), zlib.crc32(memoryview(buf)[:-4])
            if stored != computed:
                raise KeyFileCorrupt(path, f"checksum {stored:08x} != {computed:08x}: damaged token key file")
            secret = bytearray(KEY_BYTES)
            secret[:] = memoryview(buf)[7 : 7 + KEY_BYTES]
            return cls(secret)
        finally:
            secretfile.zero(buf)

    def save(self, path: Path) -> None:
        """Write 0600; never overwrites (that would orphan every token in the registry)."""
        buf = bytearray(_FILE_SIZE)
        buf[:4] = _MAGIC
        buf[4:6] = _VERSION.to_bytes(2, "little")
        buf[7 : 7 + KEY_BYTES] = self.secret
        buf[-4:] = zlib.crc32(memoryview(buf)[:-4]).to_bytes(4, "little")
        secretfile.create_private(path, buf, "a token key")

    def destroy(self) -> None:
        secretfile.zero(self.secret)


class ControlMessage(BaseModel):
    """The opt-out and consent sets of one store, as the collector publishes them (retained)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    schema_: Literal["footfall.privacy/1"] = Field(SCHEMA_CONTROL, alias="schema")
    store: Name
    revision: int = Field(ge=0, description="the registry's change counter: higher is newer")
    issued: datetime = Field(description="UTC, ISO 8601")
    key_id: str = Field(
        pattern=r"^[0-9a-f]{16}$", description="fingerprint of the token key (TokenKey.key_id)"
    )
    optout: tuple[Token, ...] = Field(description="tokens of opted-out devices: dropped on arrival")
    consent: tuple[Token, ...] = Field(description="tokens of consented devices: tagged on their visits")

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


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
