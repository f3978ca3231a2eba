"""The trigger log (table in migration 0009): every trigger the collector sent, for the omnichannel page.

What a trigger carries and nothing more (collector/online/triggers.py): the profile id, the store and
sensor, when the visit started and when the trigger went out, and the visit's event id, which keys the
log so a trigger re-sent after a restart is logged once. No pseudonym or consent token. Erasing a profile
erases its lines (collector/storage/profiles.py), and retention deletes them with the visits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from collector.storage.base import Store, us
from collector.storage.dashboard import query_of, transaction_of
from footfall.times import from_us


@dataclass(frozen=True, slots=True)
class LoggedTrigger:
    visit: str  # the visit's event id
    store: str
    sensor: str
    profile_id: str
    at: datetime  # when the visit started, UTC
    sent: datetime


def log_triggers(store: Store, triggers: Sequence[LoggedTrigger]) -> int:
    """Add `triggers` not logged yet (by visit), in one transaction; returns how many were new."""
    if not triggers:
        return 0
    rows = [(t.visit, t.store, t.sensor, t.profile_id, us(t.at), us(t.sent)) for t in triggers]
    with transaction_of(store)(f"log {len(rows)} triggers") as db:
        return int(
            db.executemany(
                "INSERT INTO trigger_log (visit, store, sensor, profile_id, at_us, sent_us)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (visit) DO NOTHING",
                rows,
            ).rowcount
        )


def trigger_log(store: Store, name: str, start: datetime, end: datetime) -> list[LoggedTrigger]:
    """The triggers of store `name` for visits started in [start, end), oldest first."""
    rows = query_of(store)(
        f"read the trigger log of {name}",
        "SELECT visit, store, sensor, profile_id, at_us, sent_us FROM trigger_log"
        " WHERE store = ? AND at_us >= ? AND at_us < ? ORDER BY at_us, visit",
        (name, us(start), us(end)),
    )
    return [LoggedTrigger(r[0], r[1], r[2], r[3], from_us(r[4]), from_us(r[5])) for r in rows]
