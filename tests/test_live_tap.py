"""Live capture on a stand-in monitor interface: a TAP device with the radiotap link type (803).

Frames written into the TAP's file descriptor reach packet sockets exactly as a monitor interface's
would (link type 127), so these tests run the real kernel filter, socket, timestamps, recovery and
MQTT path on real captures from ../shared/data. They need /dev/net/tun and CAP_NET_ADMIN (CI runs as
root) and skip with the reason otherwise. The loop-logic tests at the end use a fake source instead.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from footfall_dev.craft import FC_NULL, FC_QOS_DATA, radiotap_probe_request, radiotap_station_frame

from footfall.events import CountEvent, VisitEvent
from footfall.mqtt import BrokerSettings, Message, MqttClient
from sensor.config import SensorConfig
from sensor.decode.capture import read_capture
from sensor.decode.decoder import FrameDecoder
from sensor.decode.dot11 import STATION_SNAP
from sensor.decode.frames import ConnectedSighting
from sensor.keys.keystore import KeyStore, StoreSeed
from sensor.keys.pseudonym import FixedSalt
from sensor.keys.salts import DEFAULT_SPEC, SaltSchedule
from sensor.live.iface import IfaceState, RadiotapTap
from sensor.live.loop import LiveCapture
from sensor.live.packetsocket import CaptureError
from sensor.live.sensor import LiveSensor, snapshot
from sensor.pipeline import ListSink, Pipeline
from sensor.publish.mqttsink import MqttSink
from tests.conftest import Broker, free_port

BARE_RADIOTAP = bytes([0, 0, 8, 0, 0, 0, 0, 0])  # version 0, length 8, no field: wraps a bare 802.11 frame
_names = itertools.count()


def tap_name() -> str:
    return f"fft{os.getpid() % 100_000}{next(_names)}"[:15]


def open_tap(name: str) -> RadiotapTap:
    try:
        return RadiotapTap(name)
    except (OSError, PermissionError) as exc:
        pytest.skip(f"cannot create a radiotap TAP device (needs /dev/net/tun and CAP_NET_ADMIN): {exc}")


@pytest.fixture
def tap() -> Iterator[RadiotapTap]:
    with open_tap(tap_name()) as t:
        yield t


def config(interface: str, spool: Path | None = None, **sections: dict[str, object]) -> SensorConfig:
    data: dict[str, object] = {"capture": {"interface": interface, "recreate": False}, **sections}
    if spool is not None:
        data["spool"] = {"path": str(spool), "release": "broker"}  # no collector: the broker leg only
    return SensorConfig.model_validate(data)


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def replay_paced(tap: RadiotapTap, records: list[tuple[int, bytes]], speedup: float) -> None:
    """Write frames at their original pace, `speedup` times faster."""
    start, t0 = time.monotonic(), records[0][0]
    for ts, data in records:
        delay = (ts - t0) / 1e9 / speedup - (time.monotonic() - start)
        if delay > 0:
            time.sleep(delay)
        tap.write(data)


def frames_of(path: Path) -> list[tuple[int, bytes]]:
    return [(r.ts_ns, r.data if r.linktype == 127 else BARE_RADIOTAP + r.data) for r in read_capture(path)]


class Running:
    """A LiveCapture's loop in a thread, stopped and joined on exit."""

    def __init__(self, capture: LiveCapture) -> None:
        self.capture = capture
        self.thread = threading.Thread(target=capture.run, daemon=True)

    def __enter__(self) -> LiveCapture:
        self.thread.start()
        assert wait_until(lambda: self.capture.source is not None, 10), self.capture.down_reason
        return self.capture

    def __exit__(self, *exc: object) -> None:
        self.capture.stop()
        self.thread.join(10)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("kind", "fc_ok"), [("management", lambda fc: fc & 0x0C == 0), ("probe_requests", lambda fc: fc == 0x40)]
)
def test_kernel_filter_lets_through_only_the_configured_frames(
    tap: RadiotapTap, shared_data: Path, kind: str, fc_ok: Callable[[int], bool]
) -> None:
    # aircrack's capture: real management, control and data frames (bare 802.11, given a radiotap header).
    frames = frames_of(shared_data / "captures" / "aircrack_n-02.cap")
    wanted = sum(1 for _, data in frames if fc_ok(data[8]))
    cfg = config(tap.name, capture={"interface": tap.name, "recreate": False, "filter": kind})
    pipeline = Pipeline(cfg, FixedSalt(b"k" * 32, epoch="e"), ListSink())
    with Running(LiveCapture(cfg.capture, pipeline)) as capture:
        for _, data in frames:
            tap.write(data)
        assert wait_until(lambda: capture.counters.frames >= wanted)
        time.sleep(0.2)  # anything the filter wrongly let through would arrive by now
    assert 0 < wanted < len(frames)
    assert capture.counters.frames == wanted
    assert capture.counters.kernel_drops == capture.counters.app_drops == 0
    kinds = set(pipeline.decoder.stats.skipped)
    assert not kinds & {"data", "control"}, kinds


