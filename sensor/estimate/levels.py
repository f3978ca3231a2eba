"""How strong a count interval's phones are heard, relative to the sensor's own signal scale.

Inside devices and open visits say how many phones the sensor holds; how close they are is another
reading of the crowd. Per count interval this keeps, for every non-fixed device, address,
fingerprint and scan burst, its strongest frame, and at the interval's end turns them into counts of
those heard at `LEVELS_DB` above the scale's reference (sensor/estimate/scale.py: the median of
the randomized frames' signal, so a moved or re-antennaed sensor reads the same levels), plus the
quantiles of the bursts' signal relative to the reference and the share of strong bursts.

Pure: frames carry their own time; memory is the devices, addresses and bursts of one interval.
"""

from __future__ import annotations

from collections.abc import Callable

from footfall.times import NS
from sensor.decode.frames import Sighting

LEVELS_DB = (4, 8, 12, 16, 20)  # above the reference; the inside level sits 12 dB above it nominally
_BURST_NS = NS  # frames of one address less than this apart are one scan burst


class SignalLevels:
    """Call `observe` with every sighting and its device; `take(start_ns)` when its interval closes."""

    def __init__(self, interval_s: float) -> None:
        self._interval_ns = int(interval_s * NS)
        self._start = -1
        self._devices: dict[str, int] = {}  # device -> strongest frame (dBm)
        self._addresses: dict[str, tuple[str, int]] = {}  # address -> (device, strongest)
        self._fingerprints: dict[tuple[str, str], int] = {}  # (fingerprint, device) -> strongest
        self._last: dict[str, int] = {}  # address -> its last frame's time
        self._bursts: list[list[object]] = []  # [device, strongest] per scan burst
        self._open: dict[str, list[object]] = {}  # address -> its current burst
        self._done: tuple[
            int, dict[str, int], dict[str, tuple[str, int]], dict[tuple[str, str], int], list[list[object]]
        ] = (-1, {}, {}, {}, [])

    def observe(self, s: Sighting, device: str) -> None:
        rssi = s.rssi_dbm
        if rssi is None or rssi > 0:
            return
        start = s.ts_ns - s.ts_ns % self._interval_ns
        if start != self._start:
            self._roll(start)
        if self._devices.get(device, -999) < rssi:
            self._devices[device] = rssi
        a = s.address
        prior = self._addresses.get(a)
        if prior is None or prior[1] < rssi:
            self._addresses[a] = (device, rssi)
        key = (s.fingerprint, device)
        if self._fingerprints.get(key, -999) < rssi:
            self._fingerprints[key] = rssi
        last = self._last.get(a)
        self._last[a] = s.ts_ns
        burst = self._open.get(a)
        if burst is None or last is None or s.ts_ns - last >= _BURST_NS:
            burst = [device, rssi]
            self._open[a] = burst
            self._bursts.append(burst)
        elif burst[1] < rssi:  # type: ignore[operator]
            burst[1] = rssi

    def _roll(self, start: int) -> None:
        # The interval just closed is kept until the next roll: its count event is made when the
        # first frame past its end arrives, which this has already seen.
        self._done = (self._start, self._devices, self._addresses, self._fingerprints, self._bursts)
        self._start = start
        self._devices, self._addresses, self._fingerprints = {}, {}, {}
        self._bursts, self._open = [], {}

    def take(self, start_ns: int, is_fixed: Callable[[str], bool], reference_dbm: float) -> dict[str, float]:
        """The interval starting at `start_ns`: counts at each level above the reference, and more."""
        if start_ns == self._start:
            devices, addrs, fps, all_bursts = self._devices, self._addresses, self._fingerprints, self._bursts
        elif start_ns == self._done[0]:
            _, devices, addrs, fps, all_bursts = self._done
        else:
            return _empty()
        ok = {d: r for d, r in devices.items() if not is_fixed(d)}
        out: dict[str, float] = {}
        addresses = [r for d, r in addrs.values() if d in ok]
        fingerprints: dict[str, int] = {}
        for (fp, d), r in fps.items():
            if d in ok and fingerprints.get(fp, -999) < r:
                fingerprints[fp] = r
        bursts = sorted(float(b[1]) - reference_dbm for b in all_bursts if b[0] in ok)  # type: ignore[arg-type]
        for k in LEVELS_DB:
            level = reference_dbm + k
            out[f"dev{k}"] = float(sum(1 for r in ok.values() if r >= level))
            out[f"addr{k}"] = float(sum(1 for r in addresses if r >= level))
            out[f"fp{k}"] = float(sum(1 for r in fingerprints.values() if r >= level))
            out[f"burst{k}"] = float(sum(1 for r in bursts if r >= k))
        n = len(bursts)
        for q in (50, 75, 90):
            out[f"q{q}"] = bursts[min(n * q // 100, n - 1)] if n else 0.0
        out["strong_share"] = out["burst12"] / n if n else 0.0
        return out


def _empty() -> dict[str, float]:
    out = {f"{name}{k}": 0.0 for k in LEVELS_DB for name in ("dev", "addr", "fp", "burst")}
    return out | {"q50": 0.0, "q75": 0.0, "q90": 0.0, "strong_share": 0.0}
