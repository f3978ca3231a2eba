"""Candidates: the known devices a new address may continue, and how one is chosen among them.

`Device` is the resolver's record of one estimated device; every randomized device is a candidate for
the next new address of its fingerprint (and of its family) while it is live. `Linker` holds the rules
of sensor.devices (points 1 to 4 of its docstring) as thresholds in nanoseconds, worked out once from
`ResolverParams`, and scores candidates against a sighting. It keeps no state: the resolver owns the
candidate lists and counts the links.
"""

from __future__ import annotations

from dataclasses import dataclass

from sensor.decode.frames import Sighting

SEQ_MOD = 4096
NEVER = -(2**63)  # the `live_until_ns` of a device that can never take a new address
# Elements a phone adds or drops between its kinds of probe: SSID and DS parameter set (vary per
# probe), vendor-specific (221), interworking (107) and every extension element (255 * 256 + id).
_OPTIONAL_IDS = frozenset({0, 3, 107, 221})


def family(ie_ids: tuple[int, ...]) -> tuple[int, ...]:
    """The mandatory elements of a probe, sorted: what two probe kinds of one phone share."""
    return tuple(sorted({i for i in ie_ids if i < 256 and i not in _OPTIONAL_IDS}))


@dataclass(slots=True, eq=False)
class Device:
    id: str
    keys: list[str]  # fingerprints it has probed with
    family: tuple[int, ...]
    address: str  # the address it uses now
    global_address: bool  # its (only) address is globally administered
    addresses: int
    first_ns: int
    last_ns: int
    last_seq: int
    peak_rssi: int  # strongest frame so far (-128: none with a signal)
    rssi: dict[int | None, list[float]]  # [low, high] recent RSSI range per sensor channel
    run_start_ns: int  # start of the current presence run (no gap > fixed_gap_s)
    period_ns: int = 0  # clock period learnt from scan starts (0: none yet)
    anchor_ns: int = 0
    on_beat: int = 0
    off_beat: int = 0
    fixed: bool = False
    indexed: bool = True  # in the candidate lists (randomized devices that may take a new address)
    live_until_ns: int = NEVER  # it can take a new address until then (`Linker.live`, kept per frame)


