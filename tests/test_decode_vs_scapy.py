"""The decoder against two independent references on every real capture in ../shared/data.

1. scapy (`PcapReader`, `RadioTap`/`PrismHeader`, `Dot11`, `Dot11Elt`), field by field for every
   probe request: timestamp, transmitter, RSSI, channel frequency, sequence number, SSID and
   element ids; and the same number of frames of each kind. scapy dissects ~1.5 k frames/s, so
   the full run over all ~150 k frames is marked slow; a sample of every file runs always.
2. The fryza-lab CSVs, which the publisher derived from the same pcaps: rssi, seq_num, ch_freq,
   dot11elt (extension elements listed as plain 255 there), randomized, per frame index.

A 40-frame excerpt bundled in tests/data is checked against both even without ../shared/data.

Where the two disagree by design: the decoder leaves out an element that runs past the end of the
frame (scapy lists it, with fewer bytes), which in these captures only happens when the last 4
bytes are an FCS the radio header did not announce (the Prism capture).
"""

from __future__ import annotations

import ast
import csv
import itertools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sensor.decode import dot11
from sensor.decode.capture import read_capture
from sensor.decode.decoder import FrameDecoder
from sensor.decode.frames import ProbeRequest

pytest.importorskip("scapy.layers.dot11")
from scapy.layers.dot11 import Dot11, Dot11Elt, Dot11ProbeReq, PrismHeader, RadioTap
from scapy.utils import PcapReader

DATA = Path(__file__).resolve().parent / "data"
EXCERPT = DATA / "fryza-2022-11-22-head.pcap"  # see tests/data/README.md

CAPTURE_FILES = [
    *(f"fryza-lab/{day}.pcap" for day in (
        "2022-10-18", "2022-11-22", "2023-02-08", "2023-03-15",
        "2023-04-14", "2023-04-15", "2023-09-09", "2023-11-21",
    )),
    "captures/aircrack_n-02.cap",
    "captures/aircrack_pmkid-not-recognized.cap",
    "captures/baccichet_OppoFindX3Neo-A_anonymized.pcap",
    "captures/baccichet_S21Ultra-M_anonymized.pcap",
    "captures/baccichet_iPhone12-M_anonymized.pcap",
    "captures/baccichet_iPhone7-F_anonymized.pcap",
    "captures/baccichet_iPhoneXR-L_anonymized.pcap",
    "captures/pypacker_packets_prism.pcap",
]  # fmt: skip
SAMPLE = 150  # frames per file in the always-run comparison
# (frames, probe requests) among each file's first SAMPLE frames, as scapy counts them
IN_SAMPLE = {
    **{name: (150, 150) for name in CAPTURE_FILES if name.startswith("fryza-lab/")},
    "captures/aircrack_n-02.cap": (150, 6),
    "captures/aircrack_pmkid-not-recognized.cap": (150, 0),
    "captures/baccichet_OppoFindX3Neo-A_anonymized.pcap": (150, 150),
    "captures/baccichet_S21Ultra-M_anonymized.pcap": (139, 139),
    "captures/baccichet_iPhone12-M_anonymized.pcap": (150, 150),
    "captures/baccichet_iPhone7-F_anonymized.pcap": (150, 150),
    "captures/baccichet_iPhoneXR-L_anonymized.pcap": (150, 150),
    "captures/pypacker_packets_prism.pcap": (80, 2),
}


@dataclass(frozen=True)
class Compared:
    """What a comparison covered: frames read by both, and probe requests compared field by field."""

    frames: int
    probe_requests: int


def _signed32(value: int) -> int:
    return (value ^ 0x8000_0000) - 0x8000_0000


def _scapy_elements(pkt: Any) -> tuple[str, tuple[int, ...]]:
    """SSID and element ids as scapy dissects them, minus a last element cut short."""
    ids: list[int] = []
    ssid: str | None = None
    elt = pkt.getlayer(Dot11Elt)
    last = None
    while isinstance(elt, Dot11Elt):
        ext = getattr(elt, "ext_ID", None)
        ids.append(255 * 256 + ext if elt.ID == 255 and ext is not None else elt.ID)
        if elt.ID == 0 and ssid is None:
            ssid = bytes(elt.info).decode("utf-8", "replace")
        last = elt
        elt = elt.payload
    if last is not None and len(bytes(last)) < 2 + last.len:  # it ran past the end of the frame
        ids.pop()
    return ssid or "", tuple(ids)


def _scapy_probe(pkt: Any, ts_ns: int) -> dict[str, Any]:
    d11 = pkt.getlayer(Dot11)  # Dot11FCS (radiotap said FCS at end) is a Dot11 too
    rssi = freq = channel = None
    if pkt.haslayer(RadioTap):
        rt = pkt[RadioTap]
        rssi, freq = rt.dBm_AntSignal, rt.ChannelFrequency
        channel = dot11.freq_to_channel(freq) if freq is not None else None
    elif pkt.haslayer(PrismHeader):
        ph = pkt[PrismHeader]
        rssi = _signed32(ph.rssi) if ph.rssi_status == 0 else None
        channel = ph.channel if ph.channel_status == 0 else None
        freq = dot11.channel_to_freq(channel) if channel is not None else None
    ssid, ids = _scapy_elements(pkt)
    return {
        "ts_ns": ts_ns,
        "transmitter": bytes.fromhex(d11.addr2.replace(":", "")),
        "rssi_dbm": rssi,
        "freq_mhz": freq,
        "channel": channel,
        "seq": d11.SC >> 4,
        "ssid": ssid,
        "ie_ids": ids,
        "randomized": bool(int(d11.addr2[:2], 16) & 0x02),
    }


