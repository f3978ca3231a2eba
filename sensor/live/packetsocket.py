"""The monitor interface as a non-blocking AF_PACKET socket: kernel filter, kernel timestamps.

Why a raw AF_PACKET socket and not scapy's sniffer: importing scapy alone takes ~80 MB of RSS (the
Pi budget is 60 MB for everything) and compiling a filter needs tcpdump. So the kernel filter is a
classic BPF program built here from a table (`_FC_TESTS`, `_FC_OFFSET`): it reads the 802.11
frame-control byte behind the radio header — for radiotap at the offset the header's own little-endian
length field gives (`ldb [3]; lsh #8; tax; ldb [2]; or x; tax; ldb [x+0]`), for bare 802.11 at 0, for
Prism at 144 — and keeps a frame only if its type is management (`type mgt`: `fc & 0x0c == 0`) or, with
`capture.filter: probe_requests`, only probe requests (`fc & 0xfc == 0x40`). A frame too short to hold
that byte is dropped by the kernel (BPF loads out of bounds reject).

With `capture.store_networks`, the program also keeps the frames between a station and one of their
BSSIDs (dot11.STATION_KINDS: data, null, QoS, PS-Poll, authentication, (re)association): it dispatches
on the frame-control byte and the ToDS/FromDS bits to the address field that holds the BSSID, compares
it with each store BSSID (a 32-bit and a 16-bit load), and keeps a match cut to its MAC header (`ret a`
with A = radio header length + dot11.STATION_SNAP, the radio header length kept in M[0]). Any other
network's frame is dropped in the kernel; a kept frame's body never reaches user space. Jumps are
resolved from labels by `_assemble`, far ones through `ja`, so the number of BSSIDs is bounded by the
config's limits only.

Timestamps are the kernel's (SO_TIMESTAMPNS, taken when the frame arrived), so the pipeline sees the
same time a pcap of the interface would have.
"""

from __future__ import annotations

import ctypes
import logging
import select
import socket
import struct
import time
from collections.abc import Collection
from typing import Protocol

from sensor.config import CaptureConfig
from sensor.decode.dot11 import DS_BITS, STATION_KINDS, STATION_SNAP
from sensor.live.iface import StateReader, read_state

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35  # == SCM_TIMESTAMPNS; not exported by Python's socket module
PACKET_OUTGOING = 4
SNAP = 16_384  # largest 802.11 frame (11,454 bytes) plus any radio header
TRUESIZE = 2048  # kernel memory a small frame takes in the receive buffer (skb overhead included)

# Frame-control test per filter kind: keep the frame if (fc & mask) == value.
_FC_TESTS = {"management": (0x0C, 0x00), "probe_requests": (0xFC, 0x40)}
# Where the frame-control byte is, per link type: None = behind a radiotap header of variable length.
_FC_OFFSET: dict[int, int | None] = {127: None, 105: 0, 119: 144}
_TIMESPEC = {16: struct.Struct("@qq"), 8: struct.Struct("@ii")}  # 64-bit and 32-bit (armhf) time_t
_WHOLE = 0x40000  # snap length of a kept frame: all of it

# Classic BPF opcodes (linux/filter.h)
_LDB_ABS, _LDB_IND, _LDH_IND, _LDW_IND, _LDX_IMM, _LD_MEM = 0x30, 0x50, 0x48, 0x40, 0x01, 0x60
_STX, _LSH_K, _OR_X, _AND_K, _ADD_K, _TAX, _TXA = 0x03, 0x64, 0x4C, 0x54, 0x04, 0x07, 0x87
_JA, _JEQ_K, _JSET_K, _RET_K, _RET_A = 0x05, 0x15, 0x45, 0x06, 0x16

Insn = tuple[int, int, int, int]
_Jump = tuple[int, str | None, str | None, int]  # a conditional jump's targets are labels until assembled


class CaptureError(Exception):
    """The capture cannot be opened; the message names the interface and what to do."""


