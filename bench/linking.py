"""What the device resolver's linking rules rest on, measured where one device is sure: the same address.

    .venv/bin/python bench/linking.py [--quick] [--seeds 1-3]

A random address heard over several scans is one phone, whatever the resolver would say, so its scans
measure what a phone does between scans (sensor/estimate/devices.py, candidates.py):

1. signal: how far a scan within 5 minutes of the last lies outside the phone's recent RSSI range on that
   channel (the fingerprint rule's yardstick, `rssi_tolerance_db` 10 dB), and outside its range over all
   its channels (`Linker.envelope`, the lone-phone rule's);
2. silences: of the gaps over 5 minutes between two scans of one address, how many end within 15, 20
   and 30 minutes (the resident run's `fixed_gap_s`, the issue's "10-20 minutes", `lone_link_s`);
3. sequence numbers: after such a silence, how often the first number is 1..`seq_window` past the last
   (64 in 4096, 1.6 %, by chance).

The lab days (fryza-lab + fryza-lab-more, from bench/labdays.py's cache) against the generated stores
(footfall_dev.generator, where the truth says whose each frame is, so every phone counts, randomizing
per scan or not).

`--visits`: the demo boutique's days replayed through the sensor pipeline, and each visitor visit held
against the truth of whose frames it took: visits of the staff phone alone, visitors split into several
visits, heard visitors with no visitor visit of their own, visits holding two or more people.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from footfall_dev.generator import Kind, StoreModel, generate
from footfall_dev.generator.day import LINKTYPE_RADIOTAP
from footfall_dev.generator.radio import device_emissions

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench.* importable
from bench.labdays import lab_days
from footfall.events import VisitEvent
from footfall.times import NS
from sensor.config import SensorConfig
from sensor.decode.frames import Sighting
from sensor.estimate.candidates import SEQ_MOD
from sensor.estimate.resolver_params import ResolverParams
from sensor.keys.pseudonym import FixedSalt
from sensor.pipeline import ListSink, Pipeline

P = ResolverParams()
NEAR_S = 300.0  # a scan this soon after the last is the same stay (the link window)
BURST_S = P.burst_gap_s
# One frame: (seconds, channel, rssi dBm, sequence number); frames of one device in time order.
Frame = tuple[float, int | None, int, int]


@dataclass
class Tally:
    channel: list[float] = field(default_factory=list)  # dB outside the channel's range, per next scan
    envelope: list[float] = field(default_factory=list)  # dB outside the range over all channels
    silences: list[float] = field(default_factory=list)  # s, gaps over NEAR_S
    seq_on: list[tuple[float, bool]] = field(default_factory=list)  # (silence s, counter went on)

    def add(self, frames: Iterable[Frame]) -> None:
        spans: dict[int | None, list[float]] = {}
        last_t: float | None = None
        last_seq = 0
        for t, channel, rssi, seq in frames:
            if last_t is not None and t - last_t > BURST_S:  # a new scan
                gap = t - last_t
                if gap <= NEAR_S and spans:
                    low = min(s[0] for s in spans.values())
                    high = max(s[1] for s in spans.values())
                    self.envelope.append(max(low - rssi, rssi - high, 0.0))
                    span = spans.get(channel)
                    if span is not None:
                        self.channel.append(max(span[0] - rssi, rssi - span[1], 0.0))
                elif gap > NEAR_S:
                    self.silences.append(gap)
                    self.seq_on.append((gap, 0 < (seq - last_seq) % SEQ_MOD <= P.seq_window))
            span = spans.get(channel)
            if span is None:
                spans[channel] = [rssi, rssi]
            else:  # the resolver's range: narrows by rssi_decay_db a frame, always takes the new value in
                span[0] = min(float(rssi), span[0] + P.rssi_decay_db)
                span[1] = max(float(rssi), span[1] - P.rssi_decay_db)
            last_t, last_seq = t, seq

    def report(self, name: str) -> None:
        def beyond(values: list[float], db: float) -> str:
            return f"{100 * sum(v > db for v in values) / max(len(values), 1):.1f} %"

        def quantile(values: list[float], q: float) -> float:
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

        print(f"{name}:")
        for label, values in (
            ("its channel's range", self.channel),
            ("its range over all channels", self.envelope),
        ):
            print(
                f"  next scan within {NEAR_S:.0f} s, dB outside {label}: {len(values)} scans, "
                f"median {quantile(values, 0.5):.1f}, 90th {quantile(values, 0.9):.1f}, "
                f"99th {quantile(values, 0.99):.1f}; over 10 dB {beyond(values, 10)}, over 20 dB {beyond(values, 20)}"
            )
        n = max(len(self.silences), 1)
        ends = ", ".join(
            f"{100 * sum(g <= m * 60 for g in self.silences) / n:.0f} % within {m} min" for m in (15, 20, 30)
        )
        print(f"  silences over {NEAR_S:.0f} s: {len(self.silences)}; {ends}")
        for lo, hi in ((NEAR_S, 900.0), (900.0, 1800.0), (1800.0, float("inf"))):
            part = [on for gap, on in self.seq_on if lo < gap <= hi]
            if part:
                print(
                    f"  sequence number 1..{P.seq_window} past the last after a silence of {lo / 60:.0f}-"
                    f"{hi / 60:.0f} min: {100 * sum(part) / len(part):.0f} % of {len(part)} "
                    f"(chance {100 * P.seq_window / SEQ_MOD:.1f} %)"
                )


def lab_addresses(quick: bool) -> Iterator[list[Frame]]:
    """Per lab day, the frames of each random address (a phone's, not a fixed device's global one)."""
    for day in lab_days(quick=quick):
        by_address: dict[str, list[Frame]] = {}
        for s in day.sightings:
            if s.randomized and s.rssi_dbm is not None:
                by_address.setdefault(s.address, []).append((s.ts_ns / NS, s.channel, s.rssi_dbm, s.seq))
        yield from by_address.values()


def generated_people(model: StoreModel) -> Iterator[tuple[str, list[Frame]]]:
    """The recorded frames of each person's phone in a generated day, with the person's kind."""
    day = generate(model)
    kinds = {t.index: t.kind.name.lower() for t in day.truth.people}
    for person in day.people:
        if person.device is not None:
            frames: list[Frame] = [
                (t, ch, rssi, seq) for t, _, seq, ch, rssi, *_ in device_emissions(model, person)
            ]
            yield kinds[person.index], frames


def visits_against_truth(model: StoreModel) -> None:
    """Whose frames each visitor visit of a generated day took (the resolver's address -> device map)."""
    day = generate(model)
    sink = ListSink()
    pipeline = Pipeline(SensorConfig(), FixedSalt(b"k" * 32), sink)
    devices_of: dict[str, set[str]] = {}
    resolve = pipeline.resolver.resolve

    def noting(s: Sighting) -> str:
        device = resolve(s)
        devices_of.setdefault(s.address, set()).add(device)
        return device

    pipeline.resolver.resolve = noting  # type: ignore[method-assign]
    for ts, data in day.records():
        pipeline.feed(ts, LINKTYPE_RADIOTAP, data)
    pipeline.finish()
    people_of: dict[str, set[int]] = {}
    for person in day.people:
        if person.device is not None:
            for t, mac, *_ in device_emissions(model, person):
                ts = day.truth.start_ns + round(t * 1e6) * 1000  # as GeneratedDay.records rounds
                for device in devices_of.get(pipeline.pseudonyms.pseudonym(mac, ts), ()):
                    people_of.setdefault(device, set()).add(person.index)
    kind = {t.index: t.kind for t in day.truth.people}
    visitors = [e for e in sink.events if isinstance(e, VisitEvent) and e.kind == "visitor"]
    visits_of: dict[int, int] = {}
    for v in visitors:
        for i in people_of.get(v.device, set()):
            visits_of[i] = visits_of.get(i, 0) + 1
    heard = [t.index for t in day.truth.people if t.kind is Kind.VISITOR and t.heard]
    staff_only = sum(1 for v in visitors if {kind[i] for i in people_of.get(v.device, set())} == {Kind.STAFF})
    split = [i for i in heard if visits_of.get(i, 0) > 1]
    print(
        f"  seed {model.seed}: {len(visitors)} visitor visits for {len(heard)} visitors heard; "
        f"{staff_only} of the staff phone alone; {len(split)} visitors split "
        f"({sum(visits_of[i] - 1 for i in split)} extra visits); "
        f"{sum(1 for i in heard if i not in visits_of)} heard visitors with no visitor visit; "
        f"{sum(1 for v in visitors if len(people_of.get(v.device, set())) > 1)} visits of two or more people"
    )


def seeds_arg(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="bench/labdays.py's 14 development days")
    parser.add_argument("--seeds", type=seeds_arg, default=[1, 2, 3], help="generated demo days, e.g. 1-3")
    parser.add_argument(
        "--visits", action="store_true", help="the demo days' visitor visits against the truth"
    )
    args = parser.parse_args(argv)
    if args.visits:
        print("Generated demo boutique, visitor visits against whose frames they took:")
        for seed in args.seeds:
            visits_against_truth(replace(StoreModel.demo(), seed=seed))
        return 0
    lab = Tally()
    for frames in lab_addresses(args.quick):
        lab.add(frames)
    lab.report(f"lab, random addresses heard over several scans ({'14' if args.quick else 'all 103'} days)")
    by_kind: dict[str, Tally] = {}
    for seed in args.seeds:
        for kind, frames in generated_people(replace(StoreModel.demo(), seed=seed)):
            by_kind.setdefault(kind, Tally()).add(frames)
    for kind, whose in (("visitor", "visitors'"), ("passerby", "passersby's"), ("staff", "staff's")):
        if kind in by_kind:
            by_kind[kind].report(
                f"generated demo boutique, seeds {args.seeds[0]}-{args.seeds[-1]}, {whose} phones"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
