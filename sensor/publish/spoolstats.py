"""What the spool reports: its figures (`SpoolStats`) and its drop warnings, one a minute per cause.

Both are plain values and a clock: nothing here touches the SQLite file (sensor/publish/spool.py does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

_WARN_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """The spool's figures: what is waiting now, and running totals since the file was created."""

    pending: int = 0  # queued, not acknowledged by the broker yet
    pending_bytes: int = 0
    kept_acked: int = 0  # acknowledged, kept for a re-send after a reconnection
    oldest_pending_age_s: float = 0.0
    totals: Mapping[str, int] = field(default_factory=dict)  # queued, acked, already_queued, dropped_*

    @property
    def dropped(self) -> dict[str, int]:
        """Dropped events by `<cause>_<kind>` (cause: full, expired, unwritable)."""
        return {k.removeprefix("dropped_"): v for k, v in self.totals.items() if k.startswith("dropped_")}

    def line(self) -> str:
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        return (
            f"spool: {self.pending} pending ({self.pending_bytes} bytes, oldest {self.oldest_pending_age_s:.0f} s), "
            f"queued {self.totals.get('queued', 0)}, acked {self.totals.get('acked', 0)}, dropped {drops}"
        )


class Warner:
    """One WARNING per cause per interval, saying how many happened since the last one."""

    def __init__(self, log: logging.Logger, clock: Callable[[], float]) -> None:
        self._log = log  # the spool's own logger, so the warnings keep its name
        self._clock = clock
        self._last: dict[str, float] = {}
        self._since: dict[str, int] = {}

    def warn(self, cause: str, n: int, message: str, *args: object) -> None:
        self._since[cause] = self._since.get(cause, 0) + n
        now = self._clock()
        if now - self._last.get(cause, -_WARN_EVERY_S) < _WARN_EVERY_S:
            return
        self._last[cause] = now
        self._log.warning(message + " (%d such drops since the last warning)", *args, self._since.pop(cause))
