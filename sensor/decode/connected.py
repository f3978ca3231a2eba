"""Frames that show a station connected to one of the store's own networks: their MAC header, nothing more.

Which frames and where their addresses are is dot11's table (`STATION_KINDS`, one `Link` per ToDS/FromDS
reading); this module applies it to one frame. It reads at most the 24-byte MAC header: never the body,
which the live kernel filter does not even copy (`STATION_SNAP`). The same table builds that filter
(sensor/live/packetsocket.py), so what the kernel lets through and what this decoder accepts agree.

A frame whose BSSID is not a store network's is not the store's business: `StationParser.parse` returns
the key to count it under (its frame kind, as the decoder skips any other frame) without reading the
station address, so in a replay, where no kernel filter ran, other networks' stations go no further
than in live capture. A store network's broadcast or multicast frame names no station: skipped as
"group_addressed".
"""

from __future__ import annotations

from collections.abc import Collection

from sensor.decode.dot11 import ADDR2, ADDR3, DS_BITS, FRAME_KIND, MGMT_ANSWER, SEQ_CTRL, StationKind
from sensor.decode.errors import Malformed, Truncated
from sensor.decode.frames import ConnectedFrame

GROUP_ADDRESSED = "group_addressed"


class StationParser:
    """Reads connected frames of the given BSSIDs; one instance per decoder."""

    def __init__(self, bssids: Collection[bytes]) -> None:
        self.bssids = frozenset(bssids)

    def parse(
        self,
        ts_ns: int,
        kind: StationKind,
        data: bytes,
        off: int,
        end: int,
        rssi: int | None,
        freq: int | None,
        channel: int | None,
    ) -> ConnectedFrame | str:
        """The connected frame at data[off:end], or the key to count a frame of no store station under.

        Raises Truncated or Malformed (the decoder counts them by reason) for a store network's frame
        that cannot be read.
        """
        if end - off < 2:
            raise Truncated("station_truncated", 2, end - off)
        ds = data[off + 1] & DS_BITS
        link = next((candidate for candidate in kind.links if candidate.ds == ds), None)
        if link is None:  # e.g. a data frame between two stations or two access points
            return FRAME_KIND[data[off]]
        if end - off < link.bssid_at + 6:
            raise Truncated("station_truncated", link.bssid_at + 6, end - off)
        bssid = data[off + link.bssid_at : off + link.bssid_at + 6]
        if bssid not in self.bssids:
            return FRAME_KIND[data[off]]
        if end - off < kind.header_len:
            raise Truncated("station_truncated", kind.header_len, end - off)
        if link.bssid_at == ADDR3 and data[off + ADDR2 : off + ADDR2 + 6] == bssid:
            link = MGMT_ANSWER  # the access point's own management frame: the station is the receiver
        station = data[off + link.station_at : off + link.station_at + 6]
        if station[0] & 0x01:
            if link.from_station:  # a transmitter address is never a group address
                raise Malformed("station_group_sender", "a group address as the transmitter")
            return GROUP_ADDRESSED  # the access point's broadcast or multicast: no station in it
        seq = (data[off + SEQ_CTRL] | data[off + SEQ_CTRL + 1] << 8) >> 4 if kind.has_seq else None
        return ConnectedFrame(
            ts_ns,
            station,
            bssid,
            link.from_station,
            rssi,
            freq,
            channel,
            seq,
            kind.name,
            station[0] & 0x02 != 0,
        )
