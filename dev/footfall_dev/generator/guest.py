"""The store's guest Wi-Fi: a share of visitors' phones auto-join it, and what the sensor then hears of them.

A phone that joined the guest network on an earlier visit joins again on its own a few seconds after it
comes in, with the network's own (per-network, locally administered) address, kept for the whole
association. While connected it sends data, null and QoS frames in bursts and scans far less often (an
associated phone has a network; Android and iOS then scan rarely, screen on or not), some of those scans
from its connected address. Passersby whose
phone knows the network may join for the seconds they are in range: the sensor hears their frames weakly
through the window.

The frame rate comes from the stations of the real captures (../shared/data/captures/aircrack_*.cap; see
`python -m bench.connected`): the 8 stations of aircrack_pmkid-not-recognized.cap heard for 5 s or more
sent 0.06 to 4.5 frames a second (median 0.78), in bursts (median gap 0.04-0.1 s inside a burst, idle
phones one frame every 5-6 s). So each joined phone draws its mean burst gap log-uniformly in `burst_gap_s`
and each burst 1..`burst_frames` frames: 0.05 to 3.5 frames a second.

Signal: the station's frames go through the model's radio (path loss, window loss, shadowing per burst,
fading per frame), as its probe requests do; the access point's frames to it carry the access point's
signal. A hopping sensor (several `heard_channels`) is on the access point's channel 1/n of the time, so
it hears 1/n of the station frames (probe bursts cover every channel and are heard as before); a sensor
fixed on that channel hears them all.

A phone whose class keeps one sequence counter across addresses (`SeqPolicy.CONTINUE`) numbers the scans
it makes while connected on from its last management, null or data frame (QoS frames count per traffic
class, apart). `GuestNetwork.frames` rewrites one person's probe stream (`GeneratedDay.records(guest=...)`);
`GuestNetwork.joined` is the truth: which people were connected, and when.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from footfall_dev.craft import (
    FC_NULL,
    FC_QOS_DATA,
    FC_QOS_NULL,
    channel_frequency,
    management_frame,
    radiotap_header,
    radiotap_station_frame,
)
from footfall_dev.generator.catalog import CLASSES
from footfall_dev.generator.devices import SeqPolicy
from footfall_dev.generator.model import StoreModel
from footfall_dev.generator.population import Kind, Person
from footfall_dev.generator.radio import _burst_mean_dbm, _Spot, beacon_emissions

SUBTYPE_AUTH = 11
_POWER_MGMT = 0x10  # frame control flags: the station is going to sleep (or off-channel)
_AUTH_BODY = bytes.fromhex("000001000000")  # open system, transaction 1, status 0


@dataclass(frozen=True, slots=True)
class Joined:
    """Truth: one person's phone on the guest network."""

    person: int
    address: bytes  # its per-network address (the captive portal's)
    start_s: float  # association, seconds from capture start
    end_s: float


