"""Cost against crowd density: frames/s and memory of the whole pipeline at 1x, 4x and 16x, in one run.

    .venv/bin/python bench/scaling.py [--densities 1,4,16] [--base 0.0625] [--builds pure,compiled]

Each density is a generated day of the busy-mall model (footfall_dev.generator, StoreModel.bench)
with visitors and passersby scaled by `base x density` (staff and fixed devices stay), written once
to bench/.cache. Each day is replayed through the whole pipeline (decode, pseudonymise, resolve,
people estimate, presence, events built) in a fresh process per build of the hot path (bench/builds.py):
the whole process's CPU seconds (user + sys, start-up included) and peak RSS, and the frames per CPU
second of the loop alone; then the objects the pipeline still holds at the end of the day (before the
final flush), when the crowd has left: the gc-tracked objects reachable from it, counted after the clock
stops (tracemalloc would slow the run sevenfold). What the pipeline holds should follow the devices live
at once, so the end-of-day count must not grow with the day's total. Frames per CPU second is the
one-core figure on a shared machine; "vs 1x" compares the whole-process figure within a build.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.builds import child_path, measured, trees  # noqa: E402

sys.path.insert(0, child_path(REPO))  # a child measures its build's tree, not the repository

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


def measure(path: Path) -> dict[str, Any]:
    """In the child: one replay of `path`, figures as a dict."""
    from sensor import buildinfo
    from sensor.config import SensorConfig
    from sensor.decode.capture import read_capture
    from sensor.keys.pseudonym import FixedSalt
    from sensor.pipeline import Pipeline

    sink = CountingSink()
    gc.collect()
    before = len(gc.get_objects())
    pipeline = Pipeline(SensorConfig(), FixedSalt(b"k" * 32), sink)
    started, cpu_started = time.perf_counter(), time.process_time()
    pipeline.run(read_capture(path))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    gc.collect()
    held = len(gc.get_objects()) - before
    pipeline.finish()
    frames = pipeline.decoder.stats.frames
    return {
        "build": buildinfo.build(),
        "frames": frames,
        "events": sink.events,
        "seconds": elapsed,
        "frames_per_s": frames / elapsed,
        "frames_per_cpu_s": frames / cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "held_objects": held,
    }


def child(path: Path, tree: Path) -> dict[str, Any]:
    done = measured([sys.executable, __file__, "--child", str(path)], tree)
    result: dict[str, Any] = json.loads(done.stdout)
    result.update(cpu_s=done.cpu_s, peak_rss_mb=done.peak_rss_mb)  # the whole process's
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--densities", default="1,4,16", help="crowd densities, relative to the first")
    parser.add_argument("--base", type=float, default=1 / 16, help="mall-model factor of density 1")
    parser.add_argument("--builds", default="pure,compiled", help="which builds of the hot path to measure")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    from sensor.cli import progress

    densities = [int(d) for d in args.densities.split(",")]
    paths = {d: capture(args.base, d) for d in densities}
    builds = trees(args.builds.split(","))
    show = progress.wanted(args.quiet)
    runs = [(build, d) for build in builds for d in densities]
    results = {
        (build, d): child(paths[d], builds[build])
        for build, d in progress.count(runs, show=show, unit="run", desc="scaling", total=len(runs))
    }
    print(
        f"{'build':<9}{'density':>8}{'frames':>12}{'events':>9}{'CPU s':>8}{'frames/CPU-s':>14}{'vs 1x':>7}"
        f"{'loop /CPU-s':>13}{'peak RSS MB':>13}{'objects held at end':>21}"
    )
    for build in builds:
        first = results[build, densities[0]]
        for d in densities:
            r = results[build, d]
            rate, base = r["frames"] / r["cpu_s"], first["frames"] / first["cpu_s"]
            print(
                f"{r['build']:<9}{d:>7}x{r['frames']:>12,}{r['events']:>9,}{r['cpu_s']:>8.1f}{rate:>14,.0f}"
                f"{rate / base:>7.2f}{r['frames_per_cpu_s']:>13,.0f}{r['peak_rss_mb']:>13.1f}"
                f"{r['held_objects']:>21,}"
            )


if __name__ == "__main__":
    main()
