"""Fuzz a running collector: generated payloads in, exactly the valid events stored, the service alive.

    .venv/bin/python -m bench.fuzz_collector [--payloads 100000] [--backend sqlite|postgresql|both] [--mqtt 0.05]

Payloads come from two sources, about half each: values generated from the README's JSON Schema
(`footfall.events.json_schemas`, walked property by property, bounds and patterns included), and
mutations of real events (the demo capture replayed through the real sensor pipeline): a field pushed
past its range, made infinite or NaN, of the wrong type, dropped, added, a timestamp outside the wire's
window or naive, text with a control, NUL or bidi character, a truncated or non-UTF-8 payload, a wrong
schema, topic or sensor; and deliberate exact re-sends and same-id conflicts.

What is valid is decided by an oracle independent of the collector's models: the `jsonschema` library
checking the JSON Schema (with ECMA-262 anchoring: a pattern must match the whole string), plus the
rules the schema cannot say (timestamps parsed and inside the window, not past the collector's clock by
more than `ingest.max_future_s`, end not before start, the topic's store/sensor, no reserved sensor name,
finite numbers). A running collector (Collector, real Mosquitto, real SQLite or PostgreSQL) takes most
payloads through its MQTT message handler directly and a share through the broker (QoS 1, one client).

Checked: every valid event stored exactly once with the content of its first copy, nothing invalid
stored, conflicts counted as such, every rejection counted by reason (in memory and in the database),
and an event sent after the fuzz is still stored. tests/test_fuzz_collector.py runs 10,000 per backend.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.broker import mosquitto
from bench.fuzz_payloads import KIND, MAX_FUTURE_S, NOW, PREFIX, Case, Generator, Oracle
from collector.config import CollectorConfig
from collector.ingest.service import Collector
from collector.storage.base import Store
from footfall.events import COLLECTOR_LEVELS, SCHEMA_MODELS, SCHEMA_VISIT_OPEN
from footfall.mqtt import Message


# -- the run ---------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Figures:
    backend: str
    payloads: int
    valid: int
    stored: int
    conflicts: int
    via_mqtt: int
    seconds: float
    rejected: dict[str, int] = field(default_factory=dict)
    by_case: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.rejected.items()))
        return (
            f"{self.backend:10s} {self.payloads} payloads ({self.via_mqtt} via MQTT) in {self.seconds:.1f} s:"
            f" {self.valid} valid, {self.stored} stored once, {self.conflicts} conflicts;"
            f" rejected {sum(self.rejected.values())} ({reasons})"
        )


DEMO = Path(__file__).resolve().parents[1] / "sensor" / "demo" / "demo-store.pcap"


def real_events(work: Path) -> list[dict[str, Any]]:
    """The demo capture's events, made by the real sensor pipeline (`footfall-sensor replay --to jsonl`)."""
    from sensor.cli.main import main as sensor

    out = work / "real.jsonl"
    args = ["--log-level", "error", "replay", str(DEMO), "--to", "jsonl", "--out", str(out)]
    sensor.main([*args, "--store", "paris-01", "--sensor", "s1"], standalone_mode=False)
    return [json.loads(line) for line in out.read_bytes().splitlines() if line.strip()]


def expected(cases: list[Case], oracle: Oracle) -> tuple[dict[str, bytes], int]:
    """The first valid payload of each event id, and how many later valid payloads conflict with it."""
    first: dict[str, bytes] = {}
    conflicts = 0
    for case in cases:
        eid = oracle.event_id(case.topic, case.payload)
        if eid is None:
            continue
        if eid not in first:
            first[eid] = case.payload
        elif _content(first[eid]) != _content(case.payload) and not _never_stored(first[eid]):
            conflicts += 1
    return first, conflicts


def _never_stored(payload: bytes) -> bool:
    # visit_open events feed the real-time trigger only: nothing stored, so nothing to conflict with.
    return bool(json.loads(payload)["schema"] == SCHEMA_VISIT_OPEN)


def _content(payload: bytes) -> dict[str, Any]:
    data = json.loads(payload)
    # What the store keeps: a field left out is its default, which a re-send may spell out.
    model = SCHEMA_MODELS[data["schema"]]
    return model.model_validate_json(payload, strict=True).model_dump()


