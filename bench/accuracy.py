"""How well the sensor counts people: the estimator replayed over real and generated days.

    .venv/bin/python bench/accuracy.py [--calibrate-on DAY] [--data ../shared/data]

1. Fryza lab (../shared/data/fryza-lab): every day is replayed frame by frame (decode, pseudonymise,
   resolve devices, estimate), `present` is asked for each 15-minute window when it closes, and
   compared with the time-weighted mean of the ground-truth `occupancy` column. The site numbers
   (inside RSSI, holdover, site factor) are fitted on ONE day (`--calibrate-on`, default
   2022-11-22) and the others are evaluated with them. Printed per day: MAE, MAPE over windows
   with >= 3 people, and the naive figure (distinct addresses per window) for contrast.
2. Single-phone captures (Baccichet): estimated devices over the whole capture (should be 1).
3. Generated days (sensor.generator): visitors, passersby and median visitor dwell from the
   presence model fed with resolved devices, against the generator's truth.

Raw MACs exist only inside `sightings()` (decoder output → pseudonym), as in the sensor.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from footfall.events import CountEvent, VisitEvent
from sensor.capture import read_capture
from sensor.config import PresenceConfig
from sensor.decode import FrameDecoder
from sensor.devices import DeviceResolver
from sensor.frames import Sighting
from sensor.generator.day import generate
from sensor.generator.model import StoreModel
from sensor.occupancy import EstimatorParams, OccupancyEstimator, fit_site
from sensor.pseudonym import FixedSalt, Pseudonymizer
from sensor.visits import PresenceModel

NS = 1_000_000_000
WINDOW_NS = 900 * NS
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_CALIBRATION_DAY = "2022-11-22"
BUSY = 3.0  # windows with at least this many people enter the MAPE


def sightings(records: Iterator[tuple[int, int, bytes]]) -> list[Sighting]:
    """Decode and pseudonymise (throwaway key), in time order: what the resolver sees."""
    decoder = FrameDecoder()
    names = Pseudonymizer(FixedSalt(b"k" * 32))
    out = []
    for ts, linktype, data in records:
        p = decoder.decode(ts, linktype, data)
        if p is None:
            continue
        address = names.pseudonym(p.transmitter, ts)
        out.append(
            Sighting(
                ts, address, names.epoch, p.randomized, p.rssi_dbm, p.channel, p.seq,
                p.fingerprint, p.ie_ids, p.ssid != "",
            )
        )  # fmt: skip
    out.sort(key=lambda s: s.ts_ns)  # the Baccichet files merge three radios out of order
    return out


def capture_records(path: Path) -> Iterator[tuple[int, int, bytes]]:
    for r in read_capture(path):
        yield r.ts_ns, r.linktype, r.data


@dataclass(frozen=True, slots=True)
class Window:
    start_ns: int  # clock-aligned window start
    a_ns: int  # the part of it the capture covers
    b_ns: int
    truth: float  # time-weighted mean occupancy over [a, b)


@dataclass(frozen=True, slots=True)
class LabDay:
    name: str
    sightings: list[Sighting]
    windows: list[Window]


def load_lab_day(pcap: Path) -> LabDay:
    """The day's sightings and its ground truth, joined on the CSV's `idx` (frame index in the pcap)."""
    records = list(capture_records(pcap))
    steps: list[tuple[int, float]] = []
    with pcap.with_suffix(".csv").open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            steps.append((records[int(row["idx"])][0], float(row["occupancy"])))
    steps.sort()
    return LabDay(pcap.stem, sightings(iter(records)), truth_windows(steps))


def truth_windows(steps: Sequence[tuple[int, float]]) -> list[Window]:
    """Clock-aligned 15-minute windows; occupancy holds from one frame to the next.

    Windows the capture covers for less than a third are left out (too little to judge).
    """
    first, last = steps[0][0], steps[-1][0]
    out = []
    k, current = 0, steps[0][1]
    w = first - first % WINDOW_NS
    while w < last:
        a, b = max(w, first), min(w + WINDOW_NS, last)
        acc, t = 0.0, a
        while k < len(steps) and steps[k][0] < b:
            if steps[k][0] > t:
                acc += current * (steps[k][0] - t)
                t = steps[k][0]
            current = steps[k][1]
            k += 1
        acc += current * (b - t)
        if b - a >= WINDOW_NS // 3:
            out.append(Window(w, a, b, acc / (b - a)))
        w += WINDOW_NS
    return out


@dataclass(frozen=True, slots=True)
class Replay:
    present: list[float]
    devices: list[float]  # time-averaged inside devices (before the site factor)
    naive: list[int]  # distinct addresses heard in the window
    randomized_share: float  # of the distinct addresses
    estimated_devices: int  # distinct device ids over the day
    fixed: int  # devices flagged fixed at some point


def replay(day: LabDay, params: EstimatorParams) -> Replay:
    """Run the day through resolver and estimator, asking for each window as it closes."""
    resolver = DeviceResolver(params.resolver)
    estimator = OccupancyEstimator(params, resolver.is_fixed)
    windows = day.windows
    present: list[float] = []
    devices: list[float] = []
    naive: list[int] = []
    heard: set[str] = set()
    ids: set[str] = set()
    fixed: set[str] = set()
    randomized: set[str] = set()
    addresses: set[str] = set()
    k = 0

    def close(w: Window) -> None:
        n = estimator.devices_inside(w.a_ns, w.b_ns)
        devices.append(n)
        present.append(n * params.site_factor)
        naive.append(len(heard))
        heard.clear()
        fixed.update(resolver.fixed_devices)

    for s in day.sightings:
        while k < len(windows) and s.ts_ns >= windows[k].b_ns:
            close(windows[k])
            k += 1
        device = resolver.resolve(s)
        estimator.observe(s, device)
        ids.add(device)
        addresses.add(s.address)
        if s.randomized:
            randomized.add(s.address)
        if k < len(windows) and s.ts_ns >= windows[k].a_ns:
            heard.add(s.address)
    while k < len(windows):
        close(windows[k])
        k += 1
    share = len(randomized) / len(addresses) if addresses else 0.0
    return Replay(present, devices, naive, share, len(ids), len(fixed))


@dataclass(frozen=True, slots=True)
class Score:
    mae: float
    mape: float | None  # None when no window had BUSY people
    naive_mae: float
    mean_truth: float


def score(day: LabDay, r: Replay) -> Score:
    truth = [w.truth for w in day.windows]
    mae = statistics.fmean(abs(x - y) for x, y in zip(r.present, truth, strict=True))
    busy = [(x, y) for x, y in zip(r.present, truth, strict=True) if y >= BUSY]
    mape = 100 * statistics.fmean(abs(x - y) / y for x, y in busy) if busy else None
    naive = statistics.fmean(abs(x - y) for x, y in zip(r.naive, truth, strict=True))
    return Score(mae, mape, naive, statistics.fmean(truth))


def lab(data: Path, calibrate_on: str, full_grid: bool) -> None:
    folder = data / "fryza-lab"
    days = {p.stem: load_lab_day(p) for p in sorted(folder.glob("*.pcap"))}
    if calibrate_on not in days:
        raise SystemExit(f"--calibrate-on {calibrate_on}: no such day in {folder} ({', '.join(days)})")
    base = EstimatorParams()
    cal = days[calibrate_on]
    truth = [w.truth for w in cal.windows]
    if full_grid:
        fit = fit_site(lambda p: replay(cal, p).devices, truth, base)
    else:
        fit = fit_site(
            lambda p: replay(cal, p).devices,
            truth,
            base,
            rssi_grid=(base.inside_rssi_dbm,),
            holdover_grid=(base.holdover_s,),
        )
    params = fit.params
    what = "inside RSSI, holdover and site factor" if full_grid else "site factor"
    print(f"Fryza lab: 15-minute windows; {what} fitted on {calibrate_on} ({fit.windows} windows):")
    print(
        f"  inside_rssi_dbm={params.inside_rssi_dbm} holdover_s={params.holdover_s:g} "
        f"site_factor={params.site_factor:.3f}   MAE on {calibrate_on}: "
        f"{fit.mae_before:.2f} with the defaults -> {fit.mae_after:.2f} fitted"
    )
    print()
    header = (
        f"{'day':<12}{'role':<12}{'windows':>8}{'truth':>7}{'MAE':>7}{'MAPE%':>7}"
        f"{'naive':>7}{'naiveMAE':>9}{'rand%':>7}{'devices':>8}{'fixed':>6}"
    )
    print(header)
    print("-" * len(header))
    pooled: dict[str, list[tuple[float, float]]] = {"busy": [], "empty": [], "other": []}
    for name, day in days.items():
        r = replay(day, params)
        sc = score(day, r)
        kind = "busy" if sc.mean_truth >= 7 else "empty" if sc.mean_truth < 0.5 else "other"
        if name != calibrate_on:
            pooled[kind].extend(zip(r.present, [w.truth for w in day.windows], strict=True))
        role = "calibration" if name == calibrate_on else f"eval/{kind}"
        mape = f"{sc.mape:7.1f}" if sc.mape is not None else f"{'-':>7}"
        print(
            f"{name:<12}{role:<12}{len(day.windows):>8}{sc.mean_truth:>7.1f}{sc.mae:>7.2f}{mape}"
            f"{statistics.fmean(r.naive):>7.0f}{sc.naive_mae:>9.1f}{100 * r.randomized_share:>7.0f}"
            f"{r.estimated_devices:>8}{r.fixed:>6}"
        )
    print()
    print("Pooled over the evaluation days (the calibration day left out):")
    for kind, pairs in pooled.items():
        if not pairs:
            continue
        mae = statistics.fmean(abs(x - y) for x, y in pairs)
        busy = [(x, y) for x, y in pairs if y >= BUSY]
        mape = f", MAPE {100 * statistics.fmean(abs(x - y) / y for x, y in busy):.1f} %" if busy else ""
        print(f"  {kind:<6} {len(pairs):>4} windows: MAE {mae:.2f}{mape}")
    print("Targets: busy MAE <= 1.5 and MAPE <= 10 %; empty MAE <= 0.3.")
    print()
    print(
        "Each busy day as the calibration day in turn (site factor fitted there, MAE on the other busy days):"
    )
    busy_days = [n for n, d in days.items() if statistics.fmean(w.truth for w in d.windows) >= 7]
    devices = {n: replay(days[n], replace(params, site_factor=1.0)).devices for n in busy_days}
    for cal_name in busy_days:
        truth = [w.truth for w in days[cal_name].windows]
        xs = devices[cal_name]
        factor = sum(x * y for x, y in zip(xs, truth, strict=True)) / sum(x * x for x in xs)
        errs = [
            abs(factor * x - w.truth)
            for n in busy_days
            if n != cal_name
            for x, w in zip(devices[n], days[n].windows, strict=True)
        ]
        print(f"  {cal_name}: site_factor {factor:.3f} -> MAE {statistics.fmean(errs):.2f} on the others")


def single_phones(data: Path) -> None:
    print()
    print("Single-phone captures (one phone, many addresses; should be 1 device, at most 2):")
    params = EstimatorParams()
    for path in sorted((data / "captures").glob("baccichet_*.pcap")):
        found = sightings(capture_records(path))
        resolver = DeviceResolver(params.resolver)
        ids = {resolver.resolve(s) for s in found}
        name = path.stem.removeprefix("baccichet_").removesuffix("_anonymized")
        print(
            f"  {name:<20} frames {len(found):>5}  addresses {len({s.address for s in found}):>4}  "
            f"fingerprints {len({s.fingerprint for s in found}):>2}  estimated devices {len(ids)}"
        )


def generated_days(seeds: Sequence[int]) -> None:
    print()
    print("Generated store days (sensor.generator demo store; presence model on resolved devices):")
    print("  seed  visitors: found vs truth (heard)  passersby: found vs truth (heard)  median dwell s")
    for seed in seeds:
        model = replace(StoreModel.demo(), seed=seed)
        day = generate(model)
        visits: list[VisitEvent] = []

        def emit(event: VisitEvent | CountEvent, visits: list[VisitEvent] = visits) -> None:
            if isinstance(event, VisitEvent):
                visits.append(event)

        params = EstimatorParams()
        resolver = DeviceResolver(params.resolver)
        presence = PresenceModel(PresenceConfig(), "bench", "bench", emit, is_fixed=resolver.is_fixed)
        for s in sightings((ts, 127, data) for ts, data in day.records()):
            presence.observe(s, resolver.resolve(s))
        presence.flush()
        v = [e for e in visits if e.kind == "visitor"]
        p = sum(1 for e in visits if e.kind == "passerby")
        dwell = statistics.median(e.dwell_s for e in v) if v else 0.0
        t = day.truth.aggregates()
        print(
            f"  {seed:>4} {len(v):>5} vs {t['visitors']:>3} ({t['visitors_heard']:>3} heard) "
            f"{p:>5} vs {t['passersby']:>3} ({t['passersby_heard']:>3} heard) "
            f"{dwell:>6.0f} vs {t['median_visitor_dwell_s']:>4.0f} ({t['median_visitor_dwell_with_device_s']:>4.0f})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibrate-on", default=DEFAULT_CALIBRATION_DAY, metavar="DAY")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument(
        "--full-grid", action="store_true", help="also fit inside RSSI and holdover (overfits one day)"
    )
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3], help="generated days")
    args = parser.parse_args(argv)
    if not (args.data / "fryza-lab").is_dir():
        print(f"no real captures at {args.data}: nothing to measure", file=sys.stderr)
        return 2
    lab(args.data, args.calibrate_on, args.full_grid)
    single_phones(args.data)
    generated_days(args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