def bpf_program(linktype: int, kind: str, store_bssids: Collection[bytes] = ()) -> list[Insn]:
    """The classic BPF program (code, jt, jf, k) keeping `kind` frames on a `linktype` interface.

    With `store_bssids` (then `kind` is probe_requests), it also keeps the frames of dot11.STATION_KINDS
    whose BSSID, at the address field their ToDS/FromDS bits give, is one of them, cut to their MAC
    header (dot11.STATION_SNAP bytes past the radio header): the body never leaves the kernel.
    """
    if linktype not in _FC_OFFSET:
        raise CaptureError(f"link type {linktype} cannot carry 802.11 frames (127, 105 or 119 expected)")
    mask, value = _FC_TESTS[kind]
    offset = _FC_OFFSET[linktype]
    code: list[_Jump | tuple[str]] = []
    if offset is None:  # X = radiotap it_len (u16 LE at 2)
        code += [(_LDB_ABS, None, None, 3), (_LSH_K, None, None, 8), (_TAX, None, None, 0)]
        code += [(_LDB_ABS, None, None, 2), (_OR_X, None, None, 0), (_TAX, None, None, 0)]
    else:
        code += [(_LDX_IMM, None, None, offset)]
    # M[0] = where the 802.11 frame starts; A = its frame-control byte
    code += [(_STX, None, None, 0), (_LDB_IND, None, None, 0), (_AND_K, None, None, mask)]
    code += [(_JEQ_K, None, "rest", value), (_RET_K, None, None, _WHOLE), ("rest",)]
    if store_bssids:
        code += _station_code(sorted(store_bssids))
    code += [("drop",), (_RET_K, None, None, 0)]
    return _assemble(code)


def _station_code(bssids: list[bytes]) -> list[_Jump | tuple[str]]:
    """Dispatch on the frame-control byte and DS bits to the BSSID's offset; match it; keep the header.

    Far targets are reached through `ja` (32-bit offset): a conditional jump reaches 255 instructions.
    """
    code: list[_Jump | tuple[str]] = [(_LDB_IND, None, None, 0)]
    links = sorted({link for k in STATION_KINDS.values() for link in k.links})
    groups = sorted({k.links for k in STATION_KINDS.values()})
    code += [(_JEQ_K, f"g{groups.index(k.links)}", None, fc) for fc, k in sorted(STATION_KINDS.items())]
    code += [(_JA, "drop", None, 0)]
    for g, group in enumerate(groups):  # A = the DS bits; each link of the group is one reading of them
        code += [(f"g{g}",), (_LDB_IND, None, None, 1), (_AND_K, None, None, DS_BITS)]
        code += [(_JEQ_K, f"l{links.index(link)}", None, link.ds) for link in group]
        code += [(_JA, "drop", None, 0)]
    for n, link in enumerate(links):
        code += [(f"l{n}",)]
        if not link.from_station:  # an access point's group-addressed frame names no station
            code += [(_LDB_IND, None, None, link.station_at), (_JSET_K, None, f"unicast{n}", 0x01)]
            code += [(_JA, "drop", None, 0), (f"unicast{n}",)]
        code += [(_TXA, None, None, 0), (_ADD_K, None, None, link.bssid_at), (_TAX, None, None, 0)]
        code += [(_JA, "match", None, 0)]
    code += [("match",)]  # X = where the BSSID is
    for bssid in bssids:
        high, low = int.from_bytes(bssid[:4], "big"), int.from_bytes(bssid[4:], "big")
        code += [(_LDW_IND, None, None, 0), (_JEQ_K, None, f"not{bssid.hex()}", high)]
        code += [(_LDH_IND, None, None, 4), (_JEQ_K, None, f"not{bssid.hex()}", low)]
        code += [(_JA, "header", None, 0), (f"not{bssid.hex()}",)]
    code += [(_JA, "drop", None, 0), ("header",), (_LD_MEM, None, None, 0)]
    code += [(_ADD_K, None, None, STATION_SNAP), (_RET_A, None, None, 0)]
    return code


