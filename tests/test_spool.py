"""The store-and-forward spool: durable before sending, gone only once acknowledged, bounded, counted.

Unit tests drive `Spool` and `Forwarder` with a hand clock and a fake client; the last tests use a real
Mosquitto and a real SIGKILLed process.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from footfall.mqtt import BrokerSettings, Message, MqttClient, MqttError
from sensor.config import SensorConfig
from sensor.publish.forwarder import Forwarder
from sensor.publish.mqttsink import MqttSink
from sensor.publish.spool import Spool
from tests.conftest import REPO, Broker, make_broker
from tests.test_report import count, visit

T0 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def spool(tmp_path: Path, clock: Clock | None = None, **bounds: object) -> Spool:
    return Spool(tmp_path / "spool.db", clock=clock or Clock(), sync="normal", **bounds)  # type: ignore[arg-type]


def put(s: Spool, n: int, kind: str = "visit", size: int = 100, start: int = 0) -> None:
    for i in range(start, start + n):
        s.put(f"{kind}-{i:06d}", kind, f"t/{kind}", b"x" * size)


def kinds(s: Spool) -> list[str]:
    return [e.kind for e in s.pending(0, 10_000)]


# -- the spool ------------------------------------------------------------------------------------------------
def test_a_queued_event_is_on_disk_when_put_returns_and_survives_reopening(tmp_path: Path) -> None:
    s = spool(tmp_path)
    assert s.put("e1", "visit", "t/a", b"one", retain=False)
    assert s.put("e2", "status", "t/b", b"two", retain=True)
    s.close()
    again = spool(tmp_path)
    assert [(e.event_id, e.topic, e.payload, e.retain) for e in again.pending()] == [
        ("e1", "t/a", b"one", False),
        ("e2", "t/b", b"two", True),
    ]
    assert again.stats().pending == 2


def test_an_event_queued_twice_is_kept_once(tmp_path: Path) -> None:
    s = spool(tmp_path)
    assert s.put("e1", "visit", "t", b"x")
    assert not s.put("e1", "visit", "t", b"x")
    assert s.pending_count == 1
    assert s.stats().totals == {"queued": 1, "already_queued": 1}


def test_an_acknowledged_event_leaves_the_pending_queue_and_is_forgotten_after_the_keep_window(
    tmp_path: Path,
) -> None:
    clock = Clock()
    s = spool(tmp_path, clock, keep_acked_s=120)
    put(s, 3)
    first, *_ = s.pending()
    assert s.mark_acked([first.seq]) == 1
    assert s.mark_acked([first.seq]) == 0  # a second PUBACK for it changes nothing
    assert [e.event_id for e in s.pending()] == ["visit-000001", "visit-000002"]
    assert [e.event_id for e in s.recently_acked()] == ["visit-000000"]
    clock.t += 121
    s.expire()
    assert s.recently_acked() == []
    assert s.stats().kept_acked == 0
    assert s.stats().totals["acked"] == 1


def test_with_no_keep_window_an_acknowledged_event_is_deleted_at_once(tmp_path: Path) -> None:
    s = spool(tmp_path, keep_acked_s=0)
    put(s, 2)
    s.mark_acked([e.seq for e in s.pending()])
    assert (s.stats().pending, s.stats().kept_acked) == (0, 0)


def test_a_full_spool_drops_the_oldest_visits_first_and_keeps_every_count(tmp_path: Path) -> None:
    s = spool(tmp_path, max_events=100)
    put(s, 40, "count")
    put(s, 60, "visit")
    put(s, 30, "count", start=40)  # 30 more counts: the 30 oldest visits make room
    pending = s.pending(0, 1000)
    assert kinds(s).count("count") == 70
    assert next(e.event_id for e in pending if e.kind == "visit") == "visit-000030"
    assert s.stats().dropped == {"full_visit": 30}


def test_a_new_visit_is_refused_rather_than_a_count_dropped(tmp_path: Path) -> None:
    s = spool(tmp_path, max_events=100)
    put(s, 100, "count")
    assert not s.put("late-visit", "visit", "t", b"x")
    assert kinds(s) == ["count"] * 100
    assert s.stats().dropped == {"full_visit": 1}


def test_counts_give_way_to_newer_counts_only_once_no_visit_or_status_is_left(tmp_path: Path) -> None:
    s = spool(tmp_path, max_events=100)
    put(s, 90, "count")
    put(s, 5, "status")
    put(s, 5, "visit")
    put(s, 12, "count", start=90)
    assert kinds(s) == ["count"] * 100
    assert s.stats().dropped == {"full_visit": 5, "full_status": 5, "full_count": 2}


def test_the_byte_bound_applies_like_the_event_bound(tmp_path: Path) -> None:
    s = spool(tmp_path, max_bytes=64 * 1024)
    put(s, 20, "count", size=1000)
    put(s, 60, "visit", size=1000)
    put(s, 10, "count", size=1000, start=20)
    assert s.stats().pending_bytes <= 64 * 1024
    assert kinds(s).count("count") == 30
    assert s.stats().dropped["full_visit"] == 90 - 65  # 65 payloads of 1000 bytes fit in 64 KiB


def test_drop_oldest_ignores_the_kind(tmp_path: Path) -> None:
    s = spool(tmp_path, max_events=100, on_full="drop_oldest")
    put(s, 50, "count")
    put(s, 60, "visit")
    assert kinds(s) == ["count"] * 40 + ["visit"] * 60
    assert s.stats().dropped == {"full_count": 10}


def test_acknowledged_events_kept_for_a_resend_give_way_before_any_pending_one(tmp_path: Path) -> None:
    s = spool(tmp_path, max_events=100)
    put(s, 100)
    s.mark_acked([e.seq for e in s.pending(0, 30)])
    put(s, 30, start=100)
    assert s.pending_count == 100
    assert s.stats().dropped == {}


def test_events_unsent_past_the_age_bound_are_dropped_and_counted(tmp_path: Path) -> None:
    clock = Clock()
    s = spool(tmp_path, clock, max_age_s=3600)
    put(s, 3, "visit")
    clock.t += 1800
    put(s, 2, "count")
    clock.t += 1801
    assert s.expire() == 3
    assert kinds(s) == ["count", "count"]
    assert s.stats().dropped == {"expired_visit": 3}
    assert s.stats().oldest_pending_age_s == pytest.approx(1801)


def test_drop_counts_survive_a_restart(tmp_path: Path) -> None:
    s = spool(tmp_path, max_events=100)
    put(s, 110)
    s.close()
    assert spool(tmp_path, max_events=100).stats().dropped == {"full_visit": 10}


def test_a_full_disk_drops_by_the_policy_and_keeps_the_new_event(tmp_path: Path) -> None:
    s = spool(tmp_path)
    put(s, 20, "count", size=200)
    s._db.execute("PRAGMA max_page_count = 40")  # SQLite answers SQLITE_FULL, as on a full disk
    put(s, 3000, "visit", size=200)
    stats = s.stats()
    assert stats.totals["queued"] == 3020 - stats.dropped.get("unwritable_visit", 0)
    assert kinds(s).count("count") == 20, "the counts were kept"
    assert s.pending(0, 10_000)[-1].event_id == "visit-002999", "the newest visit was kept"
    assert stats.dropped["full_visit"] > 2000
    assert stats.pending == len(kinds(s))


def test_a_sigkilled_writer_loses_nothing_it_had_queued(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "from sensor.publish.spool import Spool\n"
        "s = Spool(sys.argv[1])\n"  # sync=full, the default
        "for i in range(200):\n"
        "    s.put(f'e{i:04d}', 'visit', 't', b'x' * 300)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "spool.db")], cwd=REPO, check=False)
    assert result.returncode == -signal.SIGKILL
    assert [e.event_id for e in spool(tmp_path).pending(0, 1000)] == [f"e{i:04d}" for i in range(200)]


# -- the forwarder, on a fake client --------------------------------------------------------------------------
@dataclass
class FakeClient:
    connected: bool = True
    connects: int = 1
    published: list[tuple[int, str]] = field(default_factory=list)  # (mid, topic)
    refused: dict[int, str] = field(default_factory=dict)
    next_mid: int = 1

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        mid, self.next_mid = self.next_mid, self.next_mid + 1
        self.published.append((mid, payload.decode()))
        return mid

    def wait_any_acked(self, timeout_s: float) -> set[int]:
        return set()

    def take_refused(self) -> dict[int, str]:
        refused, self.refused = self.refused, {}
        return refused


def forwarder(tmp_path: Path, n: int, inflight: int = 10) -> tuple[Spool, FakeClient, Forwarder]:
    s = spool(tmp_path)
    for i in range(n):
        s.put(f"e{i}", "visit", "t", f"p{i}".encode())
    client = FakeClient()
    return s, client, Forwarder(s, client, inflight=inflight)


def test_the_forwarder_publishes_in_order_and_never_more_than_its_window(tmp_path: Path) -> None:
    s, client, fwd = forwarder(tmp_path, 25)
    fwd.pump(set())
    assert [p for _, p in client.published] == [f"p{i}" for i in range(10)]
    fwd.pump(set())
    assert len(client.published) == 10, "no PUBACK yet: the window is full"
    fwd.pump({1, 2, 3})
    assert [p for _, p in client.published][10:] == ["p10", "p11", "p12"]
    assert s.pending_count == 22


def test_the_forwarder_publishes_nothing_while_disconnected(tmp_path: Path) -> None:
    _, client, fwd = forwarder(tmp_path, 5)
    client.connected = False
    fwd.pump(set())
    assert client.published == []


def test_after_a_reconnection_the_recently_acknowledged_go_again_but_not_what_paho_still_holds(
    tmp_path: Path,
) -> None:
    s, client, fwd = forwarder(tmp_path, 6, inflight=4)
    fwd.pump(set())  # p0..p3 out
    fwd.pump({1, 2})  # p0, p1 acknowledged; p4, p5 out
    client.connects = 2  # the broker restarted; paho re-sends p2, p3, p4, p5 itself
    fwd.pump(set())
    fwd.pump({3, 4})
    assert [p for _, p in client.published] == ["p0", "p1", "p2", "p3", "p4", "p5", "p0", "p1"]
    assert fwd.resent == 2
    assert s.pending_count == 2  # p4, p5


def test_an_event_the_broker_refuses_stays_queued_and_goes_again_after_a_reconnection(tmp_path: Path) -> None:
    s, client, fwd = forwarder(tmp_path, 2)
    fwd.pump(set())
    client.refused = {1: "Not authorized"}
    fwd.pump({2})
    assert (fwd.refused, s.pending_count) == (1, 1)
    fwd.pump(set())
    assert len(client.published) == 2, "not offered again at once"
    client.connects = 2
    fwd.pump(set())
    assert client.published[-1][1] == "p0"


def test_an_event_no_subscriber_took_is_offered_again_a_few_seconds_later(tmp_path: Path) -> None:
    """Mosquitto's PUBACK says 0x10 when no session matched: the collector's session is gone."""
    s = spool(tmp_path)
    s.put("e0", "visit", "t", b"p0")
    client, clock = FakeClient(), Clock(0.0)
    fwd = Forwarder(s, client, clock=clock)
    fwd.pump(set())
    client.refused = {1: "No matching subscribers"}
    fwd.pump({1})  # 0x10 is a success code: the id comes among the acknowledged too
    assert s.pending_count == 1
    clock.t += 4.9
    fwd.pump(set())
    assert len(client.published) == 1
    clock.t += 0.2
    fwd.pump(set())
    assert [p for _, p in client.published] == ["p0", "p0"]
    fwd.pump({2})
    assert s.pending_count == 0


# -- on a real broker -----------------------------------------------------------------------------------------
def sensor_config(broker: Broker, path: Path) -> SensorConfig:
    return SensorConfig.model_validate(
        {
            "site": {"store": "paris-01", "sensor": "s1"},
            "mqtt": {"port": broker.port},
            # No collector here: these prove the broker leg, so events leave on the PUBACK.
            "spool": {"path": str(path), "sync": "normal", "release": "broker"},
        }
    )


def subscriber(broker: Broker) -> tuple[MqttClient, queue.Queue[Message]]:
    got: queue.Queue[Message] = queue.Queue()
    client = MqttClient(BrokerSettings(broker.host, broker.port, client_id="spool-test-sub"))
    client.connect()
    assert client.subscribe("footfall/v1/#", got.put, wait_s=5)
    return client, got


def received(got: queue.Queue[Message], n: int) -> set[bytes]:
    return {got.get(timeout=30).payload for _ in range(n)}


EVENTS = [visit(T0, 60, device=f"d{n}", store="paris-01", sensor="s1") for n in range(20)] + [
    count(T0, 1.0, store="paris-01", sensor="s1")
]


@pytest.mark.mqtt
def test_events_sent_while_the_broker_is_down_wait_in_the_spool_and_flow_once_it_is_up(
    tmp_path: Path,
) -> None:
    broker = make_broker(tmp_path / "broker")  # not started yet
    sink = MqttSink.connect(sensor_config(broker, tmp_path / "spool.db"), "test", time.time_ns(), wait_s=None)
    for event in EVENTS:
        sink.send(event)
    assert sink.spool.pending_count == len(EVENTS)
    broker.start()
    try:
        sub, got = subscriber(broker)
        # The subscriber came after the events were queued: they can only have waited in the spool.
        sink.close()
        assert received(got, len(EVENTS)) == {e.to_json() for e in EVENTS}
        sub.close()
    finally:
        broker.stop()


@pytest.mark.mqtt
def test_a_restarted_sensor_sends_what_its_killed_predecessor_left_unacknowledged(
    broker: Broker, tmp_path: Path
) -> None:
    path = tmp_path / "spool.db"
    queued = Spool(path, sync="normal")
    for event in EVENTS:
        queued.put_event(event, "footfall/v1")
    os.sync()
    queued._db.close()  # as good as a SIGKILL for the file: no orderly shutdown of the spool
    sub, got = subscriber(broker)
    sink = MqttSink.connect(sensor_config(broker, path), "test", time.time_ns())
    sink.close()
    assert received(got, len(EVENTS)) == {e.to_json() for e in EVENTS}
    sub.close()


def test_a_sink_that_cannot_reach_the_broker_keeps_the_events_and_says_so(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "broker")  # never started
    client = MqttClient(BrokerSettings(broker.host, broker.port, client_id="x"))
    client.connect(wait=False)
    sink = MqttSink(
        sensor_config(broker, tmp_path / "spool.db"), client, Spool(tmp_path / "spool.db"), ack_timeout_s=0.3
    )
    sink.send(EVENTS[0])
    with pytest.raises(MqttError, match=r"1 events were not acknowledged .* stay in the spool .*spool\.db"):
        sink.close()
    assert Spool(tmp_path / "spool.db").pending_count == 1


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("spool:\n  max_events: 5\n", "spool.max_events = 5: Input should be greater than or equal to 100"),
        (
            "spool:\n  on_full: drop_counts\n",
            "spool.on_full = 'drop_counts': Input should be 'drop_visits_first'",
        ),
        ("spool:\n  sync: off\n", "spool.sync = False: Input should be 'full' or 'normal'"),
        ("spool:\n  max_age: 3600\n", "unknown key 'spool.max_age'"),
    ],
)
def test_a_bad_spool_setting_is_one_clear_line_naming_file_line_and_key(
    tmp_path: Path, yaml: str, message: str
) -> None:
    from footfall.configfile import ConfigError
    from sensor.config import load

    path = tmp_path / "sensor.yaml"
    path.write_text(yaml)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}:2: "), str(caught.value)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_every_dropped_event_is_named_by_its_id_cause_and_kind(tmp_path: Path) -> None:
    clock = Clock()
    s = spool(tmp_path, clock, max_events=100, max_age_s=3600)
    put(s, 100, "count")
    assert not s.put("late-visit", "visit", "t", b"x")  # refused: named too
    put(s, 2, "count", start=100)  # the two oldest counts make room
    clock.t += 3601
    s.expire()
    named = s.dropped_ids()
    assert named[:3] == [
        ("late-visit", "visit", "full"),
        ("count-000000", "count", "full"),
        ("count-000001", "count", "full"),
    ]
    assert len(named) == 3 + 100 and {cause for _, _, cause in named[3:]} == {"expired"}
    assert len(named) == sum(s.stats().dropped.values())


def test_the_record_of_dropped_ids_keeps_only_the_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sensor.publish.spool.DROPPED_KEPT", 5)
    s = spool(tmp_path, max_events=10)
    put(s, 30)
    assert [event_id for event_id, _, _ in s.dropped_ids()] == [f"visit-{i:06d}" for i in range(15, 20)]
    assert s.stats().dropped == {"full_visit": 20}, "the counters still hold every drop"
