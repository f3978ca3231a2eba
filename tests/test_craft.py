"""The frame builders: byte-exact vectors, and scapy (an independent decoder) reading back every field."""

from __future__ import annotations

import struct
import zlib

import pytest
from footfall_dev.craft import (
    CraftError,
    channel_frequency,
    ds_parameter_element,
    element,
    extension_element,
    ht_capabilities_element,
    radiotap_beacon,
    radiotap_header,
    radiotap_probe_request,
    rates_element,
    vendor_element,
)
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11Elt, Dot11FCS, Dot11ProbeReq, RadioTap

TX = bytes.fromhex("da a1 19 00 00 01")


def element_ids(body: bytes) -> list[int]:
    ids, i = [], 0
    while i + 2 <= len(body):
        ids.append(body[i])
        i += 2 + body[i + 1]
    assert i == len(body), "elements must tile the body exactly"
    return ids


def scapy_ids(frame: RadioTap) -> list[int]:
    ids, elt = [], frame.getlayer(Dot11Elt)
    while isinstance(elt, Dot11Elt):
        ids.append(elt.ID)
        elt = elt.payload
    return ids


def test_radiotap_header_is_the_documented_15_bytes_with_the_channel_padded_to_even() -> None:
    assert radiotap_header(-61, 2437) == bytes.fromhex(
        "00"  # version 0
        "00"  # pad
        "0f00"  # length 15, little endian
        "2a000000"  # present: Flags (bit 1) | Channel (bit 3) | dBm antenna signal (bit 5)
        "00"  # Flags: no FCS
        "00"  # pad: Channel starts on an even offset
        "8509"  # 2437 MHz
        "a000"  # channel flags: 2 GHz (0x80) | CCK (0x20)
        "c3"  # -61 dBm as a signed byte
    )


def test_probe_request_vector_field_by_field() -> None:
    frame = radiotap_probe_request(TX, 0x123, b"ab", ds_parameter_element(6), -40, 2437)
    assert frame[15:] == bytes.fromhex(
        "4000"  # frame control: management, subtype 4 (probe request), no flags
        "0000"  # duration
        "ffffffffffff"  # addr1: broadcast
        "daa119000001"  # addr2: the transmitter
        "ffffffffffff"  # addr3: wildcard BSSID
        "3012"  # sequence control: seq 0x123 << 4, fragment 0, little endian
        "00026162"  # SSID element "ab"
        "030106"  # DS Parameter Set: channel 6
    )


def test_fcs_flag_and_trailer_are_the_crc32_of_the_80211_frame() -> None:
    frame = radiotap_probe_request(TX, 7, b"", b"", -50, 2412, fcs=True)
    assert frame[8] == 0x10
    dot11 = frame[15:-4]
    assert struct.unpack("<I", frame[-4:])[0] == zlib.crc32(dot11)
    parsed = RadioTap(frame)
    assert parsed.haslayer(Dot11FCS)
    # scapy computes the CRC itself: an independent check of ours
    assert parsed[Dot11FCS].compute_fcs(dot11) == frame[-4:]
    assert parsed[Dot11FCS].fcs == struct.unpack("<I", frame[-4:])[0]


def test_5ghz_channels_carry_the_5ghz_ofdm_flags() -> None:
    header = radiotap_header(-70, channel_frequency(36))
    assert struct.unpack_from("<HH", header, 10) == (5180, 0x0140)


