"""Property tests: no mutation or truncation of a frame (or capture) makes the parsers crash.

The example count is modest so the suite stays quick; set FOOTFALL_FUZZ_EXAMPLES to scale it up.
"""

from __future__ import annotations

import os
import struct
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensor.decode.capture import CaptureError, iter_capture_bytes
from sensor.decode.decoder import FrameDecoder
from sensor.decode.frames import ProbeRequest

EXAMPLES = int(os.environ.get("FOOTFALL_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PROBE = bytes.fromhex(
    "4000"
    "0000"
    "ffffffffffff"
    "daa119633222"
    "ffffffffffff"
    "902b"
    "000443616665"
    "010402040b16"
    "030106"
    "2d02ef01"
    "dd050050f20800"
    "ff03230102"
)
RADIOTAP_SIMPLE = bytes.fromhex("00000e002808000071098000a800")
RADIOTAP_EXTENDED = bytes.fromhex(
    "000026002b4000a0200800a020080000010203040506070810006c09a000d3000000d100d401"
)
RADIOTAP_VENDOR = bytes.fromhex("00002300020000c0010000a0280000000000001122010500aabbccddee003c144001c4")
PRISM = (
    struct.pack("<II", 0x41, 48)
    + b"eth1".ljust(16, b"\0")
    + struct.pack("<IHHiIHHi", 0x4041, 0, 4, -70, 0x3041, 0, 4, 6)
)

SEEDS = [
    (127, RADIOTAP_SIMPLE + PROBE),
    (127, RADIOTAP_EXTENDED + PROBE + struct.pack("<I", zlib.crc32(PROBE))),
    (127, RADIOTAP_VENDOR + PROBE),
    (105, PROBE),
    (105, PROBE + struct.pack("<I", zlib.crc32(PROBE))),
    (119, PRISM + PROBE),
]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[int, bytes]:
    linktype, frame = draw(st.sampled_from(SEEDS))
    data = bytearray(frame)
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[at] = draw(st.sampled_from([0x00, 0x02, 0x04, 0x10, 0x40, 0x80, 0xFF]))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at : at + draw(st.integers(1, 8))]
    cut = draw(st.integers(0, len(data)))
    if draw(st.booleans()):
        data = data[:cut]
    return linktype, bytes(data)


def _check(decoder: FrameDecoder, result: ProbeRequest | None) -> None:
    if result is not None:
        assert type(result) is ProbeRequest
        assert len(result.transmitter) == 6
        assert 0 <= result.seq < 4096
        assert len(result.fingerprint) == 16
        assert all(isinstance(i, int) for i in result.ie_ids)
    stats = decoder.stats
    assert stats.frames == stats.probe_requests + sum(stats.skipped.values()) + sum(stats.errors.values())


@FUZZ
@given(mutated())
def test_mutated_frames_never_raise_out_of_decode(sample: tuple[int, bytes]) -> None:
    linktype, data = sample
    decoder = FrameDecoder()
    _check(decoder, decoder.decode(1, linktype, data))
    # the same frame again goes through the caches, and must give the same answer
    assert decoder.decode(1, linktype, data) == FrameDecoder().decode(1, linktype, data)
    assert decoder.stats.frames == 2


@FUZZ
@given(st.sampled_from([105, 119, 127, 1, 0]), st.binary(max_size=300))
def test_random_bytes_never_raise_out_of_decode(linktype: int, data: bytes) -> None:
    decoder = FrameDecoder()
    _check(decoder, decoder.decode(1, linktype, data))


@FUZZ
@given(st.lists(mutated(), min_size=1, max_size=20))
def test_a_stream_of_mutated_frames_keeps_the_counts_consistent(samples: list[tuple[int, bytes]]) -> None:
    decoder = FrameDecoder(element_cache_size=4, layout_cache_size=2)
    for linktype, data in samples:
        _check(decoder, decoder.decode(1, linktype, data))
    assert decoder.stats.frames == len(samples)


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


PCAP = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127) + b"".join(
    struct.pack("<IIII", 1000 + i, i, len(f), len(f)) + f for i, (_, f) in enumerate(SEEDS[:3])
)
PCAPNG = (
    _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    + _block(1, struct.pack("<HHI", 127, 0, 0) + struct.pack("<HH", 9, 1) + b"\x09\0\0\0")
    + _block(1, struct.pack("<HHI", 105, 0, 0))
    + b"".join(
        _block(6, struct.pack("<5I", i % 2, 0, i, len(f), len(f)) + f) for i, (_, f) in enumerate(SEEDS[:4])
    )
    + _block(3, struct.pack("<I", len(PROBE)) + PROBE)
)


@FUZZ
@given(st.sampled_from([PCAP, PCAPNG]), st.data())
def test_mutated_captures_yield_records_or_a_capture_error(capture: bytes, data: st.DataObject) -> None:
    buf = bytearray(capture)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(buf) - 1))
        buf[at] = data.draw(st.integers(0, 255))
    buf = buf[: data.draw(st.integers(0, len(buf)))]
    try:
        for record in iter_capture_bytes(bytes(buf)):
            FrameDecoder().decode(record.ts_ns, record.linktype, record.data)
    except CaptureError as exc:
        assert "at byte" in str(exc)
