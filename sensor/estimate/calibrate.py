"""Site calibration, the pure part: fitting the signal model and the people estimate to a site.

Two fits, both over plain data passed in (frames, capture records, truth text), no files, no clock:

1. Signal: the installer walks their own phone to known distances; the log-distance model
   rssi = P1m - 10 n log10(d) is fitted by least squares (`fit_log_distance`) and suggests
   `presence.visitor_rssi` for the door (`SignalFit.visitor_rssi`).
2. Counts: a capture replayed through the real pipeline (`sensor.replay.count_series`) against a ground-truth
   people count (`read_truth`) per 15-minute window (`truth_windows`, `window_means`); the site's
   numbers are fitted by `sensor.occupancy.fit_site` (grid over thresholds, least squares for the
   factor) and scored (`score`).

Errors are `CalibrationError`: one line that says what was wrong, with the numbers.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from footfall.times import NS
from sensor.estimate.occupancy import EstimatorParams, Fit, fit_site

WINDOW_S = 900
BUSY = 3.0  # windows with at least this many people enter the MAPE


class CalibrationError(ValueError):
    """Bad calibration input; the message is one line meant for the person running the command."""


# -- signal: the log-distance model ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignalFit:
    """rssi = p1m_dbm - 10 * exponent * log10(d), fitted to (distance, rssi) points."""

    p1m_dbm: float  # mean signal at 1 m
    exponent: float  # path-loss exponent n (2 in free space, 2.5-4 indoors)
    sigma_db: float  # residual standard deviation
    r2: float
    points: tuple[tuple[float, int, float], ...]  # (distance m, frames, mean rssi) per distance

    def rssi_at(self, distance_m: float) -> float:
        return self.p1m_dbm - 10.0 * self.exponent * math.log10(distance_m)

    def visitor_rssi(self, door_m: float, margin_sigmas: float = 1.0) -> int:
        """The threshold for a visit to count as inside: the mean signal of a phone at the door,
        less `margin_sigmas` residual sigmas so that most of a door-distance phone's frames reach it."""
        if door_m <= 0:
            raise CalibrationError(f"door distance must be > 0 m, got {door_m:g}")
        return math.floor(self.rssi_at(door_m) - margin_sigmas * self.sigma_db)


