"""Capture files: pcap in both byte orders and resolutions, pcapng, truncation, errors, writing, merging."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import pytest

from sensor.decode.capture import CaptureError, PcapWriter, iter_capture_bytes, merge_captures, read_capture
from sensor.decode.frames import CaptureRecord

FRAME_A = bytes.fromhex("40000000ffffffffffff")  # any payload: the reader does not look inside
FRAME_B = bytes.fromhex("8000")

# A little-endian, microsecond pcap with two records, written out field by field.
PCAP_LE_US = bytes.fromhex(
    "d4c3b2a1"  # magic a1b2c3d4 read little-endian: microsecond timestamps
    "0200"
    "0400"  # version 2.4
    "00000000"  # thiszone
    "00000000"  # sigfigs
    "ffff0000"  # snaplen 65535
    "7f000000"  # network 127 (radiotap)
    # record 1
    "9a9e7c63"  # ts_sec 1669111450
    "adcc0a00"  # ts_usec 707757
    "0a000000"  # incl_len 10
    "0c000000"  # orig_len 12 (snapped)
    "40000000ffffffffffff"  # 10 bytes of data
    # record 2
    "9b9e7c63"  # ts_sec 1669111451
    "00000000"  # ts_usec 0
    "02000000"  # incl_len 2
    "02000000"  # orig_len 2
    "8000"
)

# The same capture big-endian with nanosecond timestamps (magic a1b23c4d written big-endian).
PCAP_BE_NS = bytes.fromhex(
    "a1b23c4d"  # magic: nanosecond resolution, big-endian
    "0002"
    "0004"  # version 2.4
    "00000000"  # thiszone
    "00000000"  # sigfigs
    "00040000"  # snaplen 262144
    "00000069"  # network 105 (bare 802.11)
    # record 1
    "637c9e9a"  # ts_sec 1669111450
    "2a2fcac5"  # ts_nsec 707775173
    "0000000a"  # incl_len 10
    "0000000a"  # orig_len 10
    "40000000ffffffffffff"
)


def test_little_endian_microsecond_pcap_yields_records_with_ns_timestamps() -> None:
    reader = iter_capture_bytes(PCAP_LE_US)
    records = list(reader)
    assert records == [
        CaptureRecord(1669111450_707757000, 127, FRAME_A, 12),
        CaptureRecord(1669111451_000000000, 127, FRAME_B, 2),
    ]
    assert (reader.format, reader.records, reader.truncated_tail) == ("pcap", 2, False)


def test_big_endian_nanosecond_pcap_keeps_nanoseconds() -> None:
    assert list(iter_capture_bytes(PCAP_BE_NS)) == [CaptureRecord(1669111450_707775173, 105, FRAME_A, 10)]


def test_linktype_ignores_the_fcs_hint_bits_of_the_network_field() -> None:
    with_hint = PCAP_LE_US[:20] + struct.pack("<I", 0x1000_0000 | 127) + PCAP_LE_US[24:]
    assert {r.linktype for r in iter_capture_bytes(with_hint)} == {127}


def test_a_cut_last_record_stops_iteration_and_is_flagged() -> None:
    for cut in (1, 2, 12, 17):  # record 2 is 16 header bytes + 2 data bytes: cut in data, in header
        reader = iter_capture_bytes(PCAP_LE_US[:-cut])
        assert list(reader) == [CaptureRecord(1669111450_707757000, 127, FRAME_A, 12)]
        assert reader.truncated_tail, cut


def test_bad_magic_names_the_file_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "notes.pcap"
    path.write_bytes(b"hello, this is not a capture at all")
    with pytest.raises(CaptureError, match=r"notes\.pcap: at byte 0: bad magic 0x68656c6c") as info:
        read_capture(path)
    assert info.value.offset == 0
    assert info.value.source == str(path)


def test_truncated_global_header_says_how_many_bytes_were_there(tmp_path: Path) -> None:
    path = tmp_path / "short.pcap"
    path.write_bytes(PCAP_LE_US[:10])
    with pytest.raises(
        CaptureError, match=r"short\.pcap: at byte 0: truncated global header: got 10 bytes, 24"
    ):
        read_capture(path)


def test_empty_file_is_a_capture_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    with pytest.raises(CaptureError, match=r"empty\.pcap: at byte 0: truncated header: got 0 bytes"):
        read_capture(path)


def test_absurd_record_length_names_the_record_offset(tmp_path: Path) -> None:
    second = 24 + 16 + 10  # offset of record 2
    broken = bytearray(PCAP_LE_US)
    struct.pack_into("<I", broken, second + 8, 0x7FFF_FFFF)
    path = tmp_path / "absurd.pcap"
    path.write_bytes(bytes(broken))
    reader = read_capture(path)
    assert next(reader).data == FRAME_A  # the good record before it is still delivered
    with pytest.raises(
        CaptureError, match=rf"absurd\.pcap: at byte {second}: record length 2147483647 exceeds"
    ):
        next(reader)


# -- pcapng ---------------------------------------------------------------------------------------


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _pcapng(order: str) -> bytes:
    """SHB, two interfaces (radiotap in ns, bare 802.11 in the default µs), an unknown block,
    an EPB on each interface, and an SPB (which belongs to interface 0 and has no timestamp)."""
    shb = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb_ns = _block(
        order,
        1,
        struct.pack(order + "HHI", 127, 0, 0)  # linktype 127, reserved, snaplen 0 (none)
        + _option(order, 9, b"\x09")  # if_tsresol = 10^-9
        + _option(order, 0, b""),  # opt_endofopt
    )
    idb_us = _block(order, 1, struct.pack(order + "HHI", 105, 0, 65535))
    unknown = _block(order, 0x0BAD, b"custom block the reader must skip")
    ts_a = 1669111450_707757123  # in ns on interface 0
    epb_0 = _block(
        order,
        6,
        struct.pack(order + "5I", 0, ts_a >> 32, ts_a & 0xFFFFFFFF, len(FRAME_A), 20) + FRAME_A,
    )
    ts_b = 1669111451_000001  # in µs on interface 1
    epb_1 = _block(
        order,
        6,
        struct.pack(order + "5I", 1, ts_b >> 32, ts_b & 0xFFFFFFFF, len(FRAME_B), 2) + FRAME_B,
    )
    spb = _block(order, 3, struct.pack(order + "I", len(FRAME_B)) + FRAME_B)
    return shb + idb_ns + unknown + idb_us + epb_0 + epb_1 + spb


PCAPNG_EXPECTED = [
    CaptureRecord(1669111450_707757123, 127, FRAME_A, 20),
    CaptureRecord(1669111451_000001000, 105, FRAME_B, 2),
    CaptureRecord(1669111451_000001000, 127, FRAME_B, 2),  # SPB: interface 0, previous timestamp
]


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_reads_interfaces_resolutions_and_packet_blocks_in_either_byte_order(order: str) -> None:
    reader = iter_capture_bytes(_pcapng(order))
    assert list(reader) == PCAPNG_EXPECTED
    assert (reader.format, reader.records, reader.truncated_tail) == ("pcapng", 3, False)


def test_pcapng_power_of_two_resolution_and_offset() -> None:
    order = "<"
    shb = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(
        order,
        1,
        struct.pack(order + "HHI", 127, 0, 0)
        + _option(order, 9, b"\x8a")  # if_tsresol = 2^-10 s
        + _option(order, 14, struct.pack("<q", 100)),  # if_tsoffset = 100 s
    )
    epb = _block(order, 6, struct.pack(order + "5I", 0, 0, 3 * 1024 + 512, 2, 2) + FRAME_B)
    assert [r.ts_ns for r in iter_capture_bytes(shb + idb + epb)] == [103_500_000_000]


def test_a_second_section_starts_afresh_with_its_own_byte_order() -> None:
    both = _pcapng("<") + _pcapng(">")
    assert list(iter_capture_bytes(both)) == PCAPNG_EXPECTED * 2


def test_pcapng_cut_in_its_last_block_is_flagged_not_fatal() -> None:
    data = _pcapng("<")
    reader = iter_capture_bytes(data[:-6])
    assert list(reader) == PCAPNG_EXPECTED[:2]
    assert reader.truncated_tail


def test_pcapng_bad_block_length_names_its_offset() -> None:
    data = bytearray(_pcapng("<"))
    shb_len = struct.unpack_from("<I", data, 4)[0]
    struct.pack_into("<I", data, shb_len + 4, 13)  # the first IDB's length: not a multiple of 4
    with pytest.raises(CaptureError, match=rf"<bytes>: at byte {shb_len}: bad block length 13"):
        list(iter_capture_bytes(bytes(data)))


def test_pcapng_packet_on_an_undeclared_interface_is_an_error() -> None:
    order = "<"
    shb = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    epb = _block(order, 6, struct.pack(order + "5I", 2, 0, 0, 2, 2) + FRAME_B)
    with pytest.raises(CaptureError, match=r"at byte 28: packet names interface 2, the section declared 0"):
        list(iter_capture_bytes(shb + epb))


def test_pcapng_bad_byte_order_magic_is_an_error() -> None:
    shb = _block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0xDEADBEEF, 1, 0, -1))
    with pytest.raises(CaptureError, match=r"at byte 8: bad pcapng byte-order magic 0xdeadbeef"):
        iter_capture_bytes(shb)


# -- writing and merging -------------------------------------------------------------------------


@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_writer_round_trips_through_the_reader(tmp_path: Path, nanosecond: bool) -> None:
    path = tmp_path / "out.pcap"
    with PcapWriter(path, 127, nanosecond=nanosecond) as writer:
        writer.write(1_700_000_000_123_456_789, FRAME_A)
        writer.write(1_700_000_001_000_000_000, FRAME_B, orig_len=40)
    frac = 123_456_789 if nanosecond else 123_456_000
    assert list(read_capture(path)) == [
        CaptureRecord(1_700_000_000_000_000_000 + frac, 127, FRAME_A, len(FRAME_A)),
        CaptureRecord(1_700_000_001_000_000_000, 127, FRAME_B, 40),
    ]


def test_merge_captures_interleaves_files_by_timestamp_keeping_ties_in_file_order(tmp_path: Path) -> None:
    plan = {"a.pcap": [1, 5, 9], "b.pcap": [2, 5, 6], "c.pcap": []}
    for name, stamps in plan.items():
        with PcapWriter(tmp_path / name, 105, nanosecond=True) as writer:
            for ts in stamps:
                writer.write(ts, name.encode())
    merged = [(r.ts_ns, r.data) for r in merge_captures(tmp_path / name for name in plan)]
    assert merged == [
        (1, b"a.pcap"),
        (2, b"b.pcap"),
        (5, b"a.pcap"),
        (5, b"b.pcap"),
        (6, b"b.pcap"),
        (9, b"a.pcap"),
    ]


# -- real captures --------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_capture_cut_mid_record_yields_every_whole_record(shared_data: Path) -> None:
    reader = read_capture(shared_data / "captures" / "aircrack_pmkid-not-recognized.cap")
    count = sum(1 for _ in reader)
    assert (count, reader.records, reader.truncated_tail) == (20056, 20056, True)


@pytest.mark.realdata
def test_real_lab_days_read_whole(shared_data: Path) -> None:
    for path in sorted((shared_data / "fryza-lab").glob("*.pcap")):
        reader = read_capture(path)
        records = list(reader)
        assert records and not reader.truncated_tail, path
        assert {r.linktype for r in records} == {127}
        assert all(a.ts_ns <= b.ts_ns for a, b in itertools.pairwise(records)), path


def _resident_bytes() -> int:
    """This process's resident set (file-backed pages of a mapping included), from /proc/self/statm."""
    import mmap

    return int(Path("/proc/self/statm").read_text().split()[1]) * mmap.PAGESIZE


