"""How long each console script takes to answer `--help`, against the interpreter's own floor.

    .venv/bin/python bench/startup.py [--runs 10]

Each figure is the best and the median wall time of `--runs` fresh processes (the console scripts of
the virtual environment, as a user runs them). The floor rows are `python -c pass` and
`python -c "import click"`: what no lazy import can remove; the "before" rows run the real groups
(every command imported), which the console scripts started on until the lazy group. Target: <= 0.3 s per `--help`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
# The console scripts' entry point before the lazy group: the real group, every command imported.
EAGER = "from {}.cli.main import main; main(['--help'])"


def wall(argv: list[str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="processes per row (best and median shown)")
    args = parser.parse_args()
    rows = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "python -c 'import click' (floor)": [sys.executable, "-c", "import click"],
        "footfall-sensor --help": [str(BIN / "footfall-sensor"), "--help"],
        "footfall-collector --help": [str(BIN / "footfall-collector"), "--help"],
        "eager sensor group --help (before)": [sys.executable, "-c", EAGER.format("sensor")],
        "eager collector group --help (before)": [sys.executable, "-c", EAGER.format("collector")],
        "footfall-sensor replay --help": [str(BIN / "footfall-sensor"), "replay", "--help"],
        "footfall-collector report --help": [str(BIN / "footfall-collector"), "report", "--help"],
    }
    print(f"{'what':<36}{'best s':>9}{'median s':>10}")
    for what, argv in rows.items():
        best, median = wall(argv, args.runs)
        print(f"{what:<36}{best:>9.3f}{median:>10.3f}")


if __name__ == "__main__":
    main()
