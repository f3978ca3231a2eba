"""What the decoding core produces: plain, immutable values with no I/O behind them.

`ProbeRequest` still holds the raw transmitter address; the pipeline turns it into a `Sighting`
(pseudonym only) before anything else sees it, so only the decoder and the pseudonymiser ever
touch a raw MAC.

Why these are not frozen dataclasses: one of each is built per frame, and a frozen dataclass's
__init__ must store every field through object.__setattr__ (~100 ns a field interpreted; compiled by
mypyc it stays that Python function, ~1.1 µs for a ten-field value). Each class here is a slotted
dataclass (equality, hash, repr, `dataclasses.replace` from the decorator) whose fields are `Final`
and whose own `__init__` stores them plainly: mypyc compiles that into a native constructor (~70 ns)
with native attribute reads everywhere the hot path uses them, and the interpreted build runs it as
fast as the `__class__`-swapping drafts it replaced (bench/pipeline.py, README "Performance").
Immutability: mypy --strict rejects any assignment to a `Final` field (tests/test_frames.py proves
it on a sample), and the compiled build refuses one at run time (tests/test_compiled_build.py).
`unsafe_hash=True` hashes by the fields, as a frozen dataclass does; it is safe because they never
change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(slots=True, init=False, unsafe_hash=True)
class CaptureRecord:
    """One record of a capture file (pcap or pcapng), undecoded."""

    ts_ns: Final[int]  # UTC, nanoseconds since the Unix epoch
    linktype: Final[int]  # DLT: 127 radiotap, 105 bare 802.11, 119 Prism
    data: Final[bytes]
    orig_len: Final[int]  # length on the wire; > len(data) when the capture was snapped

    def __init__(self, ts_ns: int, linktype: int, data: bytes, orig_len: int) -> None:
        self.ts_ns = ts_ns
        self.linktype = linktype
        self.data = data
        self.orig_len = orig_len


@dataclass(slots=True, init=False, unsafe_hash=True)
class ProbeRequest:
    """An 802.11 probe request as heard by the sensor."""

    ts_ns: Final[int]
    transmitter: Final[bytes]  # addr2, 6 raw bytes: pseudonymised right after decoding, never stored
    rssi_dbm: Final[int | None]  # None where the link type carries no signal (105)
    freq_mhz: Final[int | None]
    channel: Final[int | None]
    seq: Final[int]  # 802.11 sequence number, 0..4095
    ssid: Final[str]  # "" for a wildcard probe; decoded UTF-8 with replacement
    ie_ids: Final[tuple[int, ...]]  # element ids in frame order; extension elements as 255*256 + ext id
    fingerprint: Final[str]  # 16 hex chars over ids + stable capability bytes (no SSID, no sequence)
    randomized: Final[bool]  # locally administered bit of the transmitter address

    def __init__(
        self,
        ts_ns: int,
        transmitter: bytes,
        rssi_dbm: int | None,
        freq_mhz: int | None,
        channel: int | None,
        seq: int,
        ssid: str,
        ie_ids: tuple[int, ...],
        fingerprint: str,
        randomized: bool,
    ) -> None:
        self.ts_ns = ts_ns
        self.transmitter = transmitter
        self.rssi_dbm = rssi_dbm
        self.freq_mhz = freq_mhz
        self.channel = channel
        self.seq = seq
        self.ssid = ssid
        self.ie_ids = ie_ids
        self.fingerprint = fingerprint
        self.randomized = randomized


@dataclass(slots=True, init=False, unsafe_hash=True)
class Sighting:
    """A probe request after pseudonymisation: what the presence model and estimators see.

    It carries no MAC and no SSID (directed probes name home networks, which are personal data).
    """

    ts_ns: Final[int]
    address: Final[str]  # keyed pseudonym of the transmitter address under the current epoch salt
    epoch: Final[str]  # salt epoch the pseudonym belongs to
    randomized: Final[bool]
    rssi_dbm: Final[int | None]
    channel: Final[int | None]
    seq: Final[int]
    fingerprint: Final[str]
    ie_ids: Final[tuple[int, ...]]
    directed: Final[bool]  # the probe named an SSID (its value is dropped)

    def __init__(
        self,
        ts_ns: int,
        address: str,
        epoch: str,
        randomized: bool,
        rssi_dbm: int | None,
        channel: int | None,
        seq: int,
        fingerprint: str,
        ie_ids: tuple[int, ...],
        directed: bool,
    ) -> None:
        self.ts_ns = ts_ns
        self.address = address
        self.epoch = epoch
        self.randomized = randomized
        self.rssi_dbm = rssi_dbm
        self.channel = channel
        self.seq = seq
        self.fingerprint = fingerprint
        self.ie_ids = ie_ids
        self.directed = directed


@dataclass(slots=True, init=False, unsafe_hash=True)
class ConnectedFrame:
    """A frame between a station and one of the store's access points (sensor/decode/connected.py).

    Only its MAC header was read. It still holds the raw station address; the pipeline turns it into a
    `ConnectedSighting` (pseudonym only) before anything else sees it, as it does a `ProbeRequest`.
    """

    ts_ns: Final[int]
    station: Final[
        bytes
    ]  # the station's address, 6 raw bytes: pseudonymised right after decoding, never stored
    bssid: Final[bytes]  # the store access point's BSSID (infrastructure, from capture.store_networks)
    from_station: Final[
        bool
    ]  # the station sent it: rssi_dbm is the station's signal (else the access point's)
    rssi_dbm: Final[int | None]  # of whichever sent it; None where the link type carries no signal (105)
    freq_mhz: Final[int | None]
    channel: Final[int | None]
    seq: Final[int | None]  # the sender's 802.11 sequence number, 0..4095; None for a PS-Poll, which has none
    kind: Final[
        str
    ]  # dot11.STATION_KINDS name: data, null, qos_data, qos_null, ps_poll, auth, (re)assoc_req/resp
    randomized: Final[bool]  # locally administered bit of the station address (a per-network random address)

    def __init__(
        self,
        ts_ns: int,
        station: bytes,
        bssid: bytes,
        from_station: bool,
        rssi_dbm: int | None,
        freq_mhz: int | None,
        channel: int | None,
        seq: int | None,
        kind: str,
        randomized: bool,
    ) -> None:
        self.ts_ns = ts_ns
        self.station = station
        self.bssid = bssid
        self.from_station = from_station
        self.rssi_dbm = rssi_dbm
        self.freq_mhz = freq_mhz
        self.channel = channel
        self.seq = seq
        self.kind = kind
        self.randomized = randomized


@dataclass(slots=True, init=False, unsafe_hash=True)
class ConnectedSighting:
    """A connected station's frame after pseudonymisation: what an estimator of connected devices sees.

    The address is pseudonymised under the same epoch salt as probe requests' transmitters, so a phone
    that probes and then connects with one address gets one pseudonym. No MAC, no BSSID: `network` is
    the store network's configured SSID (the store's own name, not personal data).
    """

    ts_ns: Final[int]
    address: Final[str]  # keyed pseudonym of the station address under the current epoch salt
    epoch: Final[str]
    randomized: Final[bool]
    network: Final[str]  # the store network (capture.store_networks ssid) the BSSID belongs to
    from_station: Final[bool]  # False: the access point sent it, so rssi_dbm does not place the station
    rssi_dbm: Final[int | None]
    channel: Final[int | None]
    seq: Final[int | None]
    kind: Final[str]
    consent: Final[
        str | None
    ]  # the station's consent token (privacy.mode consent, consented devices), else None

    def __init__(
        self,
        ts_ns: int,
        address: str,
        epoch: str,
        randomized: bool,
        network: str,
        from_station: bool,
        rssi_dbm: int | None,
        channel: int | None,
        seq: int | None,
        kind: str,
        consent: str | None,
    ) -> None:
        self.ts_ns = ts_ns
        self.address = address
        self.epoch = epoch
        self.randomized = randomized
        self.network = network
        self.from_station = from_station
        self.rssi_dbm = rssi_dbm
        self.channel = channel
        self.seq = seq
        self.kind = kind
        self.consent = consent