@pytest.mark.realdata
@pytest.mark.parametrize("neighbours", [0, 3], ids=["one network", "four networks, 181 BSSIDs"])
def test_kernel_filter_lets_through_probe_requests_and_only_the_store_networks_station_headers(
    tap: RadiotapTap, shared_data: Path, neighbours: int
) -> None:
    # Two real networks: aircrack_n-02's is the store's, the pmkid capture's (its first 3,000 frames:
    # data, null, QoS, PS-Poll, authentication and association of several stations) is a neighbour's.
    store = frames_of(shared_data / "captures" / "aircrack_n-02.cap")
    other = frames_of(shared_data / "captures" / "aircrack_pmkid-not-recognized.cap")[:3000]
    ap = "b0:b9:8a:56:8d:ea"
    # More networks make a long program (the real BSSID sorts last): far jumps must still land.
    more = [
        {"ssid": f"Net{n}", "bssids": [f"02:00:00:00:{n:02x}:{i:02x}" for i in range(60)]}
        for n in range(neighbours)
    ]
    cfg = config(
        tap.name,
        capture={"interface": tap.name, "recreate": False, "filter": "probe_requests",
                 "store_networks": [*more, {"ssid": "Shop", "bssids": [ap]}]},
    )  # fmt: skip
    replay = FrameDecoder(store_bssids=[bytes.fromhex(ap.replace(":", ""))])
    for _, data in store + other:
        replay.decode(0, 127, data)
    probes, connected = replay.stats.probe_requests, replay.stats.connected
    assert connected == 28 and probes > 0 and "data" in replay.stats.skipped  # the neighbour's were there
    sightings: list[ConnectedSighting] = []
    pipeline = Pipeline(cfg, FixedSalt(b"k" * 32, epoch="e"), ListSink(), on_connected=sightings.append)
    received: list[bytes] = []
    feed = pipeline.feed
    pipeline.feed = lambda ts, linktype, data: (received.append(data), feed(ts, linktype, data))[1]  # type: ignore[method-assign]
    with Running(LiveCapture(cfg.capture, pipeline)) as capture:
        for _, data in store + other:
            tap.write(data)
        assert wait_until(lambda: capture.counters.frames >= probes + connected)
        time.sleep(0.2)  # anything the filter wrongly let through would arrive by now
    assert capture.counters.frames == probes + connected
    stats = pipeline.decoder.stats
    assert (stats.probe_requests, stats.connected, stats.skipped, stats.errors) == (probes, connected, {}, {})
    assert len(sightings) == connected and {s.network for s in sightings} == {"Shop"}
    # Headers only: what reached user space of a station's frame ends 4 bytes past its 24-byte header.
    station_frames = [d for d in received if d[8] != 0x40]
    assert len(station_frames) == connected
    assert max(len(d) for d in station_frames) == len(BARE_RADIOTAP) + STATION_SNAP
    longer = {
        d[: len(BARE_RADIOTAP) + STATION_SNAP] for _, d in store if len(d) > len(BARE_RADIOTAP) + STATION_SNAP
    }
    assert any(d in longer for d in station_frames)  # frames with a body arrived cut


