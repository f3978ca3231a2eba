"""The collector's side of opt-outs and consents: MAC parsing, CSV imports, the registry, the CLI and the
control message over a real Mosquitto."""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import click
import paho.mqtt.client as paho
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from collector.cli.privacy import COMMANDS
from collector.config import CollectorConfig
from collector.ingest.service import Collector
from collector.privacy.csvimport import read_csv
from collector.privacy.registry import PrivacyError, entry, parse_mac
from collector.privacy.timestamps import parse_time
from collector.storage.privacy import PutOutcome, RegistryEntry
from collector.storage.sqlite import SqliteStore
from footfall.control import control_topic
from footfall.tokens import TokenKey
from sensor.keys.consent import PrivacyFilter
from tests.conftest import Broker
from tests.test_report import visit

KEY = TokenKey(bytearray(range(32)))
MAC = bytes.fromhex("3c22fb12ab9f")
SPELLINGS = (
    "3c:22:fb:12:ab:9f",
    "3C-22-FB-12-AB-9F",
    "3c22.fb12.ab9f",
    "3C22FB12AB9F",
    " 3c:22:FB:12:ab:9f\n",
)
NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
T0 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)

cli = click.Group("footfall-collector", commands=list(COMMANDS))


def invoke(*args: str | Path, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input)
    return result.exit_code, result.output


def mac_spellings(mac: bytes) -> list[bytes]:
    h = mac.hex()
    pairs = [h[i : i + 2] for i in range(0, 12, 2)]
    forms = [":".join(pairs), "-".join(pairs), ".".join(h[i : i + 4] for i in range(0, 12, 4)), h]
    return [mac] + [f.encode() for f in forms] + [f.upper().encode() for f in forms]


def assert_no_mac(directory: Path, mac: bytes) -> None:
    for path in directory.rglob("*"):
        if path.is_file() and not path.name.endswith(".csv"):
            data = path.read_bytes()
            found = [s for s in mac_spellings(mac) if s in data]
            assert not found, f"{path} holds the MAC as {found}"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "token.key"
    KEY.save(path)
    return path


def put(db: SqliteStore, list_: str, mac: bytes, profile: str = "p1") -> PutOutcome:
    e = RegistryEntry(list_, KEY.token(mac), profile, T0, "test")  # type: ignore[arg-type]
    return db.registry_put([e], NOW).outcomes[0]


# -- MACs, times, rows ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", SPELLINGS)
def test_every_common_spelling_of_a_mac_parses_to_the_same_six_bytes(text: str) -> None:
    assert parse_mac(text) == MAC


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("3c:22:fb:12:ab", "not a MAC address"),
        ("3c:22:fb:12:ab:9f:00", "not a MAC address"),  # seven pairs
        ("3c22fb12ab9f00", "not a MAC address"),
        ("3c:22:fb:12:ab:9g", "not a MAC address"),
        ("01:00:5e:00:00:fb", "a group (multicast) address"),
    ],
)
def test_a_bad_mac_is_refused_without_repeating_it(text: str, why: str) -> None:
    with pytest.raises(PrivacyError, match=re.escape(why)) as caught:
        parse_mac(text)
    assert text not in str(caught.value) and text[:8] not in str(caught.value)


def test_times_are_iso_8601_or_unix_seconds_naive_means_utc_and_not_in_the_future() -> None:
    assert parse_time("2024-05-01T09:00:00+02:00", NOW) == T0
    assert parse_time("2024-05-01 07:00:00", NOW) == T0
    assert parse_time("1714546800", NOW) == T0
    with pytest.raises(PrivacyError, match="in the future"):
        parse_time("2024-06-01", NOW)
    with pytest.raises(PrivacyError, match="neither ISO 8601 nor Unix seconds"):
        parse_time("yesterday", NOW)


