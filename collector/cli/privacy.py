"""`footfall-collector optout|consent|retention|tokens ...`: the registry, retention and the token key by hand.

A MAC typed here is tokenised at once and never stored, printed or logged; `--mac` left out is asked for
on the terminal (or read from stdin), which keeps it out of the shell history and the process list.
After a change, with `--config`, the new control message is published to the configured broker at once;
a running collector also notices the change within seconds, and any collector publishes it on start.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from collector.cli.common import load_config, opened
from collector.config import CollectorConfig
from collector.privacy import retention as retention_
from collector.privacy.control import control_messages, control_stores, publish_now
from collector.privacy.csvimport import read_csv
from collector.privacy.keys import init_token_key, load_token_key
from collector.privacy.registry import PrivacyError, entry, parse_mac
from collector.privacy.timestamps import parse_time
from collector.storage.base import Store
from collector.storage.privacy import ListName, PutOutcome, PutResult, RegistryEntry
from footfall.configfile import ConfigError
from footfall.mqtt import MqttError
from footfall.secretfile import KeyFileError
from footfall.tokens import TokenKey

_PATH = click.Path(dir_okay=False, path_type=Path)


class _Ctx:
    """What every registry command needs: the config, with --db and --token-key applied."""

    def __init__(self, config_path: Path | None, db_path: Path | None, key_path: Path | None) -> None:
        config = load_config(config_path, db_path)
        if key_path is not None:
            privacy = config.privacy.model_copy(update={"token_key_file": key_path})
            config = config.model_copy(update={"privacy": privacy})
        self.config: CollectorConfig = config
        self.broker_configured = config_path is not None

    def key(self) -> TokenKey:
        try:
            return load_token_key(self.config.privacy.token_key_file)
        except PrivacyError as exc:
            raise click.ClickException(str(exc)) from None

    @contextmanager
    def store(self, *, create: bool = True) -> Iterator[Store]:
        with opened(self.config, create=create) as db:
            yield db


def _with_ctx(f: Callable[..., None]) -> Callable[..., None]:
    """--config, --db and --token-key, handed to the command as one `ctx: _Ctx`."""

    @click.option(
        "--config",
        "config_path",
        type=_PATH,
        envvar="FOOTFALL_COLLECTOR_CONFIG",
        help="Collector config YAML; with it, changes are published to its broker at once.",
    )
    @click.option("--db", "db_path", type=_PATH, help="SQLite database (else store.path).")
    @click.option(
        "--token-key",
        "key_path",
        type=_PATH,
        envvar="FOOTFALL_TOKEN_KEY",
        help="Token key file (else privacy.token_key_file).",
    )
    @functools.wraps(f)
    def command(config_path: Path | None, db_path: Path | None, key_path: Path | None, **kwargs: Any) -> None:
        f(_Ctx(config_path, db_path, key_path), **kwargs)

    return command  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC)


def _announce(ctx: _Ctx, db: Store, key: TokenKey, changed: bool) -> None:
    """Tell the sensors (with --config), or say when they will be told."""
    revision = db.registry_revision()
    if not changed:
        click.echo(f"registry unchanged (revision {revision})")
    elif not ctx.broker_configured:
        click.echo(
            f"registry revision {revision} saved; a running collector publishes it to the sensors within"
            " seconds, otherwise it is published when the collector next starts"
        )
    else:
        try:
            sets = publish_now(ctx.config, db, key, _now())
        except (MqttError, ConfigError) as exc:
            raise click.ClickException(
                f"registry revision {revision} saved, but not published: {exc}; the collector publishes it"
                " when it next connects"
            ) from None
        stores = control_stores(ctx.config, db)
        click.echo(
            f"published registry revision {revision} ({len(sets.optout)} opt-outs, {len(sets.consent)}"
            f" consents) to {len(stores)} store(s)"
            + ("" if stores else ": no store known yet (set privacy.stores)")
        )


def _side_effects(result: PutResult) -> str:
    parts = []
    if result.consents_withdrawn:
        parts.append(f"{result.consents_withdrawn} consent(s) withdrawn by the opt-out")
    if result.visit_tokens_cleared:
        parts.append(f"consent token cleared from {result.visit_tokens_cleared} stored visit(s)")
    return "; " + "; ".join(parts) if parts else ""


def _render(entries: Sequence[RegistryEntry], fmt: str) -> str:
    head = ("token", "profile_id", "timestamp", "source")
    rows = [(e.token, e.profile, e.at.isoformat(timespec="seconds"), e.source) for e in entries]
    if fmt == "json":
        return json.dumps([dict(zip(head, r, strict=True)) for r in rows], indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([head, *rows])
        return out.getvalue()
    lines = [f"{t:32}  {p:20}  {a:25}  {s}" for t, p, a, s in [head, *rows]]
    return "\n".join([*lines, f"{len(rows)} entries"]) + "\n"


def _noun(list_: ListName) -> str:
    return "opt-out" if list_ == "optout" else "consent"


_MAC_OPTION = click.option(
    "--mac",
    prompt="MAC address",
    help="The device's MAC; left out, it is asked for (off the shell history).",
)


def _register_list_commands(group: click.Group, list_: ListName) -> None:
    """add, remove, import and list, for the opt-out or the consent list."""
    for register in (_add_command, _remove_command, _import_command, _list_command):
        register(group, list_)


def _add_command(group: click.Group, list_: ListName) -> None:
    noun = _noun(list_)

    @group.command("add", help=f"Register one device's {noun}.")
    @_MAC_OPTION
    @click.option(
        "--profile", default="", required=list_ == "consent", help="Profile id in the source system."
    )
    @click.option(
        "--source", default="cli", show_default=True, help="Where it came from (page, portal, CRM)."
    )
    @click.option(
        "--at", "at_text", metavar="TIME", help="When it was given: ISO 8601 or Unix seconds (default now)."
    )
    @_with_ctx
    def add(ctx: _Ctx, mac: str, profile: str, source: str, at_text: str | None) -> None:
        key, now = ctx.key(), _now()
        try:
            at = parse_time(at_text, now) if at_text else now
            made = entry(list_, key, mac=mac, profile=profile, at=at, source=source)
        except PrivacyError as exc:
            raise click.BadParameter(str(exc)) from None
        with ctx.store() as db:
            before = db.registry_revision()
            result = db.registry_put([made], now)
            if result.outcomes[0] is PutOutcome.OPTED_OUT:
                raise click.ClickException(
                    f"device {made.token[:8]}… has opted out: a consent is refused until the opt-out is removed"
                )
            click.echo(f"{noun} {result.outcomes[0].value}: device {made.token[:8]}…{_side_effects(result)}")
            _announce(ctx, db, key, result.revision != before)


def _remove_command(group: click.Group, list_: ListName) -> None:
    noun = _noun(list_)

    @group.command(
        "remove", help=f"Remove one device's {noun}; a consent's token is cleared from stored visits."
    )
    @_MAC_OPTION
    @_with_ctx
    def remove(ctx: _Ctx, mac: str) -> None:
        key = ctx.key()
        try:
            token = key.token(parse_mac(mac))
        except PrivacyError as exc:
            raise click.BadParameter(str(exc)) from None
        with ctx.store() as db:
            result = db.registry_remove(list_, [token])
            if result.removed:
                cleared = f"; consent token cleared from {result.visit_tokens_cleared} stored visit(s)"
                click.echo(f"{noun} removed: device {token[:8]}…{cleared if list_ == 'consent' else ''}")
            else:
                click.echo(f"device {token[:8]}… has no {noun}: nothing removed")
            _announce(ctx, db, key, result.removed + result.visit_tokens_cleared > 0)


def _import_command(group: click.Group, list_: ListName) -> None:
    @group.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--strict", is_flag=True, help="Import nothing if any row is bad or refused (exit 1).")
    @click.option("--source", "default_source", help="Source of rows that name none (default: import:FILE).")
    @_with_ctx
    def import_(ctx: _Ctx, file: Path, strict: bool, default_source: str | None) -> None:
        """Import FILE.csv: a header, then rows of profile_id,mac,timestamp,source (a portal or CRM export)."""
        key, now = ctx.key(), _now()
        try:
            with file.open(encoding="utf-8-sig", newline="") as stream:
                rows = read_csv(list_, stream, key, now, default_source or f"import:{file.name}")
        except (PrivacyError, UnicodeDecodeError, csv.Error) as exc:
            raise click.ClickException(f"{file}: {exc}") from None
        for bad in rows.bad:
            click.echo(f"{file}:{bad.line}: {bad.reason}; skipped", err=True)
        if rows.ignored_columns:
            click.echo(f"{file}: ignored columns (not stored): {', '.join(rows.ignored_columns)}", err=True)
        if strict and rows.bad:
            raise click.ClickException(f"{len(rows.bad)} bad rows; nothing imported (--strict)")
        with ctx.store() as db:
            before = db.registry_revision()
            result = db.registry_put(rows.entries, now, strict=strict)
            for line, outcome in zip(rows.lines, result.outcomes, strict=True):
                if outcome is PutOutcome.OPTED_OUT:
                    click.echo(f"{file}:{line}: the device has opted out; consent refused", err=True)
            counts = Counter(result.outcomes)
            done = ", ".join(f"{counts[o]} {o.value.replace('_', ' ')}" for o in PutOutcome if counts[o])
            total = len(rows.entries) + len(rows.bad)
            click.echo(
                f"{file}: {total} rows: {done or 'nothing'}, {len(rows.bad)} bad{_side_effects(result)}"
            )
            if not result.applied:
                raise click.ClickException("refused rows; nothing imported (--strict)")
            _announce(ctx, db, key, result.revision != before)


def _list_command(group: click.Group, list_: ListName) -> None:
    @group.command("list")
    @click.option(
        "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
    )
    @_with_ctx
    def list_cmd(ctx: _Ctx, fmt: str) -> None:
        """The registered devices, as tokens (the MAC is never kept), oldest first."""
        with ctx.store(create=False) as db:
            click.echo(_render(db.registry_entries(list_), fmt), nl=False)


@click.group()
def optout() -> None:
    """Opted-out devices: the sensors drop their frames before anything else is done with them."""


@click.group()
def consent() -> None:
    """Consented devices: their visits carry a stable token the collector joins to the profile."""


_register_list_commands(optout, "optout")
_register_list_commands(consent, "consent")


@consent.command("visits")
@click.option("--store", "store_name", required=True, metavar="STORE")
@click.option("--from", "first", metavar="DATE", help="First day, YYYY-MM-DD UTC (default: 30 days ago).")
@click.option("--to", "last", metavar="DATE", help="Last day, inclusive (default: today).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_with_ctx
def consent_visits(ctx: _Ctx, store_name: str, first: str | None, last: str | None, fmt: str) -> None:
    """Visits of consented devices, joined to their profile ids."""
    try:
        end_day = date.fromisoformat(last) if last else _now().date()
        start_day = date.fromisoformat(first) if first else end_day - timedelta(days=30)
    except ValueError:
        raise click.BadParameter("dates are YYYY-MM-DD") from None
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC)
    end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC) + timedelta(days=1)
    with ctx.store(create=False) as db:
        visits = db.consented_visits(store_name, start, end)
    if fmt == "json":
        keys = ("profile_id", "sensor", "start", "end", "dwell_s", "kind")
        rows = [
            (v.profile, v.sensor, v.start.isoformat(), v.end.isoformat(), v.dwell_s, v.kind) for v in visits
        ]
        click.echo(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
        return
    click.echo(f"{'profile_id':20}  {'sensor':12}  {'start':25}  {'dwell':>7}  kind")
    for v in visits:
        when = v.start.isoformat(timespec="seconds")
        click.echo(f"{v.profile:20}  {v.sensor:12}  {when:25}  {v.dwell_s / 60:6.1f}m  {v.kind}")
    click.echo(f"{len(visits)} visits by {len({v.profile for v in visits})} profiles")


@click.group()
def retention() -> None:
    """Delete and anonymise stored data per the config's `retention:` section."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")
