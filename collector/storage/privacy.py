"""The store's privacy part, as an interface: the opt-out and consent registry, and retention.

`PrivacyStore` is what collector/privacy/ needs; `Store` (collector/storage/base.py) includes it, and both
backends implement it with the one text of its SQL (collector/storage/privacy_sql.py). The registry holds
tokens, never a MAC address (they are tokenised before they get here). Every change to it bumps one
counter, the revision the control message carries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

ListName = Literal["optout", "consent"]
LISTS: tuple[ListName, ...] = ("optout", "consent")


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One opt-out or consent: the device's token, never its MAC."""

    list: ListName
    token: str
    profile: str  # "" when the source gave none (opt-outs may be anonymous)
    at: datetime  # aware: when the person opted out or consented
    source: str


class PutOutcome(StrEnum):
    ADDED = "added"
    UPDATED = "updated"  # same token, another profile, time or source: the newer record wins
    UNCHANGED = "unchanged"
    OPTED_OUT = "opted_out"  # a consent for an opted-out device: refused until the opt-out is removed


@dataclass(frozen=True, slots=True)
class PutResult:
    outcomes: tuple[PutOutcome, ...]  # one per entry, in order
    applied: bool  # False: strict and something was refused, so nothing was written
    consents_withdrawn: int  # consents removed because the same device opted out
    visit_tokens_cleared: int  # stored visits that lost the consent token of a device now opted out
    revision: int


@dataclass(frozen=True, slots=True)
class RemoveResult:
    removed: int
    missing: int  # tokens that were not registered
    visit_tokens_cleared: int  # stored visits that lost a withdrawn consent token
    revision: int


@dataclass(frozen=True, slots=True)
class PrivacySets:
    """What the control message publishes: tokens only, sorted."""

    revision: int
    optout: tuple[str, ...]
    consent: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConsentedVisit:
    """A stored visit joined to the profile that consented for its device."""

    profile: str
    sensor: str
    start: datetime
    end: datetime
    dwell_s: float
    kind: str
    connected: bool = False  # the device was connected to a store network (its consent: the portal's MAC)


@dataclass(frozen=True, slots=True)
class RetentionCutoffs:
    """Rows that ended before each of these instants lose what the field names (aware UTC)."""

    pseudonyms: datetime
    consents: datetime
    visits: datetime


@dataclass(frozen=True, slots=True)
class RetentionCounts:
    visits_deleted: int = 0
    pseudonyms_dropped: int = 0  # visits whose device pseudonym became a random label
    devices_relabelled: int = 0  # (store, epoch, device) groups: one fresh label each
    consent_tokens_cleared: int = 0
    dead_letters_deleted: int = 0

    def items(self) -> list[tuple[str, int]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    @property
    def changed(self) -> bool:
        return any(n for _, n in self.items())


class PrivacyStore(Protocol):
    def registry_put(
        self, entries: Sequence[RegistryEntry], now: datetime, *, strict: bool = False
    ) -> PutResult:
        """Add or update entries; an opt-out withdraws the device's consent and its tokens on visits."""
        ...

    def registry_remove(self, list_: ListName, tokens: Sequence[str]) -> RemoveResult:
        """Remove entries; removing a consent also clears its token from stored visits."""
        ...

    def registry_entries(self, list_: ListName) -> list[RegistryEntry]:
        """The list, oldest record first."""
        ...

    def registry_sets(self) -> PrivacySets: ...

    def registry_revision(self) -> int:
        """The change counter alone (cheap: polled by the service)."""
        ...

    def consented_visits(self, store: str, start: datetime, end: datetime) -> list[ConsentedVisit]:
        """Visits of `store` started in [start, end) whose consent token belongs to a registered consent."""
        ...

    def apply_retention(
        self, cutoffs: RetentionCutoffs, *, dry_run: bool, label: Callable[[int], str]
    ) -> RetentionCounts:
        """Delete and anonymise per `cutoffs`; `label(n)` gives a fresh random label of n bytes, in hex."""
        ...
