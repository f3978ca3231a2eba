"""Login throttling and the headers every dashboard answer carries.

Failed logins are counted per user name and per client address in a sliding window; past the limit,
further attempts are refused (429) without checking the password, so guessing is slow whichever of the
two an attacker varies. The counts live in the process: one collector serves the dashboard, and a
restart forgetting them costs an attacker a restart they cannot cause.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import datetime, timedelta

Clock = Callable[[], datetime]

PER_USER = 5
PER_ADDRESS = 20
WINDOW = timedelta(minutes=15)
MAX_KEYS = 10_000  # bounded memory under a flood of made-up names

# No other host, no inline script; pygal's SVG carries its own <style>, hence 'unsafe-inline' for styles.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginThrottle:
    """Sliding-window counts of failed logins by user and by address; the clock is passed in."""

    def __init__(self, clock: Clock, per_user: int = PER_USER, per_address: int = PER_ADDRESS) -> None:
        self._clock = clock
        self._limits = {"user": per_user, "address": per_address}
        self._failures: OrderedDict[tuple[str, str], deque[datetime]] = OrderedDict()

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - WINDOW:
            times.popleft()
        return times

    def retry_after(self, user: str, address: str) -> int | None:
        """Seconds to wait before the next attempt, or None when one is allowed now."""
        now = self._clock()
        waits = []
        for key in (("user", user.lower()), ("address", address)):
            times = self._recent(key, now)
            if len(times) >= self._limits[key[0]]:
                waits.append(int((times[0] + WINDOW - now).total_seconds()) + 1)
        return max(waits) if waits else None

    def failed(self, user: str, address: str) -> None:
        now = self._clock()
        for key in (("user", user.lower()), ("address", address)):
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, user: str) -> None:
        self._failures.pop(("user", user.lower()), None)
