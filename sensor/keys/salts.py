"""When a store's pseudonym salt rotates: the epoch schedule, pure and time-zone correct.

An epoch is a half-open window [start, end) of UTC nanoseconds. Boundaries are wall-clock times in the
store's IANA zone, so "daily at 04:00" stays at 04:00 local across DST: that day's epoch lasts 23 h in
spring and 25 h in autumn. Epochs are numbered from 1970-01-01 local: epoch `i` starts at the wall time
`1970-01-01 00:00 + at + i * hours`, which makes the index of any instant computable by every sensor of a
store independently, and the epoch id (its UTC start, `20261124T0300Z`) identical on all of them.

Two wall-clock oddities are resolved the same way everywhere:
- a boundary that falls in a DST gap (02:30 on a spring-forward night) starts at the instant the gap ends,
  the first instant whose local time is at or after it; with hourly epochs this can make one epoch empty
  (it starts and ends at the same instant); nothing is ever in it, and the ratchet just steps over it;
- a boundary that falls twice (02:30 on a fall-back night) takes its first occurrence.
Both keep boundaries non-decreasing, so every instant lies in exactly one non-empty epoch.

Epoch lengths must divide the day (1, 2, 3, 4, 6, 8, 12 or 24 h) so that they stay aligned to local midnight;
longer epochs (whole days) keep one pseudonym per device for more than a day and are accepted only with
`allow_long=True`, which logs a warning.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from footfall.times import NS

log = logging.getLogger(__name__)

DEFAULT_SPEC = "daily@04:00"
MAX_HOURS = 24  # longest epoch accepted without allow_long
DAY_DIVISORS = (1, 2, 3, 4, 6, 8, 12, 24)

_NAIVE_EPOCH = datetime(1970, 1, 1)
_SPEC = re.compile(r"(?:daily|every:(?P<hours>\d{1,4})h)(?:@(?P<hh>\d{2}):(?P<mm>\d{2}))?")


class ScheduleError(ValueError):
    """A schedule that cannot be used, with the value and what was expected."""


@dataclass(frozen=True, slots=True)
class EpochSpan:
    """One epoch of a schedule, without its salt."""

    index: int
    id: str  # UTC start, e.g. "20261124T0300Z": what every sensor of the store calls this epoch
    start_ns: int
    end_ns: int  # exclusive; equal to start_ns for an epoch swallowed by a DST gap

    def __contains__(self, ts_ns: object) -> bool:
        return isinstance(ts_ns, int) and self.start_ns <= ts_ns < self.end_ns


@dataclass(frozen=True, slots=True)
class SaltSchedule:
    """Epoch boundaries every `hours` wall-clock hours from local midnight + `at_minutes`, in `zone`."""

    zone: str  # IANA name, e.g. "Europe/Paris"
    hours: int = 24
    at_minutes: int = 4 * 60
    allow_long: bool = False
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            tz = ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(
                f"unknown time zone {self.zone!r}: expected an IANA name like Europe/Paris"
            ) from None
        object.__setattr__(self, "_tz", tz)
        if self.hours < 1:
            raise ScheduleError(f"epoch length {self.hours} h: expected at least 1 h")
        if self.hours > MAX_HOURS and not self.allow_long:
            raise ScheduleError(
                f"epoch length {self.hours} h exceeds {MAX_HOURS} h: a device would keep one pseudonym for more"
                " than a day; set allow_long to accept it"
            )
        if self.hours < 24 and self.hours not in DAY_DIVISORS:
            raise ScheduleError(
                f"epoch length {self.hours} h does not divide the day, so boundaries would drift against local"
                f" midnight; expected one of {', '.join(map(str, DAY_DIVISORS))} h"
            )
        if self.hours > 24 and self.hours % 24:
            raise ScheduleError(f"epoch length {self.hours} h: epochs longer than a day must be whole days")
        period = min(self.hours, 24) * 60
        if not 0 <= self.at_minutes < period:
            same = f"; every:{self.hours}h@{_hhmm(self.at_minutes % period)} names the same boundaries"
            raise ScheduleError(
                f"boundary offset {self.at_minutes} min: expected 0..{period - 1} for {self.hours} h epochs"
                + (same if 0 < self.at_minutes < 24 * 60 else "")
            )
        if self.hours > MAX_HOURS:
            log.warning("salt epochs of %d h: devices keep one pseudonym for more than a day", self.hours)

    @classmethod
    def parse(cls, spec: str, zone: str, *, allow_long: bool = False) -> SaltSchedule:
        """`daily@HH:MM`, `every:Nh` or `every:Nh@HH:MM` in `zone`."""
        m = _SPEC.fullmatch(spec.strip())
        if m is None:
            raise ScheduleError(f"schedule {spec!r}: expected daily@HH:MM, every:Nh or every:Nh@HH:MM")
        hours = int(m["hours"] or 24)
        hh, mm = int(m["hh"] or 0), int(m["mm"] or 0)
        if spec.startswith("daily") and m["hh"] is None:
            raise ScheduleError(f"schedule {spec!r}: daily needs a time, e.g. daily@04:00")
        if hh > 23 or mm > 59:
            raise ScheduleError(f"schedule {spec!r}: {hh:02d}:{mm:02d} is not a time of day")
        return cls(zone, hours, hh * 60 + mm, allow_long)

    @property
    def spec(self) -> str:
        """Canonical text form; `parse(spec, zone)` gives this schedule back."""
        if self.hours == 24:
            return f"daily@{_hhmm(self.at_minutes)}"
        return f"every:{self.hours}h" + (f"@{_hhmm(self.at_minutes)}" if self.at_minutes else "")

    def start_ns(self, index: int) -> int:
        """UTC start of epoch `index`."""
        wall = _NAIVE_EPOCH + timedelta(minutes=self.at_minutes) + index * timedelta(hours=self.hours)
        return self._first_instant_at(wall) * NS

    def index_at(self, ts_ns: int) -> int:
        """Index of the epoch containing `ts_ns` (UTC ns)."""
        wall = datetime.fromtimestamp(ts_ns // NS, self._tz).replace(tzinfo=None)
        index = (wall - _NAIVE_EPOCH - timedelta(minutes=self.at_minutes)) // timedelta(hours=self.hours)
        # The wall-clock guess is off by one only next to a DST transition.
        while self.start_ns(index + 1) <= ts_ns:
            index += 1
        while self.start_ns(index) > ts_ns:
            index -= 1
        return index

    def span(self, index: int) -> EpochSpan:
        start = self.start_ns(index)
        return EpochSpan(index, epoch_id(start), start, self.start_ns(index + 1))

    def span_at(self, ts_ns: int) -> EpochSpan:
        return self.span(self.index_at(ts_ns))

    def _first_instant_at(self, wall: datetime) -> int:
        """UTC seconds of the first instant whose local time is `wall` or later (see the module docstring)."""
        wall_s = (wall - _NAIVE_EPOCH) // timedelta(seconds=1)
        for fold in (0, 1):
            offset = wall.replace(tzinfo=self._tz, fold=fold).utcoffset()
            assert offset is not None
            utc_s = wall_s - offset // timedelta(seconds=1)
            if self._wall_s(utc_s) == wall_s:
                return utc_s  # fold 0 first: the first occurrence of a repeated time
        # In a gap: the two offsets bracket the transition; find it by bisection (rare, ~17 steps).
        lo, hi = sorted(
            wall_s - o // timedelta(seconds=1)
            for o in (wall.replace(tzinfo=self._tz, fold=f).utcoffset() or timedelta() for f in (0, 1))
        )
        while lo < hi:
            mid = (lo + hi) // 2
            if self._wall_s(mid) >= wall_s:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _wall_s(self, utc_s: int) -> int:
        local = datetime.fromtimestamp(utc_s, self._tz).replace(tzinfo=None)
        return (local - _NAIVE_EPOCH) // timedelta(seconds=1)


def epoch_id(start_ns: int) -> str:
    """The id all sensors of a store give the epoch starting at `start_ns`."""
    return datetime.fromtimestamp(start_ns // NS, UTC).strftime("%Y%m%dT%H%MZ")


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
