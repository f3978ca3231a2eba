"""The sensor's own signal scale, learned from what it hears, and its drift.

A dBm threshold means something only on the scale it was chosen on. The same room reads 17 dB
stronger on one lab day than the day before (2022-11-16: median probe -62 dBm against -79), and
a sensor moved behind a shelf or given another antenna reads weaker: fixed thresholds then count
the corridor as inside, or nobody. `SignalScale` keeps a decaying histogram of the signal of the
randomized (phone) frames it is shown and takes a quantile of it as the scale's *reference*.
The estimator's dBm thresholds move by the part of the *offset* (reference - `nominal_dbm`, the
reference on the scale the thresholds were chosen on) beyond a dead zone, times a gain. The dead
zone is there because the middle of the distribution also rises with the crowd (more phones close
by), not only with the sensor's gain: on the lab days a full room moves it 5-8 dB, a sensor whose
scale moved (2022-10-19, 2022-11-16) 18-19 dB.

Until `min_weight` frames are in the histogram the shift is 0 (the configured thresholds as they
are); it is bounded (`max_up_db`, `max_down_db`), so a quiet night with only far phones cannot drag
the inside level into the street. An offset of the reference of `drift_db` or more is a *drift*:
the status event reports it, so the installer learns that the sensor was moved or its antenna
changed, while the counts follow.

Pure: the frames' own timestamps decay the histogram (no clock), memory is one list of 148 floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

NS = 1_000_000_000
# dBm range of the radiotap antenna signal field the decoder accepts; Final, so the compiled build
# reads them as constants rather than through the module's dict on every frame
_LOW: Final = -127
_HIGH: Final = 20


@dataclass(frozen=True, slots=True)
class ScaleParams:
    """How the reference is learned and followed; chosen by blocked cross-validation on the Fryza lab
    months (bench/accuracy.py fits gain and bounds on the training months of every fold)."""

    enabled: bool = True
    quantile: float = 0.5  # of randomized frames' signal: the scale's middle
    nominal_dbm: float = -79.0  # the reference on the scale the thresholds were chosen on
    gain: float = 1.0  # dB of threshold per dB of reference beyond the dead zone
    # Offsets within this many dB are the crowd (more phones close by raise the middle), not the
    # sensor: the thresholds move only by the part of the offset beyond it.
    deadzone_db: float = 8.0
    half_life_s: float = 2 * 3600.0  # how fast old frames fade from the histogram
    min_weight: float = 500.0  # frames (decayed) before the reference is trusted
    max_up_db: float = 15.0  # bounds of the threshold shift; a quiet night lowers the middle
    max_down_db: float = 5.0  # (only far phones are left), so downwards it is held tighter
    drift_db: float = 8.0  # |reference - nominal| at least this large is reported as a drift

    def __post_init__(self) -> None:
        if not 0.05 <= self.quantile <= 0.95:
            raise ValueError(f"quantile must be in [0.05, 0.95], got {self.quantile}")
        if not -120 <= self.nominal_dbm <= 0:
            raise ValueError(f"nominal_dbm must be in -120..0 dBm, got {self.nominal_dbm}")
        if not 0 <= self.gain <= 1:
            raise ValueError(f"gain must be in 0..1, got {self.gain}")
        if not self.half_life_s > 0:
            raise ValueError(f"half_life_s must be > 0, got {self.half_life_s}")
        for name in ("deadzone_db", "max_up_db", "max_down_db", "drift_db"):
            if not 0 <= getattr(self, name) <= 60:
                raise ValueError(f"{name} must be in 0..60 dB, got {getattr(self, name)}")


class SignalScale:
    """Call `add` with the signal of a burst; `shift_db` says how far the scale sits from nominal."""

    _DECAY_EVERY_NS = 60 * NS

    def __init__(self, params: ScaleParams | None = None) -> None:
        self.params = p = params or ScaleParams()
        self._hist = [0.0] * (_HIGH - _LOW + 1)
        self._weight = 0.0
        self._factor = 0.5 ** (60.0 / p.half_life_s)  # per minute of frame time
        self._next_decay_ns = 0
        self._shift = 0.0
        self.reference_dbm: float | None = None  # None until min_weight bursts were heard

    def add(self, ts_ns: int, rssi: int) -> None:
        if ts_ns >= self._next_decay_ns:
            self._decay(ts_ns)
        if _LOW <= rssi <= _HIGH:
            self._hist[rssi - _LOW] += 1.0
            self._weight += 1.0

    @property
    def shift_db(self) -> float:
        """dB to add to a threshold chosen on the nominal scale (0 until the reference is trusted)."""
        return self._shift

    @property
    def offset_db(self) -> float | None:
        """Reference minus nominal: how far the scale sits from the one the thresholds were chosen on."""
        return None if self.reference_dbm is None else self.reference_dbm - self.params.nominal_dbm

    @property
    def drift(self) -> bool:
        offset = self.offset_db
        return offset is not None and abs(offset) >= self.params.drift_db

    def _decay(self, ts_ns: int) -> None:
        """Once a minute of frame time: fade the histogram and work the reference out again."""
        if self._next_decay_ns:
            steps = min((ts_ns - self._next_decay_ns) // self._DECAY_EVERY_NS + 1, 10_000)
            f = self._factor**steps
            self._hist = [h * f for h in self._hist]
            self._weight *= f
        self._next_decay_ns = ts_ns + self._DECAY_EVERY_NS
        p = self.params
        if not p.enabled or self._weight < p.min_weight:
            return
        target, seen = p.quantile * self._weight, 0.0
        for i, h in enumerate(self._hist):
            seen += h
            if seen >= target:
                self.reference_dbm = float(i + _LOW)
                break
        assert self.reference_dbm is not None
        offset = self.reference_dbm - p.nominal_dbm
        shift = p.gain * (offset - max(-p.deadzone_db, min(p.deadzone_db, offset)))
        self._shift = max(-p.max_down_db, min(p.max_up_db, shift))
