"""The sensor's configuration: one small model per YAML section, mirroring config/sensor.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from footfall.configfile import Section, load_model, validate_model
from footfall.events import Name

Rssi = Annotated[int, Field(ge=-120, le=0)]


class SiteConfig(Section):
    store: Name = "demo"
    sensor: Name = "sensor-1"
    timezone: str = "Europe/Paris"


class TlsConfig(Section):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


class MqttConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = None
    tls: TlsConfig | None = None
    topic_prefix: str = Field("footfall/v1", pattern=r"^[^#+]+[^/#+]$")
    keepalive_s: int = Field(30, ge=5, le=3600)


class PresenceConfig(Section):
    """The visit model (Meraki/Cloud4Wi style): defaults are the common industry ones."""

    visit_timeout_s: float = Field(600, gt=0, le=86_400, description="close a visit after this long unheard")
    visitor_rssi: Rssi = Field(-70, description="a visit whose strongest frame reached this (dBm) is inside")
    min_dwell_s: float = Field(300, ge=0, le=86_400, description="...and that lasted at least this long")
    interval_s: int = Field(300, ge=10, le=3600, description="count events every this many seconds")

    @model_validator(mode="after")
    def _interval_divides_hour(self) -> PresenceConfig:
        if 3600 % self.interval_s:
            raise ValueError(
                f"interval_s must divide 3600 so intervals align to the hour, got {self.interval_s}"
            )
        return self


class PrivacyConfig(Section):
    key_file: Path | None = Field(
        None,
        description="sensor key (footfall-sensor keys provision); replay without one uses a throwaway key",
    )
    pseudonym_bits: int = Field(64, ge=32, le=256, multiple_of=32)


class SensorConfig(Section):
    site: SiteConfig = SiteConfig()
    mqtt: MqttConfig = MqttConfig()
    presence: PresenceConfig = PresenceConfig()
    privacy: PrivacyConfig = PrivacyConfig()


def load(path: Path | None) -> SensorConfig:
    """The file's settings, or the embedded defaults when no file is given."""
    if path is None:
        return validate_model(SensorConfig, {})
    return load_model(path, SensorConfig)


Destination = Literal["mqtt", "jsonl"]