def test_connected_frames_through_the_tap_are_counted_as_one_connected_device(tap: RadiotapTap) -> None:
    ap, neighbour_ap = bytes.fromhex("f29fc2000001"), bytes.fromhex("f29fc2000002")
    phone, neighbour = bytes.fromhex("0a1b2c3d4e5f"), bytes.fromhex("0a1b2c3d4e60")
    frames = []
    for i in range(300):  # a phone on the store's Wi-Fi, its access point answering, and a neighbour's client
        frames.append(radiotap_station_frame(FC_NULL, phone, ap, i, -55, 2437))
        frames.append(
            radiotap_station_frame(FC_QOS_DATA, phone, ap, i, -40, 2437, uplink=False, payload=b"x" * 40)
        )
        frames.append(radiotap_station_frame(FC_NULL, neighbour, neighbour_ap, i, -50, 2437))
    frames.append(
        radiotap_probe_request(phone, 300, b"Shop", b"", -52, 2437)
    )  # its own address: the same phone
    cfg = config(
        tap.name,
        capture={"interface": tap.name, "recreate": False, "filter": "probe_requests",
                 "store_networks": [{"ssid": "Shop", "bssids": [ap.hex(":")]}]},
    )  # fmt: skip
    sink = ListSink()
    pipeline = Pipeline(cfg, FixedSalt(b"k" * 32, epoch="e"), sink)
    with Running(LiveCapture(cfg.capture, pipeline)) as capture:
        for i, data in enumerate(frames):
            tap.write(data)
            if i % 30 == 29:
                time.sleep(0.1)  # kernel timestamps: the 300 beats arrive over 1 s, some ticks apart
        assert wait_until(lambda: capture.counters.frames >= 601)
        time.sleep(0.2)
    assert capture.counters.frames == 601  # the neighbour's 300 never left the kernel
    pipeline.finish()
    visits = [e for e in sink.events if isinstance(e, VisitEvent)]
    counts = [e for e in sink.events if isinstance(e, CountEvent)]
    assert [(v.connected, v.addresses) for v in visits] == [(True, 1)]  # the probe joined the station's visit
    # one count interval, or two when the second ran across a 5-minute boundary
    assert {(c.connected, c.devices) for c in counts} == {(1, 1)} and len(counts) <= 2
    assert pipeline.tracker is not None and pipeline.tracker.links_by_address == 1


@pytest.mark.realdata
def test_live_capture_decodes_the_same_probe_requests_as_replay(tap: RadiotapTap, shared_data: Path) -> None:
    path = shared_data / "captures" / "baccichet_iPhone12-M_anonymized.pcap"
    frames = frames_of(path)
    cfg = config(tap.name)
    replayed = Pipeline(cfg, FixedSalt(b"k" * 32, epoch="e"), ListSink())
    for ts, data in frames:
        replayed.feed(ts, 127, data)
    live = Pipeline(cfg, FixedSalt(b"k" * 32, epoch="e"), ListSink())
    with Running(LiveCapture(cfg.capture, live)) as capture:
        for _, data in frames:
            tap.write(data)
        assert wait_until(lambda: capture.counters.frames >= len(frames))
    assert live.decoder.stats.probe_requests == replayed.decoder.stats.probe_requests == len(frames)
    assert live.decoder.stats.errors == replayed.decoder.stats.errors
    # Kernel timestamps: the time the frames arrived, not the capture's.
    assert abs(live.last_ts_ns - time.time_ns()) < 60e9


