"""One event the store refuses never stalls ingest: SQLite and PostgreSQL, the Ingestor, `ingest` and live MQTT."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli.main import main
from collector.config import CollectorConfig, IngestConfig
from collector.ingest.ingestor import Ingestor, Reason
from collector.ingest.service import Collector
from collector.storage.base import Store, StoreRefused
from collector.storage.sqlite import SqliteStore
from footfall.events import CountEvent, topic_for
from tests.conftest import Broker
from tests.pgserver import each_store, postgres_dsn, postgres_server  # noqa: F401
from tests.poison import POISON, counts, poison
from tests.test_collector_service import publisher, wait_for  # noqa: F401
from tests.test_report import count

T0 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
DAY = (T0 - timedelta(days=1), T0 + timedelta(days=2))


@pytest.fixture
def store(each_store: Store) -> Store:  # noqa: F811
    return each_store


def unchecked(**changes: object) -> CountEvent:
    """A count event with values the schema would refuse (built without validation, as a buggy path might)."""
    return CountEvent.model_construct(**{**dict(count(T0, 1.0)), **changes})


def test_a_value_past_a_column_is_a_refusal_on_each_backend_not_a_crash(store: Store) -> None:
    poisons = [unchecked(frames=2**63), unchecked(frames=2**64, event_id="c" * 32)]
    if not isinstance(store, SqliteStore):  # PostgreSQL: INTEGER is 32-bit, TEXT holds no NUL
        poisons += [unchecked(frames=2**31, event_id="d" * 32), unchecked(epoch="e\x00", event_id="e" * 32)]
    for event in poisons:
        with pytest.raises(StoreRefused):
            store.add([event])
    assert store.add([count(T0, 1.0)]) == 1  # the connection is still good


def test_a_refused_event_is_dead_lettered_and_the_rest_of_its_batch_stored(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    poison(store)
    events = counts(T0, 50, poisoned=(17, 40))
    ingestor = Ingestor(store, IngestConfig(batch_size=1000), "footfall/v1", T0.timestamp)
    acked: list[int] = []
    with caplog.at_level(logging.WARNING):
        for i, event in enumerate(events):
            ingestor.handle(topic_for("footfall/v1", event), event.to_json(), lambda i=i: acked.append(i))
        assert ingestor.flush() == 48
    assert acked == list(range(50)), "every payload is acknowledged once its outcome is stored"
    stats = ingestor.stats
    assert (stats.stored, stats.pending, stats.rejected) == (48, 0, {"store_refused": 2})
    assert len(store.counts("paris-01", *DAY)) == 48
    letters = store.dead_letters()
    assert [d.reason for d in letters] == ["store_refused", "store_refused"]
    assert "poisoned frames" in letters[0].detail and f'"frames":{POISON}'.encode() in letters[0].payload
    assert store.rejections() == {"store_refused": 2}
    assert sum("store_refused" in r.getMessage() for r in caplog.records) == 1, "logged once per interval"
    assert ingestor.flush() == 0 and store.rejections() == {"store_refused": 2}, "nothing is retried"


def test_ingest_of_a_file_with_a_refused_line_stores_the_rest_and_exits_non_zero(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    poison(SqliteStore(db)).close()
    events = counts(T0, 30, poisoned=(3,))
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_bytes(b"".join(e.to_json() + b"\n" for e in events))
    result = CliRunner().invoke(main, ["--log-level", "error", "ingest", str(jsonl), "--db", str(db)])
    assert result.exit_code == 1, result.output
    assert "store_refused 1" in result.output and "Traceback" not in result.output
    store = SqliteStore(db)
    assert len(store.counts("paris-01", *DAY)) == 29
    store.close()


@pytest.mark.mqtt
def test_the_live_collector_stores_past_a_refused_event_and_does_not_get_it_again(
    store: Store,
    broker: Broker,
    publisher: Callable[[str, bytes], None],  # noqa: F811
) -> None:
    poison(store)
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"port": broker.port, "client_id": "poison-test", "session_expiry_s": 600},
            "ingest": {"flush_interval_s": 0.1, "batch_size": 10},
        }
    )
    first, then = counts(T0, 20, poisoned=(0, 9)), counts(T0 + timedelta(days=1), 5)
    collector = Collector(config, store=store)
    collector.start()
    time.sleep(0.3)  # start() returns on CONNACK: let the first session's SUBACK land before publishing
    try:
        for event in first + then:
            publisher(topic_for("footfall/v1", event), event.to_json())
        wait_for(lambda: collector.stats.stored == 23, "the 23 good events stored")
        assert collector.stats.rejected == {Reason.STORE_REFUSED.value: 2}
    finally:
        collector.stop()
    again = Collector(config, store=store)  # same session: the refused events were acknowledged
    again.start()
    try:
        late = count(T0 + timedelta(days=1, hours=5), 2.0)
        publisher(topic_for("footfall/v1", late), late.to_json())
        wait_for(lambda: again.stats.stored == 1, "a new event stored after the restart")
        assert again.stats.rejected == {}, "the broker did not send the refused events again"
    finally:
        again.stop()
    assert len(store.counts("paris-01", *DAY)) == 24
