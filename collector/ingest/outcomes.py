"""What the Ingestor says of each payload and of its run: the reasons, one outcome, the running counts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Reason(StrEnum):
    WRONG_TOPIC = "wrong_topic"
    OVERSIZED = "oversized"
    NOT_JSON = "not_json"
    WRONG_SCHEMA = "wrong_schema"
    INVALID = "invalid"
    TOPIC_MISMATCH = "topic_mismatch"
    STORE_REFUSED = (
        "store_refused"  # passed every check, yet the database refused it (collector/ingest/poison.py)
    )
    CONFLICT = "conflict"  # same event_id as a stored event, other content (collector/storage/conflicts.py)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one payload: accepted (queued for the store) or rejected with a reason."""

    reason: Reason | None = None
    detail: str = ""
    event_id: str = ""

    @property
    def accepted(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class IngestStats:
    received: int = 0
    accepted: int = 0
    stored: int = 0
    duplicates: int = 0  # accepted, but already stored: not a rejection
    rejected: Mapping[str, int] = field(default_factory=dict)
    pending: int = 0  # accepted, not stored yet
    store_errors: int = 0
    dropped: int = 0  # accepted but lost because the store kept failing

    def line(self) -> str:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.rejected.items()) if n) or "none"
        extra = f"; store errors {self.store_errors}, dropped {self.dropped}" if self.store_errors else ""
        return (
            f"received {self.received}, stored {self.stored}, duplicates {self.duplicates}, "
            f"pending {self.pending}, rejected {sum(self.rejected.values())} ({reasons}){extra}"
        )
