"""Capture files: pcap (both byte orders, µs and ns) and pcapng, read from a buffer or a file.

The parsers work on a buffer (bytes or an mmap) so they stay pure; `read_capture` only maps the
file. A file that is not a capture at all, or whose structure is broken in the middle, raises
`CaptureError` naming the file and byte offset. A *last* record cut short (a capture copied while
it was still being written, e.g. aircrack's pmkid-not-recognized.cap) is not fatal: iteration stops
there and `CaptureReader.truncated_tail` says so, so the caller can count it.
"""

from __future__ import annotations

import heapq
import itertools
import mmap
import struct
from collections.abc import Callable, Iterable, Iterator
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final

from sensor.decode.errors import CaptureError
from sensor.decode.frames import CaptureRecord

__all__ = [
    "CaptureError",
    "CaptureReader",
    "PcapWriter",
    "iter_capture_bytes",
    "merge_captures",
    "read_capture",
]

PCAP_MAGIC_US: Final = 0xA1B2C3D4
PCAP_MAGIC_NS: Final = 0xA1B23C4D
PCAPNG_SHB: Final = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC: Final = 0x1A2B3C4D

_PCAP_HEADER_LEN: Final = 24
_PCAP_RECORD_HEADER_LEN: Final = 16
# Wireshark's own ceiling for a standard record; a larger length means a corrupt header, not a big frame.
_MAX_RECORD: Final = 262_144
_MAX_BLOCK: Final = 16 * 1024 * 1024
# A mapped file's pages count in the process's RSS once touched: the reader hands back the pages it
# has read past every this many bytes, so memory stays flat for a capture of any size.
_RELEASE_BYTES: Final = 4 * 1024 * 1024
# pcap records are read a chunk at a time (see _pcap_chunks): the chunk's bytes and records are what
# the reader holds, ~3x this. Small, because the records of a chunk are alive at once: a 1 MB chunk's
# ~7,700 made the cycle collector's young generations (at Python's default thresholds) much busier.
_CHUNK_BYTES: Final = 64 * 1024
# Compiled (mypyc), a record header read byte by byte is native and beats a `struct` call (callgrind:
# ~1 k instructions a record less, with the unboxing of the four fields); interpreted it is the other way
# round, by ~1 µs a record. Each build takes its faster way to the same four numbers (tests/test_capture.py).
_BYTE_READS: Final = __file__.endswith(tuple(EXTENSION_SUFFIXES))

# pcapng block types
_IDB, _OPB, _SPB, _EPB = 1, 2, 3, 6
_OPT_ENDOFOPT, _OPT_IF_TSRESOL, _OPT_IF_TSOFFSET = 0, 9, 14

Buffer = bytes | mmap.mmap


