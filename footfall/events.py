"""The wire schema: every event a sensor publishes, declared once.

Sensors build these models and serialise them; the collector parses the same models with
`extra="forbid"` and strict types, so a payload either matches the schema exactly or is rejected with
a reason. The README's schema section is generated from these models (`footfall-collector schema`).

Event ids are deterministic (a hash of what identifies the event, never of a raw MAC), so replaying
the same capture, or re-sending after a crash, yields the same ids and the collector stores each once.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)

SCHEMA_VISIT: Final = "footfall.visit/1"
SCHEMA_COUNT: Final = "footfall.count/1"
SCHEMA_STATUS: Final = "footfall.status/1"
SCHEMA_VISIT_OPEN: Final = "footfall.visit_open/1"

# The ranges below are what both store backends hold (PostgreSQL INTEGER columns are 32-bit, SQLite's
# are 64-bit) and what a report can render: an event outside them is refused at the door, never half-stored.
INT32_MAX: Final = 2**31 - 1
TIME_MIN: Final = datetime(2000, 1, 1, tzinfo=UTC)
TIME_MAX: Final = datetime(2100, 1, 1, tzinfo=UTC)
"""The absolute window of every wire timestamp, [TIME_MIN, TIME_MAX); the collector narrows the future side
(`ingest.max_future_s`), and the API's date parameters are bounded by the same window."""
FIRST_DAY: Final = TIME_MIN.date()
LAST_DAY: Final = (TIME_MAX - timedelta(days=2)).date()
"""The days a report or an API query may ask for: a local day and the next stay inside the wire's window."""
MAX_SECONDS: Final = 366 * 86_400.0  # a dwell or an uptime longer than a year is a bug, not a visit
MAX_PEOPLE: Final = 1_000_000.0

# No C0/C1 control characters (NUL included: PostgreSQL TEXT cannot hold it), no bidirectional overrides,
# embeddings, isolates or marks (they make a log line or a report read differently from what it holds).
_NO_CONTROL = r"\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
Text = Annotated[str, StringConstraints(pattern=f"^[^{_NO_CONTROL}]*$")]
"""Free text (versions, sources): printable only."""

NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
HEX_ID_PATTERN: Final = r"^(?:[0-9a-f]{8}){1,8}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
"""Store and sensor names: they become MQTT topic levels, so no '/', '+', '#' or spaces."""

COLLECTOR_LEVELS: Final = frozenset({"control", "trigger", "ack"})
"""Topic levels under `<prefix>/<store>/` that only the collector writes (privacy control, real-time triggers,
store acknowledgements): never a sensor's name, or the sensor's own `<sensor>/#` grant would cover them."""


def _not_reserved(name: str) -> str:
    if name.lower() in COLLECTOR_LEVELS:
        reserved = ", ".join(sorted(COLLECTOR_LEVELS))
        raise ValueError(f"{name!r} is a topic level the collector owns ({reserved}): not a sensor name")
    return name


SensorName = Annotated[Name, AfterValidator(_not_reserved)]
"""A sensor's name: a `Name` that is none of the collector's own topic levels (COLLECTOR_LEVELS)."""

EpochId = Annotated[str, StringConstraints(pattern=r"^(?:[A-Za-z0-9][A-Za-z0-9_.:-]{0,63})?$")]
"""A salt epoch id (`20261124T0300Z`), or empty where no pseudonym is involved (statuses)."""

HexId = Annotated[str, StringConstraints(pattern=HEX_ID_PATTERN)]
"""Pseudonyms and ids: whole 32-bit words of lowercase hex, so never 12 hex digits (a bare MAC's shape)."""
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]
People = Annotated[float, Field(ge=0, le=MAX_PEOPLE)]


def _in_window(value: datetime, info: ValidationInfo) -> datetime:
    # Enforced on the wire (JSON, as the collector parses it), not when a sensor builds an event: a sensor
    # whose clock is wrong (a Pi booted without network time is in 1970) keeps running, and the collector
    # rejects those events as `invalid`, with the reason.
    if info.mode == "json" and not TIME_MIN <= value < TIME_MAX:
        raise ValueError(f"outside the wire's window [{TIME_MIN:%Y-%m-%d}, {TIME_MAX:%Y-%m-%d})")
    return value


Timestamp = Annotated[
    AwareDatetime,
    AfterValidator(_in_window),
    Field(
        description="UTC, ISO 8601",
        json_schema_extra={
            "formatMinimum": TIME_MIN.isoformat(),
            "formatExclusiveMaximum": TIME_MAX.isoformat(),
        },
    ),
]


