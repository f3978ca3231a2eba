"""The sensor's privacy filter: tokens, the token key file, control messages, and the pipeline's seams."""

from __future__ import annotations

import hmac
import json
import os
import threading
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from click.testing import CliRunner
from footfall_dev.craft import radiotap_probe_request, rates_element
from paho.mqtt.enums import CallbackAPIVersion

from footfall.control import SCHEMA_CONTROL, ControlMessage, control_topic
from footfall.events import CountEvent, VisitEvent
from footfall.tokens import TokenKey
from sensor.cli.main import main as sensor_main
from sensor.config import SensorConfig
from sensor.decode.capture import PcapWriter
from sensor.keys.consent import MAX_CONTROL_BYTES, PrivacyFilter
from sensor.keys.keystore import KeyFileCorrupt, KeyFileError, KeyPermissionError
from sensor.keys.pseudonym import FixedSalt, Pseudonymizer
from sensor.pipeline import ListSink, Pipeline
from tests.conftest import Broker

SECRET = bytes(range(32))
KEY = TokenKey(bytearray(SECRET))
OUT = bytes.fromhex("02 00 00 00 00 0a")  # opts out
IN = bytes.fromhex("3c 22 fb 00 00 0b")  # consents (a global, Apple-OUI address)
PLAIN = bytes.fromhex("06 00 00 00 00 0c")  # neither
T0 = 1_714_550_400 * 10**9  # 2024-05-01T08:00Z
SALT = FixedSalt(b"s" * 32, epoch="e1")


def control(store: str = "paris-01", **overrides: object) -> ControlMessage:
    fields: dict[str, object] = {
        "store": store,
        "revision": 3,
        "issued": datetime(2024, 5, 1, tzinfo=UTC),
        "key_id": KEY.key_id,
        "optout": (KEY.token(OUT),),
        "consent": (KEY.token(IN),),
    }
    fields.update(overrides)
    return ControlMessage.model_validate(fields)


def frames(mac: bytes, n: int = 21, start_ns: int = T0, every_s: int = 30) -> list[tuple[int, bytes]]:
    """n probe requests from one device at -50 dBm: one visitor visit of (n-1)*every_s seconds."""
    elements = rates_element((2, 4, 11, 22))
    return [
        (start_ns + i * every_s * 10**9, radiotap_probe_request(mac, i, b"", elements, -50, 2437))
        for i in range(n)
    ]


def run(mode: str, privacy: PrivacyFilter) -> tuple[Pipeline, ListSink]:
    config = SensorConfig.model_validate(
        {"site": {"store": "paris-01"}, "privacy": {"mode": mode}, "estimator": {"enabled": False}}
    )
    sink = ListSink()
    pipeline = Pipeline(config, SALT, sink, drop_mac=privacy.drop, consent_of_mac=privacy.consent_token)
    merged = sorted(frames(OUT) + frames(IN, start_ns=T0 + 10**9) + frames(PLAIN, start_ns=T0 + 2 * 10**9))
    for ts, data in merged:
        pipeline.feed(ts, 127, data)
    pipeline.finish()
    return pipeline, sink


def filter_in_force() -> PrivacyFilter:
    privacy = PrivacyFilter("paris-01", KEY)
    assert privacy.apply(control().to_json()).accepted
    return privacy


# -- tokens and the key file -------------------------------------------------------------------------------


def test_a_token_is_the_first_128_bits_of_hmac_sha256_of_the_raw_mac_in_hex() -> None:
    expected = hmac.new(SECRET, OUT, sha256).hexdigest()[:32]
    assert KEY.token(OUT) == expected
    assert len(expected) == 32 and KEY.token(IN) != expected
    with pytest.raises(ValueError, match="6 bytes, got 17"):
        KEY.token(b"02:00:00:00:00:0a")  # the text form is never what gets hashed


def test_the_key_id_fingerprints_the_key_without_revealing_it() -> None:
    other = TokenKey(bytearray(32))
    assert KEY.key_id == hmac.new(SECRET, b"footfall/v1/token-key-id", sha256).hexdigest()[:16]
    assert KEY.key_id != other.key_id
    assert SECRET.hex() not in repr(KEY)


