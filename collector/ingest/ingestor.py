"""From (topic, payload) to stored events: every payload is either accepted or rejected with a reason.

The checks run in a fixed order, cheapest first, and the first that fails names the reason:
topic shape and prefix → size → JSON → schema name for the topic's kind → the model (strict, extra
keys forbidden, aware timestamps, end not before start) → the payload's store/sensor equal the topic's.
A rejection is counted, sampled into the store's dead-letter table and logged (rate-limited per reason);
`handle` never raises, so one bad sensor cannot stop the collector. Accepted events are batched and
stored by size or by time; a re-sent event (same event_id) is counted as a duplicate, not stored again.

Storing never holds up intake: `flush` takes the batch out under the intake lock and commits it
outside that lock (a second lock keeps flushes one at a time, so acknowledgements leave in arrival
order), so `handle` waits for a list append, never for the database. Given `wake`, `handle` stores
nothing itself: a full batch calls `wake` for the thread that flushes (collector/ingest/service.py), so
the MQTT network thread never commits; without it (the CLI's import, tests) `handle` flushes a full or
due batch itself, as before.

Each payload may come with an `ack` callback (the MQTT acknowledgement). It is called, in arrival
order, only once the payload's outcome is durable: the batch holding the event is committed (a
rejection counts once the flush that records it has run). A collector killed before that never
acknowledged, so the broker delivers the payload again; an event the store keeps refusing is never
acknowledged either, which also stops the broker sending more than its window.

Payloads are untrusted: before a sample or a topic reaches a log or the database, anything shaped like
a MAC address is masked (footfall/mac.py: the one MAC grammar), so a buggy sensor cannot leak one through the dead letters.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from pydantic import BaseModel, ValidationError

from collector.config import IngestConfig
from collector.ingest.acks import Settled, claimed
from collector.ingest.outcomes import IngestStats, Outcome, Reason
from collector.ingest.poison import store_isolating
from collector.ingest.ratelog import RateLimitedLog
from collector.storage.base import DeadLetter, StoreError
from collector.storage.conflicts import Conflict
from footfall.events import EVENT_KINDS, KIND_OF_SCHEMA, Event, VisitOpenEvent, topic_for
from footfall.mac import mask_macs

log = logging.getLogger(__name__)
__all__ = ["IngestStats", "Ingestor", "Outcome", "Reason", "mask_macs"]

SAMPLE_BYTES = 512


class EventStore(Protocol):
    """What the Ingestor needs of the store (collector/storage/base.py `Store` is one)."""

    def add(self, events: Sequence[Event]) -> int: ...

    def dead_letter(self, letters: Sequence[DeadLetter], rejected: Mapping[str, int], keep: int) -> None: ...

    def conflicts(self, events: Sequence[Event]) -> list[Conflict]: ...


class _Rejected(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _masked(data: bytes, limit: int) -> bytes:
    # Mask before cutting (masking keeps lengths), so a MAC straddling the cut cannot survive in part.
    return mask_macs(data[: limit + 16])[:limit]


def _safe_text(data: bytes, limit: int) -> str:
    # NUL spelled out: PostgreSQL TEXT cannot hold it, and a dead letter must always be recordable.
    return _masked(data, limit).decode("utf-8", "replace").replace("\x00", "\\x00")


def _json_detail(exc: Exception) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def _validation_detail(exc: ValidationError) -> str:
    # Locations and messages only: pydantic's default text repeats the input, which may be anything.
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()[:3]]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


class Ingestor:
    """Validates payloads and stores accepted events in batches; thread-safe, never raises from `handle`."""

    def __init__(
        self,
        store: EventStore,
        config: IngestConfig,
        prefix: str,
        clock: Callable[[], float] = time.time,
        *,
        on_stored: Callable[[Sequence[Event]], object] | None = None,
        on_settled: Callable[[Sequence[Settled]], object] | None = None,
        wake: Callable[[], object] | None = None,
    ) -> None:
        """`on_settled` gets, after each flush, the (store, sensor, event_id) made durable (collector/ingest/acks.py).

        `wake`: called (instead of flushing) when a batch fills; the caller's thread then flushes.
        """
        self._store = store
        self._on_stored = on_stored
        self._on_settled = on_settled
        self._settled: list[Settled] = []
        self._config = config
        self._prefix = prefix.split("/")
        self._clock = clock
        self._wake = wake
        self._lock = threading.RLock()  # intake state: held for appends and swaps, never for a commit
        self._flush_lock = threading.Lock()  # one flush at a time: acknowledgements in arrival order
        self._batch: list[Event] = []
        self._storing = 0  # events of the batch being committed (out of _batch, still pending)
        self._acks: list[Callable[[], object]] = []  # of the payloads handled since the last good flush
        self._letters: list[DeadLetter] = []
        self._new_rejections: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._received = self._accepted = self._stored = self._duplicates = 0
        self._store_errors = self._dropped = 0
        self._last_flush = clock()
        self._warn = RateLimitedLog(log, config.rejection_log_interval_s, clock)
        # A store that keeps failing must not grow memory without bound.
        self._max_pending = max(100 * config.batch_size, 10_000)

    # -- intake -------------------------------------------------------------------------------------------
    def handle(self, topic: str, payload: bytes, ack: Callable[[], object] | None = None) -> Outcome:
        """Check one message; queue it if valid. Flushes when the batch is full or the interval is up.

        `ack` is called once the outcome is stored (see the module's docstring).
        """
        try:
            event = self._check(topic, payload)
        except _Rejected as rejected:
            self._reject(topic, payload, rejected.reason, rejected.detail, ack)
            return Outcome(rejected.reason, rejected.detail)
        except Exception as exc:  # a bug here must not lose the collector: count it as invalid
            log.exception("unexpected error checking a payload on %s", _safe_text(topic.encode(), 200))
            self._reject(topic, payload, Reason.INVALID, f"internal error: {type(exc).__name__}", ack)
            return Outcome(Reason.INVALID, f"internal error: {type(exc).__name__}")
        with self._lock:
            self._received += 1
            self._accepted += 1
            self._batch.append(event)
            if ack is not None:
                self._acks.append(ack)
            if self._on_settled is not None:
                self._settled.append((event.store, event.sensor, event.event_id))
            full = len(self._batch) >= self._config.batch_size
        if self._wake is not None:
            if full:
                self._wake()
        elif full:
            self.flush()
        else:
            self.flush_if_due()
        return Outcome(event_id=event.event_id)

    def handle_line(self, line: bytes, source: str = "<jsonl>") -> Outcome:
        """A payload without a topic (a JSON-lines file): derive the topic from its store/sensor/schema."""
        try:
            data = json.loads(line)
        except (ValueError, RecursionError) as exc:
            return self._rejected_line(source, line, Reason.NOT_JSON, _json_detail(exc))
        if not isinstance(data, dict):
            return self._rejected_line(source, line, Reason.WRONG_SCHEMA, "not a JSON object")
        schema = data.get("schema")
        kind = KIND_OF_SCHEMA.get(schema) if isinstance(schema, str) else None
        if kind is None:
            return self._rejected_line(source, line, Reason.WRONG_SCHEMA, f"unknown schema {schema!r}")
        store, sensor = data.get("store"), data.get("sensor")
        if not (isinstance(store, str) and isinstance(sensor, str)) or "/" in store + sensor:
            return self._rejected_line(source, line, Reason.INVALID, "store and sensor must be names")
        return self.handle("/".join([*self._prefix, store, sensor, kind]), line)

    def _rejected_line(self, source: str, line: bytes, reason: Reason, detail: str) -> Outcome:
        self._reject(source, line, reason, detail)
        return Outcome(reason, detail)

    def _check(self, topic: str, payload: bytes) -> Event:
        levels = topic.split("/")
        n = len(self._prefix)
        if levels[:n] != self._prefix or len(levels) != n + 3:
            raise _Rejected(Reason.WRONG_TOPIC, f"expected {'/'.join(self._prefix)}/<store>/<sensor>/<kind>")
        store, sensor, kind = levels[n:]
        model = EVENT_KINDS.get(kind)
        if model is None:
            raise _Rejected(
                Reason.WRONG_TOPIC, f"unknown kind {kind!r}, expected one of {sorted(EVENT_KINDS)}"
            )
        if len(payload) > self._config.max_payload_bytes:
            raise _Rejected(
                Reason.OVERSIZED, f"{len(payload)} bytes, at most {self._config.max_payload_bytes} allowed"
            )
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError) as exc:  # ValueError includes bad UTF-8
            raise _Rejected(Reason.NOT_JSON, _json_detail(exc)) from None
        expected = model.model_fields["schema_"].default
        schema = data.get("schema") if isinstance(data, dict) else None
        if schema != expected:
            found = "no schema field" if schema is None else f"schema {schema!r}"
            raise _Rejected(Reason.WRONG_SCHEMA, f"{found} on a {kind} topic, expected {expected!r}")
        try:
            event = model.model_validate_json(payload, strict=True)
        except ValidationError as exc:
            raise _Rejected(Reason.INVALID, _validation_detail(exc)) from None
        _check_times(event, datetime.fromtimestamp(self._clock() + self._config.max_future_s, UTC))
        if (event.store, event.sensor) != (store, sensor):
            raise _Rejected(
                Reason.TOPIC_MISMATCH,
                f"payload is from {event.store}/{event.sensor}, topic says {store}/{sensor}",
            )
        return cast("Event", event)  # one of the three Event models, by EVENT_KINDS

    def _reject(
        self,
        topic: str,
        payload: bytes,
        reason: Reason,
        detail: str,
        ack: Callable[[], object] | None = None,
        *,
        claim: bool = True,
    ) -> None:
        # Topic and detail may quote the payload (a topic level, a schema value): masked like it.
        safe_topic = _safe_text(topic.encode("utf-8", "replace"), 256)
        safe_detail = _safe_text(detail.encode("utf-8", "replace"), 512)
        letter = DeadLetter(
            at=datetime.fromtimestamp(self._clock(), UTC),
            reason=reason.value,
            topic=safe_topic,
            detail=safe_detail,
            size=len(payload),
            payload=_masked(payload, SAMPLE_BYTES),
        )
        with self._lock:
            self._received += 1
            self._rejected[reason.value] += 1
            self._new_rejections[reason.value] += 1
            self._letters.append(letter)
            del self._letters[: -self._config.dead_letter_keep or len(self._letters)]
            if ack is not None:
                self._acks.append(ack)
            if claim and self._on_settled is not None:
                settled = claimed(self._prefix, topic, payload)
                if settled is not None:
                    self._settled.append(settled)
        self._warn.warn(
            reason.value,
            "rejected payload on %s (%d bytes): %s: %s",
            safe_topic,
            len(payload),
            reason.value,
            safe_detail,
        )

    # -- output -------------------------------------------------------------------------------------------
    @property
    def full(self) -> bool:
        """The batch holds `batch_size` events or more: flush now."""
        with self._lock:
            return len(self._batch) >= self._config.batch_size

    def due_in(self) -> float:
        """Seconds until the flush interval is up (<= 0: due now)."""
        return self._last_flush + self._config.flush_interval_s - self._clock()

    def flush_if_due(self) -> int:
        if self.due_in() <= 0:
            return self.flush()
        return 0

    def flush(self) -> int:
        """Store the batch and the rejection sample now; returns how many events were new.

        The batch, its acknowledgements and store acknowledgements are swapped out under the intake
        lock and committed outside it; what arrives meanwhile waits for the next flush. A batch left
        to retry goes back in front of what arrived, with its acknowledgements, so the order holds.
        """
        with self._flush_lock:
            with self._lock:
                self._last_flush = self._clock()
                batch, self._batch = self._batch, []
                acks, self._acks = self._acks, []
                settled, self._settled = self._settled, []
                self._storing = len(batch)
            inserted = 0
            try:
                if batch:
                    result = store_isolating(self._store.add, batch)
                    inserted = result.inserted
                    with self._lock:
                        self._stored += inserted
                    self._hand_on(self._settle(batch[: result.done], result.refused, inserted))
                    if result.error is not None:
                        with self._lock:
                            self._batch[:0] = batch[result.done :]
                            self._acks[:0] = acks
                            self._settled[:0] = settled
                            self._storing = 0
                            self._store_failed(result.error, len(self._batch))
                        return inserted
            finally:
                with self._lock:
                    self._storing = 0
            self._record_letters()
            # Everything handled before this flush began is stored: acknowledge it (in arrival order:
            # flushes run one at a time).
            for ack in acks:
                try:
                    ack()
                except Exception:  # one failed acknowledgement must not withhold the others
                    log.exception("acknowledging a stored message failed")
            if settled and self._on_settled is not None:
                try:
                    self._on_settled(settled)
                except Exception:  # a lost store acknowledgement costs a re-send, never an event
                    log.exception("sending store acknowledgements failed")
            return inserted

    def _settle(
        self, done: Sequence[Event], refused: Sequence[tuple[Event, str]], inserted: int
    ) -> list[Event]:
        """Count the outcome of stored events: duplicates, and conflicts and refusals as dead letters.

        Returns the events that are in the store (new or re-sent), for `on_stored`."""
        for event, reason in refused:
            self._reject_event(event, Reason.STORE_REFUSED, reason)
        gone = {id(e) for e, _ in refused}
        kept = [e for e in done if id(e) not in gone]
        # visit_open events feed the trigger only and are never stored: not duplicates.
        repeats = sum(1 for e in kept if not isinstance(e, VisitOpenEvent)) - inserted
        if repeats > 0:
            try:
                conflicts = self._store.conflicts(kept)
            except StoreError as exc:  # the events are stored: only the comparison is lost
                log.error("cannot compare %d re-sent events with the stored ones: %s", repeats, exc)
                conflicts = []
            for conflict in conflicts:
                self._reject_event(
                    conflict.event,
                    Reason.CONFLICT,
                    f"event_id {conflict.event.event_id} is stored with other content"
                    f" ({', '.join(conflict.fields)} differ); the stored event is kept",
                )
            repeats -= len(conflicts)
            clashing = {id(c.event) for c in conflicts}
            kept = [e for e in kept if id(e) not in clashing]
        with self._lock:
            self._duplicates += max(repeats, 0)
        return kept

    def _reject_event(self, event: Event, reason: Reason, detail: str) -> None:
        """An accepted event that the store refused or that conflicts: a dead letter, counted once."""
        with self._lock:
            self._accepted -= 1
            self._received -= 1  # _reject counts it again
        topic = topic_for("/".join(self._prefix), event)
        self._reject(topic, event.to_json(), reason, detail, claim=False)  # settled when accepted

    def _record_letters(self) -> None:
        with self._lock:
            if not self._new_rejections:
                return
            letters, self._letters = self._letters, []
            counts, self._new_rejections = self._new_rejections, Counter()
        try:
            self._store.dead_letter(letters, counts, self._config.dead_letter_keep)
        except StoreError as exc:
            log.error("cannot record rejected payloads: %s", exc)
            with self._lock:  # kept for the next flush, before what was rejected meanwhile
                self._letters[:0] = letters
                del self._letters[: -self._config.dead_letter_keep or len(self._letters)]
                self._new_rejections.update(counts)

    def _hand_on(self, batch: Sequence[Event]) -> None:
        # Before the acknowledgements: a stored batch reaches `on_stored` (the real-time triggers) even
        # if the collector dies right after. A failing callback is logged and never fails the batch.
        if self._on_stored is None:
            return
        try:
            self._on_stored(batch)
        except Exception:
            log.exception("the stored-batch callback failed for a batch of %d events", len(batch))

    def _store_failed(self, exc: StoreError, pending: int) -> None:
        self._store_errors += 1
        if pending > self._max_pending:
            lost = pending - self._max_pending
            del self._batch[:lost]
            # (Over MQTT this cannot happen: unacknowledged events fill the broker's window first.)
            self._dropped += lost
            log.error("store failing (%s); dropped the %d oldest of %d pending events", exc, lost, pending)
        else:
            log.error("cannot store %d events, will retry: %s", pending, exc)

    @property
    def stats(self) -> IngestStats:
        with self._lock:
            return IngestStats(
                received=self._received,
                accepted=self._accepted,
                stored=self._stored,
                duplicates=self._duplicates,
                rejected=dict(self._rejected),
                pending=len(self._batch) + self._storing,
                store_errors=self._store_errors,
                dropped=self._dropped,
            )


def _check_times(event: BaseModel, latest: datetime) -> None:
    """Aware, not beyond `latest` (the collector's clock plus `ingest.max_future_s`), end not before start.

    The model already bounds every timestamp to [TIME_MIN, TIME_MAX); this is the configurable side.
    """
    values: dict[str, Any] = {name: getattr(event, name) for name in type(event).model_fields}
    for name, value in values.items():
        if isinstance(value, datetime) and value.utcoffset() is None:
            raise _Rejected(Reason.INVALID, f"{name}: timestamp has no time zone (UTC expected, e.g. ...Z)")
        if isinstance(value, datetime) and value > latest:
            raise _Rejected(
                Reason.INVALID,
                f"{name}: {value.isoformat()} is after {latest.isoformat()} (ingest.max_future_s)",
            )
    start, end = values.get("start"), values.get("end")
    if isinstance(start, datetime) and isinstance(end, datetime) and end < start:
        raise _Rejected(Reason.INVALID, f"end {end.isoformat()} is before start {start.isoformat()}")
