"""`footfall-sensor run | doctor | iface`: the Pi side (registered in sensor/cli/main.py with add_command).

The commands parse and call: the live sensor is composed in sensor/live/sensor.py, the checks are
sensor/doctor/, the interface set-up sensor/live/iface.py.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click

from footfall.configfile import ConfigError
from footfall.mqtt import MqttError
from sensor import config as sensor_config
from sensor.doctor import checks as doc
from sensor.live import iface
from sensor.live.channels import ChannelPlan

log = logging.getLogger("footfall.sensor")
_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FOOTFALL_SENSOR_CONFIG",
    help="Sensor config YAML.",
)


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
    from sensor.live.sensor import open_live_sensor
    from sensor.live.sources import SourceError

    config = _load(config_path)
    version = package_version()
    try:
        sensor = open_live_sensor(config, version)
    except (SourceError, MqttError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
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
"""The live commands; sensor/cli/main.py's LAZY_COMMANDS names each, imported when asked for."""
