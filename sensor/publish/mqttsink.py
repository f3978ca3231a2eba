"""The sensor's MQTT sink: store and forward.

`MqttSink.send` queues the event in the spool (sensor/publish/spool.py), durably, and returns; the
`Forwarder` thread (sensor/publish/forwarder.py) publishes the spool with QoS 1 and removes an event
only on the broker's PUBACK. The sensor's `offline` status is the connection's last will.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from footfall.broker import broker_settings
from footfall.events import Event
from footfall.mqtt import MqttClient, MqttError, Will
from sensor.config import SensorConfig, SpoolConfig
from sensor.publish.forwarder import Forwarder
from sensor.publish.spool import Spool
from sensor.publish.status import status_event

log = logging.getLogger(__name__)


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
