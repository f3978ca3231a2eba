"""Same event_id, other content: the stored event stays, the other is a counted, logged `conflict` dead letter."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from collector.config import IngestConfig
from collector.ingest.ingestor import Ingestor
from collector.ingest.metrics import CollectorMetrics
from collector.storage.base import Store
from collector.storage.privacy import RetentionCutoffs
from footfall.events import Event, topic_for
from tests.pgserver import each_store, postgres_dsn, postgres_server  # noqa: F401
from tests.test_report import count, visit

T0 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
DAY = (T0 - timedelta(days=1), T0 + timedelta(days=1))


@pytest.fixture
def store(each_store: Store) -> Store:  # noqa: F811
    return each_store


def ingest(ingestor: Ingestor, *events: Event) -> None:
    for event in events:
        ingestor.handle(topic_for("footfall/v1", event), event.to_json())
    ingestor.flush()


def make(store: Store) -> Ingestor:
    return Ingestor(store, IngestConfig(rejection_log_interval_s=0), "footfall/v1", T0.timestamp)


def test_an_event_id_reused_with_other_content_is_a_conflict_and_the_stored_one_stays(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    ingestor = make(store)
    original = count(T0, 3.0)
    forged = original.model_copy(update={"present": 42.0, "visitors": 7})
    ingest(ingestor, original)
    with caplog.at_level(logging.WARNING):
        ingest(ingestor, forged)
    assert [c.present for c in store.counts("paris-01", *DAY)] == [3.0]
    stats = ingestor.stats
    assert (stats.stored, stats.duplicates, stats.rejected) == (1, 0, {"conflict": 1})
    (letter,) = store.dead_letters()
    assert letter.reason == "conflict"
    assert "(present, visitors differ)" in letter.detail  # (ids are masked like MACs in dead letters)
    assert b'"present":42.0' in letter.payload
    assert store.rejections() == {"conflict": 1}
    assert any("conflict" in r.getMessage() for r in caplog.records)
    rejected = {
        s.labels["reason"]: s.value
        for family in CollectorMetrics(lambda: ingestor.stats).collect()
        if family.name == "footfall_collector_rejected"
        for s in family.samples
    }
    assert rejected["conflict"] == 1.0


def test_an_exact_resend_is_a_duplicate_not_a_conflict_even_in_the_same_batch(store: Store) -> None:
    ingestor = make(store)
    first = [count(T0 + timedelta(minutes=5 * i), 1.0) for i in range(3)]
    ingest(ingestor, *first)
    ingest(ingestor, *first, count(T0 + timedelta(hours=2), 1.0))
    stats = ingestor.stats
    assert (stats.stored, stats.duplicates, stats.rejected) == (4, 3, {})


def test_a_visit_resent_after_retention_dropped_its_pseudonym_is_still_a_duplicate(store: Store) -> None:
    ingestor = make(store)
    event = visit(T0, 600)
    ingest(ingestor, event)
    later = T0 + timedelta(days=2)
    store.apply_retention(
        RetentionCutoffs(pseudonyms=later, consents=later, visits=T0 - timedelta(days=1)),
        dry_run=False,
        label=lambda n: "ab" * n,
    )
    assert store.visits("paris-01", *DAY)[0].device != event.device
    ingest(ingestor, event)
    assert (ingestor.stats.duplicates, ingestor.stats.rejected) == (1, {})
