"""The spool to the broker: in order, QoS 1, an event removed only on the broker's PUBACK.

`Forwarder` runs in its own thread and needs of the MQTT client only what `Publisher` declares;
sensor/publish/spool.py holds the guarantees and the bounds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from footfall.mqtt import MqttError
from sensor.publish.spool import Entry, Spool

log = logging.getLogger(__name__)


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
        deadline = self._clock() + timeout_s
        while self._spool.pending_count and self._clock() < deadline:
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
