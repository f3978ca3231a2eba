"""Frame builders: bytes for radiotap-wrapped 802.11 management frames, built from plain values.

The synthetic store generator and the tests use these to write captures whose every field is
known. Nothing here draws random numbers or touches files: the same arguments give the same bytes.

The radiotap header carries exactly three fields, in present-bit order, each padded to its own
alignment (radiotap.org, "Alignment in radiotap"):

    offset  size  field
    0       1     version 0
    1       1     pad
    2       2     header length (15), little endian
    4       4     present = Flags (bit 1) | Channel (bit 3) | dBm antenna signal (bit 5) = 0x2a
    8       1     Flags (0x10: the frame ends with a 4-byte FCS)
    9       1     pad: Channel is two u16 and must start on an even offset
    10      2     Channel frequency, MHz
    12      2     Channel flags (2 GHz | CCK for 2.4 GHz, 5 GHz | OFDM above)
    14      1     dBm antenna signal, signed

That is the layout of the Baccichet captures minus their Rate byte, which sits at offset 9 and so
needs no pad; dropping it makes the pad appear, so a decoder that ignores alignment fails here.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence

BROADCAST = b"\xff" * 6

# Element ids used by the generator's device classes (IEEE 802.11-2020, table 9-92).
EID_SSID = 0
EID_SUPPORTED_RATES = 1
EID_DS_PARAMETER = 3
EID_HT_CAPABILITIES = 45
EID_EXTENDED_RATES = 50
EID_INTERWORKING = 107
EID_EXTENDED_CAPABILITIES = 127
EID_VHT_CAPABILITIES = 191
EID_VENDOR = 221
EID_EXTENSION = 255
EXT_HE_CAPABILITIES = 35

# radiotap
_PRESENT = (1 << 1) | (1 << 3) | (1 << 5)
_RADIOTAP = struct.Struct("<BBHIBxHHb")
RADIOTAP_LEN = _RADIOTAP.size  # 15
_F_FCS = 0x10
_CHAN_CCK, _CHAN_OFDM, _CHAN_2GHZ, _CHAN_5GHZ = 0x0020, 0x0040, 0x0080, 0x0100

# 802.11 management header: frame control, duration, addr1..3, sequence control
_MGMT = struct.Struct("<BBH6s6s6sH")
SUBTYPE_PROBE_REQUEST = 4
SUBTYPE_BEACON = 8
_BEACON_FIXED = struct.Struct("<QHH")  # timestamp (µs), beacon interval (TU), capability info


class CraftError(ValueError):
    """An argument no real frame could carry; the message names the value and the allowed range."""


def channel_frequency(channel: int) -> int:
    """Centre frequency in MHz of a 2.4 GHz (1-14) or 5 GHz (32-177) channel number."""
    if 1 <= channel <= 13:
        return 2407 + 5 * channel
    if channel == 14:
        return 2484
    if 32 <= channel <= 177:
        return 5000 + 5 * channel
    raise CraftError(f"channel {channel} is neither 1-14 (2.4 GHz) nor 32-177 (5 GHz)")


def radiotap_header(rssi_dbm: int, freq_mhz: int, *, fcs: bool = False) -> bytes:
    """The 15-byte radiotap header described in the module docstring."""
    if not -128 <= rssi_dbm <= 127:
        raise CraftError(f"rssi {rssi_dbm} dBm does not fit a signed byte (-128..127)")
    if not 2400 <= freq_mhz <= 5900:
        raise CraftError(f"frequency {freq_mhz} MHz is outside 2400-5900")
    chan_flags = _CHAN_2GHZ | _CHAN_CCK if freq_mhz < 3000 else _CHAN_5GHZ | _CHAN_OFDM
    return _RADIOTAP.pack(0, 0, RADIOTAP_LEN, _PRESENT, _F_FCS if fcs else 0, freq_mhz, chan_flags, rssi_dbm)


def management_frame(
    subtype: int, transmitter: bytes, seq: int, body: bytes, *, receiver: bytes, bssid: bytes, fcs: bool
) -> bytes:
    """An 802.11 management frame (no radiotap); with `fcs`, the CRC-32 the radio would append."""
    for name, addr in (("receiver", receiver), ("transmitter", transmitter), ("bssid", bssid)):
        if len(addr) != 6:
            raise CraftError(f"{name} address of {len(addr)} bytes, 6 needed")
    if not 0 <= seq <= 4095:
        raise CraftError(f"sequence number {seq} is outside 0..4095")
    frame = _MGMT.pack(subtype << 4, 0, 0, receiver, transmitter, bssid, seq << 4) + body
    return frame + struct.pack("<I", zlib.crc32(frame)) if fcs else frame


def radiotap_probe_request(
    transmitter: bytes,
    seq: int,
    ssid: bytes,
    elements: bytes,
    rssi_dbm: int,
    freq_mhz: int,
    *,
    fcs: bool = False,
) -> bytes:
    """A probe request as a sensor records it: radiotap + 802.11 header + SSID element + `elements`.

    `ssid` is b"" for a wildcard probe; `elements` are the encoded elements that follow the SSID
    (see `element` and friends), in the order the device sends them.
    """
    body = element(EID_SSID, ssid) + elements
    frame = management_frame(
        SUBTYPE_PROBE_REQUEST, transmitter, seq, body, receiver=BROADCAST, bssid=BROADCAST, fcs=fcs
    )
    return radiotap_header(rssi_dbm, freq_mhz, fcs=fcs) + frame


def radiotap_beacon(
    bssid: bytes,
    seq: int,
    ssid: bytes,
    *,
    tsf_us: int,
    channel: int,
    rssi_dbm: int,
    interval_tu: int = 100,
    capability: int = 0x0411,
    fcs: bool = False,
) -> bytes:
    """A beacon from an access point: what a sensor hears besides probe requests (and must skip).

    `capability` 0x0411 = ESS | privacy | short slot time, a typical WPA2 access point.
    """
    body = (
        _BEACON_FIXED.pack(tsf_us & 0xFFFF_FFFF_FFFF_FFFF, interval_tu, capability)
        + element(EID_SSID, ssid)
        + rates_element((2, 4, 11, 22, 12, 18, 24, 36), basic=(2, 4, 11, 22))
        + ds_parameter_element(channel)
    )
    frame = management_frame(SUBTYPE_BEACON, bssid, seq, body, receiver=BROADCAST, bssid=bssid, fcs=fcs)
    return radiotap_header(rssi_dbm, channel_frequency(channel), fcs=fcs) + frame


# -- information elements -----------------------------------------------------------------------------


def element(eid: int, body: bytes) -> bytes:
    """One element: id, length, body."""
    if not 0 <= eid <= 255:
        raise CraftError(f"element id {eid} is outside 0..255")
    if len(body) > 255:
        raise CraftError(f"element {eid} body of {len(body)} bytes, at most 255 fit")
    return bytes((eid, len(body))) + body


def elements(items: Iterable[tuple[int, bytes]]) -> bytes:
    """Several elements, encoded in the order given."""
    return b"".join(element(eid, body) for eid, body in items)


def extension_element(ext_id: int, body: bytes) -> bytes:
    """An element of id 255 whose first body byte is the extension id (e.g. 35, HE capabilities)."""
    return element(EID_EXTENSION, bytes((ext_id,)) + body)


def vendor_element(oui: bytes, vendor_type: int, body: bytes = b"") -> bytes:
    """A vendor-specific element (221): 3-byte OUI, one type byte, then the vendor's body."""
    if len(oui) != 3:
        raise CraftError(f"OUI of {len(oui)} bytes, 3 needed")
    return element(EID_VENDOR, oui + bytes((vendor_type,)) + body)


