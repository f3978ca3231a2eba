"""The sensor's status event (retained): the health reporter's figures and the broker's last will."""

from __future__ import annotations

from footfall.events import StatusEvent, event_id, utc
from sensor.buildinfo import build
from sensor.config import SensorConfig


def status_event(
    config: SensorConfig, state: str, at_ns: int, version: str, **figures: object
) -> StatusEvent:
    site = config.site
    return StatusEvent.model_validate(
        {
            "event_id": event_id(site.store, site.sensor, "status", state, at_ns),
            "store": site.store,
            "sensor": site.sensor,
            "epoch": "",
            "state": state,
            "at": utc(at_ns),
            "version": version,
            "build": build(),
            **figures,
        },
        strict=False,
    )