def test_the_key_file_is_written_0600_read_back_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "token.key"
    KEY.save(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert TokenKey.load(path).key_id == KEY.key_id
    with pytest.raises(KeyFileError, match="already exists; refusing to overwrite"):
        TokenKey.generate().save(path)


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token.key"
    KEY.save(path)
    path.chmod(0o640)
    with pytest.raises(KeyPermissionError, match=r"mode 0640 lets group or others read it"):
        TokenKey.load(path)


def test_a_damaged_or_foreign_key_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "token.key"
    KEY.save(path)
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(data)
    with pytest.raises(KeyFileCorrupt, match=r"checksum .* damaged token key file"):
        TokenKey.load(path)
    path.write_bytes(b"x" * 20)
    with pytest.raises(KeyFileCorrupt, match="20 bytes; a token key file has exactly 43"):
        TokenKey.load(path)
    link = tmp_path / "link.key"
    link.symlink_to(path)
    with pytest.raises(KeyFileError, match="symbolic link"):
        TokenKey.load(link)


# -- the filter ----------------------------------------------------------------------------------------------


def test_only_opted_out_devices_are_dropped_and_only_consented_ones_get_their_token() -> None:
    privacy = filter_in_force()
    assert [privacy.drop(m) for m in (OUT, IN, PLAIN)] == [True, False, False]
    assert [privacy.consent_token(m) for m in (OUT, IN, PLAIN)] == [None, KEY.token(IN), None]
    assert privacy.revision == 3 and privacy.counts == (1, 1)


def test_with_empty_sets_nothing_is_hashed_so_a_sensor_without_a_key_runs() -> None:
    privacy = PrivacyFilter("paris-01", None)
    empty = control(key_id="0" * 16, optout=(), consent=())
    assert privacy.apply(empty.to_json()).accepted
    assert not privacy.drop(OUT) and privacy.consent_token(IN) is None


def test_tokens_are_cached_per_address_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    privacy = filter_in_force()
    monkeypatch.setattr(PrivacyFilter, "CACHE_LIMIT", 2)
    for m in (OUT, IN, PLAIN, OUT):
        privacy.drop(m)
    assert len(privacy._cache) <= 2


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not_json"),
        (b'{"schema": "footfall.visit/1"}', "wrong_schema"),
        (b"[]", "wrong_schema"),
        # A token of 12 hex digits is a bare MAC's shape: refused by the schema.
        (control().to_json().replace(KEY.token(OUT).encode(), b"02000000000a"), "invalid"),
        (control().to_json().replace(b'"revision":3', b'"revision":3,"mac":"x"'), "invalid"),
        (control().to_json().replace(b"Z", b""), "invalid"),  # issued without a time zone
        (control(store="lyon-02").to_json(), "wrong_store"),
        (control(key_id="0123456789abcdef").to_json(), "key_mismatch"),
    ],
)
def test_a_bad_control_message_is_refused_counted_and_the_sets_in_force_stay(
    payload: bytes, reason: str
) -> None:
    privacy = filter_in_force()
    outcome = privacy.apply(payload)
    assert (outcome.accepted, outcome.reason) == (False, reason)
    assert privacy.rejected == {reason: 1}
    assert privacy.drop(OUT) and privacy.revision == 3


def test_an_oversized_control_message_is_refused_before_parsing() -> None:
    privacy = PrivacyFilter("paris-01", KEY)
    assert privacy.apply(b" " * (MAX_CONTROL_BYTES + 1)).reason == "oversized"


def test_a_sensor_without_the_key_refuses_a_list_it_cannot_honour() -> None:
    privacy = PrivacyFilter("paris-01", None)
    outcome = privacy.apply(control().to_json())
    assert outcome.reason == "no_key"
    assert "cannot honour 1 opt-outs and 1 consents" in outcome.detail
    assert not privacy.received.is_set()


def test_the_sets_are_replaced_together_while_another_thread_reads_them() -> None:
    privacy = PrivacyFilter("paris-01", KEY)
    # Two messages that swap the devices between the lists: any state read is one message's, whole.
    a = control(revision=1, optout=(KEY.token(OUT),), consent=(KEY.token(IN),)).to_json()
    b = control(revision=2, optout=(KEY.token(IN),), consent=(KEY.token(OUT),)).to_json()
    privacy.apply(a)
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            privacy.apply(a)
            privacy.apply(b)

    writer = threading.Thread(target=flip)
    writer.start()
    try:
        for _ in range(20_000):
            sets = privacy._sets  # what drop() and consent_token() read, in one load
            assert len(sets.optout) == len(sets.consent) == 1 and sets.optout != sets.consent
            privacy.drop(OUT)
    finally:
        stop.set()
        writer.join()
    assert privacy.applied >= 2 and not privacy.rejected


# -- through the pipeline --------------------------------------------------------------------------------------


def test_an_opted_out_device_leaves_no_trace_in_the_events_and_its_frames_are_counted_as_dropped() -> None:
    pipeline, sink = run("consent", filter_in_force())
    gone = Pseudonymizer(SALT).pseudonym(OUT, T0)
    visits = [e for e in sink.events if isinstance(e, VisitEvent)]
    counts = [e for e in sink.events if isinstance(e, CountEvent)]
    assert pipeline.dropped_optout == 21
    assert gone not in {v.device for v in visits}
    assert {v.device for v in visits} == {Pseudonymizer(SALT).pseudonym(m, T0) for m in (IN, PLAIN)}
    assert gone.encode() not in b"".join(e.to_json() for e in sink.events)
    # Not even counted: the aggregates hold the other two devices' frames only.
    assert sum(c.frames for c in counts) == 42
    assert max(c.devices for c in counts) == 2