def _ours(probe: ProbeRequest) -> dict[str, Any]:
    return {
        "ts_ns": probe.ts_ns,
        "transmitter": probe.transmitter,
        "rssi_dbm": probe.rssi_dbm,
        "freq_mhz": probe.freq_mhz,
        "channel": probe.channel,
        "seq": probe.seq,
        "ssid": probe.ssid,
        "ie_ids": probe.ie_ids,
        "randomized": probe.randomized,
    }


def _scapy_kind(pkt: Any) -> str:
    d11 = pkt.getlayer(Dot11)
    if d11.type == 0:
        return dot11.MGMT_SUBTYPES.get(d11.subtype, "mgmt_reserved")
    return dot11.FRAME_TYPES[d11.type]


def compare_with_scapy(path: Path, limit: int | None) -> Compared:
    """Decode `path` with both; assert they agree frame by frame, and say how much was compared."""
    decoder = FrameDecoder()
    reader = read_capture(path)
    scapy_kinds: Counter[str] = Counter()
    frames = probes = 0
    with PcapReader(str(path)) as scapy_reader:
        pairs = itertools.islice(zip(reader, scapy_reader, strict=False), limit)
        for index, (record, pkt) in enumerate(pairs):
            ts_ns = int(pkt.time * 1_000_000_000)
            assert record.ts_ns == ts_ns, (path.name, index)
            probe = decoder.decode(record.ts_ns, record.linktype, record.data)
            scapy_kinds[_scapy_kind(pkt)] += 1
            frames += 1
            if pkt.haslayer(Dot11ProbeReq):
                assert probe is not None, (path.name, index, decoder.stats.errors)
                assert _ours(probe) == _scapy_probe(pkt, ts_ns), (path.name, index)
                probes += 1
            else:
                assert probe is None, (path.name, index)
        scapy_total = sum(scapy_kinds.values()) + sum(1 for _ in scapy_reader) if limit is None else None
    stats = decoder.stats
    assert stats.errors == {}, path.name
    assert Counter({"probe_req": stats.probe_requests, **stats.skipped}) == +scapy_kinds, path.name
    if scapy_total is not None:  # scapy also returns a last record cut short; we flag it instead
        assert scapy_total == reader.records + reader.truncated_tail == frames + reader.truncated_tail
    assert probes == stats.probe_requests, path.name
    return Compared(frames, probes)


def compare_with_csv(pcap: Path, table: Path) -> int:
    """Decode `pcap` and compare with the publisher's per-frame columns. Returns rows compared."""
    decoder = FrameDecoder()
    decoded = [decoder.decode(r.ts_ns, r.linktype, r.data) for r in read_capture(pcap)]
    with table.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    assert len(rows) == len(decoded) == decoder.stats.probe_requests, pcap.name
    for row in rows:
        probe = decoded[int(row["idx"])]
        assert probe is not None
        ids = [i if i < 255 * 256 else 255 for i in probe.ie_ids]  # the CSV lists extensions as 255
        got = (probe.rssi_dbm, probe.seq, probe.freq_mhz, probe.randomized, ids)
        want = (
            int(row["rssi"]),
            int(row["seq_num"]),
            int(row["ch_freq"]),
            row["randomized"] == "1",
            ast.literal_eval(row["dot11elt"]),
        )
        assert got == want, (pcap.name, row["idx"])
    return len(rows)


def test_decoder_agrees_with_scapy_and_the_csv_on_the_bundled_excerpt() -> None:
    assert compare_with_scapy(EXCERPT, None) == Compared(frames=40, probe_requests=40)
    assert compare_with_csv(EXCERPT, EXCERPT.with_suffix(".csv")) == 40


@pytest.mark.realdata
@pytest.mark.parametrize("name", CAPTURE_FILES)
def test_decoder_agrees_with_scapy_on_a_sample_of_every_capture(shared_data: Path, name: str) -> None:
    assert compare_with_scapy(shared_data / name, SAMPLE) == Compared(*IN_SAMPLE[name])


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", CAPTURE_FILES)
def test_decoder_agrees_with_scapy_on_every_frame(shared_data: Path, name: str) -> None:
    compared = compare_with_scapy(shared_data / name, None)  # every frame: equal counts asserted inside
    assert compared.frames > 0 and compared.probe_requests > 0, compared


@pytest.mark.realdata
def test_every_real_capture_is_compared(shared_data: Path) -> None:
    found = {
        str(p.relative_to(shared_data)) for p in shared_data.glob("*/*") if p.suffix in (".pcap", ".cap")
    }
    assert found == set(CAPTURE_FILES)


@pytest.mark.realdata
def test_decoder_agrees_with_the_fryza_lab_csv_columns_on_every_day(shared_data: Path) -> None:
    days = sorted((shared_data / "fryza-lab").glob("*.pcap"))
    assert sum(compare_with_csv(day, day.with_suffix(".csv")) for day in days) == 106_467