@pytest.mark.realdata
@pytest.mark.slow
def test_capture_recovers_from_the_interface_vanishing_without_losing_open_visits(shared_data: Path) -> None:
    name = tap_name()
    frames = frames_of(shared_data / "captures" / "baccichet_S21Ultra-M_anonymized.pcap")
    cfg = config(
        name, estimator={"enabled": False}
    )  # every address its own device: the same frames, the same visits
    pipeline = Pipeline(cfg, FixedSalt(b"k" * 32, epoch="e"), ListSink())
    tap = open_tap(name)
    with Running(LiveCapture(cfg.capture, pipeline)) as capture:
        for _, data in frames:
            tap.write(data)
        assert wait_until(lambda: capture.counters.frames >= len(frames))
        open_before = pipeline.presence.open_visits
        tap.close()  # the interface is gone: the socket reports ENETDOWN
        assert wait_until(lambda: capture.source is None and capture.counters.failures >= 1)
        assert name in capture.down_reason
        tap = open_tap(name)  # the interface is back: the loop reopens with backoff
        assert wait_until(lambda: capture.source is not None)
        for _, data in frames:
            tap.write(data)
        assert wait_until(lambda: capture.counters.frames >= 2 * len(frames))
    tap.close()
    assert open_before >= 1
    assert pipeline.presence.open_visits == open_before  # the same devices, still in their visits
    assert pipeline.presence.visits_emitted == 0
    assert capture.counters.opens == 2


def provisioned_key(tmp_path: Path, store: str = "demo") -> Path:
    now = time.time_ns()
    seed = StoreSeed.create(store, SaltSchedule.parse(DEFAULT_SPEC, "UTC"), now)
    path = tmp_path / "sensor.key"
    KeyStore.provision(seed, path, now).close()
    seed.destroy()
    return path


def subscriber(broker: Broker, topic: str) -> tuple[MqttClient, queue.Queue[Message]]:
    client = MqttClient(BrokerSettings(broker.host, broker.port, client_id=f"t-{tap_name()}"))
    client.connect()
    got: queue.Queue[Message] = queue.Queue()
    assert client.subscribe(topic, got.put, wait_s=5)
    return client, got


def drain(got: queue.Queue[Message]) -> list[Message]:
    out = []
    while True:
        try:
            out.append(got.get(timeout=1))
        except queue.Empty:
            return out


@pytest.mark.realdata
@pytest.mark.mqtt
def test_live_sensor_publishes_visits_counts_and_status_to_mosquitto(
    tap: RadiotapTap, shared_data: Path, broker: Broker, tmp_path: Path
) -> None:
    frames = frames_of(shared_data / "captures" / "baccichet_iPhone12-M_anonymized.pcap")
    cfg = config(
        tap.name,
        tmp_path / "spool.db",
        mqtt={"host": broker.host, "port": broker.port},
        privacy={"key_file": str(provisioned_key(tmp_path))},
        health={"metrics_port": 0},
    )
    sub, got = subscriber(broker, "footfall/v1/#")
    salts = KeyStore.open(cfg.privacy.key_file)  # type: ignore[arg-type]
    sink = MqttSink.connect(cfg, "test", time.time_ns())
    sensor = LiveSensor(cfg, salts, sink, "test", spool_depth=lambda: sink.spool_depth, closing=[salts.close])
    runner = threading.Thread(target=sensor.run, daemon=True)
    runner.start()
    assert wait_until(lambda: sensor.capture.source is not None), sensor.capture.down_reason
    replay_paced(tap, frames, speedup=600)  # 20 minutes of one iPhone in 2 s
    assert wait_until(lambda: sensor.capture.counters.frames >= len(frames))
    sensor.stop()
    runner.join(30)
    messages = drain(got)
    sub.close()
    by_kind: dict[str, list[dict[str, object]]] = {}
    for m in messages:
        by_kind.setdefault(m.topic.rsplit("/", 1)[1], []).append(json.loads(m.payload))
    assert by_kind.get("visit") and by_kind.get("count"), sorted(by_kind)
    assert sum(int(v["frames"]) for v in by_kind["visit"]) == len(frames)  # type: ignore[call-overload]
    final = by_kind["status"][-1]
    assert final["state"] == "offline" and final["interface"] == tap.name
    assert final["frames"] == len(frames) and final["drops"] == 0 and final["epoch"]
    assert final["spool_depth"] >= 0  # read from the MqttSink's spool
    raw = b"".join(m.payload for m in messages)
    for _, data in frames[:50]:  # no transmitter address, in any spelling, reached the broker
        mac = data[data[2] + 10 : data[2] + 16]
        assert mac.hex().encode() not in raw and mac.hex(":").encode() not in raw