def run(backend: str, store: Store, port: int, cases: list[Case], mqtt_share: float) -> Figures:
    """Feed `cases` to a running Collector on `store` (broker at 127.0.0.1:`port`); check and count."""
    oracle = Oracle()
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"port": port, "client_id": f"fuzz-{backend}", "session_expiry_s": 600},
            # Retention would delete the old visits the generator makes, if a slow run lasts past its first go.
            "retention": {"enabled": False},
            "ingest": {"flush_interval_s": 0.2, "batch_size": 1000, "max_future_s": MAX_FUTURE_S,
                       "rejection_log_interval_s": 60},
        }
    )  # fmt: skip
    t0 = time.monotonic()
    collector = Collector(config, store=store, clock=lambda: NOW.timestamp() + time.monotonic() - t0)
    collector.start()
    time.sleep(0.3)  # the subscription's SUBACK
    cut = int(len(cases) * (1 - mqtt_share))
    direct, by_broker = cases[:cut], [c for c in cases[cut:] if _routable(c.topic)]
    cases = [c for c in direct + by_broker if not _collector_level(c.topic)]  # what the collector takes in
    first, conflicts = expected(cases, oracle)
    started = time.monotonic()
    for case in direct:
        collector._on_message(Message(case.topic, case.payload, qos=0, retain=False))
    via_mqtt = publish(port, by_broker)
    _wait(
        lambda: collector.stats.received >= len(cases) and collector.stats.pending == 0,
        60,
        collector,
        len(cases),
    )
    collector.ingestor.flush()
    seconds = time.monotonic() - started
    stats = collector.stats
    probe = {**json.loads(first[next(iter(first))]), "event_id": "f" * 32} if first else None
    if probe is not None:  # the service is alive: one more event is still stored
        kind = KIND[probe["schema"]]
        collector._on_message(
            Message(
                f"{PREFIX}/{probe['store']}/{probe['sensor']}/{kind}", json.dumps(probe).encode(), 0, False
            )
        )
        collector.ingestor.flush()
    collector.stop()
    stored = _stored_ids(store)
    storable = {eid for eid, p in first.items() if not _never_stored(p)}
    if probe is not None and probe["schema"] != SCHEMA_VISIT_OPEN:
        storable.add(probe["event_id"])
    assert stored == storable, (
        f"stored {len(stored)}, expected {len(storable)}: {sorted(stored ^ storable)[:5]}"
    )
    firsts = [SCHEMA_MODELS[json.loads(p)["schema"]].model_validate_json(p) for p in first.values()]
    clashing = store.conflicts(firsts)  # type: ignore[arg-type]
    assert clashing == [], f"{len(clashing)} stored events differ from their first valid copy"
    assert stats.rejected.get("conflict", 0) == conflicts, (stats.rejected, conflicts)
    invalid = len(cases) - sum(1 for c in cases if oracle.event_id(c.topic, c.payload) is not None)
    assert sum(stats.rejected.values()) == invalid + conflicts, (stats.rejected, invalid, conflicts)
    assert store.rejections() == {k: v for k, v in stats.rejected.items() if v}, "totals in the database"
    return Figures(
        backend, len(cases), len(first), len(storable), conflicts, via_mqtt, seconds, dict(stats.rejected),
        dict(Counter(c.how for c in cases)),
    )  # fmt: skip


def _routable(topic: str) -> bool:
    """Whether the broker hands a publish on `topic` to the collector's `<prefix>/+/+/+` subscription."""
    levels = topic.split("/")
    return len(levels) == 5 and "/".join(levels[:2]) == PREFIX and not set("+#\x00") & set(topic)


def _collector_level(topic: str) -> bool:
    # Our own levels (control, ack, trigger): the collector takes them for its own messages, unread.
    levels = topic.split("/")
    return len(levels) == 5 and levels[3] in COLLECTOR_LEVELS


def publish(port: int, cases: list[Case]) -> int:
    """Publish `cases` at QoS 1 through one client, all in flight at once; returns how many."""
    if not cases:
        return 0
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="fuzz-publisher", protocol=paho.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(c.topic, c.payload, qos=1) for c in cases]
    for info in infos:
        info.wait_for_publish(timeout=60)
    client.disconnect()
    client.loop_stop()
    return len(cases)


def _stored_ids(store: Store) -> set[str]:
    rows = store.query(  # type: ignore[attr-defined]
        "list stored ids",
        "SELECT event_id FROM visits UNION ALL SELECT event_id FROM counts UNION ALL SELECT event_id FROM statuses",
    )
    ids = [str(r[0]) for r in rows]
    assert len(ids) == len(set(ids)), "an event id stored twice"
    return set(ids)


def _wait(condition: Callable[[], bool], timeout_s: float, collector: Collector, n: int) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the collector took {collector.stats.received} of {n} payloads in {timeout_s:g} s"
                f" ({collector.stats.pending} pending)"
            )
        time.sleep(0.05)


# -- the command -----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payloads", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--mqtt", type=float, default=0.05, help="share sent through the broker (default 0.05)"
    )
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args(argv)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="footfall-fuzz-")))
        real = real_events(work)
        cases = Generator(random.Random(opts.seed), real).cases(opts.payloads)
        port, _ = stack.enter_context(mosquitto(work, "max_queued_messages 1000000\n"))
        for backend in ("sqlite", "postgresql") if opts.backend == "both" else (opts.backend,):
            store = stack.enter_context(_open(backend, work))
            figures = run(backend, store, port, cases, opts.mqtt)
            print(figures.line(), flush=True)
    return 0


@contextmanager
def _open(backend: str, work: Path) -> Iterator[Store]:
    if backend == "sqlite":
        from collector.storage.sqlite import SqliteStore

        db: Store = SqliteStore(work / "fuzz.db")
    else:
        import psycopg

        from collector.storage.postgres import PostgresStore
        from tests.pgserver import running_postgres

        with ExitStack() as stack:
            dsn = stack.enter_context(running_postgres())
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute('CREATE DATABASE "fuzz"')
            db = PostgresStore(dsn.replace("dbname=postgres", "dbname=fuzz"))
            try:
                yield db
            finally:
                db.close()
            return
    try:
        yield db
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main())
