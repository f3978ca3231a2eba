"""`footfall-sensor`: replay captures, check config, manage keys (and, on the Pi, capture live)."""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from pathlib import Path
from typing import BinaryIO

import click

from footfall.cli import load_or_fail, package_version, tool_group
from footfall.configfile import ConfigError
from footfall.mqtttypes import MqttError  # not footfall.mqtt: a replay to JSON lines never imports paho
from sensor import config as sensor_config
from sensor.cli import progress
from sensor.decode.capture import CaptureError, CaptureReader, merge_captures, read_capture
from sensor.keys.consent import PrivacyFilter
from sensor.keys.keystore import KeyFileError, StoreSeed
from sensor.keys.pseudonym import FixedSalt, SaltSource
from sensor.keys.seedsalts import SeedSalts, SeedTooLate
from sensor.live.sources import SourceError, privacy_filter
from sensor.pipeline import Pipeline, Sink
from sensor.publish.jsonl import JsonlSink

log = logging.getLogger("footfall.sensor")
_GC_THRESHOLD = 20_000  # allocations between two young-generation collections during a replay


# Imported when asked for: a replay then imports neither the calibration nor the live capture code.
LAZY_COMMANDS = {
    "calibrate": "sensor.cli.calibrate:calibrate",
    "keys": "sensor.cli.keys:keys",
    "run": "sensor.cli.live:run",
    "doctor": "sensor.cli.live:doctor",
    "iface": "sensor.cli.live:iface_group",
}


@tool_group("footfall-sensor", lazy=LAZY_COMMANDS)
def main() -> None:
    """footfall sensor: turns Wi-Fi probe requests into anonymous footfall events."""


def load_config(path: Path | None) -> sensor_config.SensorConfig:
    return load_or_fail(sensor_config.load, path)


def salt_source(seed: Path | None = None) -> SaltSource:
    """Replay salts: from a store seed (deterministic), else a throwaway key that dies with the process.

    A sensor key file is deliberately not used for replay: its ratchet only moves forward, so an old
    capture could not be served, and a capture with future timestamps would burn the live salts.
    """
    if seed is not None:
        try:
            return SeedSalts(StoreSeed.load(seed))
        except KeyFileError as exc:
            raise click.ClickException(str(exc)) from None
    log.info("no --seed given: pseudonyms use a throwaway key (stable only within this run)")
    return FixedSalt(os.urandom(32), epoch="ephemeral")


def _cut_short(readers: list[CaptureReader]) -> list[str]:
    """A warning for each capture whose last record was cut short."""
    return [
        f"{reader.source}: truncated_record at byte {reader.truncated_at} (the rest was ignored)"
        for reader in readers
        if reader.truncated_tail
    ]


def _with_site(
    config: sensor_config.SensorConfig, store: str | None, sensor_name: str | None
) -> sensor_config.SensorConfig:
    """`config` with the site's store and sensor overridden from the command line (validated again)."""
    if not (store or sensor_name):
        return config
    site = config.site.model_copy(update={k: v for k, v in (("store", store), ("sensor", sensor_name)) if v})
    return config.model_copy(update={"site": sensor_config.SiteConfig.model_validate(site.model_dump())})


def _summary(pipeline: Pipeline, privacy: PrivacyFilter, destination: str, elapsed: float) -> None:
    """The replay's figures, on stderr: frames, events, malformed frames, privacy control applied."""
    stats = pipeline.decoder.stats
    click.echo(
        f"replayed {stats.frames} frames ({stats.probe_requests} probe requests, {stats.connected} of stations "
        f"connected to store networks) in {elapsed:.2f} s: "
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
    "--strict", is_flag=True, help="A capture cut short (a truncated last record) is an error, not a warning."
)
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
    strict: bool,
    quiet: bool,
) -> None:
    """Replay pcap/pcapng CAPTURES (several files are merged in time order) through the sensor."""
    config = _with_site(load_config(config_path), store, sensor_name)
    salts = salt_source(seed)
    try:
        privacy, control_client = privacy_filter(config, privacy_control, destination == "mqtt")
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    started = time.monotonic()
    sink: Sink
    if destination == "jsonl":
        stream: BinaryIO = out.open("wb") if out else sys.stdout.buffer
        sink = JsonlSink(stream, close_stream=out is not None)
    else:
        try:
            from sensor.publish.mqttsink import MqttSink  # the spool and forwarder: only to publish

            sink = MqttSink.connect(config, package_version(), time.time_ns())
        except (MqttError, ConfigError) as exc:
            raise click.ClickException(str(exc)) from None
    pipeline = Pipeline(config, salts, sink, drop_mac=privacy.drop, consent_of_mac=privacy.consent_token)
    # The pipeline makes few reference cycles but many short-lived objects: at the default threshold
    # (700 allocations) the cycle collector runs every few frames, ~5 % of a compiled replay.
    thresholds = gc.get_threshold()
    gc.set_threshold(_GC_THRESHOLD)
    # What start-up made (modules, classes, pydantic's schemas: ~10^5 objects, alive to the end) is moved
    # out of the collector's generations, so a full collection during the replay no longer traverses it.
    # Safe: frozen objects are only never collected, and a cycle among them would have lived to the exit
    # anyway; everything the replay allocates is collected as before (unfrozen again after it).
    gc.freeze()
    try:
        size = sum(p.stat().st_size for p in captures)
        readers = [read_capture(path) for path in captures]
        # The merged records straight into the pipeline (no generator of ours between: see progress.records)
        pipeline.run(progress.records(merge_captures(readers), size, show=progress.wanted(quiet)))
        pipeline.finish()
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from None
    except MqttError as exc:
        raise click.ClickException(str(exc)) from None
    except SeedTooLate as exc:
        raise click.ClickException(
            f"{exc}: make a seed with `keys seed --at` before the capture starts"
        ) from None
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        if control_client is not None:
            control_client.close()
    _summary(pipeline, privacy, destination, time.monotonic() - started)
    cut = _cut_short(readers)
    for warning in cut:
        click.echo(f"warning: {warning}", err=True)
    if cut:
        click.echo(f"capture warnings: truncated_record={len(cut)}", err=True)
    if strict and cut:
        raise click.ClickException(f"{len(cut)} captures cut short (--strict)")


@main.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def check_config(path: Path) -> None:
    """Validate a sensor config file and print the effective settings."""
    config = load_config(path)
    click.echo(f"{path}: OK")
    click.echo(config.model_dump_json(indent=2))