class _Event(BaseModel):
    # allow_inf_nan=False: JSON's `Infinity`/`NaN` extensions are refused (a report cannot print them).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    event_id: HexId = Field(description="deterministic: the same capture replayed gives the same id")
    store: Name = Field(description="store id (also a topic level)")
    sensor: SensorName = Field(description="sensor id within the store (also a topic level)")
    epoch: EpochId = Field(description="salt epoch the pseudonyms in this event belong to")

    def to_json(self) -> bytes:
        # model_dump_json(by_alias=True, exclude_none=True).encode(), byte for byte: the model's own
        # serializer with the same defaults gives the bytes without the str round trip (half the time).
        return self.__pydantic_serializer__.to_json(self, by_alias=True, exclude_none=True)


VisitKind = Literal["visitor", "passerby", "fixed"]


class VisitEvent(_Event):
    """One visit of one estimated device, published when the visit closes."""

    schema_: Literal["footfall.visit/1"] = Field(
        SCHEMA_VISIT, alias="schema", description="schema name and version"
    )
    device: HexId = Field(description="pseudonym of the (estimated) device within the epoch")
    start: Timestamp
    end: Timestamp
    dwell_s: Seconds = Field(
        description="seconds from the visit's first frame to its end (a visitor's: its last frame plus the "
        "stay's expected unheard time)"
    )
    kind: VisitKind = Field(description="visitor (inside long enough), passerby, or fixed (till, PC, staff)")
    frames: Count = Field(
        description="probe requests heard during the visit, plus one per 5 s a connected device was heard"
    )
    addresses: Count = Field(description="distinct (pseudonymised) addresses the device used in this visit")
    randomized: bool = Field(description="the device used locally administered addresses")
    rssi_max: int | None = Field(
        None, ge=-127, le=20, description="strongest signal, dBm (absent without RSSI)"
    )
    rssi_median: int | None = Field(None, ge=-127, le=20, description="median signal, dBm")
    visit_no: int = Field(
        ge=1, le=INT32_MAX, description="1 for the device's first visit in this epoch, 2 for the next..."
    )
    consent: HexId | None = Field(None, description="stable consent token, only for consented devices")
    connected: bool | None = Field(
        None,
        description="the device was connected to a store network during the visit"
        " (absent: the sensor listens to no store network)",
    )

    model_config = ConfigDict(populate_by_name=True)


class VisitOpenEvent(_Event):
    """A consented device was just heard inside: the person is in the store now (consent mode only).

    Published once per visit, at the first frame at or above `presence.visitor_rssi`, so the
    collector's real-time trigger can act while the person is still there. The collector does not
    store it (the closing `footfall.visit/1` is the record); it only feeds the trigger.
    """

    schema_: Literal["footfall.visit_open/1"] = Field(
        SCHEMA_VISIT_OPEN, alias="schema", description="schema name and version"
    )
    device: HexId = Field(description="pseudonym of the (estimated) device within the epoch")
    start: Timestamp = Field(description="first frame of the visit, UTC")
    at: Timestamp = Field(description="first frame at the inside signal level, UTC")
    consent: HexId = Field(description="the device's stable consent token")

    # Built when first used (a consented visit), not at import: a replay without consents never does.
    model_config = ConfigDict(populate_by_name=True, defer_build=True)


class CountEvent(_Event):
    """Per-interval figures: the estimates and the raw counts they came from."""

    schema_: Literal["footfall.count/1"] = Field(
        SCHEMA_COUNT, alias="schema", description="schema name and version"
    )
    start: Timestamp = Field(description="interval start, UTC")
    end: Timestamp = Field(description="interval end (exclusive), UTC")
    present: People = Field(description="estimated people inside, time-averaged over the interval")
    present_low: People | None = Field(
        None, description="lower end of the 80 % interval of `present` (absent: no interval)"
    )
    present_high: People | None = Field(
        None, description="upper end of the 80 % interval of `present` (absent: no interval)"
    )
    visitors: Count = Field(description="visits that qualified as visitor visits in this interval")
    passersby: Count = Field(description="visits that closed as passerby visits in this interval")
    visitors_est: People | None = Field(
        None,
        description="people behind `visitors`: visitors x presence.visitor_factor (a site's, or the default)",
    )
    passersby_est: People | None = Field(
        None,
        description="people who passed: street scan bursts x presence.passerby_factor (see presence.street_rssi)",
    )
    visitors_present: Count = Field(description="visitor visits open at the end of the interval")
    new_visitors: Count = Field(description="visitors whose first visit in the epoch this is")
    returning_visitors: Count = Field(description="visitors seen on an earlier visit in the same epoch")
    fixed_devices: Count = Field(0, description="devices classed as fixed/staff, reported apart")
    frames: Count = Field(
        description="probe requests decoded in the interval, plus one per 5 s per connected device heard"
    )
    frames_randomized: Count = Field(description="...of them from locally administered (random) addresses")
    addresses: Count = Field(description="distinct addresses heard (the naive count)")
    addresses_randomized: Count = Field(description="...of them locally administered")
    devices: Count = Field(description="estimated distinct devices heard")
    connected: Count | None = Field(
        None,
        description="devices connected to a store network in the interval, fixed ones left out"
        " (absent: the sensor listens to no store network)",
    )

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _interval_holds_present(self) -> CountEvent:
        low, high = self.present_low, self.present_high
        if (low is None) != (high is None):
            raise ValueError("present_low and present_high come together or not at all")
        if low is not None and high is not None and not low <= self.present <= high:
            raise ValueError(
                f"need present_low <= present <= present_high, got {low}, {self.present}, {high}"
            )
        return self


