"""Sensor health: the retained status event, Prometheus metrics and the systemd watchdog.

The capture loop takes a `Snapshot` once a second (plain values, frozen), and everything here reads
snapshots only, so the metrics thread never touches the pipeline while it runs.
- Status: published every `health.status_interval_s` and at once when what an operator watches
  changes (capture up/down, interface, fixed channel, salt epoch). It carries the epoch *id*, never a
  salt; frames/s is the rate since the previous status.
- Metrics: prometheus_client, on 127.0.0.1 by default. Chosen over a hand-written http.server because
  both services need the same exposition (escaping, HELP/TYPE, OpenMetrics negotiation) and it is one
  small pure-Python dependency (~1 MB RSS); a custom collector turns the latest snapshot into metric
  families at scrape time, so no counter is kept twice.
- Watchdog: `sd_notify("WATCHDOG=1")` from the loop's tick; with `WatchdogSec=` systemd restarts a
  sensor whose loop hangs (a wedged driver call), which the loop cannot detect itself.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from footfall.events import Event, StatusEvent
from sensor.config import SensorConfig
from sensor.publish.status import status_event

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The sensor's figures at one instant (cumulative counts since start)."""

    at_ns: int
    uptime_s: float
    interface: str
    capture_up: bool
    down_reason: str = ""
    channel: int | None = None
    hopping: bool = False
    frames: int = 0
    probe_requests: int = 0
    decode_errors: dict[str, int] = field(default_factory=dict)
    kernel_drops: int = 0
    app_drops: int = 0
    stalls: int = 0
    opens: int = 0
    failures: int = 0
    hops: int = 0
    hop_failures: int = 0
    open_visits: int = 0
    visits_emitted: int = 0
    counts_emitted: int = 0
    events_sent: int = 0
    spool_depth: int | None = None
    epoch: str = ""
    dropped_optout: int = 0
    dropped_epoch_gone: int = 0

    @property
    def drops(self) -> int:
        return self.kernel_drops + self.app_drops

    def change_key(self) -> tuple[object, ...]:
        """What makes a status worth sending at once (a hopping channel changes every dwell: not that)."""
        return (self.capture_up, self.interface, None if self.hopping else self.channel, self.epoch)


class StatusReporter:
    """Decides when to publish a status event and builds it; `send` is the sink's (retained for status)."""

    def __init__(
        self,
        config: SensorConfig,
        version: str,
        send: Callable[[Event], None],
        interval_s: float | None = None,
    ) -> None:
        self._config = config
        self._version = version
        self._send = send
        self._interval_ns = int((interval_s or config.health.status_interval_s) * 1e9)
        self._last: Snapshot | None = None
        self.sent = 0

    def tick(self, snap: Snapshot) -> StatusEvent | None:
        """Publish if the interval has passed or something watched changed; returns what was sent."""
        last = self._last
        due = (
            last is None
            or snap.at_ns - last.at_ns >= self._interval_ns
            or snap.change_key() != last.change_key()
        )
        if not due:
            return None
        return self._publish(snap, "online")

    def final(self, snap: Snapshot) -> StatusEvent:
        """The `offline` status of a graceful stop (the broker sends the will only on a lost connection)."""
        return self._publish(snap, "offline")

    def build(self, snap: Snapshot, state: str) -> StatusEvent:
        last = self._last
        rate = 0.0
        if last is not None and snap.at_ns > last.at_ns:
            rate = max(snap.frames - last.frames, 0) * 1e9 / (snap.at_ns - last.at_ns)
        source = f"live:{snap.interface}" + ("" if snap.capture_up else f" (down: {snap.down_reason})")
        return status_event(
            self._config,
            state,
            snap.at_ns,
            self._version,
            uptime_s=round(snap.uptime_s, 3),
            source=source[:256],
            frames=snap.frames,
            probe_requests=snap.probe_requests,
            decode_errors=dict(snap.decode_errors),
            epoch=snap.epoch,
            interface=snap.interface,
            channel=snap.channel,
            frames_per_s=round(rate, 2),
            drops=snap.drops,
            spool_depth=snap.spool_depth,
        )

    def _publish(self, snap: Snapshot, state: str) -> StatusEvent:
        event = self.build(snap, state)
        self._last = snap
        self._send(event)
        self.sent += 1
        return event


