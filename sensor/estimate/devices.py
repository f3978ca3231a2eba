"""Device resolution: pseudonymised sightings → estimated devices, and which devices are fixed.

Address randomization breaks "one address = one device": in the Fryza lab captures a randomized
address almost never outlives one scan burst, so a phone shows up as a new address every few
seconds. What survives a change of address (Vanhoef et al. 2016) is what the resolver links on:

1. the fingerprint (element ids plus capability bytes): a new address continues a device whose
   fingerprint is the same. Phones send two or three kinds of probe (the Oppo Find X3 three, with
   vendor elements reordered; iPhones two whose capability bytes differ), so failing that, a new
   address may join a device of the same *family* (the same mandatory elements: rates, HT, VHT,
   extended capabilities; SSID, DS, vendor, interworking and extension elements left out), but
   only the one live device of that family, within `family_tolerance_db`, and a device borrows
   one probe kind at most. In a crowd (two or more live phones of the family) it never guesses:
   on the lab days every looser rule merged strangers and doubled the error;
2. sequence-number continuity: some phones (iPhone 7 and older Android) keep their 802.11 sequence
   counter running across the change, so a first sequence number 1..`seq_window` after a device's
   last one is a near-certain match;
3. signal strength: without a sequence match, the new address goes to the device of that
   fingerprint whose recent RSSI range (per sensor channel) it is closest to, if within
   `rssi_tolerance_db`; two phones of one model in different places stay apart, two in the same
   spot merge (the count then undershoots). A range rather than a mean, because one burst can
   swing by 40 dB when a radio hears the phone's frames on neighbouring channels;
4. time: only devices heard within `link_window_s` can take a new address (idle phones scan
   every few minutes with a fresh address each time). A device never heard stronger than
   `weak_rssi_dbm` is out on the street and moving: within `weak_link_s` it has walked out of
   range, so after that its fingerprint's next address is somebody else (the next passerby
   with the same phone model), not it.

A globally administered address is an identity, not a pseudonym of the moment: it is its own
device and is never linked to another address, in either direction (two same-model PCs probing
alternately stay two devices; an old phone probing with its factory address is one device). A
random address that speaks again after its device moved on to a newer one was another phone
linked by mistake (phones do not go back to a dropped random address): it is split off.

Fixed devices are flagged three ways: a device that keeps one address and probes like a clock (a
steady period, e.g. the lab PCs' 60.0 s; a second scan a few seconds after a beat is the same
scan) for `fixed_regular_bursts` scans; a device heard without a gap longer than `fixed_gap_s` for
`fixed_min_s` (a till, a staff phone with a stable address); and a new device born inside whose
fingerprint has been heard inside that long (a staff phone that randomizes). Flags are sticky.

Nothing here sees a raw MAC. All state but two sums of scan gaps (sensor/estimate/dwell.py) is dropped when
the pseudonym epoch changes: linking devices across a salt rotation would undo what the rotation is for.
Candidate scoring (rules 1 to 4): sensor/estimate/candidates.py; clock and resident detectors: fixed.py.
"""

from __future__ import annotations

from dataclasses import replace
from hashlib import blake2b
from typing import TypeVar

from footfall.times import NS
from sensor.decode.frames import Sighting
from sensor.estimate.candidates import NEVER, Device, Linker, family
from sensor.estimate.dwell import ScanGaps
from sensor.estimate.fixed import ClockDetector, ResidentFingerprints
from sensor.estimate.resolver_params import ResolverParams, ResolverStats

__all__ = ["DeviceResolver", "ResolverParams", "ResolverStats", "family"]

_K = TypeVar("_K", str, tuple[int, ...])
# Stronger is no phone's signal but a broken field (the Baccichet S21's last burst reads +15 dBm): linked
# as if no signal were known rather than as a phone 50 dB closer.
MAX_SIGNAL_DBM = 0