@pytest.mark.realdata
@pytest.mark.mqtt
@pytest.mark.slow
def test_run_command_captures_until_sigterm_and_then_publishes_open_visits(
    tap: RadiotapTap, shared_data: Path, broker: Broker, tmp_path: Path
) -> None:
    frames = frames_of(shared_data / "captures" / "baccichet_S21Ultra-M_anonymized.pcap")
    port = free_port()
    cfg_file = tmp_path / "sensor.yaml"
    cfg_file.write_text(
        f"mqtt: {{host: {broker.host}, port: {broker.port}}}\n"
        f"privacy: {{key_file: {provisioned_key(tmp_path)}}}\n"
        f"capture: {{interface: {tap.name}, recreate: false}}\n"
        f"health: {{metrics_port: {port}, status_interval_s: 5}}\n"
        f"spool: {{path: {tmp_path / 'spool.db'}, release: broker}}\n"
    )
    sub, got = subscriber(broker, "footfall/v1/#")
    code = "import sys; from sensor.cli.live import run; run(sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", code, "--config", str(cfg_file)], stderr=subprocess.PIPE)
    try:
        online = got.get(timeout=20)
        assert online.topic.endswith("/status") and json.loads(online.payload)["state"] == "online"
        replay_paced(tap, frames, speedup=1000)
        scrape = ""
        for _ in range(100):
            scrape = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            if f"footfall_sensor_frames_total {len(frames)}.0" in scrape:
                break
            time.sleep(0.1)
        assert f"footfall_sensor_frames_total {len(frames)}.0" in scrape
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    messages = drain(got)
    sub.close()
    kinds = [m.topic.rsplit("/", 1)[1] for m in messages]
    assert "visit" in kinds, kinds  # closed by the graceful stop, not lost
    last_status = json.loads([m for m in messages if m.topic.endswith("/status")][-1].payload)
    assert last_status["state"] == "offline" and last_status["frames"] == len(frames)


# -- the loop's logic on a fake source and a fake clock (no TAP needed) --------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def wall_ns(self) -> int:
        return int(self.t * 1e9) + 1_700_000_000_000_000_000

    def monotonic(self) -> float:
        return self.t


class FakeSource:
    def __init__(self, interface: str, frames: list[tuple[int, bytes]] | None = None) -> None:
        self.interface, self.linktype, self.truncated, self.outgoing, self.capacity = (
            interface,
            127,
            0,
            0,
            100,
        )
        self.frames = frames or []
        self.closed = False
        self.fail: OSError | None = None

    def wait(self, timeout_s: float) -> bool:
        if self.fail is not None:
            return True
        return bool(self.frames)

    def read(self, limit: int) -> list[tuple[int, bytes]]:
        if self.fail is not None:
            raise self.fail
        out, self.frames = self.frames[:limit], self.frames[limit:]
        return out

    def kernel_stats(self) -> tuple[int, int]:
        return (0, 0)

    def close(self) -> None:
        self.closed = True


