"""Retention: what the collector deletes or anonymises, and when, and the account of what it did.

Per the `retention:` config section, against visit end times:
- after `pseudonyms_h` (24 h) a visit's device pseudonym is replaced by a random label, drawn fresh from
  the OS and kept nowhere else, so not even the store seed can tie the row to a device again. The label
  is one per (store, epoch, device) group and the group's younger visits get it at the same time, so
  the report's repeat-visitor figure (visits per device within an epoch, which `visit_no` shows anyway)
  stays right, while nothing links the group to any other epoch or to a MAC. A consent token is cleared
  at the same moment unless the device's consent still stands. Rejected payload samples go too;
- after `consent_days` (396) consent tokens are cleared even where consent stands;
- after `visits_days` (396, 13 months) visits are deleted;
- online events (from the marketing tool) older than `online_days`, or `visits_days` when unset, are
  deleted, when `run` is given the profile storage (the service does);
- count intervals (the aggregates) and sensor statuses are kept.
A withdrawn consent or a new opt-out clears the device's token from stored visits at once (collector/storage/privacy_sql.py).

`run` takes the time as an argument, logs one line at INFO and returns the figures; the service calls it
every `interval_h`, `footfall-collector retention run [--dry-run]` on demand.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.config import RetentionConfig
from collector.storage.base import ProfileStore
from collector.storage.privacy import PrivacyStore, RetentionCounts, RetentionCutoffs

log = logging.getLogger(__name__)

_WHAT = {
    "visits_deleted": "visits deleted (ended before {visits})",
    "pseudonyms_dropped": "visits lost their pseudonym (ended before {pseudonyms})",
    "devices_relabelled": "devices got a random label",
    "consent_tokens_cleared": "consent tokens cleared",
    "dead_letters_deleted": "rejected payload samples deleted",
}
"""Counter → what it means, for the account; the one table the text and the JSON are made from."""


def random_label(n: int) -> str:
    """n random bytes in hex, from the kernel: unrelated to any salt, MAC or other label."""
    return os.urandom(n).hex()


def cutoffs(config: RetentionConfig, now: datetime) -> RetentionCutoffs:
    if now.utcoffset() is None:
        raise ValueError(f"naive time {now.isoformat()}: retention needs an aware time")
    return RetentionCutoffs(
        pseudonyms=now - timedelta(hours=config.pseudonyms_h),
        consents=now - timedelta(days=config.consent_days),
        visits=now - timedelta(days=config.visits_days),
    )


def online_cutoff(config: RetentionConfig, now: datetime) -> datetime:
    """Online events that happened before this are deleted."""
    days = config.online_days if config.online_days is not None else config.visits_days
    return now - timedelta(days=days)


@dataclass(frozen=True, slots=True)
class RetentionReport:
    at: datetime
    dry_run: bool
    cutoffs: RetentionCutoffs
    counts: RetentionCounts
    online_before: datetime | None = None  # None: online events were not part of this run
    online_events_deleted: int = 0

    def line(self) -> str:
        when = {
            name: getattr(self.cutoffs, name).astimezone(UTC).isoformat(timespec="seconds")
            for name in ("pseudonyms", "consents", "visits")
        }
        done = "; ".join(f"{n} {_WHAT[name].format(**when)}" for name, n in self.counts.items())
        if self.online_before is not None:
            before = self.online_before.astimezone(UTC).isoformat(timespec="seconds")
            done += f"; {self.online_events_deleted} online events deleted (before {before})"
        head = "retention dry run, nothing changed" if self.dry_run else "retention"
        return f"{head} at {self.at.astimezone(UTC).isoformat(timespec='seconds')}: {done}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": self.at.astimezone(UTC).isoformat(),
            "dry_run": self.dry_run,
            "cutoffs": {
                name: getattr(self.cutoffs, name).astimezone(UTC).isoformat()
                for name in ("pseudonyms", "consents", "visits")
            },
            "counts": dict(self.counts.items()),
        }
        if self.online_before is not None:
            out["cutoffs"]["online_events"] = self.online_before.astimezone(UTC).isoformat()
            out["counts"]["online_events_deleted"] = self.online_events_deleted
        return out


def run(
    store: PrivacyStore,
    config: RetentionConfig,
    now: datetime,
    *,
    dry_run: bool = False,
    label: Callable[[int], str] = random_label,
    profiles: ProfileStore | None = None,
) -> RetentionReport:
    """Apply retention as of `now` (or, with `dry_run`, say what it would do) and log the account.

    With `profiles`, online events older than the online cutoff go too.
    """
    limits = cutoffs(config, now)
    counts = store.apply_retention(limits, dry_run=dry_run, label=label)
    report = RetentionReport(now, dry_run, limits, counts)
    if profiles is not None:
        before = online_cutoff(config, now)
        deleted = profiles.delete_online_events(before, dry_run=dry_run)
        report = replace(report, online_before=before, online_events_deleted=deleted)
    log.info("%s", report.line())
    return report
