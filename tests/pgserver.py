"""A real PostgreSQL server for the store tests: initdb + pg_ctl in a temporary directory, loopback only.

Session-wide (starting one takes a few seconds); each test gets a fresh database. Tests skip with the
reason when PostgreSQL or psycopg is not installed (`apt-get install postgresql`, `pip install psycopg`).
As root the server runs as the `postgres` user: PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from collector.storage.base import Store
from collector.storage.sqlite import SqliteStore
from tests.conftest import free_port

PG_BIN_DIRS = tuple(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
_names = itertools.count(1)


class PostgresUnavailable(Exception):
    """PostgreSQL cannot be started here; the message says why (tests skip with it)."""


def _tool(name: str) -> str:
    found = next((str(d / name) for d in PG_BIN_DIRS if (d / name).exists()), None) or shutil.which(name)
    if found is None:
        raise PostgresUnavailable(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root and there is no postgres user to run PostgreSQL as"
        ) from None
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def running_postgres(fsync: bool = False) -> Iterator[str]:
    """Start a throw-away server (initdb + pg_ctl, loopback, a free port); yields the DSN of `postgres`.

    Raises PostgresUnavailable when it cannot; stops the server and removes its files on exit. Also used
    by bench/ingest.py, hence no pytest here.
    """
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise PostgresUnavailable("psycopg is not installed (pip install psycopg)") from None
    initdb, pg_ctl = _tool("initdb"), _tool("pg_ctl")
    directory = Path(tempfile.mkdtemp(prefix="footfall-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        data, port = directory / "data", free_port()
        setup = subprocess.run(
            _as_server_user(
                [initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]
            ),
            capture_output=True,
            check=False,
        )
        if setup.returncode:
            raise PostgresUnavailable(f"initdb failed ({setup.returncode}): {setup.stderr.decode()[-300:]}")
        options = (
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync={'on' if fsync else 'off'}"
        )
        log = directory / "server.log"
        started = subprocess.run(
            _as_server_user(
                [pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "30", "start"]
            ),
            capture_output=True,
            check=False,
        )
        if started.returncode:
            raise PostgresUnavailable(f"PostgreSQL did not start: {started.stderr.decode()[-300:]}")
        try:
            yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        finally:
            subprocess.run(
                _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True,
                check=False,
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A running server; yields the DSN of its `postgres` database (user postgres, no password)."""
    with ExitStack() as stack:
        try:
            dsn = stack.enter_context(running_postgres())
        except PostgresUnavailable as exc:
            pytest.skip(str(exc))
        yield dsn


@pytest.fixture
def postgres_dsn(postgres_server: str) -> Callable[[], str]:
    """Makes a fresh, empty database per call; returns its DSN."""
    import psycopg

    def fresh() -> str:
        name = f"footfall_{os.getpid()}_{next(_names)}"
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return postgres_server.replace("dbname=postgres", f"dbname={name}")

    return fresh


BACKENDS = ("sqlite", "postgresql")


def open_backend(request: pytest.FixtureRequest, directory: Path) -> Callable[[], Store]:
    """For a fixture parametrised over BACKENDS: opens (and reopens) one store of the requested kind.

    The test module must import `postgres_dsn` and `postgres_server` so that PostgreSQL is started only
    when a postgresql case runs.
    """
    if request.param == "sqlite":
        return lambda: SqliteStore(directory / "f.db")
    from collector.storage.postgres import PostgresStore

    dsn: str = request.getfixturevalue("postgres_dsn")()
    return lambda: PostgresStore(dsn)