def fake_capture(**capture: object) -> tuple[LiveCapture, FakeClock, list[FakeSource], list[str]]:
    cfg = config("mon0", capture={"interface": "mon0", **capture})
    clock = FakeClock()
    sources: list[FakeSource] = []
    setups: list[str] = []
    present = {"up": True}

    def opener(c: object) -> FakeSource:
        if not present["up"]:
            raise CaptureError("cannot capture on mon0: no such interface")
        sources.append(FakeSource("mon0"))
        return sources[-1]

    def state_of(name: str) -> IfaceState:
        return IfaceState(name, present["up"], present["up"], 803 if present["up"] else None)

    def setup(c: object) -> None:
        setups.append("setup")
        present["up"] = True

    pipeline = Pipeline(cfg, FixedSalt(b"k" * 32, epoch="e"), ListSink())
    capture_ = LiveCapture(
        cfg.capture, pipeline, clock=clock, open_source=opener, state_of=state_of, setup_iface=setup
    )
    capture_.present = present  # type: ignore[attr-defined]
    return capture_, clock, sources, setups


def test_a_stall_reopens_the_capture_after_the_stall_timeout() -> None:
    capture, clock, sources, _ = fake_capture(stall_timeout_s=30)
    capture.step(0)
    assert len(sources) == 1
    for _ in range(29):
        clock.t += 1
        capture.step(0)
    assert capture.counters.stalls == 0
    clock.t += 1.5
    capture.step(0)
    assert capture.counters.stalls == 1 and sources[0].closed
    capture.step(0)
    assert len(sources) == 2 and capture.source is sources[1]


def test_a_socket_error_closes_the_capture_and_it_reopens_with_backoff() -> None:
    capture, clock, sources, _ = fake_capture()
    capture.step(0)
    sources[0].fail = OSError(100, "Network is down")
    capture.step(0)
    assert capture.source is None and "Network is down (errno 100)" in capture.down_reason
    capture.step(0)
    assert len(sources) == 1  # not before the backoff
    clock.t += 1.0
    capture.step(0)
    assert len(sources) == 2 and capture.counters.opens == 2


def test_a_vanished_interface_is_set_up_again_when_recreate_is_on() -> None:
    capture, _clock, sources, setups = fake_capture(recreate=True)
    capture.present["up"] = False  # type: ignore[attr-defined]
    capture.step(0)
    assert setups == ["setup"] and capture.source is sources[0]


def test_a_vanished_interface_is_waited_for_when_recreate_is_off() -> None:
    capture, clock, sources, setups = fake_capture(recreate=False)
    capture.present["up"] = False  # type: ignore[attr-defined]
    for _ in range(5):
        capture.step(0)
        clock.t += 10
    assert setups == [] and sources == [] and "no such interface" in capture.down_reason
    assert capture.counters.failures >= 2
    capture.present["up"] = True  # type: ignore[attr-defined]
    clock.t += 30
    capture.step(0)
    assert capture.source is sources[0]


def test_time_passes_in_the_pipeline_while_no_frame_arrives() -> None:
    capture, clock, _, _ = fake_capture()
    seen: list[int] = []
    capture.pipeline.advance = seen.append  # type: ignore[method-assign]
    capture.step(0)
    clock.t += 1
    capture.step(0)
    clock.t += 1
    capture.step(0)
    assert len(seen) == 2 and seen[1] - seen[0] == 1_000_000_000


def test_a_frame_the_pipeline_fails_on_is_counted_as_an_app_drop() -> None:
    capture, _clock, sources, _ = fake_capture()
    capture.step(0)

    def boom(ts: int, linktype: int, data: bytes) -> None:
        raise RuntimeError("bug")

    capture.pipeline.feed = boom  # type: ignore[method-assign]
    sources[0].frames = [(1, b"x"), (2, b"y")]
    capture.step(0)
    assert capture.counters.app_drops == 2 and capture.counters.frames == 2
    assert snapshot(capture).drops == 2
