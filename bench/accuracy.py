"""How well the sensor counts people: what the product emits, replayed over real and generated days.

    .venv/bin/python bench/accuracy.py [--calibrate-on DAY] [--full-grid] [--data ../shared/data]

Everything goes through `sensor.pipeline.Pipeline` (decode, pseudonymise, resolve devices,
estimate, presence model) with a `ListSink`, as `footfall-sensor replay` would run it, with a
config that carries the calibrated numbers:

1. Fryza lab (../shared/data/fryza-lab): the CountEvents' `present` (5-minute intervals) averaged
   over clock-aligned 15-minute windows, against the mean ground-truth `occupancy` (the CSV, joined
   on `idx`). The site factor (with --full-grid also the inside threshold and holdover) is fitted
   on ONE day (`--calibrate-on`, default 2022-11-22) and the others are evaluated with it. Per day:
   MAE, MAPE over windows with >= 3 people, and the naive figure (distinct addresses per 15-minute
   CountEvent with the estimator off). Then leave-one-day-out over the busy days.
2. Single-phone captures (Baccichet): distinct devices in the VisitEvents (should be 1, at most 2).
3. Generated store days (sensor.generator: the demo boutique and a busy store, seeds 1-10):
   visitors and passersby from the CountEvents and the median dwell of visitor VisitEvents, against
   the generator's truth (people, not phones). People per found visit (phone-carrying share,
   devices heard) is a site factor: fitted on the first seed, applied to the others.

Raw MACs exist only inside the pipeline, as in the sensor (and, for the single-phone captures, in
`_locally_administered`, which restores a bit the publisher's anonymisation scrambled).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo

from footfall_dev.generator.day import LINKTYPE_RADIOTAP, generate
from footfall_dev.generator.model import StoreModel

from footfall.events import CountEvent, VisitEvent
from footfall.times import NS
from sensor.config import SensorConfig
from sensor.decode.capture import read_capture
from sensor.decode.frames import CaptureRecord
from sensor.estimate.calibrate import (
    Score,
    Window,
    fit_counts,
    read_truth,
    score,
    truth_windows,
    window_means,
)
from sensor.estimate.occupancy import EstimatorParams
from sensor.keys.pseudonym import FixedSalt
from sensor.pipeline import ListSink, Pipeline
from sensor.replay import count_series, with_estimator

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_CALIBRATION_DAY = "2022-11-22"
LAB_TZ = ZoneInfo("Europe/Prague")  # only for reading times; the lab truth joins on frame index


def base_config() -> SensorConfig:
    return SensorConfig()


@dataclass(frozen=True, slots=True)
class LabDay:
    name: str
    records: list[CaptureRecord]
    windows: list[Window]
    span: tuple[int, int]

    @property
    def truth(self) -> list[float]:
        return [w.truth for w in self.windows]

    @property
    def kind(self) -> str:
        mean = statistics.fmean(self.truth)
        return "busy" if mean >= 7 else "empty" if mean < 0.5 else "other"


def load_lab_day(pcap: Path) -> LabDay:
    records = list(read_capture(pcap))
    times = [r.ts_ns for r in records]
    steps = read_truth(pcap.with_suffix(".csv").read_text(), times, LAB_TZ)
    return LabDay(pcap.stem, records, truth_windows(steps), (times[0], times[-1]))


def estimate(day: LabDay, config: SensorConfig) -> list[float]:
    return window_means(count_series(config, day.records), day.windows, day.span)


def naive(day: LabDay) -> list[float]:
    """Distinct addresses per 15-minute CountEvent, estimator off: the count before any estimation."""
    config = SensorConfig().model_copy(
        update={
            "presence": SensorConfig().presence.model_copy(update={"interval_s": 900}),
            "estimator": SensorConfig().estimator.model_copy(update={"enabled": False}),
        }
    )
    sink = ListSink()
    pipeline = Pipeline(config, FixedSalt(b"k" * 32), sink)
    pipeline.run(day.records)
    pipeline.finish()
    by_start = {
        int(e.start.timestamp()) * NS: float(e.addresses) for e in sink.events if isinstance(e, CountEvent)
    }
    return [by_start.get(w.start_ns, 0.0) for w in day.windows]


def describe(s: Score) -> tuple[str, str]:
    return f"{s.mae:.2f}", f"{s.mape:.1f}" if s.mape is not None else "-"


def lab(data: Path, calibrate_on: str, full_grid: bool) -> dict[str, float]:
    folder = data / "fryza-lab"
    days = {p.stem: load_lab_day(p) for p in sorted(folder.glob("*.pcap"))}
    if calibrate_on not in days:
        raise SystemExit(f"--calibrate-on {calibrate_on}: no such day in {folder} ({', '.join(days)})")
    config = base_config()
    base = config.estimator.params()
    cal = days[calibrate_on]

    def replay(params: EstimatorParams) -> list[float]:
        return estimate(cal, with_estimator(config, params))

    fit = fit_counts(replay, cal.truth, base, full_grid)
    params = fit.params
    tuned = with_estimator(config, params)
    what = "inside RSSI, holdover and site factor" if full_grid else "site factor"
    print(f"Fryza lab, 15-minute windows; {what} fitted on {calibrate_on} ({fit.windows} windows):")
    print(
        f"  inside_rssi_dbm={params.inside_rssi_dbm} holdover_s={params.holdover_s:g} "
        f"site_factor={params.site_factor:.3f} (global_weight={params.global_weight:g}, "
        f"exit_margin_db={params.exit_margin_db:g})   MAE on {calibrate_on}: "
        f"{fit.mae_before:.2f} before -> {fit.mae_after:.2f} fitted"
    )
    print()
    header = (
        f"{'day':<12}{'role':<13}{'windows':>8}{'truth':>7}{'MAE':>7}{'MAPE%':>7}{'naive':>7}{'naiveMAE':>9}"
    )
    print(header)
    print("-" * len(header))
    pooled: dict[str, list[tuple[float, float]]] = {"busy": [], "empty": [], "other": []}
    devices: dict[str, list[float]] = {}
    unit = replace(params, site_factor=1.0)
    for name, day in days.items():
        devices[name] = estimate(day, with_estimator(config, unit))
        got = [x * params.site_factor for x in devices[name]]
        sc = score(got, day.truth)
        nv = naive(day)
        role = "calibration" if name == calibrate_on else f"eval/{day.kind}"
        if name != calibrate_on:
            pooled[day.kind].extend(zip(got, day.truth, strict=True))
        mae, mape = describe(sc)
        print(
            f"{name:<12}{role:<13}{sc.windows:>8}{statistics.fmean(day.truth):>7.1f}{mae:>7}{mape:>7}"
            f"{statistics.fmean(nv):>7.0f}{score(nv, day.truth).mae:>9.1f}"
        )
    del tuned
    print()
    print(f"Pooled over the evaluation days ({calibrate_on} left out):")
    summary: dict[str, float] = {}
    for kind, pairs in pooled.items():
        if pairs:
            sc = score([x for x, _ in pairs], [y for _, y in pairs])
            mae, mape = describe(sc)
            print(f"  {kind:<6}{sc.windows:>5} windows: MAE {mae}, MAPE {mape} %")
            summary[kind] = sc.mae
    print("  targets: busy MAE <= 1.5 and MAPE <= 10 %; empty MAE <= 0.3")
    busy = [n for n, d in days.items() if d.kind == "busy"]
    leave_one_out(days, devices, busy)
    return summary


def leave_one_out(days: dict[str, LabDay], devices: dict[str, list[float]], busy: Sequence[str]) -> None:
    def factor(names: Sequence[str]) -> float:
        xs = [x for n in names for x in devices[n]]
        ys = [y for n in names for y in days[n].truth]
        return sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs)

    print()
    print("Leave one busy day out (site factor fitted on the other busy days, scored on the one left out):")
    pairs: list[tuple[float, float]] = []
    for name in busy:
        f = factor([n for n in busy if n != name])
        got = [x * f for x in devices[name]]
        pairs.extend(zip(got, days[name].truth, strict=True))
        mae, mape = describe(score(got, days[name].truth))
        print(f"  {name}: site_factor {f:.3f} -> MAE {mae}, MAPE {mape} %")
    sc = score([x for x, _ in pairs], [y for _, y in pairs])
    mae, mape = describe(sc)
    print(f"  all {sc.windows} busy windows: MAE {mae}, MAPE {mape} %")
    print("Each busy day alone as the calibration day (factor fitted there, scored on the other busy days):")
    for name in busy:
        f = factor([name])
        others = [n for n in busy if n != name]
        got = [x * f for n in others for x in devices[n]]
        sc = score(got, [y for n in others for y in days[n].truth])
        mae, mape = describe(sc)
        print(f"  {name}: site_factor {f:.3f} -> MAE {mae}, MAPE {mape} %")


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
    parser.add_argument("--calibrate-on", default=DEFAULT_CALIBRATION_DAY, metavar="DAY")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument(
        "--full-grid", action="store_true", help="also fit inside RSSI and holdover (overfits one day)"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(range(1, 11)),
        help="generated days (the first calibrates)",
    )
    args = parser.parse_args(argv)
    if not (args.data / "fryza-lab").is_dir():
        print(f"no real captures at {args.data}: nothing to measure", file=sys.stderr)
        return 2
    steps: list[Callable[[], object]] = [
        lambda: lab(args.data, args.calibrate_on, args.full_grid),
        lambda: single_phones(args.data),
        lambda: generated_days(args.seeds),
    ]
    for step in steps:
        step()
    return 0


if __name__ == "__main__":
    sys.exit(main())
