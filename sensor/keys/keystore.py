"""Store seeds and sensor key files: the forward-only salt ratchet behind `SaltSource`.

Threat model. A pseudonym is HMAC-SHA256(salt, mac) truncated. A burned-in MAC is one of ~2^24 under one
of ~2^15 assigned OUIs, ~2^40 in all (random, locally administered ones are not enumerable but short-lived).
Anyone holding a salt can try them all: an HMAC with precomputed pads costs two SHA-256 blocks, a CPU core
does ~8 M blocks/s (`openssl speed sha256`, 16-byte blocks, on the dev box), so ~75 core-hours; a GPU at
~10^10 blocks/s needs ~4 minutes. So the salt is the secret, and three things limit what a leak gives away:
- rotation: one salt covers one epoch (a day by default), so a leaked salt opens one epoch's pseudonyms;
- destruction: salt[n+1] = HKDF-SHA256(salt[n], info="footfall/v1/ratchet") is one-way and salt[n] is
  erased from memory and disk when epoch n ends, so whoever takes a sensor today gets today's salt and can
  follow it forward (until the store is re-seeded: do that after a theft) but cannot recompute yesterday's;
- truncation: among 2^40 addresses a `bits`-bit pseudonym has ~2^(40-bits) preimages: 256 at 32 bits,
  none at 48 or 64. Short pseudonyms blur a brute-forced match but collide more (below); the default, 64
  bits, relies on rotation and destruction alone.
The store seed recomputes every salt of every epoch: it is made offline, used only to provision, and never
written to a sensor or into a key file. A key file holds the current salt only.

Files: versioned binary records with a CRC32 (sensor/keys/keyfile.py), refused if truncated or damaged, with
the file named; footfall/secretfile.py keeps them owner-only (0600, no symlinks), rotates them so a
complete state is on disk at every instant (`open` finishes an interrupted rotation) and locks them against
a second process. A timestamp before the current epoch (late frame, clock stepped back) raises `EpochGone`
rather than borrowing the current salt, which would file it under the wrong epoch.
Limits: wiping a file cannot reach what an SD card's wear levelling or a journal kept, so encrypt the
sensor's storage; a clock set wrongly into the future burns the salts up to that future (frames raise
`EpochGone` until the clock catches up or the sensor is re-provisioned), so start the sensor after time
sync.

Memory: CPython never wipes freed objects, so a salt that once sat in a `bytes` would linger in the
allocator's free lists. Here the salt only ever lives in bytearrays this module owns and zeroes: files are
read with `os.readv` straight into one, HKDF writes into one (`derive_into`, not `derive`, whose bytes
result would linger), HMAC runs inside OpenSSL, which wipes its contexts, and nothing is ever resized.
The tests scan a live sensor process's writable memory for old salts; allocator reuse could also hide a
stray copy, so this discipline, not the scan, is the guarantee. Out of reach: pages swapped to disk (use
zram or no swap) and core dumps (LimitCORE=0).

Collisions. Two devices share a pseudonym with probability ~2^-bits; among n addresses in one epoch the
expected number of colliding pairs is n^2 / 2^(bits+1):
    bits   n = 10^4      n = 10^5      n = 10^6
    32     0.012         1.2           116
    48     1.8e-7        1.8e-5        1.8e-3
    64     2.7e-12       2.7e-10       2.7e-8
A busy mall sees ~10^5 addresses a day (most of them random), so 32 bits merges about one pair a day;
64 bits never does in practice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from footfall import secretfile
from footfall.secretfile import KeyFileBusy, KeyFileCorrupt, KeyFileError, KeyPermissionError
from sensor.keys import keyfile
from sensor.keys.keyfile import FORMAT_VERSION, SECRET_BYTES
from sensor.keys.pseudonym import Epoch
from sensor.keys.salts import EpochSpan, SaltSchedule

__all__ = [  # the errors live in footfall/secretfile.py and are re-exported for existing importers
    "EPOCH0_INFO",
    "FORMAT_VERSION",
    "RATCHET_INFO",
    "SECRET_BYTES",
    "STORE_ID",
    "EpochGone",
    "KeyFileBusy",
    "KeyFileCorrupt",
    "KeyFileError",
    "KeyInfo",
    "KeyPermissionError",
    "KeyStore",
    "StoreSeed",
    "ratchet",
]

log = logging.getLogger(__name__)

RATCHET_INFO = b"footfall/v1/ratchet"
EPOCH0_INFO = b"footfall/v1/epoch0"
STORE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class EpochGone(LookupError):
    """A timestamp before the current epoch: its salt was destroyed, so it cannot be pseudonymised.

    Raised for late frames across a rotation and for a clock stepped back; the pipeline counts and drops
    such frames rather than filing them under the wrong epoch.
    """

    def __init__(self, ts_ns: int, current: EpochSpan) -> None:
        super().__init__(
            f"timestamp {ts_ns} ns is {(current.start_ns - ts_ns) / 1e9:.3f} s before the current epoch"
            f" {current.id} (starts {current.start_ns} ns); its salt is destroyed"
        )
        self.ts_ns, self.current = ts_ns, current


@dataclass(frozen=True, slots=True)
class StoreSeed:
    """A store's root secret and schedule: every sensor key of the store is derived from it.

    `anchor` is the index of the epoch containing `created_ns` (epoch 0 of the ratchet).
    """

    store: str
    schedule: SaltSchedule
    created_ns: int
    anchor: int
    secret: bytearray = field(repr=False, compare=False)

    @classmethod
    def create(
        cls, store: str, schedule: SaltSchedule, now_ns: int, secret: bytes | bytearray | None = None
    ) -> StoreSeed:
        """A new seed; `secret` (32 bytes) only for tests, otherwise read from the kernel's CSPRNG."""
        if not STORE_ID.fullmatch(store):
            raise ValueError(
                f"store id {store!r}: expected 1-64 of A-Z a-z 0-9 . _ - (not starting with . _ -)"
            )
        buf = bytearray(SECRET_BYTES)
        if secret is None:
            secretfile.urandom_into(buf)
        elif len(secret) != SECRET_BYTES:
            raise ValueError(f"seed secret is {len(secret)} bytes, {SECRET_BYTES} needed")
        else:
            buf[:] = secret
        return cls(store, schedule, now_ns, schedule.index_at(now_ns), buf)

    @classmethod
    def load(cls, path: Path) -> StoreSeed:
        flags, (store, zone, spec), (created_ns, anchor), secret = keyfile.load(path, keyfile.SEED_MAGIC)
        schedule = keyfile.schedule_of(path, spec, zone, flags)
        if schedule.index_at(created_ns) != anchor:
            secretfile.zero(secret)
            raise KeyFileCorrupt(
                path, f"anchor epoch {anchor} does not contain the creation time {created_ns} ns"
            )
        return cls(store, schedule, created_ns, anchor, secret)

    def save(self, path: Path) -> None:
        """Write the seed 0600; never overwrites an existing file (that would orphan a store's keys)."""
        buf = keyfile.encode(
            keyfile.SEED_MAGIC, self.schedule, self.store, (self.created_ns, self.anchor), self.secret
        )
        secretfile.create_private(path, buf, "a store seed")

    def salt_for(self, index: int) -> bytearray:
        """The salt of epoch `index` (caller owns and zeroes it); only epochs from the anchor on exist."""
        if index < self.anchor:
            raise ValueError(
                f"epoch {self.schedule.span(index).id} is before the seed's anchor epoch"
                f" {self.schedule.span(self.anchor).id}"
            )
        salt = bytearray(SECRET_BYTES)
        info = b"\0".join(
            (EPOCH0_INFO, self.store.encode(), self.schedule.zone.encode(), self.schedule.spec.encode())
        )
        _hkdf(info).derive_into(self.secret, salt)
        ratcheted = ratchet(salt, index - self.anchor)
        secretfile.zero(salt)
        return ratcheted

    def destroy(self) -> None:
        secretfile.zero(self.secret)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What a key file says, without its salt (for `keys show` and status)."""

    store: str
    schedule: SaltSchedule
    anchor: int
    current: EpochSpan


class KeyStore:
    """A sensor's key file as a `SaltSource`: serves the current epoch's salt, ratchets forward, never back.

    The process holds an exclusive lock on `<key>.lock` while open. An `Epoch` it returns shares the salt
    bytearray, which is zeroed when the epoch rotates or the store is closed (or garbage-collected): use an
    epoch only until the next `epoch_at` call, as `Pseudonymizer` does.
    """

    def __init__(self, path: Path, info: KeyInfo, salt: bytearray, lock_fd: int) -> None:
        self.path, self._info, self._salt, self._lock_fd = path, info, salt, lock_fd
        self._epoch = self._make_epoch()

    @classmethod
    def open(cls, path: Path) -> KeyStore:
        """Open a provisioned key file, finishing a rotation a crash interrupted."""
        lock_fd = secretfile.lock(path)
        try:
            secretfile.recover(path, _position)
            info, salt = _load_key(path)
        except BaseException as exc:
            os.close(lock_fd)
            if isinstance(exc, OSError):
                raise KeyFileError(path, f"cannot recover: {exc.strerror or exc}") from None
            raise
        return cls(path, info, salt, lock_fd)

    @classmethod
    def provision(cls, seed: StoreSeed, path: Path, at_ns: int, *, replace: bool = False) -> KeyStore:
        """Derive the key for the epoch containing `at_ns` from `seed` and write it to `path` (0600)."""
        if not replace and os.path.lexists(path):
            raise KeyFileError(path, "already exists; re-provision with replace (--force) to overwrite it")
        index = seed.schedule.index_at(at_ns)
        salt = seed.salt_for(index)
        info = KeyInfo(seed.store, seed.schedule, seed.anchor, seed.schedule.span(index))
        lock_fd = secretfile.lock(path)
        buf = keyfile.encode(keyfile.KEY_MAGIC, info.schedule, info.store, (info.anchor, index), salt)
        try:
            secretfile.replace_private(path, buf)
        except BaseException as exc:
            secretfile.zero(salt)
            os.close(lock_fd)
            if isinstance(exc, OSError):
                raise KeyFileError(path, f"cannot write: {exc.strerror or exc}") from None
            raise
        finally:
            secretfile.zero(buf)
        return cls(path, info, salt, lock_fd)

    @staticmethod
    def inspect(path: Path) -> KeyInfo:
        """Read a key file's public part without locking it (safe while the sensor runs)."""
        info, salt = _load_key(path)
        secretfile.zero(salt)
        return info

    @property
    def info(self) -> KeyInfo:
        return self._info

    def epoch_at(self, ts_ns: int) -> Epoch:
        """The epoch containing `ts_ns`, ratcheting forward as needed; `EpochGone` for one already destroyed."""
        self._check_open()
        span = self._info.current
        if span.start_ns <= ts_ns < span.end_ns:
            return self._epoch
        if ts_ns < span.start_ns:
            raise EpochGone(ts_ns, span)
        self.advance_to(ts_ns)
        return self._epoch

    def advance_to(self, ts_ns: int) -> int:
        """Catch up to the epoch containing `ts_ns` (a no-op for earlier times); returns epochs skipped."""
        self._check_open()
        old = self._info
        target = old.schedule.index_at(ts_ns)
        steps = target - old.current.index
        if steps <= 0:
            return 0
        salt = ratchet(self._salt, steps)
        info = KeyInfo(old.store, old.schedule, old.anchor, old.schedule.span(target))
        buf = keyfile.encode(keyfile.KEY_MAGIC, info.schedule, info.store, (info.anchor, target), salt)
        try:
            secretfile.replace_private(self.path, buf)
        except OSError as exc:
            secretfile.zero(salt)
            raise KeyFileError(self.path, f"rotation to epoch {info.current.id} failed: {exc}") from None
        finally:
            secretfile.zero(buf)
        secretfile.zero(self._salt)
        self._info, self._salt = info, salt
        self._epoch = self._make_epoch()
        log.info("salt rotated to epoch %s (%d step%s)", info.current.id, steps, "s" * (steps > 1))
        return steps

    def close(self) -> None:
        """Zero the salt and release the lock; idempotent."""
        secretfile.zero(self._salt)
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _check_open(self) -> None:
        if self._lock_fd < 0:
            raise KeyFileError(self.path, "key store is closed; its salt is destroyed")

    def _make_epoch(self) -> Epoch:
        span = self._info.current
        return Epoch(span.id, self._salt, span.start_ns, span.end_ns)


def ratchet(salt: bytes | bytearray, steps: int) -> bytearray:
    """salt after `steps` ratchet steps, in a new bytearray; every intermediate is zeroed."""
    out, spare = bytearray(SECRET_BYTES), bytearray(SECRET_BYTES)
    out[:] = salt
    for _ in range(steps):
        _hkdf(RATCHET_INFO).derive_into(out, spare)  # overwrites all of spare, so it needs no wipe in between
        out, spare = spare, out
    secretfile.zero(spare)
    return out


def _hkdf(info: bytes) -> HKDF:
    return HKDF(algorithm=SHA256(), length=SECRET_BYTES, salt=None, info=info)


def _load_key(path: Path) -> tuple[KeyInfo, bytearray]:
    flags, (store, zone, spec), (anchor, index), salt = keyfile.load(path, keyfile.KEY_MAGIC)
    try:
        schedule = keyfile.schedule_of(path, spec, zone, flags)
    except KeyFileError:
        secretfile.zero(salt)
        raise
    return KeyInfo(store, schedule, anchor, schedule.span(index)), salt


def _position(path: Path) -> tuple[int, str]:
    """How far a key file has ratcheted, for `recover`."""
    current = KeyStore.inspect(path).current
    return current.index, f"epoch {current.id}"
