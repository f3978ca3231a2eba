"""Fleet scale: 1,000 sensors connected at once to one Mosquitto, one collector (then two in a share group)
storing into PostgreSQL.

    .venv/bin/python bench/fleet.py [--sensors 1000] [--rate 0.2] [--duration 60] [--collectors 1 2]

Everything on loopback. A Mosquitto with its connection and file limits raised; a throw-away PostgreSQL
(tests/pgserver.py, fsync on). The sensors are one process of asyncio MQTT clients (aiomqtt, MQTT 5):
each connects with its retained `offline` status as last will, publishes its retained `online` status,
then visit and count events at QoS 1, `--rate` events/s each with random gaps (0.2/s: a busy store's
visits and 15-minute counts), for `--duration` s. Each collector is its own process (the real
`Collector`, manual acknowledgements after each committed batch) whose store notes when each event's
batch committed. Figures: sustained events/s stored, publish→stored latency p50/p99/max, peak RSS of
the broker, the sensors' process and each collector, and the check that every event was stored once
(rows in PostgreSQL = distinct events published, none missing). Target: p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.broker import mosquitto  # noqa: E402  (after the path it needs)

# a thousand connections, and no broker-side queue limit that would drop a burst
FLEET_BROKER = (
    "max_connections -1\nmax_queued_messages 0\nmax_inflight_messages 0\n"
    "log_dest stderr\nlog_type error\nlog_type warning\n"
)
PREFIX = "footfall/v1"
SENSORS_PER_STORE = 4
FILES = 8192  # open files for the broker and the sensors' process: one socket per sensor, and some


def raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FILES if hard == resource.RLIM_INFINITY else min(FILES, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process (MB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def names(i: int) -> tuple[str, str]:
    return f"st{i // SENSORS_PER_STORE:04d}", f"door-{i % SENSORS_PER_STORE}"


# -- the sensors' process ---------------------------------------------------------------------------------
def event(store: str, sensor: str, n: int, now: datetime) -> tuple[str, str, bytes]:
    """(event id, topic, payload): visits, and every tenth a count, as a sensor sends them."""
    from footfall.events import CountEvent, VisitEvent, event_id

    epoch = now.strftime("%Y%m%dT0400Z")
    start = now - timedelta(minutes=12)
    if n % 10 == 9:
        eid = event_id("count", store, sensor, now, n)
        body = CountEvent.model_validate(
            {"event_id": eid, "store": store, "sensor": sensor, "epoch": epoch, "start": start,
             "end": now, "present": 3.0, "visitors": 1, "passersby": 2, "visitors_present": 1,
             "new_visitors": 1, "returning_visitors": 0, "frames": 40, "frames_randomized": 30,
             "addresses": 6, "addresses_randomized": 4, "devices": 3}
        ).to_json()  # fmt: skip
        return eid, f"{PREFIX}/{store}/{sensor}/count", body
    device = f"{random.getrandbits(64):016x}"
    eid = event_id("visit", store, sensor, epoch, device, start)
    body = VisitEvent.model_validate(
        {"event_id": eid, "store": store, "sensor": sensor, "epoch": epoch, "device": device,
         "start": start, "end": now, "dwell_s": 720.0, "kind": "visitor", "frames": 12,
         "addresses": 1, "randomized": True, "rssi_max": -60, "visit_no": 1}
    ).to_json()  # fmt: skip
    return eid, f"{PREFIX}/{store}/{sensor}/visit", body


def status(store: str, sensor: str, state: str) -> tuple[str, bytes]:
    from footfall.events import StatusEvent, event_id

    at_ns = time.time_ns()
    body = StatusEvent.model_validate(
        {"event_id": event_id(store, sensor, "status", state, at_ns), "store": store, "sensor": sensor,
         "epoch": "", "state": state, "at": datetime.fromtimestamp(at_ns / 1e9, UTC), "version": "bench"}
    ).to_json()  # fmt: skip
    return f"{PREFIX}/{store}/{sensor}/status", body


async def one_sensor(
    i: int,
    port: int,
    rate: float,
    deadline: list[float],
    connected: asyncio.Barrier,
    stamps: dict[str, float],
) -> None:
    import aiomqtt

    store, sensor = names(i)
    will_topic, will = status(store, sensor, "offline")
    async with aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=f"bench-{store}-{sensor}",
        protocol=aiomqtt.ProtocolVersion.V5,
        will=aiomqtt.Will(will_topic, will, qos=1, retain=True),
        keepalive=60,
        timeout=60,
    ) as client:
        topic, online = status(store, sensor, "online")
        await client.publish(topic, online, qos=1, retain=True)
        await connected.wait()  # every sensor is connected before the clock starts
        n = 0
        while time.time() < deadline[0]:
            await asyncio.sleep(random.expovariate(rate))
            eid, topic, body = event(store, sensor, n, datetime.now(UTC))
            stamps[eid] = time.time()
            await client.publish(topic, body, qos=1)
            n += 1


async def sensors_main(port: int, count: int, rate: float, duration: float, out: Path) -> None:
    raise_file_limit()
    stamps: dict[str, float] = {}
    connected = asyncio.Barrier(count + 1)
    began = time.time()
    deadline = [began + 3600]  # set once all are connected

    async def run(i: int) -> None:
        await asyncio.sleep(i * 0.002)  # a 2 s ramp, as sensors coming up are spread in time
        await one_sensor(i, port, rate, deadline, connected, stamps)

    tasks = [asyncio.create_task(run(i)) for i in range(count)]
    await connected.wait()
    deadline[0] = time.time() + duration
    connect_s = time.time() - began
    print(json.dumps({"connected_in_s": round(connect_s, 2)}), file=sys.stderr, flush=True)
    await asyncio.gather(*tasks)
    out.write_text(json.dumps({"stamps": stamps, "connect_s": connect_s, "rss_mb": peak_rss_mb(os.getpid())}))


# -- a collector process ----------------------------------------------------------------------------------
class TimedStore:
    """A store that notes when each event id's batch committed (the first time only)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.stored_at: dict[str, float] = {}
        self.batches = 0

    def add(self, events: Sequence[Any]) -> Any:
        result = self._store.add(events)
        now = time.time()
        self.batches += 1
        for e in events:
            self.stored_at.setdefault(e.event_id, now)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def collector_main(port: int, dsn_file: Path, client_id: str, group: str | None, out: Path) -> None:
    from collector.config import CollectorConfig
    from collector.ingest.service import Collector
    from collector.storage.backends import open_store
    from collector.storage.base import Store

    config = CollectorConfig.model_validate(
        {
            "mqtt": {"port": port, "client_id": client_id, "session_expiry_s": 3600, "share_group": group},
            "store": {"backend": "postgresql", "dsn_file": str(dsn_file)},
            "ingest": {"batch_size": 1000, "flush_interval_s": 0.2, "stats_log_interval_s": 3600},
            "retention": {"enabled": False},
        }
    )
    real = open_store(config.store)
    timed = TimedStore(real)
    collector = Collector(config, store=cast("Store", timed))
    arrived: dict[str, float] = {}  # when each event reached the collector's handler (first time)
    handle = collector.ingestor.handle

    def timed_handle(topic: str, payload: bytes, ack: Any = None) -> Any:
        at = time.time()
        outcome = handle(topic, payload, ack)
        if outcome.event_id:
            arrived.setdefault(outcome.event_id, at)
        return outcome

    collector.ingestor.handle = timed_handle  # type: ignore[method-assign]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    collector.start()
    print("ready", flush=True)
    stop.wait()
    collector.stop()
    real.close()
    out.write_text(
        json.dumps(
            {
                "stored_at": timed.stored_at,
                "arrived": arrived,
                "batches": timed.batches,
                "taken": collector.messages,
                "rss_mb": peak_rss_mb(os.getpid()),
            }
        )
    )


