"""Sinks that take events out of the sensor: MQTT (the normal path) and JSON lines (analysis).

The MQTT path is store and forward: `MqttSink.send` queues the event in the spool (sensor/publish/spool.py),
durably, and returns; the `Forwarder` thread publishes the spool with QoS 1 and removes an event only
on the broker's PUBACK. See sensor/publish/spool.py for the guarantees and the bounds.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO, Protocol

from footfall.broker import broker_settings
from footfall.events import Event, StatusEvent, event_id, utc
from footfall.mqtt import MqttClient, MqttError, Will
from sensor.buildinfo import build
from sensor.config import SensorConfig, SpoolConfig
from sensor.publish.spool import Entry, Spool

log = logging.getLogger(__name__)


class JsonlSink:
    """One event per line, byte for byte the MQTT payload."""

    def __init__(self, stream: BinaryIO, *, close_stream: bool = False) -> None:
        self._stream = stream
        self._close_stream = close_stream
        self.sent = 0

    def send(self, event: Event) -> None:
        self._stream.write(event.to_json() + b"\n")
        self.sent += 1

    def close(self) -> None:
        self._stream.flush()
        if self._close_stream:
            self._stream.close()


def status_event(
    config: SensorConfig, state: str, at_ns: int, version: str, **figures: object
) -> StatusEvent:
    site = config.site
    return StatusEvent.model_validate(
        {
            "event_id": event_id(site.store, site.sensor, "status", state, at_ns),
            "store": site.store,
            "sensor": site.sensor,
            "epoch": "",
            "state": state,
            "at": utc(at_ns),
            "version": version,
            "build": build(),
            **figures,
        },
        strict=False,
    )


class Publisher(Protocol):
    """What the forwarder needs of an MQTT client (footfall.mqtt.MqttClient; a fake in unit tests)."""

    @property
    def connected(self) -> bool: ...

    @property
    def connects(self) -> int: ...

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int: ...

    def wait_any_acked(self, timeout_s: float) -> set[int]: ...

    def take_refused(self) -> dict[int, str]: ...


# Why the broker did not pass an event on → seconds before it is offered again.
RETRY_AFTER_S: dict[str, float] = {"No matching subscribers": 5.0}
DEFAULT_RETRY_S = 60.0


class Forwarder:
    """Moves the spool to the broker: in order, QoS 1, at most `inflight` awaiting their PUBACK.

    Runs in its own thread (`start`/`stop`); `pump` is one step, for tests that drive it by hand.
    Only publishes while connected, so paho's memory never holds more than the window. After a
    reconnection paho re-sends its own unacknowledged publishes; the forwarder adds the events the
    broker acknowledged within `keep_acked_s` (a crashed broker may have lost them) and anything the
    broker refused. An event the broker did not pass on stays in the spool, is counted, logged (once a
    minute) and offered again later (`RETRY_AFTER_S`) and after every reconnection: "No matching
    subscribers" means the collector's session is gone (a broker that lost its state, a collector never
    started), "Not authorized" a wrong ACL; neither is a reason to lose the event.
    """

    def __init__(
        self,
        spool: Spool,
        client: Publisher,
        *,
        inflight: int = 100,
        tick_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spool = spool
        self._client = client
        self._window = inflight
        self._tick_s = tick_s
        self._inflight: dict[int, int] = {}  # mid → spool seq
        self._cursor = 0  # highest seq published on this connection
        self._seen_connects = 0
        self._resend: deque[Entry] = deque()
        self._more = threading.Event()  # set by `notify`: something new in the spool
        self._more.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_expire = 0.0
        self._clock = clock
        self._retry_at: dict[int, float] = {}  # refused seq → when to offer it again
        self._last_refusal_log: dict[str, float] = {}
        self.published = 0
        self.resent = 0
        self.refused = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="spool-forwarder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def notify(self) -> None:
        """An event was queued: look at the spool on the next step."""
        self._more.set()

    def drain(self, timeout_s: float) -> int:
        """Wait until every queued event is acknowledged or the time is up; returns how many are left."""
        deadline = time.monotonic() + timeout_s
        while self._spool.pending_count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self._spool.pending_count

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.pump(self._client.wait_any_acked(self._tick_s))
            except Exception:  # a spool or broker hiccup must not end forwarding for good
                log.exception("spool forwarder step failed; retrying")
                self._stop.wait(1.0)

    def pump(self, acked: set[int]) -> None:
        """One step: record acknowledgements, react to a (re)connection, publish what the window allows."""
        now = self._clock()
        # Refusals first: a "no matching subscribers" PUBACK is also among the acknowledged.
        for mid, reason in self._client.take_refused().items():
            seq = self._inflight.pop(mid, None)
            if seq is None:
                continue
            self.refused += 1
            delay = RETRY_AFTER_S.get(reason, DEFAULT_RETRY_S)
            self._retry_at[seq] = now + delay
            if now - self._last_refusal_log.get(reason, -60.0) >= 60.0:
                self._last_refusal_log[reason] = now
                log.warning(
                    "broker did not pass spooled events on (%s); kept, offered again every %g s and after a "
                    "reconnection (%d refusals so far)",
                    reason,
                    delay,
                    self.refused,
                )
        done = [self._inflight.pop(mid) for mid in acked if mid in self._inflight]
        if done:
            self._spool.mark_acked(done)
            self._more.set()  # room in the window
        if self._client.connects != self._seen_connects:
            self._reconnected()
        due = [seq for seq, at in self._retry_at.items() if at <= now]
        if due:
            for seq in due:
                del self._retry_at[seq]
            self._cursor = min(self._cursor, min(due) - 1)  # pending and not in hand: offered again
            self._more.set()
        if now - self._last_expire >= 1.0:
            self._last_expire = now
            self._spool.expire()
        if self._client.connected:
            self._publish()

    def _reconnected(self) -> None:
        first = self._seen_connects == 0
        self._seen_connects = self._client.connects
        self._cursor = 0  # anything pending and not in paho's hands goes out again (refused ones too)
        self._retry_at.clear()
        self._more.set()
        if not first:
            self._resend.extend(self._spool.recently_acked())
            if self._resend:
                log.info("reconnected: sending again the %d events acknowledged lately", len(self._resend))

    def _publish(self) -> None:
        room = self._window - len(self._inflight)
        while room > 0 and self._resend:
            if not self._send(self._resend[0]):
                return
            self._resend.popleft()
            self.resent += 1
            room -= 1
        if room <= 0 or not self._more.is_set():
            return
        self._more.clear()  # cleared before reading: an event queued from now on sets it again
        in_hand = set(self._inflight.values())
        while room > 0:
            entries = self._spool.pending(self._cursor, room)
            if not entries:
                return
            for entry in entries:
                if entry.seq not in in_hand and entry.seq not in self._retry_at:
                    if not self._send(entry):
                        return
                    room -= 1
                self._cursor = entry.seq
        self._more.set()  # the window is full: there may be more

    def _send(self, entry: Entry) -> bool:
        try:
            mid = self._client.publish(entry.topic, entry.payload, 1, entry.retain)
        except MqttError as exc:
            log.warning("cannot hand spooled event %d to paho: %s; retrying", entry.seq, exc)
            self._more.set()
            return False
        self._inflight[mid] = entry.seq
        self.published += 1
        return True


class MqttSink:
    """Queues every event in the spool; the forwarder sends it. `close` waits until all are acknowledged.

    Status events are retained; the broker publishes the sensor's `offline` status as its last will.
    """

    def __init__(
        self, config: SensorConfig, client: MqttClient, spool: Spool, *, ack_timeout_s: float = 60.0
    ) -> None:
        self._prefix = config.mqtt.topic_prefix
        self._client = client
        self.spool = spool
        self.forwarder = Forwarder(spool, client, inflight=config.spool.inflight)
        self._ack_timeout_s = ack_timeout_s
        self._temporary_spool = config.spool.path is None
        self.sent = 0
        self.forwarder.start()

    @classmethod
    def connect(
        cls,
        config: SensorConfig,
        version: str,
        now_ns: int,
        *,
        wait_s: float | None = 10.0,
        ack_timeout_s: float = 60.0,
    ) -> MqttSink:
        """Open the spool and connect; with `wait_s`, fail (MqttError) if the broker is not up by then.

        With `wait_s=None` the sink starts at once and the client connects when it can, with backoff,
        forever: events wait in the spool meanwhile (the live sensor's way).
        """
        site = config.site
        spool = open_spool(config.spool)
        will_event = status_event(config, "offline", now_ns, version)
        will = Will(f"{config.mqtt.topic_prefix}/{site.store}/{site.sensor}/status", will_event.to_json())
        settings = broker_settings(config.mqtt, f"footfall-sensor-{site.store}-{site.sensor}")
        client = MqttClient(replace(settings, max_inflight=config.spool.inflight), will)
        try:
            client.connect(wait_s or 10.0, wait=wait_s is not None)
        except MqttError:
            spool.close()
            raise
        return cls(config, client, spool, ack_timeout_s=ack_timeout_s)

    @property
    def spool_depth(self) -> int:
        """Events queued and not yet acknowledged by the broker (for the status and the metrics)."""
        return self.spool.pending_count

    def send(self, event: Event) -> None:
        if self.spool.put_event(event, self._prefix):
            self.forwarder.notify()
        self.sent += 1

    def close(self) -> None:
        """Wait for the broker to acknowledge what is queued (up to the timeout), then disconnect."""
        left = self.forwarder.drain(self._ack_timeout_s)
        self.forwarder.stop()
        self._client.close()
        stats = self.spool.stats()
        self.spool.close()
        log.info("published %d events; %s", self.sent, stats.line())
        if left:
            fate = (
                "they are lost (spool.path is not set)"
                if self._temporary_spool
                else f"they stay in the spool {self.spool.path} and are sent on the next start"
            )
            raise MqttError(
                f"{left} events were not acknowledged by the broker within {self._ack_timeout_s:g} s; {fate}"
            )


def open_spool(config: SpoolConfig, clock: Callable[[], float] = time.time) -> Spool:
    """The configured spool (raises SpoolError naming the file if it cannot be opened).

    Without `spool.path`, a temporary file that is deleted on close: it rides out a broker outage but
    not a restart of the process, which is said at WARNING.
    """
    path = config.path
    if path is None:
        fd, name = tempfile.mkstemp(prefix="footfall-spool-", suffix=".db")
        os.close(fd)
        path = Path(name)
        log.warning("spool.path is not set: spooling in %s, which is deleted on exit (not durable)", path)
    spool = Spool(
        path,
        max_bytes=config.max_bytes,
        max_events=config.max_events,
        max_age_s=config.max_age_s,
        on_full=config.on_full,
        keep_acked_s=config.keep_acked_s,
        sync=config.sync,
        clock=clock,
    )
    if config.path is None:
        weakref.finalize(spool, _remove_spool_files, path)
    return spool


def _remove_spool_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
