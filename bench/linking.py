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
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from footfall_dev.generator import Kind, StoreModel, generate
from footfall_dev.generator.day import LINKTYPE_RADIOTAP
from footfall_dev.generator.radio import device_emissions

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench.* importable
from bench.labdays import DATA, lab_days, sightings_of
from footfall.events import VisitEvent
from footfall.times import NS
from sensor.config import SensorConfig
from sensor.decode.capture import read_capture
from sensor.decode.frames import Sighting
from sensor.estimate.calibrate import Window
from sensor.estimate.candidates import SEQ_MOD
from sensor.estimate.resolver_params import ResolverParams
from sensor.keys.pseudonym import FixedSalt
from sensor.pipeline import ListSink, Pipeline

P = ResolverParams()
NEAR_S = 300.0  # a scan this soon after the last is the same stay (the link window)
BURST_S = P.burst_gap_s
MOVING_PEOPLE = 3  # a window's true count this far from its neighbour's: a class arriving or leaving
# One frame: (seconds, channel, rssi dBm, sequence number); frames of one device in time order.
Frame = tuple[float, int | None, int, int]


@dataclass
class Tally:
    channel: list[float] = field(default_factory=list)  # dB outside the channel's range, per next scan
    envelope: list[float] = field(default_factory=list)  # dB outside the range over all channels
    silences: list[float] = field(default_factory=list)  # s, gaps over NEAR_S
    seq_on: list[tuple[float, bool]] = field(default_factory=list)  # (silence s, counter went on)

    def add(self, frames: Iterable[Frame], keep: Callable[[float, float], bool] | None = None) -> None:
        """Tally one device's frames; `keep(last, t)` picks which scan-to-scan steps count for signal."""
        spans: dict[int | None, list[float]] = {}
        last_t: float | None = None
        last_seq = 0
        for t, channel, rssi, seq in frames:
            if last_t is not None and t - last_t > BURST_S:  # a new scan
                gap = t - last_t
                if gap <= NEAR_S and spans and (keep is None or keep(last_t, t)):
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


def lab_addresses(quick: bool) -> Iterator[tuple[list[Frame], Callable[[float, float], bool]]]:
    """Per lab day, the frames of each random address (a phone's, not a fixed device's global one),
    with the day's test of whether a step between two scans falls while people arrive or leave."""
    for day in lab_days(quick=quick):
        by_address: dict[str, list[Frame]] = {}
        for s in day.sightings:
            if s.randomized and s.rssi_dbm is not None:
                by_address.setdefault(s.address, []).append((s.ts_ns / NS, s.channel, s.rssi_dbm, s.seq))
        moving = moving_test(day.windows)
        for frames in by_address.values():
            yield frames, moving


def moving_test(windows: Sequence[Window]) -> Callable[[float, float], bool]:
    """Whether the step last..t touches a 15-minute window whose true count differs from its
    neighbour's by `MOVING_PEOPLE` or more: a class arriving or leaving, phones walking."""
    starts = [w.a_ns / NS for w in windows]
    flagged = [
        any(
            0 <= j < len(windows) and abs(windows[j].truth - w.truth) >= MOVING_PEOPLE for j in (i - 1, i + 1)
        )
        for i, w in enumerate(windows)
    ]

    def moving(last: float, t: float) -> bool:
        for x in (last, t):
            i = bisect_right(starts, x) - 1
            if 0 <= i < len(windows) and x < windows[i].b_ns / NS and flagged[i]:
                return True
        return False

    return moving


def single_phones() -> Iterator[tuple[str, list[Frame]]]:
    """Every probe request of each single-phone capture (one phone lying still, all its addresses);
    a reading above 0 dBm is a broken field (the S21's last burst), not a signal."""
    for path in sorted((DATA / "captures").glob("baccichet_*.pcap")):
        sightings = sightings_of(sorted(read_capture(path), key=lambda r: r.ts_ns))
        name = path.stem.removeprefix("baccichet_").removesuffix("_anonymized")
        yield (
            name,
            [
                (s.ts_ns / NS, s.channel, s.rssi_dbm, s.seq)
                for s in sightings
                if s.rssi_dbm is not None and s.rssi_dbm <= 0
            ],
        )


