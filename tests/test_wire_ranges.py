"""The wire schema's ranges are what both backends hold: every bound is stored and read back, past it refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector.config import IngestConfig
from collector.ingest.ingestor import Ingestor, Reason
from collector.storage.base import Store
from collector.storage.sqlite import SqliteStore
from footfall.events import INT32_MAX, MAX_PEOPLE, MAX_SECONDS, TIME_MAX, TIME_MIN, CountEvent
from tests.pgserver import each_store, postgres_dsn, postgres_server  # noqa: F401
from tests.test_report import count, status

T0 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
INTS = [n for n, f in CountEvent.model_fields.items() if f.annotation is int]
TOPIC = "footfall/v1/paris-01/s1/"


@pytest.fixture
def store(each_store: Store) -> Store:  # noqa: F811
    return each_store


def edited(payload: bytes, **changes: Any) -> bytes:
    return json.dumps({**json.loads(payload), **changes}).encode()


def ingestor(store: Store, now: datetime = T0) -> Ingestor:
    return Ingestor(store, IngestConfig(), "footfall/v1", now.timestamp)


def test_every_upper_bound_is_accepted_stored_and_read_back_on_each_backend(store: Store) -> None:
    last = TIME_MAX - timedelta(microseconds=1)
    payload = edited(
        count(TIME_MIN, 1.0).to_json(),
        **dict.fromkeys(INTS, INT32_MAX),
        present=MAX_PEOPLE,
        visitors_est=MAX_PEOPLE,
        end=last.isoformat(),
        epoch="E" + "9" * 63,
    )
    ing = ingestor(store, now=last)
    assert ing.handle(TOPIC + "count", payload).accepted
    assert ing.handle(
        TOPIC + "status", edited(status(last, sensor="s1").to_json(), uptime_s=MAX_SECONDS)
    ).accepted
    assert ing.flush() == 2
    (row,) = store.counts("paris-01", TIME_MIN, TIME_MAX)
    assert (row.start, row.end, row.present, row.visitors_est) == (TIME_MIN, last, MAX_PEOPLE, MAX_PEOPLE)
    assert store.sensors("paris-01", TIME_MIN, TIME_MAX) == ["s1"]


OUT_OF_RANGE: list[tuple[str, dict[str, Any]]] = [
    ("frames", {"frames": INT32_MAX + 1}),
    ("frames", {"frames": 2**63}),
    ("devices", {"devices": -1}),
    ("present", {"present": float("inf")}),
    ("present", {"present": float("nan")}),
    ("present", {"present": MAX_PEOPLE * 2}),
    ("start", {"start": "0001-01-01T00:00:00Z"}),
    ("start", {"start": "1999-12-31T23:59:59Z"}),
    ("end", {"end": "2999-01-01T00:00:00Z"}),
    ("end", {"end": "9999-12-31T23:59:59Z"}),
    ("end", {"end": "2024-05-03T07:00:01Z"}),  # two days ahead of the collector's clock
    ("epoch", {"epoch": "e\x00"}),
    ("epoch", {"epoch": "e\u202e1"}),
    ("epoch", {"epoch": "\x1b[31me"}),
    ("epoch", {"epoch": "e" * 65}),
    ("event_id", {"event_id": "A" * 32}),
]


@pytest.mark.parametrize(("field", "change"), OUT_OF_RANGE, ids=[repr(c)[:40] for _, c in OUT_OF_RANGE])
def test_a_value_past_its_range_is_refused_at_the_door_naming_the_field(
    field: str, change: dict[str, Any]
) -> None:
    store = SqliteStore(":memory:")
    ing = ingestor(store)
    outcome = ing.handle(TOPIC + "count", edited(count(T0, 1.0).to_json(), **change))
    assert outcome.reason is Reason.INVALID, outcome
    assert outcome.detail.startswith(field), outcome.detail
    ing.flush()
    assert store.counts("paris-01", TIME_MIN, TIME_MAX) == []


@pytest.mark.parametrize("text", ["0.1\x00", "0.1\u2066", "0.1\x7f", "0.1\u0085"])
def test_status_text_holds_no_control_nul_or_bidi_character(text: str) -> None:
    ing = ingestor(SqliteStore(":memory:"))
    for change in ({"version": text}, {"source": text}, {"decode_errors": {text: 1}}):
        outcome = ing.handle(TOPIC + "status", edited(status(T0, sensor="s1").to_json(), **change))
        assert outcome.reason is Reason.INVALID, (change, outcome)


def test_the_future_bound_follows_the_config() -> None:
    late = edited(count(T0, 1.0).to_json(), end=(T0 + timedelta(hours=2)).isoformat())
    strict = Ingestor(SqliteStore(":memory:"), IngestConfig(max_future_s=3600), "footfall/v1", T0.timestamp)
    assert strict.handle(TOPIC + "count", late).reason is Reason.INVALID
    assert ingestor(SqliteStore(":memory:")).handle(TOPIC + "count", late).accepted
