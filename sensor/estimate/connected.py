"""Connected devices: stations of the store's own networks → one device each, and the probe addresses
that are surely theirs.

A station connected to a store BSSID keeps one address for the whole association, so its address *is*
its device: no fingerprint, no guess. What the tracker decides:

- **Sightings for the presence model.** A connected phone sends from a few frames a second (idle, power
  save: null frames) to hundreds (streaming). The visit and occupancy models need a heartbeat, not every
  frame: one `Sighting` per station per `tick_s` at most, carrying the *median* signal of the station's own
  frames in that tick. The median, because the inside rule (`presence.visitor_rssi`, the estimator's
  `inside_rssi_dbm`) is a threshold on the strongest frame of a visit, tuned on phones heard a few times a
  minute: the strongest of a hundred times more frames of a fading signal is several dB higher (bench:
  `python -m bench.connected`), which would let the guest network's clients on the pavement and in the
  café next door pass for visitors. Being connected says the phone is inside the access point's cell,
  which spills past the walls; it does not say inside. The access point's frames *to* the station carry
  the AP's signal, not the phone's: they keep the station known (and counted as connected), never place it.
- **Links to probe addresses, only when sure.** A probe from a live station's own address is that phone
  (the same pseudonym). A directed probe for the store's SSID is a phone about to (re)join with that very
  address: when the address then associates, the station takes the device the probe was filed under, so
  the join is one visit, not a passerby and a visitor. Sequence continuity: a phone that keeps its one
  802.11 counter across addresses numbers its probes on from its last non-QoS frame (QoS data frames
  count per traffic class, so they are left out), and an associated station leaves its channel to scan
  right after telling its access point so with a null frame (power management set). So a new random
  address whose first sequence number is 1..`seq_gap` after exactly one live station's last non-QoS
  frame, at most `seq_window_s` before, is that station; two candidates: no link. Tight, because a
  random address's sequence number is uniform over 4096: with a 30 s window and a gap of 8, one link in
  four on a generated day joined two different phones (each station heard in the window is a 8/4096
  chance); with 1 s and 2 there is about one station in the window and a 1/2048 chance. Anything else stays the resolver's device: a phone's
  random probe addresses and its connected address may then be two devices, an overcount the README
  measures, never a merge of two phones.
- **Fixed stations.** The store's own tablets, tills and staff phones sit on its network all day: a station
  heard without a silence longer than `fixed_gap_s` for `fixed_min_s` is fixed, as the resolver does for
  probing devices (the same numbers, `ResolverParams`).

All state is dropped when the pseudonym epoch changes (linking across a salt rotation would undo it), and
stations silent for `forget_s` are dropped, so memory follows the stations of the last hour.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import blake2b

from footfall.times import NS
from sensor.decode.frames import ConnectedSighting, Sighting
from sensor.estimate.resolver_params import ResolverParams

_QOS = frozenset({"qos_data", "qos_null"})  # per-TID sequence counters: no continuity with probes
_HOUSEKEEPING_NS = 60 * NS
_RESOLVER = ResolverParams()


@dataclass(frozen=True, slots=True)
class ConnectedParams:
    tick_s: float = 5.0  # at most one sighting per station this often (phones probe every 0.5-2 min)
    seq_gap: int = 2  # a probe's sequence number this close after a station's: the same counter
    seq_window_s: float = 1.0  # ...and that soon after the station's last non-QoS frame
    join_window_s: float = 60.0  # a store-SSID probe's address that associates this soon: one device
    forget_s: float = 3600.0
    fixed_min_s: float = _RESOLVER.fixed_min_s
    fixed_gap_s: float = _RESOLVER.fixed_gap_s
    interval_s: int = 300  # the count interval (presence.interval_s) the connected figure is kept for

    def __post_init__(self) -> None:
        if not 0 < self.tick_s <= 60:
            raise ValueError(f"tick_s must be in (0, 60], got {self.tick_s}")
        if not 0 <= self.seq_gap <= 64:
            raise ValueError(f"seq_gap must be in 0..64, got {self.seq_gap}")


@dataclass(slots=True)
class _Station:
    device: str
    last_ns: int  # any frame of the association, either direction
    run_start_ns: int
    last_seq: int | None = None  # of its last non-QoS frame it sent
    last_seq_ns: int = 0
    tick_ns: int = -(2**63)  # when its last sighting was handed on
    rssi: list[int] = field(default_factory=list)  # its own frames' signal since then
    randomized: bool = True
    channel: int | None = None


class ConnectedTracker:
    """Feed it every connected sighting (`connected`) and every probe sighting (`probe`), in time order."""

    def __init__(self, params: ConnectedParams | None = None) -> None:
        self.params = p = params or ConnectedParams()
        self._tick_ns = int(p.tick_s * NS)
        self._seq_window_ns = int(p.seq_window_s * NS)
        self._join_ns = int(p.join_window_s * NS)
        self._forget_ns = int(p.forget_s * NS)
        self._fixed_min_ns = int(p.fixed_min_s * NS)
        self._fixed_gap_ns = int(p.fixed_gap_s * NS)
        self._interval_ns = p.interval_s * NS
        self._epoch = ""
        self._stations: dict[str, _Station] = {}  # address pseudonym -> station
        self._linked: dict[str, str] = {}  # probe address -> the station address it is surely
        self._joining: dict[str, tuple[str, int]] = {}  # store-SSID probe address -> (device, ts)
        self._devices: dict[str, int] = {}  # device -> its last connected frame
        self._fixed: set[str] = set()
        self._heard: dict[int, set[str]] = {}  # interval start -> devices connected in it
        self._next_housekeeping_ns = 0
        # Told of every link by sequence continuity (probe address, station address): tests and debugging.
        self.on_link: Callable[[str, str], None] | None = None
        self.links_by_address = 0
        self.links_by_seq = 0
        self.links_by_join = 0

    # -- input -----------------------------------------------------------------------------------------
    def connected(self, s: ConnectedSighting) -> tuple[Sighting, str] | None:
        """The sighting to hand the presence model for this frame and its device, or None (not due, or
        the access point's frame)."""
        self._clock(s.epoch, s.ts_ns)
        ts = s.ts_ns
        st = self._stations.get(s.address)
        if st is None:
            st = self._stations[s.address] = _Station(self._device_for(s.address, ts), ts, ts)
        elif ts - st.last_ns > self._fixed_gap_ns:
            st.run_start_ns = ts
        st.last_ns = ts
        st.randomized = s.randomized
        self._devices[st.device] = ts
        self._heard.setdefault(ts - ts % self._interval_ns, set()).add(st.device)
        if ts - st.run_start_ns >= self._fixed_min_ns:
            self._fixed.add(st.device)
        if not s.from_station:
            return None  # the access point's signal: it places the AP, not the phone
        if s.seq is not None and s.kind not in _QOS:
            st.last_seq, st.last_seq_ns = s.seq, ts
        if s.rssi_dbm is not None:
            st.rssi.append(s.rssi_dbm)
        st.channel = s.channel
        if ts - st.tick_ns < self._tick_ns:
            return None
        rssi = round(statistics.median(st.rssi)) if st.rssi else None
        st.rssi.clear()
        st.tick_ns = ts
        seq = s.seq if s.seq is not None else 0
        return Sighting(ts, s.address, s.epoch, s.randomized, rssi, s.channel, seq, "", (), False), st.device

    def probe(self, s: Sighting, device: str, store_ssid: bool) -> str:
        """The device a probe sighting belongs to: a connected station's when surely the same phone,
        else `device` (the resolver's). `store_ssid`: the probe named one of the store's networks."""
        self._clock(s.epoch, s.ts_ns)
        address = s.address
        st = self._stations.get(address)
        if st is not None:
            self.links_by_address += 1
            return st.device
        linked = self._linked.get(address)
        if linked is not None and linked in self._stations:
            return self._stations[linked].device
        if s.randomized and linked is None and self._stations:
            # Only a new address's first frame can continue a counter; "" notes it was tried.
            by_seq = self._linked[address] = self._by_seq(s) or ""
            if by_seq:
                self.links_by_seq += 1
                if self.on_link is not None:
                    self.on_link(address, by_seq)
                return self._stations[by_seq].device
        if store_ssid:
            self._joining[address] = (device, s.ts_ns)
        return device

    # -- what the counts ask ---------------------------------------------------------------------------
    def is_fixed(self, device: str) -> bool:
        return device in self._fixed

    def knows(self, device: str) -> bool:
        return device in self._devices

    def connected_in(self, start_ns: int) -> int:
        """Non-fixed devices connected in the interval starting at `start_ns`; forgets that interval and
        every earlier one (the presence model asks for each interval once, in order)."""
        devices = self._heard.pop(start_ns, set())
        for old in [k for k in self._heard if k < start_ns]:
            del self._heard[old]
        return sum(1 for d in devices if d not in self._fixed)

    @property
    def live_stations(self) -> int:
        return len(self._stations)

    # -- internals -------------------------------------------------------------------------------------
    def _device_for(self, address: str, ts: int) -> str:
        joining = self._joining.pop(address, None)
        if joining is not None and ts - joining[1] <= self._join_ns:
            self.links_by_join += 1
            return joining[0]
        # Named from the address alone, as the resolver names a device born of it: every sensor of the
        # store gives one station one id, and the collector merges their visits.
        return blake2b(address.encode(), digest_size=8).hexdigest()

    def _by_seq(self, s: Sighting) -> str | None:
        found = None
        for address, st in self._stations.items():
            if (
                st.last_seq is None
                or s.ts_ns - st.last_seq_ns > self._seq_window_ns
                or s.ts_ns < st.last_seq_ns
            ):
                continue
            if 1 <= (s.seq - st.last_seq) % 4096 <= self.params.seq_gap:
                if found is not None:
                    return None  # two stations could have sent it: no guess
                found = address
        return found

    def _clock(self, epoch: str, ts: int) -> None:
        if epoch != self._epoch:
            self._epoch = epoch
            self._stations.clear()
            self._linked.clear()
            self._joining.clear()
            self._devices.clear()
            self._fixed.clear()
        if ts >= self._next_housekeeping_ns:
            self._next_housekeeping_ns = ts + _HOUSEKEEPING_NS
            limit = ts - self._forget_ns
            gone = {a for a, st in self._stations.items() if st.last_ns < limit}
            for address in gone:
                del self._stations[address]
            self._linked = {p: a for p, a in self._linked.items() if a in self._stations}
            self._joining = {a: j for a, j in self._joining.items() if ts - j[1] <= self._join_ns}
            self._devices = {d: t for d, t in self._devices.items() if t >= limit}
            self._fixed &= self._devices.keys()
