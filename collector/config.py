"""The collector's configuration: one small model per YAML section, mirroring config/collector.yaml."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from footfall.broker import MqttSection
from footfall.configfile import Section, load_model, validate_model
from footfall.events import Name


class MqttConfig(MqttSection):
    """The shared MQTT section (footfall/broker.py) plus the collector's persistent, possibly shared, session."""

    client_id: str = Field(
        "footfall-collector",
        max_length=64,
        description="must be stable: the broker keeps the persistent session under this id",
    )
    connect_timeout_s: float = Field(
        10, gt=0, le=600, description="at start, fail if the broker is not up by then"
    )
    session_expiry_s: int = Field(
        3600,
        ge=0,
        le=4_294_967_295,
        description="how long the broker queues events for a stopped collector; 0 = clean session",
    )
    share_group: str | None = Field(
        None,
        pattern=r"^[^/#+$]{1,64}$",
        description="MQTT 5 shared subscription group: collectors in one group share the events",
    )

    @model_validator(mode="after")
    def _session_needs_client_id(self) -> MqttConfig:
        if self.session_expiry_s and not self.client_id:
            raise ValueError("a persistent session (session_expiry_s > 0) needs a non-empty client_id")
        return self


class StoreConfig(Section):
    backend: Literal["sqlite", "postgresql"] = Field("sqlite", description="sqlite (default) or postgresql")
    path: Path = Field(
        Path("footfall.db"), description="SQLite file; a relative path is from the working dir"
    )
    dsn_file: Path | None = Field(
        None,
        description="postgresql: file holding the connection string (a credential: keeps the password out of the YAML)",
    )

    @model_validator(mode="after")
    def _dsn_for_postgresql(self) -> StoreConfig:
        if self.backend == "postgresql" and self.dsn_file is None:
            raise ValueError("backend postgresql needs store.dsn_file (a file holding the connection string)")
        return self


class IngestConfig(Section):
    max_payload_bytes: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)
    batch_size: int = Field(
        1000, ge=1, le=100_000, description="store accepted events in batches this big..."
    )
    flush_interval_s: float = Field(1.0, gt=0, le=60, description="...or at least this often")
    dead_letter_keep: int = Field(100, ge=0, le=100_000, description="rejected payloads kept as samples")
    rejection_log_interval_s: float = Field(
        10.0, ge=0, le=3600, description="log each rejection reason at most once per this many seconds"
    )
    stats_log_interval_s: float = Field(60.0, gt=0, le=86_400, description="log running counts this often")


class ReportConfig(Section):
    timezone: str = Field("Europe/Paris", description="the store's IANA time zone: hours and dates are local")
    dwell_edges_min: list[float] = Field(
        [5, 15, 30, 60], min_length=1, max_length=20, description="visitor dwell-time bucket edges, minutes"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
        return value

    @field_validator("dwell_edges_min")
    @classmethod
    def _increasing(cls, edges: list[float]) -> list[float]:
        if edges[0] <= 0:
            raise ValueError(f"the first edge must be above 0 minutes, got {edges[0]:g}")
        for low, high in pairwise(edges):
            if high <= low:
                raise ValueError(f"edges must increase, got {high:g} after {low:g}")
        return edges

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class PrivacyConfig(Section):
    """Opt-outs and consents (collector/privacy/registry.py): the token key and where the control message goes."""

    token_key_file: Path | None = Field(
        None,
        description="token key (footfall-collector tokens init), 0600; the same file goes on every sensor",
    )
    stores: list[Name] = Field(
        [], max_length=10_000, description="stores that get the control message before their first event"
    )


class RetentionConfig(Section):
    """What the collector deletes or anonymises, and when (collector/privacy/retention.py)."""

    enabled: bool = Field(True, description="run every interval_h while the collector runs")
    interval_h: float = Field(1, gt=0, le=24)
    pseudonyms_h: float = Field(
        24, gt=0, le=24 * 31, description="visits ended this long ago lose their device pseudonym"
    )
    consent_days: float = Field(
        396, gt=0, le=3660, description="visits ended this long ago lose their consent token"
    )
    visits_days: float = Field(396, gt=0, le=3660, description="visits ended this long ago are deleted")
    online_days: float | None = Field(
        None, gt=0, le=3660, description="online events this old are deleted; unset: visits_days"
    )

    @model_validator(mode="after")
    def _pseudonyms_before_visits(self) -> RetentionConfig:
        if self.pseudonyms_h > self.visits_days * 24:
            raise ValueError(
                f"pseudonyms_h ({self.pseudonyms_h:g} h) must not exceed visits_days ({self.visits_days:g} d)"
            )
        return self


class TriggersConfig(Section):
    """Real-time triggers for consented visitors (collector/online/triggers.py): MQTT always, a webhook if set."""

    enabled: bool = Field(False, description="publish <prefix>/<store>/trigger for consented visitor visits")
    webhook_url: str | None = Field(
        None, pattern=r"^https?://[^\s]+$", description="also POST each trigger here (http or https)"
    )
    webhook_secret_file: Path | None = Field(
        None, description="file holding the HMAC secret for X-Footfall-Signature (a credential)"
    )
    attempts: int = Field(5, ge=1, le=100, description="webhook attempts per trigger before giving up")
    backoff_s: float = Field(1.0, gt=0, le=3600, description="first retry delay; doubles, capped at 30 s")

    @model_validator(mode="after")
    def _secret_needs_url(self) -> TriggersConfig:
        if self.webhook_secret_file is not None and self.webhook_url is None:
            raise ValueError("webhook_secret_file is set but webhook_url is not")
        return self


class CollectorConfig(Section):
    mqtt: MqttConfig = MqttConfig()
    store: StoreConfig = StoreConfig()
    ingest: IngestConfig = IngestConfig()
    report: ReportConfig = ReportConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    retention: RetentionConfig = RetentionConfig()
    triggers: TriggersConfig = TriggersConfig()


def load(path: Path | None) -> CollectorConfig:
    """The file's settings, or the embedded defaults when no file is given."""
    if path is None:
        return validate_model(CollectorConfig, {})
    return load_model(path, CollectorConfig)
