"""`footfall-sensor`: replay captures, check config, manage keys (and, on the Pi, capture live)."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import click

from footfall.broker import broker_settings
from footfall.cli import load_or_fail, package_version, tool_group
from footfall.control import control_topic
from footfall.mqtt import Message, MqttClient, MqttError
from footfall.tokens import TokenKey
from sensor import config as sensor_config
from sensor.cli import progress
from sensor.decode.capture import CaptureError, merge_captures
from sensor.decode.frames import CaptureRecord
from sensor.keys.consent import PrivacyFilter
from sensor.keys.keystore import KeyFileError
from sensor.keys.pseudonym import FixedSalt, SaltSource
from sensor.keys.seedsalts import SeedTooLate
from sensor.pipeline import Pipeline, Sink
from sensor.publish.publisher import JsonlSink, MqttSink

log = logging.getLogger("footfall.sensor")


@tool_group("footfall-sensor")
def main() -> None:
    """footfall sensor: turns Wi-Fi probe requests into anonymous footfall events."""


def load_config(path: Path | None) -> sensor_config.SensorConfig:
    return load_or_fail(sensor_config.load, path)


def salt_source(config: sensor_config.SensorConfig, seed: Path | None = None) -> SaltSource:
    """Replay salts: from a store seed (deterministic), else a throwaway key that dies with the process.

    A sensor key file is deliberately not used for replay: its ratchet only moves forward, so an old
    capture could not be served, and a capture with future timestamps would burn the live salts.
    """
    if seed is not None:
        from sensor.keys.keystore import KeyFileError, StoreSeed
        from sensor.keys.seedsalts import SeedSalts

        try:
            return SeedSalts(StoreSeed.load(seed))
        except KeyFileError as exc:
            raise click.ClickException(str(exc)) from None
    log.info("no --seed given: pseudonyms use a throwaway key (stable only within this run)")
    return FixedSalt(os.urandom(32), epoch="ephemeral")


def key_salt_source(config: sensor_config.SensorConfig) -> SaltSource:
    """The live sensor's ratcheting key file."""
    key_file = config.privacy.key_file
    if key_file is None:
        raise click.ClickException(
            "privacy.key_file is not set: provision one with `footfall-sensor keys provision`"
        )
    from sensor.keys.keystore import KeyFileError, KeyStore

    try:
        return KeyStore.open(key_file)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None


def privacy_filter(
    config: sensor_config.SensorConfig, control_file: Path | None, subscribe: bool
) -> tuple[PrivacyFilter, MqttClient | None]:
    """The opt-out/consent filter, fed from a control file, or from the retained control topic.

    Publishing to MQTT with a token key fails closed: without the opt-out list no frame is processed.
    """
    key_file, site = config.privacy.token_key_file, config.site
    try:
        key = TokenKey.load(key_file) if key_file is not None else None
    except KeyFileError as exc:
        raise click.ClickException(f"privacy.token_key_file: {exc}") from None
    privacy = PrivacyFilter(site.store, key)
    if control_file is not None:
        outcome = privacy.apply(control_file.read_bytes())
        if not outcome.accepted:
            raise click.ClickException(f"{control_file}: refused ({outcome.reason}): {outcome.detail}")
        return privacy, None
    if key is None:
        log.warning("privacy.token_key_file is not set: opt-outs and consents are not applied")
        return privacy, None
    if not subscribe:
        log.warning("no --privacy-control file: opt-outs and consents are not applied to this replay")
        return privacy, None
    topic = control_topic(config.mqtt.topic_prefix, site.store)
    client = MqttClient(broker_settings(config.mqtt, f"footfall-sensor-{site.store}-{site.sensor}-privacy"))

    def on_control(message: Message) -> None:
        privacy.apply(message.payload)

    client.subscribe(topic, on_control, qos=1)
    try:
        client.connect()
    except MqttError as exc:
        raise click.ClickException(str(exc)) from None
    if not privacy.received.wait(config.privacy.control_wait_s):
        client.close()
        refused = ", ".join(f"{r} {n}" for r, n in sorted(privacy.rejected.items()))
        raise click.ClickException(
            f"no usable privacy control message on {topic} within {config.privacy.control_wait_s:g} s"
            f"{f' (refused: {refused})' if refused else ''}: not publishing without the opt-out list"
            " (is the collector running with the same token key?)"
        )
    return privacy, client