def test_a_profile_or_source_holding_a_mac_is_refused_so_no_swapped_column_stores_one() -> None:
    with pytest.raises(PrivacyError, match="profile_id holds something shaped like a MAC"):
        entry("consent", KEY, mac="3c22fb12ab9f", profile="3c:22:fb:12:ab:9f", at=T0, source="crm")
    with pytest.raises(PrivacyError, match="source holds something shaped like a MAC"):
        entry("optout", KEY, mac="3c22fb12ab9f", profile="", at=T0, source="page 3C22.FB12.AB9F")
    with pytest.raises(PrivacyError, match="profile_id is empty"):
        entry("consent", KEY, mac="3c22fb12ab9f", profile=" ", at=T0, source="crm")
    # A 32-digit hex profile id (a UUID without dashes) is not MAC-shaped.
    made = entry("consent", KEY, mac="3c22fb12ab9f", profile="0" * 32, at=T0, source="crm")
    assert made.token == KEY.token(MAC)


def test_a_csv_export_is_read_by_header_with_bad_rows_named_by_line() -> None:
    text = (
        "email,source,timestamp,mac,profile_id\n"
        "a@x,portal,2024-05-01T07:00:00Z,3c:22:fb:12:ab:9f,p1\n"
        "\n"
        "b@x,portal,2024-05-01T07:00:00Z,3c:22:fb:12:ab,p2\n"
        "c@x,,1714546800,3C22FB12ABA0,p3\n"
        "d@x,portal,2024-05-01T07:00:00Z\n"
        "e@x,portal,soon,3c22fb12aba1,p4\n"
    )
    rows = read_csv("consent", io.StringIO(text), KEY, NOW, "import:x.csv")
    assert [(e.profile, e.source) for e in rows.entries] == [("p1", "portal"), ("p3", "import:x.csv")]
    assert rows.lines == (2, 5)
    assert [(b.line, b.reason.split(" (")[0]) for b in rows.bad] == [
        (4, "not a MAC address"),
        (6, "3 fields, the header has 5"),
        (7, "timestamp 'soon' is neither ISO 8601 nor Unix seconds"),
    ]
    assert rows.ignored_columns == ("email",)


def test_a_csv_without_the_header_is_refused_whole() -> None:
    with pytest.raises(PrivacyError, match="line 1: header lacks profile_id, mac, timestamp, source"):
        read_csv("optout", io.StringIO("p1,3c:22:fb:12:ab:9f,2024-05-01,portal\n"), KEY, NOW, "x")


# -- the registry ------------------------------------------------------------------------------------------------


def test_the_registry_adds_updates_and_bumps_its_revision_only_on_a_change() -> None:
    db = SqliteStore(":memory:")
    assert db.registry_revision() == 0
    assert put(db, "consent", MAC) is PutOutcome.ADDED
    assert put(db, "consent", MAC) is PutOutcome.UNCHANGED
    assert db.registry_revision() == 1
    assert put(db, "consent", MAC, profile="p2") is PutOutcome.UPDATED
    assert db.registry_revision() == 2
    assert [(e.token, e.profile) for e in db.registry_entries("consent")] == [(KEY.token(MAC), "p2")]
    assert db.registry_sets().consent == (KEY.token(MAC),)


def test_an_opt_out_withdraws_the_consent_and_clears_its_token_from_stored_visits() -> None:
    db = SqliteStore(":memory:")
    put(db, "consent", MAC)
    consented = visit(T0, 600).model_copy(update={"consent": KEY.token(MAC)})
    db.add([consented])
    assert [v.profile for v in db.consented_visits("paris-01", T0, NOW)] == ["p1"]
    e = RegistryEntry("optout", KEY.token(MAC), "", T0, "page")
    result = db.registry_put([e], NOW)
    assert (result.consents_withdrawn, result.visit_tokens_cleared) == (1, 1)
    assert db.registry_sets().consent == () and db.consented_visits("paris-01", T0, NOW) == []
    # And a consent for a device that opted out is refused until the opt-out is removed.
    assert put(db, "consent", MAC) is PutOutcome.OPTED_OUT
    assert db.registry_remove("optout", [KEY.token(MAC)]).removed == 1
    assert put(db, "consent", MAC) is PutOutcome.ADDED


def test_withdrawing_a_consent_clears_its_token_from_stored_visits() -> None:
    db = SqliteStore(":memory:")
    put(db, "consent", MAC)
    db.add([visit(T0, 600).model_copy(update={"consent": KEY.token(MAC)})])
    result = db.registry_remove("consent", [KEY.token(MAC), "f" * 32])
    assert (result.removed, result.missing, result.visit_tokens_cleared) == (1, 1, 1)
    assert db._db.execute("SELECT COUNT(*) FROM visits WHERE consent IS NOT NULL").fetchone() == (0,)


