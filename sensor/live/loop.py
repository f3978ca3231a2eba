"""Live capture: a monitor interface's management frames into the same `Pipeline` that replay feeds.

The socket, its kernel filter and its kernel timestamps are sensor/live/packetsocket.py. Counters: `frames`
reached Python; `kernel_drops` is PACKET_STATISTICS' tp_drops (the receive buffer was full);
`app_drops` reached Python but were not processed (truncated by the receive buffer, or the pipeline
raised on them).

Recovery never restarts the process, so open visits survive it: on a socket error (interface gone or
down) or a stall (no frame for `stall_timeout_s`), the socket is closed and reopened with backoff
(1 s doubling to 30 s); before reopening, a missing/non-monitor interface is set up again when
`capture.recreate` is on. Meanwhile time keeps passing in the pipeline (`advance`), and the state is
visible in status events and metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sensor.config import CaptureConfig
from sensor.live.channels import ChannelHopper
from sensor.live.iface import IfaceError, IfaceState, StateReader, read_state
from sensor.live.packetsocket import CaptureError, FrameSource, PacketSocket
from sensor.pipeline import Pipeline

log = logging.getLogger(__name__)

BACKOFF_MIN_S, BACKOFF_MAX_S = 1.0, 30.0
TICK_S = 1.0  # pipeline.advance, stall check, health: this often
BATCH = 512  # frames read per wake-up before the loop looks at its timers again
# After a partial batch, let frames gather before reading again: a wake-up costs far more than a frame
# (~150 us against ~5 us), and kernel timestamps keep the frames' times exact. The pause fills at most
# a quarter of the socket buffer at the current rate (`_gather_s`), and never exceeds COALESCE_MAX_S.
COALESCE_MAX_S = 0.25


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
