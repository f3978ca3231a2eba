"""`footfall-sensor doctor`: each check says OK or what to do, from facts the tests make up."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from sensor.cli.live import doctor as doctor_command
from sensor.config import CaptureConfig, SensorConfig
from sensor.doctor import checks as d
from sensor.keys.keystore import KeyStore, StoreSeed
from sensor.keys.salts import DEFAULT_SPEC, SaltSchedule
from sensor.live.channels import ChannelPlan, CommandResult
from sensor.live.iface import IfaceState
from tests.conftest import Broker, free_port

MONITOR = IfaceState("mon0", True, True, 803, "unknown")
NOW = 1_790_000_000 * 1_000_000_000
ALL_CAPS = (1 << d.CAP_NET_RAW) | (1 << d.CAP_NET_ADMIN)


def capture(**values: object) -> CaptureConfig:
    return CaptureConfig.model_validate(values)


def test_a_missing_interface_fails_and_says_how_to_create_it() -> None:
    check = d.check_interface(capture(), IfaceState("mon0", False))
    assert check.status is d.Status.FAIL and "does not exist" in check.detail
    assert "set capture.phy" in check.fix and "footfall-sensor iface setup" in check.fix
    with_phy = d.check_interface(capture(phy="phy1"), IfaceState("mon0", False))
    assert "set capture.phy" not in with_phy.fix


def test_a_down_interface_fails_with_the_ip_command() -> None:
    check = d.check_interface(capture(), IfaceState("mon0", True, False, 803))
    assert check.status is d.Status.FAIL and check.fix == "ip link set mon0 up"


@pytest.mark.parametrize(
    ("arphrd", "status", "words"),
    [(803, d.Status.OK, "radiotap"), (801, d.Status.WARN, "without radiotap"), (1, d.Status.FAIL, "nexmon")],
)
def test_monitor_mode_is_judged_from_the_link_type(arphrd: int, status: d.Status, words: str) -> None:
    check = d.check_monitor(IfaceState("mon0", True, True, arphrd))
    assert check.status is status and words in check.detail + check.fix


def test_a_fixed_plan_on_the_wrong_channel_fails() -> None:
    check = d.check_channel(ChannelPlan((6,), 1), 11, None)
    assert check.status is d.Status.FAIL and "on channel 11, config says 6" in check.detail


def test_a_hopping_plan_accepts_any_of_its_channels() -> None:
    assert d.check_channel(ChannelPlan((1, 6, 11), 0.3), 11, None).status is d.Status.OK


def test_without_iw_the_channel_is_read_from_the_frames() -> None:
    sample = d.FrameSample(5, 10, 10, {6: 10})
    assert d.check_channel(ChannelPlan((6,), 1), None, sample).status is d.Status.OK
    unknown = d.check_channel(ChannelPlan((6,), 1), None, None)
    assert unknown.status is d.Status.WARN and "install iw" in unknown.fix


def test_frames_ok_with_rate_signal_share_and_channels() -> None:
    check = d.check_frames(d.FrameSample(5, 100, 100, {1: 90, 2: 10}))
    assert check.status is d.Status.OK
    assert check.detail == "100 in 5 s (20.0/s), 100% with a dBm signal; channels 1 (90), 2 (10)"


def test_no_frames_or_no_signal_is_reported_with_what_to_check() -> None:
    assert d.check_frames(d.FrameSample(5)).status is d.Status.FAIL
    weak = d.check_frames(d.FrameSample(5, 100, 10, {}))
    assert weak.status is d.Status.WARN and "radiotap signal" in weak.fix
    broken = d.check_frames(d.FrameSample(5, error="cannot open a packet socket for mon0: needs CAP_NET_RAW"))
    assert broken.status is d.Status.FAIL and "CAP_NET_RAW" in broken.detail


def test_capabilities_name_what_is_missing_and_why() -> None:
    assert d.check_capabilities(capture(), ALL_CAPS, 0).status is d.Status.OK
    none = d.check_capabilities(capture(), 0, 1000)
    assert none.status is d.Status.FAIL and "CAP_NET_RAW, CAP_NET_ADMIN" in none.detail
    raw_only = d.check_capabilities(capture(channels=[1, 6]), 1 << d.CAP_NET_RAW, 1000)
    assert raw_only.status is d.Status.WARN and "channel hopping" in raw_only.detail
    fixed = d.check_capabilities(capture(recreate=False), 1 << d.CAP_NET_RAW, 1000)
    assert fixed.status is d.Status.OK


def test_key_checks_inspect_a_real_key_and_report_a_bad_one(tmp_path: Path) -> None:
    assert d.check_key(None, d.key_summary).status is d.Status.FAIL
    seed = StoreSeed.create("demo", SaltSchedule.parse(DEFAULT_SPEC, "UTC"), NOW)
    KeyStore.provision(seed, tmp_path / "sensor.key", NOW).close()
    good = d.check_key(tmp_path / "sensor.key", d.key_summary)
    assert good.status is d.Status.OK and "store demo" in good.detail and "salt" not in good.detail
    os.chmod(tmp_path / "sensor.key", 0o644)
    bad = d.check_key(tmp_path / "sensor.key", d.key_summary)
    assert bad.status is d.Status.FAIL and "sensor.key" in bad.detail


@pytest.mark.mqtt
def test_broker_check_connects_with_the_configured_settings(broker: Broker) -> None:
    config = SensorConfig.model_validate({"mqtt": {"host": broker.host, "port": broker.port}})
    where, error = d.broker_error(config)
    assert error is None and d.check_broker(where, error).status is d.Status.OK


def test_an_unreachable_broker_fails_with_a_hint() -> None:
    config = SensorConfig.model_validate({"mqtt": {"port": free_port()}})
    where, error = d.broker_error(config, timeout_s=2)
    check = d.check_broker(where, error)
    assert check.status is d.Status.FAIL and check.fix


def test_an_unreadable_password_file_is_named(tmp_path: Path) -> None:
    config = SensorConfig.model_validate(
        {"mqtt": {"password_file": str(tmp_path / "missing"), "username": "u"}}
    )
    _, error = d.broker_error(config)
    assert error is not None and "missing" in error


def test_clock_checks() -> None:
    assert d.check_clock(d.ClockState(True, NOW, "x")).status is d.Status.OK
    assert d.check_clock(d.ClockState(False, NOW, "x")).status is d.Status.FAIL
    assert d.check_clock(d.ClockState(None, NOW, "x")).status is d.Status.WARN
    stale = d.check_clock(d.ClockState(True, 0, "x"))
    assert stale.status is d.Status.FAIL and "1970" in stale.detail
    real = d.clock_state()
    assert real.synchronized in (True, False, None) and abs(real.now_ns - time.time_ns()) < 60e9


def test_disk_checks(tmp_path: Path) -> None:
    assert d.check_disk(tmp_path, 10 << 30).status is d.Status.OK
    assert d.check_disk(tmp_path, 50 << 20).status is d.Status.WARN
    assert d.check_disk(tmp_path, 1 << 20).status is d.Status.FAIL
    assert d.check_disk(tmp_path / "nope", d.free_space(tmp_path / "nope")).status is d.Status.FAIL


def test_the_tuned_channel_is_read_from_iw_info() -> None:
    info = "Interface mon0\n\tifindex 5\n\ttype monitor\n\tchannel 11 (2462 MHz), width: 20 MHz (no HT)\n"

    def runner(argv: Sequence[str]) -> CommandResult:
        return CommandResult(tuple(argv), 0, info)

    assert d.tuned_channel("mon0", runner) == 11
    assert d.tuned_channel("mon0", lambda argv: CommandResult(tuple(argv), 127)) is None


def fake_probes(state: IfaceState, frames: int = 50) -> d.Probes:
    return d.Probes(
        iface_state=lambda name: state,
        tuned_channel=lambda name: 1,
        sample=lambda c, s: d.FrameSample(s, frames, frames, {1: frames}),
        capabilities=lambda: (ALL_CAPS, 0),
        key=lambda path: f"{path}: store demo",
        broker=lambda config: ("mqtt://127.0.0.1:1883", None),
        clock=lambda: d.ClockState(True, NOW, "test"),
        free_space=lambda path: 1 << 30,
    )


def test_a_healthy_sensor_passes_every_check() -> None:
    config = SensorConfig.model_validate({"privacy": {"key_file": "/var/lib/footfall/sensor.key"}})
    checks = d.run_checks(config, fake_probes(MONITOR), sample_s=1, state_dir=Path("/var/lib/footfall"))
    assert [c.name for c in checks] == [
        "interface mon0",
        "monitor mode",
        "channel",
        "frames",
        "capabilities",
        "sensor key",
        "broker",
        "clock",
        "spool disk",
        "build",
    ]
    assert all(c.status is d.Status.OK for c in checks), [c.lines() for c in checks]
    assert not d.failed(checks)


def test_the_build_check_names_the_build_and_flags_a_stale_mix() -> None:
    hot = ("sensor.a", "sensor.b")
    compiled = d.check_build(hot, hot)
    pure = d.check_build((), hot)
    mixed = d.check_build(("sensor.a",), hot)
    assert compiled.status is pure.status is d.Status.OK
    assert compiled.detail.startswith("compiled (mypyc)") and pure.detail.startswith("pure Python")
    assert mixed.status is d.Status.WARN and "not sensor.b" in mixed.detail and "rebuild" in mixed.fix


def test_without_an_interface_the_radio_checks_are_skipped_not_crashed() -> None:
    checks = d.run_checks(
        SensorConfig(), fake_probes(IfaceState("mon0", False)), sample_s=1, state_dir=Path("/")
    )
    status = {c.name: c.status for c in checks}
    assert status["interface mon0"] is d.Status.FAIL
    assert status["channel"] is status["frames"] is status["monitor mode"] is d.Status.SKIP
    assert d.failed(checks)


def test_doctor_command_reports_a_bad_config_with_its_line_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "sensor.yaml"
    path.write_text("capture:\n  channels: [1, 99]\n")
    result = CliRunner().invoke(doctor_command, ["--config", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith("FAIL  config:") and "sensor.yaml:2" in result.output
    assert "unknown channel(s) [99]" in result.output
