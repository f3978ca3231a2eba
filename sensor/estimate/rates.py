"""Crowd counting from scan rates, combined with the linked device count where linking is sure.

Linking the addresses of one phone (sensor/estimate/devices.py) is sure when a fingerprint has a
single phone in range or a phone probes with its global address; in a crowd of one phone model
that changes its address every scan, chaining collapses several phones into one "device", or
splits one. The scan bursts say how many phones there were regardless of linking: a phone of
fingerprint f scans `rate_f` times a minute, so `bursts_f / (rate_f * minutes)` phones of that
fingerprint were in range. `ScanRates` counts, per fingerprint and per bucket of frame time, the
scan bursts (frames of one address and fingerprint less than `burst_s` apart are one burst), the new addresses and
the linked devices of the inside-level frames it is shown; `WindowRates.figure` turns a window's
counts into a device figure with a table of per-fingerprint rates (trained on the lab days' sure
windows, `python -m bench.train`, shipped in count_model.json):

    per fingerprint: linked devices if every frame had a global address (linking is sure),
                     else max(linked devices, bursts / (rate * minutes))

summed over fingerprints. The count model (count_model.py) takes the figure as one feature.

Pure and bounded: the frames' own timestamps order everything (no clock); memory is the addresses
heard in the last `address_memory_s` and the buckets of the last `retain_s`, each bucket one small
dict per fingerprint heard in it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from footfall.times import NS


@dataclass(frozen=True, slots=True)
class FingerprintWindow:
    """What one fingerprint's inside-level frames did in a window (fixed devices left out)."""

    fingerprint: str
    devices: int  # distinct linked devices
    bursts: int  # scan bursts (all addresses)
    new_addresses: int  # addresses first heard in the window
    randomized: bool  # any frame with a randomized address


@dataclass(frozen=True, slots=True)
class WindowRates:
    """The per-fingerprint counts of one window; `minutes` is its length."""

    minutes: float
    fingerprints: tuple[FingerprintWindow, ...]

    def figure(self, rates: Mapping[str, float], default_rate: float) -> float:
        """Devices in range: linked where linking is sure, else at least what the scan rate says."""
        if self.minutes <= 0:
            return 0.0
        total = 0.0
        for f in self.fingerprints:
            if not f.randomized:
                total += f.devices
                continue
            rate = rates.get(f.fingerprint, default_rate)
            total += max(float(f.devices), f.bursts / (rate * self.minutes)) if rate > 0 else f.devices
        return total

    @property
    def bursts(self) -> int:
        return sum(f.bursts for f in self.fingerprints)

    @property
    def devices(self) -> int:
        return sum(f.devices for f in self.fingerprints)


class _Bucket:
    __slots__ = ("bursts", "devices", "new", "randomized")

    def __init__(self) -> None:
        self.devices: dict[str, set[str]] = {}  # fingerprint -> linked devices
        self.bursts: dict[str, int] = {}
        self.new: dict[str, int] = {}
        self.randomized: set[str] = set()  # fingerprints heard with a randomized address


class ScanRates:
    """Call `observe` for every inside-level sighting (time order); `window` when an interval closes."""

    def __init__(
        self,
        bucket_s: int = 60,
        retain_s: float = 3600.0,
        burst_s: float = 1.0,
        address_memory_s: float = 900.0,
    ) -> None:
        if bucket_s <= 0 or retain_s < bucket_s:
            raise ValueError(f"need 0 < bucket_s <= retain_s, got {bucket_s}, {retain_s}")
        self._bucket_ns = bucket_s * NS
        self._retain_ns = int(retain_s * NS)
        self._burst_ns = int(burst_s * NS)
        self._memory_ns = int(address_memory_s * NS)
        # (address, fingerprint) -> its last frame: a fingerprint's scans are its own (a phone whose
        # scan carries two probe kinds scans in both)
        self._last: dict[tuple[str, str], int] = {}
        self._buckets: dict[int, _Bucket] = {}
        self._next_prune_ns = 0

    def observe(self, ts_ns: int, address: str, fingerprint: str, randomized: bool, device: str) -> None:
        if ts_ns >= self._next_prune_ns:
            self._prune(ts_ns)
        at = ts_ns // self._bucket_ns
        bucket = self._buckets.get(at)
        if bucket is None:
            bucket = self._buckets[at] = _Bucket()
        linked = bucket.devices.get(fingerprint)
        if linked is None:
            linked = bucket.devices[fingerprint] = set()
        linked.add(device)
        if randomized:
            bucket.randomized.add(fingerprint)
        key = (address, fingerprint)
        last = self._last.get(key)
        if last is None or ts_ns - last >= self._burst_ns:
            bucket.bursts[fingerprint] = bucket.bursts.get(fingerprint, 0) + 1
            if last is None:
                bucket.new[fingerprint] = bucket.new.get(fingerprint, 0) + 1
        if last is None or ts_ns > last:
            self._last[key] = ts_ns

    def window(self, start_ns: int, end_ns: int, is_fixed: Callable[[str], bool]) -> WindowRates:
        """The counts of the buckets that start in [start_ns, end_ns), fixed devices' fingerprints
        left out (a fingerprint is fixed in the window when all its linked devices are)."""
        if end_ns <= start_ns:
            raise ValueError(f"empty interval: start {start_ns} >= end {end_ns}")
        devices: dict[str, set[str]] = {}
        bursts: dict[str, int] = {}
        new: dict[str, int] = {}
        randomized: set[str] = set()
        first = -(-start_ns // self._bucket_ns)
        for key in range(first, -(-end_ns // self._bucket_ns)):
            bucket = self._buckets.get(key)
            if bucket is None:
                continue
            for fp, linked in bucket.devices.items():
                devices.setdefault(fp, set()).update(linked)
                bursts[fp] = bursts.get(fp, 0) + bucket.bursts.get(fp, 0)
                new[fp] = new.get(fp, 0) + bucket.new.get(fp, 0)
            randomized |= bucket.randomized
        out = []
        for fp, linked in devices.items():
            live = [d for d in linked if not is_fixed(d)]
            if not live:
                continue
            # A fixed device's bursts go with it: scale its fingerprint's bursts by the live share.
            share = len(live) / len(linked)
            out.append(
                FingerprintWindow(
                    fp, len(live), round(bursts[fp] * share), round(new[fp] * share), fp in randomized
                )
            )
        out.sort(key=lambda f: f.fingerprint)
        return WindowRates((end_ns - start_ns) / (60 * NS), tuple(out))

    def _prune(self, now: int) -> None:
        """Once a minute of frame time: forget old buckets and addresses not heard for a while."""
        self._next_prune_ns = now + 60 * NS
        oldest = (now - self._retain_ns) // self._bucket_ns
        for key in [k for k in self._buckets if k < oldest]:
            del self._buckets[key]
        limit = now - self._memory_ns
        self._last = {a: t for a, t in self._last.items() if t >= limit}

    @property
    def addresses(self) -> int:
        """Addresses remembered (an address heard with two fingerprints counts twice)."""
        return len(self._last)
