"""What the collector's command groups share: --config, --db, date options, loading the config, opening the store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import click

from collector.config import CollectorConfig, load
from collector.storage.backends import open_store
from collector.storage.base import Store, StoreError
from footfall.cli import load_or_fail

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FOOTFALL_COLLECTOR_CONFIG",
    help="Collector config YAML (default: the built-in defaults).",
)
DB_OPTION = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite database to use instead of the config's store.path.",
)


def day_option(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """Option callback: YYYY-MM-DD only (fromisoformat alone would also take 20240501 or 2024-W18)."""
    if value is None:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date of the form YYYY-MM-DD") from None


def load_config(path: Path | None, db_path: Path | None = None) -> CollectorConfig:
    """The config file (or defaults), with `--db` replacing store.path."""
    config = load_or_fail(load, path)
    if db_path is not None:
        config = config.model_copy(update={"store": config.store.model_copy(update={"path": db_path})})
    return config


@contextmanager
def opened(config: CollectorConfig, *, create: bool) -> Iterator[Store]:
    """The configured store, closed after; a `StoreError` opening or using it becomes a click error."""
    try:
        db = open_store(config.store, create=create)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield db
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.close()
