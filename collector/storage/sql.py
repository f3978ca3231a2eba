"""What lets both store backends share one text of every query: SQL is written once, with `?` placeholders.

SQLite takes it as written; `pg` turns it into psycopg's `%s` form and `Placeholders` wraps a psycopg
connection so that code written against `Db` runs on either backend unchanged. The shared SQL holds no
`?` or `%` inside a string literal, so the plain replacement is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

Rows = list[tuple[Any, ...]]
Insert = tuple[str, Callable[[Any], tuple[Any, ...]]]  # statement, row builder


class Db(Protocol):
    """The part of a DB-API connection the shared statements use (sqlite3's, or `Placeholders`)."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> Any: ...


@lru_cache(maxsize=256)
def pg(sql: str) -> str:
    """`sql` with psycopg's placeholders instead of `?`."""
    return sql.replace("?", "%s")


@dataclass(frozen=True, slots=True)
class Rowcount:
    rowcount: int


class Placeholders:
    """A psycopg connection that takes the shared `?` SQL (the caller holds its lock and transaction)."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        return self._db.execute(pg(sql).encode(), parameters)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> Rowcount:
        with self._db.cursor() as cursor:
            cursor.executemany(pg(sql).encode(), rows)
            return Rowcount(max(cursor.rowcount, 0))
