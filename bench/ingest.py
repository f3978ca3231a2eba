"""Collector ingest: sustained events/s and latency publish → stored, over a real Mosquitto at QoS 1.

    .venv/bin/python bench/ingest.py [--events 100000] [--rate 0] [--backend sqlite postgresql]

A Mosquitto is started on a free loopback port (no persistence, no queue bound); the collector runs
in this process (`collector.service.Collector`, manual acknowledgements after each committed batch,
as in production) and stores into SQLite (WAL, in a temporary directory) and, when a throw-away
PostgreSQL can be started (initdb + pg_ctl, as tests/pgserver.py does, fsync on), into PostgreSQL.
A publisher process (this script, `publish`) sends the events, half visits and half counts of 20
sensors, at QoS 1 (1000 in flight) either as fast as it can (`--rate 0`) or paced at `--rate`
events/s, and writes each event's publish time; the store is wrapped so that each event id gets the
time its batch committed. Figures:

- sustained: events / (last commit - first publish): what the collector kept up with end to end;
- publish: the rate the publisher achieved (when it is the bottleneck, sustained is bounded by it);
- latency p50/p99/max: commit time - publish time, per event. Unpaced, the publisher runs ahead of the
  collector and the latency is mostly queueing; paced below the capacity it is the batching delay.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.broker import mosquitto  # noqa: E402  (after the path it needs)

INGEST_BROKER = "max_queued_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
PREFIX = "footfall/v1"
SENSORS = 20
UNACKED = 1000  # = paho's in-flight window: a publish stamp is within a window of the real send
T0 = datetime(2024, 5, 1, 7, tzinfo=UTC)


# -- the events -------------------------------------------------------------------------------------------
def payloads(n: int) -> Iterator[tuple[str, str, bytes]]:
    """(event id, topic, payload) for n events: visits and counts alternating, over SENSORS sensors."""
    from footfall.events import CountEvent, VisitEvent, event_id

    for i in range(n):
        sensor, start = f"s{i % SENSORS:02d}", T0 + timedelta(seconds=i)
        if i % 2:
            eid = event_id("count", "bench", sensor, start)
            event: VisitEvent | CountEvent = CountEvent.model_validate(
                {"event_id": eid, "store": "bench", "sensor": sensor, "epoch": "e1", "start": start,
                 "end": start + timedelta(minutes=5), "present": 3.0, "visitors": 1, "passersby": 2,
                 "visitors_present": 1, "new_visitors": 1, "returning_visitors": 0, "frames": 40,
                 "frames_randomized": 30, "addresses": 6, "addresses_randomized": 4, "devices": 3}
            )  # fmt: skip
        else:
            device = f"{i:08x}"
            eid = event_id("visit", "bench", sensor, "e1", device, start)
            event = VisitEvent.model_validate(
                {"event_id": eid, "store": "bench", "sensor": sensor, "epoch": "e1", "device": device,
                 "start": start, "end": start + timedelta(seconds=300), "dwell_s": 300.0, "kind": "visitor",
                 "frames": 12, "addresses": 1, "randomized": True, "rssi_max": -60, "visit_no": 1}
            )  # fmt: skip
        kind = "count" if i % 2 else "visit"
        yield eid, f"{PREFIX}/bench/{sensor}/{kind}", event.to_json()


def publish(port: int, events: int, rate: float, out: Path) -> None:
    """The publisher process: send every event at QoS 1 and write `<event id> <publish time>` lines."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    ready = list(payloads(events))  # made before the clock starts
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher", protocol=paho.MQTTv5)
    client.max_inflight_messages_set(1000)
    acked = threading.Semaphore(0)
    client.on_publish = lambda *args: acked.release()
    client.connect("127.0.0.1", port)
    client.loop_start()
    stamps: list[float] = []
    deadline = time.monotonic() + 300
    start = time.time()
    for i, (_, topic, body) in enumerate(ready):
        if rate > 0 and i % 50 == 0 and (ahead := start + i / rate - time.time()) > 0:
            time.sleep(ahead)
        # paho keys queued messages by message id, which wraps at 65535: with more than that queued,
        # new ones replace old ones unsent. So at most UNACKED wait for their PUBACK at any time.
        if i >= UNACKED and not acked.acquire(timeout=max(deadline - time.monotonic(), 0.001)):
            raise SystemExit(f"publisher: no PUBACK for {UNACKED} messages within 300 s")
        stamps.append(time.time())
        client.publish(topic, body, qos=1)
    for n in range(min(UNACKED, len(ready))):
        if not acked.acquire(timeout=max(deadline - time.monotonic(), 0.001)):
            print(f"publisher: {n} of the last PUBACKs came within 300 s", file=sys.stderr)
            break
    client.disconnect()
    client.loop_stop()
    out.write_text("".join(f"{eid} {t:.6f}\n" for (eid, _, _), t in zip(ready, stamps, strict=True)))


