"""The ground truth of a generated day: who was there, when, with what device, and the aggregates.

Written beside the capture as `<name>.truth.json` and read back by tests and the estimation
checks. It holds no MAC address: devices are numbered. People are counted whether or not they
carried a phone (that is what a counter must estimate); the `*_with_device` and `*_heard` figures
say how many the sensor could possibly see. Fixed devices are listed with kind "fixed" but are
never counted as people.

Time-averaged occupancy of a window = sum over people inside of (time inside the window) / (window
length), so a visitor inside for half of a 15-minute window counts 0.5.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from footfall.times import NS
from footfall_dev.generator.model import StoreModel
from footfall_dev.generator.population import Kind

SCHEMA = "footfall.generator.truth/1"


@dataclass(frozen=True, slots=True)
class DeviceTruth:
    index: int
    device_class: str
    randomized: bool
    addresses: int  # addresses used while in the capture window
    addresses_heard: int  # of which at least one frame was recorded
    frames: int  # probe requests recorded


@dataclass(frozen=True, slots=True)
class PersonTruth:
    index: int
    kind: Kind
    start_ns: int  # visitors and staff: entering; passersby: coming into range; fixed: capture start
    end_ns: int
    device: DeviceTruth | None

    @property
    def dwell_s(self) -> float:
        return (self.end_ns - self.start_ns) / NS

    @property
    def heard(self) -> bool:
        return self.device is not None and self.device.frames > 0


@dataclass(frozen=True, slots=True)
class Count:
    """People counted in one interval: hours by arrival, occupancy windows by time-average."""

    start_ns: int
    local: str  # local wall-clock time of the start, "HH:MM"
    visitors: int
    passersby: int
    visitors_with_device: int
    passersby_with_device: int


@dataclass(frozen=True, slots=True)
class Occupancy:
    start_ns: int
    local: str
    people: float  # time-averaged people inside (visitors and staff)
    with_device: float  # of whom carrying a phone with Wi-Fi on
    visitors: float


@dataclass(frozen=True, slots=True)
class Truth:
    model: StoreModel
    start_ns: int  # capture window
    end_ns: int
    probe_requests: int
    other_frames: int  # beacons
    people: tuple[PersonTruth, ...]

    # -- aggregates, all derived from `people` ------------------------------------------------------

    def of(self, kind: Kind) -> list[PersonTruth]:
        return [p for p in self.people if p.kind is kind]

    @property
    def visitors(self) -> int:
        return len(self.of(Kind.VISITOR))

    @property
    def passersby(self) -> int:
        return len(self.of(Kind.PASSERBY))

    @property
    def median_visitor_dwell_s(self) -> float:
        dwell = [p.dwell_s for p in self.of(Kind.VISITOR)]
        return statistics.median(dwell) if dwell else 0.0

    def aggregates(self) -> dict[str, Any]:
        visitors, passersby = self.of(Kind.VISITOR), self.of(Kind.PASSERBY)
        with_dev = [p.dwell_s for p in visitors if p.device is not None]
        return {
            "visitors": len(visitors),
            "passersby": len(passersby),
            "staff": len(self.of(Kind.STAFF)),
            "fixed_devices": len(self.of(Kind.FIXED)),
            "visitors_with_device": sum(p.device is not None for p in visitors),
            "passersby_with_device": sum(p.device is not None for p in passersby),
            "visitors_heard": sum(p.heard for p in visitors),
            "passersby_heard": sum(p.heard for p in passersby),
            "median_visitor_dwell_s": round(self.median_visitor_dwell_s, 3),
            "median_visitor_dwell_with_device_s": round(statistics.median(with_dev), 3) if with_dev else 0.0,
            "probe_requests": self.probe_requests,
            "other_frames": self.other_frames,
        }

    def hourly(self) -> list[Count]:
        """Visitors by the hour they entered, passersby by the hour they came into range."""
        hours = -(-(self.end_ns - self.start_ns) // (3600 * NS))
        tally = [[0, 0, 0, 0] for _ in range(hours)]
        column = {Kind.VISITOR: 0, Kind.PASSERBY: 1}
        for p in self.people:
            if p.kind in column and self.start_ns <= p.start_ns < self.end_ns:
                row = tally[(p.start_ns - self.start_ns) // (3600 * NS)]
                row[column[p.kind]] += 1
                row[column[p.kind] + 2] += p.device is not None
        return [
            Count(start, self._local(start), *row)
            for start, row in zip(range(self.start_ns, self.end_ns, 3600 * NS), tally, strict=True)
        ]

    def occupancy(self, minutes: int) -> list[Occupancy]:
        """Time-averaged people inside per window of `minutes`, over the capture window."""
        step = minutes * 60 * NS
        starts = range(self.start_ns, self.end_ns, step)
        sums = [[0.0, 0.0, 0.0] for _ in starts]
        for p in self.people:
            if p.kind not in (Kind.VISITOR, Kind.STAFF):
                continue
            first = max((p.start_ns - self.start_ns) // step, 0)
            last = min((p.end_ns - 1 - self.start_ns) // step, len(starts) - 1)
            for i in range(first, last + 1):
                overlap = min(starts[i] + step, p.end_ns) - max(starts[i], p.start_ns)
                if overlap > 0:
                    share = overlap / step
                    row = sums[i]
                    row[0] += share
                    row[1] += share if p.device is not None else 0.0
                    row[2] += share if p.kind is Kind.VISITOR else 0.0
        return [
            Occupancy(start, self._local(start), round(a, 4), round(b, 4), round(c, 4))
            for start, (a, b, c) in zip(starts, sums, strict=True)
        ]

    def _local(self, ts_ns: int) -> str:
        return datetime.fromtimestamp(ts_ns / NS, ZoneInfo(self.model.timezone)).strftime("%H:%M")

    # -- JSON ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model.to_dict(),
            "capture": {"start_ns": self.start_ns, "end_ns": self.end_ns},
            "aggregates": self.aggregates(),
            "hourly": [_plain(c) for c in self.hourly()],
            "occupancy_15min": [_plain(o) for o in self.occupancy(15)],
            "occupancy_5min": [_plain(o) for o in self.occupancy(5)],
            "people": [
                {
                    "index": p.index,
                    "kind": p.kind.value,
                    "start_ns": p.start_ns,
                    "end_ns": p.end_ns,
                    "dwell_s": round(p.dwell_s, 3),
                    "device": None if p.device is None else _plain(p.device),
                }
                for p in self.people
            ],
        }

    def save(self, path: Path) -> None:
        """JSON with one line per list item (a person, an hour, a window): small, and diffs well."""
        lines = []
        for key, value in self.to_dict().items():
            if isinstance(value, list):
                items = ",\n".join("  " + json.dumps(item) for item in value)
                lines.append(f" {json.dumps(key)}: [\n{items}\n ]")
            else:
                lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
        path.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Truth:
        """Read a truth file; the aggregates are recomputed from the people, not trusted."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA:
            raise ValueError(f"{path}: schema {data.get('schema')!r}, expected {SCHEMA!r}")
        agg = data["aggregates"]
        people = tuple(
            PersonTruth(
                p["index"],
                Kind(p["kind"]),
                p["start_ns"],
                p["end_ns"],
                None if p["device"] is None else DeviceTruth(**p["device"]),
            )
            for p in data["people"]
        )
        return cls(
            StoreModel.from_dict(data["model"]),
            data["capture"]["start_ns"],
            data["capture"]["end_ns"],
            agg["probe_requests"],
            agg["other_frames"],
            people,
        )


def _plain(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}
