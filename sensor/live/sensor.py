"""The live sensor, composed: key store → pipeline → MQTT sink, the capture loop, and its health.

`LiveSensor` wires the parts; `open_live_sensor` opens them from the config (the key file, the
opt-out list, the broker, Home Assistant) for `footfall-sensor run`, which only parses and calls.
Health (status, metrics, watchdog, Home Assistant) reads the loop's snapshots. A graceful stop
(SIGTERM/SIGINT) closes the open visits, publishes them and an `offline` status, and waits for the
broker's acknowledgements.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from footfall.events import Event
from footfall.metrics import MetricsServer, serve_metrics
from footfall.mqtt import MqttError
from sensor.config import SensorConfig
from sensor.keys.pseudonym import SaltSource
from sensor.live import iface
from sensor.live.channels import ChannelHopper, ChannelPlan, Runner, run_command
from sensor.live.health import SensorMetrics, Snapshot, StatusReporter, sd_notify
from sensor.live.loop import Clock, LiveCapture, Opener
from sensor.live.packetsocket import PacketSocket
from sensor.live.sources import key_salt_source, privacy_filter
from sensor.pipeline import Pipeline, Sink
from sensor.publish.homeassistant import HomeAssistantLink
from sensor.publish.mqttsink import MqttSink

log = logging.getLogger("footfall.sensor")


class EventTap:
    """The pipeline's sink: passes events on, counts them, and shows them to observers (Home Assistant)."""

    def __init__(self, sink: Sink, observers: Sequence[Callable[[Event], None]]) -> None:
        self.sink = sink
        self.observers = observers
        self.sent = 0

    def send(self, event: Event) -> None:
        self.sink.send(event)
        self.sent += 1
        for observe in self.observers:
            try:
                observe(event)
            except Exception:  # an observer bug must not lose the event stream
                log.exception("event observer failed")

    def close(self) -> None:
        """The sink is closed by LiveSensor.finish, after the offline status."""


class LiveSensor:
    """The capture loop around the pipeline, with health; `run` until `stop`, then `finish`.

    `spool_depth` reports the events the sink has not yet had acknowledged (None: the sink keeps
    none); `closing` are closed last, after the sink (the key store, the control-topic client).
    """

    def __init__(
        self,
        config: SensorConfig,
        salts: SaltSource,
        sink: Sink,
        version: str,
        *,
        clock: Clock | None = None,
        open_source: Opener = PacketSocket.open,
        runner: Runner = run_command,
        home_assistant: HomeAssistantLink | None = None,
        drop_mac: Callable[[bytes], bool] | None = None,
        consent_of_mac: Callable[[bytes], str | None] | None = None,
        spool_depth: Callable[[], int | None] = lambda: None,
        closing: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.config = config
        self.salts = salts
        self.sink = sink
        self.home_assistant = home_assistant
        self.spool_depth = spool_depth
        self.closing = closing
        observers = [home_assistant.observe] if home_assistant is not None else []
        self.events = EventTap(sink, observers)
        self.pipeline = Pipeline(config, salts, self.events, drop_mac=drop_mac, consent_of_mac=consent_of_mac)
        capture = config.capture
        hopper = ChannelHopper(capture.interface, ChannelPlan.from_config(capture), runner)
        self.status = StatusReporter(config, version, sink.send)
        self.metrics = SensorMetrics(version)
        self.metrics_server: MetricsServer | None = None
        self.capture = LiveCapture(
            capture,
            self.pipeline,
            clock=clock,
            open_source=open_source,
            setup_iface=lambda c: iface.setup(c, runner),
            hopper=hopper,
            on_tick=self._tick,
        )

    def _tick(self, capture: LiveCapture) -> None:
        snap = snapshot(capture, spool_depth=self.spool_depth(), events_sent=self.events.sent)
        self.metrics.update(snap)
        try:
            self.status.tick(snap)
        except MqttError as exc:
            log.warning("status not published: %s", exc)
        sd_notify("WATCHDOG=1")

    def run(self) -> None:
        """Capture until stop(); then finish()."""
        health = self.config.health
        if health.metrics_port:
            self.metrics_server = serve_metrics(self.metrics, health.metrics_host, health.metrics_port)
        if self.home_assistant is not None:
            self.home_assistant.start()
        sd_notify("READY=1")
        try:
            self.capture.run()
        finally:
            self.finish()

    def stop(self) -> None:
        self.capture.stop()

    def finish(self) -> None:
        sd_notify("STOPPING=1")
        self.pipeline.presence.flush()  # open visits close now and are published, not lost
        self.status.final(
            snapshot(self.capture, spool_depth=self.spool_depth(), events_sent=self.events.sent)
        )
        try:
            self.sink.close()
        finally:
            if self.metrics_server is not None:
                self.metrics_server.close()
            if self.home_assistant is not None:
                self.home_assistant.close()
            for close in self.closing:
                close()


def open_live_sensor(config: SensorConfig, version: str) -> LiveSensor:
    """The sensor `footfall-sensor run` starts: raises SourceError or MqttError if it cannot start.

    Opt-outs and consents come as in replay, from the retained control topic (fails closed with a
    token key); the MQTT sink spools durably and forwards.
    """
    salts = key_salt_source(config)
    try:
        privacy, control_client = privacy_filter(config, None, True)
        try:
            sink = MqttSink.connect(config, version, time.time_ns())
        except BaseException:
            if control_client is not None:
                control_client.close()
            raise
    except BaseException:
        salts.close()
        raise
    ha = None
    if config.health.home_assistant.enabled:
        ha = HomeAssistantLink(config, version, lambda: datetime.now(UTC))
    closing = [salts.close] + ([control_client.close] if control_client is not None else [])
    return LiveSensor(
        config,
        salts,
        sink,
        version,
        home_assistant=ha,
        drop_mac=privacy.drop,
        consent_of_mac=privacy.consent_token,
        spool_depth=lambda: sink.spool_depth,
        closing=closing,
    )


def snapshot(capture: LiveCapture, *, spool_depth: int | None = None, events_sent: int = 0) -> Snapshot:
    """The capture's and the pipeline's figures now, for status and metrics."""
    p, c, stats = capture.pipeline, capture.counters, capture.pipeline.decoder.stats
    hopper = capture.hopper
    truncated = capture.source.truncated if capture.source is not None else 0
    return Snapshot(
        at_ns=capture.clock.wall_ns(),
        uptime_s=capture.clock.monotonic() - capture.started,
        interface=capture.capture.interface,
        capture_up=capture.source is not None,
        down_reason=capture.down_reason,
        channel=hopper.current if hopper is not None else None,
        hopping=len(capture.capture.channels) > 1,
        frames=c.frames,
        probe_requests=stats.probe_requests,
        decode_errors=dict(stats.errors),
        kernel_drops=c.kernel_drops,
        app_drops=c.app_drops + truncated,
        stalls=c.stalls,
        opens=c.opens,
        failures=c.failures,
        hops=hopper.hops if hopper is not None else 0,
        hop_failures=hopper.failures if hopper is not None else 0,
        open_visits=p.presence.open_visits,
        visits_emitted=p.presence.visits_emitted,
        counts_emitted=p.presence.counts_emitted,
        events_sent=events_sent,
        spool_depth=spool_depth,
        epoch=p.pseudonyms.epoch,
        dropped_optout=p.dropped_optout,
        dropped_epoch_gone=p.dropped_epoch_gone,
    )
