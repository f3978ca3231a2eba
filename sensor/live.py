"""Live capture: a monitor interface's management frames into the same `Pipeline` that replay feeds.

Why a raw AF_PACKET socket and not scapy's sniffer: importing scapy alone takes ~80 MB of RSS (the
Pi budget is 60 MB for everything) and compiling a filter needs tcpdump. So the kernel filter is a
classic BPF program built here from a table (`_FC_TESTS`, `_FC_OFFSET`): it reads the 802.11
frame-control byte behind the radio header — for radiotap at the offset the header's own little-endian
length field gives (`ldb [3]; lsh #8; tax; ldb [2]; or x; tax; ldb [x+0]`), for bare 802.11 at 0, for
Prism at 144 — and keeps a frame only if its type is management (`type mgt`: `fc & 0x0c == 0`) or, with
`capture.filter: probe_requests`, only probe requests (`fc & 0xfc == 0x40`). A frame too short to hold
that byte is dropped by the kernel (BPF loads out of bounds reject).

Timestamps are the kernel's (SO_TIMESTAMPNS, taken when the frame arrived), so the pipeline sees the
same time a pcap of the interface would have. Counters: `frames` reached Python; `kernel_drops` is
PACKET_STATISTICS' tp_drops (the receive buffer was full); `app_drops` reached Python but were not
processed (truncated by the receive buffer, or the pipeline raised on them).

Recovery never restarts the process, so open visits survive it: on a socket error (interface gone or
down) or a stall (no frame for `stall_timeout_s`), the socket is closed and reopened with backoff
(1 s doubling to 30 s); before reopening, a missing/non-monitor interface is set up again when
`capture.recreate` is on. Meanwhile time keeps passing in the pipeline (`advance`), and the state is
visible in status events and metrics.
"""

from __future__ import annotations

import ctypes
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sensor.channels import ChannelHopper
from sensor.config import CaptureConfig
from sensor.iface import IfaceError, IfaceState, StateReader, read_state
from sensor.pipeline import Pipeline

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35  # == SCM_TIMESTAMPNS; not exported by Python's socket module
PACKET_OUTGOING = 4
SNAP = 16_384  # largest 802.11 frame (11,454 bytes) plus any radio header
BACKOFF_MIN_S, BACKOFF_MAX_S = 1.0, 30.0
TICK_S = 1.0  # pipeline.advance, stall check, health: this often
BATCH = 512  # frames read per wake-up before the loop looks at its timers again
# After a partial batch, let frames gather before reading again: a wake-up costs far more than a frame
# (~150 us against ~5 us), and kernel timestamps keep the frames' times exact. The pause fills at most
# a quarter of the socket buffer at the current rate (`_gather_s`), and never exceeds COALESCE_MAX_S.
COALESCE_MAX_S = 0.25
TRUESIZE = 2048  # kernel memory a small frame takes in the receive buffer (skb overhead included)

# Frame-control test per filter kind: keep the frame if (fc & mask) == value.
_FC_TESTS = {"management": (0x0C, 0x00), "probe_requests": (0xFC, 0x40)}
# Where the frame-control byte is, per link type: None = behind a radiotap header of variable length.
_FC_OFFSET: dict[int, int | None] = {127: None, 105: 0, 119: 144}
_TIMESPEC = {16: struct.Struct("@qq"), 8: struct.Struct("@ii")}  # 64-bit and 32-bit (armhf) time_t

# Classic BPF opcodes (linux/filter.h)
_LDB_ABS, _LDB_IND, _LSH_K, _OR_X, _AND_K, _JEQ_K, _TAX, _RET_K = (
    0x30,
    0x50,
    0x64,
    0x4C,
    0x54,
    0x15,
    0x07,
    0x06,
)


class CaptureError(Exception):
    """The capture cannot be opened; the message names the interface and what to do."""


