"""`footfall-sensor run | doctor | iface`: the Pi side (registered in sensor/cli/main.py with add_command).

`LiveSensor` is the composition: key store → pipeline → MQTT sink, the capture loop around the
pipeline, and health (status, metrics, watchdog, Home Assistant) reading the loop's snapshots. A
graceful stop (SIGTERM/SIGINT) closes the open visits, publishes them and an `offline` status, and
waits for the broker's acknowledgements.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import click

from footfall.configfile import ConfigError
from footfall.events import Event
from footfall.metrics import MetricsServer, serve_metrics
from footfall.mqtt import MqttError
from sensor import config as sensor_config
from sensor.doctor import checks as doc
from sensor.keys.pseudonym import SaltSource
from sensor.live import iface
from sensor.live.channels import ChannelHopper, ChannelPlan, Runner, run_command
from sensor.live.health import SensorMetrics, Snapshot, StatusReporter, sd_notify
from sensor.live.loop import Clock, LiveCapture, Opener
from sensor.live.packetsocket import PacketSocket
from sensor.pipeline import Pipeline, Sink
from sensor.publish.homeassistant import HomeAssistantLink

log = logging.getLogger("footfall.sensor")
_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FOOTFALL_SENSOR_CONFIG",
    help="Sensor config YAML.",
)


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
    def __init__(
        self,
        config: sensor_config.SensorConfig,
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
    ) -> None:
        self.config = config
        self.salts = salts
        self.sink = sink
        self.home_assistant = home_assistant
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
        snap = snapshot(capture, spool_depth=_spool_depth(self.sink), events_sent=self.events.sent)
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
            snapshot(self.capture, spool_depth=_spool_depth(self.sink), events_sent=self.events.sent)
        )
        try:
            self.sink.close()
        finally:
            if self.metrics_server is not None:
                self.metrics_server.close()
            if self.home_assistant is not None:
                self.home_assistant.close()
            close = getattr(self.salts, "close", None)
            if close is not None:
                close()


def snapshot(capture: LiveCapture, *, spool_depth: int | None = None, events_sent: int = 0) -> Snapshot:
    """The capture's and the pipeline's figures now, for status and metrics."""
    p, c, stats = capture.pipeline, capture.counters, capture.pipeline.decoder.stats
    hopper = capture.hopper
    truncated = capture.source.truncated if capture.source is not None else 0
    scale = p.occupancy.scale if p.occupancy is not None else None
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
        signal_ref_dbm=None if scale is None else scale.reference_dbm,
        signal_offset_db=None if scale is None or scale.offset_db is None else round(scale.offset_db, 1),
        signal_drift=scale is not None and scale.drift,
    )


def _spool_depth(sink: Sink) -> int | None:
    """Events waiting in the MqttSink's spool (`sink.spool.pending_count`); None for a sink without one."""
    depth = getattr(getattr(sink, "spool", None), "pending_count", None)
    return depth if isinstance(depth, int) else None


def _load(path: Path | None) -> sensor_config.SensorConfig:
    try:
        return sensor_config.load(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _on_signals(stop: Callable[[], None]) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: closing open visits and stopping", signal.Signals(signum).name)
        stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


@click.command()
@_CONFIG
def run(config_path: Path | None) -> None:
    """Capture live on the configured monitor interface and publish events (until SIGTERM)."""
    from footfall.cli import package_version
    from sensor.cli.main import key_salt_source, privacy_filter
    from sensor.publish.publisher import MqttSink

    config = _load(config_path)
    version = package_version()
    salts = key_salt_source(config)
    # Opt-outs and consents as in replay: from the retained control topic (fails closed with a token key).
    privacy, control_client = privacy_filter(config, None, True)
    try:
        sink = MqttSink.connect(config, version, time.time_ns())
    except MqttError as exc:
        raise click.ClickException(str(exc)) from None
    ha = None
    if config.health.home_assistant.enabled:
        ha = HomeAssistantLink(config, version, lambda: datetime.now(UTC))
    sensor = LiveSensor(
        config,
        salts,
        sink,
        version,
        home_assistant=ha,
        drop_mac=privacy.drop,
        consent_of_mac=privacy.consent_token,
    )
    _on_signals(sensor.stop)
    log.info(
        "footfall-sensor %s: %s on %s, %s",
        version,
        config.site.sensor,
        config.capture.interface,
        ChannelPlan.from_config(config.capture).describe(),
    )
    try:
        sensor.run()
    except MqttError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if control_client is not None:
            control_client.close()
    c = sensor.capture.counters
    click.echo(
        f"stopped: {c.frames} frames, {c.kernel_drops} kernel drops, {c.app_drops} app drops, "
        f"{sensor.events.sent} events",
        err=True,
    )


@click.command()
@_CONFIG
@click.option(
    "--sample",
    "sample_s",
    type=click.FloatRange(0.5, 120),
    default=5.0,
    show_default=True,
    help="Seconds to listen for frames.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Spool/state directory to check (default: $STATE_DIRECTORY, the key's directory, /var/lib/footfall).",
)
def doctor(config_path: Path | None, sample_s: float, state_dir: Path | None) -> None:
    """Check interface, channel, frames, capabilities, key, broker, clock and disk; say what to fix."""
    try:
        config = sensor_config.load(config_path)
    except ConfigError as exc:
        for line in doc.check_config(config_path, str(exc)).lines():
            click.echo(line)
        sys.exit(1)
    checks = [doc.check_config(config_path, None)]
    checks += doc.run_checks(
        config, doc.Probes(), sample_s=sample_s, state_dir=state_dir or doc.default_state_dir(config)
    )
    for check in checks:
        for line in check.lines():
            click.echo(line)
    if doc.failed(checks):
        sys.exit(1)


@click.group("iface")
def iface_group() -> None:
    """Set up or tear down the monitor interface (footfall-iface.service runs these; needs CAP_NET_ADMIN)."""


@iface_group.command()
@_CONFIG
def setup(config_path: Path | None) -> None:
    """Create/switch the interface to monitor mode, bring it up, tune the first channel."""
    config = _load(config_path)
    try:
        done = iface.setup(config.capture)
    except iface.IfaceError as exc:
        raise click.ClickException(str(exc)) from None
    for step in done:
        click.echo(step)
    click.echo(f"{config.capture.interface}: ready ({iface.read_state(config.capture.interface).describe()})")


@iface_group.command()
@_CONFIG
def teardown(config_path: Path | None) -> None:
    """Delete the interface if footfall created it (capture.phy set), else take it down."""
    config = _load(config_path)
    try:
        done = iface.teardown(config.capture)
    except iface.IfaceError as exc:
        raise click.ClickException(str(exc)) from None
    for step in done or ["nothing to do"]:
        click.echo(step)


COMMANDS = (run, doctor, iface_group)
"""For sensor/cli/main.py: `for command in COMMANDS: main.add_command(command)`."""
