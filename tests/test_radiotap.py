"""Radiotap: the field table, extended present words, alignment, vendor namespaces, and what the
decoder does with the flags (FCS at end, bad FCS) and the signal of several antennas."""

from __future__ import annotations

import pytest

from sensor.decode import radiotap
from sensor.decode.decoder import FrameDecoder
from sensor.decode.errors import Malformed, Truncated

# A probe request (see tests/test_dot11.py for the same frame commented field by field).
PROBE = bytes.fromhex(
    "4000"
    "0000"
    "ffffffffffff"
    "daa119633222"
    "ffffffffffff"
    "902b"  # header, seq 697
    "000443616665"  # SSID "Cafe"
    "010402040b16"  # supported rates
)
FCS = bytes.fromhex("deadbeef")  # a stand-in: the decoder strips it on the radiotap flag's word

# The header of the first frame of fryza-lab/2022-11-22.pcap (an ESP32 sniffer).
FRYZA = bytes.fromhex(
    "00"  # version 0
    "00"  # pad
    "0e00"  # length 14
    "28080000"  # present 0x00000828: channel (3), dBm antenna signal (5), antenna (11)
    "7109"
    "8000"  # @8 channel: 2417 MHz, flags 0x0080 (2 GHz)
    "a8"  # @12 dBm antenna signal: -88
    "00"  # @13 antenna 0
)

# Linux mac80211 style: three present words (the 2nd and 3rd are per-antenna radiotap namespaces),
# a TSFT aligned to 8 and padding before the channel and the RX flags.
EXTENDED = bytes.fromhex(
    "00"
    "00"
    "2600"  # version 0, pad, length 38
    "2b4000a0"  # word 0 = 0xa000402b: tsft (0), flags (1), channel (3), dBm signal (5),
    #             rx flags (14), radiotap namespace next (29), another word (31)
    "200800a0"  # word 1 = 0xa0000820: dBm signal (5), antenna (11), namespace next, another word
    "20080000"  # word 2 = 0x00000820: dBm signal (5), antenna (11)
    "0102030405060708"  # @16 tsft (8-aligned)
    "10"  # @24 flags: 0x10 = FCS at end
    "00"  # @25 padding: the channel is 2-aligned
    "6c09"
    "a000"  # @26 channel 2412 MHz, flags 0x00a0
    "d3"  # @30 dBm signal -45: the combined one, the one to take
    "00"  # @31 padding: rx flags are 2-aligned
    "0000"  # @32 rx flags
    "d1"
    "00"  # @34 antenna 0: -47 dBm, antenna index 0
    "d4"
    "01"  # @36 antenna 1: -44 dBm, antenna index 1
)

# A vendor namespace before the fields we want: its skip length must be honoured.
VENDOR = bytes.fromhex(
    "00"
    "00"
    "2300"  # version 0, pad, length 35
    "020000c0"  # word 0 = 0xc0000002: flags (1), vendor namespace next (30), another word (31)
    "010000a0"  # word 1 (vendor's bitmap) = 0xa0000001: radiotap namespace next (29), another word
    "28000000"  # word 2 (radiotap again) = 0x00000028: channel (3), dBm signal (5)
    "00"  # @16 flags 0
    "00"  # @17 padding: the vendor namespace header is 2-aligned
    "001122"
    "01"
    "0500"  # @18 OUI 00:11:22, sub-namespace 1, skip length 5
    "aabbccddee"  # @24 five bytes of vendor data
    "00"  # @29 padding
    "3c14"
    "4001"  # @30 channel 5180 MHz, flags 0x0140 (5 GHz, OFDM)
    "c4"  # @34 dBm signal -60
)


def test_field_table_is_consistent() -> None:
    assert sorted(radiotap.FIELDS) == list(range(28))
    for bit, field in radiotap.FIELDS.items():
        assert field.bit == bit
        assert field.align in (1, 2, 4, 8), field
        assert field.size >= 1
    assert len({f.name for f in radiotap.FIELDS.values()}) == 28


def test_single_word_header_without_flags() -> None:
    assert radiotap.parse(FRYZA) == radiotap.Radiotap(length=14, flags=0, freq_mhz=2417, dbm_signal=-88)
    assert not radiotap.layout(FRYZA).has_flags


def test_extended_present_words_and_alignment_padding() -> None:
    rt = radiotap.parse(EXTENDED)
    assert rt == radiotap.Radiotap(length=38, flags=0x10, freq_mhz=2412, dbm_signal=-45)
    assert rt.fcs_at_end and not rt.bad_fcs
    assert radiotap.layout(EXTENDED).cacheable