def bpf_program(linktype: int, kind: str) -> list[tuple[int, int, int, int]]:
    """The classic BPF program (code, jt, jf, k) keeping `kind` frames on a `linktype` interface."""
    if linktype not in _FC_OFFSET:
        raise CaptureError(f"link type {linktype} cannot carry 802.11 frames (127, 105 or 119 expected)")
    mask, value = _FC_TESTS[kind]
    offset = _FC_OFFSET[linktype]
    load: list[tuple[int, int, int, int]]
    if offset is None:  # X = radiotap it_len (u16 LE at 2); A = byte at X
        load = [(_LDB_ABS, 0, 0, 3), (_LSH_K, 0, 0, 8), (_TAX, 0, 0, 0), (_LDB_ABS, 0, 0, 2)]
        load += [(_OR_X, 0, 0, 0), (_TAX, 0, 0, 0), (_LDB_IND, 0, 0, 0)]
    else:
        load = [(_LDB_ABS, 0, 0, offset)]
    return [*load, (_AND_K, 0, 0, mask), (_JEQ_K, 0, 1, value), (_RET_K, 0, 0, 0x40000), (_RET_K, 0, 0, 0)]


def attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
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
        program = bpf_program(state.linktype, capture.filter)
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


class Clock(Protocol):
    def wall_ns(self) -> int: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def wall_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass(slots=True)
class CaptureCounters:
    frames: int = 0  # reached Python through the kernel filter
    kernel_packets: int = 0
    kernel_drops: int = 0
    app_drops: int = 0
    stalls: int = 0
    opens: int = 0
    failures: int = 0  # socket errors and failed opens


Opener = Callable[[CaptureConfig], FrameSource]
Setup = Callable[[CaptureConfig], object]


