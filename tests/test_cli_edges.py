"""No traceback for a bad argument, path or file: one line and a non-zero exit; a cut capture is a counted warning."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from collector.cli.main import main as collector
from sensor.cli.main import main as sensor
from tests.conftest import REPO

DEMO = REPO / "sensor" / "demo" / "demo-store.pcap"


def run(tool: object, *args: str | Path) -> Result:
    return CliRunner().invoke(tool, ["--log-level", "error", *map(str, args)])  # type: ignore[arg-type]


def one_line_error(result: Result) -> str:
    assert result.exit_code not in (0, None), result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_replay_to_a_missing_directory_is_one_line_naming_the_path(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "dir" / "x.jsonl"
    line = one_line_error(run(sensor, "replay", DEMO, "--to", "jsonl", "--out", target))
    assert str(target) in line and "No such file or directory" in line


@pytest.mark.parametrize("tool", ["sensor", "collector"])
def test_a_config_file_that_is_not_utf8_is_one_line_naming_the_offset(tmp_path: Path, tool: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_bytes(b"site:\n  store: caf\xe9\n")
    if tool == "sensor":
        result = run(sensor, "check-config", cfg)
    else:
        result = run(collector, "report", "--store", "x", "--config", cfg)
    line = one_line_error(result)
    assert "not UTF-8" in line and "0xe9 at offset 18" in line


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1999-12-31", "2099-12-31"])
def test_a_report_date_outside_the_wire_window_is_a_usage_error(tmp_path: Path, day: str) -> None:
    result = run(collector, "report", "--store", "x", "--db", tmp_path / "f.db", "--from", day)
    assert result.exit_code == 2 and "outside 2000-01-01..2099-12-30" in result.output
    assert "Traceback" not in result.output


def cut_capture(tmp_path: Path) -> tuple[Path, int]:
    """The demo capture with its last record cut in the middle; returns it and where that record starts."""
    data = DEMO.read_bytes()
    off = 24
    while True:
        incl = struct.unpack_from("<I", data, off + 8)[0]
        if off + 16 + incl >= len(data):
            break
        off += 16 + incl
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[: off + 16 + incl // 2])
    return path, off


def test_a_capture_cut_mid_record_warns_with_the_offset_and_strict_makes_it_an_error(tmp_path: Path) -> None:
    path, offset = cut_capture(tmp_path)
    out = tmp_path / "events.jsonl"
    warned = run(sensor, "replay", path, "--to", "jsonl", "--out", out)
    assert warned.exit_code == 0, warned.output
    assert f"{path}: truncated_record at byte {offset}" in warned.output
    assert "capture warnings: truncated_record=1" in warned.output
    line = one_line_error(run(sensor, "replay", path, "--to", "jsonl", "--out", out, "--strict"))
    assert "1 captures cut short" in line
    whole = run(sensor, "replay", DEMO, "--to", "jsonl", "--out", out, "--strict")
    assert whole.exit_code == 0 and "truncated" not in whole.output
