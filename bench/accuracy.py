"""How well the sensor counts people, on data no fit has seen: real lab days, single phones, generated stores.

    .venv/bin/python bench/accuracy.py [--quick] [--days] [--seeds N ...] [--data ../shared/data]

Everything goes through `sensor.pipeline.Pipeline` (resolve devices, estimate, presence model) as
`footfall-sensor replay` runs it:

1. Fryza lab, position 1 (fryza-lab + fryza-lab-more, 103 days): blocked cross-validation, whole
   months held out of every fit (bench/heldout.py); per month and pooled: busy windows (MAE, MAPE,
   share within +-1 person, 80 % interval coverage), light days, empty days. The days are decoded
   and pseudonymised once and cached under bench/.cache/lab (bench/labdays.py).
2. Single-phone captures (Baccichet): distinct devices in the VisitEvents (should be 1, at most 2).
3. Generated store days (footfall_dev.generator: the demo boutique and a busy store): visitors and
   passersby from the CountEvents and the median dwell of visitor VisitEvents, against the
   generator's truth (people, not phones). People per found visit is fitted on the first seed and
   applied to the others.

`--quick`: 14 lab days spread over the months and kinds, seeds 1-3 (for development; the README's
figures come from the full run).

Raw MACs exist only inside the decoding step, as in the sensor (and, for the single-phone captures, in
`_locally_administered`, which restores a bit the publisher's anonymisation scrambled).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from footfall_dev.generator.day import LINKTYPE_RADIOTAP, generate
from footfall_dev.generator.model import StoreModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench.* importable
from bench.heldout_report import lab_heldout
from bench.labdays import DATA
from footfall.events import CountEvent, VisitEvent
from sensor.config import SensorConfig
from sensor.decode.capture import read_capture
from sensor.decode.frames import CaptureRecord
from sensor.keys.pseudonym import FixedSalt
from sensor.pipeline import ListSink, Pipeline


def base_config() -> SensorConfig:
    return SensorConfig()


def _locally_administered(record: CaptureRecord) -> CaptureRecord:
    """The Baccichet publisher replaced every MAC with random bytes, scrambling the locally
    administered bit; the phones sent randomized addresses, so set it back (in memory only)."""
    data = bytearray(record.data)
    header = int.from_bytes(data[2:4], "little")  # radiotap length
    if len(data) >= header + 16:
        data[header + 10] = (data[header + 10] & 0xFC) | 0x02  # addr2: local, individual
    return CaptureRecord(record.ts_ns, record.linktype, bytes(data), record.orig_len)


def single_phones(data: Path) -> dict[str, int]:
    print()
    print("Single-phone captures (one phone, many addresses; should be 1 device, at most 2):")
    out = {}
    for path in sorted((data / "captures").glob("baccichet_*.pcap")):
        records = sorted((_locally_administered(r) for r in read_capture(path)), key=lambda r: r.ts_ns)
        sink = ListSink()
        pipeline = Pipeline(base_config(), FixedSalt(b"k" * 32), sink)
        pipeline.run(records)
        pipeline.finish()
        visits = [e for e in sink.events if isinstance(e, VisitEvent)]
        name = path.stem.removeprefix("baccichet_").removesuffix("_anonymized")
        out[name] = len({v.device for v in visits})
        print(
            f"  {name:<18} probe requests {sum(v.frames for v in visits):>5}  "
            f"addresses {sum(v.addresses for v in visits):>4}  estimated devices {out[name]}"
        )
    return out


@dataclass(frozen=True, slots=True)
class GeneratedResult:
    visitors: int
    passersby: int
    dwell_s: float
    truth_visitors: int
    truth_passersby: int
    truth_dwell_s: float
    heard_visitors: int
    heard_passersby: int


def generated_day(model: StoreModel) -> GeneratedResult:
    day = generate(model)
    sink = ListSink()
    pipeline = Pipeline(base_config(), FixedSalt(b"k" * 32), sink)
    for ts, frame in day.records():
        pipeline.feed(ts, LINKTYPE_RADIOTAP, frame)
    pipeline.finish()
    counts = [e for e in sink.events if isinstance(e, CountEvent)]
    dwell = [e.dwell_s for e in sink.events if isinstance(e, VisitEvent) and e.kind == "visitor"]
    t = day.truth.aggregates()
    return GeneratedResult(
        sum(c.visitors for c in counts),
        sum(c.passersby for c in counts),
        statistics.median(dwell) if dwell else 0.0,
        t["visitors"],
        t["passersby"],
        t["median_visitor_dwell_s"],
        t["visitors_heard"],
        t["passersby_heard"],
    )


# The demo boutique (75 visitors a day: one seed's median dwell rests on ~60 visits, so it moves
# ~15 % from seed to seed by sampling alone) and a busy store (300 visitors, 900 passersby, 3 staff),
# where phones of one model overlap and the resolver merges them.
SCENARIOS: tuple[tuple[str, Callable[[], StoreModel]], ...] = (
    ("demo boutique", StoreModel.demo),
    ("busy store", StoreModel),
)


def generated_days(seeds: Sequence[int]) -> dict[str, dict[str, float]]:
    """Per scenario: the factors fitted on the first seed, applied to the others; returns the mean
    relative error (%) of visitors, passersby and median dwell over the evaluation seeds."""
    print()
    print("Generated store days (people, not phones, are the truth):")
    summary: dict[str, dict[str, float]] = {}
    for name, scenario in SCENARIOS:
        results = {seed: generated_day(replace(scenario(), seed=seed)) for seed in seeds}
        summary[name] = generated_report(name, results, seeds[0])
    print("  targets: visitors, passersby and median dwell within 10 % of the truth")
    return summary


def generated_report(name: str, results: dict[int, GeneratedResult], cal_seed: int) -> dict[str, float]:
    cal = results[cal_seed]
    vf = cal.truth_visitors / max(cal.visitors, 1)
    pf = cal.truth_passersby / max(cal.passersby, 1)
    print(
        f"  {name}: people per found visit fitted on seed {cal_seed}: visitors x{vf:.2f}, "
        f"passersby x{pf:.2f} (phone-carrying share and devices heard)"
    )
    print(
        "  seed  role         visitors found->people vs truth     passersby found->people vs truth     median dwell s"
    )

    def err(x: float, y: float) -> float:
        return 100 * (x - y) / y

    errors: dict[str, list[float]] = {"visitors": [], "passersby": [], "dwell": []}
    for seed, r in results.items():
        role = "calibration" if seed == cal_seed else "evaluation"
        v, p = r.visitors * vf, r.passersby * pf
        ev, ep, ed = err(v, r.truth_visitors), err(p, r.truth_passersby), err(r.dwell_s, r.truth_dwell_s)
        if seed != cal_seed:
            errors["visitors"].append(ev)
            errors["passersby"].append(ep)
            errors["dwell"].append(ed)
        print(
            f"  {seed:>4}  {role:<11} {r.visitors:>4} ({r.heard_visitors:>3} heard) -> {v:>5.0f} vs {r.truth_visitors:>3} "
            f"{ev:+4.0f}%   {r.passersby:>4} ({r.heard_passersby:>3} heard) -> {p:>5.0f} vs "
            f"{r.truth_passersby:>3} {ep:+4.0f}%   {r.dwell_s:>5.0f} vs {r.truth_dwell_s:>4.0f} {ed:+4.0f}%"
        )
    out = {}
    parts = []
    for what, errs in errors.items():
        if not errs:
            continue
        out[what] = statistics.fmean(errs)
        within = sum(abs(e) <= 10 for e in errs)
        parts.append(
            f"{what} mean {out[what]:+.0f}% (mean |error| {statistics.fmean(abs(e) for e in errs):.0f}%, "
            f"{within}/{len(errs)} seeds within 10 %)"
        )
    if parts:
        print(f"  {name}, evaluation seeds: " + "; ".join(parts))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--quick", action="store_true", help="a subset of days and seeds (development)")
    parser.add_argument("--days", action="store_true", help="also print every busy and light lab day")
    parser.add_argument("--seeds", type=int, nargs="+", help="generated days (the first calibrates)")
    args = parser.parse_args(argv)
    if not (args.data / "fryza-lab").is_dir():
        print(f"no real captures at {args.data}: nothing to measure", file=sys.stderr)
        return 2
    seeds = args.seeds or (list(range(1, 4)) if args.quick else list(range(1, 11)))
    lab_heldout(args.quick, args.days)
    single_phones(args.data)
    generated_days(seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
