"""A million broken frames through the decoder, and thousands of broken captures through the reader.

The seeds are real frames (every capture in ../shared/data/captures and the start of two Fryza lab days:
radiotap, bare 802.11 and Prism) plus crafted ones (extended radiotap present words, FCS, +HTC). Each
of the 1,000,000 frames (FOOTFALL_FUZZ_FRAMES for more) is a seed given one to three cheap mutations
from a seeded RNG: bit flips, interesting bytes, truncation, lies in the length fields (radiotap
header length, element lengths, Prism message length), inserted or deleted runs, splices of two seeds,
the wrong link type, or plain noise. Nothing may escape `FrameDecoder.decode`; every frame must be
counted (probe request, skipped kind or error reason), and the errors must be there to count.

Broken captures (bad magic, truncated header or record, absurd lengths) must yield records or a
`CaptureError` that names the file and the byte offset, nothing else.
"""

from __future__ import annotations

import os
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from footfall_dev import craft

from sensor.decode.capture import CaptureError, iter_capture_bytes, read_capture
from sensor.decode.decoder import FrameDecoder
from sensor.decode.frames import ProbeRequest

FRAMES = int(os.environ.get("FOOTFALL_FUZZ_FRAMES", "1000000"))
SEED = 20_241_124
INTERESTING = (0x00, 0x01, 0x02, 0x04, 0x0F, 0x10, 0x40, 0x7F, 0x80, 0xFE, 0xFF)
FRYZA_DAYS = ("2022-10-18.pcap", "2023-04-14.pcap")

Seed = tuple[int, bytes, tuple[int, ...]]  # link type, frame, offsets of its length fields


def crafted() -> list[tuple[int, bytes]]:
    body = craft.elements(
        [
            (craft.EID_SSID, b"Cafe"),
            (craft.EID_SUPPORTED_RATES, bytes([0x82, 0x84, 0x8B, 0x96])),
            (craft.EID_DS_PARAMETER, b"\x06"),
            (craft.EID_HT_CAPABILITIES, bytes(26)),
            (craft.EID_VENDOR, bytes.fromhex("0050f208002000")),
        ]
    ) + craft.extension_element(craft.EXT_HE_CAPABILITIES, bytes(22))
    transmitter = bytes.fromhex("daa119633222")  # locally administered, as a randomizing phone's
    mgmt = craft.management_frame(
        4, transmitter, 0x902 >> 4, body, receiver=craft.BROADCAST, bssid=craft.BROADCAST, fcs=False
    )
    fcs = struct.pack("<I", zlib.crc32(mgmt))
    htc = bytes([mgmt[0], mgmt[1] | 0x80]) + mgmt[2:24] + b"\0\0\0\0" + mgmt[24:]
    # radiotap with three present words (TSFT..., radiotap namespace again, vendor namespace) and fields
    extended = bytes.fromhex("00002600" "2b4000a0" "200800a0" "20080000" "0102030405060708" "10" "00" "6c09a000" "d3" "00" "0000" "d100" "d401")  # fmt: skip
    return [
        (127, craft.radiotap_header(-55, 2437) + mgmt),
        (127, craft.radiotap_header(-70, 5180, fcs=True) + mgmt + fcs),
        (127, extended + mgmt + fcs),
        (105, mgmt),
        (105, mgmt + fcs),
        (105, htc),
    ]


def length_fields(linktype: int, frame: bytes) -> tuple[int, ...]:
    """Offsets of the bytes that say how long something is: the cheapest lies to tell a parser."""
    offsets = []
    off = 0
    if linktype == 127 and len(frame) >= 4:
        offsets += [2, 3]
        off = int.from_bytes(frame[2:4], "little")
    elif linktype == 119 and len(frame) >= 8:
        offsets += [4, 5]
        off = int.from_bytes(frame[4:8], "little")
    pos = off + 24  # the elements of a management frame
    while pos + 2 <= len(frame):
        offsets.append(pos + 1)
        pos += 2 + frame[pos + 1]
    return tuple(offsets)


def seeds(shared: Path) -> list[Seed]:
    frames: dict[tuple[int, bytes], None] = {}
    paths = sorted((shared / "captures").iterdir()) + [shared / "fryza-lab" / d for d in FRYZA_DAYS]
    for path in paths:
        per_file = 0
        for record in read_capture(path):
            key = (record.linktype, bytes(record.data))
            if key not in frames:
                frames[key] = None
                per_file += 1
            if per_file >= 300:
                break
    for frame in crafted():
        frames[frame] = None
    return [(lt, data, length_fields(lt, data)) for lt, data in frames]


