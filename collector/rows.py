"""A refused input row: where it was and why, the same for a CSV line, a JSON Lines line and a list index."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int  # the CSV or JSON Lines line, or the index in a list
    reason: str  # never the value: it may be personal data
