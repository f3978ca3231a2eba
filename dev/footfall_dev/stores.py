"""A generated store through the whole product: every sensor's capture replayed, stored, reported.

    result = replay_store(replace(StoreModel(), sensors=TWO_SENSORS))
    result.report.visitors, result.truth.visitors, result.per_sensor["door-1"].visitors

Each sensor of the model gets its own `Pipeline` (the sensor's config with that sensor's name) fed
with its own capture; all of them share one key (as the sensors of a store share their seed), so
one address has one pseudonym on all of them. Their events go into a real store (SQLite in memory
unless one is passed) and the collector's report is built over the capture's local day, once for
the store and once per sensor alone (in memory: what summing sensors would have been built from).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from collector.config import ReportConfig
from collector.reports import report as reports
from collector.storage.base import Store
from collector.storage.sqlite import SqliteStore
from footfall.events import Event
from footfall_dev.generator.day import generate
from footfall_dev.generator.model import StoreModel
from footfall_dev.generator.truth import Truth
from sensor.config import SensorConfig
from sensor.keys.pseudonym import FixedSalt
from sensor.pipeline import ListSink, Pipeline

STORE = "generated"
KEY = b"generated-store-key-------------"  # one key for every sensor of the store


@dataclass(frozen=True, slots=True)
class StoreResult:
    truth: Truth
    report: reports.Report  # the store, every sensor merged
    per_sensor: dict[str, reports.Report]  # each sensor's events alone
    events: dict[str, list[Event]]


def sensor_events(
    model: StoreModel, config: SensorConfig | None = None
) -> tuple[Truth, dict[str, list[Event]]]:
    """Replay every sensor's capture of the generated day; the events by sensor name."""
    day = generate(model)
    base = config or SensorConfig()
    events: dict[str, list[Event]] = {}
    for i, place in enumerate(model.sensors):
        site = base.site.model_copy(update={"store": STORE, "sensor": place.name})
        sink = ListSink()
        pipeline = Pipeline(base.model_copy(update={"site": site}), FixedSalt(KEY), sink)
        for ts_ns, data in day.records(i):
            pipeline.feed(ts_ns, 127, data)
        pipeline.finish()
        events[place.name] = list(sink.events)
    return day.truth, events


def replay_store(
    model: StoreModel,
    config: SensorConfig | None = None,
    open_store: Callable[[], Store] = lambda: SqliteStore(":memory:"),
) -> StoreResult:
    """Events of every sensor into a store, and the reports over the capture's local day."""
    truth, events = sensor_events(model, config)
    report_config = ReportConfig(timezone=model.timezone)

    def report_of(chosen: list[Event], db: Store) -> reports.Report:
        try:
            db.add(chosen)
            return reports.for_store(db, STORE, model.day, model.day, report_config)
        finally:
            db.close()

    merged = report_of([e for evs in events.values() for e in evs], open_store())
    alone = (
        {name: report_of(evs, SqliteStore(":memory:")) for name, evs in events.items()}
        if len(events) > 1
        else {}
    )
    return StoreResult(truth, merged, alone, events)
