"""From a captured record to a `ProbeRequest` (or a `ConnectedFrame`), fast, counting everything it throws away.

`FrameDecoder.decode` never raises on frame content: anything that is not a valid probe request
returns None and is counted in `stats` (skipped by kind, or an error by reason). It is the
sensor's hot loop, so it memoises what repeats: the radiotap layout per chain of present words,
and the element walk (SSID, ids, fingerprint) per distinct frame body, since a phone sends the
same body again and again. Bounded caches; nothing else is allocated per frame but the result.

Given the store networks' BSSIDs, frames between a station and those access points become
`ConnectedFrame`s (sensor/decode/connected.py, headers only); without them, or for any other network,
such frames are skipped by kind as before. Probe requests take the same path either way.

Policy for a probe request whose element walk does not end exactly at the end of the frame:
1. Where the radio header did not say whether an FCS is present (link types 105 and 119, and
   radiotap without the Flags field), the last 4 bytes may be an FCS: if they are the CRC-32 of the
   frame, they are dropped and the frame is kept (anomaly "fcs_inferred"). The Prism capture in
   shared/data is such a case: tshark calls its two probe requests malformed only because it reads
   their FCS as an element.
2. Otherwise, if the SSID element was read whole, the frame is kept with the elements before the
   broken one (anomaly "ie_truncated"): its transmitter, signal and sequence number are sound.
3. Otherwise it is dropped as error "ie_truncated".
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from sensor.decode import dot11, prism, radiotap
from sensor.decode.connected import StationParser
from sensor.decode.dot11 import (
    ADDR2,
    FC_FLAG_ORDER,
    FC_FLAGS,
    FC_PROBE_REQUEST,
    FRAME_KIND,
    HEADER_LEN,
    HT_CONTROL_LEN,
    SEQ_CTRL,
    STATION_KINDS,
)
from sensor.decode.errors import DecodeError, Malformed, Truncated
from sensor.decode.frames import ConnectedFrame, ProbeRequest
from sensor.decode.radiotap import NO_FIELD, NO_SIGNAL

LINKTYPE_IEEE802_11: Final = 105
LINKTYPE_PRISM: Final = 119
LINKTYPE_RADIOTAP: Final = 127

_U32: Final = struct.Struct("<I")
_FCS_LEN: Final = 4
_FCS_FLAGS: Final = radiotap.FLAG_FCS_AT_END | radiotap.FLAG_BAD_FCS
# why an element walk is suspicious (Final: mypyc inlines them)
_OVERRUN: Final = 1
_SHORT_TAIL: Final = 2
_Walked = tuple[str, tuple[int, ...], str, int]  # ssid, ids, fingerprint, suspicious


@dataclass(slots=True)
class DecodeStats:
    """What the decoder saw. frames == probe_requests + connected + sum(skipped) + sum(errors).

    `anomalies` counts frames that were kept all the same (see the module's policy).
    """

    probe_requests: int = 0
    connected: int = 0  # frames between a station and a store network's access point
    skipped: dict[str, int] = field(default_factory=dict)  # valid frames of another kind
    errors: dict[str, int] = field(default_factory=dict)  # dropped, by DecodeError.reason
    anomalies: dict[str, int] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return self.probe_requests + self.connected + sum(self.skipped.values()) + sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, **dataclasses.asdict(self)}


class _Radio(NamedTuple):
    """What a radio header says, precompiled per distinct header layout."""

    length: int  # bytes before the 802.11 frame
    flags_at: int  # where radiotap.read finds the fields (see RadiotapLayout)
    freq_at: int
    signal_at: int
    fcs_known: bool  # the radio header says whether an FCS ends the frame
    ext_end: int  # > 0: more present words up to here; the full layout is looked up by them


class FrameDecoder:
    """Decodes captured 802.11 records into probe requests; one instance per capture stream.

    `store_bssids`: the store networks' access points; frames of their stations become connected frames.
    """

    def __init__(
        self,
        element_cache_size: int = 8192,
        layout_cache_size: int = 256,
        store_bssids: Collection[bytes] = (),
    ) -> None:
        self.stats = DecodeStats()
        self._stations = StationParser(store_bssids) if store_bssids else None
        # element walk per distinct body: (ssid, ids, fingerprint, suspicious); see _walk
        self._elements: dict[bytes, _Walked] = {}
        self._elements_old: dict[bytes, _Walked] = {}
        self._element_cache_size = element_cache_size
        self._radios: dict[int, _Radio] = {}  # by the first 8 header bytes: version, length, present
        self._ext_radios: dict[bytes, _Radio] = {}  # by the bytes up to the last present word
        self._layout_cache_size = layout_cache_size
        self._channels: dict[int, tuple[int | None, int | None]] = {NO_FIELD: (None, None)}
        # The last frame's radio layout (by _radio_key), frequency and body with what they gave: what
        # a frame of the same burst looks up again. Each is a function of its key alone, as the caches.
        self._last_radio_key = -1
        self._last_radio: _Radio | None = None
        self._last_freq = NO_FIELD
        self._last_channel: tuple[int | None, int | None] = (None, None)
        self._last_blob = b""
        self._last_walked = _walked(b"")

    def decode(self, ts_ns: int, linktype: int, data: bytes) -> ProbeRequest | ConnectedFrame | None:
        """The probe request or connected frame in `data`, or None (counted in `stats`) for anything else."""
        try:
            end = len(data)
            if linktype == LINKTYPE_RADIOTAP:
                if end < 8:
                    raise Truncated("radiotap_truncated", 8, end)
                # A version other than 0 is never cached: radiotap.layout raises on it (slow path).
                key = _radio_key(data) if data[0] == 0 else -1
                radio = self._last_radio
                if key != self._last_radio_key or radio is None:
                    # (a capture's headers almost never change layout: the last one first, no hash)
                    radio = self._radios.get(key) if key >= 0 else None
                    if radio is None:
                        radio = self._radio(data, None)
                    else:
                        self._last_radio_key, self._last_radio = key, radio
                off, flags_at, freq_at, signal_at, fcs_known, ext_end = radio
                if ext_end:
                    off, flags_at, freq_at, signal_at, fcs_known, ext_end = self._radio(data, radio)
                if end < off:
                    raise Truncated("radiotap_truncated", off, end)
                flags, freq_raw, rssi_raw = radiotap.read(data, flags_at, freq_at, signal_at)
                if flags & _FCS_FLAGS:
                    if flags & radiotap.FLAG_BAD_FCS:
                        raise Malformed("bad_fcs", "radiotap flags say the FCS check failed")
                    end -= _FCS_LEN
                if freq_raw != self._last_freq:
                    self._last_freq = freq_raw
                    self._last_channel = self._channels.get(freq_raw) or self._channel(freq_raw)
                freq, channel = self._last_channel
                rssi = None if rssi_raw == NO_SIGNAL else rssi_raw
            elif linktype == LINKTYPE_IEEE802_11:
                off, rssi, freq, channel, fcs_known = 0, None, None, None, False
            elif linktype == LINKTYPE_PRISM:
                header = prism.parse(data)
                off, rssi, fcs_known = header.length, header.rssi_dbm, False
                freq = dot11.channel_to_freq(header.channel) if header.channel is not None else None
                channel = header.channel if freq is not None else None
            else:
                raise Malformed("unsupported_linktype", f"link type {linktype}, 105/119/127 supported")

            if end <= off:
                raise Truncated("dot11_truncated", 1, 0)
            fc = data[off]
            if fc != FC_PROBE_REQUEST:
                kind = FRAME_KIND[fc]
                if kind == dot11.BAD_VERSION:
                    raise Malformed("dot11_bad_version", f"protocol version {fc & 3}, 0 expected")
                stations = self._stations
                if stations is not None and fc in STATION_KINDS:
                    got = stations.parse(ts_ns, STATION_KINDS[fc], data, off, end, rssi, freq, channel)
                    if not isinstance(got, str):
                        self.stats.connected += 1
                        return got
                    kind = got
                _bump(self.stats.skipped, kind)
                return None
            if end - off < HEADER_LEN:
                raise Truncated("dot11_truncated", HEADER_LEN, end - off)
            # Byte by byte, not one struct call: compiled, these are native reads (see dot11.HEADER_LEN).
            transmitter = data[off + ADDR2 : off + ADDR2 + 6]
            seq_ctrl = data[off + SEQ_CTRL] | data[off + SEQ_CTRL + 1] << 8
            body = off + HEADER_LEN
            if data[off + FC_FLAGS] & FC_FLAG_ORDER:  # +HTC: an HT Control field precedes the body
                body += HT_CONTROL_LEN
                if end < body:
                    raise Truncated("dot11_truncated", HEADER_LEN + HT_CONTROL_LEN, end - off)
            blob = data[body:end]
            if blob == self._last_blob:  # a burst repeats its body: a compare instead of a hash
                walked = self._last_walked
            else:
                found = self._elements.get(blob)
                walked = self._walk(blob) if found is None else found
                self._last_blob, self._last_walked = blob, walked
            ssid, ids, fingerprint, suspicious = walked
            if suspicious and (suspicious == _OVERRUN or not fcs_known):
                ssid, ids, fingerprint, _ = self._repair(data, off, end, blob, walked, fcs_known=fcs_known)
            self.stats.probe_requests += 1
            return ProbeRequest(
                ts_ns,
                transmitter,
                rssi,
                freq,
                channel,
                seq_ctrl >> 4,
                ssid,
                ids,
                fingerprint,
                transmitter[0] & 0x02 != 0,
            )
        except DecodeError as exc:
            _bump(self.stats.errors, exc.reason)
            return None

    def _radio(self, data: bytes, head: _Radio | None) -> _Radio:
        """The slow path of radiotap: a new layout, or one behind extended present words."""
        if head is not None:  # the first word announced more: look the whole chain up
            radio = self._ext_radios.get(data[8 : head.ext_end])
            if radio is not None:
                return radio
        lay = radiotap.layout(data)  # raises on a bad version, chain or length
        if lay.incomplete:
            _bump(self.stats.anomalies, "radiotap_unknown_field")
        at = (lay.flags_at, lay.freq_at, lay.signal_at)
        radio = _Radio(lay.length, *at, lay.has_flags, 0)
        if not lay.cacheable or lay.incomplete:
            return radio
        chain_end = radiotap.present_words(data)[1]
        if len(self._radios) + len(self._ext_radios) >= self._layout_cache_size:
            self._radios.clear()
            self._ext_radios.clear()
        if chain_end == 8:
            self._radios[_radio_key(data)] = radio
        else:
            self._radios[_radio_key(data)] = _Radio(lay.length, *at, lay.has_flags, chain_end)
            self._ext_radios[data[8:chain_end]] = radio
        return radio

    def _channel(self, freq: int) -> tuple[int | None, int | None]:
        known = (freq, dot11.freq_to_channel(freq))
        self._channels[freq] = known
        return known

    def _walk(self, blob: bytes) -> _Walked:
        """The element walk of a body not in the current cache generation.

        Two generations approximate an LRU at dict speed: when the current one is full it becomes
        the old one, and bodies still in use move back up on their next hit.
        """
        walked = self._elements_old.get(blob)
        if walked is None:
            walked = _walked(blob)
        if len(self._elements) >= self._element_cache_size:
            self._elements_old = self._elements
            self._elements = {}
        self._elements[blob] = walked
        return walked

    def _repair(
        self,
        data: bytes,
        off: int,
        end: int,
        blob: bytes,
        walked: _Walked,
        *,
        fcs_known: bool,
    ) -> _Walked:
        """Apply the module's policy to a walk that did not end cleanly (or may hide an FCS)."""
        fcs_at = end - _FCS_LEN
        if (
            not fcs_known
            and fcs_at - off >= HEADER_LEN
            and zlib.crc32(data[off:fcs_at]) == _U32.unpack_from(data, fcs_at)[0]
        ):
            trimmed = self._walk(blob[:-_FCS_LEN])
            if trimmed[3] != _OVERRUN:
                _bump(self.stats.anomalies, "fcs_inferred")
                return trimmed
        if walked[3] != _OVERRUN:  # a short last element that is not an FCS after all
            return walked
        elements = dot11.parse_elements(blob)
        if elements.has_ssid:
            _bump(self.stats.anomalies, "ie_truncated")
            return walked
        raise Truncated("ie_truncated", len(blob) + elements.overrun, len(blob))


def _walked(blob: bytes) -> _Walked:
    """The element walk of a frame body: SSID, element ids, fingerprint, and why it is suspicious."""
    el = dot11.parse_elements(blob)
    suspicious = _OVERRUN if el.overrun else _SHORT_TAIL if el.short_tail else 0
    return el.ssid, el.ids, el.fingerprint, suspicious


def _radio_key(data: bytes) -> int:
    """The radiotap header's pad, length and first present word as one int (the version is 0).

    Native byte reads compiled, and under 2**56, so the compiled build keeps it an unboxed int until
    the dict lookup; the caller checks that the header has 8 bytes.
    """
    return (
        data[1] | data[2] << 8 | data[3] << 16 | data[4] << 24 | data[5] << 32 | data[6] << 40 | data[7] << 48
    )


def _bump(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1
