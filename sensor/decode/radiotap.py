"""Radiotap headers (link type 127): where the flags, channel and signal are, and what they say.

A radiotap header is a chain of 32-bit "present" words followed by the fields they announce, each
padded to its natural alignment counted from the start of the header. Bit 31 of a word says
another word follows; bit 29 starts a new radiotap namespace (per-antenna fields repeat there),
bit 30 a vendor namespace, whose 6-byte header (OUI, sub-namespace, skip length) tells how many
bytes of vendor data to jump over. Field sizes are declared once in `FIELDS`.

The walk depends only on the present words (unless a vendor namespace comes before the fields we
need), so `layout()` compiles it into a `RadiotapLayout` that the decoder memoises per distinct
chain of present words: a frame then costs three reads at known offsets (`read`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from sensor.decode.errors import Malformed, Truncated


@dataclass(frozen=True, slots=True)
class RadiotapField:
    bit: int
    align: int
    size: int
    name: str


# The fields defined in the radiotap namespace (radiotap.org/fields/defined), in bit order.
FIELDS: dict[int, RadiotapField] = {
    f.bit: f
    for f in (
        RadiotapField(0, 8, 8, "tsft"),
        RadiotapField(1, 1, 1, "flags"),
        RadiotapField(2, 1, 1, "rate"),
        RadiotapField(3, 2, 4, "channel"),  # u16 frequency (MHz), u16 channel flags
        RadiotapField(4, 1, 2, "fhss"),
        RadiotapField(5, 1, 1, "dbm_antsignal"),
        RadiotapField(6, 1, 1, "dbm_antnoise"),
        RadiotapField(7, 2, 2, "lock_quality"),
        RadiotapField(8, 2, 2, "tx_attenuation"),
        RadiotapField(9, 2, 2, "db_tx_attenuation"),
        RadiotapField(10, 1, 1, "dbm_tx_power"),
        RadiotapField(11, 1, 1, "antenna"),
        RadiotapField(12, 1, 1, "db_antsignal"),
        RadiotapField(13, 1, 1, "db_antnoise"),
        RadiotapField(14, 2, 2, "rx_flags"),
        RadiotapField(15, 2, 2, "tx_flags"),
        RadiotapField(16, 1, 1, "rts_retries"),
        RadiotapField(17, 1, 1, "data_retries"),
        RadiotapField(18, 4, 8, "xchannel"),
        RadiotapField(19, 1, 3, "mcs"),
        RadiotapField(20, 4, 8, "ampdu_status"),
        RadiotapField(21, 2, 12, "vht"),
        RadiotapField(22, 8, 12, "timestamp"),
        RadiotapField(23, 2, 12, "he"),
        RadiotapField(24, 2, 12, "he_mu"),
        RadiotapField(25, 2, 6, "he_mu_other_user"),
        RadiotapField(26, 1, 1, "zero_length_psdu"),
        RadiotapField(27, 2, 4, "lsig"),
        # bit 28 announces TLVs for the rest of the header: the walk stops there
    )
}

# What the decoder reads, in the order `read` returns them, and their sizes (u8, u16 MHz first, s8).
WANTED = ("flags", "channel", "dbm_antsignal")
_SIZES = {"flags": 1, "channel": 2, "dbm_antsignal": 1}
NO_FIELD: Final = -1  # the offset of a field the header does not carry, and the frequency `read` gives for it
NO_SIGNAL: Final = 1000  # the signal `read` gives when the header carries none (no dBm value is this)

FLAG_FCS_AT_END: Final = 0x10
FLAG_BAD_FCS: Final = 0x40

_EXT, _VENDOR_NS, _RADIOTAP_NS = 1 << 31, 1 << 30, 1 << 29
_HEADER: Final = struct.Struct("<BBHI")  # version, pad, length, first present word
_U32: Final = struct.Struct("<I")
_U16: Final = struct.Struct("<H")


@dataclass(frozen=True, slots=True)
class RadiotapLayout:
    """Where the wanted fields sit for one chain of present words (NO_FIELD: not carried); see `read`."""

    length: int  # the header length the layout was built for
    end: int  # bytes of header the wanted fields need
    flags_at: int
    freq_at: int
    signal_at: int
    has_flags: bool  # the Flags field is there, so the FCS flag can be trusted
    cacheable: bool  # False when a vendor skip length (a data value) was needed to place the fields
    incomplete: bool  # the walk met a field it cannot size before finding all wanted fields


@dataclass(frozen=True, slots=True)
class Radiotap:
    """The decoded parts of a radiotap header that the sensor uses."""

    length: int
    flags: int
    freq_mhz: int | None
    dbm_signal: int | None

    @property
    def fcs_at_end(self) -> bool:
        return bool(self.flags & FLAG_FCS_AT_END)

    @property
    def bad_fcs(self) -> bool:
        return bool(self.flags & FLAG_BAD_FCS)


def present_words(data: bytes) -> tuple[int, int]:
    """(header length, end of the present-word chain); checks version and that the chain fits."""
    if len(data) < 8:
        raise Truncated("radiotap_truncated", 8, len(data))
    version, _, length, _ = _HEADER.unpack_from(data)
    if version != 0:
        raise Malformed("radiotap_bad_version", f"version {version}, 0 expected")
    if length > len(data):
        raise Truncated("radiotap_truncated", length, len(data))
    pos = 4
    while True:
        if pos + 4 > length:
            raise Truncated("radiotap_truncated", pos + 4, length)
        word = _U32.unpack_from(data, pos)[0]
        pos += 4
        if not word & _EXT:
            return length, pos


def layout(data: bytes) -> RadiotapLayout:
    """Walk the present words of the header at the start of `data` and compile where fields sit."""
    length, off = present_words(data)
    words = [w for (w,) in _U32.iter_unpack(data[4:off])]
    found: dict[str, int] = {}
    cacheable = True
    in_radiotap, base = True, 0
    for word in words:
        if in_radiotap:
            for bit in range(28 + 1):
                if not word & (1 << bit):
                    continue
                field = FIELDS.get(base + bit)
                if field is None:  # TLVs or an undefined field: nothing after it can be placed
                    return _compile(length, found, off, cacheable, incomplete=len(found) < len(WANTED))
                off = (off + field.align - 1) & -field.align
                if field.name in _SIZES and field.name not in found:
                    found[field.name] = off
                off += field.size
                if len(found) == len(WANTED):
                    return _compile(length, found, off, cacheable, incomplete=False)
        if word & _RADIOTAP_NS:
            in_radiotap, base = True, 0
        elif word & _VENDOR_NS:
            off = (off + 1) & -2
            if off + 6 > length:
                raise Truncated("radiotap_truncated", off + 6, length)
            skip = _U16.unpack_from(data, off + 4)[0]
            off += 6 + skip
            cacheable = False
            in_radiotap, base = False, 0
        else:
            base += 32
    return _compile(length, found, off, cacheable, incomplete=False)


def _compile(
    length: int, found: dict[str, int], end: int, cacheable: bool, incomplete: bool
) -> RadiotapLayout:
    """The offsets of the wanted fields, checked to lie inside the header."""
    end = max([end, *(at + _SIZES[name] for name, at in found.items())])
    if length < end:
        raise Truncated("radiotap_truncated", end, length)
    flags_at, freq_at, signal_at = (found.get(name, NO_FIELD) for name in WANTED)
    return RadiotapLayout(length, end, flags_at, freq_at, signal_at, "flags" in found, cacheable, incomplete)


def read(data: bytes, flags_at: int, freq_at: int, signal_at: int) -> tuple[int, int, int]:
    """(flags, frequency MHz, dBm signal) at a layout's offsets: 0 flags, NO_FIELD frequency and NO_SIGNAL
    signal for fields the header does not carry. Byte by byte: compiled, these are native reads (a
    `struct` call took ~600 instructions a frame); the caller checks that `data` holds the header.
    """
    flags = data[flags_at] if flags_at >= 0 else 0
    freq = data[freq_at] | data[freq_at + 1] << 8 if freq_at >= 0 else NO_FIELD
    signal = NO_SIGNAL
    if signal_at >= 0:
        signal = data[signal_at]
        if signal >= 0x80:  # a signed byte
            signal -= 0x100
    return flags, freq, signal


def parse(data: bytes) -> Radiotap:
    """Decode the radiotap header at the start of `data` (the uncached path; see `layout`)."""
    lay = layout(data)
    flags, freq, signal = read(data, lay.flags_at, lay.freq_at, lay.signal_at)
    return Radiotap(
        length=lay.length,
        flags=flags,
        freq_mhz=None if freq == NO_FIELD else freq,
        dbm_signal=None if signal == NO_SIGNAL else signal,
    )
