"""`footfall-collector users add|list|remove|passwd`: the dashboard's accounts.

Passwords are asked for (hidden, twice), never taken from the command line, where `ps` and the shell's
history would show them; piped on standard input they are read the same way (scripts/demo does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from collector.cli.common import CONFIG_OPTION, DB_OPTION, load_config, opened
from collector.web.accounts import ALL, ROLES, AccountError, Accounts, Role, open_accounts


def _password() -> str:
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@contextmanager
def _accounts(config_path: Path | None, db_path: Path | None, *, create: bool) -> Iterator[Accounts]:
    if db_path is not None and config_path is not None:
        raise click.UsageError("give --db or --config, not both")
    with opened(load_config(config_path, db_path), create=create) as db:
        try:
            yield open_accounts(db)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None


@click.group("users")
def users() -> None:
    """Dashboard accounts: who may log in, with which role, to see which stores."""


@users.command("add")
@click.argument("name")
@click.option("--store", "stores", multiple=True, metavar="STORE", help="A store the user may see (repeat).")
@click.option("--all", "all_stores", is_flag=True, help="Every store, present and future.")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True,
              help="admin may also open one consented profile's journey and the trigger log.")  # fmt: skip
@DB_OPTION
@CONFIG_OPTION
def add(
    name: str,
    stores: tuple[str, ...],
    all_stores: bool,
    role: Role,
    db_path: Path | None,
    config_path: Path | None,
) -> None:
    """Add user NAME; the password is asked for (twice, hidden)."""
    if bool(stores) == all_stores:
        raise click.UsageError("give --store S (one or more) or --all, not both")
    password = _password()
    with _accounts(config_path, db_path, create=True) as accounts:
        accounts.add(name, password, role, [ALL] if all_stores else list(stores), datetime.now(UTC))
    click.echo(f"added {role} {name}: {'every store' if all_stores else ', '.join(sorted(set(stores)))}")


@users.command("list")
@DB_OPTION
@CONFIG_OPTION
def list_(db_path: Path | None, config_path: Path | None) -> None:
    """Every account: name, role, stores."""
    with _accounts(config_path, db_path, create=False) as accounts:
        found = accounts.users()
    for user in found:
        scope = "every store" if user.all_stores else ", ".join(user.stores)
        click.echo(f"{user.name:<24} {user.role:<7} {scope}")
    if not found:
        click.echo("no users (add one with: footfall-collector users add NAME --store S)")


@users.command("remove")
@click.argument("name")
@DB_OPTION
@CONFIG_OPTION
def remove(name: str, db_path: Path | None, config_path: Path | None) -> None:
    """Remove user NAME and end their sessions."""
    with _accounts(config_path, db_path, create=False) as accounts:
        accounts.remove(name)
    click.echo(f"removed {name}")


@users.command("passwd")
@click.argument("name")
@DB_OPTION
@CONFIG_OPTION
def passwd(name: str, db_path: Path | None, config_path: Path | None) -> None:
    """Set a new password for NAME (asked for); their open sessions end."""
    password = _password()
    with _accounts(config_path, db_path, create=False) as accounts:
        accounts.set_password(name, password)
    click.echo(f"password of {name} changed; their sessions ended")