class LiveCapture:
    """The capture loop: `run()` until `stop()`; or `step()` at a time from a test with a fake clock."""

    def __init__(
        self,
        capture: CaptureConfig,
        pipeline: Pipeline,
        *,
        clock: Clock | None = None,
        open_source: Opener = PacketSocket.open,
        state_of: StateReader = read_state,
        setup_iface: Setup | None = None,
        hopper: ChannelHopper | None = None,
        on_tick: Callable[[LiveCapture], None] | None = None,
    ) -> None:
        self.capture = capture
        self.pipeline = pipeline
        self.clock = clock or SystemClock()
        self._open_source = open_source
        self._state_of = state_of
        self._setup_iface = setup_iface if capture.recreate else None
        self.hopper = hopper
        self._on_tick = on_tick
        self.counters = CaptureCounters()
        self.source: FrameSource | None = None
        self.down_reason = "not opened yet"
        self._stop = threading.Event()
        now = self.clock.monotonic()
        self.started = now
        self._retry_at = now
        self._backoff = BACKOFF_MIN_S
        self._last_frame = now
        self._next_tick = now + TICK_S
        self._hop_due = now
        self._gather_until = now
        self._rate, self._rate_frames = 0.0, 0
        self._last_fail_log = ""

    # -- control ----------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        while not self._stop.is_set():
            self.step()
        self._close_source()

    def step(self, max_wait_s: float = 0.5) -> None:
        """One turn: (re)open if due, wait for frames, feed them, run the timers."""
        now = self.clock.monotonic()
        if self.source is None and now >= self._retry_at:
            self._open(now)
        wait = min(max_wait_s, self._next_tick - now)
        if self.source is not None and self.hopper is not None:
            wait = min(wait, self._hop_due - now)
        wait = max(wait, 0.0)
        source = self.source
        if source is None:
            self._stop.wait(min(wait, max(self._retry_at - now, 0.0)))
        else:
            gather = min(self._gather_until - now, wait)
            if gather > 0:
                self._stop.wait(gather)
                wait -= gather
            try:
                if source.wait(wait) and self._drain(source) < BATCH:
                    self._gather_until = self.clock.monotonic() + self._gather_s(source)
            except OSError as exc:
                self._lost(f"capture on {source.interface} failed: {exc.strerror or exc} (errno {exc.errno})")
        now = self.clock.monotonic()
        if self.source is not None and self.hopper is not None and now >= self._hop_due:
            self._hop_due = now + self.hopper.tick(now)
        if now >= self._next_tick:
            self._tick(now)

    # -- internals --------------------------------------------------------------------------------------
    def _drain(self, source: FrameSource) -> int:
        feed, linktype, counters = self.pipeline.feed, source.linktype, self.counters
        frames = source.read(BATCH)
        for ts_ns, data in frames:
            try:
                feed(ts_ns, linktype, data)
            except Exception:
                counters.app_drops += 1
                if counters.app_drops & (counters.app_drops - 1) == 0:  # 1st, 2nd, 4th, 8th...: not a flood
                    log.exception("pipeline failed on a frame (%d so far); dropped it", counters.app_drops)
        if frames:
            counters.frames += len(frames)
            self._last_frame = self.clock.monotonic()
        return len(frames)

    def _gather_s(self, source: FrameSource) -> float:
        return min(COALESCE_MAX_S, 0.25 * source.capacity / max(self._rate, 1.0))

    def _tick(self, now: float) -> None:
        self._next_tick = max(self._next_tick + TICK_S, now)
        # Frames per second, smoothed over a few ticks, but a burst is believed at once.
        fresh = (self.counters.frames - self._rate_frames) / TICK_S
        self._rate = max(fresh, 0.7 * self._rate + 0.3 * fresh)
        self._rate_frames = self.counters.frames
        self.pipeline.advance(self.clock.wall_ns())
        source = self.source
        if source is not None:
            self._kernel_stats(source)
            silent = now - self._last_frame
            if silent >= self.capture.stall_timeout_s:
                self.counters.stalls += 1
                state = self._state_of(self.capture.interface)
                self._lost(f"no frame for {silent:.0f} s ({state.describe()}): reopening", backoff=False)
        if self._on_tick is not None:
            self._on_tick(self)

    def _kernel_stats(self, source: FrameSource) -> None:
        try:
            packets, drops = source.kernel_stats()
        except OSError:
            return
        self.counters.kernel_packets += packets
        if drops:
            self.counters.kernel_drops += drops
            log.warning("kernel dropped %d frames on %s (receive buffer full)", drops, source.interface)

    def _open(self, now: float) -> None:
        name = self.capture.interface
        state: IfaceState = self._state_of(name)
        try:
            if not (state.exists and state.up and state.monitor) and self._setup_iface is not None:
                log.info("%s: setting the interface up again", state.describe())
                self._setup_iface(self.capture)
                if self.hopper is not None:
                    self.hopper.reset()
            self.source = self._open_source(self.capture)
        except (CaptureError, IfaceError, OSError) as exc:
            self.counters.failures += 1
            self.down_reason = str(exc)
            self._retry_at = now + self._backoff
            if self.down_reason != self._last_fail_log:
                log.warning(
                    "%s; retrying in %g s (and with backoff up to %g s)", exc, self._backoff, BACKOFF_MAX_S
                )
                self._last_fail_log = self.down_reason
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
            return
        self.counters.opens += 1
        self.down_reason = ""
        self._last_fail_log = ""
        self._last_frame = now
        self._hop_due = now
        log.info("capturing on %s (link type %d, filter %s)", name, self.source.linktype, self.capture.filter)

    def _lost(self, reason: str, *, backoff: bool = True) -> None:
        log.warning("%s", reason)
        self._close_source()
        self.counters.failures += backoff
        self.down_reason = reason
        now = self.clock.monotonic()
        # A stall reopens at once; an error waits (the interface may be coming back).
        self._retry_at = now + (self._backoff if backoff else 0.0)
        self._backoff = BACKOFF_MIN_S if not backoff else min(self._backoff * 2, BACKOFF_MAX_S)

    def _close_source(self) -> None:
        source, self.source = self.source, None
        if source is None:
            return
        self._kernel_stats(source)
        self.counters.app_drops += source.truncated
        source.close()
