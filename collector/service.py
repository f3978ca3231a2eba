"""The running collector: MQTT in, Ingestor in the middle, the store out, until told to stop.

The broker session is persistent (a fixed client id, clean start off, a session expiry), so QoS 1
events published while the collector restarts wait at the broker and arrive when it is back. An event
is acknowledged to the broker once the Ingestor has queued it, so a graceful stop (SIGTERM, SIGINT)
disconnects first — nothing more arrives — and then flushes the batch; a crash loses at most the events
of the last flush interval, which the sensors' deterministic ids let a re-send repair.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from collector.config import CollectorConfig, MqttConfig
from collector.ingest import Ingestor, IngestStats
from collector.store import Store, open_store
from footfall.configfile import ConfigError
from footfall.mqtt import BrokerSettings, Message, MqttClient, TlsSettings

log = logging.getLogger(__name__)


def broker_settings(mqtt: MqttConfig) -> BrokerSettings:
    """The MQTT section as the client's settings, with the password read from its file."""
    password = None
    if mqtt.password_file is not None:
        try:
            password = mqtt.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                mqtt.password_file,
                [f"{mqtt.password_file}: cannot read mqtt.password_file: {exc.strerror or exc}"],
            ) from None
    tls = None
    if mqtt.tls is not None:
        tls = TlsSettings(mqtt.tls.ca_file, mqtt.tls.cert_file, mqtt.tls.key_file)
    return BrokerSettings(
        host=mqtt.host,
        port=mqtt.port,
        client_id=mqtt.client_id,
        username=mqtt.username,
        password=password,
        tls=tls,
        keepalive_s=mqtt.keepalive_s,
        session_expiry_s=mqtt.session_expiry_s,
    )


class Collector:
    """Subscribes to `<prefix>/+/+/+` and stores what the Ingestor accepts."""

    def __init__(
        self,
        config: CollectorConfig,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        settings = broker_settings(config.mqtt)  # may raise ConfigError: before anything is opened
        self._own_store = store is None
        self._store = store if store is not None else open_store(config.store)
        self.ingestor = Ingestor(self._store, config.ingest, config.mqtt.topic_prefix, clock)
        self._client = MqttClient(settings)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._last_message = time.monotonic()
        self.messages = 0

    @property
    def topic_filter(self) -> str:
        return f"{self.config.mqtt.topic_prefix}/+/+/+"

    @property
    def stats(self) -> IngestStats:
        return self.ingestor.stats

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect and subscribe (raises MqttError if the broker is not reachable in time)."""
        # Registered before connecting, so the subscription is (re)made in on_connect, and a session's
        # queued messages, delivered right after CONNACK, already have a handler.
        self._client.subscribe(self.topic_filter, self._on_message, qos=1)
        self._client.connect(self.config.mqtt.connect_timeout_s)
        self._last_message = time.monotonic()
        self._ticker = threading.Thread(target=self._tick, name="collector-flush", daemon=True)
        self._ticker.start()
        log.info(
            "collecting %s (session expiry %d s, client id %r) into %s",
            self.topic_filter,
            self.config.mqtt.session_expiry_s,
            self.config.mqtt.client_id,
            self.config.store.path if self._own_store else "the given store",
        )

    def request_stop(self) -> None:
        self._stop.set()

    def wait(self, until_idle_s: float | None = None) -> str:
        """Block until stopped ('stopped') or until `until_idle_s` pass without a message ('idle')."""
        while not self._stop.wait(0.1):
            if until_idle_s is not None and time.monotonic() - self._last_message >= until_idle_s:
                log.info("no message for %g s: stopping", until_idle_s)
                return "idle"
        return "stopped"

    def stop(self) -> IngestStats:
        """Disconnect (the session keeps what comes next), then flush and close; idempotent."""
        self._client.close()
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        self.ingestor.flush()
        stats = self.ingestor.stats
        log.info("stopped: %s", stats.line())
        if self._own_store:
            self._store.close()
        return stats

    def run(self, until_idle_s: float | None = None) -> IngestStats:
        """Start, serve until SIGTERM/SIGINT (or idle), stop gracefully; returns the final counts."""
        restore = self._install_signal_handlers()
        try:
            self.start()
            self.wait(until_idle_s)
        finally:
            restore()
            stats = self.stop()
        return stats

    # -- internals ------------------------------------------------------------------------------------------
    def _on_message(self, message: Message) -> None:
        self._last_message = time.monotonic()
        self.messages += 1
        self.ingestor.handle(message.topic, message.payload)

    def _tick(self) -> None:
        period = min(max(self.config.ingest.flush_interval_s / 2, 0.05), 1.0)
        next_log = time.monotonic() + self.config.ingest.stats_log_interval_s
        while not self._stop.wait(period):
            self.ingestor.flush_if_due()
            if time.monotonic() >= next_log:
                next_log += self.config.ingest.stats_log_interval_s
                state = "connected" if self._client.connected else "DISCONNECTED"
                log.info("%s; mqtt %s", self.ingestor.stats.line(), state)

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # only the main thread may set handlers; its caller stops us instead

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("received %s: stopping after flushing", signal.Signals(signum).name)
            self._stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore
