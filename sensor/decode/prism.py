"""Prism monitor headers (link type 119): RSSI and channel from the DID items, and its AVS sibling.

A Prism header is msgcode, msglen, a 16-byte device name, then 12-byte items (DID, status,
length, a 32-bit value) up to msglen; status 0 means the driver supplied the value. Drivers write
it in host byte order, so the order is taken from whichever reading gives a sane msglen. Old
(0x..41) and new (0x..44) DID numberings are both in `DIDS`. Some link-119 captures carry an AVS
header instead (magic 0x8021100x, big-endian, fixed fields); it is decoded here too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sensor.decode.errors import Malformed, Truncated

# DID -> what it carries (only what the sensor uses)
DIDS: dict[int, str] = {
    0x00003041: "channel",
    0x00030044: "channel",
    0x00004041: "rssi",
    0x00040044: "rssi",
}

_PRISM_FIXED = 24  # msgcode, msglen, devname[16]
_ITEM = 12
_AVS_MAGIC_MASK, _AVS_MAGIC = 0xFFFFFFF0, 0x80211000
_AVS = struct.Struct(">IIQQIIIIIIii")  # ... phytype, channel, datarate, antenna, priority, ssi_type, signal
_AVS_SSI_DBM = 2


@dataclass(frozen=True, slots=True)
class Prism:
    length: int  # bytes of radio header before the 802.11 frame
    rssi_dbm: int | None
    channel: int | None


def parse(data: bytes) -> Prism:
    """Decode the Prism (or AVS) header at the start of `data`."""
    if len(data) < 8:
        raise Truncated("prism_truncated", 8, len(data))
    if struct.unpack_from(">I", data)[0] & _AVS_MAGIC_MASK == _AVS_MAGIC:
        return _parse_avs(data)
    order = "<"
    length = struct.unpack_from("<I", data, 4)[0]
    if not _PRISM_FIXED <= length <= len(data):
        swapped = struct.unpack_from(">I", data, 4)[0]
        if _PRISM_FIXED <= swapped <= len(data):
            order, length = ">", swapped
        elif length > len(data) and length < 0x10000:
            raise Truncated("prism_truncated", length, len(data))
        else:
            raise Malformed(
                "prism_bad_length", f"header length {length}, {_PRISM_FIXED}..{len(data)} expected"
            )
    item = struct.Struct(order + "IHHi")
    found: dict[str, int] = {}
    for pos in range(_PRISM_FIXED, length - _ITEM + 1, _ITEM):
        did, status, _, value = item.unpack_from(data, pos)
        name = DIDS.get(did)
        if name is not None and status == 0 and name not in found:
            found[name] = value
    return Prism(length, found.get("rssi"), found.get("channel"))


def _parse_avs(data: bytes) -> Prism:
    if len(data) < _AVS.size:
        raise Truncated("prism_truncated", _AVS.size, len(data))
    _, length, _, _, _, channel, _, _, _, ssi_type, signal, _ = _AVS.unpack_from(data)
    if not _AVS.size <= length <= len(data):
        raise Malformed("prism_bad_length", f"AVS header length {length}, {_AVS.size}..{len(data)} expected")
    return Prism(length, signal if ssi_type == _AVS_SSI_DBM else None, channel or None)