def rates_element(rates_500kbps: Sequence[int], *, basic: Sequence[int] = ()) -> bytes:
    """Supported Rates (1): rates in units of 500 kb/s; those in `basic` get the 0x80 flag.

    At most 8 rates fit; the rest go in `extended_rates_element`.
    """
    if len(rates_500kbps) > 8:
        raise CraftError(f"{len(rates_500kbps)} supported rates, at most 8 fit (use extended rates)")
    return element(EID_SUPPORTED_RATES, bytes(r | 0x80 if r in basic else r for r in rates_500kbps))


def extended_rates_element(rates_500kbps: Sequence[int]) -> bytes:
    """Extended Supported Rates (50)."""
    return element(EID_EXTENDED_RATES, bytes(rates_500kbps))


def ds_parameter_element(channel: int) -> bytes:
    """DS Parameter Set (3): the channel the frame is sent on."""
    return element(EID_DS_PARAMETER, bytes((channel,)))


def ht_capabilities_element(info: int, ampdu: int, rx_mcs: bytes, *, ext: int = 0, txbf: int = 0) -> bytes:
    """HT Capabilities (45): 26 bytes; `rx_mcs` is the Rx MCS bitmask (1-10 bytes, zero padded to 16).

    E.g. info 0x402d (LDPC, short GI 20 MHz, SM power save disabled...), one spatial stream
    rx_mcs b"\\xff", two streams b"\\xff\\xff".
    """
    if len(rx_mcs) > 10:
        raise CraftError(f"Rx MCS bitmask of {len(rx_mcs)} bytes, at most 10")
    mcs = rx_mcs.ljust(16, b"\x00")
    return element(EID_HT_CAPABILITIES, struct.pack("<HB16sHIB", info, ampdu, mcs, ext, txbf, 0))


# Frames between a station and its access point (connected stations, issue #14): first frame-control byte.
FC_DATA, FC_NULL, FC_QOS_DATA, FC_QOS_NULL = 0x08, 0x48, 0x88, 0xC8
_TO_DS, _FROM_DS, _PROTECTED = 0x01, 0x02, 0x40


def radiotap_station_frame(
    fc0: int,
    station: bytes,
    bssid: bytes,
    seq: int,
    rssi_dbm: int,
    freq_mhz: int,
    *,
    uplink: bool = True,
    payload: bytes = b"",
) -> bytes:
    """A data-type frame (data, null, QoS data, QoS null) between `station` and the access point `bssid`.

    Uplink: ToDS, addr1 the BSSID, addr2 the station; downlink: FromDS, addr1 the station, addr2 the
    BSSID. addr3 is the far end (here the BSSID). QoS kinds carry a 2-byte QoS control field; a
    `payload` is sent as a protected body (the sensor must never need it).
    """
    for name, addr in (("station", station), ("bssid", bssid)):
        if len(addr) != 6:
            raise CraftError(f"{name} address of {len(addr)} bytes, 6 needed")
    if fc0 not in (FC_DATA, FC_NULL, FC_QOS_DATA, FC_QOS_NULL):
        raise CraftError(f"frame-control byte {fc0:#04x} is not a data, null, QoS data or QoS null frame")
    if not 0 <= seq <= 4095:
        raise CraftError(f"sequence number {seq} is outside 0..4095")
    flags = (_TO_DS if uplink else _FROM_DS) | (_PROTECTED if payload else 0)
    addr1, addr2 = (bssid, station) if uplink else (station, bssid)
    frame = _MGMT.pack(fc0, flags, 0, addr1, addr2, bssid, seq << 4)
    if fc0 & 0x80:  # QoS subtypes
        frame += b"\x00\x00"
    return radiotap_header(rssi_dbm, freq_mhz) + frame + payload
