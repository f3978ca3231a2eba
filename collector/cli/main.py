"""`footfall-collector`: run the collector, ingest a JSON-lines file, print reports and the event schema."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from collector.cli.common import CONFIG_OPTION, DB_OPTION, day_option, load_config, opened
from collector.ingest.ingestor import Ingestor
from collector.ingest.service import Collector
from collector.reports import report as reports
from collector.storage.base import StoreError
from footfall.cli import tool_group
from footfall.configfile import ConfigError
from footfall.events import json_schemas
from footfall.mqtt import MqttError

log = logging.getLogger("footfall.collector")


@tool_group("footfall-collector")
def main() -> None:
    """footfall collector: stores the sensors' events and reports footfall per store."""


@main.command()
@CONFIG_OPTION
@click.option(
    "--until-idle",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Exit once this many seconds pass without a message (counted from the connection).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    envvar="FOOTFALL_COLLECTOR_METRICS_PORT",
    help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics (0: any free port; default: off).",
)
def run(config_path: Path | None, until_idle: float | None, metrics_port: int | None) -> None:
    """Subscribe to the broker and store events until SIGTERM/SIGINT (or --until-idle)."""
    config = load_config(config_path)
    try:
        collector = Collector(config)
        metrics = None
        if metrics_port is not None:
            from collector.ingest import metrics as collector_metrics

            metrics = collector_metrics.serve(lambda: collector.stats, port=metrics_port)
        try:
            collector.run(until_idle)
        finally:
            if metrics is not None:
                metrics.close()
    except (ConfigError, MqttError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot serve metrics on port {metrics_port}: {exc.strerror}") from None


@main.command()
@click.option("--store", "store_name", required=True, metavar="STORE", help="Store to report on.")
@DB_OPTION
@CONFIG_OPTION
@click.option(
    "--from",
    "first",
    callback=day_option,
    metavar="DATE",
    help="First day, YYYY-MM-DD, local (default: the first day with data).",
)
@click.option(
    "--to",
    "last",
    callback=day_option,
    metavar="DATE",
    help="Last day, inclusive (default: the last day with data).",
)
@click.option(
    "--format", "fmt", type=click.Choice(sorted(reports.RENDERERS)), default="table", show_default=True
)
def report(
    *,
    store_name: str,
    db_path: Path | None,
    config_path: Path | None,
    first: date | None,
    last: date | None,
    fmt: str,
) -> None:
    """Footfall of one store per hour, with totals, capture rate, dwell time and repeat visitors."""
    if db_path is not None and config_path is not None:
        raise click.UsageError("give --db or --config, not both")
    config = load_config(config_path, db_path)
    zone = config.report.zone
    with opened(config, create=False) as db:
        known = db.stores()
        if store_name not in known:
            raise click.ClickException(
                f"no events for store {store_name!r} in {config.store.path} (stores there: {', '.join(known) or 'none'})"
            )
        extent = db.extent(store_name)
        today = datetime.now(zone).date()
        data_first, data_last = (
            (extent[0].astimezone(zone).date(), extent[1].astimezone(zone).date())
            if extent
            else (today, today)
        )
        first = first or (data_first if last is None else min(data_first, last))
        last = last or max(data_last, first)
        if first > last:
            raise click.BadParameter(f"--from {first} is after --to {last}", param_hint="'--from'/'--to'")
        result = reports.for_store(db, store_name, first, last, config.report)
    click.echo(reports.RENDERERS[fmt](result), nl=False)


@main.command()
@click.argument("file", type=click.File("rb"))
@DB_OPTION
@CONFIG_OPTION
@click.option("--strict", is_flag=True, help="Exit with status 1 if any line was rejected.")
def ingest(*, file: Any, db_path: Path | None, config_path: Path | None, strict: bool) -> None:
    """Store the events of a JSON-lines FILE (one MQTT payload a line; '-' for stdin) like the live path."""
    if db_path is not None and config_path is not None:
        raise click.UsageError("give --db or --config, not both")
    config = load_config(config_path, db_path)
    name = getattr(file, "name", "<stdin>")
    lines = 0
    with opened(config, create=True) as db:
        ingestor = Ingestor(db, config.ingest, config.mqtt.topic_prefix)
        for number, raw in enumerate(file, start=1):
            line = raw.strip()
            if line:
                lines += 1
                ingestor.handle_line(line, source=f"{name}:{number}")
        ingestor.flush()
        stats = ingestor.stats
    click.echo(f"{name}: {lines} lines: {stats.line()}")
    if stats.store_errors:
        raise click.ClickException(f"{stats.pending} events could not be stored in {config.store.path}")
    if strict and stats.rejected:
        raise click.ClickException(f"{sum(stats.rejected.values())} lines rejected")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True)
def schema(fmt: str) -> None:
    """Print the event schemas (JSON Schema, or Markdown tables for the README)."""
    schemas = json_schemas()
    if fmt == "json":
        click.echo(json.dumps(schemas, indent=2))
    else:
        click.echo(schema_markdown(schemas), nl=False)


def schema_markdown(schemas: dict[str, dict[str, Any]]) -> str:
    """One table per event: field, type, description (the README's schema section)."""
    out: list[str] = []
    for name, spec in schemas.items():
        required = set(spec.get("required", []))
        out += [f"### `{name}`", "", spec.get("description", "").strip(), ""]
        out += ["| Field | Type | Description |", "|---|---|---|"]
        for field, prop in spec.get("properties", {}).items():
            described = prop.get("description", "")
            if "const" in prop:  # the schema name: optional to the model, required by the collector
                described = "schema name and version; the collector rejects a payload without it"
            elif field not in required:
                default = prop.get("default")
                described = f"{described} (optional" + (
                    f", default {json.dumps(default)})" if default is not None else ")"
                )
            out.append(f"| `{field}` | {_md(_type_of(prop))} | {_md(described.strip())} |")
        out.append("")
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _type_of(prop: dict[str, Any]) -> str:
    """A short human type for a JSON Schema property: 'integer ≥ 0', 'string (date-time)', 'a | b'..."""
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " or ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type_of(p) for p in prop["anyOf"])
    kind = str(prop.get("type", "any"))
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"object of {_type_of(prop['additionalProperties'])}"
    limits = [
        f"{symbol} {prop[key]}"
        for key, symbol in (
            ("minimum", "≥"),
            ("exclusiveMinimum", ">"),
            ("maximum", "≤"),
            ("maxLength", "length ≤"),
        )
        if key in prop
    ]
    if "format" in prop:
        limits.insert(0, str(prop["format"]))
    if "pattern" in prop:
        limits.append(f"`{prop['pattern']}`")
    return kind + (f" ({', '.join(limits)})" if limits else "")


def _register() -> None:
    from collector.cli.calibration import calibration
    from collector.cli.omni import COMMANDS as OMNI
    from collector.cli.pki import pki
    from collector.cli.privacy import COMMANDS as PRIVACY
    from collector.cli.users import users

    for command in (*PRIVACY, *OMNI, pki, users, calibration):
        main.add_command(command)


_register()

if __name__ == "__main__":
    main()
