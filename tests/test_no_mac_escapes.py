"""THE PROOF: no MAC address escapes the pipeline, in any byte written or sent.

A capture of 1,000 known MACs (half randomized, half global under real OUIs) runs through the real
programs: `footfall-sensor replay --to mqtt` and `footfall-collector run` as subprocesses at debug log
level against a real Mosquitto (itself logging everything), a subscriber on `#` recording every topic and
payload, the opt-out and consent imports of the CLI, and `footfall-collector report` in all three
formats. Then every byte is searched for every MAC, in every common spelling (aa:bb:cc:dd:ee:ff and with
'-', aabb.ccdd.eeff, aabbccddeeff, either case or mixed) and as its 6 raw bytes: the MQTT topics and
payloads, the SQLite database with its -wal and -shm, the broker's persistence and log, every program's
stdout and stderr, the reports, and every other file in the working directory. Only the inputs are left
out: the capture and the two CSV exports, which hold the MACs by nature.

Connected stations are in it too: 50 stations of the store network (5 of them opted-out devices, 5
consented ones, the rest seen only connected) and 50 of a neighbour's network send data, null and QoS
frames with encrypted bodies, and their addresses are searched for like the probe senders'.

The same run shows that the 20 opted-out devices leave no trace (their frames dropped and counted, in no
visit and no count) and that consent tokens ride on the 20 consented devices' visits only and join to
their profile ids in the collector, the consented stations' connected visits included.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from footfall_dev.craft import (
    FC_NULL,
    FC_QOS_DATA,
    FC_QOS_NULL,
    radiotap_probe_request,
    radiotap_station_frame,
    rates_element,
    vendor_element,
)
from paho.mqtt.enums import CallbackAPIVersion

from collector.storage.sqlite import SqliteStore
from footfall.events import VisitEvent
from footfall.tokens import TokenKey
from sensor.config import SensorConfig
from sensor.decode.capture import PcapWriter
from sensor.keys.keystore import StoreSeed
from sensor.keys.salts import SaltSchedule
from sensor.keys.seedsalts import SeedSalts
from sensor.pipeline import ListSink, Pipeline
from tests.conftest import Broker, make_broker

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

STORE, SENSOR = "paris-01", "s1"
T0 = 1_714_550_400 * 10**9  # 2024-05-01T08:00Z
N_MACS, N_OPTOUT, N_CONSENT = 1000, 20, 20
STORE_AP, NEIGHBOUR_AP = bytes.fromhex("f29fc2000001"), bytes.fromhex("f29fc2000002")
N_STATIONS = 50  # per network
# Connected visits: the 40 stations seen only connected, and the 5 consented devices' connected spells (apart
# in time from their probing, so visits of their own); the opted-out 5 and the neighbour's 50 give none.
N_CONNECTED_VISITS = N_STATIONS - 10 + 5
UPLINK_PER_STATION = 4  # of a station's 8 frames, those it sends (station_frames: every other one)
GLOBAL_OUIS = [
    bytes.fromhex(o) for o in ("3c22fb", "f0d1a9", "8cf5a3", "a4c361", "dcfb48", "98f621", "40ec99")
]
BIN = Path(sys.executable).parent
REGISTRY_CLI = (
    "import sys; from collector.cli.main import main; from collector.cli.privacy import COMMANDS\n"
    "for g in COMMANDS:\n    main.commands.setdefault(g.name, g)\nmain()"
)


def make_macs() -> list[bytes]:
    rng = random.Random(20240501)
    macs: list[bytes] = []
    while len(macs) < N_MACS:
        if len(macs) % 2:
            mac = rng.choice(GLOBAL_OUIS) + rng.randbytes(3)
        else:
            first = (rng.randrange(256) & 0xFC) | 0x02  # locally administered, unicast
            mac = bytes([first]) + rng.randbytes(5)
        if mac not in macs:
            macs.append(mac)
    return macs


def device_frames(index: int, mac: bytes, rng: random.Random) -> list[tuple[int, bytes]]:
    """One device's visit: 6 probes 45-75 s apart (a visitor) or 3 (a passerby), its own fingerprint."""
    elements = rates_element((2, 4, 11, 22, 12, 18, 24, 36)) + vendor_element(index.to_bytes(3, "big"), 1)
    ts = T0 + index * 7 * 10**9
    out = []
    for seq in range(6 if index % 3 else 3):
        ssid = f"home-{index}".encode() if index % 5 == 0 else b""
        out.append((ts, radiotap_probe_request(mac, seq, ssid, elements, rng.randint(-65, -45), 2437)))
        ts += rng.randint(45, 75) * 10**9
    return out


