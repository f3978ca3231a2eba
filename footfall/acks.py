"""Store acknowledgements: the collector tells a sensor which of its events are stored, end to end.

The broker's PUBACK only says the broker has an event; a broker killed before its next autosave loses
what it acknowledged. So a sensor's spool keeps an event until the collector says its outcome is
durable: stored (or already stored, a re-send), or kept as a dead letter. The collector publishes these
ids, batched, on `<prefix>/<store>/ack/<sensor>` (QoS 1), a level only the collector may write
(footfall.events.COLLECTOR_LEVELS and the generated ACL); the sensor subscribes to its own and deletes
what is acknowledged. Losing an acknowledgement costs a re-send, never an event: the sensor sends again
what is not acknowledged after every reconnection and restart, and the collector stores by event_id
once and acknowledges a duplicate again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from footfall.events import HexId

SCHEMA_ACK: Final = "footfall.ack/1"
MAX_IDS: Final = 1000  # ids per message: 34 kB of JSON, far below the broker's packet limit


class StoreAck(BaseModel):
    """The event ids of one sensor whose outcome the collector has made durable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_: Literal["footfall.ack/1"] = Field(SCHEMA_ACK, alias="schema")
    ids: list[HexId] = Field(max_length=MAX_IDS)


def ack_topic(prefix: str, store: str, sensor: str) -> str:
    return f"{prefix}/{store}/ack/{sensor}"


def ack_payloads(ids: Sequence[str]) -> Iterator[bytes]:
    """The messages that acknowledge `ids`, at most MAX_IDS each."""
    for lo in range(0, len(ids), MAX_IDS):
        yield StoreAck(ids=list(ids[lo : lo + MAX_IDS])).model_dump_json(by_alias=True).encode()


def parse_ack(payload: bytes) -> list[str] | None:
    """The ids of an acknowledgement, or None if the payload is not one."""
    try:
        return StoreAck.model_validate_json(payload).ids
    except ValidationError:
        return None
