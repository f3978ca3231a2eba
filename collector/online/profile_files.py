"""Bulk files of profiles or online events: CSV (a header line) or JSON lines, checked as a whole.

Every bad row is named with its line number and why (never its value: it may be personal data), so the
caller can refuse the whole file and a fixed file can simply be imported again.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TextIO

from pydantic import ValidationError

from collector.online.profiles import OnlineEvent, Profile, Record, check_batch, reason
from collector.rows import BadRow


@dataclass(frozen=True, slots=True)
class Parsed(Generic[Record]):
    records: tuple[Record, ...]
    lines: tuple[int, ...]
    bad: tuple[BadRow, ...]


def _csv_profile(row: dict[str, str]) -> dict[str, Any]:
    """`id`, optional `segments` (separated by ';'), every other non-empty column an attribute."""
    out: dict[str, Any] = {"id": row.get("id", "")}
    segments = row.get("segments", "")
    if segments.strip():
        out["segments"] = [s.strip() for s in segments.split(";") if s.strip()]
    out["attributes"] = {k: v for k, v in row.items() if k not in ("id", "segments") and v != ""}
    return out


def _csv_event(row: dict[str, str]) -> dict[str, Any]:
    """The model's fields as columns; an empty cell is an absent value."""
    return {k: v for k, v in row.items() if v != ""}


_FROM_CSV: dict[type[Any], Callable[[dict[str, str]], dict[str, Any]]] = {
    Profile: _csv_profile,
    OnlineEvent: _csv_event,
}


def _csv_rows(stream: TextIO) -> Iterator[tuple[int, dict[str, str] | str]]:
    reader = csv.reader(stream)
    header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
    if not header:
        yield 1, "empty file: a header line is required"
        return
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield reader.line_num, f"{len(row)} fields, the header has {len(header)}"
        else:
            yield reader.line_num, dict(zip(header, (c.strip() for c in row), strict=True))


def _jsonl_rows(stream: TextIO) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not JSON: {exc.msg} at column {exc.colno}"
            continue
        yield number, value if isinstance(value, dict) else f"a JSON {type(value).__name__}, not an object"


def read_records(
    stream: TextIO, model: type[Record], fmt: Literal["csv", "jsonl"], now: datetime
) -> Parsed[Record]:
    """Every record of a CSV (header line) or JSON-lines file, checked; bad ones with their line number."""
    records: list[Record] = []
    lines: list[int] = []
    bad: list[BadRow] = []
    rows = _csv_rows(stream) if fmt == "csv" else _jsonl_rows(stream)
    for line, row in rows:
        if isinstance(row, str):
            bad.append(BadRow(line, row))
            continue
        try:
            records.append(model.model_validate(_FROM_CSV[model](row) if fmt == "csv" else row))
            lines.append(line)
        except ValidationError as exc:
            bad.append(BadRow(line, reason(exc)))
    bad += check_batch(records, now, lines)
    bad.sort(key=lambda b: b.line)
    return Parsed(tuple(records), tuple(lines), tuple(bad))
