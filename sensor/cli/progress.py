"""Progress of long work (replay, calibration, benchmarks) on the terminal, and nothing anywhere else.

A bar is drawn on stderr only when stderr is a terminal and the caller did not ask for quiet; it
appears only once the work has run for `DELAY_S`, so a small capture prints nothing but its summary.
tqdm draws it (rate, ETA, the terminal's width); the records are counted in batches so a frame costs
one addition, not a call into the bar.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

from sensor.decode.frames import CaptureRecord

# Shorter work shows no bar at all; FOOTFALL_PROGRESS_DELAY_S changes it (the tests draw at once).
DELAY_S = float(os.environ.get("FOOTFALL_PROGRESS_DELAY_S", "1.0"))
_BATCH = 4096  # records between two updates of the bar
_RECORD_OVERHEAD = 16  # a pcap record header: the bar counts the bytes of the file it came from

T = TypeVar("T")


def wanted(quiet: bool, stream: IO[str] | None = None) -> bool:
    """A bar is drawn when not quiet and the stream it draws on (stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    return not quiet and stream.isatty()


def _bar(total: float | None, unit: str, desc: str, stream: IO[str] | None, **options: Any) -> Any:
    from tqdm import tqdm  # only where a bar is drawn

    file = sys.stderr if stream is None else stream
    try:
        columns = os.get_terminal_size(file.fileno()).columns
    except (OSError, ValueError):
        columns = 0
    # A terminal that reports no size (a bare pty) gets 80 x 24, not a hidden bar.
    width: dict[str, Any] = {"dynamic_ncols": True} if columns else {"ncols": 80, "nrows": 24}
    return tqdm(total=total, unit=unit, desc=desc, file=file, delay=DELAY_S, leave=False, **width, **options)


def records(
    source: Iterable[CaptureRecord], total_bytes: int, *, show: bool, stream: IO[str] | None = None
) -> Iterator[CaptureRecord]:
    """`source` unchanged; with `show`, a bar of bytes read (rate, ETA) and frames (count, frames/s).

    Without a bar the records are not passed through a generator: that would cost an interpreted step
    per frame, a tenth of a compiled replay's time.
    """
    return _drawn(source, total_bytes, stream) if show else iter(source)


def _drawn(
    source: Iterable[CaptureRecord], total_bytes: int, stream: IO[str] | None
) -> Iterator[CaptureRecord]:
    bar = _bar(total_bytes, "B", "replay", stream, unit_scale=True, unit_divisor=1024)
    frames = pending = 0
    try:
        for record in source:
            pending += _RECORD_OVERHEAD + len(record.data)
            frames += 1
            if not frames % _BATCH:
                _advance(bar, pending, frames)
                pending = 0
            yield record
        _advance(bar, pending, frames)
    finally:
        bar.close()


def _advance(bar: Any, read: int, frames: int) -> None:
    elapsed = bar.format_dict["elapsed"] or 1e-9
    bar.set_postfix_str(f"{frames:,} frames, {frames / elapsed:,.0f} frames/s", refresh=False)
    bar.update(read)


def count(
    items: Iterable[T],
    *,
    show: bool,
    unit: str,
    desc: str,
    total: int | None = None,
    stream: IO[str] | None = None,
) -> Iterator[T]:
    """`items` unchanged; with `show`, a bar counting them (for work measured in replays or runs)."""
    if not show:
        yield from items
        return
    bar = _bar(total, unit, desc, stream, unit_scale=True)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()


class Counter:
    """A bar advanced by hand, for work that is not one loop (each call to `add` moves it on)."""

    def __init__(self, *, show: bool, unit: str, desc: str, stream: IO[str] | None = None) -> None:
        self._bar = _bar(None, unit, desc, stream, unit_scale=True) if show else None

    def add(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
