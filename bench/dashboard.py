"""Dashboard server time at chain scale: the store page and the chain overview, p50/p95, per backend.

    .venv/bin/python bench/dashboard.py [--stores 50] [--days 365] [--visits-per-day 120] [--requests 20]
                                        [--backend sqlite postgresql] [--keep FILE.db] [--dsn DSN]

Fills a fresh store with `--days` of 5-minute count intervals (one sensor per store, 288 a day, with the
80 % band) and `--visits-per-day` visits a day (08:00-20:00 local, a third of them visitors, some fixed)
for each of `--stores` stores, plus one status per sensor, in bulk on rows built directly (building and
checking events is the ingest's cost, bench/ingest.py): SQLite with `Store.add`'s insert statements,
PostgreSQL by COPY, the roll-up triggers running either way. Then logs in and times requests in-process
(Starlette's TestClient: no network, so the time is the server's): the store page of a random store over
the last 7 days of data, the chain overview of an admin who sees every store, and the store page over
the whole year. Wall time and CPU time (this process's, plus the PostgreSQL backend's from /proc): on a
shared machine the CPU time is what the request costs, the wall time also its wait for a core.
PostgreSQL is a throw-away server started as tests/pgserver.py does, or the database of `--dsn` (filled
when empty); `--keep` keeps a SQLite file: both measure again without filling (a database of an older
schema is migrated when opened)."""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from collector.storage.base import Store, us
from collector.storage.events_sql import EVENT_INSERTS
from collector.storage.sqlite import SqliteStore
from footfall.events import CountEvent, StatusEvent, VisitEvent, event_id
from footfall.sqlite import immediate_transaction

Row = tuple[Any, ...]
INSERTS = {"visits": EVENT_INSERTS[VisitEvent][0], "counts": EVENT_INSERTS[CountEvent][0]}

REPO = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Europe/Paris")
LAST_DAY = date(2024, 12, 31)
PASSWORD = "bench-password-1"
BATCH = 20_000


