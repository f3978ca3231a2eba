"""The four failures of "Nothing lost, nobody in", on real processes: nothing lost, nothing stored twice.

Each test runs one scenario of bench/faults.py (real Mosquitto with config/mosquitto.conf, the collector
CLI, a sensor process with the real spool) with a 5 s broker outage instead of the bench's 60 s, and a
fast sensor, so the four together take about half a minute. The figures are printed (see them with
`-s`) and written to bench/results/faults.txt whatever pytest shows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.faults import RESULTS, Figures, Params, make_events, run, write_results
from tests.conftest import mosquitto_binary

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

PARAMS = Params(outage_s=5.0, down_s=2.0, rate=100.0, timeout_s=60.0)


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mosquitto_binary()  # skips when Mosquitto is missing
    return make_events(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def figures() -> Iterator[list[Figures]]:
    collected: list[Figures] = []
    yield collected
    if collected:
        header = (
            f"# pytest tests/test_faults.py: outage {PARAMS.outage_s:g} s, down {PARAMS.down_s:g} s, "
            f"{PARAMS.rate:g} events/s (the bench: python -m bench.faults, 60 s outage)"
        )
        print("\n" + write_results(collected, header, RESULTS))


def scenario(name: str, events: Path, tmp_path: Path, figures: list[Figures]) -> Figures:
    result = run(name, tmp_path / name, events, PARAMS)
    figures.append(result)
    print(result.line())
    assert result.lost == 0, result.line()
    assert result.duplicated == 0, result.line()
    return result


def test_a_broker_killed_mid_stream_loses_nothing(
    events: Path, tmp_path: Path, figures: list[Figures]
) -> None:
    result = scenario("broker_killed", events, tmp_path, figures)
    assert result.stored == result.generated


def test_a_collector_killed_with_a_batch_in_hand_loses_nothing(
    events: Path, tmp_path: Path, figures: list[Figures]
) -> None:
    result = scenario("collector_killed", events, tmp_path, figures)
    assert result.stored == result.generated


def test_a_sensor_killed_mid_stream_resumes_and_loses_nothing(
    events: Path, tmp_path: Path, figures: list[Figures]
) -> None:
    result = scenario("sensor_killed", events, tmp_path, figures)
    assert result.stored == result.generated


def test_a_full_spool_drops_only_visits_and_counts_every_drop(
    events: Path, tmp_path: Path, figures: list[Figures]
) -> None:
    result = scenario("spool_full", events, tmp_path, figures)
    assert result.dropped > 0, "the outage should have overflowed the 100-event spool"
    made = [json.loads(line)["schema"] for line in events.read_bytes().splitlines()]
    db = sqlite3.connect(tmp_path / "spool_full" / "collector.db")
    stored_counts = db.execute("SELECT COUNT(*) FROM counts").fetchone()[0]
    db.close()
    assert stored_counts == made.count("footfall.count/1"), "no count event may be dropped"
    spool = sqlite3.connect(tmp_path / "spool_full" / "spool.db")
    counted = spool.execute("SELECT SUM(value) FROM counters WHERE name LIKE 'dropped_%'").fetchone()[0]
    named = spool.execute("SELECT COUNT(*) FROM dropped").fetchone()[0]
    spool.close()
    assert counted == named == result.dropped, "every drop is counted once and named by its event id"


def test_a_broker_killed_holding_a_whole_replay_for_an_offline_collector_loses_nothing(
    events: Path, tmp_path: Path, figures: list[Figures]
) -> None:
    result = scenario("replay_lost_by_broker", events, tmp_path, figures)
    assert result.stored == result.generated
    assert spool_rows(tmp_path / "replay_lost_by_broker") == 0, "every event released on its store ack"


def test_the_same_with_the_sensor_restarted_loses_nothing(
    events: Path, tmp_path: Path, figures: list[Figures]
) -> None:
    name = "replay_lost_by_broker_sensor_restarted"
    result = scenario(name, events, tmp_path, figures)
    assert result.stored == result.generated
    assert spool_rows(tmp_path / name) == 0


def spool_rows(work: Path) -> int:
    db = sqlite3.connect(work / "spool.db")
    try:
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        db.close()
