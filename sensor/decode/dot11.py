"""802.11 frames: the MAC header's layout, what kind of frame it is, and a probe request's elements.

The element walk also computes the device fingerprint of Vanhoef et al. (2016, "Why MAC address
randomization is not enough"): the ordered element ids plus the contents of the elements a phone
repeats unchanged whatever MAC address it currently uses (its capabilities), leaving out what
changes between its probes (SSID, DS channel) and what would be a device identifier in its own
right (the WPS UUID and P2P device info inside vendor elements: those count by OUI and type only).
`FINGERPRINT` and `FINGERPRINT_EXT` declare the policy per element id.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from enum import Enum
from typing import Final, NamedTuple

HEADER_LEN: Final = 24  # management frame: fc, duration, addr1..3, seq_ctrl
FC_PROBE_REQUEST: Final = 0x40  # first frame-control byte: version 0, type 0 (mgmt), subtype 4
FC_FLAG_ORDER: Final = 0x80  # in a management frame: a 4-byte HT Control field follows seq_ctrl
HT_CONTROL_LEN: Final = 4
# The management header, HEADER_LEN bytes: frame control (2: the first byte is version, type and subtype,
# read on its own first: FRAME_KIND; the second the flags, FC_FLAG_ORDER), duration (2), addr1 the
# receiver, addr2 the transmitter, addr3 the BSSID (6 each), seq_ctrl (2, little-endian: sequence
# number << 4 | fragment number). The decoder reads its fields by these offsets (ADDR2, SEQ_CTRL below),
# a byte at a time: compiled, each is a native read, where one struct call per frame cost more.
FC_FLAGS: Final = 1

# Final, one to a line: compiled, a Final int is a constant in the code; a plain module global is a
# dict lookup at each use, per frame and per element.
EID_SSID: Final = 0
EID_VENDOR: Final = 221
EID_EXTENSION: Final = 255

# Offsets in the MAC header shared by every frame a station exchanges with its access point (issue #14):
# frame control (2), duration or AID (2), addr1, addr2, then for all but PS-Poll addr3 and seq_ctrl.
ADDR1: Final = 4
ADDR2: Final = 10
ADDR3: Final = 16
SEQ_CTRL: Final = 22
DS_BITS: Final = 0x03  # in frame-control byte 1: ToDS (1) and FromDS (2)
TO_DS: Final = 0x01
FROM_DS: Final = 0x02


class Link(NamedTuple):
    """Where a frame between a station and its access point carries the two addresses."""

    ds: int  # the ToDS/FromDS bits this applies to
    bssid_at: int  # offset of the access point's BSSID
    station_at: int  # offset of the station's address
    from_station: bool  # the station sent it (so the signal is the station's)


class StationKind(NamedTuple):
    """A kind of frame that shows a station connected: its name, header length, and address links."""

    name: str
    header_len: int  # bytes of MAC header the decoder reads (never the body)
    has_seq: bool  # a sequence-control field at SEQ_CTRL (PS-Poll has none)
    links: tuple[Link, ...]


_UP = Link(TO_DS, ADDR1, ADDR2, True)  # station -> AP: addr1 BSSID, addr2 the station
_DOWN = Link(FROM_DS, ADDR2, ADDR1, False)  # AP -> station: addr2 BSSID, addr1 the station
# Management frames carry the BSSID in addr3 either way; sent by the station (addr2 != addr3) or by the
# access point to it (addr2 == addr3, the station in addr1): MGMT_ANSWER is the second reading.
_MGMT = Link(0, ADDR3, ADDR2, True)
MGMT_ANSWER = Link(0, ADDR3, ADDR1, False)
_PS_POLL = Link(0, ADDR1, ADDR2, True)  # a control frame: addr1 BSSID, addr2 the station

# By the first frame-control byte. Data frames between two stations (neither DS bit) or two access
# points (both) are not between a station and its access point, so they have no link.
STATION_KINDS: dict[int, StationKind] = {
    0x08: StationKind("data", HEADER_LEN, True, (_UP, _DOWN)),
    0x48: StationKind("null", HEADER_LEN, True, (_UP, _DOWN)),
    0x88: StationKind("qos_data", HEADER_LEN, True, (_UP, _DOWN)),
    0xC8: StationKind("qos_null", HEADER_LEN, True, (_UP, _DOWN)),
    0xA4: StationKind("ps_poll", 16, False, (_PS_POLL,)),
    0xB0: StationKind("auth", HEADER_LEN, True, (_MGMT,)),
    0x00: StationKind("assoc_req", HEADER_LEN, True, (_MGMT,)),
    0x10: StationKind("assoc_resp", HEADER_LEN, True, (_MGMT,)),
    0x20: StationKind("reassoc_req", HEADER_LEN, True, (_MGMT,)),
    0x30: StationKind("reassoc_resp", HEADER_LEN, True, (_MGMT,)),
}
# What the kernel keeps of such a frame, past the radio header: the longest header read (24) and 4 bytes
# for an FCS the radio header announces. Past a 24-byte data header those 4 bytes are the QoS control
# field or the start of the CCMP/TKIP/WEP or LLC header, never user data.
STATION_SNAP: Final = HEADER_LEN + 4

MGMT_SUBTYPES: dict[int, str] = {
    0: "assoc_req",
    1: "assoc_resp",
    2: "reassoc_req",
    3: "reassoc_resp",
    4: "probe_req",
    5: "probe_resp",
    6: "timing_advert",
    8: "beacon",
    9: "atim",
    10: "disassoc",
    11: "auth",
    12: "deauth",
    13: "action",
    14: "action_noack",
}
FRAME_TYPES: dict[int, str] = {1: "control", 2: "data", 3: "extension"}
BAD_VERSION: Final = "bad_version"


def _kind(fc0: int) -> str:
    if fc0 & 0x03:
        return BAD_VERSION
    ftype, subtype = (fc0 >> 2) & 0x03, fc0 >> 4
    if ftype == 0:
        return MGMT_SUBTYPES.get(subtype, "mgmt_reserved")
    return FRAME_TYPES[ftype]


# Indexed by the first frame-control byte: what kind of frame it is.
FRAME_KIND: tuple[str, ...] = tuple(_kind(b) for b in range(256))


class Keep(Enum):
    """How much of an element enters the fingerprint."""

    ID = "id"  # only its id and place in the order
    BODY = "body"  # id and the whole body
    OUI_TYPE = "oui_type"  # vendor-specific: OUI and vendor type (first 4 bytes), not the payload


# Checked on the captures in shared/data: over the eight fryza-lab days, the 397 devices with a
# universal (hence stable) address show 1.26 fingerprints each under this policy against 1.16 for
# ids alone, while telling apart 446 fingerprints instead of 114; keeping whole vendor bodies
# raises it to 1.52 per device, keeping the DS channel to 2.26. Per single phone (Baccichet
# captures) the extended and HT capabilities are the fields that change now and then.
FINGERPRINT: dict[int, Keep] = {
    0: Keep.ID,  # SSID: changes with each network asked for (and names homes: personal data)
    1: Keep.BODY,  # supported rates
    3: Keep.ID,  # DS parameter set: the channel the probe is sent on
    45: Keep.BODY,  # HT capabilities
    50: Keep.BODY,  # extended supported rates
    59: Keep.BODY,  # supported operating classes
    70: Keep.BODY,  # RM enabled capabilities
    107: Keep.BODY,  # interworking (access network type)
    127: Keep.BODY,  # extended capabilities
    191: Keep.BODY,  # VHT capabilities
    221: Keep.OUI_TYPE,  # vendor specific: WPS carries a UUID, P2P a device address
}
# Extension elements (id 255) by extension id; anything not listed counts by id only.
FINGERPRINT_EXT: dict[int, Keep] = {
    35: Keep.BODY,  # HE capabilities
    59: Keep.BODY,  # HE 6 GHz band capabilities
    108: Keep.BODY,  # EHT capabilities
}


# The two tables as one code per element id (0..255), for the walk: a tuple index per element instead
# of a dict lookup and enum comparisons (compiled, an enum member is a Python attribute load).
_KEEP_ID: Final = 0
_KEEP_BODY: Final = 1
_KEEP_OUI_TYPE: Final = 2
_CODE = {Keep.ID: _KEEP_ID, Keep.BODY: _KEEP_BODY, Keep.OUI_TYPE: _KEEP_OUI_TYPE}
_KEEP: Final = tuple(_CODE[FINGERPRINT.get(i, Keep.ID)] for i in range(256))
_KEEP_EXT: Final = tuple(_CODE[FINGERPRINT_EXT.get(i, Keep.ID)] for i in range(256))
_pack_header: Final = struct.Struct(">HB").pack  # an element's id and kept length in the canonical form
# ...and made once for the elements kept by id alone (most of them): a tuple index, not a `pack` call
_ID_ONLY: Final = tuple(_pack_header(i, 0) for i in range(256))
_EXT_ONLY: Final = tuple(_pack_header(255 * 256 + i, 0) for i in range(256))


@dataclass(slots=True, init=False, unsafe_hash=True)
class Elements:
    """What a probe request's element walk yields (immutable: see sensor/decode/frames.py on why it is
    not a frozen dataclass; made once per new frame body, ~9 k instructions frozen compiled)."""

    ssid: Final[str]
    ids: Final[tuple[int, ...]]  # in frame order; extension elements as 255 * 256 + extension id
    fingerprint: Final[str]
    overrun: Final[int]  # bytes the last element lacks; 0 when the walk ended exactly at the end
    has_ssid: Final[bool]  # an SSID element was read whole
    # The last element is exactly 4 bytes (id, len 2, 2 bytes): what an FCS the radio header did not
    # announce can look like, so the decoder checks the CRC before trusting it.
    short_tail: Final[bool]

    def __init__(
        self,
        ssid: str,
        ids: tuple[int, ...],
        fingerprint: str,
        overrun: int,
        has_ssid: bool,
        short_tail: bool,
    ) -> None:
        self.ssid = ssid
        self.ids = ids
        self.fingerprint = fingerprint
        self.overrun = overrun
        self.has_ssid = has_ssid
        self.short_tail = short_tail


def parse_elements(body: bytes) -> Elements:
    """Walk the information elements of a probe request body.

    Stops at the first element that runs past the end (`overrun` then says by how much) and keeps
    what came before it; deciding what to do with such a frame is the decoder's business.
    """
    keep_of, keep_ext, pack_header = _KEEP, _KEEP_EXT, _pack_header  # module globals: looked up once
    id_only, ext_only = _ID_ONLY, _EXT_ONLY
    ids: list[int] = []
    canon = bytearray()
    ssid = ""
    has_ssid = False
    pos, end, last = 0, len(body), -1
    while pos + 2 <= end:
        eid, length = body[pos], body[pos + 1]
        last, start = pos, pos + 2
        pos = start + length
        if pos > end:
            return _elements(ssid, ids, canon, pos - end, has_ssid=has_ssid, short_tail=False)
        keep = keep_of[eid]
        if eid == EID_SSID and not has_ssid:
            ssid = body[start:pos].decode("utf-8", "replace")
            has_ssid = True
        elif eid == EID_EXTENSION and length:
            ext = body[start]
            eid = 255 * 256 + ext
            keep = keep_ext[ext]
            start += 1
        ids.append(eid)
        if keep == _KEEP_ID:
            canon += id_only[eid] if eid < 256 else ext_only[eid - 255 * 256]
            continue
        kept = body[start:pos] if keep == _KEEP_BODY else body[start : min(start + 4, pos)]
        canon += pack_header(eid, len(kept))
        canon += kept
    overrun = 2 - (end - pos) if pos < end else 0  # a lone byte: half an element header
    short_tail = overrun == 0 and end - last == 4
    return _elements(ssid, ids, canon, overrun, has_ssid=has_ssid, short_tail=short_tail)


def _elements(
    ssid: str, ids: list[int], canon: bytearray, overrun: int, *, has_ssid: bool, short_tail: bool
) -> Elements:
    fingerprint = hashlib.blake2b(canon, digest_size=8).hexdigest()
    return Elements(ssid, tuple(ids), fingerprint, overrun, has_ssid, short_tail)


def freq_to_channel(freq: int) -> int | None:
    """IEEE channel number of a centre frequency in MHz (2.4, 4.9, 5 and 6 GHz bands)."""
    if freq == 2484:
        return 14
    for low, high, base in _BANDS:
        if low <= freq <= high and (freq - base) % 5 == 0:
            return (freq - base) // 5
    return None


def channel_to_freq(channel: int) -> int | None:
    """Centre frequency of a channel number, assuming 2.4 GHz for 1-14 and 5 GHz for 32-177."""
    if channel == 14:
        return 2484
    if 1 <= channel <= 13:
        return 2407 + 5 * channel
    if 32 <= channel <= 177:
        return 5000 + 5 * channel
    return None


_BANDS = ((2412, 2472, 2407), (4910, 4980, 4000), (5160, 5895, 5000), (5955, 7115, 5950))