def test_a_strict_put_with_a_refused_entry_writes_nothing() -> None:
    db = SqliteStore(":memory:")
    put(db, "optout", MAC)
    other = bytes.fromhex("3c22fb000001")
    entries = [RegistryEntry("consent", KEY.token(m), "p", T0, "crm") for m in (other, MAC)]
    result = db.registry_put(entries, NOW, strict=True)
    assert not result.applied and result.outcomes == (PutOutcome.ADDED, PutOutcome.OPTED_OUT)
    assert db.registry_sets().consent == () and db.registry_revision() == 1


# -- the CLI ---------------------------------------------------------------------------------------------------


def test_tokens_init_makes_a_0600_key_once(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    code, out = invoke("tokens", "init", "--out", path)
    assert code == 0, out
    key_id = TokenKey.load(path).key_id
    assert f"{path}: token key {key_id}" in out and os.stat(path).st_mode & 0o777 == 0o600
    assert invoke("tokens", "id", path) == (0, key_id + "\n")
    code, out = invoke("tokens", "init", "--out", path)
    assert code == 1 and "already exists; refusing to overwrite a token key" in out


def test_import_reports_bad_rows_by_line_and_strict_imports_nothing(tmp_path: Path, key_file: Path) -> None:
    db = tmp_path / "f.db"
    csv_file = tmp_path / "portal.csv"
    csv_file.write_text(
        "profile_id,mac,timestamp,source\n"
        "p1,3c:22:fb:12:ab:9f,2024-05-01T07:00:00Z,portal\n"
        "p2,3c:22:fb:12:zz:9f,2024-05-01T07:00:00Z,portal\n"
        "p3,3c22.fb12.aba0,2024-05-01T07:00:00Z,\n"
    )
    base = ("--db", db, "--token-key", key_file)
    code, out = invoke("consent", "import", csv_file, "--strict", *base)
    assert code == 1 and f"{csv_file}:3: not a MAC address" in out and "nothing imported (--strict)" in out
    assert "3c:22:fb:12:zz:9f" not in out
    code, out = invoke("consent", "import", csv_file, *base)
    assert code == 0, out
    assert f"{csv_file}: 3 rows: 2 added, 1 bad" in out
    assert "published when the collector next starts" in out
    code, out = invoke("consent", "list", "--format", "json", *base)
    listed = json.loads(out)
    assert [(r["profile_id"], r["source"]) for r in listed] == [("p1", "portal"), ("p3", "import:portal.csv")]
    assert listed[0]["token"] == KEY.token(MAC)
    assert_no_mac(tmp_path, MAC)


def test_add_asks_for_the_mac_when_not_given_and_remove_takes_any_spelling(
    tmp_path: Path, key_file: Path
) -> None:
    base = ("--db", tmp_path / "f.db", "--token-key", key_file)
    code, out = invoke("optout", "add", "--source", "page", *base, input="3C-22-FB-12-AB-9F\n")
    assert code == 0, out
    assert f"opt-out added: device {KEY.token(MAC)[:8]}…" in out
    code, out = invoke("consent", "add", "--mac", "3c22fb12ab9f", "--profile", "p1", *base)
    assert code == 1 and "has opted out: a consent is refused until the opt-out is removed" in out
    code, out = invoke("optout", "remove", "--mac", "3c22.fb12.ab9f", *base)
    assert code == 0 and "opt-out removed" in out
    code, out = invoke("optout", "remove", "--mac", "3c22.fb12.ab9f", *base)
    assert code == 0 and "has no opt-out: nothing removed" in out and "registry unchanged" in out
    assert_no_mac(tmp_path, MAC)


def test_a_command_without_a_token_key_says_how_to_make_one(tmp_path: Path) -> None:
    code, out = invoke("optout", "add", "--mac", "3c22fb12ab9f", "--db", tmp_path / "f.db")
    assert code == 1 and "no token key: set privacy.token_key_file" in out and "tokens init" in out


def test_consent_visits_joins_stored_visits_to_profile_ids(tmp_path: Path, key_file: Path) -> None:
    path = tmp_path / "f.db"
    db = SqliteStore(path)
    put(db, "consent", MAC, profile="crm-4711")
    db.add([visit(T0, 600).model_copy(update={"consent": KEY.token(MAC)}), visit(T0, 300, device="d2")])
    db.close()
    code, out = invoke(
        "consent", "visits", "--store", "paris-01", "--from", "2024-05-01", "--to", "2024-05-01",
        "--format", "json", "--db", path,
    )  # fmt: skip
    assert code == 0, out
    assert [(v["profile_id"], v["dwell_s"]) for v in json.loads(out)] == [("crm-4711", 600.0)]


# -- the control message over MQTT ---------------------------------------------------------------------------


class Subscriber:
    """Records the retained control messages of one topic."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.payloads: list[bytes] = []
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sub-{os.getpid()}", protocol=paho.MQTTv5
        )
        self._client.on_message = lambda c, u, m: self.payloads.append(bytes(m.payload))
        self._client.connect(broker.host, broker.port)
        self._client.subscribe(topic, qos=1)
        self._client.loop_start()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def collector_yaml(tmp_path: Path, broker: Broker, key_file: Path) -> Iterator[Path]:
    path = tmp_path / "collector.yaml"
    path.write_text(
        f"mqtt: {{port: {broker.port}, client_id: privacy-test, session_expiry_s: 0}}\n"
        f"store: {{path: {tmp_path / 'f.db'}}}\n"
        f"privacy: {{token_key_file: {key_file}, stores: [paris-01]}}\n"
        "ingest: {flush_interval_s: 0.2}\n"
    )
    yield path


@pytest.mark.mqtt
def test_a_change_with_config_is_published_retained_and_a_sensor_filter_accepts_it(
    broker: Broker, collector_yaml: Path
) -> None:
    code, out = invoke("optout", "add", "--mac", "3c:22:fb:12:ab:9f", "--config", collector_yaml)
    assert code == 0, out
    assert "published registry revision 1 (1 opt-outs, 0 consents) to 1 store" in out
    sub = Subscriber(broker, control_topic("footfall/v1", "paris-01"))  # subscribes after: retained
    try:
        wait_for(lambda: bool(sub.payloads), "the retained control message")
    finally:
        sub.close()
    privacy = PrivacyFilter("paris-01", KEY)
    assert privacy.apply(sub.payloads[-1]).accepted
    assert privacy.drop(MAC) and privacy.revision == 1


@pytest.mark.mqtt
def test_the_service_publishes_on_connect_republishes_on_a_change_and_ignores_its_own_message(
    broker: Broker, collector_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collector.config import load
    from collector.ingest import service

    monkeypatch.setattr(service, "PRIVACY_POLL_S", 0.2)
    config: CollectorConfig = load(collector_yaml)
    sub = Subscriber(broker, "footfall/v1/+/control/privacy")
    collector = Collector(config)
    collector.start()
    thread = threading.Thread(target=collector.wait, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(sub.payloads) == 1, "the control message published on connect")
        assert json.loads(sub.payloads[0])["optout"] == []
        # A change made without --config (the CLI cannot reach the broker) is noticed by the service.
        code, out = invoke(
            "optout",
            "add",
            "--mac",
            "3c22fb12ab9f",
            "--db",
            tmp_path / "f.db",
            "--token-key",
            tmp_path / "token.key",
        )
        assert code == 0, out
        wait_for(lambda: len(sub.payloads) == 2, "the republished control message")
        assert json.loads(sub.payloads[1])["optout"] == [KEY.token(MAC)]
    finally:
        collector.request_stop()
        stats = collector.stop()
        sub.close()
    assert stats.received == 0 and not stats.rejected  # its own control messages were not taken as events
    assert_no_mac(tmp_path, MAC)


def test_the_token_key_of_the_config_must_be_private(tmp_path: Path, key_file: Path) -> None:
    from footfall.configfile import ConfigError

    key_file.chmod(0o644)
    config = CollectorConfig.model_validate(
        {"privacy": {"token_key_file": str(key_file)}, "store": {"path": str(tmp_path / "f.db")}}
    )
    with pytest.raises(
        ConfigError, match=r"privacy.token_key_file: .*mode 0644 lets group or others read it"
    ):
        Collector(config)
