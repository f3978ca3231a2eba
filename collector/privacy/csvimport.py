"""A CSV export of opt-outs or consents (captive portal, CRM): read by header, each bad row named by its line."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from collector.privacy.registry import PrivacyError, entry
from collector.privacy.timestamps import parse_time
from collector.rows import BadRow
from collector.storage.privacy import ListName, RegistryEntry
from footfall.tokens import TokenKey

CSV_COLUMNS = ("profile_id", "mac", "timestamp", "source")


@dataclass(frozen=True, slots=True)
class CsvRows:
    """A CSV export, checked: good entries with their line numbers, and bad rows with why."""

    entries: tuple[RegistryEntry, ...]
    lines: tuple[int, ...]
    bad: tuple[BadRow, ...]
    ignored_columns: tuple[str, ...]


def read_csv(list_: ListName, stream: TextIO, key: TokenKey, now: datetime, default_source: str) -> CsvRows:
    """Rows `profile_id,mac,timestamp,source` under a header (any order; other columns are ignored)."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise PrivacyError("empty file: a header line profile_id,mac,timestamp,source is required")
    names = [h.strip().lower().lstrip("\ufeff") for h in header]
    missing = [c for c in CSV_COLUMNS if c not in names]
    if missing:
        raise PrivacyError(
            f"line 1: header lacks {', '.join(missing)} (expected {','.join(CSV_COLUMNS)}); is it there?"
        )
    where = {c: names.index(c) for c in CSV_COLUMNS}
    entries: list[RegistryEntry] = []
    lines: list[int] = []
    bad: list[BadRow] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            bad.append(BadRow(line, f"{len(row)} fields, the header has {len(names)}"))
            continue
        try:
            at = parse_time(row[where["timestamp"]], now)
            made = entry(
                list_,
                key,
                mac=row[where["mac"]],
                profile=row[where["profile_id"]],
                at=at,
                source=row[where["source"]] or default_source,
            )
        except PrivacyError as exc:
            bad.append(BadRow(line, str(exc)))
            continue
        entries.append(made)
        lines.append(line)
    ignored = tuple(n for n in names if n not in CSV_COLUMNS)
    return CsvRows(tuple(entries), tuple(lines), tuple(bad), ignored)
