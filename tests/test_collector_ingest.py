"""The Ingestor: every payload is accepted or rejected with its reason, never raised; batches and dead letters."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from collector.config import IngestConfig
from collector.ingest.ingestor import SAMPLE_BYTES, Ingestor, Reason
from collector.storage.base import StoreError
from collector.storage.sqlite import SqliteStore
from footfall.events import Event
from footfall.mac import mask_macs
from tests.test_report import count, status, visit

T0 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
TOPIC = "footfall/v1/paris-01/s1/visit"


class Clock:
    def __init__(self) -> None:
        self.now = 1_714_546_800.0

    def __call__(self) -> float:
        return self.now


def make(**settings: Any) -> tuple[Ingestor, SqliteStore, Clock]:
    store, clock = SqliteStore(":memory:"), Clock()
    config = IngestConfig.model_validate({"batch_size": 1000, "flush_interval_s": 5, **settings})
    return Ingestor(store, config, "footfall/v1", clock), store, clock


def good() -> bytes:
    return visit(T0, 600).to_json()


def edit(payload: bytes, **changes: Any) -> bytes:
    data = json.loads(payload)
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return json.dumps(data).encode()


def test_valid_events_of_each_kind_are_accepted_and_stored_on_flush() -> None:
    ingestor, store, _ = make()
    for kind, event in (
        ("visit", visit(T0, 60)),
        ("count", count(T0, 1.0)),
        ("status", status(T0, sensor="s1")),
    ):
        outcome = ingestor.handle(f"footfall/v1/paris-01/s1/{kind}", event.to_json())
        assert outcome.accepted and outcome.event_id == event.event_id
    assert store.visits("paris-01", T0, T0 + timedelta(hours=1)) == []  # batched, not yet stored
    assert ingestor.flush() == 3
    assert len(store.visits("paris-01", T0, T0 + timedelta(hours=1))) == 1
    assert len(store.counts("paris-01", T0, T0 + timedelta(hours=1))) == 1
    assert ingestor.stats.stored == 3


REJECTIONS: list[tuple[str, str, bytes, Reason]] = [
    ("another prefix", "other/v1/paris-01/s1/visit", good(), Reason.WRONG_TOPIC),
    ("a level missing", "footfall/v1/paris-01/visit", good(), Reason.WRONG_TOPIC),
    ("a level too many", "footfall/v1/paris-01/s1/visit/x", good(), Reason.WRONG_TOPIC),
    ("an unknown kind", "footfall/v1/paris-01/s1/visits", good(), Reason.WRONG_TOPIC),
    ("too big", TOPIC, edit(good(), epoch="e" * 70_000), Reason.OVERSIZED),
    ("not JSON", TOPIC, b"visit at 9", Reason.NOT_JSON),
    ("not UTF-8", TOPIC, b"\xff\xfe\x00{", Reason.NOT_JSON),
    ("nested too deep", TOPIC, b"[" * 60_000, Reason.NOT_JSON),
    ("a JSON array", TOPIC, b"[1, 2]", Reason.WRONG_SCHEMA),
    ("no schema field", TOPIC, edit(good(), schema=None), Reason.WRONG_SCHEMA),
    ("a count on the visit topic", TOPIC, count(T0, 1.0).to_json(), Reason.WRONG_SCHEMA),
    ("a future schema version", TOPIC, edit(good(), schema="footfall.visit/2"), Reason.WRONG_SCHEMA),
    ("an unknown field", TOPIC, edit(good(), mac="aa:bb:cc:dd:ee:ff"), Reason.INVALID),
    ("a number as a string (strict)", TOPIC, edit(good(), frames="3"), Reason.INVALID),
    ("a missing field", TOPIC, edit(good(), device=None), Reason.INVALID),
    ("a negative dwell", TOPIC, edit(good(), dwell_s=-1), Reason.INVALID),
    ("a time without zone", TOPIC, edit(good(), start="2024-05-01T07:00:00"), Reason.INVALID),
    ("an end before the start", TOPIC, edit(good(), end="2024-05-01T06:00:00Z"), Reason.INVALID),
    ("another store", "footfall/v1/lyon/s1/visit", good(), Reason.TOPIC_MISMATCH),
    ("another sensor", "footfall/v1/paris-01/s2/visit", good(), Reason.TOPIC_MISMATCH),
]


@pytest.mark.parametrize(("case", "topic", "payload", "reason"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_each_bad_payload_is_rejected_with_its_reason(
    case: str, topic: str, payload: bytes, reason: Reason
) -> None:
    ingestor, store, _ = make()
    outcome = ingestor.handle(topic, payload)
    assert (outcome.accepted, outcome.reason) == (False, reason)
    assert outcome.detail
    ingestor.flush()
    assert store.rejections() == {reason.value: 1}
    assert store.visits("paris-01", T0 - timedelta(days=1), T0 + timedelta(days=1)) == []


def test_rejection_details_never_echo_the_payload() -> None:
    ingestor, _, _ = make()
    outcome = ingestor.handle(TOPIC, edit(good(), device="aa:bb:cc:dd:ee:ff"))
    assert outcome.reason is Reason.INVALID
    assert "aa:bb" not in outcome.detail
    assert outcome.detail.startswith("device: String should match pattern")


def test_rejections_are_counted_by_reason_and_the_good_ones_still_stored() -> None:
    ingestor, store, _ = make()
    for payload in (b"{", good(), b"nope", count(T0, 1.0).to_json()):
        ingestor.handle(TOPIC, payload)
    ingestor.handle("footfall/v1/x", good())
    ingestor.flush()
    stats = ingestor.stats
    assert (stats.received, stats.accepted, stats.stored) == (5, 1, 1)
    assert stats.rejected == {"not_json": 2, "wrong_schema": 1, "wrong_topic": 1}
    assert store.rejections() == {"not_json": 2, "wrong_schema": 1, "wrong_topic": 1}


def test_the_same_event_twice_is_stored_once_and_counted_as_a_duplicate_not_a_rejection() -> None:
    ingestor, store, _ = make()
    ingestor.handle(TOPIC, good())
    ingestor.flush()
    ingestor.handle(TOPIC, good())
    ingestor.handle(TOPIC, good())
    ingestor.flush()
    stats = ingestor.stats
    assert (stats.stored, stats.duplicates, stats.rejected) == (1, 2, {})
    assert len(store.visits("paris-01", T0, T0 + timedelta(hours=1))) == 1


def test_a_full_batch_is_stored_at_once() -> None:
    ingestor, _, _ = make(batch_size=3)
    for n in range(2):
        ingestor.handle(TOPIC, visit(T0 + timedelta(minutes=n), 60).to_json())
    assert ingestor.stats.pending == 2
    ingestor.handle(TOPIC, visit(T0 + timedelta(minutes=2), 60).to_json())
    assert (ingestor.stats.pending, ingestor.stats.stored) == (0, 3)


def test_a_partial_batch_is_stored_once_the_flush_interval_has_passed() -> None:
    ingestor, _, clock = make(flush_interval_s=5)
    ingestor.handle(TOPIC, good())
    clock.now += 4.9
    assert ingestor.flush_if_due() == 0
    clock.now += 0.1
    assert ingestor.flush_if_due() == 1
    assert ingestor.stats.stored == 1


def test_the_dead_letter_sample_is_bounded_truncated_and_masks_mac_addresses() -> None:
    ingestor, store, clock = make(dead_letter_keep=2)
    leaky = b'{"mac": "AA:BB:CC:DD:EE:FF", "pad": "' + b"x" * 1000 + b'"}'
    for n in range(4):
        clock.now += 1
        ingestor.handle(f"footfall/v1/paris-01/s1/visit{n}", b"not json")
    ingestor.handle("footfall/v1/paris-01/aa-bb-cc-dd-ee-01/visit", leaky)
    ingestor.flush()
    letters = store.dead_letters()
    assert [d.reason for d in letters] == ["wrong_topic", "wrong_schema"]
    assert letters[0].topic == "footfall/v1/paris-01/s1/visit3"
    assert letters[0].at == datetime.fromtimestamp(clock.now, UTC)
    last = letters[1]
    assert last.topic == "footfall/v1/paris-01/xx-xx-xx-xx-xx-xx/visit"
    assert (last.size, len(last.payload)) == (len(leaky), SAMPLE_BYTES)
    assert last.payload.startswith(b'{"mac": "xx:xx:xx:xx:xx:xx", "pad": "xxx')
    assert store.rejections() == {"wrong_topic": 4, "wrong_schema": 1}


def test_a_mac_quoted_in_a_detail_or_cut_by_the_sample_limit_is_masked_too() -> None:
    ingestor, store, _ = make()
    ingestor.handle(TOPIC, edit(good(), schema="aa:bb:cc:dd:ee:ff"))
    straddling = b"x" * (SAMPLE_BYTES - 8) + b"aa:bb:cc:dd:ee:ff"
    ingestor.handle(TOPIC, straddling)
    ingestor.flush()
    quoted, cut = store.dead_letters()
    assert quoted.detail == "schema 'xx:xx:xx:xx:xx:xx' on a visit topic, expected 'footfall.visit/1'"
    assert cut.payload.endswith(b"xx:xx:xx")


def test_mask_macs_masks_every_mac_spelling_and_leaves_times_alone() -> None:
    assert mask_macs(b"a 00:1a:2B:3c:4d:5e b") == b"a xx:xx:xx:xx:xx:xx b"
    assert mask_macs(b"00-1a-2b-3c-4d-5e") == b"xx-xx-xx-xx-xx-xx"
    assert mask_macs(b"00:1a-2b:3c:4d:5e 001A2b3c4d5e 001a.2b3c.4d5e") == (
        b"xx:xx-xx:xx:xx:xx xxxxxxxxxxxx xxxx.xxxx.xxxx"
    )
    # An id longer than 12 hex digits is not a MAC (footfall/mac.py): it stays, to diagnose the sensor.
    assert mask_macs(b'"event_id":"0123456789abcdef0123"') == b'"event_id":"0123456789abcdef0123"'
    assert mask_macs(b'"device":"0123456789ab"') == b'"device":"xxxxxxxxxxxx"'
    assert mask_macs(b"2024-05-01T07:00:00Z 1a:2b") == b"2024-05-01T07:00:00Z 1a:2b"


def test_each_rejection_is_logged_at_warning_with_its_reason_and_rate_limited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ingestor, _, clock = make(rejection_log_interval_s=10)
    with caplog.at_level(logging.WARNING, logger="collector.ingest.ingestor"):
        for _ in range(5):
            ingestor.handle(TOPIC, b"nope")
        ingestor.handle("bad/topic", good())
        clock.now += 10
        ingestor.handle(TOPIC, b"nope")
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 3
    assert "not_json" in messages[0] and TOPIC in messages[0]
    assert "wrong_topic" in messages[1]
    assert messages[2].endswith("(4 more not_json since the last warning)")


class FailingStore(SqliteStore):
    """A real store whose writes fail while `broken` is set (a full disk, a locked file)."""

    broken = True

    def add(self, events: Sequence[Event]) -> int:
        if self.broken:
            raise StoreError("disk I/O error")
        return super().add(events)


def test_a_failing_store_neither_raises_nor_loses_the_batch(caplog: pytest.LogCaptureFixture) -> None:
    store = FailingStore(":memory:")
    ingestor = Ingestor(store, IngestConfig(batch_size=2), "footfall/v1")
    ingestor.handle(TOPIC, visit(T0, 60).to_json())
    outcome = ingestor.handle(TOPIC, visit(T0 + timedelta(minutes=1), 60).to_json())
    assert outcome.accepted
    assert (ingestor.stats.store_errors, ingestor.stats.pending) == (1, 2)
    assert "cannot store 2 events, will retry: disk I/O error" in caplog.text
    store.broken = False
    assert ingestor.flush() == 2
    assert (ingestor.stats.pending, ingestor.stats.stored, ingestor.stats.dropped) == (0, 2, 0)


class StalledStore(SqliteStore):
    """A real store whose commits wait until `release` is set (a database stuck on fsync or a lock)."""

    def __init__(self, path: str | Path, patience_s: float = 10.0) -> None:
        super().__init__(path)
        self.patience_s = patience_s
        self.committing = threading.Event()
        self.release = threading.Event()

    def add(self, events: Sequence[Event]) -> int:
        self.committing.set()
        assert self.release.wait(self.patience_s), "the test never released the commit"
        return super().add(events)


def test_with_a_wake_callback_a_full_batch_wakes_the_flusher_and_handle_stores_nothing() -> None:
    woken: list[int] = []
    clock = Clock()
    config = IngestConfig(batch_size=2, flush_interval_s=5)
    ingestor = Ingestor(SqliteStore(":memory:"), config, "footfall/v1", clock, wake=lambda: woken.append(1))
    clock.now += 10
    ingestor.handle(TOPIC, visit(T0, 60).to_json())
    assert (woken, ingestor.full, ingestor.stats.stored) == ([], False, 0)  # due, but left to the flusher
    ingestor.handle(TOPIC, visit(T0 + timedelta(minutes=1), 60).to_json())
    assert (woken, ingestor.full, ingestor.stats.stored) == ([1], True, 0)
    assert ingestor.flush() == 2


def test_intake_goes_on_during_a_slow_commit_and_acknowledgements_leave_in_arrival_order() -> None:
    store = StalledStore(":memory:")
    ingestor = Ingestor(store, IngestConfig(batch_size=1000), "footfall/v1", wake=lambda: None)
    acked: list[int] = []
    for n in range(2):
        ingestor.handle(TOPIC, visit(T0 + timedelta(minutes=n), 60).to_json(), partial(acked.append, n))
    flusher = threading.Thread(target=ingestor.flush)
    flusher.start()
    assert store.committing.wait(10)
    # The commit is stuck: intake must not wait for it (it used to hold the lock handle needs).
    intake = threading.Thread(
        target=lambda: (
            [
                ingestor.handle(
                    TOPIC, visit(T0 + timedelta(minutes=n), 60).to_json(), partial(acked.append, n)
                )
                for n in range(2, 4)
            ]
            + [ingestor.handle(TOPIC, b"not json", partial(acked.append, 4))]
        )
    )
    intake.start()
    intake.join(5)
    assert not intake.is_alive(), "handle waited for the commit"
    assert (ingestor.stats.pending, ingestor.stats.received, acked) == (4, 5, [])
    store.release.set()
    flusher.join(10)
    assert acked == [0, 1]  # what arrived during the commit waits for the next flush
    assert ingestor.flush() == 2
    assert acked == [0, 1, 2, 3, 4]
    stats = ingestor.stats
    assert (stats.stored, stats.pending, stats.duplicates, stats.rejected) == (4, 0, 0, {"not_json": 1})


def test_a_batch_left_to_retry_goes_back_before_what_arrived_during_its_commit() -> None:
    store = FailingStore(":memory:")
    ingestor = Ingestor(store, IngestConfig(batch_size=1000), "footfall/v1", wake=lambda: None)
    acked: list[int] = []
    ingestor.handle(TOPIC, visit(T0, 60).to_json(), partial(acked.append, 0))
    add = store.add

    def fail_after_a_late_arrival(events: Sequence[Event]) -> int:
        ingestor.handle(TOPIC, visit(T0 + timedelta(minutes=1), 60).to_json(), partial(acked.append, 1))
        return add(events)

    store.add = fail_after_a_late_arrival  # type: ignore[method-assign]
    assert ingestor.flush() == 0
    assert (acked, ingestor.stats.pending, ingestor.stats.store_errors) == ([], 2, 1)
    store.add, store.broken = add, False  # type: ignore[method-assign]
    assert ingestor.flush() == 2
    assert acked == [0, 1]
    assert len(store.visits("paris-01", T0, T0 + timedelta(hours=1))) == 2


def test_a_json_line_gets_the_topic_its_own_store_sensor_and_kind_imply() -> None:
    ingestor, store, _ = make()
    assert ingestor.handle_line(count(T0, 2.0, sensor="s7").to_json()).accepted
    assert ingestor.handle_line(b"{oops", source="events.jsonl:2").reason is Reason.NOT_JSON
    assert ingestor.handle_line(edit(good(), schema="footfall.other/1")).reason is Reason.WRONG_SCHEMA
    assert ingestor.handle_line(edit(good(), schema=["x"])).reason is Reason.WRONG_SCHEMA
    assert ingestor.handle_line(edit(good(), store="a/b")).reason is Reason.INVALID
    ingestor.flush()
    assert [c.sensor for c in store.counts("paris-01", T0, T0 + timedelta(hours=1))] == ["s7"]
    assert store.dead_letters()[0].topic == "events.jsonl:2"