# -- the collector side -----------------------------------------------------------------------------------
class TimedStore:
    """A store that notes when each event id's batch committed (the first time: a repeat is not new)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.stored_at: dict[str, float] = {}

    def add(self, events: Sequence[Any]) -> int:
        inserted = int(self._store.add(events))
        now = time.time()
        for e in events:
            self.stored_at.setdefault(e.event_id, now)
        return inserted

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass(frozen=True)
class Figures:
    backend: str
    mode: str
    events: int
    stored: int
    sustained: float
    published: float
    latency_ms: tuple[float, float, float] | None  # p50, p99, max

    def line(self) -> str:
        head = (
            f"{self.backend:<10} {self.mode:<7} events {self.events:>7}  stored {self.stored:>7}"
            f"  sustained {self.sustained:>7,.0f}/s  publish {self.published:>7,.0f}/s"
        )
        if self.latency_ms is None:
            return head + "  (latency: not meaningful, the events waited at the broker)"
        p50, p99, top = self.latency_ms
        return head + f"  latency p50 {p50:>5.0f} ms  p99 {p99:>5.0f} ms  max {top:>5.0f} ms"


def _publisher(port: int, args: argparse.Namespace, stamps: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, "publish", "--port", str(port), "--events", str(args.events),
         "--rate", str(args.rate), "--out", str(stamps)]
    )  # fmt: skip


def _wait_stored(timed: TimedStore, n: int, timeout_s: float, what: str) -> None:
    deadline, next_note = time.monotonic() + timeout_s, time.monotonic() + 10
    while len(timed.stored_at) < n and time.monotonic() < deadline:
        time.sleep(0.05)
        if time.monotonic() > next_note:
            next_note += 10
            print(f"  {what}: {len(timed.stored_at)} stored", file=sys.stderr)


def run_one(backend: str, store_options: dict[str, Any], work: Path, args: argparse.Namespace) -> Figures:
    """`live`: the collector runs while the events are published. `backlog`: every event waits in the
    collector's session at the broker first, then the collector drains it (its capacity alone)."""
    from collector.config import CollectorConfig
    from collector.ingest.service import Collector
    from collector.storage.backends import open_store
    from collector.storage.base import Store

    with mosquitto(work, INGEST_BROKER) as (port, _):
        config = CollectorConfig.model_validate(
            {
                "mqtt": {"port": port, "client_id": f"bench-{backend}", "session_expiry_s": 3600},
                "store": {"backend": backend, **store_options},
                "ingest": {"batch_size": args.batch, "flush_interval_s": args.flush, "stats_log_interval_s": 3600},
                "retention": {"enabled": False},
            }
        )  # fmt: skip
        real = open_store(config.store)
        timed = TimedStore(real)
        collector = Collector(config, store=cast("Store", timed))
        collector.start()
        time.sleep(0.3)  # the SUBACK: the session now holds the subscription
        stamps = work / f"published-{backend}.txt"
        if args.mode == "backlog":
            collector.stop()  # away: the broker queues everything in its session
        publisher = _publisher(port, args, stamps)
        if args.mode == "backlog":
            publisher.wait(timeout=330)
            began = time.time()
            collector = Collector(config, store=cast("Store", timed))
            collector.start()
        _wait_stored(timed, args.events, args.timeout, f"{backend} {args.mode}")
        publisher.wait(timeout=330)
        collector.stop()
        real.close()
    published = {eid: float(t) for eid, t in (line.split() for line in stamps.read_text().splitlines())}
    first, last_pub = min(published.values()), max(published.values())
    last_stored = max(timed.stored_at.values(), default=first)
    latency = None
    if args.mode == "live":
        began = first
        lat = sorted(timed.stored_at[e] - published[e] for e in published if e in timed.stored_at)
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [0.0] * 99
        latency = (1000 * q[49], 1000 * q[98], 1000 * (lat[-1] if lat else 0.0))
    return Figures(
        backend=backend,
        mode=args.mode,
        events=args.events,
        stored=len(timed.stored_at),
        sustained=len(timed.stored_at) / max(last_stored - began, 1e-9),
        published=len(published) / max(last_pub - first, 1e-9),
        latency_ms=latency,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command")
    pub = sub.add_parser("publish", help="(internal) the publisher process")
    pub.add_argument("--port", type=int, required=True)
    pub.add_argument("--events", type=int, required=True)
    pub.add_argument("--rate", type=float, default=0)
    pub.add_argument("--out", type=Path, required=True)
    parser.add_argument("--events", type=int, default=100_000, help="events to publish (default 100000)")
    parser.add_argument(
        "--rate", type=float, default=0, help="events/s to publish at; 0 = as fast as possible"
    )
    parser.add_argument("--batch", type=int, default=1000, help="ingest.batch_size (default 1000)")
    parser.add_argument("--flush", type=float, default=1.0, help="ingest.flush_interval_s (default 1.0)")
    parser.add_argument(
        "--mode", choices=["live", "backlog"], default="live", help="see run_one (default live)"
    )
    parser.add_argument("--timeout", type=float, default=300, help="give up waiting after this many s")
    parser.add_argument(
        "--backend", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    args = parser.parse_args(argv)
    if args.command == "publish":
        publish(args.port, args.events, args.rate, args.out)
        return 0
    print(f"# bench/ingest.py --mode {args.mode} --events {args.events} --rate {args.rate:g} --batch {args.batch} "
          f"--flush {args.flush:g}; {os.cpu_count()} CPUs; QoS 1, collector in-process, publisher a process")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="footfall-bench-"))
    try:
        if "sqlite" in args.backend:
            print(run_one("sqlite", {"path": str(work / "bench.db")}, work, args).line(), flush=True)
        if "postgresql" in args.backend:
            sys.path.insert(0, str(REPO))  # tests/pgserver.py starts the throw-away server
            from tests.pgserver import PostgresUnavailable, running_postgres

            try:
                with running_postgres(fsync=True) as dsn:
                    (work / "pg.dsn").write_text(dsn)
                    options = {"dsn_file": str(work / "pg.dsn")}
                    print(run_one("postgresql", options, work, args).line(), flush=True)
            except PostgresUnavailable as exc:
                print(f"postgresql skipped: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
