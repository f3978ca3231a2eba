"""Config files: the example loads, and every mistake is named with file, line, key, value and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from footfall.configfile import ConfigError
from sensor.config import SensorConfig, load

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sensor.yaml"
    path.write_text(text)
    return path


def test_the_shipped_example_is_valid_and_equals_the_defaults() -> None:
    assert load(REPO / "config" / "sensor.yaml") == SensorConfig()


def test_no_file_means_the_embedded_defaults() -> None:
    assert load(None).presence.visit_timeout_s == 600


def test_out_of_range_value_names_file_line_key_value_and_expectation(tmp_path: Path) -> None:
    path = write(tmp_path, "site:\n  store: demo\npresence:\n  visit_timeout_s: -5\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value) == f"{path}:4: presence.visit_timeout_s = -5: Input should be greater than 0"


def test_misspelt_key_is_an_error_not_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "presence:\n  vistor_rssi: -60\n")
    with pytest.raises(ConfigError, match=r"sensor.yaml:2: unknown key 'presence.vistor_rssi'"):
        load(path)


def test_wrong_type_is_reported_with_its_value(tmp_path: Path) -> None:
    path = write(tmp_path, "mqtt:\n  port: lots\n")
    with pytest.raises(ConfigError, match=r":2: mqtt.port = 'lots': Input should be a valid integer"):
        load(path)


def test_every_problem_is_listed_one_per_line(tmp_path: Path) -> None:
    path = write(tmp_path, "mqtt:\n  port: 0\npresence:\n  interval_s: 7\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:2: mqtt.port = 0")
    assert lines[1].startswith(f"{path}:4: presence.interval_s = 7")


def test_store_name_that_would_break_topics_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "site:\n  store: 'my/shop'\n")
    with pytest.raises(ConfigError, match=r":2: site.store = 'my/shop': String should match pattern"):
        load(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "site:\n  store: [unclosed\n")
    with pytest.raises(ConfigError, match=r"sensor.yaml:\d+: not valid YAML"):
        load(path)


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config"):
        load(tmp_path / "nope.yaml")


STORE = "capture:\n  filter: probe_requests\n  store_networks:\n    - ssid: Shop\n      bssids: {bssids}\n"


def test_store_networks_take_bssids_in_every_spelling_of_the_one_mac_grammar(tmp_path: Path) -> None:
    path = write(tmp_path, STORE.format(bssids="['F2:9F:C2:00:00:01', f2-9f-c2-00-00-02, f29f.c200.0003]"))
    assert load(path).capture.store_bssids() == {bytes.fromhex(f"f29fc200000{i}"): "Shop" for i in (1, 2, 3)}


@pytest.mark.parametrize(
    ("bssids", "message"),
    [
        ("['f2:9f:c2:00:00:0g']", r":5: capture.store_networks.0.bssids.0 = 'f2:9f:c2:00:00:0g': Value error, "
         r"not a MAC address \(17 characters; expected aa:bb:cc:dd:ee:ff"),
        ("['ff:ff:ff:ff:ff:ff']", r":5: capture.store_networks.0.bssids.0 = 'ff:ff:ff:ff:ff:ff': Value error, "
         r"a group \(multicast/broadcast\) address is no access point's BSSID"),
        ("[12:34:56:12:34:56]", r":5: capture.store_networks.0.bssids.0 = 9\d+: Value error, a BSSID must be "
         r"a quoted string"),  # YAML 1.1 read it as a base-60 number
        ("[]", r":5: capture.store_networks.0.bssids = \[\]: Value error, list at least one BSSID"),
    ],
)  # fmt: skip
def test_a_bad_bssid_names_file_line_key_value_and_expectation(
    tmp_path: Path, bssids: str, message: str
) -> None:
    path = write(tmp_path, STORE.format(bssids=bssids))
    with pytest.raises(ConfigError, match=message) as err:
        load(path)
    assert str(err.value).startswith(str(path))
    assert len(str(err.value).splitlines()) == 1


def test_a_bssid_in_two_store_networks_is_refused(tmp_path: Path) -> None:
    text = (
        STORE.format(bssids="['f2:9f:c2:00:00:01']") + "    - ssid: Staff\n      bssids: ['F29FC2000001']\n"
    )
    with pytest.raises(
        ConfigError, match=r":3: capture.store_networks = .*BSSID f2:9f:c2:00:00:01 is listed twice"
    ):
        load(write(tmp_path, text))


def test_store_networks_need_the_probe_request_filter_so_no_other_networks_frames_pass(
    tmp_path: Path,
) -> None:
    text = STORE.format(bssids="['f2:9f:c2:00:00:01']").replace(
        "filter: probe_requests", "filter: management"
    )
    with pytest.raises(ConfigError, match=r":3: capture.store_networks = .*needs filter: probe_requests"):
        load(write(tmp_path, text))


def test_a_misspelt_store_network_key_is_an_error(tmp_path: Path) -> None:
    text = STORE.format(bssids="['f2:9f:c2:00:00:01']").replace("bssids:", "bssid:")
    with pytest.raises(ConfigError, match=r":5: unknown key 'capture.store_networks.0.bssid'"):
        load(write(tmp_path, text))