@given(
    transmitter=st.binary(min_size=6, max_size=6),
    seq=st.integers(0, 4095),
    ssid=st.binary(max_size=32),
    rssi=st.integers(-100, -10),
    channel=st.sampled_from([1, 6, 11, 13, 36, 149]),
    fcs=st.booleans(),
)
def test_scapy_reads_back_every_crafted_field(
    transmitter: bytes, seq: int, ssid: bytes, rssi: int, channel: int, fcs: bool
) -> None:
    elements = rates_element((2, 4, 11, 22), basic=(2, 4)) + ds_parameter_element(channel)
    elements += vendor_element(b"\x00\x50\xf2", 8, b"\x00\x26\x00") + extension_element(35, b"\x01" * 20)
    frame = RadioTap(
        radiotap_probe_request(transmitter, seq, ssid, elements, rssi, channel_frequency(channel), fcs=fcs)
    )
    assert frame.haslayer(Dot11ProbeReq)
    assert frame.dBm_AntSignal == rssi
    assert frame.ChannelFrequency == channel_frequency(channel)
    dot11 = frame[Dot11FCS] if fcs else frame[Dot11]
    assert bytes.fromhex(dot11.addr2.replace(":", "")) == transmitter
    assert seq == dot11.SC >> 4
    assert frame[Dot11Elt].ID == 0 and frame[Dot11Elt].info == ssid
    assert scapy_ids(frame) == [0, 1, 3, 221, 255]


def test_beacon_is_a_beacon_to_scapy_with_its_ssid_and_channel() -> None:
    frame = RadioTap(radiotap_beacon(TX, 9, b"Store-Guest", tsf_us=123456, channel=6, rssi_dbm=-45))
    assert frame.haslayer(Dot11Beacon)
    assert frame[Dot11Beacon].timestamp == 123456
    assert frame[Dot11Elt].info == b"Store-Guest"
    assert frame.ChannelFrequency == 2437
    assert scapy_ids(frame) == [0, 1, 3]


def test_element_helpers_encode_the_standard_layouts() -> None:
    assert rates_element((2, 4, 11, 22), basic=(2, 4)) == bytes.fromhex("01 04 82 84 0b 16")
    ht = ht_capabilities_element(0x402D, 0x17, b"\xff")
    assert ht[:2] == b"\x2d\x1a" and ht[2:4] == b"\x2d\x40" and ht[4] == 0x17 and ht[5] == 0xFF
    assert vendor_element(bytes.fromhex("506f9a"), 0x16, b"\x01") == bytes.fromhex("dd 05 50 6f 9a 16 01")
    assert extension_element(35, b"\xaa") == bytes.fromhex("ff 02 23 aa")
    assert element_ids(ht + rates_element((2,)) + ds_parameter_element(1)) == [45, 1, 3]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: radiotap_probe_request(TX, 4096, b"", b"", -40, 2412),
            "sequence number 4096 is outside 0..4095",
        ),
        (
            lambda: radiotap_probe_request(TX[:5], 1, b"", b"", -40, 2412),
            "transmitter address of 5 bytes, 6 needed",
        ),
        (lambda: radiotap_probe_request(TX, 1, b"", b"", -200, 2412), "rssi -200 dBm does not fit"),
        (lambda: radiotap_probe_request(TX, 1, b"", b"", -40, 900), "frequency 900 MHz is outside"),
        (lambda: element(0, b"x" * 256), "body of 256 bytes, at most 255 fit"),
        (lambda: rates_element(tuple(range(2, 20, 2))), "9 supported rates, at most 8 fit"),
        (lambda: channel_frequency(15), "channel 15 is neither"),
    ],
)
def test_impossible_arguments_raise_errors_that_name_the_value(build: object, message: str) -> None:
    with pytest.raises(CraftError, match=message):
        build()  # type: ignore[operator]


def test_the_pipelines_decoder_reads_crafted_frames_like_scapy() -> None:
    decode = pytest.importorskip("sensor.decode.decoder")
    elements = rates_element((2, 4, 11, 22)) + ds_parameter_element(11) + extension_element(35, b"\x01" * 8)
    for fcs in (False, True):
        frame = radiotap_probe_request(TX, 77, b"Livebox-1234", elements, -66, 2462, fcs=fcs)
        probe = decode.FrameDecoder().decode(1_000, 127, frame)
        assert probe is not None
        assert (probe.transmitter, probe.seq, probe.ssid, probe.rssi_dbm, probe.freq_mhz, probe.channel) == (
            TX,
            77,
            "Livebox-1234",
            -66,
            2462,
            11,
        )
        assert probe.ie_ids == (0, 1, 3, 255 * 256 + 35)
        assert probe.randomized  # 0xda: locally administered bit set
