"""Throughput and memory of the sensor pipeline on a generated 1,000,000-frame radiotap capture.

    .venv/bin/python bench/pipeline.py [--frames N] [--capture PATH] [--builds pure,compiled]

Prints, for each build of the hot path (bench/builds.py: the pure source and the mypyc-compiled
extensions, built from today's source if need be): the decoder alone; the pipeline (decode +
pseudonymise + device resolution + people estimate + presence model + event building) with and without
the estimator; `footfall-sensor replay --to jsonl` itself, the command a user runs (events written as
JSON lines). Then scapy on a sample of the same file and tshark's field extraction when tshark is
installed. Each measurement is a fresh process: "CPU s" is that whole process's user + sys time and
peak RSS its own, start-up included; "loop /CPU-s" is the frames per CPU second of the measured loop
alone (the process's own clock). Frames per CPU second is the figure to compare on a busy machine,
where wall-clock frames/s mostly measures the others. Figures, not assertions: no test depends on them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.builds import child_path, measured, trees  # noqa: E402

sys.path.insert(0, child_path(REPO))  # a child measures its build's tree, not the repository

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
    done = measured(cmd)
    elapsed = time.perf_counter() - started
    n = done.stdout.count("\n")
    return {
        "mode": "tshark -T fields",
        "frames": n,
        "seconds": elapsed,
        "cpu_s": done.cpu_s,
        "peak_rss_mb": done.peak_rss_mb,
    }


def child(mode: str, capture: Path, sample: int, tree: Path | None) -> dict[str, Any]:
    started = time.perf_counter()
    done = measured(
        [sys.executable, __file__, "--child", mode, "--capture", str(capture), "--sample", str(sample)],
        tree,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    result.update(seconds=time.perf_counter() - started, cpu_s=done.cpu_s, peak_rss_mb=done.peak_rss_mb)
    return result


def replay(capture: Path, tree: Path, seed: Path, frames: int) -> dict[str, Any]:
    """The replay command as a user runs it, events to JSON lines (written to /dev/null)."""
    argv = [sys.executable, "-c", "from sensor.cli.main import main; main()", "replay", str(capture)]
    argv += ["--to", "jsonl", "--out", os.devnull, "--seed", str(seed), "--quiet"]
    started = time.perf_counter()
    done = measured(argv, tree)
    elapsed = time.perf_counter() - started
    said = [line for line in done.stderr.splitlines() if line.startswith("replayed")]
    frames = int(said[0].split()[1]) if said else frames  # "replayed N frames (...)"
    return {
        "mode": "replay --to jsonl",
        "frames": frames,
        "seconds": elapsed,
        "cpu_s": done.cpu_s,
        "peak_rss_mb": done.peak_rss_mb,
        "said": said[0] if said else "",
    }


def seed_file(capture: Path) -> Path:
    """A store seed anchored the day before the capture (an older anchor costs a ratchet step a day).

    Made in a child process: the parent stays small, since a child's peak RSS counts from its parent's
    size at the fork.
    """
    from sensor.decode.capture import read_capture

    first = next(iter(read_capture(capture))).ts_ns // 1_000_000_000
    day = time.strftime("%Y-%m-%dT00:00", time.gmtime(first - 86_400))
    seed = CACHE / f"bench-{day[:10]}.seed"
    if not seed.exists():
        cli = "from sensor.cli.main import main; main()"
        argv = [sys.executable, "-c", cli, "keys", "seed", "--store", "mall", "--out", str(seed), "--at", day]
        measured(argv)
    return seed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=1_000_000, help="size of the generated capture")
    parser.add_argument("--capture", type=Path, help="use this radiotap capture instead of a generated one")
    parser.add_argument("--sample", type=int, default=20_000, help="frames scapy reads (it is slow)")
    parser.add_argument("--builds", default="pure,compiled", help="which builds of the hot path to measure")
    parser.add_argument(
        "--modes",
        default="decode,pipeline-naive,pipeline,replay,scapy",
        help="what to measure (all by default)",
    )
    parser.add_argument("--no-tshark", action="store_true", help="skip the tshark row")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.capture, args.sample)))
        return
    capture = ensure_capture(args.frames, args.capture).resolve()
    print(f"capture: {capture} ({capture.stat().st_size / 2**20:.0f} MiB)")
    from sensor.cli import progress

    builds = trees(args.builds.split(","))
    seed = seed_file(capture)
    modes = args.modes.split(",")
    runs = [(build, mode) for build in builds for mode in modes if mode != "scapy"]
    runs += [("", "scapy")] if "scapy" in modes else []
    show = progress.wanted(args.quiet)
    rows: list[tuple[str, dict[str, Any]]] = []
    frames = 0
    for build, mode in progress.count(runs, show=show, unit="run", desc="pipeline", total=len(runs)):
        tree = builds.get(build)
        if mode == "replay":
            assert tree is not None
            rows.append((build, replay(capture, tree, seed, frames)))
        else:
            rows.append((build, child(mode, capture, args.sample, tree)))
            frames = frames or rows[-1][1]["frames"]
    ts = None if args.no_tshark else tshark(capture, 200_000)
    if args.no_tshark:
        pass
    elif ts:
        rows.append(("", ts))
    else:
        print("tshark: not installed (apt-get install -y tshark): no tshark row")
    print(
        f"{'build':<9}{'what':<22}{'frames':>11}{'wall s':>8}{'CPU s':>8}{'frames/CPU-s':>14}"
        f"{'loop /CPU-s':>13}{'peak RSS MB':>13}"
    )
    names = {
        "decode": "decoder only",
        "pipeline-naive": "pipeline, naive",
        "pipeline": "pipeline, estimator",
        "scapy": "scapy (sample)",
    }
    for build, r in rows:
        loop = f"{r['frames_per_cpu_s']:,}" if "frames_per_cpu_s" in r else ""
        print(
            f"{build:<9}{names.get(r['mode'], r['mode']):<22}{r['frames']:>11,}{r['seconds']:>8.1f}"
            f"{r['cpu_s']:>8.1f}{r['frames'] / r['cpu_s']:>14,.0f}{loop:>13}{r['peak_rss_mb']:>13.1f}"
        )
    for build, r in rows:
        if r.get("said"):
            print(f"{build}: {r['said']}")


if __name__ == "__main__":
    main()