def make_stations(macs: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(the store network's stations, the neighbour's): 5 opted-out and 5 consented devices connect too."""
    rng = random.Random(20240502)
    fresh: list[bytes] = []
    while len(fresh) < 2 * N_STATIONS - 10:
        mac = bytes([(rng.randrange(256) & 0xFC) | 0x02]) + rng.randbytes(5)  # per-network addresses
        if mac not in macs and mac not in fresh:
            fresh.append(mac)
    return macs[100:105] + macs[200:205] + fresh[: N_STATIONS - 10], fresh[N_STATIONS - 10 :]


def station_frames(index: int, mac: bytes, ap: bytes, rng: random.Random) -> list[tuple[int, bytes]]:
    """A connected phone: keep-alives up, QoS data with an encrypted body down and up, every 20-40 s."""
    ts = T0 + index * 11 * 10**9
    out = []
    for seq in range(8):
        kind = (FC_NULL, FC_QOS_DATA, FC_QOS_NULL)[seq % 3]
        body = rng.randbytes(64) if kind == FC_QOS_DATA else b""
        frame = radiotap_station_frame(
            kind, mac, ap, seq, rng.randint(-70, -40), 2437, uplink=seq % 2 == 0, payload=body
        )
        out.append((ts, frame))
        ts += rng.randint(20, 40) * 10**9
    return out


def all_station_frames(store: list[bytes], neighbour: list[bytes]) -> dict[bytes, list[tuple[int, bytes]]]:
    rng = random.Random(11)
    nets = [(m, STORE_AP) for m in store] + [(m, NEIGHBOUR_AP) for m in neighbour]
    return {m: station_frames(i, m, ap, rng) for i, (m, ap) in enumerate(nets)}


# -- the scanner -----------------------------------------------------------------------------------------------

_HEX = rb"[0-9a-fA-F]"
_SEPARATED = re.compile(rb"(?=(" + rb"[:. -]".join([_HEX * 2] * 6) + rb"))")  # also aa.bb... and aa bb...
_DOTTED = re.compile(rb"(?=(" + rb"\.".join([_HEX * 4] * 3) + rb"))")
_HEX_RUN = re.compile(_HEX + rb"{12,}")
_SEP = re.compile(rb"[:. -]")


def find_macs(data: bytes, macs: list[bytes]) -> list[tuple[str, bytes]]:
    """(spelling, mac) for every MAC found in `data`, in any spelling: a superset of the exact forms.

    Text forms are found by shape and normalised (separators out, lower case) before the lookup, so mixed
    case and mixed separators count too; every 12-digit window of a longer hex run counts as bare hex.
    """
    bare = {m.hex().encode(): m for m in macs}
    hits = []
    for name, pattern in (("separated", _SEPARATED), ("dotted", _DOTTED)):
        for match in pattern.finditer(data):
            key = _SEP.sub(b"", match[1]).lower()
            if key in bare:
                hits.append((name, bare[key]))
    for match in _HEX_RUN.finditer(data):
        run = match[0].lower()
        hits += [("bare hex", bare[run[i : i + 12]]) for i in range(len(run) - 11) if run[i : i + 12] in bare]
    hits += [("raw bytes", m) for m in macs if m in data]
    return hits


def spellings(mac: bytes) -> list[bytes]:
    h = mac.hex()
    pairs = [h[i : i + 2] for i in range(0, 12, 2)]
    forms = [":".join(pairs), "-".join(pairs), ".".join(h[i : i + 4] for i in range(0, 12, 4)), h]
    return [f.encode() for f in forms] + [f.upper().encode() for f in forms]


# -- the run ------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    macs: list[bytes]
    stations: list[bytes]  # the store network's, then the neighbour's
    optout: list[bytes]
    consent: dict[bytes, str]  # mac -> profile id
    key: TokenKey
    work: Path
    inputs: Path
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)

    def payloads(self, kind: str) -> list[dict[str, object]]:
        return [json.loads(p) for t, p in self.messages if t.endswith(f"/{kind}")]


class Recorder:
    """A subscriber on `#`: every topic and payload the broker carries, retained ones included."""

    def __init__(self, broker: Broker, out: list[tuple[str, bytes]]) -> None:
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id="recorder", protocol=paho.MQTTv5)
        self._client.on_message = lambda c, u, m: out.append((m.topic, bytes(m.payload)))
        self._client.connect(broker.host, broker.port)
        self._client.subscribe("#", qos=1)
        self._client.loop_start()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def run_cli(run: Run, name: str, argv: list[str], timeout_s: float = 120) -> str:
    """Run a program to its end; its stdout and stderr are kept in the working dir (and scanned)."""
    with (run.work / f"{name}.out").open("wb") as out, (run.work / f"{name}.err").open("wb") as err:
        proc = subprocess.run(argv, stdout=out, stderr=err, timeout=timeout_s, check=False, cwd=run.work)
    text = (run.work / f"{name}.out").read_text() + (run.work / f"{name}.err").read_text()
    run.logs[name] = text
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{text[-3000:]}"
    return text


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    base = tmp_path_factory.mktemp("proof")
    work, inputs = base / "work", base / "inputs"
    work.mkdir()
    inputs.mkdir()
    macs = make_macs()
    store_stations, neighbour_stations = make_stations(macs)
    connected = all_station_frames(store_stations, neighbour_stations)
    optout = macs[100 : 100 + N_OPTOUT]
    consent = {m: f"crm-{i:04d}" for i, m in enumerate(macs[200 : 200 + N_CONSENT])}
    rng = random.Random(7)
    with PcapWriter(inputs / "store.pcap", 127, nanosecond=True) as writer:
        probing = [f for i, m in enumerate(macs) for f in device_frames(i, m, rng)]
        for ts, data in sorted(probing + [f for frames in connected.values() for f in frames]):
            writer.write(ts, data)
    # The exports as a page and a portal would write them, in assorted spellings.
    forms = [lambda m: m.hex(":").upper(), lambda m: m.hex("-"), lambda m: m.hex()]
    (inputs / "optout.csv").write_text(
        "profile_id,mac,timestamp,source\n"
        + "".join(f",{forms[i % 3](m)},2024-04-30T10:00:00Z,optout-page\n" for i, m in enumerate(optout))
    )
    (inputs / "consent.csv").write_text(
        "profile_id,mac,timestamp,source\n"
        + "".join(
            f"{p},{forms[i % 3](m)},1714460400,captive-portal\n" for i, (m, p) in enumerate(consent.items())
        )
    )

    key = TokenKey.generate()
    key.save(work / "token.key")
    seed = StoreSeed.create(
        STORE, SaltSchedule.parse("daily@04:00", "UTC"), T0 - 86_400 * 10**9, bytes(range(32))
    )
    seed.save(work / "store.seed")
    # `user root`: a broker started as root keeps its rights, so it can save its persistence file here to
    # be scanned too (as another user it does so anyway).
    broker = make_broker(work / "broker", "log_type all\nconnection_messages true\nuser root\n")
    broker.start()
    result = Run(macs, store_stations + neighbour_stations, optout, consent, key, work, inputs)
    recorder = Recorder(broker, result.messages)
    try:
        (work / "collector.yaml").write_text(
            f"mqtt: {{port: {broker.port}, client_id: proof-collector, session_expiry_s: 600}}\n"
            f"store: {{path: {work / 'footfall.db'}}}\n"
            f"privacy: {{token_key_file: {work / 'token.key'}, stores: [{STORE}]}}\n"
            "ingest: {flush_interval_s: 0.2}\nreport: {timezone: UTC}\n"
        )
        (work / "sensor.yaml").write_text(
            f"site: {{store: {STORE}, sensor: {SENSOR}}}\nmqtt: {{port: {broker.port}}}\n"
            f"privacy: {{mode: consent, token_key_file: {work / 'token.key'}}}\n"
            "capture: {filter: probe_requests, store_networks: "
            f"[{{ssid: Shop, bssids: ['{STORE_AP.hex(':')}']}}]}}\n"
        )
        registry = [sys.executable, "-c", REGISTRY_CLI, "--log-level", "debug"]
        cfg = ["--config", str(work / "collector.yaml")]
        run_cli(result, "optout-import", [*registry, "optout", "import", str(inputs / "optout.csv"), *cfg])
        run_cli(result, "consent-import", [*registry, "consent", "import", str(inputs / "consent.csv"), *cfg])

        collector_log = work / "collector.err"
        with (work / "collector.out").open("wb") as out, collector_log.open("wb") as err:
            collector = subprocess.Popen(
                [str(BIN / "footfall-collector"), "--log-level", "debug", "run", *cfg, "--until-idle", "4"],
                stdout=out, stderr=err, cwd=work,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 30
                while b"collecting" not in collector_log.read_bytes():
                    assert collector.poll() is None, collector_log.read_text()
                    assert time.monotonic() < deadline, "the collector did not start"
                    time.sleep(0.05)
                run_cli(
                    result,
                    "sensor",
                    [str(BIN / "footfall-sensor"), "--log-level", "debug", "replay", str(inputs / "store.pcap"),
                     "--config", str(work / "sensor.yaml"), "--to", "mqtt", "--seed", str(work / "store.seed")],
                )  # fmt: skip
                # While the collector still runs its database has a live WAL: keep a copy to scan it too.
                time.sleep(1.0)
                snapshot = work / "live-snapshot"
                snapshot.mkdir()
                for part in work.glob("footfall.db*"):
                    shutil.copyfile(part, snapshot / part.name)
                assert collector.wait(timeout=120) == 0, collector_log.read_text()[-3000:]
            finally:
                if collector.poll() is None:
                    collector.kill()
        result.logs["collector"] = collector_log.read_text()
        for fmt in ("table", "csv", "json"):
            run_cli(result, f"report-{fmt}", [str(BIN / "footfall-collector"), "--log-level", "debug", "report",
                                              "--store", STORE, *cfg, "--format", fmt])  # fmt: skip
        run_cli(result, "consent-visits", [*registry, "consent", "visits", "--store", STORE, "--from", "2024-05-01",
                                           "--to", "2024-05-01", "--format", "json", *cfg])  # fmt: skip
        time.sleep(0.5)  # the last PUBACKed messages reach the recorder too
    finally:
        recorder.close()
        broker.stop()  # writes its persistence file, which is scanned as well
    (work / "mqtt-recorded.bin").write_bytes(b"\n".join(t.encode() + b" " + p for t, p in result.messages))
    yield result


# -- the proof ------------------------------------------------------------------------------------------------------


def test_the_scanner_finds_every_spelling_and_the_raw_bytes() -> None:
    mac = bytes.fromhex("3c22fb12ab9f")
    for form in [*spellings(mac), b"3C:22-fb:12:AB-9f", b"3c.22.fb.12.ab.9f", b"3c 22 fb 12 ab 9f", mac]:
        assert find_macs(b"x" + form + b"y", [mac]), form
    assert find_macs(b"ff" + mac.hex().encode() + b"00", [mac]) == [("bare hex", mac)]
    assert not find_macs(b"3c22fb12ab9e 3c:22:fb:12:ab", [mac])


def test_the_inputs_hold_the_macs_so_a_miss_is_not_the_scanners_fault(run: Run) -> None:
    found = {m for _, m in find_macs((run.inputs / "store.pcap").read_bytes(), run.macs + run.stations)}
    assert found == set(run.macs + run.stations)
    exports = (run.inputs / "optout.csv").read_bytes() + (run.inputs / "consent.csv").read_bytes()
    assert {m for _, m in find_macs(exports, run.macs)} == set(run.optout) | set(run.consent)


def test_no_mac_is_in_any_byte_written_or_sent(run: Run) -> None:
    scanned: dict[str, int] = {}
    hits: list[str] = []
    searched = run.macs + run.stations  # probe senders and connected stations alike
    for topic, payload in run.messages:
        for blob in (topic.encode(), payload):
            hits += [f"MQTT {topic}: {how} {mac.hex()}" for how, mac in find_macs(blob, searched)]
    for path in sorted(run.work.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            scanned[path.name] = len(data)
            hits += [f"{path.name}: {how} {mac.hex()}" for how, mac in find_macs(data, searched)]
    assert not hits, "\n".join(hits[:50])
    # The search covered what it should: the database, the broker's files and every log, at debug level.
    names = {
        "footfall.db",
        "footfall.db-wal",
        "footfall.db-shm",
        "mosquitto.db",
        "mosquitto.log",
        "sensor.err",
    }
    assert names | {"collector.err", "report-json.out"} <= set(scanned)
    assert (
        scanned["footfall.db"] > 100_000
        and scanned["footfall.db-wal"] > 100_000
        and scanned["sensor.err"] > 10_000
    )
    assert "DEBUG" in run.logs["sensor"] and "DEBUG" in run.logs["collector"]
    assert len(run.payloads("visit")) == N_MACS - N_OPTOUT + N_CONNECTED_VISITS


def test_opted_out_devices_are_dropped_counted_and_in_no_visit_or_count(run: Run) -> None:
    frames = {m: device_frames(i, m, random.Random(0)) for i, m in enumerate(run.macs)}
    connected = all_station_frames(run.stations[:N_STATIONS], run.stations[N_STATIONS:])
    # the opted-out devices' probe requests, and the frames of the 5 of them that are connected to the store
    dropped_probes = sum(len(frames[m]) for m in run.optout)
    dropped = dropped_probes + sum(len(connected[m]) for m in run.stations[:5])
    assert set(run.stations[:5]) <= set(run.optout)
    store_frames = sum(len(connected[m]) for m in run.stations[:N_STATIONS])
    assert f"{store_frames} of stations connected to store networks" in run.logs["sensor"]
    assert f"dropped {dropped} frames of opted-out devices" in run.logs["sensor"]
    assert f"({N_OPTOUT} opt-outs, {N_CONSENT} consents)" in run.logs["sensor"]
    total = sum(len(f) for f in frames.values())
    # count frames are probe requests and one heartbeat per connected station's own frame 20-40 s apart
    heartbeats = N_CONNECTED_VISITS * UPLINK_PER_STATION
    assert sum(int(c["frames"]) for c in run.payloads("count")) == total - dropped_probes + heartbeats  # type: ignore[call-overload]
    # What the opted-out devices would have produced, from the same seed, on their own: none of it exists.
    config = SensorConfig.model_validate(
        {"site": {"store": STORE, "sensor": SENSOR}, "privacy": {"mode": "consent"}}
    )
    sink = ListSink()
    pipeline = Pipeline(config, SeedSalts(StoreSeed.load(run.work / "store.seed")), sink)
    for ts, data in sorted(f for m in run.optout for f in frames[m]):
        pipeline.feed(ts, 127, data)
    pipeline.finish()
    would_be = [e for e in sink.events if isinstance(e, VisitEvent)]
    assert len(would_be) == N_OPTOUT
    published = b"\n".join(p for _, p in run.messages)
    database = (run.work / "footfall.db").read_bytes()
    for v in would_be:
        for trace in (v.event_id.encode(), v.device.encode()):
            assert trace not in published and trace not in database


def test_consent_tokens_ride_only_on_consented_devices_visits_and_join_to_their_profiles(run: Run) -> None:
    expected = {run.key.token(m): p for m, p in run.consent.items()}
    tokens = [v.get("consent") for v in run.payloads("visit")]
    assert {t for t in tokens if t is not None} == set(expected)
    # the 5 consented devices that also connect are recognised on their connected visit too
    connected = [run.consent[m] for m in run.stations[:N_STATIONS] if m in run.consent]
    assert len(connected) == 5
    assert sum(t is not None for t in tokens) == N_CONSENT + len(connected)
    assert not {run.key.token(m) for m in run.macs if m not in run.consent} & set(tokens)
    store = SqliteStore(run.work / "footfall.db", create=False)
    try:
        joined = store.consented_visits(
            STORE, datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)
        )
    finally:
        store.close()
    visits_of = sorted([*expected.values(), *connected])
    assert sorted(v.profile for v in joined) == visits_of
    listed = json.loads((run.work / "consent-visits.out").read_text())
    assert sorted(v["profile_id"] for v in listed) == visits_of