@dataclass(frozen=True, slots=True)
class Linker:
    """The linking rules of `ResolverParams`, with its durations in nanoseconds."""

    link_ns: int  # link_window_s
    weak_link_ns: int  # weak_link_s
    seq_link_ns: int  # seq_link_s
    per_ns: float  # score per ns of silence: 1 / link_window_s in ns
    weak_rssi_dbm: int
    rssi_tolerance_db: float
    seq_window: int
    family_tolerance_db: float
    max_candidates: int
    lone_ns: int  # lone_link_s

    def lone(self, s: Sighting, dev: Device, other_ns: int) -> bool:
        """May `dev`, its family's last device, take the new address `s` after a silence?

        Only a phone alone of its kind: no other device of the family heard for `lone_ns`, `dev`
        itself heard within it and once inside-strong (not a passerby walking on), and the signal
        no further off than twice the fingerprint rule's tolerance (once, while `dev` is live) from
        the device's own swing (`envelope`). An idle phone scans again after 10-20 minutes with a
        new address; with nothing else of its kind around, it is the same phone.
        """
        ts = s.ts_ns
        if (
            dev.fixed
            or dev.global_address
            or ts - dev.last_ns > self.lone_ns
            or ts - other_ns <= self.lone_ns
        ):
            return False
        if dev.peak_rssi < self.weak_rssi_dbm:
            return False
        diff = self.envelope(s, dev)
        # Still live, it was refused by the fingerprint and family rules: only a close signal makes it
        # the same phone (a second probe kind of a lone phone); after a silence the phone may have moved.
        tolerance = self.rssi_tolerance_db if ts <= dev.live_until_ns else 2 * self.rssi_tolerance_db
        return diff is None or diff <= tolerance

    def live(self, dev: Device, ts: int) -> bool:
        """Can `dev` take a new address at `ts`?"""
        gap = ts - dev.last_ns
        if gap > self.link_ns or dev.fixed or dev.global_address:
            return False
        # A device only ever heard on the street has walked on after weak_link_s: not it.
        return gap <= self.weak_link_ns or dev.peak_rssi >= self.weak_rssi_dbm

    @staticmethod
    def distance(s: Sighting, dev: Device) -> float | None:
        """dB from the device's recent RSSI range on the sighting's channel (None: cannot tell)."""
        rssi = s.rssi_dbm
        span = dev.rssi.get(s.channel)
        if rssi is None or span is None:
            return None
        return max(span[0] - rssi, rssi - span[1], 0.0)

    @staticmethod
    def envelope(s: Sighting, dev: Device) -> float | None:
        """dB from the span of the device's recent RSSI ranges over all its channels (None: cannot tell).

        What one phone's frames measurably swing by, where the per-channel range of `distance` is too
        narrow a yardstick: the Baccichet iPhone XR's bursts read -16 to -68 dBm across its three
        channels within a second, so a frame 12 dB under its channel 11 range is still inside its own
        swing; the iPhone 12's second probe kind reads -72 to -78 dBm on channel 1, 16-20 dB under its
        first kind there, and inside the span its first kind covers over channels 1-11 (-74 to -54).
        Only the lone-phone rule uses it: with nothing else of the family heard, there is no second
        phone for the wider yardstick to swallow.
        """
        rssi = s.rssi_dbm
        if rssi is None or not dev.rssi:
            return None
        low = min(span[0] for span in dev.rssi.values())
        high = max(span[1] for span in dev.rssi.values())
        return max(low - rssi, rssi - high, 0.0)

    def best(self, s: Sighting, candidates: list[Device] | None) -> tuple[Device | None, bool]:
        """The device of the same fingerprint this new address continues, if any, and whether it was
        found by sequence number (else by signal).

        The hot loop of the resolver (once per candidate per new address), with `live` and
        `distance` inlined: `live` is `live_until_ns` (only randomized devices are candidates).
        The best is the lowest score, the oldest on a tie. Candidates are looked at newest first
        (hence `<=` to keep the oldest of equal scores), because a score without a sequence match
        is at least `gap * per_ns`: once a close match is found, an older candidate whose gap alone
        exceeds it is passed over without looking at its signal.
        """
        if not candidates:
            return None, False
        ts, rssi, channel, seq0 = s.ts_ns, s.rssi_dbm, s.channel, s.seq
        tolerance, window = self.rssi_tolerance_db, self.seq_window
        twice = 2 * tolerance
        seq_ns = self.seq_link_ns
        per_ns = self.per_ns
        best: Device | None = None
        best_score = float("inf")
        by_seq = False
        for dev in reversed(candidates[-self.max_candidates :]):
            if ts > dev.live_until_ns:
                continue
            gap = ts - dev.last_ns
            seq_near = 0 < (seq0 - dev.last_seq) % SEQ_MOD <= window and gap <= seq_ns
            if not seq_near and gap * per_ns > best_score:
                continue  # its score is at least gap * per_ns (tolerance >= 0): cannot win
            span = dev.rssi.get(channel) if rssi is not None else None
            if span is None:
                diff = None
            else:  # max(low - rssi, rssi - high, 0.0) with max's ties
                low, high = span
                diff = low - rssi if low - rssi > rssi - high else rssi - high  # type: ignore[operator]
                if not diff > 0.0:
                    diff = 0.0
            if seq_near and (diff is None or diff <= twice):  # 64 in 4096: chance matches do happen
                score = -1.0 / (1 + gap)  # any sequence match beats every RSSI match
                seq = True
            elif diff is None:
                score = tolerance + gap * per_ns  # after every RSSI match
                seq = False
            elif diff > tolerance:
                continue
            else:
                score = diff + gap * per_ns
                seq = False
            if score <= best_score:
                best, best_score, by_seq = dev, score, seq
        return best, by_seq

    def sibling(self, s: Sighting, candidates: list[Device] | None) -> Device | None:
        """The one live device of the new address's family, if it is alone and close in signal.

        With two or more live phones of the family in range, a new probe kind could be any of
        them (or a newcomer): no guess. A device borrows at most one probe kind, so a stranger
        that joined by mistake cannot pull in a third phone.
        """
        if not candidates:
            return None
        ts = s.ts_ns
        found: Device | None = None
        for dev in reversed(candidates[-self.max_candidates :]):
            if self.live(dev, ts):
                if found is not None:
                    return None
                found = dev
        if found is None or len(found.keys) > 1:
            return None
        diff = self.distance(s, found)
        return found if diff is not None and diff <= self.family_tolerance_db else None
