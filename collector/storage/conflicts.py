"""Same event_id, other content: a re-send that is not one (a buggy or forged sensor, an id collision).

A re-send carries the same content as the stored event, column for column; a conflict does not. The
stored event stays (first one wins); the Ingestor keeps the other as a `conflict` dead letter. The
columns retention rewrites (a visit's device pseudonym and consent token) are left out of the
comparison, so a re-send after retention ran is still a duplicate, not a conflict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.storage.sql import Insert
from footfall.events import Event, VisitOpenEvent

Query = Callable[[str, str, Sequence[Any]], list[tuple[Any, ...]]]
REWRITTEN_BY_RETENTION = frozenset({"device", "consent"})
_CHUNK = 500  # ids per lookup: within SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True, slots=True)
class Conflict:
    event: Event
    fields: tuple[str, ...]  # the columns that differ


def find_conflicts(
    query: Query,
    events: Sequence[Event],
    inserts: Mapping[type[Any], Insert],
    columns: Mapping[str, Sequence[str]],
) -> list[Conflict]:
    """The events whose id is stored with different content (an event stored as-is is no conflict)."""
    found: list[Conflict] = []
    by_table: dict[str, list[Event]] = {}
    for event in events:
        if not isinstance(event, VisitOpenEvent):
            by_table.setdefault(_table(inserts[type(event)][0]), []).append(event)
    for table, group in by_table.items():
        names = list(columns[table])
        compared = [i for i, name in enumerate(names) if name not in REWRITTEN_BY_RETENTION]
        for lo in range(0, len(group), _CHUNK):
            chunk = group[lo : lo + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = query(
                f"compare {len(chunk)} re-sent events",
                f"SELECT {', '.join(names)} FROM {table} WHERE event_id IN ({marks})",
                [e.event_id for e in chunk],
            )
            stored = {row[0]: row for row in rows}
            for event in chunk:
                have = stored.get(event.event_id)
                if have is None:
                    continue
                mine = inserts[type(event)][1](event)
                differ = tuple(names[i] for i in compared if not _same(mine[i], have[i]))
                if differ:
                    found.append(Conflict(event, differ))
    return found


def _table(insert_sql: str) -> str:
    return insert_sql.split()[2]  # "INSERT INTO <table> (...)"


def _same(mine: Any, stored: Any) -> bool:
    if isinstance(mine, bool) or isinstance(stored, bool):
        return int(mine) == int(stored)
    return bool(mine == stored)
