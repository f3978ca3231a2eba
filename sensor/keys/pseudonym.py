"""Turns raw MAC addresses into keyed pseudonyms, the first thing done to every decoded frame.

A pseudonym is HMAC-SHA256(salt, mac) truncated and hex-encoded. A plain salted hash would not do:
the MAC space is ~2^40 (OUI-constrained), so anyone holding the salt can enumerate it. Keeping the salt
secret, short-lived (it rotates per epoch) and destroyed afterwards is what makes the pseudonym safe.
Truncation to 64 bits keeps collisions negligible (see sensor/keys/keystore.py); it does not by itself stop a
brute-forcer who holds the salt, which is why the salt is destroyed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, Final, Protocol

_BLOCK: Final = 64  # SHA-256's block size: HMAC pads (or first hashes) its key to this
# The cached epoch bounds are kept within +-2**62 ns (1824..2116): compiled, an int in that range is
# unboxed, so the per-frame epoch check is two machine comparisons; FixedSalt's "all time" (+-2**63)
# made it two comparisons of Python ints (~300 instructions each). A frame beyond (none in int64 ns
# captures of this era) looks its epoch up again, which is slower, never wrong.
_BOUND: Final = 2**62 - 1


@dataclass(frozen=True, slots=True)
class Epoch:
    """One salt period. `salt` is secret: it never leaves the sensor process and is never logged.

    A bytearray salt belongs to its `SaltSource`, which zeroes it when the epoch is destroyed.
    """

    id: str
    salt: bytes | bytearray = field(repr=False, hash=False)
    start_ns: int
    end_ns: int  # exclusive

    def __contains__(self, ts_ns: object) -> bool:
        return isinstance(ts_ns, int) and self.start_ns <= ts_ns < self.end_ns


class SaltSource(Protocol):
    """Where salts come from; the rotation schedule and key storage live behind this seam."""

    def epoch_at(self, ts_ns: int) -> Epoch:
        """The epoch containing `ts_ns` (UTC ns); raises LookupError for an epoch that can no longer be served."""
        ...


@dataclass(frozen=True, slots=True)
class FixedSalt:
    """One salt for all time: only for tests and for replaying a capture with a throwaway key."""

    salt: bytes = field(repr=False)
    epoch: str = "fixed"

    def epoch_at(self, ts_ns: int) -> Epoch:
        return Epoch(self.epoch, self.salt, -(2**63), 2**63)


class Pseudonymizer:
    """MAC → pseudonym under the epoch's salt, cached within the epoch.

    The cache maps raw address bytes to pseudonyms, so it lives in memory only and is emptied the moment
    the epoch changes: after rotation nothing in this object can link old and new pseudonyms. It has two
    generations, like the decoder's element cache: when the current one is full it becomes the old one,
    and addresses still in use move back up on their next frame. A random address lives for one scan
    burst or a few, so a small cache hits as often as a big one, and a mall's churn of addresses costs
    a few MB, not a few tens.
    """

    _CACHE_LIMIT = 16_384  # addresses per generation

    def __init__(self, salts: SaltSource, bits: int = 64) -> None:
        # Whole 32-bit words: the hex form then never has 12 digits, the shape of a bare MAC address.
        if bits % 32 or not 32 <= bits <= 256:
            raise ValueError(f"pseudonym bits must be a multiple of 32 in 32..256, got {bits}")
        self._salts = salts
        self._hex_chars = bits // 4
        self._epoch: Epoch | None = None
        self._keyed: tuple[Any, Any] | None = None  # the epoch's HMAC inner and outer hash states
        self.epoch = ""  # id of the epoch of the last pseudonym made ("" before the first)
        self._start_ns = 0
        self._end_ns = -1
        self._cache: dict[bytes, str] = {}
        self._cache_old: dict[bytes, str] = {}
        self._last_mac = b""  # the last address asked for and its pseudonym: part of the cache
        self._last = ""

    def pseudonym(self, mac: bytes, ts_ns: int) -> str:
        if not self._start_ns <= ts_ns < self._end_ns:
            self._enter(ts_ns)
        # The last frame's address again (3 frames in 4 in a crowd: a burst): a compare of 6 bytes
        # instead of hashing them for the cache.
        if mac == self._last_mac:
            return self._last
        cached = self._cache.get(mac)
        if cached is None:
            cached = self._miss(mac)
        self._last_mac, self._last = mac, cached
        return cached

    def forget(self) -> None:
        """Drop the cache and the salt reference (at rotation, and at shutdown)."""
        self._cache.clear()
        self._cache_old.clear()
        self._last_mac, self._last = b"", ""
        self._epoch = None
        self._keyed = None
        self.epoch = ""
        self._start_ns, self._end_ns = 0, -1

    def _miss(self, mac: bytes) -> str:
        value = self._cache_old.get(mac)
        if value is None:
            assert self._epoch is not None
            if self._keyed is None:
                digest = hmac.digest(self._epoch.salt, mac, sha256)
            else:  # HMAC from the epoch's keyed states: a third of hmac.digest's time
                inner, outer = self._keyed[0].copy(), self._keyed[1].copy()
                inner.update(mac)
                outer.update(inner.digest())
                digest = outer.digest()
            value = digest.hex()[: self._hex_chars]
        if len(self._cache) >= self._CACHE_LIMIT:
            self._cache_old = self._cache
            self._cache = {}
        self._cache[mac] = value
        return value

    def _enter(self, ts_ns: int) -> None:
        epoch = self._salts.epoch_at(ts_ns)
        if self._epoch is None or epoch.id != self._epoch.id:
            self._cache.clear()
            self._cache_old.clear()
            self._last_mac, self._last = b"", ""
        self._epoch = epoch
        self._keyed = _keyed_states(epoch.salt)
        self.epoch = epoch.id
        self._start_ns, self._end_ns = max(epoch.start_ns, -_BOUND), min(epoch.end_ns, _BOUND)


def _keyed_states(salt: bytes | bytearray) -> tuple[Any, Any] | None:
    """SHA-256 after absorbing salt ^ ipad and salt ^ opad (RFC 2104), for a salt of one block at most.

    HMAC(salt, m) is then outer.update(inner.update(m).digest()).digest(), two hash blocks instead
    of the four (and an OpenSSL context set-up) of each `hmac.digest`. The padded salt lives in
    bytearrays zeroed at once, as sensor.keys does with salts; the states live in OpenSSL, which
    clears them when they are freed (with the epoch). A longer salt (never one of ours) keeps the
    plain `hmac.digest`.
    """
    if len(salt) > _BLOCK:
        return None
    inner_pad, outer_pad = bytearray(_BLOCK), bytearray(_BLOCK)
    try:
        inner_pad[: len(salt)] = salt
        outer_pad[: len(salt)] = salt
        for i in range(_BLOCK):
            inner_pad[i] ^= 0x36
            outer_pad[i] ^= 0x5C
        return sha256(inner_pad), sha256(outer_pad)
    finally:
        inner_pad[:] = bytes(_BLOCK)
        outer_pad[:] = bytes(_BLOCK)