def test_reading_a_large_capture_hands_back_the_pages_it_has_read(tmp_path: Path) -> None:
    # A day's capture can be larger than a Pi's free memory: the mapped file's pages must not pile
    # up in the process as the reader walks it. Freshly written, the file is in the page cache, so
    # every page the reader touches (and keeps mapped) counts in the resident set at once.
    import mmap

    statm = Path("/proc/self/statm")
    if not statm.exists() or not hasattr(mmap, "MADV_DONTNEED"):
        pytest.skip("needs Linux: /proc/self/statm and madvise(MADV_DONTNEED)")
    path = tmp_path / "large.pcap"
    payload = bytes(range(256)) * 4  # 1 KiB a record
    records = 30_000
    with PcapWriter(path, 127) as writer:
        for i in range(records):
            writer.write(1_700_000_000_000_000_000 + i * 1_000_000, payload)
    size = path.stat().st_size
    assert size > 30_000_000

    reader = read_capture(path)
    before = _resident_bytes()
    peak = before
    seen = 0
    for _ in reader:
        seen += 1
        if seen % 500 == 0:
            peak = max(peak, _resident_bytes())
    assert seen == records and not reader.truncated_tail
    growth = peak - before
    assert growth < size // 4, f"resident set grew {growth} bytes reading a {size}-byte capture"


