"""The deployment's token key: how a device's MAC becomes the token the consent registry keeps.

A device's token is HMAC-SHA256(token key, 6 raw MAC bytes) truncated to 128 bits, in hex. The
collector turns every MAC it is given (an opt-out page, a captive portal, a CRM export) into its token at
once and never keeps the MAC; a sensor computes the same token for each address it hears and looks it up
in the two sets the collector publishes (footfall/control.py). So both sides hold the key, and the sets on
the network are tokens only: no MAC, no profile id, no timestamp.

The token key is one per deployment (every store): a consent given once holds in every store, and a store
opened later honours the opt-outs made before it, which per-store keys cannot do since the MAC is gone
once tokenised. The price: whoever takes the key from any sensor, together with the published token sets,
can try all ~2^40 burned-in MACs (minutes on a GPU, see sensor/keys/keystore.py) and learn which of them opted out
or consented. Truncation does not slow that (2^128 >> 2^40: every token still has one preimage); what
limits it is that the key file is 0600 on the sensors and the collector only, that only the few tokens
of opted-out and consented devices are published, and that the key can be replaced (`footfall-collector
tokens init`, then a re-import of the registry from its sources). The README's privacy section has the whole model.
"""

from __future__ import annotations

import hmac
import zlib
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Final

from footfall import secretfile
from footfall.secretfile import KeyFileCorrupt

TOKEN_BYTES: Final = 16  # 128 bits: no collision among any number of devices, same brute-force cost as 256
KEY_BYTES: Final = 32
KEY_ID_INFO: Final = b"footfall/v1/token-key-id"

_MAGIC, _VERSION = b"FFTK", 1
_FILE_SIZE = 4 + 2 + 1 + KEY_BYTES + 4  # magic, version (u16 LE), flags, key, crc32 (u32 LE)


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
