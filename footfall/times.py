"""Time as both sides keep it: nanoseconds on the sensor, microseconds in the collector's store.

The collector's store keeps every instant as integer microseconds since the Unix epoch (UTC), so period
scans are numeric range scans on an index; `to_us` and `from_us` are that encoding's one owner.
`MAX_AHEAD` is the one bound on how far a timestamp from outside (a CSV export, an API call, an online
event) may be ahead of the receiver's clock: further ahead is a clock or a column mix-up, not the future.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

NS: Final = 1_000_000_000  # nanoseconds per second: frame times are integer UTC nanoseconds
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_AHEAD: Final = timedelta(days=1)

_US = timedelta(microseconds=1)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime; a naive one is refused (ValueError), not guessed."""
    if value.utcoffset() is None:
        raise ValueError(f"naive timestamp {value.isoformat()}: aware UTC times only")
    return (value - EPOCH) // _US


def from_us(us: int) -> datetime:
    """The aware UTC datetime of `to_us`'s microseconds."""
    return EPOCH + timedelta(microseconds=us)


def too_far_ahead(when: datetime, now: datetime) -> bool:
    """`when` lies more than `MAX_AHEAD` after `now` (both aware)."""
    return when > now + MAX_AHEAD