def _records(paths: tuple[Path, ...]) -> Iterator[CaptureRecord]:
    try:
        yield from merge_captures(list(paths))
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.argument(
    "captures", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="Sensor config YAML."
)
@click.option(
    "--to",
    "destination",
    type=click.Choice(["mqtt", "jsonl"]),
    default="mqtt",
    show_default=True,
    help="Publish to the configured broker, or write JSON lines (exactly the MQTT payloads).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --to jsonl: file to write (default stdout).",
)
@click.option(
    "--seed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Store seed (footfall-sensor keys seed): same seed + same capture = same pseudonyms and event ids.",
)
@click.option("--store", help="Override site.store from the config.")
@click.option("--sensor", "sensor_name", help="Override site.sensor from the config.")
@click.option(
    "--privacy-control",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Opt-outs and consents from this file (footfall-collector tokens control) instead of the broker.",
)
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress bar (one is drawn on a terminal for a long replay)."
)
def replay(
    captures: tuple[Path, ...],
    config_path: Path | None,
    destination: str,
    out: Path | None,
    seed: Path | None,
    store: str | None,
    sensor_name: str | None,
    privacy_control: Path | None,
    quiet: bool,
) -> None:
    """Replay pcap/pcapng CAPTURES (several files are merged in time order) through the sensor."""
    config = load_config(config_path)
    if store or sensor_name:
        site = config.site.model_copy(
            update={k: v for k, v in (("store", store), ("sensor", sensor_name)) if v}
        )
        config = config.model_copy(
            update={"site": sensor_config.SiteConfig.model_validate(site.model_dump())}
        )
    salts = salt_source(config, seed)
    privacy, control_client = privacy_filter(config, privacy_control, destination == "mqtt")
    started = time.monotonic()
    sink: Sink
    if destination == "jsonl":
        stream: BinaryIO = out.open("wb") if out else sys.stdout.buffer
        sink = JsonlSink(stream, close_stream=out is not None)
    else:
        try:
            sink = MqttSink.connect(config, package_version(), time.time_ns())
        except MqttError as exc:
            raise click.ClickException(str(exc)) from None
    pipeline = Pipeline(config, salts, sink, drop_mac=privacy.drop, consent_of_mac=privacy.consent_token)
    try:
        size = sum(p.stat().st_size for p in captures)
        pipeline.run(progress.records(_records(captures), size, show=progress.wanted(quiet)))
        pipeline.finish()
    except MqttError as exc:
        raise click.ClickException(str(exc)) from None
    except SeedTooLate as exc:
        raise click.ClickException(
            f"{exc}: make a seed with `keys seed --at` before the capture starts"
        ) from None
    finally:
        if control_client is not None:
            control_client.close()
    stats = pipeline.decoder.stats
    elapsed = time.monotonic() - started
    click.echo(
        f"replayed {stats.frames} frames ({stats.probe_requests} probe requests) in {elapsed:.2f} s: "
        f"{pipeline.presence.visits_emitted} visit and {pipeline.presence.counts_emitted} count events "
        f"to {destination}",
        err=True,
    )
    if stats.errors:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(stats.errors.items()))
        click.echo(f"skipped malformed frames: {reasons}", err=True)
    optouts, consents = privacy.counts
    click.echo(
        f"privacy: control revision {privacy.revision} ({optouts} opt-outs, {consents} consents):"
        f" dropped {pipeline.dropped_optout} frames of opted-out devices",
        err=True,
    )


@main.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def check_config(path: Path) -> None:
    """Validate a sensor config file and print the effective settings."""
    config = load_config(path)
    click.echo(f"{path}: OK")
    click.echo(config.model_dump_json(indent=2))


def _register() -> None:
    from sensor.cli.calibrate import calibrate
    from sensor.cli.keys import keys
    from sensor.cli.live import COMMANDS as LIVE

    for command in (keys, calibrate, *LIVE):
        main.add_command(command)


_register()
