"""Connected phones: the real stations' frame rates, and what hearing them changes in people per device.

    .venv/bin/python -m bench.connected [--days 6] [--visitors 150]

1. The stations of the real captures (../shared/data/captures/aircrack_*.cap): frames each sent to its
   access point over the time it was heard, which is where the generator's guest-network rates come from
   (dev/footfall_dev/generator/guest.py).
2. Generated days (the demo boutique with `--visitors` visitors) whose share of visitors on the guest
   Wi-Fi differs day to day (10 % to 60 %; connected phones scan a quarter as often), each through the
   sensor pipeline without `capture.store_networks` (the sensor hears only probe requests) and with it,
   the latter with none, half (the generator's default) and all of a connected phone's scans sent from
   its connected address (the share no capture can tell: random-address scans cannot be linked). People per device is the truth's people over what the sensor counted, on visits (visitors /
   visitor visits) and on people present (the truth's mean occupancy / the mean `present`); its spread
   over the days is max / min. No number of the tracker was fitted on these days.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections import defaultdict
from pathlib import Path

from footfall_dev.generator.day import GeneratedDay, generate
from footfall_dev.generator.guest import GuestNetwork
from footfall_dev.generator.model import StoreModel
from footfall_dev.generator.radio import beacon_emissions

from footfall.events import CountEvent, VisitEvent
from sensor.config import SensorConfig
from sensor.decode.capture import read_capture
from sensor.decode.decoder import FrameDecoder
from sensor.decode.frames import ConnectedFrame
from sensor.keys.pseudonym import FixedSalt
from sensor.pipeline import ListSink, Pipeline

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "captures"
APS = {"aircrack_n-02.cap": "b0b98a568dea", "aircrack_pmkid-not-recognized.cap": "8cdef9d0b461"}


def station_rates() -> None:
    print("Stations of the real captures: frames sent to the access point / seconds heard")
    for name, ap in APS.items():
        decoder = FrameDecoder(store_bssids={bytes.fromhex(ap)})
        times: dict[bytes, list[int]] = defaultdict(list)
        for r in read_capture(CAPTURES / name):
            got = decoder.decode(r.ts_ns, r.linktype, r.data)
            if isinstance(got, ConnectedFrame) and got.from_station:
                times[got.station].append(r.ts_ns)
        rates = []
        for i, ts in enumerate(sorted(times.values(), key=len, reverse=True)):
            span = (ts[-1] - ts[0]) / 1e9
            rate = f"{len(ts) / span:5.2f}/s" if span >= 5 else "   (too short)"
            if span >= 5:
                rates.append(len(ts) / span)
            print(f"  {name:<36} station {i + 1}: {len(ts):4} frames over {span:6.1f} s  {rate}")
        if rates:
            print(
                f"  {name:<36} median {statistics.median(rates):.2f}/s, {min(rates):.2f}-{max(rates):.2f}/s"
            )


def run(day: GeneratedDay, guest: GuestNetwork, listen: bool) -> tuple[int, float]:
    """(visitor visits, mean present over the open hours' count intervals)."""
    capture: dict[str, object] = {"filter": "probe_requests"}
    if listen:
        bssid = next(beacon_emissions(day.model, 0, 1e9))[1]
        capture["store_networks"] = [{"ssid": "Store-Guest", "bssids": [bssid.hex(":")]}]
    config = SensorConfig.model_validate({"site": {"store": "bench"}, "capture": capture})
    sink = ListSink()
    pipeline = Pipeline(config, FixedSalt(b"b" * 32, epoch="e1"), sink)
    for ts, data in day.records(guest=guest):
        pipeline.feed(ts, 127, data)
    pipeline.finish()
    visits = sum(1 for e in sink.events if isinstance(e, VisitEvent) and e.kind == "visitor")
    present = [e.present for e in sink.events if isinstance(e, CountEvent)]
    return visits, statistics.fmean(present)


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f} (max/min {max(values) / min(values):.2f})"


RUNS = (
    ("without", False, 0.5),
    ("with, own 0", True, 0.0),
    ("with, own 0.5", True, 0.5),
    ("with, own 1", True, 1.0),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--visitors", type=int, default=150)
    args = parser.parse_args()
    cpu = time.process_time()
    station_rates()
    print()
    print("Visitor visits and people per unit of `present`, per day (connected frames without/with)")
    print(f"{'day':>3}  {'joined':>6}  {'truth':>5}  " + "  ".join(f"{name:>19}" for name, _, _ in RUNS))
    per_visit: dict[str, list[float]] = defaultdict(list)
    per_present: dict[str, list[float]] = defaultdict(list)
    for i in range(args.days):
        share = 0.1 + 0.5 * i / max(args.days - 1, 1)
        day = generate(dataclasses.replace(StoreModel.demo(), visitors=args.visitors, seed=100 + i))
        occupancy = statistics.fmean(o.people for o in day.truth.occupancy(5))
        cells = []
        for name, listen, own in RUNS:
            visits, present = run(day, GuestNetwork(join_share=share, own_address_share=own), listen)
            per_visit[name].append(day.truth.visitors / visits)
            per_present[name].append(occupancy / present)
            cells.append(f"{visits:>4} visits {occupancy / present:>4.2f}/pr")
        print(f"{i + 1:>3}  {share:>6.0%}  {day.truth.visitors:>5}  " + "  ".join(f"{c:>19}" for c in cells))
    print()
    for label, series in (
        ("visitors per visitor visit", per_visit),
        ("people per unit of present", per_present),
    ):
        for j, (name, _, _) in enumerate(RUNS):
            print(f"{label if j == 0 else '':<28} {name:<14} {spread(series[name])}")
    print(f"\nCPU {time.process_time() - cpu:.1f} s (user+sys of this process)")


if __name__ == "__main__":
    main()
