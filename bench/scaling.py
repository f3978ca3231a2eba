"""Cost against crowd density: frames/s and memory of the whole pipeline at 1x, 4x and 16x, in one run.

    .venv/bin/python bench/scaling.py [--densities 1,4,16] [--base 0.0625]

Each density is a generated day of the busy-mall model (footfall_dev.generator, StoreModel.bench)
with visitors and passersby scaled by `base x density` (staff and fixed devices stay), written once
to bench/.cache. Each day is replayed through the whole pipeline (decode, pseudonymise, resolve,
people estimate, presence, events built) in a fresh process: frames/s and peak RSS; then again under
tracemalloc: the peak heap, and the heap still held at the end of the day (before the final flush),
when the crowd has left. What the pipeline holds should follow the devices live at once, so the
end-of-day heap must not grow with the day's total. frames/CPU-s (the process's CPU time) is the
one-core figure on a shared machine; "vs 1x" compares it. Prints one table; the build (compiled or pure)
is the one installed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CACHE = REPO / "bench" / ".cache"


def capture(base: float, density: int) -> Path:
    from footfall_dev.generator import StoreModel, write_day

    factor = base * density
    target = CACHE / f"scaling-{factor:g}.pcap"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {target.name} (mall model x{factor:g}) ...", file=sys.stderr)
        write_day(StoreModel.bench().scaled(factor), target)
    return target


class CountingSink:
    def __init__(self) -> None:
        self.events = 0

    def send(self, event: object) -> None:
        self.events += 1

    def close(self) -> None:
        pass


def measure(path: Path, heap: bool) -> dict[str, Any]:
    """In the child: one replay of `path`, figures as a dict."""
    from sensor import buildinfo
    from sensor.config import SensorConfig
    from sensor.decode.capture import read_capture
    from sensor.keys.pseudonym import FixedSalt
    from sensor.pipeline import Pipeline

    sink = CountingSink()
    pipeline = Pipeline(SensorConfig(), FixedSalt(b"k" * 32), sink)
    if heap:
        tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    pipeline.run(read_capture(path))
    held = tracemalloc.get_traced_memory()[0] if heap else 0
    pipeline.finish()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    frames = pipeline.decoder.stats.frames
    out: dict[str, Any] = {
        "build": buildinfo.build(),
        "frames": frames,
        "events": sink.events,
        "seconds": elapsed,
        "frames_per_s": frames / elapsed,
        "frames_per_cpu_s": frames / cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if heap:
        out["peak_heap_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        out["held_at_end_mb"] = held / 2**20
    return out


def child(path: Path, heap: bool) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", str(path)] + (["--heap"] if heap else [])
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--densities", default="1,4,16", help="crowd densities, relative to the first")
    parser.add_argument("--base", type=float, default=1 / 16, help="mall-model factor of density 1")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--heap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.heap)))
        return
    from sensor.cli import progress

    densities = [int(d) for d in args.densities.split(",")]
    paths = {d: capture(args.base, d) for d in densities}
    runs = [(d, heap) for d in densities for heap in (False, True)]
    results: dict[tuple[int, bool], dict[str, Any]] = {}
    show = progress.wanted(args.quiet)
    for d, heap in progress.count(runs, show=show, unit="run", desc="scaling", total=len(runs)):
        results[d, heap] = child(paths[d], heap)
    first = results[densities[0], False]["frames_per_cpu_s"]
    print(f"build: {results[densities[0], False]['build']}")
    print(
        f"{'density':>8}{'frames':>12}{'events':>9}{'frames/s':>11}{'frames/CPU-s':>14}{'vs 1x':>7}{'peak RSS MB':>13}"
        f"{'peak heap MB':>14}{'held at end MB':>16}"
    )
    for d in densities:
        run, traced = results[d, False], results[d, True]
        print(
            f"{d:>7}x{run['frames']:>12,}{run['events']:>9,}{run['frames_per_s']:>11,.0f}"
            f"{run['frames_per_cpu_s']:>14,.0f}{run['frames_per_cpu_s'] / first:>7.2f}{run['peak_rss_mb']:>13.1f}"
            f"{traced['peak_heap_mb']:>14.1f}{traced['held_at_end_mb']:>16.1f}"
        )


if __name__ == "__main__":
    main()
