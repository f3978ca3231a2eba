"""TLS identities against a real Mosquitto run with config/mosquitto-tls.conf and a PKI made by `pki`.

No certificate, a certificate from another CA or a revoked one: refused at the handshake. Sensor A
publishing as sensor B: refused by the ACL (MQTT 5 "Not authorized") and never stored; a payload whose
store/sensor disagree with the topic: rejected by the collector. Everything legitimate flows.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import stat
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from collector.cli.pki import pki as pki_cli
from collector.config import CollectorConfig
from collector.ingest.service import Collector
from collector.pki.ca import Pki, PkiError
from collector.storage.sqlite import SqliteStore
from footfall.mqtt import BrokerSettings, Message, MqttClient, MqttError, TlsSettings
from sensor.config import SensorConfig
from sensor.publish.mqttsink import MqttSink
from tests.conftest import REPO, Broker, free_port, mosquitto_binary
from tests.test_report import visit

pytestmark = pytest.mark.mqtt

NOW = datetime.now(UTC)
T0 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
IDENTITIES = [("collector", "collector-1"), ("sensor", "paris-01/door-1"), ("sensor", "paris-01/door-2")]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    made = Pki.init(tmp_path_factory.mktemp("pki") / "pki", NOW)
    made.issue("broker", "localhost", NOW, hosts=["127.0.0.1"])
    for kind, name in IDENTITIES:
        made.issue(kind, name, NOW)
    return made


@pytest.fixture(scope="module")
def broker(ca: Pki) -> Iterator[Broker]:
    directory = ca.root.parent / "broker"
    directory.mkdir()
    port = free_port()
    text = (REPO / "config" / "mosquitto-tls.conf").read_text().replace("/etc/footfall/pki", str(ca.root))
    text = re.sub(r"(?m)^listener 8883$", f"listener {port} 127.0.0.1", text)
    text = re.sub(r"(?m)^persistence_location .*$", f"persistence_location {directory}/", text)
    text = text.replace("log_dest syslog", "log_dest stderr")
    if os.geteuid() == 0:  # as root Mosquitto becomes `mosquitto`, which cannot read the 0600 test keys
        text += "\nuser root\n"
    (directory / "mosquitto.conf").write_text(text)
    mosquitto_binary()
    b = Broker("127.0.0.1", port, directory / "mosquitto.conf", directory / "mosquitto.log")
    b.start()
    yield b
    b.stop()


def tls(ca: Pki, name: str | None) -> TlsSettings:
    if name is None:
        return TlsSettings(ca.root / "ca.crt")
    found = ca.find(name)
    assert found is not None
    cert, key = ca.paths(found)
    return TlsSettings(ca.root / "ca.crt", cert, key)


def client(broker: Broker, settings: TlsSettings | None, client_id: str) -> MqttClient:
    return MqttClient(
        BrokerSettings(broker.host, broker.port, client_id=client_id, tls=settings, reconnect_max_s=1)
    )


def refused(broker: Broker, settings: TlsSettings | None, client_id: str) -> bool:
    c = client(broker, settings, client_id)
    try:
        c.connect(timeout_s=2)
    except MqttError:
        return True
    c.close()
    return False


def test_a_client_without_a_certificate_is_refused(ca: Pki, broker: Broker) -> None:
    assert refused(broker, tls(ca, None), "no-cert")
    assert refused(broker, None, "plain-text")


def test_a_certificate_from_another_ca_is_refused(ca: Pki, broker: Broker, tmp_path: Path) -> None:
    other = Pki.init(tmp_path / "other", NOW)
    other.issue("sensor", "paris-01/door-1", NOW)  # the same name, a foreign signature
    found = other.find("paris-01/door-1")
    assert found is not None
    cert, key = other.paths(found)
    assert refused(broker, TlsSettings(ca.root / "ca.crt", cert, key), "impostor")


def collector_config(ca: Pki, broker: Broker, db: Path) -> CollectorConfig:
    found = ca.find("collector-1")
    assert found is not None
    cert, key = ca.paths(found)
    return CollectorConfig.model_validate(
        {
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker.port,
                "client_id": "collector-1",
                "tls": {"ca_file": str(ca.root / "ca.crt"), "cert_file": str(cert), "key_file": str(key)},
            },
            "store": {"path": str(db)},
            "ingest": {"flush_interval_s": 0.1},
        }
    )


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_sensor_a_cannot_publish_as_sensor_b_and_the_collector_stores_neither_forgery(
    ca: Pki, broker: Broker, tmp_path: Path
) -> None:
    collector = Collector(collector_config(ca, broker, tmp_path / "f.db"))
    collector.start()
    a = client(broker, tls(ca, "paris-01/door-1"), "door-1")
    a.connect()
    # On B's topic: the broker refuses (ACL) and answers so in the PUBACK.
    as_b = a.publish(
        "footfall/v1/paris-01/door-2/visit", visit(T0, 60, device="d1", sensor="door-2").to_json()
    )
    # On A's own topic, a payload claiming B: the broker lets it through, the collector rejects it.
    claims_b = a.publish(
        "footfall/v1/paris-01/door-1/visit", visit(T0, 60, device="d2", sensor="door-2").to_json()
    )
    wait_for(lambda: collector.stats.received == 1, "the collector to see the second one")
    refusals = a.take_refused()
    a.close()
    stats = collector.stop()
    assert refusals == {as_b: "Not authorized"}
    assert claims_b not in refusals
    assert (stats.stored, stats.rejected) == (0, {"topic_mismatch": 1})
    store = SqliteStore(tmp_path / "f.db")
    assert store.visits("paris-01", T0 - timedelta(days=1), T0 + timedelta(days=1)) == []
    store.close()


def test_a_sensor_reads_its_own_stores_control_topic_only(ca: Pki, broker: Broker) -> None:
    collector = client(broker, tls(ca, "collector-1"), "collector-control")
    collector.connect()
    for store in ("paris-01", "lyon-02"):
        collector.wait_acked(
            {collector.publish(f"footfall/v1/{store}/control/privacy", store.encode(), retain=True)}, 5
        )
    collector.close()
    sensor = client(broker, tls(ca, "paris-01/door-1"), "door-1-control")
    sensor.connect()
    got: queue.Queue[Message] = queue.Queue()
    sensor.subscribe("footfall/v1/+/control/#", got.put, wait_s=5)
    assert got.get(timeout=5).payload == b"paris-01"
    time.sleep(0.5)
    assert got.empty(), "another store's control message reached the sensor"
    sensor.close()


def test_everything_legitimate_flows_from_the_sensors_spool_to_the_collectors_store(
    ca: Pki, broker: Broker, tmp_path: Path
) -> None:
    collector = Collector(collector_config(ca, broker, tmp_path / "f.db"))
    collector.start()
    time.sleep(0.2)  # the SUBACK
    sink_tls = tls(ca, "paris-01/door-2")
    config = SensorConfig.model_validate(
        {
            "site": {"store": "paris-01", "sensor": "door-2"},
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker.port,
                "tls": {
                    "ca_file": str(sink_tls.ca_file),
                    "cert_file": str(sink_tls.cert_file),
                    "key_file": str(sink_tls.key_file),
                },
            },
            "spool": {"path": str(tmp_path / "spool.db"), "sync": "normal"},
        }
    )
    events = [visit(T0 + timedelta(minutes=n), 60, device=f"d{n}", sensor="door-2") for n in range(25)]
    sink = MqttSink.connect(config, "test", time.time_ns())
    for event in events:
        sink.send(event)
    sink.close()
    wait_for(lambda: collector.stats.stored == len(events), "the 25 events to be stored")
    stats = collector.stop()
    assert (stats.stored, sum(stats.rejected.values())) == (25, 0)


def test_a_revoked_certificate_is_refused_after_a_reload(ca: Pki, broker: Broker) -> None:
    ca.issue("sensor", "paris-01/door-3", NOW)
    assert not refused(broker, tls(ca, "paris-01/door-3"), "door-3")
    ca.revoke("paris-01/door-3", NOW, reason="key_compromise")
    assert broker.process is not None
    broker.process.send_signal(signal.SIGHUP)  # re-reads the CRL and the ACL
    time.sleep(0.5)
    assert refused(broker, tls(ca, "paris-01/door-3"), "door-3-again")
    assert not refused(broker, tls(ca, "paris-01/door-1"), "door-1-still")


# -- the PKI itself -------------------------------------------------------------------------------------------
def pki(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(pki_cli, ["--dir", str(root), *args])
    return result.exit_code, result.output


def test_the_cli_makes_keys_only_their_owner_can_read(tmp_path: Path) -> None:
    root = tmp_path / "pki"
    assert pki(root, "init")[0] == 0
    code, out = pki(root, "issue", "sensor", "paris-01/door-1")
    assert code == 0, out
    for key in (root / "ca.key", root / "sensors" / "paris-01" / "door-1.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("issue", "sensor", "door-1"), "bad sensor name 'door-1': expected <store>/<sensor>"),
        (("issue", "sensor", "paris/door/1"), "bad sensor name 'paris/door/1'"),
        (("issue", "collector", "a b"), "bad collector name 'a b'"),
        (("issue", "sensor", "paris-01/door-1", "--host", "x"), "only a broker certificate takes --host"),
        (("issue", "broker", "mqtt.lan", "--host", "not a host!"), "bad --host 'not a host!'"),
        (("issue", "sensor", "paris-01/door-1", "--days", "0"), "0 is not in the range"),
        (("revoke", "paris-01/nobody"), "no active certificate for 'paris-01/nobody'"),
        (("revoke", "paris-01/door-1", "--reason", "boredom"), "'boredom' is not one of"),
        (("init",), "a PKI is already there"),
    ],
)
def test_the_cli_rejects_bad_values_with_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    root = tmp_path / "pki"
    pki(root, "init")
    pki(root, "issue", "sensor", "paris-01/door-1")
    code, out = pki(root, *args)
    assert code != 0
    assert message in out, out
    assert "Traceback" not in out


def test_a_second_certificate_for_a_name_needs_force_and_revokes_the_first(tmp_path: Path) -> None:
    ca = Pki.init(tmp_path / "pki", NOW)
    first = ca.issue("sensor", "paris-01/door-1", NOW)
    with pytest.raises(PkiError, match="already has certificate"):
        ca.issue("sensor", "paris-01/door-1", NOW)
    second = ca.issue("sensor", "paris-01/door-1", NOW, force=True)
    states = {c.serial: (c.active, c.reason) for c in ca.certificates()}
    assert states == {first.serial: (False, "superseded"), second.serial: (True, None)}
    crl = x509.load_pem_x509_crl((ca.root / "crl.pem").read_bytes())
    assert crl.is_signature_valid(ca.ca_cert.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(int(first.serial, 16)) is not None
    assert crl.get_revoked_certificate_by_serial_number(int(second.serial, 16)) is None


def test_the_shipped_acl_is_what_the_pki_generates_for_its_identities(tmp_path: Path) -> None:
    ca = Pki.init(tmp_path / "pki", NOW)
    for kind, name in IDENTITIES:
        ca.issue(kind, name, NOW)

    def rules(text: str) -> list[str]:
        return [line for line in text.splitlines() if line and not line.startswith("#")]

    generated = (tmp_path / "pki" / "mosquitto.acl").read_text()
    assert rules(generated) == rules((REPO / "config" / "mosquitto.acl").read_text())
