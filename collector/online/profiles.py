"""Online profiles and their online events: the models and the checks (storage: collector/storage/profiles.py).

A profile is the marketing tool's pseudonymous id with attributes and segments; an online event is one
thing that profile did on the web, in the app or in an e-mail. Both arrive from the API
(collector/api/app.py) or a file (`footfall-collector profiles|events import`), are checked here with
`extra="forbid"` models, and are stored all or nothing: one bad item and the whole batch is refused,
each bad item named with its index or line and why (never its value: it may be personal data).

Online data meets the store visits only through the consent registry: a visit carries its device's
consent token, the registry maps the token to a profile id. `ProfileStore` (collector/storage/base.py) is
the storage seam, on the store's own connection; it never joins a profile without a consent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from collector.rows import BadRow
from footfall.mac import contains_mac
from footfall.times import too_far_ahead

ProfileId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
"""Pseudonymous ids from the marketing tool: no spaces, no '/', at most 128 characters."""
Label = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
Text = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
AttributeValue = bool | int | float | Text | None
Channel = Literal["web", "app", "email"]
OnlineEventType = Literal["page_view", "product_view", "add_to_cart", "purchase"]
CHANNELS: tuple[Channel, ...] = ("web", "app", "email")
EVENT_TYPES: tuple[OnlineEventType, ...] = ("page_view", "product_view", "add_to_cart", "purchase")


def _no_mac(text: str, what: str) -> str:
    # The privacy rule: a MAC (in a profile id or attribute by mistake) must not reach the database.
    if contains_mac(text):
        raise ValueError(f"{what} holds something shaped like a MAC address; not stored")
    return text


class Profile(BaseModel):
    """One online profile, replaced whole when sent again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ProfileId = Field(description="the marketing tool's pseudonymous profile id")
    attributes: dict[Label, AttributeValue] = Field(
        default_factory=dict, max_length=100, description="name -> string, number, boolean or null"
    )
    segments: tuple[Label, ...] = Field((), max_length=100, description="segment names")

    @field_validator("id")
    @classmethod
    def _id_not_a_mac(cls, value: str) -> str:
        return _no_mac(value, "id")

    @field_validator("attributes")
    @classmethod
    def _values_not_macs(cls, value: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
        for name, item in value.items():
            if isinstance(item, str):
                _no_mac(item, f"attribute {name}")
        return value

    @field_validator("segments")
    @classmethod
    def _sorted_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(value)))


class OnlineEvent(BaseModel):
    """One online event of a profile; `id` is the source's, so a re-sent event is stored once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ProfileId = Field(description="the source's event id (deduplication key)")
    profile_id: ProfileId
    at: AwareDatetime = Field(description="when it happened, ISO 8601 with an offset")
    channel: Channel
    type: OnlineEventType
    product: Text | None = Field(None, description="product id or SKU, if any")
    value: float | None = Field(None, ge=0, allow_inf_nan=False, description="amount, e.g. of a purchase")

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_validator("product")
    @classmethod
    def _product_not_a_mac(cls, value: str | None) -> str | None:
        return None if value is None else _no_mac(value, "product")


Record = TypeVar("Record", Profile, OnlineEvent)


# -- checking ------------------------------------------------------------------------------------------------
def reason(exc: ValidationError) -> str:
    """One line per pydantic error, field path and message only: the input value is never repeated."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors())


def check_batch(
    records: Sequence[Profile | OnlineEvent], now: datetime, where: Sequence[int]
) -> list[BadRow]:
    """What the models alone cannot see: an id twice in one batch, an event in the future.

    `where[i]` is how the caller names record i (its index or line) in the reasons.
    """
    bad: list[BadRow] = []
    first: dict[str, int] = {}
    for record, at in zip(records, where, strict=True):
        if record.id in first and isinstance(record, Profile):
            bad.append(BadRow(at, f"id: profile id also given at {first[record.id]}"))
        first.setdefault(record.id, at)
        if isinstance(record, OnlineEvent) and too_far_ahead(record.at, now):
            bad.append(BadRow(at, f"at: {record.at.isoformat()} is more than a day in the future"))
    return bad
