"""The MQTT section both configs share, and the one way it becomes the client's settings.

The sensor's and the collector's `mqtt:` sections both extend `MqttSection` (the collector adds its
persistent session and share group). `broker_settings` reads the password file, keeping the password's
spaces (only a line end is trimmed: editors add one, a password may end in a space) and turning a file
it cannot read into a ConfigError that names the file, as a bad value in the YAML would.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from footfall.configfile import ConfigError, Section
from footfall.mqtttypes import BrokerSettings, TlsSettings


class TlsSection(Section):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


class MqttSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password_file: Path | None = Field(
        None, description="file holding the password (e.g. a systemd credential)"
    )
    tls: TlsSection | None = None
    topic_prefix: str = Field("footfall/v1", pattern=r"^[^#+]+[^/#+]$")
    keepalive_s: int = Field(30, ge=5, le=3600)


def broker_settings(mqtt: MqttSection, client_id: str, *, session_expiry_s: int = 0) -> BrokerSettings:
    """The section as the client's settings, with the password read from its file."""
    password = None
    if mqtt.password_file is not None:
        try:
            password = mqtt.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                mqtt.password_file,
                [f"{mqtt.password_file}: cannot read mqtt.password_file: {exc.strerror or exc}"],
            ) from None
    tls = None
    if mqtt.tls is not None:
        tls = TlsSettings(mqtt.tls.ca_file, mqtt.tls.cert_file, mqtt.tls.key_file)
    return BrokerSettings(
        host=mqtt.host,
        port=mqtt.port,
        client_id=client_id,
        username=mqtt.username,
        password=password,
        tls=tls,
        keepalive_s=mqtt.keepalive_s,
        session_expiry_s=session_expiry_s,
    )