@pytest.mark.parametrize("order", ["<", ">"])
def test_a_chunks_records_are_the_same_read_byte_by_byte_or_by_struct(order: str) -> None:
    # The compiled build reads record headers byte by byte, the interpreted one with struct (see
    # capture._BYTE_READS): both ways give the same records and stop at the same place, in either byte order.
    from sensor.decode.capture import _pcap_chunk

    records = [(1_700_000_000 + i, 123_456 * i % 1_000_000, bytes(range(i % 7 + 1))) for i in range(50)]
    chunk = b"".join(struct.pack(order + "IIII", s, f, len(d), len(d) + 3) + d for s, f, d in records)
    chunk += struct.pack(order + "II", 1, 2)  # half a record header: the chunk ends inside it
    unpack = struct.Struct(order + "IIII").unpack_from
    by_bytes = _pcap_chunk(chunk, order == ">", 1000, 127, 262_144)
    by_struct = _pcap_chunk(chunk, order == ">", 1000, 127, 262_144, unpack)
    assert by_bytes == by_struct
    assert [(r.ts_ns, r.data, r.orig_len) for r in by_bytes[0]] == [
        (s * 10**9 + f * 1000, d, len(d) + 3) for s, f, d in records
    ]
    assert by_bytes[1:] == (len(chunk) - 8, 0, 0)
    long = struct.pack(order + "IIII", 1, 0, 300_000, 300_000)  # over the limit: its length is said
    assert _pcap_chunk(long, order == ">", 1000, 127, 262_144)[3] == 300_000
    assert _pcap_chunk(long, order == ">", 1000, 127, 262_144, unpack)[3] == 300_000
