"""Captures replayed through the real pipeline in memory: the count series calibration fits against.

Above the pipeline (it runs one), below the CLI: `footfall-sensor calibrate counts`, the lab tests
and bench/accuracy.py share it, so the numbers they fit are those the sensor would publish.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from footfall.events import CountEvent
from sensor.config import SensorConfig
from sensor.decode.frames import CaptureRecord
from sensor.estimate.occupancy import EstimatorParams
from sensor.keys.pseudonym import FixedSalt
from sensor.pipeline import ListSink, Pipeline


def count_series(config: SensorConfig, records: Iterable[CaptureRecord]) -> list[tuple[int, int, float]]:
    """Replay records through the real pipeline: (start_ns, end_ns, present) per count event."""
    sink = ListSink()
    pipeline = Pipeline(config, FixedSalt(b"calibration-replay-key-000000000"), sink)
    pipeline.run(records)
    pipeline.finish()
    return [(_ns(e.start), _ns(e.end), e.present) for e in sink.events if isinstance(e, CountEvent)]


def with_estimator(config: SensorConfig, params: EstimatorParams) -> SensorConfig:
    """`config` with the estimator numbers of `params` that the config file carries."""
    section = config.estimator.model_copy(
        update={
            "inside_rssi_dbm": params.inside_rssi_dbm,
            "holdover_s": params.holdover_s,
            "site_factor": params.site_factor,
            "global_weight": params.global_weight,
        }
    )
    return config.model_copy(update={"estimator": section})


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1000
