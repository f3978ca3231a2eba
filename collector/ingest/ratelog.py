"""A warning per reason per interval: a flood of one bad payload is one log line a while, with a count."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable


class RateLimitedLog:
    """One WARNING per reason per interval, saying how many were suppressed in between."""

    def __init__(self, log: logging.Logger, interval_s: float, clock: Callable[[], float]) -> None:
        self._log = log
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def warn(self, reason: str, message: str, *args: object) -> None:
        now = self._clock()
        last = self._last.get(reason)
        if last is not None and now - last < self._interval_s:
            self._suppressed[reason] += 1
            return
        self._last[reason] = now
        suppressed = self._suppressed.pop(reason, 0)
        tail = f" ({suppressed} more {reason} since the last warning)" if suppressed else ""
        self._log.warning(message + tail, *args)
