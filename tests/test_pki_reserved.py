"""A sensor certificate speaks only for its sensor: reserved names refused, every other topic denied by the broker.

`pki issue` refuses sensor names equal to a topic level the collector owns (`control`, `trigger`, `ack`),
which the sensor's own `<sensor>/#` grant would otherwise cover; and against a real TLS Mosquitto with the
generated ACL, a sensor certificate's publish anywhere but under its own `<prefix>/<store>/<sensor>/` is
answered "Not authorized".
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from collector.pki.ca import Pki, PkiError
from footfall.events import COLLECTOR_LEVELS
from sensor.config import SensorConfig
from tests.conftest import Broker
from tests.test_pki_tls import NOW, broker, ca, client, pki, tls  # noqa: F401

pytestmark = pytest.mark.mqtt


@pytest.mark.parametrize("level", [*sorted(COLLECTOR_LEVELS), "Control", "TRIGGER"])
def test_pki_issue_refuses_a_sensor_named_like_a_collector_topic_level(tmp_path: Path, level: str) -> None:
    root = tmp_path / "pki"
    pki(root, "init")
    code, out = pki(root, "issue", "sensor", f"lab/{level}")
    assert code != 0 and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1 and "only the collector writes" in out, out
    with pytest.raises(PkiError):
        Pki(root).issue("sensor", f"lab/{level}", NOW)
    assert "lab/" not in (root / "mosquitto.acl").read_text()


def test_a_sensor_config_cannot_take_a_reserved_name() -> None:
    with pytest.raises(ValueError, match="collector owns"):
        SensorConfig.model_validate({"site": {"store": "lab", "sensor": "control"}})


OWN = [
    "footfall/v1/paris-01/door-1/visit",
    "footfall/v1/paris-01/door-1/status",
    "footfall/v1/paris-01/door-1",
]
FOREIGN = [
    "footfall/v1/paris-01/door-2/visit",  # another sensor of the store
    "footfall/v1/paris-01/control/privacy",  # the privacy control message
    "footfall/v1/paris-01/trigger",  # the real-time trigger
    "footfall/v1/paris-01/ack/door-1",  # its own store acknowledgements
    "footfall/v1/paris-01/ack/door-2",
    "footfall/v1/lyon-02/door-1/visit",  # the same sensor name in another store
    "footfall/v1/paris-01",
    "footfall/v1",
    "footfall/v2/paris-01/door-1/visit",
    "elsewhere",
]


def test_a_sensor_certificate_can_publish_nowhere_but_on_its_own_topics(
    ca: Pki,  # noqa: F811
    broker: Broker,  # noqa: F811
) -> None:
    sensor = client(broker, tls(ca, "paris-01/door-1"), "door-1-everywhere")
    sensor.connect()
    mids = {topic: sensor.publish(topic, b"{}") for topic in OWN + FOREIGN}
    deadline = time.monotonic() + 10
    acked: set[int] = set()
    refused: dict[int, str] = {}
    while acked | set(refused) != set(mids.values()) and time.monotonic() < deadline:
        acked |= sensor.wait_any_acked(0.2)
        refused |= sensor.take_refused()
    sensor.close()
    assert acked | set(refused) == set(mids.values()), "the broker answered every publish"
    denied = {topic for topic, mid in mids.items() if refused.get(mid) == "Not authorized"}
    assert denied == set(FOREIGN)
