"""`footfall-collector profiles|events|journeys|kpis|api`: the omnichannel side on the command line.

Imports are all or nothing, like the API: every bad row is listed as FILE:LINE: reason, and then
nothing is stored, so a fixed file can simply be imported again.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import click

from collector.cli.common import CONFIG_OPTION, DB_OPTION, day_option, load_config
from collector.cli.common import opened as opened_store
from collector.config import CollectorConfig
from collector.online import journeys as journeys_
from collector.online import kpis as omnichannel
from collector.online.profile_files import Parsed, read_records
from collector.online.profiles import OnlineEvent, Profile, Record
from collector.storage.base import ProfileStore, Store

MAX_LISTED = 50
_FORMATS: dict[str, Literal["csv", "jsonl"]] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}

_FILE_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "csv", "jsonl"]),
    default="auto",
    show_default=True,
    help="auto: by the file's suffix (.csv; .jsonl, .ndjson or .json for JSON lines).",
)


def config_for(config_path: Path | None, db_path: Path | None) -> CollectorConfig:
    if db_path is not None and config_path is not None:
        raise click.UsageError("give --db or --config, not both")
    return load_config(config_path, db_path)


@contextmanager
def opened(config: CollectorConfig, *, create: bool) -> Iterator[tuple[Store, ProfileStore]]:
    with opened_store(config, create=create) as db:
        yield db, db.profiles()


def _file_format(path: str, fmt: str) -> Literal["csv", "jsonl"]:
    if fmt != "auto":
        return "csv" if fmt == "csv" else "jsonl"
    found = _FORMATS.get(Path(path).suffix.lower())
    if found is None:
        raise click.BadParameter(
            f"cannot tell the format of {path!r} by its suffix: give --format csv or jsonl",
            param_hint="'--format'",
        )
    return found


def _read(file: str, fmt: str, model: type[Record], now: datetime) -> Parsed[Record]:
    """Read and check the whole file; list every bad row and stop if there is one."""
    kind = _file_format(file, fmt)
    try:
        if file == "-":
            parsed = read_records(sys.stdin, model, kind, now)
        else:
            with Path(file).open(encoding="utf-8-sig", newline="") as stream:
                parsed = read_records(stream, model, kind, now)
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{file}: cannot read: {exc}") from None
    if parsed.bad:
        for bad in parsed.bad[:MAX_LISTED]:
            click.echo(f"{file}:{bad.line}: {bad.reason}", err=True)
        if len(parsed.bad) > MAX_LISTED:
            click.echo(f"... and {len(parsed.bad) - MAX_LISTED} more", err=True)
        raise click.ClickException(f"{file}: {len(parsed.bad)} bad rows: nothing stored")
    return parsed


@click.group("profiles")
def profiles_group() -> None:
    """Online profiles (id, attributes, segments) from the marketing tool."""


@profiles_group.command("import")
@click.argument("file")
@_FILE_FORMAT
@DB_OPTION
@CONFIG_OPTION
def profiles_import(file: str, fmt: str, db_path: Path | None, config_path: Path | None) -> None:
    """Store the profiles of FILE ('-' for stdin): CSV with columns id, segments (';'-separated) and any
    attribute columns, or JSON lines {"id", "attributes", "segments"}. A profile sent again is replaced."""
    config = config_for(config_path, db_path)
    now = datetime.now(UTC)
    parsed = _read(file, fmt, Profile, now)
    with opened(config, create=True) as (_, profiles):
        counts = profiles.put_profiles(parsed.records, now)
    click.echo(
        f"{file}: {len(parsed.records)} profiles: {counts.added} added, {counts.updated} updated, "
        f"{counts.unchanged} unchanged"
    )


@profiles_group.command("erase")
@click.argument("profile")
@DB_OPTION
@CONFIG_OPTION
def profiles_erase(profile: str, db_path: Path | None, config_path: Path | None) -> None:
    """Delete PROFILE and its online events (the right to erasure). Its consents stay in the registry
    until withdrawn (`consent remove`)."""
    with opened(config_for(config_path, db_path), create=False) as (_, profiles):
        deleted, events = profiles.erase(profile)
    if not deleted and not events:
        raise click.ClickException(f"no profile or online event for {profile!r}")
    click.echo(f"profile {profile}: {deleted} profile and {events} online events erased")


@click.group("events")
def events_group() -> None:
    """Online events (web, app, e-mail) of the profiles."""


@events_group.command("import")
@click.argument("file")
@_FILE_FORMAT
@DB_OPTION
@CONFIG_OPTION
def events_import(file: str, fmt: str, db_path: Path | None, config_path: Path | None) -> None:
    """Store the online events of FILE ('-' for stdin): CSV or JSON lines with id, profile_id, at (ISO
    8601 with an offset), channel (web|app|email), type (page_view|product_view|add_to_cart|purchase),
    product and value (both optional). An id already stored is skipped."""
    config = config_for(config_path, db_path)
    parsed = _read(file, fmt, OnlineEvent, datetime.now(UTC))
    with opened(config, create=True) as (_, profiles):
        new = profiles.add_online_events(parsed.records)
    click.echo(
        f"{file}: {len(parsed.records)} online events: {new} new, {len(parsed.records) - new} already stored"
    )


@click.command("journeys")
@click.option("--profile", required=True, metavar="PROFILE", help="Profile id (it must have a consent).")
@click.option(
    "--format", "fmt", type=click.Choice(sorted(journeys_.RENDERERS)), default="table", show_default=True
)
@DB_OPTION
@CONFIG_OPTION
def journeys(profile: str, fmt: str, db_path: Path | None, config_path: Path | None) -> None:
    """The merged timeline of a consented profile's online events and store visits."""
    config = config_for(config_path, db_path)
    with opened(config, create=False) as (_, profiles):
        try:
            journey = journeys_.for_profile(profiles, profile)
        except journeys_.JourneyError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(journeys_.RENDERERS[fmt](journey, config.report.zone), nl=False)


