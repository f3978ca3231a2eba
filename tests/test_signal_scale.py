"""The learned signal scale, the 80 % interval and the status fields, on real lab days and on the wire.

2022-11-16 reads 17 dB stronger than the day before (median probe -62 dBm against -79): with fixed
dBm thresholds the corridor counts as inside and the estimate reads about twice the truth. The
sensor learns its scale from what it hears, follows it, and says so in its status.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from footfall.events import CountEvent, StatusEvent
from sensor.config import SensorConfig
from sensor.decode.capture import read_capture
from sensor.decode.frames import CaptureRecord
from sensor.estimate.calibrate import read_truth, score, truth_windows, window_means
from sensor.estimate.scale import ScaleParams, SignalScale
from sensor.keys.pseudonym import FixedSalt
from sensor.live.health import Snapshot, StatusReporter
from sensor.pipeline import ListSink, Pipeline
from tests.test_lab_estimate import lab_config

NS = 1_000_000_000
LAB_TZ = ZoneInfo("Europe/Prague")


def lab_more(shared_data: Path, tmp_path: Path, day: str) -> tuple[list[CaptureRecord], str]:
    folder = shared_data / "fryza-lab-more"
    pcap = tmp_path / f"{day}.pcap"
    pcap.write_bytes(gzip.decompress((folder / f"{day}.pcap.gz").read_bytes()))
    return list(read_capture(pcap)), gzip.decompress((folder / f"{day}.csv.gz").read_bytes()).decode()


def replay(config: SensorConfig, records: list[CaptureRecord]) -> tuple[list[CountEvent], Pipeline]:
    sink = ListSink()
    pipeline = Pipeline(config, FixedSalt(b"k" * 32), sink)
    pipeline.run(records)
    pipeline.finish()
    return [e for e in sink.events if isinstance(e, CountEvent)], pipeline


def mae(counts: list[CountEvent], records: list[CaptureRecord], truth_text: str) -> float:
    times = [r.ts_ns for r in records]
    windows = truth_windows(read_truth(truth_text, times, LAB_TZ))
    series = [(int(c.start.timestamp()) * NS, int(c.end.timestamp()) * NS, c.present) for c in counts]
    return score(window_means(series, windows, (times[0], times[-1])), [w.truth for w in windows]).mae


def without_scale() -> SensorConfig:
    config = lab_config()
    scale = config.estimator.scale.model_copy(update={"enabled": False})
    return config.model_copy(update={"estimator": config.estimator.model_copy(update={"scale": scale})})


@pytest.mark.realdata
def test_a_day_whose_signal_scale_moved_is_counted_far_closer_with_the_learned_scale_and_reported(
    shared_data: Path, tmp_path: Path
) -> None:
    records, truth = lab_more(shared_data, tmp_path, "2022-11-16")
    fixed, _ = replay(without_scale(), records)
    learned, pipeline = replay(lab_config(), records)
    assert pipeline.occupancy is not None
    scale = pipeline.occupancy.scale
    assert scale.offset_db is not None and scale.offset_db >= 12  # 17 dB stronger than nominal
    assert scale.drift
    assert mae(learned, records, truth) < 0.7 * mae(fixed, records, truth)


@pytest.mark.realdata
def test_a_day_on_the_usual_scale_reports_no_drift(shared_data: Path, tmp_path: Path) -> None:
    records, _ = lab_more(shared_data, tmp_path, "2022-11-15")
    _, pipeline = replay(SensorConfig(), records)
    assert pipeline.occupancy is not None
    offset = pipeline.occupancy.scale.offset_db
    assert offset is not None and abs(offset) < SensorConfig().estimator.scale.drift_db
    assert not pipeline.occupancy.scale.drift


def test_the_scale_is_trusted_only_after_enough_frames_and_its_shift_is_bounded() -> None:
    scale = SignalScale(ScaleParams(min_weight=100, nominal_dbm=-80, gain=0.5, max_up_db=6))
    for i in range(99):
        scale.add(i * NS, -40)
    scale.add(61 * NS, -40)  # the minute's reckoning: 100 frames, not yet decayed below the bar
    assert scale.reference_dbm is None and scale.shift_db == 0.0
    for i in range(200):
        scale.add((62 + i) * NS, -40)
    assert scale.reference_dbm == -40.0
    assert scale.offset_db == 40.0 and scale.drift
    assert scale.shift_db == 6.0  # 0.5 x 40 dB, held at max_up_db


@pytest.mark.realdata
def test_count_events_carry_an_interval_around_present(shared_data: Path) -> None:
    records = list(read_capture(shared_data / "fryza-lab" / "2022-11-22.pcap"))
    counts, _ = replay(SensorConfig(), records)
    heard = [c for c in counts if c.present > 0]
    assert heard
    for c in heard:
        assert c.present_low is not None and c.present_high is not None
        assert c.present_low <= c.present <= c.present_high
        floor = SensorConfig().estimator.interval_floor  # at least this many people either side
        assert c.present_high >= c.present + floor - 1e-3
        assert c.present_low <= max(c.present - floor, 0.0) + 1e-3


def count_payload(**fields: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "event_id": "0" * 32,
        "store": "s1",
        "sensor": "a",
        "epoch": "e",
        "schema": "footfall.count/1",
        "start": "2026-11-24T10:00:00Z",
        "end": "2026-11-24T10:05:00Z",
        "present": 4.0,
        "visitors": 0,
        "passersby": 0,
        "visitors_present": 0,
        "new_visitors": 0,
        "returning_visitors": 0,
        "frames": 1,
        "frames_randomized": 1,
        "addresses": 1,
        "addresses_randomized": 1,
        "devices": 1,
    }
    payload.update(fields)
    return payload


def test_an_old_count_event_without_an_interval_still_validates_and_a_bad_interval_is_refused() -> None:
    old = CountEvent.model_validate_json(json.dumps(count_payload()))
    assert old.present_low is None and old.present_high is None
    assert CountEvent.model_validate_json(json.dumps(count_payload(present_low=3.0, present_high=6.0)))
    with pytest.raises(ValidationError, match="present_low <= present <= present_high"):
        CountEvent.model_validate_json(json.dumps(count_payload(present_low=5.0, present_high=6.0)))
    with pytest.raises(ValidationError, match="come together"):
        CountEvent.model_validate_json(json.dumps(count_payload(present_low=3.0)))


def test_the_status_event_carries_the_learned_scale_and_a_drift_sends_it_at_once() -> None:
    sent: list[object] = []
    status = StatusReporter(SensorConfig(), "1.2.3", sent.append, 600)
    t0 = 1_790_000_000 * NS
    base = {"uptime_s": 0.0, "interface": "mon0", "capture_up": True}
    status.tick(Snapshot(at_ns=t0, signal_ref_dbm=-79.0, signal_offset_db=0.0, **base))  # type: ignore[arg-type]
    assert status.tick(Snapshot(at_ns=t0 + NS, signal_ref_dbm=-79.0, signal_offset_db=0.0, **base)) is None  # type: ignore[arg-type]
    event = status.tick(
        Snapshot(at_ns=t0 + 2 * NS, signal_ref_dbm=-62.0, signal_offset_db=17.0, signal_drift=True, **base)  # type: ignore[arg-type]
    )
    assert isinstance(event, StatusEvent)
    payload = json.loads(event.to_json())
    assert (
        payload["signal_ref_dbm"] == -62.0 and payload["signal_offset_db"] == 17.0 and payload["signal_drift"]
    )
    # A status from before these fields existed still validates.
    old = {k: v for k, v in payload.items() if not k.startswith("signal_")}
    assert not StatusEvent.model_validate_json(json.dumps(old)).signal_drift
    assert datetime.fromisoformat(payload["at"].replace("Z", "+00:00")).tzinfo == UTC
