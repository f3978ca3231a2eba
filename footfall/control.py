"""The control message: the opt-out and consent sets of one store, from the collector to its sensors.

Retained, on `<prefix>/<store>/control/privacy`, schema `footfall.privacy/1`; tokens only (footfall/tokens.py),
no MAC, no profile id, no timestamp. A wire model like the events (footfall/events.py): the collector
builds it, a sensor checks it (sensor/keys/consent.py) and refuses a bad one with a counted reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from footfall.events import Name

SCHEMA_CONTROL: Final = "footfall.privacy/1"

Token = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
"""A device token: 32 lowercase hex digits (128 bits), never 12 (a bare MAC's shape)."""


def control_topic(prefix: str, store: str) -> str:
    """Where the collector publishes a store's opt-out and consent sets (retained)."""
    return f"{prefix}/{store}/control/privacy"


class ControlMessage(BaseModel):
    """The opt-out and consent sets of one store, as the collector publishes them (retained)."""

    # Built when the first control message is parsed, not at import (a replay to JSON lines never parses one).
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, populate_by_name=True, defer_build=True
    )

    schema_: Literal["footfall.privacy/1"] = Field(SCHEMA_CONTROL, alias="schema")
    store: Name
    revision: int = Field(ge=0, description="the registry's change counter: higher is newer")
    issued: datetime = Field(description="UTC, ISO 8601")
    key_id: str = Field(
        pattern=r"^[0-9a-f]{16}$", description="fingerprint of the token key (TokenKey.key_id)"
    )
    optout: tuple[Token, ...] = Field(description="tokens of opted-out devices: dropped on arrival")
    consent: tuple[Token, ...] = Field(description="tokens of consented devices: tagged on their visits")

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