# -- the run ----------------------------------------------------------------------------------------------


def rows(dsn: str) -> tuple[int, int]:
    """(visit + count rows, status rows) in the store."""
    import psycopg

    with psycopg.connect(dsn) as db:
        events = db.execute("SELECT (SELECT count(*) FROM visits) + (SELECT count(*) FROM counts)").fetchone()
        statuses = db.execute("SELECT count(*) FROM statuses").fetchone()
    return int(events[0]) if events else 0, int(statuses[0]) if statuses else 0


def run_fleet(collectors: int, dsn: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:  # a clean store for each run
        for table in ("visits", "counts", "statuses"):
            db.execute(f"TRUNCATE {table}")  # fixed table names
    me = [sys.executable, __file__]
    with mosquitto(work, FLEET_BROKER) as (port, broker):
        group = "bench" if collectors > 1 else None
        procs = []
        for c in range(collectors):
            out = work / f"collector-{collectors}-{c}.json"
            argv = [*me, "collector", "--port", str(port), "--dsn-file", str(work / "pg.dsn"),
                    "--client-id", f"bench-collector-{c}", "--out", str(out)]  # fmt: skip
            if group:
                argv += ["--group", group]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            procs.append((proc, out))
        sensors_out = work / f"sensors-{collectors}.json"
        sensors = subprocess.Popen(
            [
                *me,
                "sensors",
                "--port",
                str(port),
                "--sensors",
                str(args.sensors),
                "--rate",
                str(args.rate),
                "--duration",
                str(args.duration),
                "--out",
                str(sensors_out),
            ]
        )
        sensors.wait(timeout=args.duration + 600)
        published = json.loads(sensors_out.read_text())
        stamps: dict[str, float] = published["stamps"]
        deadline = time.monotonic() + 120
        while rows(dsn)[0] < len(stamps) and time.monotonic() < deadline:
            time.sleep(0.5)
        broker_mb = peak_rss_mb(broker.pid)
        stored_rows, status_rows = rows(dsn)
        stored_at: dict[str, float] = {}
        arrived: dict[str, float] = {}
        collector_mb, taken, batches = [], [], []
        for proc, out in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            result = json.loads(out.read_text())
            collector_mb.append(result["rss_mb"])
            taken.append(result["taken"])
            batches.append(result["batches"])
            for eid, t in result["stored_at"].items():
                stored_at[eid] = min(t, stored_at.get(eid, t))
            for eid, t in result["arrived"].items():
                arrived[eid] = min(t, arrived.get(eid, t))
    lat = sorted(stored_at[e] - stamps[e] for e in stamps if e in stored_at)
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [0.0] * 99
    # Where the time goes: publish -> the collector's handler (sensors' process, broker, socket), then
    # handler -> committed (batching and the commit).
    transit = sorted(arrived[e] - stamps[e] for e in stamps if e in arrived)
    waiting = sorted(stored_at[e] - arrived[e] for e in stamps if e in arrived and e in stored_at)
    first, last = min(stamps.values()), max(stored_at[e] for e in stamps if e in stored_at)
    return {
        "collectors": collectors,
        "sensors": args.sensors,
        "connect_s": published["connect_s"],
        "published": len(stamps),
        "stored_rows": stored_rows,
        "missing": sum(1 for e in stamps if e not in stored_at),
        "status_rows": status_rows,
        "sustained": len(lat) / max(last - first, 1e-9),
        "p50_ms": 1000 * q[49],
        "p99_ms": 1000 * q[98],
        "max_ms": 1000 * (lat[-1] if lat else 0.0),
        "broker_mb": broker_mb,
        "sensors_mb": published["rss_mb"],
        "collector_mb": collector_mb,
        "transit_p99_ms": 1000 * _p99(transit),
        "store_p99_ms": 1000 * _p99(waiting),
        "taken": taken,
        "batches": batches,
    }


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("sensors", help="(internal) the sensors' process")
    c = sub.add_parser("collector", help="(internal) a collector process")
    for p in (s, c):
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--out", type=Path, required=True)
    s.add_argument("--sensors", type=int, required=True)
    s.add_argument("--rate", type=float, required=True)
    s.add_argument("--duration", type=float, required=True)
    c.add_argument("--dsn-file", type=Path, required=True)
    c.add_argument("--client-id", required=True)
    c.add_argument("--group")
    parser.add_argument("--sensors", type=int, default=1000, help="sensors connected at once (default 1000)")
    parser.add_argument("--rate", type=float, default=0.2, help="events/s per sensor (default 0.2)")
    parser.add_argument("--duration", type=float, default=60, help="seconds of publishing (default 60)")
    parser.add_argument("--collectors", type=int, nargs="+", default=[1, 2], help="runs: collectors each")
    args = parser.parse_args(argv)
    if args.command == "sensors":
        asyncio.run(sensors_main(args.port, args.sensors, args.rate, args.duration, args.out))
        return 0
    if args.command == "collector":
        collector_main(args.port, args.dsn_file, args.client_id, args.group, args.out)
        return 0
    from tests.pgserver import PostgresUnavailable, running_postgres

    raise_file_limit()  # the broker and the sensors' process inherit it
    print(
        f"# bench/fleet.py --sensors {args.sensors} --rate {args.rate:g} --duration {args.duration:g}; "
        f"{os.cpu_count()} CPUs; QoS 1, PostgreSQL with fsync"
    )
    work = Path(tempfile.mkdtemp(prefix="footfall-fleet-"))
    try:
        with running_postgres(fsync=True) as dsn:
            (work / "pg.dsn").write_text(dsn)
            from collector.config import StoreConfig
            from collector.storage.backends import open_store

            open_store(StoreConfig(backend="postgresql", dsn_file=work / "pg.dsn")).close()  # migrations
            print(
                f"{'collectors':>10}{'published':>10}{'stored':>8}{'missing':>8}{'statuses':>9}"
                f"{'events/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'broker MB':>10}"
                f"{'sensors MB':>11}  collector MB"
            )
            for n in args.collectors:
                r = run_fleet(n, dsn, work, args)
                print(
                    f"{n:>10}{r['published']:>10,}{r['stored_rows']:>8,}{r['missing']:>8}{r['status_rows']:>9}"
                    f"{r['sustained']:>9,.0f}{r['p50_ms']:>8.0f}{r['p99_ms']:>8.0f}{r['max_ms']:>8.0f}"
                    f"{r['broker_mb']:>10.1f}{r['sensors_mb']:>11.1f}  "
                    + " + ".join(f"{m:.1f}" for m in r["collector_mb"]),
                    flush=True,
                )
                print(
                    f"{'':>10}  p99 publish->collector {r['transit_p99_ms']:.0f} ms, collector->stored"
                    f" {r['store_p99_ms']:.0f} ms; messages taken {' + '.join(map(str, r['taken']))},"
                    f" batches {' + '.join(map(str, r['batches']))}",
                    flush=True,
                )
    except PostgresUnavailable as exc:
        print(f"PostgreSQL cannot be started here: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