class CaptureReader(Iterator[CaptureRecord]):
    """Iterates the records of one capture buffer; after the loop, says how it ended.

    `truncated_tail` is True when the last record (or block) was cut short, `truncated_at` the byte
    offset where that record starts; `records` counts the
    records yielded; `format` is "pcap" or "pcapng". The header is checked on construction, so a
    file that is not a capture fails at once rather than at the first `next()`.
    """

    def __init__(self, buf: Buffer, source: str = "<bytes>") -> None:
        self.source = source
        self.truncated_tail = False
        self.truncated_at: int | None = None
        self.records = 0
        self._buf = buf
        if len(buf) < 4:
            raise CaptureError(source, 0, f"truncated header: got {len(buf)} bytes, 24 needed")
        magic_le = struct.unpack_from("<I", buf, 0)[0]
        if magic_le == PCAPNG_SHB:
            self.format = "pcapng"
            if len(buf) < 28:
                raise CaptureError(source, 0, f"truncated section header: got {len(buf)} bytes, 28 needed")
            self._byte_order(0)
            self._it: Iterator[CaptureRecord] = self._pcapng()
        else:
            self.format = "pcap"
            self._it = self._pcap(magic_le)

    def __iter__(self) -> Iterator[CaptureRecord]:
        # The records' generator itself, so a for loop does not pay for __next__ on every record.
        return self._it

    def __next__(self) -> CaptureRecord:
        return next(self._it)

    def _cut(self, offset: int) -> None:
        self.truncated_tail, self.truncated_at = True, offset

    def _fail(self, offset: int, message: str) -> CaptureError:
        return CaptureError(self.source, offset, message)

    # -- pcap ---------------------------------------------------------------------------------------

    def _pcap(self, magic_le: int) -> Iterator[CaptureRecord]:
        buf = self._buf
        order = {PCAP_MAGIC_US: "<", PCAP_MAGIC_NS: "<"}.get(magic_le)
        if order is None:
            magic_be = struct.unpack_from(">I", buf, 0)[0]
            order = {PCAP_MAGIC_US: ">", PCAP_MAGIC_NS: ">"}.get(magic_be)
            if order is None:
                raise self._fail(
                    0,
                    f"bad magic 0x{magic_be:08x}: not pcap (a1b2c3d4, a1b23c4d) nor pcapng (0a0d0d0a)",
                )
            magic_le = magic_be
        if len(buf) < _PCAP_HEADER_LEN:
            raise self._fail(0, f"truncated global header: got {len(buf)} bytes, 24 needed")
        _, _, _, _, _, snaplen, network = struct.unpack_from(order + "IHHiIII", buf, 0)
        frac_ns = 1 if magic_le == PCAP_MAGIC_NS else 1000
        linktype = network & 0xFFFF  # the upper bits may carry FCS-length hints
        limit = min(max(snaplen, _MAX_RECORD), _MAX_BLOCK)
        # The records of a chunk at a time, handed on one by one by `chain` (C code): a generator
        # step per record costs more than reading the record (see _pcap_chunk).
        return itertools.chain.from_iterable(self._pcap_chunks(order == ">", frac_ns, linktype, limit))

    def _pcap_chunks(
        self, big_endian: bool, frac_ns: int, linktype: int, limit: int
    ) -> Iterator[list[CaptureRecord]]:
        """The records in chunks of _CHUNK_BYTES, copied out of the buffer (a mapped file) one chunk
        at a time; the pages read past are handed back every _RELEASE_BYTES, so memory stays flat."""
        buf = self._buf
        end = len(buf)
        off = _PCAP_HEADER_LEN  # of the next record not yet read
        want = _CHUNK_BYTES
        count = 0
        release = _releaser(buf)
        release_at = _RELEASE_BYTES
        unpack = None if _BYTE_READS else struct.Struct(">IIII" if big_endian else "<IIII").unpack_from
        try:
            while end - off >= _PCAP_RECORD_HEADER_LEN:
                chunk: bytes = buf[off : off + want]
                batch, used, need, bad = _pcap_chunk(chunk, big_endian, frac_ns, linktype, limit, unpack)
                count += len(batch)
                if batch:
                    yield batch  # before any error below: the records before a broken one come out
                off += used
                if bad:
                    raise self._fail(off, f"record length {bad} exceeds the maximum {limit}")
                if need and off + need > end:  # the last record was cut short
                    self._cut(off)
                    return
                want = max(_CHUNK_BYTES, need)  # a record longer than a chunk gets a chunk of its own
                if release is not None and off >= release_at:
                    release(off)
                    release_at = off + _RELEASE_BYTES
            if off < end:
                self._cut(off)
        finally:
            self.records = count

    # -- pcapng -------------------------------------------------------------------------------------

    def _pcapng(self) -> Iterator[CaptureRecord]:
        buf = self._buf
        end = len(buf)
        off = 0
        order = "<"
        # per interface of the current section: (linktype, ts multiplier, ts divisor, offset ns, snaplen)
        interfaces: list[tuple[int, int, int, int, int]] = []
        last_ts = 0
        count = 0
        release = _releaser(buf)
        release_at = _RELEASE_BYTES
        try:
            while off < end:
                if off >= release_at and release is not None:
                    release(off)
                    release_at = off + _RELEASE_BYTES
                if off + 12 > end:
                    self._cut(off)
                    return
                btype = struct.unpack_from(order + "I", buf, off)[0]
                if btype == PCAPNG_SHB:
                    if off + 28 > end:
                        self._cut(off)
                        return
                    order = self._byte_order(off)
                    interfaces = []
                blen = struct.unpack_from(order + "I", buf, off + 4)[0]
                if blen < 12 or blen % 4 or blen > _MAX_BLOCK:
                    raise self._fail(off, f"bad block length {blen} (block type 0x{btype:08x})")
                if off + blen > end:
                    self._cut(off)
                    return
                if btype == _IDB:
                    interfaces.append(self._interface(order, off, blen))
                elif btype in (_EPB, _OPB):
                    last_ts, linktype, cap, orig = self._packet_block(order, off, blen, btype, interfaces)
                    count += 1
                    yield CaptureRecord(last_ts, linktype, buf[off + 28 : off + 28 + cap], orig)
                elif btype == _SPB:
                    if not interfaces:
                        raise self._fail(off, "simple packet block before any interface description")
                    linktype, _, _, _, snaplen = interfaces[0]
                    orig = struct.unpack_from(order + "I", buf, off + 8)[0]
                    cap = min(orig, blen - 16, snaplen or orig)
                    count += 1
                    # An SPB has no timestamp: it inherits the previous packet's, so order is kept.
                    yield CaptureRecord(last_ts, linktype, buf[off + 12 : off + 12 + cap], orig)
                # every other block (name resolution, statistics, custom, ...) is skipped
                off += blen
        finally:
            self.records = count

    def _packet_block(
        self, order: str, off: int, blen: int, btype: int, interfaces: list[tuple[int, int, int, int, int]]
    ) -> tuple[int, int, int, int]:
        """An enhanced (or obsolete) packet block's timestamp, link type, captured and original lengths."""
        if btype == _EPB:
            if_id, ts_hi, ts_lo, cap, orig = struct.unpack_from(order + "5I", self._buf, off + 8)
        else:
            if_id, _, ts_hi, ts_lo, cap, orig = struct.unpack_from(order + "HH4I", self._buf, off + 8)
        if if_id >= len(interfaces):
            raise self._fail(off, f"packet names interface {if_id}, the section declared {len(interfaces)}")
        if 28 + cap > blen - 4:
            raise self._fail(off, f"captured length {cap} overruns its block of {blen} bytes")
        linktype, mult, div, base, _ = interfaces[if_id]
        return ((ts_hi << 32 | ts_lo) * mult) // div + base, linktype, cap, orig

    def _byte_order(self, off: int) -> str:
        bom = struct.unpack_from("<I", self._buf, off + 8)[0]
        if bom == PCAPNG_BYTE_ORDER_MAGIC:
            return "<"
        if bom == 0x4D3C2B1A:
            return ">"
        raise self._fail(off + 8, f"bad pcapng byte-order magic 0x{bom:08x}")

    def _interface(self, order: str, off: int, blen: int) -> tuple[int, int, int, int, int]:
        buf = self._buf
        if blen < 20:
            raise self._fail(off, f"interface block of {blen} bytes, 20 needed")
        linktype, _, snaplen = struct.unpack_from(order + "HHI", buf, off + 8)
        mult, div, base = 1000, 1, 0  # default resolution: microseconds
        pos, stop = off + 16, off + blen - 4
        while pos + 4 <= stop:
            code, length = struct.unpack_from(order + "HH", buf, pos)
            if code == _OPT_ENDOFOPT:
                break
            value = pos + 4
            if value + length > stop:
                raise self._fail(pos, f"option {code} of {length} bytes overruns its block")
            if code == _OPT_IF_TSRESOL and length >= 1:
                res = buf[value]
                if res & 0x80:  # a negative power of two
                    mult, div = 1_000_000_000, 1 << (res & 0x7F)
                elif res <= 9:
                    mult, div = 10 ** (9 - res), 1
                else:
                    mult, div = 1, 10 ** (res - 9)
            elif code == _OPT_IF_TSOFFSET and length >= 8:
                base = struct.unpack_from(order + "q", buf, value)[0] * 1_000_000_000
            pos = value + ((length + 3) & ~3)
        return linktype, mult, div, base, snaplen


