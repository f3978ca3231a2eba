"""The running collector: MQTT in, Ingestor in the middle, the store out, until told to stop.

The broker session is persistent (a fixed client id, clean start off, a session expiry), so QoS 1
events published while the collector restarts wait at the broker and arrive when it is back. An event
is acknowledged to the broker only once it is stored (manual acknowledgement after the batch commits),
so a collector killed at any moment loses nothing: the broker sends the unacknowledged events again
and the store's event ids drop the ones it already has. The broker may send up to twice the batch
size before the first acknowledgement (MQTT 5 Receive Maximum), so batches fill at full speed. A
graceful stop (SIGTERM, SIGINT) stops taking messages, stores and acknowledges the batch, then
disconnects; what arrives meanwhile stays in the session for the next start.

After each commit the sensors hear which of their events are durable (stored, duplicates, dead letters):
store acknowledgements on `<prefix>/<store>/ack/<sensor>` (collector/ingest/acks.py, footfall/acks.py), on
which their spools release them.

Privacy duties run here too: the retained control message (opt-out and consent tokens, per store) is
published on every connection and again whenever the registry's revision changes (the CLI may change it
while the service runs), and retention runs every `retention.interval_h`, the first time five minutes
after the start so that a crash loop cannot keep it from ever running yet a short run does not.

With `triggers.enabled`, every stored batch goes to the real-time triggers (collector/online/triggers.py),
published through this service's own MQTT connection, and the webhook runs while the service does.
With `mqtt.share_group`, several collectors subscribe to `$share/<group>/<prefix>/+/+/+` and the
broker hands each event to one of them; the store's event ids keep a re-sent event stored once even
when the copies went to different collectors.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from types import FrameType

from collector.config import CollectorConfig
from collector.ingest.acks import AckPublisher
from collector.ingest.ingestor import Ingestor, IngestStats
from collector.online.triggers import Triggers, Webhook, logged_in, webhook_from_config
from collector.privacy import retention
from collector.privacy.control import control_messages, control_stores, publish_control
from collector.privacy.keys import load_token_key
from collector.privacy.registry import PrivacyError
from collector.storage.backends import open_store
from collector.storage.base import Store, StoreError
from footfall.broker import broker_settings
from footfall.configfile import ConfigError
from footfall.events import COLLECTOR_LEVELS
from footfall.mqtt import Message, MqttClient, MqttError
from footfall.tokens import TokenKey

log = logging.getLogger(__name__)

PRIVACY_POLL_S = 5.0  # how often the registry's revision is checked for changes made by the CLI
STORES_POLL_S = 600.0  # how often the set of stores is checked (a full index scan: not every few seconds)
FIRST_RETENTION_S = 300.0


def _token_key(config: CollectorConfig) -> TokenKey | None:
    path = config.privacy.token_key_file
    if path is None:
        return None
    try:
        return load_token_key(path)
    except PrivacyError as exc:
        raise ConfigError(path, [f"privacy.token_key_file: {exc}"]) from None


class Collector:
    """Subscribes to `<prefix>/+/+/+` (shared, with a share group) and stores what the Ingestor accepts."""

    def __init__(
        self,
        config: CollectorConfig,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` gives wall time (timestamps, retention); `monotonic` the intervals (ticks, idle)."""
        self.config = config
        mqtt = config.mqtt
        # May raise ConfigError: before anything is opened.
        settings = broker_settings(mqtt, mqtt.client_id, session_expiry_s=mqtt.session_expiry_s)
        window = min(65_535, max(2 * config.ingest.batch_size, 100))
        settings = replace(settings, manual_ack=True, receive_maximum=window)
        self._key = _token_key(config)
        self._own_store = store is None
        self._webhook: Webhook | None = None
        if config.triggers.enabled:
            self._webhook = webhook_from_config(config.triggers)  # may raise ConfigError
        self._store = store if store is not None else open_store(config.store)
        self._client = MqttClient(settings)
        self._profiles = self._store.profiles()
        self.triggers: Triggers | None = None
        if config.triggers.enabled:
            self.triggers = Triggers(
                self._profiles,
                self._client.publish,
                config.mqtt.topic_prefix,
                webhook=self._webhook,
                clock=lambda: datetime.fromtimestamp(clock(), UTC),
                log=logged_in(self._store),
            )
        # Each stored batch goes on to the triggers, before it is acknowledged; then the sensors hear
        # which of their events are stored (footfall/acks.py).
        on_stored = None if self.triggers is None else self.triggers.handle
        self.store_acks = AckPublisher(self._client.publish, config.mqtt.topic_prefix)
        # Storing runs on its own thread (_store_loop), woken by a full batch: the MQTT network thread
        # only checks and queues, so a slow commit never holds up intake, PUBACKs or keepalives.
        self._full = threading.Event()
        self.ingestor = Ingestor(
            self._store,
            config.ingest,
            config.mqtt.topic_prefix,
            clock,
            on_stored=on_stored,
            on_settled=self.store_acks,
            wake=self._full.set,
        )
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._storer: threading.Thread | None = None
        self._draining = False  # stopping: leave new messages to the broker's session
        self._last_message = self._monotonic()
        self._clock = clock
        self._control_lock = threading.Lock()
        self._published: tuple[int, tuple[str, ...]] = (-1, ())  # revision and stores last published
        self.messages = 0
        self.last_retention: retention.RetentionReport | None = None

    @property
    def topic_filter(self) -> str:
        plain = f"{self.config.mqtt.topic_prefix}/+/+/+"
        group = self.config.mqtt.share_group
        return plain if group is None else f"$share/{group}/{plain}"

    @property
    def stats(self) -> IngestStats:
        return self.ingestor.stats

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect and subscribe (raises MqttError if the broker is not reachable in time)."""
        # Registered before connecting, so the subscription is (re)made in on_connect, and a session's
        # queued messages, delivered right after CONNACK, already have a handler.
        self._client.subscribe(self.topic_filter, self._on_message, qos=1)
        if self._key is not None:
            self._client.on_connect(self._publish_control_on_connect)
        else:
            log.warning(
                "privacy.token_key_file is not set: no opt-out or consent reaches the sensors"
                " (footfall-collector tokens init)"
            )
        if self._webhook is not None:
            self._webhook.start()
        try:
            self._client.connect(self.config.mqtt.connect_timeout_s)
        except MqttError:
            if self._webhook is not None:
                self._webhook.stop()
            raise
        self._last_message = self._monotonic()
        self._storer = threading.Thread(target=self._store_loop, name="collector-store", daemon=True)
        self._storer.start()
        self._ticker = threading.Thread(target=self._tick, name="collector-tick", daemon=True)
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
            if until_idle_s is not None and self._monotonic() - self._last_message >= until_idle_s:
                log.info("no message for %g s: stopping", until_idle_s)
                return "idle"
        return "stopped"

    def stop(self) -> IngestStats:
        """Stop taking messages, store and acknowledge the batch, then disconnect and close; idempotent."""
        self._draining = True
        self._stop.set()
        self._full.set()  # the storing thread's wait ends now
        for thread in (self._ticker, self._storer):
            if thread is not None:
                thread.join()
        self._ticker = self._storer = None
        self.ingestor.flush()  # the acknowledgements go out before the DISCONNECT that close() sends
        self._client.close()
        if self._webhook is not None:
            self._webhook.stop()  # sends what is queued, within its timeout
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
        if self._draining:
            return  # not acknowledged: the broker keeps it for the next start
        if self._is_control(message.topic):
            self._client.ack(message)
            return  # our own retained control message, delivered back by the `+/+/+` subscription
        self._last_message = self._monotonic()
        self.messages += 1
        self.ingestor.handle(message.topic, message.payload, partial(self._client.ack, message))

    def _store_loop(self) -> None:
        """The one thread that commits while running: a full batch at once, else when the interval is up.

        Apart from the maintenance of `_tick` (retention may take minutes), so storing never waits for it.
        """
        ingestor = self.ingestor
        while not self._stop.is_set():
            self._full.wait(min(max(ingestor.due_in(), 0.01), 1.0))
            self._full.clear()  # before the check: a batch that fills after it sets the event again
            if self._stop.is_set():
                return  # stop() flushes what is left, after the threads are joined
            if ingestor.full:
                ingestor.flush()
            else:
                ingestor.flush_if_due()

    def _tick(self) -> None:
        period = min(max(self.config.ingest.flush_interval_s / 2, 0.05), 1.0)
        started = self._monotonic()
        next_log = started + self.config.ingest.stats_log_interval_s
        next_privacy, next_stores = started + PRIVACY_POLL_S, started + STORES_POLL_S
        next_retention = started + FIRST_RETENTION_S
        while not self._stop.wait(period):
            now = self._monotonic()
            if now >= next_log:
                next_log += self.config.ingest.stats_log_interval_s
                state = "connected" if self._client.connected else "DISCONNECTED"
                log.info("%s; mqtt %s", self.ingestor.stats.line(), state)
            if self._key is not None and now >= next_privacy and self._client.connected:
                next_privacy = now + PRIVACY_POLL_S
                check_stores = now >= next_stores
                if check_stores:
                    next_stores = now + STORES_POLL_S
                self.publish_control(only_if_changed=True, check_stores=check_stores)
            if self.config.retention.enabled and now >= next_retention:
                next_retention = now + self.config.retention.interval_h * 3600
                self.run_retention()

    # -- privacy --------------------------------------------------------------------------------------------
    def publish_control(self, *, only_if_changed: bool = False, check_stores: bool = True) -> bool:
        """Publish every store's retained control message; returns whether anything was published."""
        if self._key is None:
            return False
        try:
            with self._control_lock:
                sets = self._store.registry_sets()
                stores = (
                    tuple(control_stores(self.config, self._store)) if check_stores else self._published[1]
                )
                if only_if_changed and (sets.revision, stores) == self._published:
                    return False
                now = datetime.fromtimestamp(self._clock(), UTC)
                messages = control_messages(sets, self._key, stores, self.config.mqtt.topic_prefix, now)
                publish_control(self._client, messages)
                self._published = (sets.revision, stores)
        except (StoreError, MqttError) as exc:
            log.error("cannot publish the privacy control message: %s", exc)
            return False
        log.info(
            "published privacy control revision %d (%d opt-outs, %d consents) to %d stores",
            sets.revision,
            len(sets.optout),
            len(sets.consent),
            len(stores),
        )
        return True

    def _publish_control_on_connect(self) -> None:
        # In paho's network thread: publish only (the broker's PUBACK arrives on this very thread).
        try:
            self.publish_control()
        except Exception:
            log.exception("publishing the privacy control message on connect failed")

    def run_retention(self, *, dry_run: bool = False) -> retention.RetentionReport | None:
        now = datetime.fromtimestamp(self._clock(), UTC)
        try:
            self.last_retention = retention.run(
                self._store, self.config.retention, now, dry_run=dry_run, profiles=self._profiles
            )
        except StoreError as exc:
            log.error("retention failed, will retry in %g h: %s", self.config.retention.interval_h, exc)
            return None
        return self.last_retention

    def _is_control(self, topic: str) -> bool:
        # Our own messages (the retained privacy control, store acknowledgements), delivered back to us.
        levels = topic.split("/")
        n = len(self.config.mqtt.topic_prefix.split("/"))
        return len(levels) == n + 3 and levels[n + 1] in COLLECTOR_LEVELS

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
