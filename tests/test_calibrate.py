"""Site calibration: the fits recover what was put in, and the CLI says clearly what is wrong."""

from __future__ import annotations

import math
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from footfall_dev.craft import (
    EID_EXTENDED_RATES,
    EID_HT_CAPABILITIES,
    channel_frequency,
    element,
    ht_capabilities_element,
    radiotap_probe_request,
    rates_element,
)

from sensor import config as sensor_config
from sensor.cli.calibrate import calibrate, masked, parse_mac, write_config
from sensor.decode.capture import PcapWriter
from sensor.estimate.calibrate import (
    CalibrationError,
    Window,
    fit_counts,
    fit_log_distance,
    parse_at,
    parse_time,
    read_truth,
    truth_windows,
    window_means,
)
from sensor.estimate.occupancy import EstimatorParams

S = 1_000_000_000
T0 = 1_700_000_000 * S  # 2023-11-14 22:13:20 UTC
UTC = ZoneInfo("UTC")
PHONE = bytes.fromhex("3a1b2c4d5e6f")  # locally administered, as a phone's probe address is
OTHER = bytes.fromhex("0a1b2c4d5e70")
ELEMENTS = (
    element(1, rates_element((2, 4, 11, 22)))
    + element(EID_EXTENDED_RATES, bytes.fromhex("0c1218243048606c"))
    + element(EID_HT_CAPABILITIES, ht_capabilities_element(0x402D, 0x17, b"\xff"))
)