# -- Prometheus ---------------------------------------------------------------------------------------------

# (metric name, help, snapshot attribute): the counters, declared once.
_COUNTERS = (
    ("frames", "Frames that passed the kernel filter and reached the sensor", "frames"),
    ("probe_requests", "Probe requests decoded", "probe_requests"),
    ("kernel_drops", "Frames the kernel dropped because the socket buffer was full", "kernel_drops"),
    ("app_drops", "Frames that reached the sensor but were not processed", "app_drops"),
    ("capture_stalls", "Times no frame arrived for stall_timeout_s and the capture was reopened", "stalls"),
    ("capture_opens", "Times the capture was opened", "opens"),
    ("capture_failures", "Capture errors and failed opens", "failures"),
    ("channel_hops", "Channel changes", "hops"),
    ("channel_failures", "Failed attempts to tune the channel", "hop_failures"),
    ("visits", "Visit events emitted", "visits_emitted"),
    ("counts", "Count events emitted", "counts_emitted"),
    ("events_sent", "Events handed to the MQTT sink", "events_sent"),
    ("dropped_optout", "Frames of opted-out devices dropped before pseudonymisation", "dropped_optout"),
    ("dropped_epoch_gone", "Frames whose salt epoch was already destroyed", "dropped_epoch_gone"),
)
_GAUGES = (
    ("capture_up", "1 while the capture socket is open", "capture_up"),
    ("open_visits", "Visits open now", "open_visits"),
    ("uptime_seconds", "Seconds since the sensor started", "uptime_s"),
)


class SensorMetrics(Collector):
    """Metric families from the latest snapshot (`update` from the loop, `collect` from the scraper)."""

    def __init__(self, version: str, prefix: str = "footfall_sensor") -> None:
        self._version = version
        self._prefix = prefix
        self._snap: Snapshot | None = None

    def update(self, snap: Snapshot) -> None:
        self._snap = snap  # one reference assignment: atomic for the scraping thread

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | InfoMetricFamily]:
        snap, p = self._snap, self._prefix
        yield InfoMetricFamily(f"{p}_build", "Sensor version", value={"version": self._version})
        if snap is None:
            return
        for name, text, attr in _COUNTERS:
            yield CounterMetricFamily(f"{p}_{name}", text, value=float(getattr(snap, attr)))
        for name, text, attr in _GAUGES:
            yield GaugeMetricFamily(f"{p}_{name}", text, value=float(getattr(snap, attr)))
        errors = CounterMetricFamily(f"{p}_decode_errors", "Frames dropped as malformed", labels=["reason"])
        for reason, n in sorted(snap.decode_errors.items()):
            errors.add_metric([reason], float(n))
        yield errors
        channel = GaugeMetricFamily(
            f"{p}_channel", "Channel tuned now (absent if unknown)", labels=["interface"]
        )
        if snap.channel is not None:
            channel.add_metric([snap.interface], float(snap.channel))
        yield channel
        if snap.spool_depth is not None:
            yield GaugeMetricFamily(
                f"{p}_spool_depth", "Events waiting in the spool", value=float(snap.spool_depth)
            )


# -- systemd ------------------------------------------------------------------------------------------------

_notify_lock = threading.Lock()


def sd_notify(state: str, socket_path: str | None = None) -> bool:
    """Tell systemd `state` (READY=1, WATCHDOG=1, STATUS=...); False when not run by systemd (no socket)."""
    path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path  # '@': the abstract namespace
    with _notify_lock, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError as exc:
            log.debug("sd_notify(%s) failed: %s", state, exc)
            return False
    return True