def mutator(pool: list[Seed], rng: random.Random) -> Callable[[], tuple[int, bytes]]:
    """A function returning one freshly broken (link type, frame) per call."""
    randrange, choice, random_ = rng.randrange, rng.choice, rng.random
    linktypes = (127, 105, 119, 127, 105, 1)
    n = len(pool)

    def one() -> tuple[int, bytes]:
        linktype, frame, lengths = pool[randrange(n)]
        data = bytearray(frame)
        for _ in range(1 + (randrange(4) == 0) + (randrange(8) == 0)):
            size = len(data)
            op = random_()
            if size == 0:
                data += rng.randbytes(1 + randrange(16))
            elif op < 0.22:  # bit flips
                for _ in range(1 + randrange(3)):
                    data[randrange(size)] ^= 1 << randrange(8)
            elif op < 0.34:
                data[randrange(size)] = choice(INTERESTING)
            elif op < 0.50:  # truncation
                del data[randrange(size) :]
            elif op < 0.66 and lengths:  # a length field that lies
                at = choice(lengths)
                if at < size:
                    data[at] = choice(INTERESTING) if random_() < 0.5 else randrange(256)
            elif op < 0.74:
                at = randrange(size + 1)
                data[at:at] = rng.randbytes(1 + randrange(8))
            elif op < 0.82:
                at = randrange(size)
                del data[at : at + 1 + randrange(12)]
            elif op < 0.90:  # splice: this head, another seed's tail
                other = pool[randrange(n)][1]
                data = data[: randrange(size + 1)] + other[randrange(len(other) + 1) :]
            elif op < 0.96:
                linktype = choice(linktypes)
            else:
                data = bytearray(rng.randbytes(randrange(64)))
        return linktype, bytes(data)

    return one


@pytest.mark.realdata
def test_a_million_mutated_and_truncated_frames_never_raise_and_are_all_counted(shared_data: Path) -> None:
    pool = seeds(shared_data)
    assert {lt for lt, _, _ in pool} == {105, 119, 127}, "seeds of every supported link type"
    next_frame = mutator(pool, random.Random(SEED))
    # One decoder with the default caches, one whose caches churn all the time.
    decoders = (FrameDecoder(), FrameDecoder(element_cache_size=4, layout_cache_size=2))
    decodes = [d.decode for d in decoders]
    kept = 0
    for i in range(FRAMES):
        linktype, data = next_frame()
        try:
            probe = decodes[i & 1](i, linktype, data)
        except Exception as exc:  # the property under test: report how to reproduce
            raise AssertionError(
                f"frame {i} (seed {SEED}, link type {linktype}) raised {exc!r}: {data.hex()}"
            ) from exc
        if probe is not None:
            kept += 1
            if kept % 97 == 0:  # spot-check the values (checking all would double the run time)
                assert type(probe) is ProbeRequest
                assert len(probe.transmitter) == 6 and 0 <= probe.seq < 4096, data.hex()
    frames = sum(d.stats.frames for d in decoders)
    errors: dict[str, int] = {}
    for d in decoders:
        for reason, count in d.stats.errors.items():
            errors[reason] = errors.get(reason, 0) + count
    print(f"\n{FRAMES} mutated frames from {len(pool)} seeds: {kept} still probe requests, errors {errors}")
    assert frames == FRAMES, "every frame is counted once: probe request, skipped kind or error"
    assert sum(d.stats.probe_requests for d in decoders) == kept
    assert sum(errors.values()) > FRAMES // 10
    assert len(errors) >= 8, f"the errors are counted by reason: {sorted(errors)}"


def capture_bytes(shared: Path) -> list[tuple[str, bytes]]:
    """Small real captures: each file's header and first records (pcap; one pcapng made here)."""
    out = []
    for path in sorted((shared / "captures").iterdir()):
        raw = path.read_bytes()
        out.append((path.name, raw[: 24 + 5 * 200]))
    # A pcapng of two records: SHB, IDB (radiotap), two EPBs.
    frame = crafted()[0][1]
    pad = b"\0" * (-len(frame) % 4)
    epb = struct.pack("<IIIIIII", 6, 32 + len(frame) + len(pad), 0, 0, 1000, len(frame), len(frame))
    epb += frame + pad + struct.pack("<I", 32 + len(frame) + len(pad))
    shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    idb = struct.pack("<IIHHII", 1, 20, 127, 0, 65535, 20)
    out.append(("crafted.pcapng", shb + idb + epb + epb))
    return out


@pytest.mark.realdata
def test_broken_captures_give_records_or_an_error_naming_the_file_and_the_offset(shared_data: Path) -> None:
    rng = random.Random(SEED)
    samples = capture_bytes(shared_data)
    outcomes = {"records": 0, "error": 0}
    for i in range(20_000):
        name, raw = samples[i % len(samples)]
        buf = bytearray(raw)
        op = i % 5
        if op == 0:  # bad magic
            buf[rng.randrange(4)] ^= 1 << rng.randrange(8)
        elif op == 1:  # truncated header or record
            del buf[rng.randrange(len(buf)) :]
        elif op == 2:  # absurd lengths in the global header, a record or block header
            at = rng.choice((16, 20, 24 + 8, 24 + 12, 4, 8 + 28, 28 + 4))
            if at + 4 <= len(buf):
                buf[at : at + 4] = struct.pack("<I", rng.choice((0, 1, 3, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)))
        else:
            for _ in range(1 + rng.randrange(4)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        source = f"/captures/{name}"
        try:
            records = sum(1 for _ in iter_capture_bytes(bytes(buf), source))
        except CaptureError as exc:
            outcomes["error"] += 1
            assert str(exc).startswith(f"{source}: at byte {exc.offset}: "), str(exc)
            assert 0 <= exc.offset <= len(buf)
        else:
            outcomes["records"] += records > 0
    print(f"\n20000 broken captures: {outcomes}")
    assert outcomes["error"] > 2000
    assert outcomes["records"] > 2000