@dataclass(frozen=True, slots=True)
class GuestNetwork:
    join_share: float = 0.3  # visitors whose phone auto-joins
    passerby_join_share: float = 0.03  # passersby whose phone knows the network and joins while in range
    join_delay_s: tuple[float, float] = (5.0, 40.0)  # from coming in to the association
    burst_gap_s: tuple[float, float] = (1.0, 20.0)  # a phone's mean gap between bursts, log-uniform
    burst_frames: int = 5
    probe_keep: float = 0.25  # share of scans a connected phone still makes
    # ...and of those, the share sent from its connected address rather than a fresh random one. Three
    # stations of the real captures probe with their connected address (one of them 126 times); how many
    # scans go out under random addresses no capture can tell (they cannot be linked), so this is a guess:
    # bench/connected.py prints the counts at 0 and at 1 as well.
    own_address_share: float = 0.5
    ap_share: float = 0.3  # bursts the access point answers with a frame of its own

    def __post_init__(self) -> None:
        for name in ("join_share", "passerby_join_share", "probe_keep", "own_address_share", "ap_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} = {getattr(self, name)}, must be within 0..1")

    def joined(self, model: StoreModel, person: Person) -> Joined | None:
        """Whether and when `person`'s phone is on the guest network (the same draw every call)."""
        if person.device is None:
            return None
        rng = random.Random(f"footfall-guest:{model.seed}:{person.index}")
        share = {Kind.VISITOR: self.join_share, Kind.PASSERBY: self.passerby_join_share}.get(person.kind, 0.0)
        if rng.random() >= share:
            return None
        raw = rng.randbytes(6)
        address = bytes(((raw[0] & 0xFC) | 0x02,)) + raw[1:]
        if person.kind is Kind.VISITOR:
            inside = [leg for leg in person.legs if leg.inside]
            start, end = inside[0].t0 + rng.uniform(*self.join_delay_s), inside[-1].t1
        else:
            start, end = person.active_s[0] + rng.uniform(*self.join_delay_s), person.active_s[1]
        return Joined(person.index, address, start, end) if start < end else None

    def frames(
        self, model: StoreModel, person: Person, probes: Iterator[tuple[float, bytes]], sensor: int = 0
    ) -> Iterator[tuple[float, bytes]]:
        """`person`'s frames as sensor `sensor` records them: its probe stream, thinned while connected,
        merged in time with its station frames (unchanged when the phone does not join)."""
        joined = self.joined(model, person)
        if joined is None:
            yield from probes
            return
        if model.fcs:
            raise ValueError(
                "the guest network rewrites probe requests: a model with fcs=True is not supported"
            )
        kept = ((t, data, -1) for t, data in self._thinned(model, person, joined, probes))
        # An associated station leaves its channel to scan after telling its access point so: a null frame
        # with power management set, just before the scan's first probe. A phone that keeps one sequence
        # counter across addresses (the iPhone 7's class) numbers that scan on from the null: the
        # continuity the tracker links on. The null is heard when the sensor is on the AP's channel.
        continues = person.device_class is not None and CLASSES[person.device_class].seq is SeqPolicy.CONTINUE
        rng = random.Random(f"footfall-guest-ps:{model.seed}:{person.index}")
        _, bssid, _, channel, _, _ = next(beacon_emissions(model, 0, math.inf))
        hearing = 1.0 if len(model.heard_channels) == 1 else 1.0 / len(model.heard_channels)
        counter, last_probe = -1, -math.inf
        for t, frame, seq in heapq.merge(
            kept, self._station_frames(model, person, joined, sensor), key=_time
        ):
            if seq >= 0:
                counter = seq
            elif counter >= 0 and _is_probe(frame) and joined.start_s <= t < joined.end_s:
                if t - last_probe > 1.0:  # a scan begins
                    counter = (counter + 1) & 0xFFF
                    if rng.random() < hearing:
                        rssi = int.from_bytes(
                            frame[14:15], "little", signed=True
                        )  # craft's radiotap: last byte
                        null = radiotap_station_frame(
                            FC_NULL, joined.address, bssid, counter, rssi, channel_frequency(channel)
                        )
                        yield t, null[:16] + bytes([null[16] | _POWER_MGMT]) + null[17:]  # fmt: skip
                last_probe = t
                if continues:
                    counter = (counter + 1) & 0xFFF
                    frame = _renumbered(frame, counter)  # noqa: PLW2901 - the frame as the phone numbered it
            if frame:
                yield t, frame

    def _thinned(
        self, model: StoreModel, person: Person, joined: Joined, probes: Iterator[tuple[float, bytes]]
    ) -> Iterator[tuple[float, bytes]]:
        """Drop whole scans (frames less than 1 s apart are one) made while connected, but `probe_keep`;
        send `own_address_share` of those kept from the connected address."""
        rng = random.Random(f"footfall-guest-scan:{model.seed}:{person.index}")
        last, keep, own = -math.inf, True, False
        for t, data in probes:
            if t - last > 1.0:
                connected = joined.start_s <= t < joined.end_s
                keep = not connected or rng.random() < self.probe_keep
                own = connected and rng.random() < self.own_address_share
            last = t
            if keep and own:
                at = (data[2] | data[3] << 8) + 10  # addr2, the transmitter, after the radiotap header
                yield t, data[:at] + joined.address + data[at + 6 :]
            elif keep:
                yield t, data

    def _station_frames(
        self, model: StoreModel, person: Person, joined: Joined, sensor: int
    ) -> Iterator[tuple[float, bytes, int]]:
        """(t, frame, its sequence number if it counts on the station's one non-QoS counter, else -1);
        the frame is b"" when the sensor does not hear it (the counter runs on all the same)."""
        rng = random.Random(f"footfall-guest-radio:{model.seed}:{person.index}")
        _, bssid, _, channel, _, _ = next(beacon_emissions(model, 0, math.inf))
        freq = channel_frequency(channel)
        here, n_sensors = model.sensors[sensor], len(model.sensors)
        offset = rng.gauss(0.0, model.device_offset_sigma_db)
        hearing = 1.0 if len(model.heard_channels) == 1 else 1.0 / len(model.heard_channels)
        mean_gap = math.exp(rng.uniform(math.log(self.burst_gap_s[0]), math.log(self.burst_gap_s[1])))
        floor, (lo, hi) = model.sensitivity_dbm, model.rssi_clip_dbm
        # Management, null and data frames share one counter; QoS frames count per traffic class.
        seq, qos, ap_seq = rng.randrange(4096), rng.randrange(4096), rng.randrange(4096)
        t, first, legs, leg_i = joined.start_s, True, person.legs, 0
        spot = _Spot()  # the station walks like its probes do (radio.py)
        while t < joined.end_s:
            while legs[leg_i].t1 <= t:
                leg_i += 1
            mean = _burst_mean_dbm(model, legs[leg_i], leg_i, spot, t, offset, rng, here, sensor, n_sensors)
            heard = rng.random() < hearing
            tt = t
            for i in range(1 if first else rng.randint(1, self.burst_frames)):
                fading = [rng.gauss(0.0, model.fading_sigma_db) for _ in range(n_sensors)][sensor]
                rssi = min(max(round(mean + fading), lo), hi)
                kind = FC_NULL if first else (FC_NULL, FC_QOS_NULL, FC_QOS_DATA)[rng.randrange(3)]
                n = seq if kind == FC_NULL else qos
                data = b""
                if heard and mean + fading >= floor:
                    if first:  # the association opens with the station's authentication
                        body = management_frame(SUBTYPE_AUTH, joined.address, n, _AUTH_BODY, receiver=bssid, bssid=bssid, fcs=False)  # fmt: skip
                        data = radiotap_header(rssi, freq) + body
                    else:
                        data = radiotap_station_frame(kind, joined.address, bssid, n, rssi, freq)
                if kind == FC_NULL:
                    yield tt, data, seq
                    seq = (seq + 1) & 0xFFF
                else:
                    yield tt, data, -1
                    qos = (qos + 1) & 0xFFF
                tt += rng.uniform(0.005, 0.1)
                if i == 0 and rng.random() < self.ap_share and heard:
                    ap_rssi = min(max(round(-45.0 + rng.gauss(0.0, model.fading_sigma_db)), lo), hi)
                    down = radiotap_station_frame(
                        FC_QOS_DATA, joined.address, bssid, ap_seq, ap_rssi, freq, uplink=False
                    )
                    ap_seq = (ap_seq + 1) & 0xFFF
                    yield tt, down, -1
                    tt += 0.001
            first = False
            t = max(tt + 0.01, t + rng.expovariate(1.0 / mean_gap))


def _time(frame: tuple[float, bytes, int]) -> float:
    return frame[0]


def _renumbered(data: bytes, seq: int) -> bytes:
    """A radiotap-wrapped 802.11 frame with its sequence number replaced (fragment 0)."""
    at = (data[2] | data[3] << 8) + 22  # sequence control, after the radiotap header
    return data[:at] + (seq << 4).to_bytes(2, "little") + data[at + 2 :]


def _is_probe(data: bytes) -> bool:
    return bool(data) and data[data[2] | data[3] << 8] == 0x40  # frame control: management, probe request
