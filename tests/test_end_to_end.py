"""The whole path on real parts: capture → sensor → Mosquitto → collector → SQLite → report.

The sensor and collector run as the installed console scripts in their own processes, as a user runs
them; the broker is a real Mosquitto on a free loopback port.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from footfall_dev.generator import Truth

from tests.conftest import REPO, Broker

pytestmark = pytest.mark.mqtt

DEMO = REPO / "sensor" / "demo" / "demo-store.pcap"
BIN = Path(sys.executable).parent


def cli(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check, timeout=300)


def seed_file(tmp_path: Path) -> Path:
    seed = tmp_path / "demo.seed"
    cli(BIN / "footfall-sensor", "keys", "seed", "--store", "demo", "--out", seed, "--tz", "Europe/Paris",
        "--at", "2024-01-01T00:00")  # fmt: skip
    return seed


def write_configs(tmp_path: Path, broker: Broker) -> tuple[Path, Path, Path]:
    db = tmp_path / "footfall.db"
    collector = tmp_path / "collector.yaml"
    collector.write_text(f"mqtt:\n  port: {broker.port}\n  client_id: e2e-collector\nstore:\n  path: {db}\n")
    sensor = tmp_path / "sensor.yaml"
    sensor.write_text(f"site:\n  store: demo\n  sensor: door-1\nmqtt:\n  port: {broker.port}\n")
    return sensor, collector, db


def report_json(*where: str | Path) -> dict[str, object]:
    out = cli(BIN / "footfall-collector", "report", "--store", "demo", "--format", "json", *where)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def rounded(value: object) -> object:
    """`value` with every float to 9 places: the roll-ups sum `present` in the order events were stored,
    which differs between the broker's batches and a file, and float addition is not associative."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_demo_capture_flows_through_mqtt_into_the_report(tmp_path: Path, broker: Broker) -> None:
    sensor_cfg, collector_cfg, db = write_configs(tmp_path, broker)
    seed = seed_file(tmp_path)
    collector = subprocess.Popen(
        [BIN / "footfall-collector", "run", "--config", collector_cfg, "--until-idle", "5"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        replay = cli(
            BIN / "footfall-sensor", "replay", DEMO, "--config", sensor_cfg, "--seed", seed, "--to", "mqtt"
        )
        assert "visit and" in replay.stderr
        _, collector_log = collector.communicate(timeout=120)
    finally:
        collector.kill()
    assert collector.returncode == 0, collector_log

    # The same capture through JSON lines, without a broker, must give the same events and the same report.
    jsonl = tmp_path / "events.jsonl"
    cli(
        BIN / "footfall-sensor",
        "replay",
        DEMO,
        "--config",
        sensor_cfg,
        "--seed",
        seed,
        "--to",
        "jsonl",
        "--out",
        jsonl,
    )
    offline_db = tmp_path / "offline.db"
    cli(BIN / "footfall-collector", "ingest", jsonl, "--db", offline_db)

    over_mqtt = report_json("--db", db)
    offline = report_json("--db", offline_db)
    assert rounded(over_mqtt) == rounded(offline)

    lines = jsonl.read_bytes().splitlines()
    totals = over_mqtt["totals"]
    assert isinstance(totals, dict)
    assert totals["visitors"] + totals["passersby"] == sum(
        1
        for line in lines
        if json.loads(line)["schema"] == "footfall.visit/1" and json.loads(line)["kind"] != "fixed"
    )
    truth = Truth.load(DEMO.with_suffix(".truth.json")).aggregates()
    # Sanity against the generator's truth (accuracy itself is measured by bench/accuracy.py).
    assert 0 < totals["visitors"] <= 2 * truth["visitors"]


def test_replaying_twice_with_the_same_seed_gives_identical_payloads(tmp_path: Path) -> None:
    seed = seed_file(tmp_path)
    outs = []
    for n in (1, 2):
        out = tmp_path / f"run{n}.jsonl"
        cli(BIN / "footfall-sensor", "replay", DEMO, "--seed", seed, "--to", "jsonl", "--out", out)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    ids = [json.loads(line)["event_id"] for line in outs[0].splitlines()]
    assert len(ids) == len(set(ids)), "event ids must be unique"


def test_replay_without_a_seed_uses_a_throwaway_key(tmp_path: Path) -> None:
    runs = [cli(BIN / "footfall-sensor", "replay", DEMO, "--to", "jsonl").stdout for _ in range(2)]
    devices = [{json.loads(line).get("device") for line in run.splitlines()} - {None} for run in runs]
    assert devices[0] and not devices[0] & devices[1], "pseudonyms must not repeat across throwaway keys"


def test_unreachable_broker_is_one_clear_line(tmp_path: Path) -> None:
    sensor = tmp_path / "sensor.yaml"
    sensor.write_text("mqtt:\n  port: 9\n")
    result = cli(BIN / "footfall-sensor", "replay", DEMO, "--config", sensor, check=False)
    assert result.returncode == 1
    assert "Error: no connection to mqtt://127.0.0.1:9" in result.stderr


def test_a_seed_newer_than_the_capture_is_one_clear_line(tmp_path: Path) -> None:
    seed = tmp_path / "late.seed"
    cli(BIN / "footfall-sensor", "keys", "seed", "--store", "demo", "--out", seed, "--at", "2025-01-01T00:00")
    result = cli(BIN / "footfall-sensor", "replay", DEMO, "--seed", seed, "--to", "jsonl", check=False)
    assert result.returncode == 1
    assert "is before the seed's anchor epoch" in result.stderr
    assert "Traceback" not in result.stderr