def walk_capture(path: Path, p1m: float, n: float, sigma: float, seed: int = 7) -> list[tuple[float, float]]:
    """The installer's phone at 1, 2, 4 and 8 m for 60 s each (a probe a second), plus a stranger.

    Returns the (start s, metres) plan. The stranger's frames must not enter the fit.
    """
    rng = random.Random(seed)
    plan = [(0.0, 1.0), (60.0, 2.0), (120.0, 4.0), (180.0, 8.0)]
    freq = channel_frequency(6)
    with PcapWriter(path, 127) as pcap:
        for k in range(240):
            meters = plan[k // 60][1]
            rssi = round(p1m - 10 * n * math.log10(meters) + rng.gauss(0, sigma))
            pcap.write(T0 + k * S, radiotap_probe_request(PHONE, k, b"", ELEMENTS, rssi, freq))
            pcap.write(T0 + k * S + S // 2, radiotap_probe_request(OTHER, k, b"", ELEMENTS, -30, freq))
    return plan


# -- the pure fits ----------------------------------------------------------------------------------


def test_the_log_distance_fit_recovers_p1m_and_the_exponent() -> None:
    rng = random.Random(1)
    samples = [(d, -40 - 28 * math.log10(d) + rng.gauss(0, 2.0)) for d in (1, 2, 3, 5, 8) for _ in range(50)]
    fit = fit_log_distance(samples)
    assert fit.p1m_dbm == pytest.approx(-40, abs=0.7)
    assert fit.exponent == pytest.approx(2.8, abs=0.1)
    assert fit.sigma_db == pytest.approx(2.0, abs=0.3)
    assert fit.r2 > 0.9
    assert [p[1] for p in fit.points] == [50] * 5


def test_the_suggested_visitor_rssi_is_the_door_mean_less_the_margin() -> None:
    fit = fit_log_distance([(1.0, -40.0), (10.0, -70.0), (1.0, -40.0), (10.0, -70.0)])
    assert fit.rssi_at(10) == pytest.approx(-70)
    assert fit.visitor_rssi(10.0, margin_sigmas=1.0) == -70  # sigma 0: the mean itself
    assert fit.visitor_rssi(1.0) == -40


def test_a_fit_on_one_distance_is_refused_with_the_count() -> None:
    with pytest.raises(CalibrationError, match=r"too few distances.*got 1 \(3 m\)"):
        fit_log_distance([(3.0, -60.0), (3.0, -61.0)])


def test_times_are_read_as_offsets_clock_times_or_iso() -> None:
    paris = ZoneInfo("Europe/Paris")
    start = 1_700_000_000 * S  # 23:13:20 in Paris
    assert parse_time("+90", start, paris) == start + 90 * S
    assert parse_time("23:15", start, paris) == start + 100 * S
    assert parse_time("2023-11-14T22:15:00Z", start, paris) == start + 100 * S
    with pytest.raises(CalibrationError, match="time 'soon'"):
        parse_time("soon", start, paris)


def test_at_marks_hold_until_the_next_mark() -> None:
    spans = parse_at(["+60=3", "+0=1"], T0, T0 + 120 * S, UTC)
    assert [(s.start_ns - T0, s.end_ns - T0, s.meters) for s in spans] == [
        (0, 60 * S, 1.0),
        (60 * S, 120 * S + 1, 3.0),
    ]


def test_a_timestamp_count_truth_becomes_steps_and_time_weighted_windows() -> None:
    text = "timestamp,count\n2023-11-14T22:00:00Z,4\n2023-11-14T22:07:30Z,8\n2023-11-14T22:30:00Z,0\n"
    steps = read_truth(text, [], UTC)
    windows = truth_windows(steps)
    assert [w.truth for w in windows] == [pytest.approx(6.0), pytest.approx(8.0)]


def test_a_fryza_truth_is_joined_on_the_frame_index() -> None:
    text = "datetime;src;idx;occupancy\nx;y;1;5.0\nx;y;0;3.0\n"
    assert read_truth(text, [10 * S, 20 * S], UTC) == [(10 * S, 3.0), (20 * S, 5.0)]
    with pytest.raises(CalibrationError, match="idx 7 is outside the capture's 2 frames"):
        read_truth("a;idx;occupancy\n1;7;1\n", [10 * S, 20 * S], UTC)


def test_an_unknown_truth_format_is_one_clear_error() -> None:
    with pytest.raises(CalibrationError, match=r"unknown truth format.*'time,people'"):
        read_truth("time,people\n1,2\n", [], UTC)


def test_window_means_rescale_an_interval_the_capture_covers_in_part() -> None:
    w = Window(0, 0, 900 * S, 0.0)
    # The capture starts at 150 s: the first 300-s interval heard only half of it and said 1.0.
    got = window_means(
        [(0, 300 * S, 1.0), (300 * S, 600 * S, 2.0), (600 * S, 900 * S, 2.0)], [w], (150 * S, 900 * S)
    )
    assert got == [pytest.approx((2.0 * 150 + 2.0 * 600) / 900)]


def test_fit_counts_recovers_the_factor_from_a_replay() -> None:
    devices = [4.0, 6.0, 5.0]
    truth = [6.0, 9.0, 7.5]

    def replay(params: EstimatorParams) -> list[float]:
        return [x * params.site_factor for x in devices]

    fit = fit_counts(replay, truth, EstimatorParams(site_factor=1.0), full_grid=False)
    assert fit.params.site_factor == pytest.approx(1.5)
    assert fit.mae_after == pytest.approx(0.0, abs=1e-6)


# -- the MAC stays private ----------------------------------------------------------------------------


def test_a_mac_is_parsed_in_any_common_spelling_and_shown_masked() -> None:
    assert (
        parse_mac("3a:1b:2c:4d:5e:6f") == parse_mac("3a-1b-2c-4d-5e-6f") == parse_mac("3A1B2C4D5E6F") == PHONE
    )
    assert masked(PHONE) == "3a:**:**:**:**:6f"


# -- the CLI ------------------------------------------------------------------------------------------


def test_calibrate_signal_recovers_the_crafted_model_and_never_prints_the_mac(tmp_path: Path) -> None:
    capture = tmp_path / "walk.pcap"
    walk_capture(capture, p1m=-38.0, n=2.5, sigma=2.0)
    config = tmp_path / "sensor.yaml"
    config.write_text("# my sensor\npresence:\n  # door threshold\n  visitor_rssi: -70\n")
    result = CliRunner().invoke(
        calibrate,
        [
            "signal", str(capture), "--device", "3a:1b:2c:4d:5e:6f",
            "--at", "+0=1", "--at", "+60=2", "--at", "+120=4", "--at", "+180=8",
            "--door-distance", "5", "--config", str(config), "--write",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3a1b2c4d5e6f" not in result.output.replace(":", "").lower()
    assert "3a:**:**:**:**:6f" in result.output
    p1m = float(result.output.split("P1m ")[1].split(" dBm")[0])
    n = float(result.output.split("exponent n ")[1].split(",")[0])
    assert p1m == pytest.approx(-38.0, abs=1.0)
    assert n == pytest.approx(2.5, abs=0.15)
    written = config.read_text()
    assert "# my sensor" in written and "# door threshold" in written
    suggested = sensor_config.load(config).presence.visitor_rssi
    assert -60 <= suggested <= -55  # -38 - 25 log10(5) = -55.5, less one sigma (~2 dB)


def test_calibrate_signal_with_a_mac_not_in_the_capture_is_one_clear_line(tmp_path: Path) -> None:
    capture = tmp_path / "walk.pcap"
    walk_capture(capture, -38.0, 2.5, 2.0)
    result = CliRunner().invoke(
        calibrate, ["signal", str(capture), "--device", "02:00:00:00:00:01", "--at", "+0=1"]
    )
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "MAC 02:**:**:**:**:01 not found in the capture (480 probe requests from 2 other" in result.output


def test_calibrate_signal_with_one_distance_says_too_few(tmp_path: Path) -> None:
    capture = tmp_path / "walk.pcap"
    walk_capture(capture, -38.0, 2.5, 2.0)
    result = CliRunner().invoke(
        calibrate, ["signal", str(capture), "--device", "3a1b2c4d5e6f", "--at", "+0=2"]
    )
    assert result.exit_code == 1
    assert (
        "Error: too few distances: the fit needs frames at 2 or more distances, got 1 (2 m)" in result.output
    )


def test_calibrate_signal_refuses_a_malformed_mac_without_echoing_it(tmp_path: Path) -> None:
    capture = tmp_path / "walk.pcap"
    walk_capture(capture, -38.0, 2.5, 2.0)
    result = CliRunner().invoke(
        calibrate, ["signal", str(capture), "--device", "3a:1b:2c:4d:5e", "--at", "+0=1"]
    )
    assert result.exit_code == 2
    assert "not a MAC address" in result.output
    assert "3a:1b:2c:4d:5e" not in result.output


def test_calibrate_counts_with_an_unknown_truth_format_is_one_clear_line(tmp_path: Path) -> None:
    capture = tmp_path / "walk.pcap"
    walk_capture(capture, -38.0, 2.5, 2.0)
    truth = tmp_path / "truth.csv"
    truth.write_text("when|who\n1|2\n")
    result = CliRunner().invoke(calibrate, ["counts", str(capture), "--truth", str(truth)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown truth format")
    assert result.output.count("\n") == 1


def crafted_day(path: Path, hours: float) -> None:
    """Three phones inside, a new random address every scan at irregular gaps, each at its own signal
    and with its own running sequence counter (random sequence numbers would, over hours, hand one
    phone's address to another by a chance sequence match, and the count would read 2)."""
    rng = random.Random(3)
    freq = channel_frequency(6)
    frames = []
    for i, rssi in enumerate((-40, -52, -64)):
        t, seq = rng.uniform(0, 20), rng.randrange(4096)
        while t < hours * 3600:
            mac = bytes((0x02 | (i << 2),)) + rng.randbytes(5)
            frames.append((T0 + int(t * S), radiotap_probe_request(mac, seq, b"", ELEMENTS, rssi, freq)))
            t, seq = t + rng.uniform(20, 60), (seq + rng.randrange(1, 4)) % 4096
    with PcapWriter(path, 127) as pcap:
        for ts, frame in sorted(frames):
            pcap.write(ts, frame)


# Three phones beside the sensor are all it hears here: no street to learn a signal scale from, so the
# thresholds stay as configured (estimator.scale off), and no lab crowd for the count model's blend
# (count_model off): the device count is 3 all along and people per device is the site factor.
CONFIG = (
    "# footfall sensor\nestimator:\n  # people per device, per site\n  site_factor: 1.0  # fitted later\n"
    "  holdover_s: 450\n  count_model: false\n  scale:\n    enabled: false\n"
)


def test_calibrate_counts_fits_on_part_judges_on_the_rest_and_writes_keeping_comments(
    tmp_path: Path,
) -> None:
    # Three phones for three hours; the truth says six people all along (half carry no phone): factor 2.
    capture = tmp_path / "day.pcap"
    crafted_day(capture, 3.0)
    truth = tmp_path / "truth.csv"
    truth.write_text("timestamp,count\n2023-11-14T22:13:20Z,6\n2023-11-15T01:13:20Z,6\n")
    config = tmp_path / "sensor.yaml"
    config.write_text(CONFIG)
    result = CliRunner().invoke(
        calibrate, ["counts", str(capture), "--truth", str(truth), "--config", str(config), "--write"]
    )
    assert result.exit_code == 0, result.output
    assert "held out:" in result.output and "before" in result.output and "fitted" in result.output
    assert "better than the defaults" in result.output
    written = config.read_text()
    assert "# people per device, per site" in written
    assert "# fitted later" in written
    assert sensor_config.load(config).estimator.site_factor == pytest.approx(2.0, abs=0.15)


def test_calibrate_counts_refuses_to_write_a_fit_the_held_out_part_does_not_confirm(tmp_path: Path) -> None:
    # The same three phones; the truth says six people in the first and third hour, three in the
    # second. Fitted on hours one and three (factor 2), judged on hour two (factor 1 was right).
    capture = tmp_path / "day.pcap"
    crafted_day(capture, 3.0)
    truth = tmp_path / "truth.csv"
    truth.write_text(
        "timestamp,count\n2023-11-14T22:00:00Z,6\n2023-11-14T23:00:00Z,3\n2023-11-15T00:00:00Z,6\n"
        "2023-11-15T01:13:20Z,6\n"
    )
    config = tmp_path / "sensor.yaml"
    config.write_text(CONFIG)
    result = CliRunner().invoke(
        calibrate, ["counts", str(capture), "--truth", str(truth), "--config", str(config), "--write"]
    )
    assert result.exit_code == 1
    assert "Error: not written: on the " in result.output
    assert "not better than the defaults'" in result.output
    assert config.read_text() == CONFIG


def test_write_config_refuses_a_value_the_config_would_reject(tmp_path: Path) -> None:
    config = tmp_path / "sensor.yaml"
    config.write_text("presence:\n  visitor_rssi: -70  # door\n")
    with pytest.raises(Exception, match="not written"):
        write_config(config, "presence", {"visitor_rssi": 15})
    assert config.read_text() == "presence:\n  visitor_rssi: -70  # door\n"


def lab_counts(shared_data: Path, tmp_path: Path, fit_day: str, held_day: str) -> tuple[Path, Result]:
    lab = shared_data / "fryza-lab"
    config = tmp_path / "sensor.yaml"
    config.write_text("estimator:\n  site_factor: 1.34  # the lab's factor\n")
    args = ["counts", str(lab / f"{fit_day}.pcap"), str(lab / f"{held_day}.pcap")]
    args += ["--truth", str(lab / f"{fit_day}.csv"), "--truth", str(lab / f"{held_day}.csv")]
    return config, CliRunner().invoke(calibrate, [*args, "--config", str(config), "--write"])


@pytest.mark.realdata
def test_calibrating_on_a_real_lab_day_writes_a_factor_the_other_day_confirms(
    shared_data: Path, tmp_path: Path
) -> None:
    config, result = lab_counts(shared_data, tmp_path, "2022-11-22", "2022-10-18")
    output = result.output
    assert result.exit_code == 0, output
    assert "fitted on: 2022-11-22" in output and "held out:  2022-10-18" in output
    assert "better than the defaults'" in output
    factor = sensor_config.load(config).estimator.site_factor
    assert 1.23 < factor < 1.34  # shrunk from the fit part's 1.23 toward the default
    assert "# the lab's factor" in config.read_text()


@pytest.mark.realdata
def test_calibrating_on_a_real_lab_day_that_the_other_day_contradicts_writes_nothing(
    shared_data: Path, tmp_path: Path
) -> None:
    # 2022-10-18's people per device (1.02 by least squares, shrunk to 1.18) would make 2023-02-08, a
    # day the default already fits, worse: refused, and the output says why.
    config, result = lab_counts(shared_data, tmp_path, "2022-10-18", "2023-02-08")
    output = result.output
    assert result.exit_code == 1
    assert "Error: not written: on the 7 held-out windows (2023-02-08)" in output
    assert "not better than the defaults'" in output and "the defaults stay" in output
    assert sensor_config.load(config).estimator.site_factor == 1.34
