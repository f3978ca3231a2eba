"""Which backend a config names: `open_store` (one entry per backend)."""

from __future__ import annotations

from collections.abc import Callable

from collector.config import StoreConfig
from collector.storage.base import Store, StoreError
from collector.storage.sqlite import SqliteStore


def open_store(config: StoreConfig, *, create: bool = True) -> Store:
    """The configured backend (one entry per backend, so another is one more line)."""
    backends: dict[str, Callable[[StoreConfig, bool], Store]] = {
        "sqlite": lambda c, create_: SqliteStore(c.path, create=create_),
        "postgresql": _open_postgresql,
    }
    return backends[config.backend](config, create)


def _open_postgresql(config: StoreConfig, create: bool) -> Store:
    from collector.storage.postgres import PostgresStore  # psycopg is only needed by PostgreSQL users

    assert config.dsn_file is not None  # the config validator requires it
    try:
        dsn = config.dsn_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StoreError(
            f"{config.dsn_file}: cannot read the PostgreSQL connection string: {exc.strerror}"
        ) from None
    return PostgresStore(dsn, create=create)