def generated_people(
    model: StoreModel,
) -> Iterator[tuple[str, list[Frame], Callable[[float, float], bool]]]:
    """The recorded frames of each person's phone in a generated day, with the person's kind and the
    test of whether a step between two scans lies wholly inside the shop (no walk in or out)."""
    day = generate(model)
    kinds = {t.index: t.kind.name.lower() for t in day.truth.people}
    for person in day.people:
        if person.device is not None:
            frames: list[Frame] = [
                (t, ch, rssi, seq) for t, _, seq, ch, rssi, *_ in device_emissions(model, person)
            ]
            inside = [(leg.t0, leg.t1) for leg in person.legs if leg.inside]

            def within(last: float, t: float, inside: list[tuple[float, float]] = inside) -> bool:
                return any(t0 <= last and t < t1 for t0, t1 in inside)

            yield kinds[person.index], frames, within


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
    # What became of the heard visitors with no visitor visit: a piece taken for staff (a fixed visit),
    # else only passerby visits (pieces under min_dwell_s or never visitor-strong).
    kinds_of: dict[str, set[str]] = {}
    for e in sink.events:
        if isinstance(e, VisitEvent):
            kinds_of.setdefault(e.device, set()).add(e.kind)
    devices_of_person: dict[int, set[str]] = {}
    for device, people in people_of.items():
        for i in people:
            devices_of_person.setdefault(i, set()).add(device)
    missing = [i for i in heard if i not in visits_of]
    presence = SensorConfig().presence
    # Heard too briefly for any resolver: the phone's frames at visitor_rssi or stronger span less than
    # min_dwell_s (an idle phone heard once or twice in a short stay), whatever its addresses.
    strong_span: dict[int, float] = {}
    for person in day.people:
        if person.index in set(missing) and person.device is not None:
            strong = [e[0] for e in device_emissions(model, person) if e[4] >= presence.visitor_rssi]
            strong_span[person.index] = strong[-1] - strong[0] if strong else 0.0
    short = sum(1 for span in strong_span.values() if span < presence.min_dwell_s)
    as_staff = sum(
        1 for i in missing if any("fixed" in kinds_of.get(d, set()) for d in devices_of_person.get(i, ()))
    )
    print(
        f"  seed {model.seed}: {len(visitors)} visitor visits for {len(heard)} visitors heard; "
        f"{staff_only} of the staff phone alone; {len(split)} visitors split "
        f"({sum(visits_of[i] - 1 for i in split)} extra visits); "
        f"{len(missing)} heard visitors with no visitor visit ({as_staff} with a piece taken for staff, "
        f"{len(missing) - as_staff} only in passerby visits; {short} of them heard at visitor_rssi for less than min_dwell_s); "
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
    still = Tally()
    for name, frames in single_phones():
        one = Tally()
        one.add(frames)
        still.add(frames)
        one.report(f"single phone {name}, lying still, all its addresses")
    still.report("single phones, the five together")
    lab, steady, walking = Tally(), Tally(), Tally()
    for frames, moving in lab_addresses(args.quick):
        lab.add(frames)

        def holding(last: float, t: float, moving: Callable[[float, float], bool] = moving) -> bool:
            return not moving(last, t)

        steady.add(frames, holding)
        walking.add(frames, moving)
    days = "14" if args.quick else "all 103"
    lab.report(f"lab, random addresses heard over several scans ({days} days)")
    steady.report(f"lab, the same, steps while the count holds (within {MOVING_PEOPLE} people)")
    walking.report(f"lab, the same, steps while {MOVING_PEOPLE} or more people arrive or leave")
    by_kind: dict[str, Tally] = {}
    for seed in args.seeds:
        for kind, frames, inside in generated_people(replace(StoreModel.demo(), seed=seed)):
            by_kind.setdefault(kind, Tally()).add(frames)
            by_kind.setdefault(f"{kind} inside", Tally()).add(frames, inside)
    for kind, whose in (("visitor", "visitors'"), ("passerby", "passersby's"), ("staff", "staff's")):
        for part, where in ((kind, ""), (f"{kind} inside", ", steps inside the shop only")):
            if part in by_kind and by_kind[part].channel:
                by_kind[part].report(
                    f"generated demo boutique, seeds {args.seeds[0]}-{args.seeds[-1]}, {whose} phones{where}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
