"""The unheard ends of a visit: how much of a stay falls before a phone's first scan and after its last.

A visit is heard from its first frame to its last, but the person came in before the first scan and left
after the last: a phone scans every few seconds to minutes, and sleeps for 5-20 minutes at times (in the
lab, 4-25 % of the commonest phones' gaps between scans are over 5 minutes). Read as first-to-last frame,
the median dwell of the generated days came out a third short on every seed, and that was not visits
split apart: one visit per person from their first to their last heard frame reads as short.

For a phone whose scans form a stationary renewal process, arriving and leaving are moments that fall
at random into its gaps between scans; the gap a random moment falls into is longer than the typical
gap (the inspection paradox), its mean length is E[G²] / E[G], and the moment lies uniformly inside it.
So the unheard time at the two ends of a stay adds up, on average, to E[G²] / E[G]: about one scan
interval for a phone that never sleeps, several minutes for phones that do.

The sensor measures G itself, on its own devices: every gap between two scans of one estimated device
that is not fixed, up to `max_gap_s` (a longer silence is someone gone and back, not a sleeping phone).
The sums decay with `half_life_s`, and start from a prior: the five Baccichet single phones' own
E[G²] / E[G] (43-132 s, 74 s on average; none of them sleeps) with the weight of one device-hour of gaps,
so a sensor that has heard little adds about a scan interval. Nothing here knows a device: two sums.
"""

from __future__ import annotations

from dataclasses import dataclass

from footfall.times import NS

PRIOR_S = 74.0  # E[G²]/E[G] of the Baccichet single phones (bench/accuracy.py's captures), averaged
PRIOR_WEIGHT_S = 3600.0  # the prior counts as this much time of gaps (one device-hour)


@dataclass(frozen=True, slots=True)
class ScanGapParams:
    max_gap_s: float = 1800.0  # the resolver's lone-phone link (`lone_link_s`): longer is an absence
    half_life_s: float = 24 * 3600.0  # the site's phones change slowly: a day's worth of gaps counts
    prior_s: float = PRIOR_S
    prior_weight_s: float = PRIOR_WEIGHT_S


class ScanGaps:
    """Σg and Σg² of the gaps between scans of the sensor's devices; `unheard` is their ratio."""

    __slots__ = ("_half_ns", "_max_ns", "_prior_1", "_prior_2", "_s1", "_s2", "_t_ns")

    def __init__(self, params: ScanGapParams | None = None) -> None:
        p = params or ScanGapParams()
        self._max_ns = int(p.max_gap_s * NS)
        self._half_ns = p.half_life_s * NS
        self._prior_1 = p.prior_weight_s * NS  # Σg and Σg² of the prior, in ns and ns²
        self._prior_2 = p.prior_weight_s * NS * p.prior_s * NS
        self._s1 = 0.0
        self._s2 = 0.0
        self._t_ns = -1  # not decayed yet

    def add(self, gap_ns: int) -> None:
        """A gap between two scans of one device (burst start to burst start)."""
        if gap_ns <= self._max_ns:
            g = float(gap_ns)
            self._s1 += g
            self._s2 += g * g

    def decay(self, now_ns: int) -> None:
        """Age the sums to `now_ns` (called about once a minute of frame time)."""
        if self._t_ns >= 0:
            factor = 0.5 ** ((now_ns - self._t_ns) / self._half_ns) if now_ns > self._t_ns else 1.0
            self._s1 *= factor
            self._s2 *= factor
        self._t_ns = now_ns

    def unheard(self) -> int:
        """E[G²] / E[G]: the expected unheard time at the two ends of a stay, in ns."""
        return int((self._s2 + self._prior_2) / (self._s1 + self._prior_1))