def day_rows(store: str, day: date, visits_per_day: int, rng: random.Random) -> tuple[list[Row], list[Row]]:
    """One day of one store as table rows (the columns of collector/storage/events_sql.py's row builders)."""
    midnight = us(datetime(day.year, day.month, day.day, tzinfo=ZONE).astimezone(UTC))
    after = day + timedelta(days=1)
    next_midnight = us(datetime(after.year, after.month, after.day, tzinfo=ZONE).astimezone(UTC))
    five, epoch = 300_000_000, f"{day}"
    counts = []
    for i in range((next_midnight - midnight) // five):  # 276 or 300 on the days the clocks change
        present = round(rng.uniform(0, 20), 2)
        counts.append(
            (f"c-{store}-{midnight + i * five}", store, "door", epoch, midnight + i * five,
             midnight + (i + 1) * five, present, 1, 2, 1, 1, 0, 0, 40, 30, 6, 4, 3, None, None,
             round(present * 0.8, 2), round(present * 1.2, 2), None)
        )  # fmt: skip
    visits = []
    for v in range(visits_per_day):
        start = midnight + 8 * 3_600_000_000 + int(rng.uniform(0, 12 * 3600) * 1e6)
        dwell = rng.expovariate(1 / 600)
        kind = "fixed" if v % 40 == 0 else ("visitor" if v % 3 == 0 else "passerby")
        visits.append(
            (f"v-{store}-{start}-{v}", store, "door", epoch, f"{rng.getrandbits(32):08x}", start,
             start + int(dwell * 1e6), dwell, kind, 10, 1, 1, -60, -70, 1, None, None)
        )  # fmt: skip
    return visits, counts


def bulk(db: Store, table: str, rows: Sequence[Row]) -> None:
    """Rows in one transaction through the backend's connection, with the tables' roll-up triggers, without
    building 7 million event models first (the ingest's cost is bench/ingest.py's): SQLite runs
    `Store.add`'s insert statement, PostgreSQL a COPY (its row triggers fire on COPY too)."""
    if isinstance(db, SqliteStore):
        with db._lock, immediate_transaction(db._db):
            db._db.executemany(INSERTS[table], rows)
        return
    columns = re.findall(r"\(([^)]*)\) VALUES", INSERTS[table])[0]  # the columns Store.add names
    connection: Any = getattr(db, "_db")  # noqa: B009  # PostgresStore's psycopg connection
    with (
        getattr(db, "_lock"),  # noqa: B009
        connection.transaction(),
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({columns}) FROM STDIN".encode()) as copy,
    ):
        for row in rows:
            copy.write_row(row)


def status(store: str) -> StatusEvent:
    at = datetime(LAST_DAY.year, LAST_DAY.month, LAST_DAY.day, 19, tzinfo=UTC)
    return StatusEvent.model_construct(
        event_id=event_id("status", store, at), store=store, sensor="door", epoch=f"{LAST_DAY}",
        state="online", at=at, version="0.1.0", uptime_s=1.0, source="wlan0mon", frames=1,
        probe_requests=1, decode_errors={}, frames_per_s=10.0, drops=0, spool_depth=0,
    )  # fmt: skip


def fill(db: Store, stores: int, days: int, visits_per_day: int) -> float:
    from collector.web.accounts import ALL, open_accounts

    rng = random.Random(7)
    t0 = time.perf_counter()
    first = LAST_DAY - timedelta(days=days - 1)
    for s in range(stores):
        store = f"store-{s:02d}"
        for d in range(0, days, 10):
            visits: list[Row] = []
            counts: list[Row] = []
            for day in (first + timedelta(days=d + k) for k in range(min(10, days - d))):
                v, c = day_rows(store, day, visits_per_day, rng)
                visits += v
                counts += c
            bulk(db, "visits", visits)
            bulk(db, "counts", counts)
        db.add([status(store)])
    seconds = time.perf_counter() - t0
    open_accounts(db).add("bench", PASSWORD, "admin", [ALL], datetime.now(UTC))
    return seconds


def server_cpu(db: Store) -> Callable[[], float]:
    """CPU seconds used so far by what answers a request: this process (the app, and the test client's small
    share) and, on PostgreSQL, the server process of the store's connection (/proc, Linux)."""
    if isinstance(db, SqliteStore):
        return time.process_time
    pid = int(db.query("find the backend", "SELECT pg_backend_pid()")[0][0])  # type: ignore[attr-defined]
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return time.process_time() + (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    return cpu


def timed(
    get: Callable[[str], int], paths: Sequence[str], cpu: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each request; on a shared machine CPU time is the figure that does
    not include waiting for a core."""
    wall, used = [], []
    for path in paths:
        t0, c0 = time.perf_counter(), cpu()
        status = get(path)
        wall.append((time.perf_counter() - t0) * 1000)
        used.append((cpu() - c0) * 1000)
        if status != 200:
            raise SystemExit(f"{path}: HTTP {status}")
    return wall, used


def measure(db: Store, stores: int, days: int, requests: int) -> dict[str, tuple[list[float], list[float]]]:
    from fastapi.testclient import TestClient

    from collector.api.app import create_app
    from collector.config import CollectorConfig

    app = create_app(CollectorConfig(), db, b"b" * 32)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        csrf = re.findall(r'name="csrf" value="([^"]+)"', client.get("/login").text)[0]
        client.post(
            "/login", data={"name": "bench", "password": PASSWORD, "csrf": csrf}, follow_redirects=False
        )
        rng = random.Random(1)
        first = LAST_DAY - timedelta(days=6)
        store_paths = [
            f"/stores/store-{rng.randrange(stores):02d}?from={first}&to={LAST_DAY}" for _ in range(requests)
        ]

        def get(path: str) -> int:
            return int(client.get(path).status_code)

        year = LAST_DAY - timedelta(days=min(days, 365) - 1)
        long_paths = [p.replace(f"from={first}", f"from={year}") for p in store_paths]
        get(store_paths[0])  # warm the caches once
        cpu = server_cpu(db)
        return {
            "store page": timed(get, store_paths, cpu),
            "chain overview": timed(get, ["/"] * requests, cpu),
            f"store, {min(days, 365)} d": timed(get, long_paths, cpu),
        }


@contextmanager
def backend(name: str, keep: Path | None = None, dsn: str | None = None) -> Iterator[Store]:
    if name == "sqlite" and keep is not None:
        lite = SqliteStore(keep)  # filled by an earlier run with the same sizes, or filled now
        try:
            yield lite
        finally:
            lite.close()
        return
    if name == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            lite = SqliteStore(Path(directory) / "bench.db")
            try:
                yield lite
            finally:
                lite.close()
        return
    from collector.storage.postgres import PostgresStore

    if dsn is not None:  # a server of one's own, filled by an earlier run or filled now
        db = PostgresStore(dsn)
        try:
            yield db
        finally:
            db.close()
        return
    sys.path.insert(0, str(REPO))  # tests/pgserver.py starts the throw-away server
    from tests.pgserver import running_postgres

    with running_postgres(fsync=False) as throwaway:
        db = PostgresStore(throwaway)
        try:
            yield db
        finally:
            db.close()


def p95(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--visits-per-day", type=int, default=120)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--keep", type=Path, help="SQLite: use (or fill and keep) this database file")
    parser.add_argument(
        "--dsn", help="PostgreSQL: use (or fill) this database instead of a throw-away server"
    )
    args = parser.parse_args()
    rows = args.stores * args.days * (288 + args.visits_per_day)
    print(f"{args.stores} stores x {args.days} days: {rows:,} count intervals and visits")
    for name in args.backend:
        with backend(name, args.keep, args.dsn) as db:
            if db.stores():
                print(f"{name}: using the events already in {args.keep if name == 'sqlite' else args.dsn}")
            else:
                seconds = fill(db, args.stores, args.days, args.visits_per_day)
                print(f"{name}: filled in {seconds:.0f} s ({rows / seconds:,.0f} rows/s)")
            print(
                f"{name}: load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
            )
            for page, (wall, cpu) in measure(db, args.stores, args.days, args.requests).items():
                print(f"{name}: {page:<15} p50 {statistics.median(wall):5.0f} ms   p95 {p95(wall):5.0f} ms   "
                      f"CPU p50 {statistics.median(cpu):5.0f} ms   p95 {p95(cpu):5.0f} ms   ({len(wall)} requests)")  # fmt: skip


if __name__ == "__main__":
    main()