@click.command("kpis")
@click.option("--store", "store_name", required=True, metavar="STORE", help="Store to report on.")
@click.option("--from", "first", callback=day_option, metavar="DATE", help="First day, YYYY-MM-DD, local.")
@click.option("--to", "last", callback=day_option, metavar="DATE", help="Last day, inclusive.")
@click.option(
    "--days",
    type=click.IntRange(1, 365),
    default=omnichannel.DEFAULT_DAYS,
    show_default=True,
    help="N: how many days after (or before) an event still counts as leading to the other.",
)
@click.option(
    "--format", "fmt", type=click.Choice(sorted(omnichannel.RENDERERS)), default="table", show_default=True
)
@DB_OPTION
@CONFIG_OPTION
def kpis(
    store_name: str,
    first: date | None,
    last: date | None,
    days: int,
    fmt: str,
    db_path: Path | None,
    config_path: Path | None,
) -> None:
    """Omnichannel KPIs of a store: web-to-store, store-to-web, lag, recognised visitors, per day."""
    config = config_for(config_path, db_path)
    zone = config.report.zone
    with opened(config, create=False) as (db, profiles):
        extent = db.extent(store_name)
        if extent is None:
            raise click.ClickException(f"no events for store {store_name!r} in {config.store.path}")
        data_first, data_last = (extent[0].astimezone(zone).date(), extent[1].astimezone(zone).date())
        first = first or (data_first if last is None else min(data_first, last))
        last = last or max(data_last, first)
        if first > last:
            raise click.BadParameter(f"--from {first} is after --to {last}", param_hint="'--from'/'--to'")
        result = omnichannel.for_store(db, profiles, store_name, first, last, config.report, days)
    click.echo(omnichannel.RENDERERS[fmt](result), nl=False)


def _default_token_file() -> str | None:
    """A systemd credential named api-token, when the service runs with LoadCredential=."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    return str(Path(directory) / "api-token") if directory else None


@click.command("api")
@CONFIG_OPTION
@DB_OPTION
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (put TLS in front)."
)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FOOTFALL_API_TOKEN_FILE",
    default=_default_token_file,
    help="Owner-only file with the bearer token (default: $CREDENTIALS_DIRECTORY/api-token).",
)
def api(
    config_path: Path | None, db_path: Path | None, host: str, port: int, token_file: Path | None
) -> None:
    """Serve the HTTP API (/v1, OpenAPI description at /openapi.json) and the dashboard (/) until SIGTERM/SIGINT."""
    try:
        import uvicorn

        from collector.api.app import ApiTokenError, create_app, load_api_token
    except ImportError as exc:
        raise click.ClickException(
            f"the API needs the collector extra (pip install 'footfall[collector]'): {exc}"
        ) from None
    from collector.privacy.keys import load_token_key
    from collector.privacy.registry import PrivacyError

    if token_file is None:
        raise click.UsageError(
            "give --token-file (or FOOTFALL_API_TOKEN_FILE, or a systemd credential api-token)"
        )
    config = config_for(config_path, db_path)
    try:
        token = load_api_token(Path(token_file))
        key = load_token_key(config.privacy.token_key_file) if config.privacy.token_key_file else None
    except (ApiTokenError, PrivacyError) as exc:
        raise click.ClickException(str(exc)) from None
    with opened(config, create=True) as (db, _):
        app = create_app(config, db, token, key=key)
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, server_header=False, log_level="info")
        )
        # Served from a thread so that SIGTERM ends it gracefully *and* the store is closed after it
        # (uvicorn in the main thread re-raises the signal once it stopped, killing the process).
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: setattr(server, "should_exit", True))
        thread = threading.Thread(target=server.run, name="api")
        thread.start()
        while thread.is_alive():
            thread.join(0.5)
        if not server.started:
            raise click.ClickException(f"the API did not start on {host}:{port} (see the log above)")


COMMANDS: tuple[click.Command, ...] = (profiles_group, events_group, journeys, kpis, api)