def _assemble(code: list[_Jump | tuple[str]]) -> list[Insn]:
    """Labels out, jump offsets in: a conditional jump's target None is the next instruction."""
    labels: dict[str, int] = {}
    insns: list[_Jump] = []
    for item in code:
        if len(item) == 1:
            labels[item[0]] = len(insns)
        else:
            insns.append(item)
    out: list[Insn] = []
    for pc, (op, jt, jf, k) in enumerate(insns):
        if op == _JA:
            out.append((op, 0, 0, labels[jt] - pc - 1 if jt else k))
            continue
        t, f = (labels[jt] - pc - 1 if jt else 0), (labels[jf] - pc - 1 if jf else 0)
        if not (0 <= t <= 255 and 0 <= f <= 255):
            raise CaptureError(f"BPF jump too long at {pc} ({t}, {f}): fewer store BSSIDs needed")
        out.append((op, t, f, k))
    return out


def attach_filter(sock: socket.socket, program: list[Insn]) -> None:
    code = b"".join(struct.pack("@HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(buf))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class FrameSource(Protocol):
    """Where captured frames come from (a PacketSocket, or a fake in tests)."""

    interface: str
    linktype: int
    truncated: int
    outgoing: int
    capacity: int  # frames the receive buffer holds

    def wait(self, timeout_s: float) -> bool: ...

    def read(self, limit: int) -> list[tuple[int, bytes]]: ...

    def kernel_stats(self) -> tuple[int, int]: ...

    def close(self) -> None: ...


class PacketSocket:
    """A non-blocking AF_PACKET socket on one interface, filtered in the kernel, with kernel timestamps."""

    def __init__(self, sock: socket.socket, interface: str, linktype: int) -> None:
        self._sock = sock
        self.interface = interface
        self.linktype = linktype
        self.truncated = 0
        self.outgoing = 0
        self._buf = bytearray(SNAP)
        self._bufs = [memoryview(self._buf)]
        self._anc = socket.CMSG_SPACE(16)
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)
        self.capacity = max(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // TRUESIZE, 1)

    @classmethod
    def open(cls, capture: CaptureConfig, state_of: StateReader = read_state) -> PacketSocket:
        name = capture.interface
        state = state_of(name)
        if not state.exists or state.linktype is None:
            raise CaptureError(
                f"cannot capture on {state.describe()}: a monitor (radiotap) interface is needed"
            )
        program = bpf_program(state.linktype, capture.filter, capture.store_bssids())
        try:
            # Protocol 0 receives nothing until bind(), so no unfiltered frame slips in before the filter.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise CaptureError(
                f"cannot open a packet socket for {name}: needs CAP_NET_RAW (run through "
                "footfall-sensor.service, or as root)"
            ) from None
        try:
            attach_filter(sock, program)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            _set_rcvbuf(sock, capture.rcvbuf_bytes)
            sock.bind((name, ETH_P_ALL))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise CaptureError(
                f"cannot capture on {name}: {exc.strerror or exc} (errno {exc.errno})"
            ) from None
        return cls(sock, name, state.linktype)

    def wait(self, timeout_s: float) -> bool:
        return bool(self._poll.poll(max(0, int(timeout_s * 1000))))

    def read(self, limit: int) -> list[tuple[int, bytes]]:
        """Up to `limit` frames waiting in the socket, as (kernel timestamp ns, bytes)."""
        out: list[tuple[int, bytes]] = []
        recv, bufs, anc, view = self._sock.recvmsg_into, self._bufs, self._anc, self._bufs[0]
        while len(out) < limit:
            try:
                n, ancdata, flags, address = recv(bufs, anc)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            if address[2] == PACKET_OUTGOING:  # our own transmissions, if anything injects
                self.outgoing += 1
                continue
            if flags & socket.MSG_TRUNC:
                self.truncated += 1
                continue
            ts = 0
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC[len(data)].unpack(data)
                    ts = sec * 1_000_000_000 + nsec
            out.append((ts or time.time_ns(), bytes(view[:n])))
        return out

    def kernel_stats(self) -> tuple[int, int]:
        """(packets, drops) since the last call (the kernel resets them on every read)."""
        packets, drops = struct.unpack("@II", self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        return packets, drops

    def close(self) -> None:
        self._sock.close()


def _set_rcvbuf(sock: socket.socket, size: int) -> None:
    try:  # beyond net.core.rmem_max: needs CAP_NET_ADMIN
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        log.info("receive buffer capped at net.core.rmem_max (no CAP_NET_ADMIN): bursts may drop frames")
