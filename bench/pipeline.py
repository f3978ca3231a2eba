"""Throughput and memory of the sensor pipeline on a generated 1,000,000-frame radiotap capture.

    .venv/bin/python bench/pipeline.py [--frames N] [--capture PATH]

Prints frames/s and peak memory for: the decoder alone; the whole pipeline (decode + pseudonymise +
device resolution + people estimate + presence model + event building) with and without the estimator;
scapy on a sample of the same file; tshark's field extraction on the same file when tshark is installed.
Each measurement runs in a fresh process so peak RSS belongs to it alone. Figures, not assertions: the
machines are shared and noisy, so no test depends on them; frames per CPU second (the process's own
time) is the figure to compare on a busy machine, where wall-clock frames/s mostly measures the others.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CACHE = REPO / "bench" / ".cache"


def ensure_capture(frames: int, path: Path | None) -> Path:
    from footfall_dev.generator import StoreModel, scale_to_frames, write_day

    target = path or CACHE / f"bench-{frames}.pcap"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {target} (~{frames:,} probe requests) ...", file=sys.stderr)
        write_day(scale_to_frames(StoreModel.bench(), frames), target)
    return target


class NullSink:
    def __init__(self) -> None:
        self.sent = 0

    def send(self, event: object) -> None:
        self.sent += 1

    def close(self) -> None:
        pass


def measure(mode: str, capture: Path, sample: int) -> dict[str, Any]:
    """Runs in a child process; returns the figures as a dict."""
    from sensor.config import SensorConfig
    from sensor.decode.capture import read_capture
    from sensor.decode.decoder import FrameDecoder
    from sensor.keys.pseudonym import FixedSalt
    from sensor.pipeline import Pipeline

    heap = mode.endswith("+heap")
    mode = mode.removesuffix("+heap")
    if heap:
        tracemalloc.start()
    frames = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    if mode == "decode":
        decoder = FrameDecoder()
        decode = decoder.decode
        for r in read_capture(capture):
            decode(r.ts_ns, r.linktype, r.data)
        frames = decoder.stats.frames
    elif mode in ("pipeline", "pipeline-naive"):
        config = SensorConfig()
        if mode == "pipeline-naive":
            config = config.model_copy(
                update={"estimator": config.estimator.model_copy(update={"enabled": False})}
            )
        sink = NullSink()
        pipeline = Pipeline(config, FixedSalt(b"k" * 32), sink)
        pipeline.run(read_capture(capture))
        pipeline.finish()
        frames = pipeline.decoder.stats.frames
    elif mode == "scapy":
        from scapy.layers.dot11 import Dot11, Dot11Elt, RadioTap

        for r in read_capture(capture):
            pkt = RadioTap(r.data)
            dot11 = pkt[Dot11]
            _ = (pkt.dBm_AntSignal, pkt.ChannelFrequency, dot11.addr2, dot11.SC)
            elt = pkt.getlayer(Dot11Elt)
            while elt is not None:
                elt = elt.payload.getlayer(Dot11Elt)
            frames += 1
            if frames >= sample:
                break
    else:
        raise SystemExit(f"unknown mode {mode}")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    result: dict[str, Any] = {
        "mode": mode,
        "frames": frames,
        "seconds": round(elapsed, 3),
        "frames_per_s": round(frames / elapsed),
        "frames_per_cpu_s": round(frames / cpu),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if heap:
        result["peak_heap_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    return result


def tshark(capture: Path, frames: int) -> dict[str, Any] | None:
    binary = shutil.which("tshark")
    if binary is None:
        return None
    fields = ["frame.time_epoch", "wlan.ta", "radiotap.dbm_antsignal", "radiotap.channel.freq", "wlan.seq"]
    cmd = [binary, "-n", "-r", str(capture), "-c", str(frames), "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    elapsed = time.perf_counter() - started
    n = out.count(b"\n")
    return {
        "mode": "tshark -T fields",
        "frames": n,
        "seconds": round(elapsed, 3),
        "frames_per_s": round(n / elapsed),
    }


def child(mode: str, capture: Path, sample: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--capture", str(capture), "--sample", str(sample)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=1_000_000, help="size of the generated capture")
    parser.add_argument("--capture", type=Path, help="use this radiotap capture instead of a generated one")
    parser.add_argument("--sample", type=int, default=20_000, help="frames scapy reads (it is slow)")
    parser.add_argument("--no-heap", action="store_true", help="skip the (slow) tracemalloc run")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.capture, args.sample)))
        return
    capture = ensure_capture(args.frames, args.capture)
    print(f"capture: {capture} ({capture.stat().st_size / 2**20:.0f} MiB)")
    from sensor import buildinfo
    from sensor.cli import progress

    modes = ["decode", "pipeline-naive", "pipeline", "pipeline+heap", "scapy"]
    if args.no_heap:
        modes.remove("pipeline+heap")
    show = progress.wanted(args.quiet)
    runs = progress.count(modes, show=show, unit="run", desc="pipeline", total=len(modes))
    rows = [child(mode, capture, args.sample) for mode in runs]
    ts = tshark(capture, 200_000)
    if ts:
        rows.append(ts)
    else:
        print("tshark: not installed (apt-get install -y tshark): no tshark row")
    print(f"build: {buildinfo.build()} (sensor.buildinfo: the build importable from the repository)")
    print(
        f"{'what':<22}{'frames':>11}{'seconds':>10}{'frames/s':>12}{'per CPU s':>12}"
        f"{'peak RSS MB':>13}{'peak heap MB':>14}"
    )
    names = {
        "decode": "decoder only",
        "pipeline-naive": "pipeline, naive",
        "pipeline": "pipeline, estimator",
        "scapy": "scapy (sample)",
    }
    for r in rows:
        heap = r.get("peak_heap_mb", "")
        label = names.get(r["mode"], r["mode"]) + (" +tracemalloc" if heap else "")
        per_cpu = f"{r['frames_per_cpu_s']:,}" if "frames_per_cpu_s" in r else ""
        print(
            f"{label:<22}{r['frames']:>11,}{r['seconds']:>10.2f}{r['frames_per_s']:>12,}"
            f"{per_cpu:>12}{r.get('peak_rss_mb', ''):>13}{heap:>14}"
        )


if __name__ == "__main__":
    main()