class StatusEvent(_Event):
    """Sensor health, retained; the broker publishes the `offline` form as the sensor's last will."""

    schema_: Literal["footfall.status/1"] = Field(
        SCHEMA_STATUS, alias="schema", description="schema name and version"
    )
    state: Literal["online", "offline"] = Field(description="offline is also the broker-sent last will")
    at: Timestamp = Field(description="when the status was made, UTC")
    version: Text = Field(max_length=32, description="footfall version of the sensor")
    build: Literal["compiled", "pure", "mixed"] | None = Field(
        None, description="the sensor's hot path: compiled by mypyc, pure Python, or a stale mix of both"
    )
    uptime_s: Seconds = Field(0, description="seconds since the sensor started")
    source: Text = Field("", max_length=256, description="interface or capture being read")
    frames: Count = Field(0, description="frames read since start")
    probe_requests: Count = Field(0, description="...of them valid probe requests")
    decode_errors: dict[Annotated[Text, StringConstraints(max_length=64)], Count] = Field(
        default_factory=dict, max_length=64, description="malformed frames by reason"
    )
    interface: Text | None = Field(None, max_length=15, description="live capture: the monitor interface")
    channel: int | None = Field(None, ge=1, le=233, description="live capture: the channel tuned now")
    frames_per_s: float | None = Field(
        None, ge=0, le=1e9, description="frames captured per second since the last status"
    )
    drops: Count | None = Field(None, description="frames lost so far, by the kernel and the sensor")
    spool_depth: Count | None = Field(None, description="events waiting in the spool for the broker")
    signal_ref_dbm: float | None = Field(
        None, ge=-127, le=20, description="the signal scale the sensor learned from what it hears (dBm)"
    )
    signal_offset_db: float | None = Field(
        None, ge=-150, le=150, description="...how far it sits from the scale the thresholds were chosen on"
    )
    signal_drift: bool = Field(
        False, description="the offset passed estimator.scale.drift_db: sensor moved, antenna changed?"
    )

    # Built when first used: a replay never makes a status, so its start-up does not build the schema.
    model_config = ConfigDict(populate_by_name=True, defer_build=True)


Event = VisitEvent | CountEvent | StatusEvent | VisitOpenEvent
EVENT_KINDS: dict[str, type[_Event]] = {
    "visit": VisitEvent,
    "count": CountEvent,
    "status": StatusEvent,
    "visit_open": VisitOpenEvent,
}
"""Topic suffix → model: the one table that ties topics to schemas (the two below are derived from it)."""

SCHEMA_MODELS: dict[str, type[_Event]] = {
    model.model_fields["schema_"].default: model for model in EVENT_KINDS.values()
}
"""Schema name → model."""
KIND_OF_SCHEMA: dict[str, str] = {
    model.model_fields["schema_"].default: kind for kind, model in EVENT_KINDS.items()
}
"""Schema name → topic suffix."""


def event_id(*parts: object) -> str:
    """A deterministic 128-bit id from the fields that identify an event."""
    text = "\x1f".join(map(str, parts))  # (map, not a generator: 40 % less time, one per event)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def utc(ts_ns: int) -> datetime:
    """Frame time (UTC ns) → aware datetime, truncated to microseconds."""
    return datetime.fromtimestamp(ts_ns // 1000 / 1_000_000, tz=UTC)


def model_for_schema(schema: str) -> type[_Event] | None:
    return SCHEMA_MODELS.get(schema)


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every event, by schema name (used for the README and by consumers)."""
    schemas = {}
    for name, model in SCHEMA_MODELS.items():
        schema = TypeAdapter(model).json_schema(by_alias=True, mode="serialization")
        # `schema` has a default for the producer's convenience, but every payload must carry it.
        schema["required"] = ["schema", *[r for r in schema.get("required", []) if r != "schema"]]
        for prop in schema["properties"].values():
            # A dict's key constraint becomes patternProperties, which leaves other keys free: close it,
            # as the model does (`decode_errors` keys are printable text too).
            if "patternProperties" in prop:
                prop["additionalProperties"] = False
        schemas[name] = schema
    return schemas


def topic_kind(event: Event) -> str:
    """The topic suffix an event is published under (`visit`, `count`, `status`)."""
    return KIND_OF_SCHEMA[event.schema_]


def topic_for(prefix: str, event: Event) -> str:
    return f"{prefix}/{event.store}/{event.sensor}/{topic_kind(event)}"
