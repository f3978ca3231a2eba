"""Poison isolation: one event the store refuses never holds back the batch it came in.

A batch the store refuses as data (`StoreRefused`: a value past a column's range, a NUL PostgreSQL's
TEXT cannot hold, a constraint; or any unmapped exception from the driver) is split in halves and each
half tried again, down to single events: the good ones are stored, each refused one is returned with its
reason, for the Ingestor to keep as a `store_refused` dead letter and acknowledge. Halving costs about
2·k·log2(n) transactions for k poisoned events in a batch of n, instead of n for one-by-one.

An error that is not about the data (the database unreachable, locked, out of disk) stops the split
where it happened: what was stored stays stored, the rest is returned as `left`, to retry as a whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from collector.storage.base import StoreError, StoreRefused
from footfall.events import Event

log = logging.getLogger(__name__)

Add = Callable[[Sequence[Event]], int]


@dataclass(slots=True)
class Isolated:
    """What became of a batch: stored, refused one by one, or left for a retry after `error`."""

    inserted: int = 0
    done: int = 0  # leading events of the batch with an outcome (stored, duplicate or refused)
    refused: list[tuple[Event, str]] = field(default_factory=list)
    error: StoreError | None = None  # set when the rest of the batch (from `done`) is left to retry


def store_isolating(add: Add, batch: Sequence[Event]) -> Isolated:
    """Store `batch`, isolating the events the store refuses; never raises."""
    result = Isolated()
    _store(add, batch, result)
    return result


def _store(add: Add, part: Sequence[Event], result: Isolated) -> None:
    if result.error is not None or not part:
        return
    try:
        result.inserted += add(part)
    except StoreRefused as exc:
        refusal = str(exc)
    except StoreError as exc:
        result.error = exc
        return
    except Exception as exc:  # an exception the backend did not map: the data is suspect, not the store
        log.exception("unexpected error storing %d events; isolating", len(part))
        refusal = f"{type(exc).__name__}: {exc}"
    else:
        result.done += len(part)
        return
    if len(part) == 1:
        result.refused.append((part[0], refusal))
        result.done += 1
        return
    half = len(part) // 2
    _store(add, part[:half], result)
    _store(add, part[half:], result)
