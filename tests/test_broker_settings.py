"""The one broker-settings rule (footfall/broker.py), the same for the sensor's and the collector's config."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import CollectorConfig
from footfall.broker import broker_settings
from footfall.configfile import ConfigError
from sensor.config import SensorConfig


def configs(password_file: Path) -> list[SensorConfig | CollectorConfig]:
    section = {"mqtt": {"username": "u", "password_file": str(password_file)}}
    return [SensorConfig.model_validate(section), CollectorConfig.model_validate(section)]


def test_both_sides_read_the_password_keeping_its_spaces_and_dropping_the_line_end(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(" s3cret \r\n")
    for config in configs(secret):
        settings = broker_settings(config.mqtt, "me")
        assert (settings.client_id, settings.username, settings.password) == ("me", "u", " s3cret ")


def test_an_unreadable_password_file_is_a_config_error_naming_it_on_both_sides(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    for config in configs(missing):
        with pytest.raises(ConfigError, match=rf"{missing}: cannot read mqtt.password_file") as caught:
            broker_settings(config.mqtt, "me")
        assert caught.value.path == missing
