"""When an opt-out or consent was given, as a CSV export or an API call spells it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from collector.privacy.registry import PrivacyError
from footfall.times import too_far_ahead


def parse_time(text: str, now: datetime) -> datetime:
    """ISO 8601 (naive = UTC) or Unix seconds; at most a day ahead of `now` (a clock or column mix-up)."""
    value = text.strip()
    try:
        when = (
            datetime.fromtimestamp(float(value), UTC)
            if re.fullmatch(r"\d{9,11}(?:\.\d+)?", value)
            else datetime.fromisoformat(value)
        )
    except (ValueError, OverflowError):
        raise PrivacyError(f"timestamp {value[:40]!r} is neither ISO 8601 nor Unix seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if too_far_ahead(when, now):
        raise PrivacyError(f"timestamp {when.isoformat()} is in the future")
    return when.astimezone(UTC)
