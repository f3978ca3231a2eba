"""Health: when status events go out and what they carry, the metrics endpoints, the watchdog, HA discovery."""

from __future__ import annotations

import json
import queue
import socket
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.ingest import metrics as collector_metrics
from collector.ingest.ingestor import IngestStats
from footfall.events import CountEvent, Event, StatusEvent, event_id
from footfall.metrics import serve_metrics
from footfall.mqtt import BrokerSettings, Message, MqttClient
from sensor.config import SensorConfig
from sensor.live.health import SensorMetrics, Snapshot, StatusReporter, sd_notify
from sensor.publish.homeassistant import HomeAssistant, HomeAssistantLink
from tests.conftest import Broker

S = 1_000_000_000
T0 = 1_790_000_000 * S


def snap(at_s: float = 0, **fields: object) -> Snapshot:
    values: dict[str, object] = {
        "at_ns": T0 + int(at_s * S),
        "uptime_s": at_s,
        "interface": "mon0",
        "capture_up": True,
    }
    values.update(fields)
    return Snapshot(**values)  # type: ignore[arg-type]


def reporter(interval_s: float = 60) -> tuple[StatusReporter, list[Event]]:
    sent: list[Event] = []
    return StatusReporter(SensorConfig(), "1.2.3", sent.append, interval_s), sent