@click.option("--at", "at_text", metavar="TIME", help="Act as if it were this time (ISO 8601; default now).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_with_ctx
def retention_run(ctx: _Ctx, dry_run: bool, at_text: str | None, fmt: str) -> None:
    """Apply retention now (the running collector also does, every retention.interval_h)."""
    now = _now()
    if at_text:
        try:
            now = datetime.fromisoformat(at_text)
        except ValueError:
            raise click.BadParameter(f"{at_text!r} is not an ISO 8601 time", param_hint="--at") from None
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
    with ctx.store(create=False) as db:
        report = retention_.run(db, ctx.config.retention, now, dry_run=dry_run, profiles=db.profiles())
    click.echo(json.dumps(report.to_dict(), indent=2) if fmt == "json" else report.line())


@click.group()
def tokens() -> None:
    """The deployment's token key, which turns MACs into the tokens of opt-outs and consents."""


@tokens.command("init")
@click.option(
    "--out", required=True, type=_PATH, metavar="FILE", help="Key file to create (0600, never overwritten)."
)
def tokens_init(out: Path) -> None:
    """Create the token key: one per deployment, on the collector and (0600) on every sensor."""
    try:
        key_id = init_token_key(out)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"WARNING: whoever holds {out} and the published token sets can find which MACs opted out or consented"
        " (a 2^40 search). Keep it 0600 on the collector and the sensors only; never copy it elsewhere.",
        err=True,
    )
    click.echo(
        f"{out}: token key {key_id}; set privacy.token_key_file to it on the collector and every sensor"
    )


@tokens.command("id")
@click.argument("keyfile", type=_PATH)
def tokens_id(keyfile: Path) -> None:
    """Print a token key's public id (compare the collector's with a sensor's)."""
    try:
        key = TokenKey.load(keyfile)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(key.key_id)
    key.destroy()


@tokens.command("control")
@click.option("--store", "store_name", required=True, metavar="STORE")
@click.option("--out", type=_PATH, metavar="FILE", help="Write here (default stdout).")
@_with_ctx
def tokens_control(ctx: _Ctx, store_name: str, out: Path | None) -> None:
    """The store's control message as published, for `footfall-sensor replay --privacy-control FILE`."""
    key = ctx.key()
    with ctx.store(create=False) as db:
        sets = db.registry_sets()
    ((_, payload),) = control_messages(sets, key, [store_name], ctx.config.mqtt.topic_prefix, _now())
    if out is None:
        click.echo(payload.decode())
    else:
        out.write_bytes(payload + b"\n")
        click.echo(
            f"{out}: revision {sets.revision}, {len(sets.optout)} opt-outs, {len(sets.consent)} consents"
        )


COMMANDS = (optout, consent, retention, tokens)
"""The groups collector/cli/main.py registers: `for group in COMMANDS: main.add_command(group)`."""
