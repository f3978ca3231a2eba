"""The key and seed files' binary record: layout, checksum and the errors that name what is wrong.

One record per file, little-endian: magic (FFKY key, FFSD seed), format version, flags | three
length-prefixed UTF-8 texts (store, time zone, schedule) | two i64 (seed: created, anchor; key:
anchor, current epoch index) | the 32-byte secret | CRC32 of all before it. A truncated, zeroed or
damaged file is refused with the file named. Secrets pass through bytearrays only, and the read
buffer is zeroed (see sensor/keys/keystore.py on why).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from footfall import secretfile
from footfall.secretfile import KeyFileCorrupt
from sensor.keys.salts import SaltSchedule

SECRET_BYTES = 32
FORMAT_VERSION = 1
KEY_MAGIC, SEED_MAGIC = b"FFKY", b"FFSD"
_KIND = {KEY_MAGIC: "key", SEED_MAGIC: "seed"}
_ALLOW_LONG = 0x01  # flags bit: the schedule was accepted with allow_long
_HEAD = struct.Struct("<4sHB")  # magic, version, flags
_NUMS = struct.Struct("<qq")  # seed: created_ns, anchor; key: anchor, current index
_CRC = struct.Struct("<I")  # zlib.crc32 of everything before it
_MIN_SIZE = _HEAD.size + 3 + _NUMS.size + SECRET_BYTES + _CRC.size


def encode(
    magic: bytes, schedule: SaltSchedule, store: str, nums: tuple[int, int], secret: bytearray
) -> bytearray:
    """magic, version, flags | 3 x (u8 length, UTF-8): store, zone, spec | 2 x i64 | secret | crc32."""
    texts = [t.encode() for t in (store, schedule.zone, schedule.spec)]
    size = _HEAD.size + sum(1 + len(t) for t in texts) + _NUMS.size + SECRET_BYTES + _CRC.size
    buf = bytearray(size)
    _HEAD.pack_into(buf, 0, magic, FORMAT_VERSION, _ALLOW_LONG * schedule.allow_long)
    off = _HEAD.size
    for text in texts:
        buf[off] = len(text)
        buf[off + 1 : off + 1 + len(text)] = text
        off += 1 + len(text)
    _NUMS.pack_into(buf, off, *nums)
    off += _NUMS.size
    buf[off : off + SECRET_BYTES] = secret
    off += SECRET_BYTES
    with memoryview(buf) as view:
        _CRC.pack_into(buf, off, zlib.crc32(view[:off]))
    return buf


def decode(path: Path, buf: bytearray, magic: bytes) -> tuple[int, list[str], tuple[int, int], bytearray]:
    kind, size = _KIND[magic], len(buf)
    if size and not any(buf):
        raise KeyFileCorrupt(path, f"all {size} bytes are zero (an interrupted rotation?); re-provision it")
    if size < _MIN_SIZE:
        raise KeyFileCorrupt(path, f"truncated {kind} file: {size} bytes, at least {_MIN_SIZE} needed")
    got_magic, version, flags = _HEAD.unpack_from(buf)
    if got_magic != magic:
        raise KeyFileCorrupt(path, f"not a footfall {kind} file (starts {got_magic!r}, expected {magic!r})")
    if version != FORMAT_VERSION:
        raise KeyFileCorrupt(
            path, f"{kind} file format version {version}; this footfall reads {FORMAT_VERSION}"
        )
    with memoryview(buf) as view:
        (stored,), computed = _CRC.unpack_from(buf, size - _CRC.size), zlib.crc32(view[: size - _CRC.size])
        if stored != computed:
            raise KeyFileCorrupt(
                path, f"checksum {stored:08x} != {computed:08x}: damaged or truncated {kind} file"
            )
        off, texts = _HEAD.size, []
        for _ in range(3):
            end = off + 1 + buf[off]
            if end > size - _NUMS.size - SECRET_BYTES - _CRC.size:
                raise KeyFileCorrupt(path, f"field at byte {off} runs past the end ({size} bytes)")
            texts.append(bytes(view[off + 1 : end]).decode("utf-8", "replace"))
            off = end
        if off + _NUMS.size + SECRET_BYTES + _CRC.size != size:
            raise KeyFileCorrupt(
                path, f"{size} bytes, but the layout needs {off + _NUMS.size + SECRET_BYTES + 4}"
            )
        nums = _NUMS.unpack_from(buf, off)
        secret = bytearray(SECRET_BYTES)
        secret[:] = view[off + _NUMS.size : off + _NUMS.size + SECRET_BYTES]
    return flags, texts, nums, secret


def schedule_of(path: Path, spec: str, zone: str, flags: int) -> SaltSchedule:
    try:
        return SaltSchedule.parse(spec, zone, allow_long=bool(flags & _ALLOW_LONG))
    except ValueError as exc:
        raise KeyFileCorrupt(path, f"schedule {spec!r} in {zone!r}: {exc}") from None


def load(path: Path, magic: bytes) -> tuple[int, list[str], tuple[int, int], bytearray]:
    buf = secretfile.read_private(path)
    try:
        return decode(path, buf, magic)
    finally:
        secretfile.zero(buf)
