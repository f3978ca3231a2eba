"""What the decoding core produces: plain, immutable values with no I/O behind them.

`ProbeRequest` still holds the raw transmitter address; the pipeline turns it into a `Sighting`
(pseudonym only) before anything else sees it, so only the decoder and the pseudonymiser ever
touch a raw MAC.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    """One record of a capture file (pcap or pcapng), undecoded."""

    ts_ns: int  # UTC, nanoseconds since the Unix epoch
    linktype: int  # DLT: 127 radiotap, 105 bare 802.11, 119 Prism
    data: bytes
    orig_len: int  # length on the wire; > len(data) when the capture was snapped


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """An 802.11 probe request as heard by the sensor."""

    ts_ns: int
    transmitter: bytes  # addr2, 6 raw bytes: pseudonymised right after decoding, never stored
    rssi_dbm: int | None  # None where the link type carries no signal (105)
    freq_mhz: int | None
    channel: int | None
    seq: int  # 802.11 sequence number, 0..4095
    ssid: str  # "" for a wildcard probe; decoded UTF-8 with replacement
    ie_ids: tuple[int, ...]  # element ids in frame order; extension elements as 255*256 + ext id
    fingerprint: str  # 16 hex chars over ids + stable capability bytes (no SSID, no sequence)
    randomized: bool  # locally administered bit of the transmitter address


@dataclass(frozen=True, slots=True)
class Sighting:
    """A probe request after pseudonymisation: what the presence model and estimators see.

    It carries no MAC and no SSID (directed probes name home networks, which are personal data).
    """

    ts_ns: int
    address: str  # keyed pseudonym of the transmitter address under the current epoch salt
    epoch: str  # salt epoch the pseudonym belongs to
    randomized: bool
    rssi_dbm: int | None
    channel: int | None
    seq: int
    fingerprint: str
    ie_ids: tuple[int, ...]
    directed: bool  # the probe named an SSID (its value is dropped)