def _ns(sec: int, frac: int, frac_ns: int) -> int:
    """A pcap record's time, sec * 10**9 + frac * frac_ns, in steps the compiled build keeps native.

    mypyc multiplies two ints natively only while both are below 2**30 (its overflow check is
    conservative: callgrind showed ~800 instructions a record for the fallback), and a count of seconds
    has been above that since 2004: split at 2**15, each product stays native.
    """
    return ((sec >> 15) * 1_000_000_000 << 15) + (sec & 0x7FFF) * 1_000_000_000 + frac * frac_ns


def _pcap_chunk(
    chunk: bytes,
    big_endian: bool,
    frac_ns: int,
    linktype: int,
    limit: int,
    unpack: Callable[[bytes, int], tuple[int, int, int, int]] | None = None,
) -> tuple[list[CaptureRecord], int, int, int]:
    """The whole records at the start of `chunk`: (records, bytes they take, the length a record
    that runs past the chunk needs (0: none), the length of a record over `limit` (0: none)).

    The headers are read by `unpack` (a `struct` call each), or byte by byte without it (see _BYTE_READS).
    """
    records: list[CaptureRecord] = []
    size = len(chunk)
    p = 0
    while size - p >= _PCAP_RECORD_HEADER_LEN:
        if unpack is not None:
            sec, frac, incl, orig = unpack(chunk, p)
        elif big_endian:
            sec, frac, incl, orig = (
                _u32be(chunk, p),
                _u32be(chunk, p + 4),
                _u32be(chunk, p + 8),
                _u32be(chunk, p + 12),
            )
        else:
            sec, frac, incl, orig = (
                _u32le(chunk, p),
                _u32le(chunk, p + 4),
                _u32le(chunk, p + 8),
                _u32le(chunk, p + 12),
            )
        if incl > limit:
            return records, p, 0, incl
        start = p + _PCAP_RECORD_HEADER_LEN
        if size - start < incl:
            return records, p, _PCAP_RECORD_HEADER_LEN + incl, 0
        records.append(CaptureRecord(_ns(sec, frac, frac_ns), linktype, chunk[start : start + incl], orig))
        p = start + incl
    return records, p, 0, 0


