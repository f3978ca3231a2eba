"""Connected stations: frames between a station and a store network's access point, headers only.

Hex vectors commented field by field for each address reading of dot11's table, then the decoder
against scapy on the real aircrack captures (link type 105: data, null, QoS and management frames of
several stations of one network each), field by field.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from sensor.decode import dot11
from sensor.decode.capture import read_capture
from sensor.decode.decoder import FrameDecoder
from sensor.decode.frames import ConnectedFrame, ProbeRequest

AP = bytes.fromhex("b0b98a568dea")  # the access point of aircrack_n-02.cap
PHONE = bytes.fromhex("0a1b2c3d4e5f")  # a per-network (locally administered) station address
OTHER_AP = bytes.fromhex("8cdef9d0b461")  # the access point of aircrack_pmkid-not-recognized.cap
N02 = "captures/aircrack_n-02.cap"
PMKID = "captures/aircrack_pmkid-not-recognized.cap"

# QoS null, station -> AP, ToDS:
QOS_NULL_UP = (
    bytes([0xC8, 0x01])  # frame control: type 2 (data), subtype 12 (QoS null); flags ToDS
    + bytes([0x2C, 0x00])  # duration
    + AP  # addr1: receiver = BSSID
    + PHONE  # addr2: transmitter = the station
    + AP  # addr3: destination
    + bytes([0x50, 0x1C])  # seq_ctrl 0x1c50: sequence number 0x1c5 = 453, fragment 0
    + bytes([0x00, 0x00])  # QoS control
)
# Data, AP -> station, FromDS, with 8 bytes of CCMP header and 4 of payload the decoder must not need:
DATA_DOWN = (
    bytes([0x08, 0x42])  # type 2 subtype 0 (data); flags FromDS | protected
    + bytes([0x00, 0x00])
    + PHONE  # addr1: receiver = the station
    + AP  # addr2: transmitter = BSSID
    + bytes.fromhex("020000000001")  # addr3: source
    + bytes([0x10, 0x00])  # sequence number 1
    + bytes(8)  # CCMP header
    + b"\xde\xad\xbe\xef"  # (encrypted) payload
)
PS_POLL = (
    bytes([0xA4, 0x10])  # type 1 (control) subtype 10 (PS-Poll); flags power management
    + bytes([0x01, 0xC0])  # association id 1 (two top bits set)
    + AP  # addr1: BSSID
    + PHONE  # addr2: transmitter = the station
)
# Association response, AP -> station: management frames keep the BSSID in addr3 either way.
ASSOC_RESP = (
    bytes([0x10, 0x00])  # type 0 subtype 1
    + bytes([0x3A, 0x01])
    + PHONE  # addr1: the station
    + AP  # addr2: the access point
    + AP  # addr3: BSSID
    + bytes([0x20, 0x00])  # sequence number 2
    + bytes.fromhex("0104000001c0")  # capabilities, status 0, AID 1 (body: not read)
)


def decoder(*bssids: bytes) -> FrameDecoder:
    return FrameDecoder(store_bssids=bssids)


def test_a_stations_qos_null_to_a_store_ap_is_a_connected_frame_with_its_signal_and_sequence() -> None:
    got = decoder(AP).decode(7, 105, QOS_NULL_UP)
    assert got == ConnectedFrame(7, PHONE, AP, True, None, None, None, 453, "qos_null", True)


def test_an_ap_to_station_data_frame_names_the_receiver_and_says_the_ap_sent_it() -> None:
    d = decoder(AP)
    got = d.decode(1, 105, DATA_DOWN)
    assert isinstance(got, ConnectedFrame)
    assert (got.station, got.bssid, got.from_station, got.seq, got.kind) == (PHONE, AP, False, 1, "data")


def test_a_ps_poll_has_no_sequence_number() -> None:
    got = decoder(AP).decode(1, 105, PS_POLL)
    assert isinstance(got, ConnectedFrame)
    assert (got.station, got.from_station, got.seq, got.kind) == (PHONE, True, None, "ps_poll")


def test_an_association_response_is_read_from_addr3_and_its_receiver_is_the_station() -> None:
    got = decoder(AP).decode(1, 105, ASSOC_RESP)
    assert isinstance(got, ConnectedFrame)
    assert (got.station, got.from_station, got.seq, got.kind) == (PHONE, False, 2, "assoc_resp")


def test_frames_of_another_network_are_skipped_by_kind_and_never_read() -> None:
    d = decoder(OTHER_AP)
    assert [d.decode(1, 105, f) for f in (QOS_NULL_UP, DATA_DOWN, PS_POLL, ASSOC_RESP)] == [None] * 4
    assert d.stats.connected == 0 and d.stats.errors == {}
    assert d.stats.skipped == {"data": 2, "control": 1, "assoc_resp": 1}


def test_without_store_networks_nothing_is_a_connected_frame() -> None:
    d = FrameDecoder()
    assert d.decode(1, 105, QOS_NULL_UP) is None
    assert d.stats.skipped == {"data": 1}


def test_a_store_aps_broadcast_is_skipped_and_a_group_transmitter_is_malformed() -> None:
    d = decoder(AP)
    broadcast = DATA_DOWN[:4] + b"\xff" * 6 + DATA_DOWN[10:]
    group_sender = QOS_NULL_UP[:10] + b"\x01" + QOS_NULL_UP[11:]
    assert d.decode(1, 105, broadcast) is None and d.decode(2, 105, group_sender) is None
    assert d.stats.skipped == {"group_addressed": 1}
    assert d.stats.errors == {"station_group_sender": 1}


def test_a_store_frame_cut_inside_the_header_is_counted_truncated() -> None:
    d = decoder(AP)
    assert d.decode(1, 105, QOS_NULL_UP[:20]) is None  # BSSID there, sequence control not
    assert d.decode(2, 105, PS_POLL[:12]) is None  # the station address cut
    assert d.stats.errors == {"station_truncated": 2}
    assert d.stats.frames == 2


def test_only_the_header_is_read_a_snapped_frame_decodes_as_the_whole() -> None:
    whole = decoder(AP).decode(1, 105, DATA_DOWN)
    snapped = decoder(AP).decode(1, 105, DATA_DOWN[: dot11.STATION_SNAP])
    header_only = decoder(AP).decode(1, 105, DATA_DOWN[: dot11.HEADER_LEN])
    assert whole == snapped == header_only is not None


def test_probe_requests_decode_the_same_with_store_networks() -> None:
    from footfall_dev.craft import radiotap_probe_request

    frame = radiotap_probe_request(PHONE, 9, b"Shop", b"", -50, 2437)
    with_store, without = decoder(AP).decode(1, 127, frame), FrameDecoder().decode(1, 127, frame)
    assert isinstance(with_store, ProbeRequest) and with_store == without


# -- against scapy on the real captures ----------------------------------------------------------------------

scapy_dot11 = pytest.importorskip("scapy.layers.dot11")
from scapy.utils import PcapReader  # noqa: E402

_SCAPY_KINDS = {
    (2, 0): "data", (2, 4): "null", (2, 8): "qos_data", (2, 12): "qos_null", (1, 10): "ps_poll",
    (0, 11): "auth", (0, 0): "assoc_req", (0, 1): "assoc_resp", (0, 2): "reassoc_req", (0, 3): "reassoc_resp",
}  # fmt: skip


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def scapy_connected(pkt: object, ts_ns: int, bssids: set[bytes]) -> ConnectedFrame | None:
    """What scapy's dissection says the connected frame is, read through scapy's own fields."""
    d11 = pkt.getlayer(scapy_dot11.Dot11)  # type: ignore[attr-defined]
    kind = _SCAPY_KINDS.get((d11.type, d11.subtype))
    if kind is None:
        return None
    to_ds, from_ds = bool(int(d11.FCfield) & 1), bool(int(d11.FCfield) & 2)
    if kind == "ps_poll":
        bssid, station, up = d11.addr1, d11.addr2, True
    elif d11.type == 0:
        up = d11.addr2 != d11.addr3
        bssid, station = d11.addr3, d11.addr2 if up else d11.addr1
    elif to_ds and not from_ds:
        bssid, station, up = d11.addr1, d11.addr2, True
    elif from_ds and not to_ds:
        bssid, station, up = d11.addr2, d11.addr1, False
    else:
        return None
    if _mac(bssid) not in bssids or _mac(station)[0] & 1:
        return None
    seq = None if kind == "ps_poll" else d11.SC >> 4
    return ConnectedFrame(
        ts_ns, _mac(station), _mac(bssid), up, None, None, None, seq, kind, _mac(station)[0] & 2 != 0
    )


def compare_connected_with_scapy(path: Path, bssids: set[bytes], limit: int | None = None) -> int:
    """Decode `path` with both; assert they agree frame by frame; return the connected frames compared."""
    d = FrameDecoder(store_bssids=bssids)
    compared = 0
    with PcapReader(str(path)) as scapy_reader:
        pairs = itertools.islice(zip(read_capture(path), scapy_reader, strict=False), limit)
        for index, (record, pkt) in enumerate(pairs):
            ts_ns = int(pkt.time * 1_000_000_000)
            got = d.decode(record.ts_ns, record.linktype, record.data)
            want = scapy_connected(pkt, ts_ns, bssids)
            if want is None:
                assert not isinstance(got, ConnectedFrame), (path.name, index, got)
            else:
                assert got == want, (path.name, index)
                compared += 1
    assert d.stats.errors == {}, path.name
    assert compared == d.stats.connected
    return compared


@pytest.mark.realdata
def test_connected_frames_agree_with_scapy_on_every_frame_of_aircrack_n02(shared_data: Path) -> None:
    compared = compare_connected_with_scapy(shared_data / N02, {AP})
    # one station: 16 null, 4 QoS data, its authentication and (re)association both ways; the
    # access point's 81 broadcast data frames name no station
    assert compared == 28


@pytest.mark.realdata
def test_connected_frames_agree_with_scapy_on_the_pmkid_capture_sample(shared_data: Path) -> None:
    assert compare_connected_with_scapy(shared_data / PMKID, {OTHER_AP}, limit=1500) > 0


@pytest.mark.realdata
@pytest.mark.slow
def test_connected_frames_agree_with_scapy_on_every_frame_of_the_pmkid_capture(shared_data: Path) -> None:
    assert compare_connected_with_scapy(shared_data / PMKID, {OTHER_AP}) > 1000


@pytest.mark.realdata
def test_the_stations_of_one_capture_are_not_connected_to_the_others_network(shared_data: Path) -> None:
    d = FrameDecoder(store_bssids={OTHER_AP})
    got = [d.decode(r.ts_ns, r.linktype, r.data) for r in read_capture(shared_data / N02)]
    assert d.stats.connected == 0 and not any(isinstance(g, ConnectedFrame) for g in got)
    assert d.stats.probe_requests > 0  # probe requests pass as ever


@pytest.mark.realdata
def test_several_stations_are_found_connected_in_the_real_captures(shared_data: Path) -> None:
    stations: set[bytes] = set()
    for name, ap in ((N02, AP), (PMKID, OTHER_AP)):
        d = FrameDecoder(store_bssids={ap})
        for r in read_capture(shared_data / name):
            got = d.decode(r.ts_ns, r.linktype, r.data)
            if isinstance(got, ConnectedFrame) and got.from_station:
                stations.add(got.station)
    assert len(stations) >= 2, [s.hex(":") for s in stations]
