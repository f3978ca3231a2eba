"""`footfall-sensor keys ...`: make a store seed, provision sensor keys from it, show and rotate them.

The only place in the key code that reads the clock; `--at` stands in for "now" in rehearsals and tests.
Naive `--at` times are read in the store's time zone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from sensor.keys.keystore import EpochGone, KeyFileError, KeyStore, StoreSeed
from sensor.keys.salts import DEFAULT_SPEC, SaltSchedule

_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_PATH = click.Path(dir_okay=False, path_type=Path)
_AT_HELP = "Act as if it were this ISO 8601 time (default: now); naive times are in the store's zone."


@click.group()
def keys() -> None:
    """Store seeds and sensor salt keys (threat model: sensor/keys/keystore.py)."""


@keys.command()
@click.option("--store", required=True, help="Store id: 1-64 of A-Z a-z 0-9 . _ -")
@click.option(
    "--out", required=True, type=_PATH, metavar="FILE", help="Seed file to create (0600, never overwritten)."
)
@click.option(
    "--schedule",
    default=DEFAULT_SPEC,
    show_default=True,
    metavar="SPEC",
    help="Salt epochs: daily@HH:MM, every:Nh or every:Nh@HH:MM (N divides 24).",
)
@click.option(
    "--tz", "zone", default="UTC", show_default=True, metavar="ZONE", help="Store's IANA time zone."
)
@click.option("--allow-long", is_flag=True, help="Accept epochs longer than 24 h (whole days).")
@click.option("--at", metavar="ISO-TIME", help=_AT_HELP)
def seed(*, store: str, out: Path, schedule: str, zone: str, allow_long: bool, at: str | None) -> None:
    """Create a store's random 32-byte seed; every sensor key of the store is derived from it."""
    with _user_errors():
        made = StoreSeed.create(
            store, SaltSchedule.parse(schedule, zone, allow_long=allow_long), _at_ns(at, zone)
        )
        try:
            made.save(out)
        finally:
            made.destroy()
    click.echo(
        f"WARNING: {out} can recompute every pseudonym of store {store}, past and future. Keep it offline"
        " (never on a sensor) and use it only to provision sensors.",
        err=True,
    )
    first = made.schedule.span(made.anchor)
    click.echo(f"{out}: seed for store {store}, salts {made.schedule.spec} in {zone}, first epoch {first.id}")


@keys.command()
@click.option("--seed", "seed_path", required=True, type=_PATH, metavar="FILE", help="The store's seed file.")
@click.option("--out", required=True, type=_PATH, metavar="KEYFILE", help="Sensor key file to write (0600).")
@click.option("--schedule", metavar="SPEC", help="Expected schedule; must match the seed's.")
@click.option("--tz", "zone", metavar="ZONE", help="Expected time zone; must match the seed's.")
@click.option("--at", metavar="ISO-TIME", help=_AT_HELP)
@click.option("--force", is_flag=True, help="Replace an existing key file (its old salt is wiped).")
def provision(
    *, seed_path: Path, out: Path, schedule: str | None, zone: str | None, at: str | None, force: bool
) -> None:
    """Derive a sensor's key for the current epoch from the store seed."""
    with _user_errors():
        store_seed = StoreSeed.load(seed_path)
        try:
            ours = store_seed.schedule
            wanted = SaltSchedule.parse(schedule or ours.spec, zone or ours.zone, allow_long=True)
            if (wanted.spec, wanted.zone) != (ours.spec, ours.zone):
                raise click.ClickException(
                    f"{seed_path} rotates {ours.spec} in {ours.zone}, not {wanted.spec} in {wanted.zone}: that"
                    " sensor would share no pseudonym with the rest of the store"
                )
            with KeyStore.provision(store_seed, out, _at_ns(at, ours.zone), replace=force) as key:
                info = key.info
        finally:
            store_seed.destroy()
    click.echo(
        f"{out}: store {info.store}, epoch {info.current.id} until {_local(info.current.end_ns, ours)}"
    )


@keys.command()
@click.argument("keyfile", type=_PATH)
def show(keyfile: Path) -> None:
    """Print a key file's store, schedule and current epoch (never its salt)."""
    with _user_errors():
        info = KeyStore.inspect(keyfile)
    span, schedule = info.current, info.schedule
    click.echo(f"store     {info.store}")
    click.echo(f"schedule  {schedule.spec} in {schedule.zone}")
    click.echo(f"epoch     {span.id} ({span.index - info.anchor} after the seed's first)")
    click.echo(f"from      {_local(span.start_ns, schedule)}")
    click.echo(f"until     {_local(span.end_ns, schedule)}")


@keys.command()
@click.argument("keyfile", type=_PATH)
@click.option("--at", metavar="ISO-TIME", help=_AT_HELP)
def rotate(keyfile: Path, at: str | None) -> None:
    """Ratchet a key file forward to the epoch of now (or --at), destroying the salts it passes."""
    with _user_errors(), KeyStore.open(keyfile) as key:
        before = key.info.current
        steps = key.advance_to(_at_ns(at, key.info.schedule.zone))
        info = key.info
    now = f"epoch {info.current.id} until {_local(info.current.end_ns, info.schedule)}"
    if steps:
        click.echo(f"{keyfile}: ratcheted {steps} epoch{'s' * (steps > 1)} from {before.id} to {now}")
    else:
        click.echo(f"{keyfile}: already at {now} (keys never go back)")


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Key, schedule and input errors become one line on stderr and exit status 1."""
    try:
        yield
    except (KeyFileError, EpochGone, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _at_ns(at: str | None, zone: str) -> int:
    if at is None:
        return time.time_ns()
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise click.BadParameter(
            f"{at!r} is not an ISO 8601 time like 2026-11-24T09:00+01:00", param_hint="--at"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(zone))
    return (when - _UNIX) // timedelta(microseconds=1) * 1000


def _local(ts_ns: int, schedule: SaltSchedule) -> str:
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, ZoneInfo(schedule.zone)).isoformat(
        timespec="minutes"
    )
