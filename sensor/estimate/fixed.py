"""Fixed devices that keep time like a machine: the clock-like probing detector.

A device that keeps one address and starts its scans on a steady period (the Fryza lab PCs probe
every 60.0 s) is a machine, not a visitor. The detector learns the period from two scan starts,
then counts scans on the beat and off it; a second scan a few seconds after a beat is the same scan,
not a missed beat. Its state lives on the `Device` (period, anchor, on and off counts); the resolver
calls `beat` at the start of each scan burst of a device that still has one address and is not
flagged yet, and flags it when `beat` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sensor.estimate.candidates import Device


@dataclass(frozen=True, slots=True)
class ClockDetector:
    min_period_ns: int  # shortest period that counts as clock-like
    jitter_ns: int  # how far a scan may stray from the period and still count
    regular_bursts: int  # scans on the beat that make a device fixed

    def beat(self, dev: Device, ts: int) -> bool:
        """A scan burst of `dev` starts at `ts`: True once the device keeps time like a machine."""
        if dev.period_ns == 0:
            gap = ts - dev.anchor_ns
            if dev.anchor_ns and gap >= self.min_period_ns:
                dev.period_ns, dev.on_beat, dev.off_beat = gap, 1, 0
                dev.anchor_ns = ts
            elif not dev.anchor_ns or gap >= self.min_period_ns // 2:
                dev.anchor_ns = ts
            return False
        since = ts - dev.anchor_ns
        k = (since + dev.period_ns // 2) // dev.period_ns
        if k == 0:
            return False  # a second burst of the same scan (the lab PCs send a straggler 2-6 s later)
        if k <= 4 and abs(since - k * dev.period_ns) <= self.jitter_ns:
            if k == 1:  # refine the period on single steps only
                dev.period_ns += (since - dev.period_ns) // 4
            dev.on_beat += 1
            dev.anchor_ns = ts
        else:
            dev.off_beat += 1
            if dev.on_beat <= 1 or dev.off_beat > dev.on_beat + 2 or k > 4:
                dev.period_ns = 0  # lost the beat: learn it again from the next scans
                dev.anchor_ns = ts
        return dev.on_beat >= self.regular_bursts and dev.on_beat >= 3 * dev.off_beat


@dataclass(slots=True)
class ResidentFingerprints:
    """Staff phones that randomize their address: the fingerprint stays, the device does not.

    A staff phone that changes its address every scan or every few minutes never keeps one device
    for the hours that flag a device as staff; each piece of it would count as a visitor (one such
    phone made ~20 visitor visits a day in a generated boutique of 75 visitors). What stays is its
    element fingerprint, heard inside all day. A fingerprint heard at `rssi_dbm` or stronger (from
    randomized addresses) without a silence longer than `gap_ns` for `min_ns` has a resident; a new
    device born inside with that fingerprint is taken as the resident's next piece, not a visitor.
    The price: a visitor whose phone shares the resident's fingerprint and who was not heard on the
    way in is taken for staff too (with the 53 lab-measured phone classes, the generated busy store of
    seed 1 loses 21 visitor visits to it, 20 of them holding visitors' frames: a known cost, kept because
    a boutique's randomizing staff phone otherwise reads as a fifth of its visitors).
    """

    min_ns: int
    gap_ns: int
    rssi_dbm: int
    _runs: dict[str, list[int]] = field(default_factory=dict)  # fingerprint → [run start, last strong frame]

    def heard(self, fingerprint: str, ts: int, rssi: int | None) -> None:
        """A scan of a randomized device with this fingerprint (its first frame)."""
        if rssi is None or rssi < self.rssi_dbm:
            return
        run = self._runs.get(fingerprint)
        if run is None or ts - run[1] > self.gap_ns:
            self._runs[fingerprint] = [ts, ts]
        elif ts > run[1]:
            run[1] = ts

    def born(self, fingerprint: str, ts: int, rssi: int | None) -> bool:
        """A new randomized device's first frame: recorded; True if it is the resident's next piece."""
        self.heard(fingerprint, ts, rssi)
        return rssi is not None and rssi >= self.rssi_dbm and self.resident(fingerprint, ts)

    def resident(self, fingerprint: str, ts: int) -> bool:
        run = self._runs.get(fingerprint)
        return run is not None and ts - run[1] <= self.gap_ns and run[1] - run[0] >= self.min_ns

    def forget(self, before_ns: int) -> None:
        """Drop the runs that ended before `before_ns` (bounded memory)."""
        for fingerprint in [f for f, run in self._runs.items() if run[1] < before_ns]:
            del self._runs[fingerprint]

    def clear(self) -> None:
        self._runs.clear()
