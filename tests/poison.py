"""A real database refusal of a schema-valid event, on either backend: a trigger on `counts`.

The wire schema now bounds every value to what the columns hold, so a store refusal can no longer be
provoked from the wire; the trigger stands for whatever a database may still refuse (a constraint added by
an operator, a value a future column rejects). `frames == POISON` is refused, everything else stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from collector.storage.base import Store
from collector.storage.sqlite import SqliteStore
from footfall.events import CountEvent
from tests.test_report import count

POISON = 666

_SQLITE = (
    f"CREATE TRIGGER poison BEFORE INSERT ON counts WHEN NEW.frames = {POISON}"
    " BEGIN SELECT RAISE(ABORT, 'poisoned frames'); END"
)
_PG = (
    "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN"
    f" IF NEW.frames = {POISON} THEN RAISE EXCEPTION 'poisoned frames' USING ERRCODE = '22000'; END IF;"
    " RETURN NEW; END $$ LANGUAGE plpgsql;"
    " CREATE TRIGGER poison BEFORE INSERT ON counts FOR EACH ROW EXECUTE FUNCTION poison();"
)


def poison(store: Store) -> Store:
    """Install the refusing trigger on `store` (through its own connection) and return it."""
    db = store._db  # type: ignore[attr-defined]  # a test reaching into the backend, on purpose
    db.execute(_SQLITE if isinstance(store, SqliteStore) else _PG.encode())
    return store


def counts(t0: datetime, n: int, *, poisoned: tuple[int, ...] = (), sensor: str = "s1") -> list[CountEvent]:
    """`n` five-minute count events from `t0`; those at the `poisoned` indices carry POISON frames."""
    events = []
    for i in range(n):
        event = count(t0 + timedelta(minutes=5 * i), float(i % 7), sensor=sensor)
        if i in poisoned:
            event = event.model_copy(update={"frames": POISON})
        events.append(event)
    return events
