"""The 103 position-1 lab days (fryza-lab + fryza-lab-more), decoded and pseudonymised once, cached.

A day is its sightings (what the pipeline has after pseudonymisation: no MAC), its 15-minute ground-truth
windows and its capture span. Decoding a day's pcap and joining its CSV on the frame index takes a
second or two; the cache (`bench/.cache/lab/DAY.pickle`, gitignored) makes a rerun of the whole bench
a replay of the sightings only. The cache key holds the source files' sizes and mtimes and the
decoder's fingerprint version, so a changed file or decoder rebuilds it.

Day classes follow the data README: busy (frame-weighted mean occupancy >= 3), light (under 3, not
zero), empty (nobody all day; a day whose mean rounds to 0.00 counts as empty, as in the README).
"""

from __future__ import annotations

import gzip
import os
import pickle
import statistics
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from sensor.decode.capture import read_capture
from sensor.decode.decoder import FrameDecoder
from sensor.decode.frames import CaptureRecord, ProbeRequest, Sighting
from sensor.estimate.calibrate import Window, read_truth, truth_windows
from sensor.keys.pseudonym import FixedSalt, Pseudonymizer

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CACHE = Path(__file__).resolve().parent / ".cache" / "lab"
LAB_TZ = ZoneInfo("Europe/Prague")  # only for reading times; the lab truth joins on frame index
_VERSION = 3  # bumped whenever the pickled sighting classes change (sensor/decode/frames.py)
SALT = FixedSalt(b"bench-lab-days-salt-000000000000")


@dataclass(frozen=True, slots=True)
class LabDay:
    name: str  # YYYY-MM-DD
    sightings: list[Sighting]
    windows: list[Window]
    span: tuple[int, int]
    mean_occupancy: float  # frame-weighted, as the data README classes days
    gaps: int  # truth windows left out: the sniffer heard nothing in them (`heard_windows`)

    @property
    def month(self) -> str:
        return self.name[:7]

    @property
    def truth(self) -> list[float]:
        return [w.truth for w in self.windows]

    @property
    def kind(self) -> str:
        if self.mean_occupancy >= 3:
            return "busy"
        # The data README's classes: a day whose mean rounds to 0.00 (a person for a minute) is empty.
        return "light" if self.mean_occupancy >= 0.005 else "empty"


def day_files(data: Path = DATA) -> dict[str, tuple[Path, Path]]:
    """Day → (pcap, csv), compressed or not, for every position-1 day."""
    out: dict[str, tuple[Path, Path]] = {}
    for pcap in sorted((data / "fryza-lab").glob("*.pcap")):
        out[pcap.stem] = (pcap, pcap.with_suffix(".csv"))
    for pcap in sorted((data / "fryza-lab-more").glob("*.pcap.gz")):
        day = pcap.name.removesuffix(".pcap.gz")
        out[day] = (pcap, pcap.with_name(f"{day}.csv.gz"))
    return dict(sorted(out.items()))


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def sightings_of(records: list[CaptureRecord]) -> list[Sighting]:
    """Decode and pseudonymise as the pipeline does (the raw MAC goes no further than this loop)."""
    decoder = FrameDecoder()
    pseudonyms = Pseudonymizer(SALT)
    out = []
    for r in records:
        p = decoder.decode(r.ts_ns, r.linktype, r.data)
        if not isinstance(p, ProbeRequest):  # nothing, or a connected station's frame: not counted here yet
            continue
        out.append(
            Sighting(
                p.ts_ns,
                pseudonyms.pseudonym(p.transmitter, p.ts_ns),
                pseudonyms.epoch,
                p.randomized,
                p.rssi_dbm,
                p.channel,
                p.seq,
                p.fingerprint,
                p.ie_ids,
                p.ssid != "",
            )
        )
    return out


def _decode_day(name: str, pcap: Path, csv: Path) -> LabDay:
    raw = _read(pcap)
    tmp = CACHE / f".{name}.{os.getpid()}.pcap"
    tmp.write_bytes(raw)
    try:
        records = list(read_capture(tmp))
    finally:
        tmp.unlink()
    times = [r.ts_ns for r in records]
    text = _read(csv).decode("utf-8")
    steps = read_truth(text, times, LAB_TZ)
    occupancy = [c for _, c in steps]
    sightings = sightings_of(records)
    windows, gaps = heard_windows(truth_windows(steps), [s.ts_ns for s in sightings])
    return LabDay(name, sightings, windows, (times[0], times[-1]), statistics.fmean(occupancy), gaps)


def heard_windows(windows: list[Window], times: list[int]) -> tuple[list[Window], int]:
    """The windows in which the sniffer heard anything, and how many it did not.

    The lab PCs probe every minute all day, so a 15-minute window without a single frame is the
    sniffer not recording (2023-02-22: six hours without a frame while the truth says 14 people),
    not an empty room: no estimator can know, and such a window says nothing about one.
    """
    k, heard = 0, []
    for w in windows:
        k = bisect_left(times, w.a_ns, k)
        if k < len(times) and times[k] < w.b_ns:
            heard.append(w)
    return heard, len(windows) - len(heard)


def load_day(name: str, pcap: Path, csv: Path) -> LabDay:
    CACHE.mkdir(parents=True, exist_ok=True)
    key = (_VERSION, pcap.stat().st_size, pcap.stat().st_mtime_ns, csv.stat().st_size)
    cached = CACHE / f"{name}.pickle"
    if cached.exists():
        with cached.open("rb") as f:
            stored_key, day = pickle.load(f)
        if stored_key == key:
            return day  # type: ignore[no-any-return]
    day = _decode_day(name, pcap, csv)
    tmp = cached.with_name(f".{name}.{os.getpid()}.pickle")  # atomic: replays run in parallel
    with tmp.open("wb") as f:
        pickle.dump((key, day), f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(cached)
    return day


def lab_days(data: Path = DATA, quick: bool = False) -> Iterator[LabDay]:
    """Every position-1 day in date order; `quick`: a dozen spread over the months and kinds."""
    files = day_files(data)
    names = list(files)
    if quick:
        names = QUICK_DAYS
    for name in names:
        pcap, csv = files[name]
        yield load_day(name, pcap, csv)


# Development subset: the eight tuning days' months plus the two RSSI-scale outliers of the issue.
QUICK_DAYS = [
    "2022-10-18",
    "2022-10-19",
    "2022-11-15",
    "2022-11-16",
    "2022-11-22",
    "2023-02-08",
    "2023-02-22",
    "2023-03-15",
    "2023-04-14",
    "2023-04-15",
    "2023-09-09",
    "2023-10-11",
    "2023-11-21",
    "2023-12-12",
]