def test_status_goes_out_at_start_then_once_per_interval() -> None:
    status, sent = reporter(60)
    for t in range(0, 181):
        status.tick(snap(t, channel=6, epoch="20261124T0400Z"))
    assert [int((e.at.timestamp() * S - T0) // S) for e in sent] == [0, 60, 120, 180]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "change",
    [
        {"capture_up": False, "down_reason": "gone"},
        {"channel": 11},
        {"epoch": "20261125T0400Z"},
        {"interface": "mon1"},
    ],
)
def test_status_goes_out_at_once_when_something_watched_changes(change: dict[str, object]) -> None:
    status, sent = reporter(60)
    base: dict[str, object] = {"channel": 6, "epoch": "20261124T0400Z"}
    status.tick(snap(0, **base))
    status.tick(snap(1, **base))
    status.tick(snap(2, **{**base, **change}))
    assert len(sent) == 2


def test_a_hopping_channel_does_not_trigger_a_status_every_dwell() -> None:
    status, sent = reporter(60)
    for t in range(30):
        status.tick(snap(t, channel=(1, 6, 11)[t % 3], hopping=True))
    assert len(sent) == 1


def test_status_carries_interface_channel_rate_drops_spool_and_the_epoch_id_only() -> None:
    status, sent = reporter(60)
    status.tick(snap(0, frames=0, channel=6, epoch="20261124T0400Z"))
    status.tick(
        snap(60, frames=1200, channel=6, epoch="20261124T0400Z", kernel_drops=3, app_drops=2, spool_depth=7)
    )
    event = sent[-1]
    assert isinstance(event, StatusEvent)
    payload = json.loads(event.to_json())
    assert payload["state"] == "online" and payload["version"] == "1.2.3"
    assert payload["interface"] == "mon0" and payload["channel"] == 6
    assert payload["frames_per_s"] == 20.0 and payload["drops"] == 5 and payload["spool_depth"] == 7
    assert payload["epoch"] == "20261124T0400Z" and payload["source"] == "live:mon0"
    assert not {"salt", "key", "secret"} & set(payload)
    # The collector's strict model takes it back unchanged.
    assert StatusEvent.model_validate_json(event.to_json()) == event


def test_a_down_capture_says_why_in_the_status_source() -> None:
    status, _sent = reporter(60)
    event = status.tick(snap(0, capture_up=False, down_reason="cannot capture on mon0: no such interface"))
    assert event is not None and event.source == "live:mon0 (down: cannot capture on mon0: no such interface)"


def test_the_final_status_is_offline() -> None:
    status, sent = reporter(60)
    status.tick(snap(0))
    final = status.final(snap(5, frames=10))
    assert final.state == "offline" and final.frames == 10 and sent[-1] is final


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_sensor_metrics_are_served_from_the_latest_snapshot() -> None:
    metrics = SensorMetrics("1.2.3")
    server = serve_metrics(metrics, "127.0.0.1", 0)
    try:
        assert 'footfall_sensor_build_info{version="1.2.3"} 1.0' in scrape(server.port)
        metrics.update(
            snap(5, frames=42, kernel_drops=1, channel=11, decode_errors={"bad_fcs": 3}, spool_depth=2)
        )
        text = scrape(server.port)
    finally:
        server.close()
    for line in (
        "footfall_sensor_frames_total 42.0",
        "footfall_sensor_kernel_drops_total 1.0",
        'footfall_sensor_decode_errors_total{reason="bad_fcs"} 3.0',
        'footfall_sensor_channel{interface="mon0"} 11.0',
        "footfall_sensor_capture_up 1.0",
        "footfall_sensor_spool_depth 2.0",
    ):
        assert line in text, line


def test_collector_metrics_count_received_stored_duplicates_and_rejections_by_reason() -> None:
    stats = IngestStats(
        received=10, accepted=7, stored=6, duplicates=1, rejected={"not_json": 2, "invalid": 1}
    )
    server = collector_metrics.serve(lambda: stats, lambda: True, port=0)
    try:
        text = scrape(server.port)
    finally:
        server.close()
    for line in (
        "footfall_collector_received_total 10.0",
        "footfall_collector_stored_total 6.0",
        "footfall_collector_duplicates_total 1.0",
        'footfall_collector_rejected_total{reason="not_json"} 2.0',
        'footfall_collector_rejected_total{reason="oversized"} 0.0',
        "footfall_collector_mqtt_connected 1.0",
    ):
        assert line in text, line


def test_sd_notify_sends_the_state_to_the_notify_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        assert sd_notify("WATCHDOG=1", path)
        assert server.recv(64) == b"WATCHDOG=1"


def test_sd_notify_is_a_no_op_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False


# -- Home Assistant ----------------------------------------------------------------------------------------


def ha(published: list[tuple[str, bytes, bool]], **site: str) -> HomeAssistant:
    config = SensorConfig.model_validate({"site": {"store": "Shop-1", "sensor": "door", **site}})
    return HomeAssistant(config, "1.2.3", lambda t, p, r: published.append((t, p, r)))


def count(start: datetime, visitors: int, present: float) -> CountEvent:
    end = start.replace(minute=start.minute + 5)
    return CountEvent(
        event_id=event_id("c", start),
        store="Shop-1",
        sensor="door",
        epoch="e",
        start=start,
        end=end,
        present=present,
        visitors=visitors,
        passersby=0,
        visitors_present=0,
        new_visitors=visitors,
        returning_visitors=0,
        frames=1,
        frames_randomized=0,
        addresses=1,
        addresses_randomized=0,
        devices=1,
    )


def test_discovery_announces_people_present_and_visitors_today_retained() -> None:
    published: list[tuple[str, bytes, bool]] = []
    ha(published).announce()
    topics = [t for t, _, _ in published]
    assert topics == [
        "homeassistant/sensor/footfall_shop_1_door/people_present/config",
        "homeassistant/sensor/footfall_shop_1_door/visitors_today/config",
    ]
    assert all(retain for _, _, retain in published)
    config = json.loads(published[1][1])
    assert config["state_topic"] == "footfall-ha/Shop-1/door/state"
    assert config["availability_topic"] == "footfall/v1/Shop-1/door/status"
    assert config["value_template"] == "{{ value_json.visitors_today }}"
    assert config["state_class"] == "total_increasing"
    assert config["unique_id"] == "footfall_shop_1_door_visitors_today"


def test_visitors_today_adds_up_the_day_and_starts_again_at_local_midnight() -> None:
    published: list[tuple[str, bytes, bool]] = []
    home = ha(published, timezone="Europe/Paris")
    home.observe(count(datetime(2026, 11, 24, 10, 0, tzinfo=UTC), 3, 2.5))
    home.observe(count(datetime(2026, 11, 24, 10, 5, tzinfo=UTC), 4, 1.25))
    state = json.loads(published[-1][1])
    assert (state["visitors_today"], state["people_present"], state["day"]) == (7, 1.25, "2026-11-24")
    home.observe(count(datetime(2026, 11, 24, 23, 0, tzinfo=UTC), 2, 0.5))  # 00:00 in Paris
    state = json.loads(published[-1][1])
    assert (state["visitors_today"], state["day"]) == (2, "2026-11-25")


def test_todays_total_is_restored_from_the_retained_state_but_not_yesterdays() -> None:
    home = ha([])
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert not home.restore(b'{"day": "2026-11-23", "visitors_today": 40}', now)
    assert not home.restore(b"not json", now)
    assert home.restore(b'{"day": "2026-11-24", "visitors_today": 40}', now)
    home.observe(count(datetime(2026, 11, 24, 12, 0, tzinfo=UTC), 2, 1.0))
    assert home.visitors_today == 42
    assert not home.restore(b'{"day": "2026-11-24", "visitors_today": 99}', now)  # too late: counting began


@pytest.mark.mqtt
def test_home_assistant_link_announces_publishes_state_and_restores_it_after_a_restart(
    broker: Broker,
) -> None:
    config = SensorConfig.model_validate(
        {"site": {"store": "Shop-1", "sensor": "door", "timezone": "UTC"}, "mqtt": {"port": broker.port}}
    )
    today = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    watcher = MqttClient(BrokerSettings(broker.host, broker.port, client_id="ha-watcher"))
    watcher.connect()
    got: queue.Queue[Message] = queue.Queue()
    assert watcher.subscribe("homeassistant/#", got.put, wait_s=5)
    link = HomeAssistantLink(config, "1.2.3", lambda: today)
    link.start()
    configs = [got.get(timeout=10), got.get(timeout=10)]
    assert {m.topic.rsplit("/", 2)[1] for m in configs} == {"people_present", "visitors_today"}
    link.observe(count(datetime(2026, 11, 24, 11, 0, tzinfo=UTC), 5, 3.0))
    link.close()
    again = HomeAssistantLink(config, "1.2.3", lambda: today)
    again.start()
    deadline = time.monotonic() + 10
    while again.ha.visitors_today != 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    again.close()
    watcher.close()
    assert again.ha.visitors_today == 5  # today's total came back from the retained state
