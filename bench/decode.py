"""How fast frames are read and decoded, against scapy and tshark on the same real captures.

    .venv/bin/python bench/decode.py [--frames 1000000] [--repeat 3] [--scapy-sample 3000] [--data DIR]

1. read_capture over the eight fryza-lab days (records/s).
2. FrameDecoder.decode over those days concatenated and repeated to ~`--frames` records held in
   memory (radiotap probe requests as the ESP32 sniffer wrote them), best of `--repeat` passes;
   then 200 k of them under tracemalloc for the decoder's own peak allocation (its caches;
   results are dropped).
3. scapy's RadioTap dissection of a sample, reading the same fields (the reference the tests use).
4. `tshark -T fields` on one day, if tshark is installed (a subprocess: includes its start-up).

Prints one table; the process's peak RSS comes last. Timing lives here, never in the tests.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from sensor.decode.capture import read_capture
from sensor.decode.decoder import FrameDecoder

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
Record = tuple[int, int, bytes]


def bench_read(days: list[Path]) -> tuple[int, float]:
    start = time.perf_counter()
    count = sum(1 for day in days for _ in read_capture(day))
    return count, time.perf_counter() - start


def bench_decode(records: list[Record], repeat: int) -> tuple[int, float, int]:
    """Best of `repeat` passes, each with a fresh decoder (so its caches start cold every time)."""
    best = float("inf")
    probes = 0
    for _ in range(repeat):
        decoder = FrameDecoder()
        decode = decoder.decode
        start = time.perf_counter()
        for ts_ns, linktype, data in records:
            decode(ts_ns, linktype, data)
        best = min(best, time.perf_counter() - start)
        assert decoder.stats.frames == len(records)
        probes = decoder.stats.probe_requests
    return len(records), best, probes


def decoder_peak_bytes(records: list[Record]) -> int:
    tracemalloc.start()
    decoder = FrameDecoder()
    for ts_ns, linktype, data in records:
        decoder.decode(ts_ns, linktype, data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def bench_scapy(records: list[Record]) -> tuple[int, float] | None:
    try:
        from scapy.layers.dot11 import Dot11, Dot11Elt, RadioTap
    except ImportError:
        return None
    start = time.perf_counter()
    for _, _, data in records:
        pkt = RadioTap(data)
        d11 = pkt.getlayer(Dot11)
        assert d11 is not None
        _ = (pkt.dBm_AntSignal, pkt.ChannelFrequency, d11.addr2, d11.SC >> 4)
        elt = pkt.getlayer(Dot11Elt)
        ids = []
        while isinstance(elt, Dot11Elt):
            ids.append(elt.ID)
            elt = elt.payload
    return len(records), time.perf_counter() - start


def bench_tshark(path: Path) -> tuple[int, float] | None:
    tshark = shutil.which("tshark")
    if tshark is None:
        return None
    fields = [
        "frame.time_epoch",
        "wlan.ta",
        "radiotap.dbm_antsignal",
        "wlan.seq",
        "wlan.ssid",
        "wlan.tag.number",
    ]
    command = [tshark, "-r", str(path), "-T", "fields", *itertools.chain(*(("-e", f) for f in fields))]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=True)
    elapsed = time.perf_counter() - start
    return done.stdout.count(b"\n"), elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared/data folder")
    parser.add_argument("--frames", type=int, default=1_000_000, help="records to decode (default 1 M)")
    parser.add_argument("--repeat", type=int, default=3, help="decoder passes; the best is shown")
    parser.add_argument("--scapy-sample", type=int, default=3000, help="records scapy dissects")
    args = parser.parse_args(argv)

    days = sorted((args.data / "fryza-lab").glob("*.pcap"))
    if not days:
        print(f"no captures under {args.data / 'fryza-lab'}: pass --data", file=sys.stderr)
        return 2

    rows: list[tuple[str, int, float, str]] = []
    count, elapsed = bench_read(days)
    rows.append((f"read_capture ({len(days)} lab days)", count, elapsed, ""))

    lab = [(r.ts_ns, r.linktype, r.data) for day in days for r in read_capture(day)]
    records = (lab * (args.frames // len(lab) + 1))[: args.frames]
    count, elapsed, probes = bench_decode(records, args.repeat)
    peak = decoder_peak_bytes(records[: min(len(records), 200_000)])
    rows.append(
        (
            f"FrameDecoder.decode (lab x{len(records) / len(lab):.1f})",
            count,
            elapsed,
            f"{peak / 2**20:.1f} MB traced",
        )
    )
    assert probes == count, "every lab frame is a probe request"

    scapy = bench_scapy(lab[: args.scapy_sample])
    if scapy is not None:
        rows.append(("scapy RadioTap/Dot11/Dot11Elt (sample)", *scapy, ""))
    tshark = bench_tshark(days[0])
    if tshark is not None:
        rows.append((f"tshark -T fields ({days[0].name})", *tshark, "incl. start-up"))

    print(f"{'what':48} {'frames':>10} {'seconds':>8} {'frames/s':>11}  memory")
    for what, frames, seconds, memory in rows:
        print(f"{what:48} {frames:>10,} {seconds:>8.2f} {frames / seconds:>11,.0f}  {memory}")
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS {maxrss_mb:.0f} MB (holds the {len(records):,} records in memory)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