def _u32le(b: bytes, p: int) -> int:
    return b[p] | b[p + 1] << 8 | b[p + 2] << 16 | b[p + 3] << 24


def _u32be(b: bytes, p: int) -> int:
    return b[p] << 24 | b[p + 1] << 16 | b[p + 2] << 8 | b[p + 3]


def _releaser(buf: Buffer) -> Callable[[int], None] | None:
    """For a mapped file: a function that hands back the pages before an offset (None otherwise).

    MADV_DONTNEED on a read-only file mapping only unmaps: the data stays in the file (and the page
    cache), and a later read of those bytes maps them again.
    """
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if not isinstance(buf, mmap.mmap) or advice is None:
        return None
    page = mmap.PAGESIZE
    done = 0

    def release(offset: int) -> None:
        nonlocal done
        upto = offset - offset % page
        if upto > done:
            buf.madvise(advice, done, upto - done)
            done = upto

    return release


def iter_capture_bytes(buf: bytes | bytearray | memoryview, source: str = "<bytes>") -> CaptureReader:
    """Parse a capture held in memory (pcap or pcapng, sniffed from the magic)."""
    return CaptureReader(buf if isinstance(buf, bytes) else bytes(buf), source)


def read_capture(path: Path) -> CaptureReader:
    """Iterate the records of a pcap or pcapng file (mapped, not read whole into memory)."""
    with open(path, "rb") as fh:
        try:
            buf: Buffer = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            buf = b""
    return CaptureReader(buf, str(path))


def merge_captures(sources: Iterable[Path | CaptureReader]) -> Iterator[CaptureRecord]:
    """Records of several captures in timestamp order (each capture is assumed in order itself).

    Ties keep the order of `sources`. Pass `CaptureReader`s instead of paths to read their
    `truncated_tail` afterwards.
    """
    readers = [s if isinstance(s, CaptureReader) else read_capture(s) for s in sources]
    if len(readers) == 1:  # nothing to merge: heapq.merge would cost an interpreted step per record
        return readers[0]
    return heapq.merge(*readers, key=_ts_key)


def _ts_key(record: CaptureRecord) -> int:
    return record.ts_ns


class PcapWriter:
    """Writes a classic little-endian pcap (µs or ns timestamps); a context manager."""

    def __init__(self, path: Path, linktype: int, nanosecond: bool = False, snaplen: int = _MAX_RECORD):
        self._nanosecond = nanosecond
        self._fh: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()/__exit__
        magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
        self._fh.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self._record = struct.Struct("<IIII").pack

    def write(self, ts_ns: int, data: bytes, orig_len: int | None = None) -> None:
        sec, frac = divmod(ts_ns, 1_000_000_000)
        if not self._nanosecond:
            frac //= 1000
        n = len(data)
        self._fh.write(self._record(sec, frac, n, n if orig_len is None else orig_len))
        self._fh.write(data)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