def fit_log_distance(samples: Sequence[tuple[float, float]]) -> SignalFit:
    """Least squares of rssi on -10 log10(d) over (distance m, rssi dBm) samples."""
    distances = sorted({d for d, _ in samples})
    if len(distances) < 2:
        raise CalibrationError(
            f"too few distances: the fit needs frames at 2 or more distances, got {len(distances)}"
            + (f" ({distances[0]:g} m)" if distances else "")
        )
    if distances[0] <= 0:
        raise CalibrationError(f"distances must be > 0 m, got {distances[0]:g}")
    xs = [-10.0 * math.log10(d) for d, _ in samples]
    ys = [float(r) for _, r in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    n = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    p1m = my - n * mx
    residuals = [y - (p1m + n * x) for x, y in zip(xs, ys, strict=True)]
    sse = sum(r * r for r in residuals)
    sst = sum((y - my) ** 2 for y in ys)
    dof = max(len(ys) - 2, 1)
    per_distance = tuple(
        (d, len(rs), statistics.fmean(rs)) for d in distances for rs in [[r for e, r in samples if e == d]]
    )
    return SignalFit(p1m, n, math.sqrt(sse / dof), 1.0 - sse / sst if sst else 1.0, per_distance)


@dataclass(frozen=True, slots=True)
class DistanceSpan:
    start_ns: int
    end_ns: int
    meters: float


def parse_time(text: str, capture_start_ns: int, tz: ZoneInfo) -> int:
    """A moment as the installer writes it: `+SECONDS` from the capture's start, an ISO 8601
    date-time (without an offset: in the site's time zone), or `HH:MM[:SS]` on the capture's day."""
    text = text.strip()
    try:
        if text.startswith("+"):
            return capture_start_ns + round(float(text[1:]) * NS)
        if len(text) <= 8 and ":" in text:
            day: date = datetime.fromtimestamp(capture_start_ns / NS, tz).date()
            moment = datetime.combine(day, time.fromisoformat(text), tz)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
    except ValueError:
        raise CalibrationError(
            f"time {text!r}: expected +SECONDS, HH:MM[:SS] or an ISO 8601 date-time"
        ) from None
    return int(moment.timestamp() * 1_000_000) * 1000


def _meters(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CalibrationError(f"{where}: distance {text!r} is not a number of metres") from None
    if not 0 < value < 1000:
        raise CalibrationError(f"{where}: distance must be in (0, 1000) m, got {value:g}")
    return value


def parse_distance_csv(text: str, capture_start_ns: int, tz: ZoneInfo) -> list[DistanceSpan]:
    """`start,end,meters` rows (a header line is allowed): the phone was `meters` away in [start, end)."""
    spans = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or row[0].strip().startswith("#"):
            continue
        if n == 1 and row[0].strip().lower() in ("start", "from", "begin"):
            continue
        if len(row) != 3:
            raise CalibrationError(f"distances line {n}: expected start,end,meters, got {len(row)} fields")
        start = parse_time(row[0], capture_start_ns, tz)
        end = parse_time(row[1], capture_start_ns, tz)
        if end <= start:
            raise CalibrationError(f"distances line {n}: end {row[1].strip()} is not after start")
        spans.append(DistanceSpan(start, end, _meters(row[2], f"distances line {n}")))
    return spans


def parse_at(
    values: Sequence[str], capture_start_ns: int, capture_end_ns: int, tz: ZoneInfo
) -> list[DistanceSpan]:
    """`TIME=METERS` marks: the phone stayed at METERS from TIME until the next mark (or the end)."""
    marks = []
    for value in values:
        when, sep, meters = value.partition("=")
        if not sep:
            raise CalibrationError(f"--at {value!r}: expected TIME=METERS")
        marks.append((parse_time(when, capture_start_ns, tz), _meters(meters, f"--at {value!r}")))
    marks.sort()
    ends = [t for t, _ in marks[1:]] + [capture_end_ns + 1]
    return [DistanceSpan(t, end, m) for (t, m), end in zip(marks, ends, strict=True) if end > t]


def label_frames(
    frames: Iterable[tuple[int, int]], spans: Sequence[DistanceSpan]
) -> list[tuple[float, float]]:
    """(ts, rssi) frames → (distance, rssi) for the frames inside a span; the others are dropped."""
    out = []
    for ts, rssi in frames:
        for span in spans:
            if span.start_ns <= ts < span.end_ns:
                out.append((span.meters, float(rssi)))
                break
    return out


# -- counts: ground truth, windows, replay, score ------------------------------------------------------


def truth_format(text: str) -> str:
    """ "fryza" or "timestamp", told apart by the header line; anything else is an error."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if ";" in first and {"idx", "occupancy"} <= {c.strip() for c in first.split(";")}:
        return "fryza"
    if [c.strip().lower() for c in first.split(",")] == ["timestamp", "count"]:
        return "timestamp"
    raise CalibrationError(
        "unknown truth format: expected a 'timestamp,count' CSV or a ';'-separated CSV with "
        f"'idx' and 'occupancy' columns, first line is {first[:60]!r}"
    )


def read_truth(text: str, record_times: Sequence[int], tz: ZoneInfo) -> list[tuple[int, float]]:
    """Ground-truth people counts as time-ordered (ts_ns, count) steps.

    Two formats (`truth_format`): `timestamp,count` (ISO 8601 times; without an offset, in the
    site's time zone) and the Fryza lab CSV (`;`-separated, with `idx`, the frame's index in the
    capture, and `occupancy`), whose times come from the capture records (`record_times`).
    """
    text = text.lstrip("\ufeff")
    steps = []
    if truth_format(text) == "fryza":
        for n, fields in enumerate(csv.DictReader(io.StringIO(text), delimiter=";"), 2):
            try:
                idx, count = int(fields["idx"]), float(fields["occupancy"])
            except (TypeError, ValueError):
                raise CalibrationError(f"truth line {n}: idx and occupancy must be numbers") from None
            if not 0 <= idx < len(record_times):
                raise CalibrationError(
                    f"truth line {n}: idx {idx} is outside the capture's {len(record_times)} frames"
                )
            steps.append((record_times[idx], count))
    else:
        for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
            if n == 1 or not row:
                continue
            try:
                moment = datetime.fromisoformat(row[0].strip())
                value = float(row[1])
            except (ValueError, IndexError):
                raise CalibrationError(
                    f"truth line {n}: expected ISO-time,count, got {','.join(row)[:60]!r}"
                ) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
            steps.append((int(moment.timestamp() * 1_000_000) * 1000, value))
    if not steps:
        raise CalibrationError("the truth file has no rows")
    steps.sort()
    return steps


@dataclass(frozen=True, slots=True)
class Window:
    start_ns: int  # clock-aligned window start
    a_ns: int  # the part of it the truth covers
    b_ns: int
    truth: float  # time-weighted mean count over [a, b)


def truth_windows(steps: Sequence[tuple[int, float]], window_s: int = WINDOW_S) -> list[Window]:
    """Clock-aligned windows; a count holds until the next step. Windows covered for less than a
    third are left out (too little to judge)."""
    width = window_s * NS
    first, last = steps[0][0], steps[-1][0]
    out = []
    k, current = 0, steps[0][1]
    w = first - first % width
    while w < last:
        a, b = max(w, first), min(w + width, last)
        acc, t = 0.0, a
        while k < len(steps) and steps[k][0] < b:
            if steps[k][0] > t:
                acc += current * (steps[k][0] - t)
                t = steps[k][0]
            current = steps[k][1]
            k += 1
        acc += current * (b - t)
        if b - a >= width // 3:
            out.append(Window(w, a, b, acc / (b - a)))
        w += width
    return out


def window_means(
    intervals: Sequence[tuple[int, int, float]], windows: Sequence[Window], span: tuple[int, int]
) -> list[float]:
    """Time-weighted mean of the intervals' `present` over each window.

    An interval the capture (`span`) covers only in part was averaged over its whole length by the
    sensor; it is rescaled to the covered part, which is all the sensor could hear.
    """
    dense = []
    for s, e, value in intervals:
        a, b = max(s, span[0]), min(e, span[1])
        if b > a:
            dense.append((a, b, value * (e - s) / (b - a)))
    out = []
    for w in windows:
        acc = 0.0
        for a, b, value in dense:
            overlap = min(b, w.b_ns) - max(a, w.a_ns)
            if overlap > 0:
                acc += value * overlap
        out.append(acc / (w.b_ns - w.a_ns))
    return out


def fit_counts(
    replay: Callable[[EstimatorParams], Sequence[float]],
    truth: Sequence[float],
    base: EstimatorParams,
    full_grid: bool = True,
) -> Fit:
    """Fit the site's numbers: `replay(params)` gives the estimate per truth window under `params`.

    With `full_grid`, inside threshold and holdover are searched too (a grid: every point is a
    replay); the site factor is always the least-squares ratio.
    """

    def devices(params: EstimatorParams) -> Sequence[float]:
        return replay(replace(params, site_factor=1.0))

    if full_grid:
        return fit_site(devices, truth, base)
    return fit_site(devices, truth, base, rssi_grid=(base.inside_rssi_dbm,), holdover_grid=(base.holdover_s,))


@dataclass(frozen=True, slots=True)
class Score:
    mae: float
    mape: float | None  # percent over windows with >= BUSY people; None without such windows
    windows: int
    busy_windows: int


def score(estimate: Sequence[float], truth: Sequence[float], busy: float = BUSY) -> Score:
    if not truth:
        raise CalibrationError("no windows to score: the truth and the capture do not overlap")
    pairs = list(zip(estimate, truth, strict=True))
    mae = statistics.fmean(abs(x - y) for x, y in pairs)
    heavy = [(x, y) for x, y in pairs if y >= busy]
    mape = 100 * statistics.fmean(abs(x - y) / y for x, y in heavy) if heavy else None
    return Score(mae, mape, len(pairs), len(heavy))