class DeviceResolver:
    """Call `resolve` once per sighting, in time order; it returns the sighting's device id.

    Cost per sighting: a dict lookup for a known address; for a new address, a scan of at most
    `max_candidates` recent devices of its fingerprint (and, without a match, of its family).
    Devices silent for `forget_s` are dropped every minute of frame time, so memory follows the
    traffic of the last hour, not of the day; addresses are kept in the order they were last heard,
    so forgetting them costs what is forgotten, not a scan of the hour's addresses.
    """

    _HOUSEKEEPING_NS = 60 * NS

    def __init__(self, params: ResolverParams | None = None) -> None:
        self.params = p = params or ResolverParams()
        self._link_ns = int(p.link_window_s * NS)
        self._weak_link_ns = int(p.weak_link_s * NS)
        self._seq_link_ns = int(p.seq_link_s * NS)
        self._burst_ns = int(p.burst_gap_s * NS)
        self._fixed_min_ns = int(p.fixed_min_s * NS)
        self._fixed_gap_ns = int(p.fixed_gap_s * NS)
        self._forget_ns = int(p.forget_s * NS)
        self._new_burst_ns = min(self._burst_ns, self._fixed_gap_ns)  # a gap that may change a run or beat
        self._weak_live_ns = min(self._link_ns, self._weak_link_ns)
        self._weak_rssi = p.weak_rssi_dbm
        self._decay = p.rssi_decay_db
        self._linker = Linker(
            link_ns=self._link_ns,
            weak_link_ns=self._weak_link_ns,
            seq_link_ns=self._seq_link_ns,
            per_ns=1.0 / (NS * p.link_window_s),
            weak_rssi_dbm=p.weak_rssi_dbm,
            rssi_tolerance_db=p.rssi_tolerance_db,
            seq_window=p.seq_window,
            family_tolerance_db=p.family_tolerance_db,
            max_candidates=p.max_candidates,
            lone_ns=int(p.lone_link_s * NS),
        )
        self._clock_detector = ClockDetector(
            min_period_ns=int(p.fixed_min_period_s * NS),
            jitter_ns=int(p.fixed_jitter_s * NS),
            regular_bursts=p.fixed_regular_bursts,
        )
        self._residents = (
            None
            if p.resident_rssi_dbm is None
            else ResidentFingerprints(self._fixed_min_ns, self._fixed_gap_ns, p.resident_rssi_dbm)
        )
        self._epoch = ""
        self.stats = ResolverStats()
        # Kept across epochs: two sums of gap lengths, nothing that names a device.
        self.scan_gaps = ScanGaps()
        self._reset()

    def _reset(self) -> None:
        self._by_address: dict[str, Device] = {}
        # When each address was last heard, in the order heard (see _housekeeping); an address last
        # heard in a frame older than the last housekeeping sits in _stragglers instead.
        self._address_last: dict[str, int] = {}
        self._stragglers: dict[str, int] = {}
        self._housekeeping_ns = 0  # frame time of the last housekeeping
        # The last frame's address (None after housekeeping, or when it went to the stragglers), its
        # device, and when it was last heard (not yet in _address_last when it spoke again: _flush_same).
        self._same_address: str | None = None
        self._same_dev: Device | None = None
        self._same_ns = 0
        self._by_key: dict[str, list[Device]] = {}
        self._by_family: dict[tuple[int, ...], list[Device]] = {}
        # Per family: its last randomized device heard, and when another device of it was last heard.
        self._family_last: dict[tuple[int, ...], tuple[Device, int]] = {}
        self._by_id: dict[str, Device] = {}
        self._fixed_ids: set[str] = set()
        if self._residents is not None:
            self._residents.clear()
        self._next_housekeeping_ns = 0

    # -- the hot path ----------------------------------------------------------------------------------
    def resolve(self, s: Sighting) -> str:
        if s.epoch != self._epoch:
            self._epoch = s.epoch
            self._reset()
        if s.rssi_dbm is not None and s.rssi_dbm > MAX_SIGNAL_DBM:
            s = replace(s, rssi_dbm=None)
        ts = s.ts_ns
        heard = self._address_last
        if not self._housekeeping_ns <= ts < self._next_housekeeping_ns:
            heard = self._clock(ts)
        address = s.address
        current = heard is self._address_last
        same = self._same_dev
        if address is self._same_address and current and same is not None:
            # The address of the last frame again (3 frames in 4 in a crowd: a burst), in this minute's
            # part of the order heard: its device, its place in the order and its index stand, and its
            # time there is written when another address speaks or housekeeping reads it (_flush_same).
            dev = same
            self._same_ns = ts
        else:
            self._flush_same()
            known = self._by_address.get(address)
            if known is None:
                dev = self._new_address(s)
            else:
                dev = known
                last = self._address_last.get(address)
                if last is None:
                    del self._stragglers[address]
                elif not (current and last >= self._housekeeping_ns):
                    # out, to be put back at the end of the order heard; one heard in this minute
                    # already stays where it is (the order needs to be by minute only: _housekeeping)
                    del self._address_last[address]
                if dev.address != address:
                    dev = self._returning(dev, s)
                elif not dev.indexed and not (dev.fixed or dev.global_address) and dev.id in self._by_id:
                    self._index(dev)
            heard[address] = ts
            self._same_address = address if current else None
            self._same_dev = dev
            self._same_ns = ts

        # Per-frame state of the device, inline: this runs for every frame of the capture.
        gap = ts - dev.last_ns
        if gap > self._new_burst_ns:
            if gap > self._fixed_gap_ns:
                dev.run_start_ns = ts
            if gap > self._burst_ns:
                self._beat(dev, ts)
                if not dev.fixed:
                    self.scan_gaps.add(gap)
                if s.randomized:
                    self._heard_family(dev)
                if self._residents is not None and s.randomized:
                    self._residents.heard(s.fingerprint, ts, s.rssi_dbm)
        dev.last_ns = ts
        dev.last_seq = s.seq
        rssi = s.rssi_dbm
        if rssi is None:
            dev.peak_rssi = 0  # no signal on this link type: nothing says it is passing by
        else:
            if rssi > dev.peak_rssi:  # noqa: PLR1730 - per frame: a compare, not a call
                dev.peak_rssi = rssi
            span = dev.rssi.get(s.channel)
            if span is None:
                dev.rssi[s.channel] = [rssi, rssi]
            else:
                # The range narrows by `decay` per frame and always takes the new value in:
                # min(rssi, low + decay) and max(rssi, high - decay), written out with min's and
                # max's ties; low <= rssi <= high, so the range needs no reordering.
                decay = self._decay
                low, high = span[0] + decay, span[1] - decay
                span[0] = low if low < rssi else rssi
                span[1] = high if high > rssi else rssi
        if not dev.fixed:
            # `Linker.live` as a deadline, so a candidate scan tests one number (fixed devices keep NEVER)
            weak = dev.peak_rssi < self._weak_rssi
            dev.live_until_ns = ts + (self._weak_live_ns if weak else self._link_ns)
            if ts - dev.run_start_ns >= self._fixed_min_ns and (dev.addresses == 1 or self._resident(s)):
                self._flag(dev)
        return dev.id

    def _flush_same(self) -> None:
        """The last frame's address's time into the order heard, where it already is (in place)."""
        if self._same_address is not None:
            self._address_last[self._same_address] = self._same_ns

    def is_fixed(self, device: str) -> bool:
        return device in self._fixed_ids

    def knows(self, device: str) -> bool:
        """Whether `device` is still tracked; a forgotten id never comes back (ids carry their birth time)."""
        return device in self._by_id

    @property
    def fixed_devices(self) -> frozenset[str]:
        """Ids flagged fixed or staff in the current epoch."""
        return frozenset(self._fixed_ids)

    @property
    def live_devices(self) -> int:
        return len(self._by_id)

    # -- linking ---------------------------------------------------------------------------------------
    def _new_address(self, s: Sighting) -> Device:
        self.stats.addresses += 1
        if not s.randomized:
            return self._make(s)  # a factory address is its own device
        best, by_seq = self._linker.best(s, self._by_key.get(s.fingerprint))
        if best is not None:
            if by_seq:
                self.stats.links_by_seq += 1
            else:
                self.stats.links_by_rssi += 1
        else:
            fam = family(s.ie_ids)
            best = self._linker.sibling(s, self._by_family.get(fam))
            if best is not None:
                self.stats.links_by_family += 1
            else:
                last = self._family_last.get(fam)
                if last is None or last[0].id not in self._by_id or not self._linker.lone(s, *last):
                    return self._make(s, fam)
                best = last[0]
                self.stats.links_by_lone += 1
            if s.fingerprint not in best.keys:
                best.keys.append(s.fingerprint)
                if best.indexed:
                    self._by_key.setdefault(s.fingerprint, []).append(best)
            if not best.indexed:
                self._index(best)  # back into the candidate lists, under every key it has
        self._by_address[s.address] = best
        best.address = s.address
        best.addresses += 1
        return best

    def _returning(self, dev: Device, s: Sighting) -> Device:
        """An earlier address of `dev` speaks again after `dev` moved on to a newer one.

        Phones do not go back to a random address they dropped (none of the single-phone captures
        does), so the two addresses are two devices that were linked by mistake (two phones of one
        model in the same spot, one keeping its address for minutes): split the returning one off.
        """
        self.stats.splits += 1
        dev.addresses = max(1, dev.addresses - 1)
        return self._make(s)

    def _make(self, s: Sighting, fam: tuple[int, ...] | None = None) -> Device:
        ts = s.ts_ns
        # From the address alone the first time it starts a device: every sensor of the store has the same
        # pseudonym for it (one seed), so they name the device alike whatever their clocks say, and the
        # collector merges their visits; a later device on the same address (a split) adds its time.
        again = s.address in self._by_address
        ident = blake2b(
            f"{s.address}/{ts}".encode() if again else s.address.encode(), digest_size=8
        ).hexdigest()
        dev = Device(
            id=ident,
            keys=[s.fingerprint],
            family=family(s.ie_ids) if fam is None else fam,
            address=s.address,
            global_address=not s.randomized,
            addresses=1,
            first_ns=ts,
            last_ns=ts,
            last_seq=s.seq,
            peak_rssi=-128,
            rssi={},
            run_start_ns=ts,
        )
        self.stats.devices += 1
        self._by_address[s.address] = dev
        self._by_id[ident] = dev
        residents = self._residents
        if s.randomized and residents is not None and residents.born(s.fingerprint, ts, s.rssi_dbm):
            dev.indexed = False  # born inside with a resident's fingerprint: its next piece
            self._flag(dev)
            return dev
        if s.randomized:  # only randomized devices are ever candidates for a new address
            self._index(dev)
            self._heard_family(dev)
        else:
            dev.indexed = False
        self._beat(dev, ts)
        return dev

    def _resident(self, s: Sighting) -> bool:
        """A device of many addresses heard for fixed_min_s (a lone phone linked across its silences)
        is staff only if its fingerprint is resident: one chain of addresses may still be two people."""
        return (
            self._residents is not None and s.randomized and self._residents.resident(s.fingerprint, s.ts_ns)
        )

    def _heard_family(self, dev: Device) -> None:
        """A scan of a randomized device: it is now its family's last device (see `Linker.lone`)."""
        last = self._family_last.get(dev.family)
        if last is None:
            self._family_last[dev.family] = (dev, NEVER)
        elif last[0] is not dev:
            self._family_last[dev.family] = (dev, last[0].last_ns)

    # -- fixed devices ---------------------------------------------------------------------------------
    def _beat(self, dev: Device, ts: int) -> None:
        """A scan burst starts at `ts`: does the device keep time like a machine (sensor/estimate/fixed.py)?"""
        if dev.addresses > 1 or dev.fixed:
            return
        if self._clock_detector.beat(dev, ts):
            self._flag(dev)

    def _flag(self, dev: Device) -> None:
        dev.fixed = True
        dev.live_until_ns = NEVER
        self._fixed_ids.add(dev.id)
        self.stats.fixed += 1

    # -- housekeeping ----------------------------------------------------------------------------------
    def _clock(self, ts: int) -> dict[str, int]:
        """A frame outside the current minute: housekeeping, or a frame that went back in time.

        Returns where the frame's address goes: the order heard, or the stragglers when it is
        older than the last housekeeping (the order heard only takes frames of the current minute).
        """
        if ts >= self._next_housekeeping_ns:
            self._housekeeping(ts)
            return self._address_last
        return self._stragglers

    def _housekeeping(self, now: int) -> None:
        """Every minute of frame time: forget what fell silent for `forget_s` (bounded memory), and
        take out of the candidate lists every device that can no longer take a new address (so a
        new address looks at the phones still around, not at the street's last ten minutes).

        Every address in `_address_last` was heard in the minute after some housekeeping, later
        than the addresses before it; so each was heard less than a minute before any that follows.
        The scan for silent addresses stops at the first heard a minute after the limit: all
        after it were heard after the limit. The stragglers are few and scanned whole.
        """
        self._flush_same()
        self._next_housekeeping_ns = now + self._HOUSEKEEPING_NS
        self._housekeeping_ns = now
        self._same_address, self._same_dev = None, None  # candidate lists and addresses change here
        self.scan_gaps.decay(now)
        limit = now - self._forget_ns
        stop = limit + self._HOUSEKEEPING_NS
        heard, stragglers, by_address = self._address_last, self._stragglers, self._by_address
        silent = []
        for address, last in heard.items():
            if last >= stop:
                break
            if last < limit:
                silent.append(address)
        for address in silent:
            del heard[address]
            del by_address[address]
        for address in [a for a, last in stragglers.items() if last < limit]:
            del stragglers[address]
            del by_address[address]
        for dev in [d for d in self._by_id.values() if d.last_ns < limit]:
            del self._by_id[dev.id]
            self._fixed_ids.discard(dev.id)
        self._prune(self._by_key, now)
        self._prune(self._by_family, now)
        for fam in [f for f, (d, _) in self._family_last.items() if d.last_ns < limit]:
            del self._family_last[fam]
        if self._residents is not None:
            self._residents.forget(limit)

    def _prune(self, index: dict[_K, list[Device]], now: int) -> None:
        for key in list(index):
            kept = []
            for dev in index[key]:
                if self._linker.live(dev, now):
                    kept.append(dev)
                else:
                    dev.indexed = False
            if kept:
                index[key] = kept
            else:
                del index[key]

    def _index(self, dev: Device) -> None:
        """(Back) into the candidate lists: a device pruned as gone spoke again with a known address."""
        dev.indexed = True
        for key in dev.keys:
            self._by_key.setdefault(key, []).append(dev)
        self._by_family.setdefault(dev.family, []).append(dev)