def test_vendor_namespace_is_skipped_by_its_length() -> None:
    assert radiotap.parse(VENDOR) == radiotap.Radiotap(length=35, flags=0, freq_mhz=5180, dbm_signal=-60)
    assert not radiotap.layout(VENDOR).cacheable  # the skip length is data, not layout


def test_tlv_bit_stops_the_walk_and_says_what_it_missed() -> None:
    header = bytes.fromhex("00000c000200001000000000")  # flags, then TLVs (bit 28)
    lay = radiotap.layout(header)
    assert lay.incomplete and lay.has_flags
    assert radiotap.parse(header).dbm_signal is None


@pytest.mark.parametrize(
    ("header", "error", "message"),
    [
        (FRYZA[:6], Truncated, "radiotap_truncated: got 6, 8 needed"),
        (FRYZA[:12], Truncated, "radiotap_truncated: got 12, 14 needed"),  # length says 14
        (b"\x01" + FRYZA[1:], Malformed, "radiotap_bad_version: version 1, 0 expected"),
        (FRYZA[:2] + b"\x0c\x00" + FRYZA[4:], Truncated, "radiotap_truncated: got 12, 14 needed"),
        (EXTENDED[:2] + b"\x0c\x00" + EXTENDED[4:], Truncated, "radiotap_truncated: got 12, 16 needed"),
    ],
)
def test_malformed_headers_raise_typed_errors_with_numbers(
    header: bytes, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        radiotap.parse(header)
    assert str(info.value) == message


# -- what the decoder makes of it ------------------------------------------------------------------


def test_decoder_strips_the_fcs_the_flags_announce_and_takes_the_first_antenna_signal() -> None:
    decoder = FrameDecoder()
    probe = decoder.decode(7, 127, EXTENDED + PROBE + FCS)
    assert probe is not None
    assert (probe.rssi_dbm, probe.freq_mhz, probe.channel) == (-45, 2412, 1)
    assert probe.ie_ids == (0, 1)  # the FCS was not read as an element
    assert decoder.stats.anomalies == {}


def test_decoder_reuses_layouts_without_reusing_values() -> None:
    decoder = FrameDecoder()
    quieter = bytearray(EXTENDED)
    quieter[30] = 0xB0  # -80 dBm
    quieter[26:28] = (2437).to_bytes(2, "little")
    first = decoder.decode(1, 127, EXTENDED + PROBE + FCS)
    second = decoder.decode(2, 127, bytes(quieter) + PROBE + FCS)
    third = decoder.decode(3, 127, FRYZA + PROBE)
    assert first is not None and second is not None and third is not None
    assert [(p.rssi_dbm, p.freq_mhz, p.channel) for p in (first, second, third)] == [
        (-45, 2412, 1),
        (-80, 2437, 6),
        (-88, 2417, 2),
    ]


def test_decoder_handles_vendor_namespaces_every_time() -> None:
    decoder = FrameDecoder()
    for _ in range(3):
        probe = decoder.decode(1, 127, VENDOR + PROBE)
        assert probe is not None
        assert (probe.rssi_dbm, probe.freq_mhz, probe.channel) == (-60, 5180, 36)


def test_decoder_drops_frames_the_radio_flagged_with_a_bad_fcs() -> None:
    bad = bytearray(EXTENDED)
    bad[24] = 0x50  # FCS at end + failed FCS check
    decoder = FrameDecoder()
    assert decoder.decode(1, 127, bytes(bad) + PROBE + FCS) is None
    assert decoder.stats.errors == {"bad_fcs": 1}


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (FRYZA[:5], "radiotap_truncated"),
        (b"\x02" + FRYZA[1:] + PROBE, "radiotap_bad_version"),
        (FRYZA[:2] + b"\xff\x00" + FRYZA[4:] + PROBE[:10], "radiotap_truncated"),  # length past the end
        (FRYZA, "dot11_truncated"),  # nothing after the header
        (FRYZA + PROBE[:20], "dot11_truncated"),
    ],
)
def test_decoder_counts_broken_radiotap_frames_by_reason(frame: bytes, reason: str) -> None:
    decoder = FrameDecoder()
    assert decoder.decode(1, 127, frame) is None
    assert decoder.stats.errors == {reason: 1}
    assert decoder.stats.frames == 1


def test_decoder_counts_a_cached_layout_on_a_frame_too_short_for_it() -> None:
    decoder = FrameDecoder()
    assert decoder.decode(1, 127, EXTENDED + PROBE + FCS) is not None
    assert decoder.decode(2, 127, EXTENDED[:30]) is None  # same first 8 bytes, cut inside the header
    assert decoder.stats.errors == {"radiotap_truncated": 1}
