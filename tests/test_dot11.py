"""802.11 headers and elements, the fingerprint policy, Prism/AVS headers, and the decoder's
policy for frames that are not clean probe requests (bare 802.11, FCS guessing, truncated IEs)."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path

import pytest

from sensor.decode import dot11, prism
from sensor.decode.capture import read_capture
from sensor.decode.decoder import FrameDecoder
from sensor.decode.errors import Truncated
from sensor.decode.frames import ProbeRequest

HEADER = bytes.fromhex(
    "40"  # frame control: version 0, type 0 (management), subtype 4 (probe request)
    "00"  # flags: none
    "0000"  # duration
    "ffffffffffff"  # addr1, receiver: broadcast
    "daa119633222"  # addr2, transmitter: 0xda has the locally administered bit (0x02) set
    "ffffffffffff"  # addr3, BSSID: broadcast
    "902b"  # seq_ctrl 0x2b90: sequence number 0x2b9 = 697, fragment 0
)
ELEMENTS = bytes.fromhex(
    "00"
    "04"
    "43616665"  # SSID "Cafe"
    "01"
    "04"
    "02040b16"  # supported rates 1, 2, 5.5, 11 Mb/s
    "03"
    "01"
    "06"  # DS parameter set: channel 6
    "2d"
    "02"
    "ef01"  # HT capabilities (shortened for the test)
    "dd"
    "05"
    "0050f2"
    "08"
    "00"  # vendor specific: OUI 00:50:f2 (Microsoft), type 8, payload 00
    "ff"
    "03"
    "23"
    "0102"  # extension element, extension id 35 (HE capabilities), body 01 02
)
PROBE = HEADER + ELEMENTS
IDS = (0, 1, 3, 45, 221, 255 * 256 + 35)


def _elements(*elements: tuple[int, bytes]) -> bytes:
    return b"".join(bytes([eid, len(body)]) + body for eid, body in elements)


def _with_fcs(frame: bytes) -> bytes:
    return frame + struct.pack("<I", zlib.crc32(frame))


# -- header and elements --------------------------------------------------------------------------


def test_the_header_gives_transmitter_sequence_number_and_randomized_bit() -> None:
    probe = FrameDecoder().decode(7, 105, PROBE)
    assert probe is not None
    assert (probe.ts_ns, probe.transmitter, probe.seq) == (7, bytes.fromhex("daa119633222"), 697)
    assert probe.randomized and probe.ssid == "Cafe" and probe.ie_ids == IDS
    assert dot11.SEQ_CTRL + 2 == dot11.HEADER_LEN  # the decoder reads the header by these offsets


def test_management_frame_with_ht_control_has_its_body_four_bytes_later() -> None:
    htc = bytes([0x40, 0x80]) + HEADER[2:] + b"\x00\x00\x00\x00"
    probe = FrameDecoder().decode(1, 105, htc + ELEMENTS)
    assert probe is not None and probe.ie_ids == IDS and probe.seq == 697


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "dot11_truncated"),
        (PROBE[:10], "dot11_truncated"),  # a probe request's header needs 24 bytes
        (bytes([0x40, 0x80]) + HEADER[2:] + b"\x00\x00", "dot11_truncated"),  # HT Control cut short
        (b"\x41" + PROBE[1:], "dot11_bad_version"),
    ],
)
def test_a_broken_header_is_counted_by_reason_not_raised(frame: bytes, reason: str) -> None:
    decoder = FrameDecoder()
    assert decoder.decode(1, 105, frame) is None
    assert decoder.stats.errors == {reason: 1} and decoder.stats.frames == 1


def test_frame_kind_table() -> None:
    assert dot11.FRAME_KIND[0x40] == "probe_req"
    assert dot11.FRAME_KIND[0x80] == "beacon"
    assert dot11.FRAME_KIND[0x50] == "probe_resp"
    assert dot11.FRAME_KIND[0xD4] == "control"  # ACK
    assert dot11.FRAME_KIND[0x88] == "data"  # QoS data
    assert dot11.FRAME_KIND[0x70] == "mgmt_reserved"
    assert dot11.FRAME_KIND[0x42] == dot11.BAD_VERSION


def test_elements_give_ssid_ordered_ids_and_a_16_hex_fingerprint() -> None:
    el = dot11.parse_elements(ELEMENTS)
    assert (el.ssid, el.ids, el.overrun, el.has_ssid) == ("Cafe", IDS, 0, True)
    assert len(el.fingerprint) == 16 and int(el.fingerprint, 16) >= 0


def test_non_utf8_ssid_is_decoded_with_replacement() -> None:
    assert dot11.parse_elements(_elements((0, b"caf\xe9"))).ssid == "caf\ufffd"


def test_truncated_last_element_keeps_the_ones_before_it() -> None:
    el = dot11.parse_elements(ELEMENTS + b"\x7f\x08\x00\x00")  # extended capabilities: 8 announced, 2 there
    assert (el.ids, el.overrun, el.has_ssid) == (IDS, 6, True)
    assert dot11.parse_elements(ELEMENTS + b"\x7f").overrun == 1  # half an element header


# -- fingerprint policy ---------------------------------------------------------------------------


def _fingerprint(*elements: tuple[int, bytes]) -> str:
    return dot11.parse_elements(_elements(*elements)).fingerprint


BASE = [
    (0, b"Cafe"),
    (1, b"\x02\x04\x0b\x16"),
    (3, b"\x06"),
    (45, b"\xef\x01"),
    (127, b"\x00\x00\x08\x04"),
    (221, b"\x00\x50\xf2\x08\x00\x11"),
    (255, b"\x23\x01\x02"),
    (255, b"\x02\x00\x17"),
]


def _replace(index: int, body: bytes) -> list[tuple[int, bytes]]:
    changed = list(BASE)
    changed[index] = (changed[index][0], body)
    return changed


@pytest.mark.parametrize(
    ("what", "elements"),
    [
        ("another SSID", _replace(0, b"HomeNetwork")),
        ("a wildcard SSID", _replace(0, b"")),
        ("another DS channel", _replace(2, b"\x0b")),
        ("another vendor payload, same OUI and type", _replace(5, b"\x00\x50\xf2\x08\x99\x98\x97")),
        ("another unlisted extension element body (FILS request parameters)", _replace(7, b"\x02\x00\x2a")),
    ],
)
def test_fingerprint_ignores_what_changes_between_probes_of_one_phone(
    what: str, elements: list[tuple[int, bytes]]
) -> None:
    assert _fingerprint(*elements) == _fingerprint(*BASE), what


@pytest.mark.parametrize(
    ("what", "elements"),
    [
        ("other supported rates", _replace(1, b"\x0c\x12\x18\x24")),
        ("other HT capabilities", _replace(3, b"\x2d\x40")),
        ("other extended capabilities", _replace(4, b"\x00\x00\x08\x80")),
        ("another vendor type", _replace(5, b"\x00\x50\xf2\x04\x00\x11")),
        ("other HE capabilities", _replace(6, b"\x23\x09\x09")),
        ("another element order", [BASE[0], BASE[2], BASE[1], *BASE[3:]]),
        ("one element less", BASE[:-1]),
    ],
)
def test_fingerprint_tells_apart_different_capabilities(what: str, elements: list[tuple[int, bytes]]) -> None:
    assert _fingerprint(*elements) != _fingerprint(*BASE), what


# -- channels -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("freq", "channel"),
    [
        (2412, 1),
        (2437, 6),
        (2472, 13),
        (2484, 14),
        (5180, 36),
        (5825, 165),
        (5955, 1),
        (4920, 184),
        (2400, None),
    ],
)
def test_freq_to_channel(freq: int, channel: int | None) -> None:
    assert dot11.freq_to_channel(freq) == channel


def test_channel_to_freq() -> None:
    assert [dot11.channel_to_freq(c) for c in (1, 6, 13, 14, 36, 0, 200)] == [
        2412,
        2437,
        2472,
        2484,
        5180,
        None,
        None,
    ]


# -- Prism and AVS (link type 119) ----------------------------------------------------------------


def _prism_item(did: int, status: int, value: int) -> bytes:
    return struct.pack("<IHHi", did, status, 4, value)


PRISM = (
    struct.pack("<II", 0x41, 144)  # msgcode 0x41, msglen 144
    + b"wlan0".ljust(16, b"\0")  # device name
    + _prism_item(0x1041, 0, 16873456)  # host time
    + _prism_item(0x2041, 0, 76595699)  # MAC time
    + _prism_item(0x3041, 0, 6)  # channel 6, supplied
    + _prism_item(0x4041, 0, -87)  # RSSI -87, supplied
    + _prism_item(0x5041, 0, 45)  # signal quality
    + _prism_item(0x6041, 0, 2)  # signal
    + _prism_item(0x7041, 1, 0)  # noise: not supplied
    + _prism_item(0x8041, 0, 2)  # rate (500 kb/s units)
    + _prism_item(0x9041, 1, 0)  # is tx: not supplied
    + _prism_item(0xA041, 0, len(PROBE))  # frame length
)

AVS = bytes.fromhex(
    "80211001"  # AVS version 1 magic
    "00000040"  # header length 64
    "0000000000000000"  # MAC time
    "0000000000000000"  # host time
    "00000004"  # PHY type
    "0000000b"  # channel 11
    "00000002"  # data rate
    "00000000"  # antenna
    "00000000"  # priority
    "00000002"  # SSI type 2: dBm
    "ffffffb5"  # SSI signal -75
    "ffffffa0"  # SSI noise
    "00000000"  # preamble
    "00000000"  # encoding
)


def test_prism_header_rssi_and_channel_from_their_dids() -> None:
    assert prism.parse(PRISM + PROBE) == prism.Prism(length=144, rssi_dbm=-87, channel=6)


def test_prism_value_not_supplied_is_none() -> None:
    unsupplied = PRISM.replace(_prism_item(0x3041, 0, 6), _prism_item(0x3041, 1, 0))
    assert prism.parse(unsupplied).channel is None


def test_big_endian_prism_header() -> None:
    swapped = (
        struct.pack(">II", 0x41, 48) + b"eth1".ljust(16, b"\0") + struct.pack(">IHHi", 0x4041, 0, 4, -70)
    )
    swapped += struct.pack(">IHHi", 0x3041, 0, 4, 1)
    assert prism.parse(swapped + PROBE) == prism.Prism(length=48, rssi_dbm=-70, channel=1)


def test_avs_header() -> None:
    assert prism.parse(AVS + PROBE) == prism.Prism(length=64, rssi_dbm=-75, channel=11)


def test_prism_errors() -> None:
    with pytest.raises(Truncated, match="prism_truncated: got 4, 8 needed"):
        prism.parse(PRISM[:4])
    with pytest.raises(Truncated, match="prism_truncated: got 100, 144 needed"):
        prism.parse(PRISM[:100])


def test_decoder_reads_prism_signal_and_channel() -> None:
    probe = FrameDecoder().decode(5, 119, PRISM + PROBE)
    assert probe is not None
    assert (probe.rssi_dbm, probe.channel, probe.freq_mhz, probe.ie_ids) == (-87, 6, 2437, IDS)


# -- the decoder's policy -------------------------------------------------------------------------


def test_bare_802_11_probe_request_has_no_radio_values() -> None:
    decoder = FrameDecoder()
    probe = decoder.decode(1_700_000_000_000_000_000, 105, PROBE)
    assert probe == ProbeRequest(
        ts_ns=1_700_000_000_000_000_000,
        transmitter=bytes.fromhex("daa119633222"),
        rssi_dbm=None,
        freq_mhz=None,
        channel=None,
        seq=697,
        ssid="Cafe",
        ie_ids=IDS,
        fingerprint=dot11.parse_elements(ELEMENTS).fingerprint,
        randomized=True,
    )
    assert decoder.stats.as_dict() == {
        "frames": 1,
        "probe_requests": 1,
        "connected": 0,
        "skipped": {},
        "errors": {},
        "anomalies": {},
    }


def test_decoded_probe_is_a_real_probe_request_value() -> None:
    # Immutable by its Final fields: tests/test_frames.py (mypy) and tests/test_compiled_build.py (run time).
    probe = FrameDecoder().decode(1, 105, PROBE)
    assert type(probe) is ProbeRequest
    assert probe == dataclasses.replace(probe) and hash(probe) == hash(dataclasses.replace(probe))


def test_globally_administered_address_is_not_randomized() -> None:
    universal = PROBE[:10] + bytes.fromhex("98f62104454a") + PROBE[16:]
    probe = FrameDecoder().decode(1, 105, universal)
    assert probe is not None and not probe.randomized


def test_an_fcs_nobody_announced_is_recognised_by_its_crc() -> None:
    decoder = FrameDecoder()
    probe = decoder.decode(1, 105, _with_fcs(PROBE))
    assert probe is not None and probe.ie_ids == IDS
    assert decoder.stats.anomalies == {"fcs_inferred": 1}


def test_an_fcs_that_looks_like_a_whole_element_is_recognised_too() -> None:
    # find a sequence number whose FCS reads as a complete 2-byte element (its second byte is 2)
    frame = next(
        f
        for seq in range(4096)
        if (f := _with_fcs(PROBE[:22] + struct.pack("<H", seq << 4) + ELEMENTS))[-3] == 2
    )
    assert dot11.parse_elements(frame[24:]).overrun == 0  # a naive walk takes the FCS for an element
    decoder = FrameDecoder()
    probe = decoder.decode(1, 105, frame)
    assert probe is not None and probe.ie_ids == IDS
    assert decoder.stats.anomalies == {"fcs_inferred": 1}


def test_a_real_short_last_element_is_kept() -> None:
    frame = PROBE + b"\xff\x02\x02\x00"  # extension 2 (FILS request parameters), one byte of body
    probe = FrameDecoder().decode(1, 105, frame)
    assert probe is not None and probe.ie_ids == (*IDS, 255 * 256 + 2)


def test_truncated_element_after_the_ssid_keeps_the_frame_and_counts_it() -> None:
    decoder = FrameDecoder()
    probe = decoder.decode(1, 105, PROBE + b"\x7f\x08\x00\x00")
    assert probe is not None and probe.ie_ids == IDS and probe.ssid == "Cafe"
    assert decoder.stats.anomalies == {"ie_truncated": 1}
    assert decoder.stats.errors == {}


def test_truncated_ssid_drops_the_frame_as_an_error() -> None:
    decoder = FrameDecoder()
    assert decoder.decode(1, 105, HEADER + b"\x00\x10Caf") is None
    assert decoder.stats.errors == {"ie_truncated": 1}


def test_other_frames_are_skipped_by_kind_and_everything_adds_up() -> None:
    decoder = FrameDecoder()
    frames = [
        PROBE,
        b"\x80" + PROBE[1:],  # beacon
        b"\x80" + PROBE[1:],  # beacon
        bytes.fromhex("d4000000ffffffffffff"),  # ACK: 10 bytes
        b"\x08" + PROBE[1:],  # data
        b"\x41" + PROBE[1:],  # protocol version 1
        PROBE[:20],  # cut in the header
        b"",  # nothing at all
    ]
    for frame in frames:
        decoder.decode(1, 105, frame)
    decoder.decode(1, 1, PROBE)  # Ethernet
    stats = decoder.stats
    assert stats.skipped == {"beacon": 2, "control": 1, "data": 1}
    assert stats.errors == {"dot11_bad_version": 1, "dot11_truncated": 2, "unsupported_linktype": 1}
    assert stats.probe_requests == 1
    assert stats.frames == 9


def test_results_stay_right_when_the_element_cache_churns() -> None:
    frames = [HEADER + _elements((0, f"net{i}".encode()), (1, b"\x02")) for i in range(40)] * 2
    small, large = FrameDecoder(element_cache_size=3), FrameDecoder()
    assert [small.decode(1, 105, f) for f in frames] == [large.decode(1, 105, f) for f in frames]
    assert [p.ssid for f in frames[:3] if (p := small.decode(1, 105, f))] == ["net0", "net1", "net2"]


@pytest.mark.realdata
def test_prism_capture_probe_requests_tshark_calls_malformed_are_kept(shared_data: Path) -> None:
    decoder = FrameDecoder()
    records = list(read_capture(shared_data / "captures" / "pypacker_packets_prism.pcap"))
    probes = [p for r in records if (p := decoder.decode(r.ts_ns, r.linktype, r.data))]
    # Their last 4 bytes are an FCS (its CRC matches): tshark reads them as a broken element.
    assert [(p.ssid, p.ie_ids, p.rssi_dbm, p.seq) for p in probes] == [
        ("SPP-AP", (0, 1, 50), -87, 938),
        ("", (0, 1, 50, 48), -88, 14),
    ]
    assert decoder.stats.anomalies == {"fcs_inferred": 2}
    assert decoder.stats.errors == {}
    assert decoder.stats.frames == len(records) == 80
