"""What the people estimate sees of visits: the spans of the visits that overlapped a count interval.

The presence model (sensor/estimate/visits.py) hands each interval's visit spans to a `PeopleEstimate`;
`InsideVisits` is the default one (the occupancy estimator of sensor/estimate/occupancy.py plugs in
instead when the estimator is on).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol


class PeopleEstimate(Protocol):
    """Turns what the sensor heard into people present; the estimation module plugs in here."""

    def present(self, start_ns: int, end_ns: int, visits: Iterable[VisitSpan]) -> float:
        """Estimated people inside, time-averaged over [start_ns, end_ns).

        `visits` (those that overlapped the interval) is produced lazily: an estimate that keeps its own
        state need not iterate it, and then costs nothing.
        """
        ...


@dataclass(slots=True, init=False, unsafe_hash=True)
class VisitSpan:
    """What the people estimate needs of a visit that overlapped the interval.

    Built for every visit of each interval: `Final` fields and a plain __init__ rather than a frozen
    dataclass, so the compiled build makes it natively (sensor/decode/frames.py says why).
    """

    device: Final[str]
    start_ns: Final[int]
    last_ns: Final[int]
    inside: Final[bool]  # reached the visitor signal level
    fixed: Final[bool]

    def __init__(self, device: str, start_ns: int, last_ns: int, inside: bool, fixed: bool) -> None:
        self.device = device
        self.start_ns = start_ns
        self.last_ns = last_ns
        self.inside = inside
        self.fixed = fixed


class InsideVisits:
    """The default estimate: time-averaged number of inside-signal, non-fixed visits."""

    def present(self, start_ns: int, end_ns: int, visits: Iterable[VisitSpan]) -> float:
        covered = 0
        for v in visits:
            if v.inside and not v.fixed:
                # max(0, min(last, end) - max(start, start_ns)), written out: every visit of the
                # interval passes here
                a = v.start_ns if v.start_ns > start_ns else start_ns
                b = v.last_ns if v.last_ns < end_ns else end_ns
                if b > a:
                    covered += b - a
        return covered / (end_ns - start_ns)


span = VisitSpan  # the name the presence model builds spans by