def test_consent_tokens_ride_only_on_consented_devices_visits_and_only_in_consent_mode() -> None:
    _, sink = run("consent", filter_in_force())
    tokens = {v.device: v.consent for v in sink.events if isinstance(v, VisitEvent)}
    assert tokens == {
        Pseudonymizer(SALT).pseudonym(IN, T0): KEY.token(IN),
        Pseudonymizer(SALT).pseudonym(PLAIN, T0): None,
    }
    _, sink = run("pseudonymous", filter_in_force())
    assert [v.consent for v in sink.events if isinstance(v, VisitEvent)] == [None, None]


def test_in_aggregate_mode_an_opted_out_device_is_not_counted_either() -> None:
    pipeline, sink = run("aggregate", filter_in_force())
    assert not [e for e in sink.events if isinstance(e, VisitEvent)]
    assert pipeline.dropped_optout == 21
    assert sum(e.frames for e in sink.events if isinstance(e, CountEvent)) == 42


def test_replay_with_a_control_file_applies_it_and_says_how_many_frames_it_dropped(tmp_path: Path) -> None:
    capture, out, key_file = tmp_path / "c.pcap", tmp_path / "out.jsonl", tmp_path / "token.key"
    with PcapWriter(capture, 127) as writer:
        for ts, data in sorted(frames(OUT) + frames(IN, start_ns=T0 + 10**9)):
            writer.write(ts, data)
    KEY.save(key_file)
    config = tmp_path / "sensor.yaml"
    config.write_text(
        f"site: {{store: paris-01}}\nprivacy: {{mode: consent, token_key_file: {key_file}}}\n"
        "estimator: {enabled: false}\n"
    )
    control_file = tmp_path / "control.json"
    control_file.write_bytes(control().to_json())
    args = ["--log-level", "error", "replay", str(capture), "--config", str(config), "--to", "jsonl"]
    result = CliRunner().invoke(
        sensor_main, [*args, "--out", str(out), "--privacy-control", str(control_file)]
    )
    assert result.exit_code == 0, result.output
    assert "privacy: control revision 3 (1 opt-outs, 1 consents): dropped 21 frames of opted-out devices" in (
        result.output
    )
    visits = [json.loads(line) for line in out.read_bytes().splitlines() if b'"footfall.visit/1"' in line]
    assert [v["consent"] for v in visits] == [KEY.token(IN)]
    control_file.write_bytes(control(store="lyon-02").to_json())
    result = CliRunner().invoke(
        sensor_main, [*args, "--out", str(out), "--privacy-control", str(control_file)]
    )
    assert result.exit_code == 1
    assert "refused (wrong_store): message for store 'lyon-02', this is 'paris-01'" in result.output


def test_the_control_message_is_json_with_its_schema_on_a_per_store_topic() -> None:
    data = json.loads(control().to_json())
    assert data["schema"] == SCHEMA_CONTROL and set(data) == {
        "schema", "store", "revision", "issued", "key_id", "optout", "consent",
    }  # fmt: skip
    assert control_topic("footfall/v1", "paris-01") == "footfall/v1/paris-01/control/privacy"


@pytest.mark.mqtt
def test_replay_to_mqtt_with_a_token_key_refuses_to_publish_without_a_usable_opt_out_list(
    broker: Broker, tmp_path: Path
) -> None:
    capture, key_file = tmp_path / "c.pcap", tmp_path / "token.key"
    with PcapWriter(capture, 127) as writer:
        for ts, data in frames(PLAIN, n=3):
            writer.write(ts, data)
    KEY.save(key_file)
    config = tmp_path / "sensor.yaml"
    config.write_text(
        f"site: {{store: paris-01}}\nmqtt: {{port: {broker.port}}}\n"
        f"privacy: {{token_key_file: {key_file}, control_wait_s: 0.5}}\n"
    )
    args = ["--log-level", "error", "replay", str(capture), "--config", str(config), "--to", "mqtt"]
    result = CliRunner().invoke(sensor_main, args)
    assert result.exit_code == 1
    assert (
        "no usable privacy control message on footfall/v1/paris-01/control/privacy within 0.5 s:"
        " not publishing without the opt-out list" in result.output
    )
    # A list made with another key is refused too, and the refusal is named.
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="control-publisher", protocol=paho.MQTTv5)
    publisher.connect(broker.host, broker.port)
    publisher.loop_start()
    wrong = control(key_id="0123456789abcdef").to_json()
    publisher.publish(control_topic("footfall/v1", "paris-01"), wrong, qos=1, retain=True).wait_for_publish(
        10
    )
    publisher.disconnect()
    publisher.loop_stop()
    result = CliRunner().invoke(sensor_main, args)
    assert result.exit_code == 1 and "(refused: key_mismatch 1)" in result.output
