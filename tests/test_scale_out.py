"""Scale-out: two `footfall-collector run` processes share one Mosquitto's events through an MQTT 5
shared subscription and write to one real PostgreSQL; every event is stored exactly once, including
the ones the sensors sent twice, and each collector takes a share. Mosquitto 2.0 goes on handing a
stopped member (persistent session) its turn: that share waits in its session, stored when it returns."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO, Broker
from tests.pgserver import postgres_dsn, postgres_server  # noqa: F401
from tests.test_collector_service import publisher, serve, wait_for  # noqa: F401
from tests.test_report import visit

pytestmark = pytest.mark.mqtt

T0 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
EVENTS = 200
RESENT = 40  # events 1..RESENT are published a second time, after all the others
COUNTS = re.compile(r"received (\d+), stored (\d+), duplicates (\d+)")


def console_script() -> Path:
    script = Path(sys.executable).parent / "footfall-collector"
    if not script.exists():
        pytest.skip(f"the footfall-collector console script is not installed beside {sys.executable}")
    return script


def last_counts(log: Path) -> tuple[int, int, int]:
    """(received, stored, duplicates) from the newest counts line a collector logged; zeros before one."""
    found = COUNTS.findall(log.read_text(errors="replace"))
    return tuple(int(n) for n in found[-1]) if found else (0, 0, 0)  # type: ignore[return-value]


def test_two_collectors_in_a_share_group_store_every_event_once_and_both_take_a_share(
    broker: Broker,
    tmp_path: Path,
    postgres_dsn: Callable[[], str],  # noqa: F811
    publisher: Callable[[str, bytes], None],  # noqa: F811
) -> None:
    from collector.storage.postgres import PostgresStore

    dsn = postgres_dsn()
    dsn_file = tmp_path / "pg.dsn"
    dsn_file.write_text(dsn + "\n")
    PostgresStore(dsn).close()  # migrate once up front, so the two do not race to create the schema
    script = console_script()
    processes: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"collector-{n}.log" for n in (1, 2)]
    try:
        for n, log in enumerate(logs, 1):
            cfg = tmp_path / f"collector-{n}.yaml"
            cfg.write_text(
                f"mqtt:\n  port: {broker.port}\n  client_id: collector-{n}\n  share_group: footfall\n"
                f"store:\n  backend: postgresql\n  dsn_file: {dsn_file}\n"
                "ingest:\n  batch_size: 25\n  flush_interval_s: 0.2\n  stats_log_interval_s: 0.2\n"
                "retention:\n  enabled: false\n"
            )
            with log.open("wb") as err:
                processes.append(
                    subprocess.Popen(
                        [str(script), "run", "--config", str(cfg)],
                        cwd=REPO,
                        stderr=err,
                        env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    )
                )
        for log in logs:
            wait_for(
                lambda log=log: "collecting $share/footfall/footfall/v1/+/+/+" in log.read_text(),  # type: ignore[misc]
                f"{log.name} to subscribe",
            )
            wait_for(lambda log=log: "; mqtt connected" in log.read_text(), f"{log.name} to report")  # type: ignore[misc]
        events = [visit(T0 + timedelta(seconds=n), 60, device=f"{n:08x}") for n in range(EVENTS)]
        # Mosquitto hands a share group's messages out in turn, so starting the repeats at event 1 (not 0)
        # sends each second copy to the other collector: de-duplication must hold across collectors.
        for event in [*events, *events[1 : RESENT + 1]]:
            publisher(f"footfall/v1/{event.store}/{event.sensor}/visit", event.to_json())
        wait_for(
            lambda: sum(last_counts(log)[0] for log in logs) == EVENTS + RESENT, "every copy received", 60
        )
        for process in processes:
            process.send_signal(signal.SIGTERM)
        assert [process.wait(timeout=30) for process in processes] == [0, 0]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    finals = [last_counts(log) for log in logs]
    assert all("stopped: received" in log.read_text() for log in logs)
    assert all(received > 0 for received, _, _ in finals), f"one collector got nothing: {finals}"
    assert sum(stored for _, stored, _ in finals) == EVENTS
    assert sum(duplicates for _, _, duplicates in finals) == RESENT
    db = PostgresStore(dsn)
    try:
        stored = db.visits("paris-01", T0 - timedelta(days=1), T0 + timedelta(days=1))
    finally:
        db.close()
    assert sorted(v.device for v in stored) == sorted(e.device for e in events)


def test_a_stopped_collectors_share_waits_in_its_session_and_is_stored_when_it_returns(
    broker: Broker,
    postgres_dsn: Callable[[], str],  # noqa: F811
    publisher: Callable[[str, bytes], None],  # noqa: F811
) -> None:
    from collector.config import CollectorConfig
    from collector.ingest.service import Collector
    from collector.storage.postgres import PostgresStore

    dsn = postgres_dsn()
    stores: list[PostgresStore] = []
    running: list[Collector] = []

    def member(n: int) -> Collector:
        config = CollectorConfig.model_validate(
            {
                "mqtt": {"port": broker.port, "client_id": f"member-{n}", "share_group": "footfall"},
                "store": {"backend": "postgresql", "dsn_file": "/unused: the store is given"},
                "ingest": {"flush_interval_s": 0.2},
                "retention": {"enabled": False},
            }
        )
        stores.append(PostgresStore(dsn))
        running.append(Collector(config, store=stores[-1]))
        serve(running[-1])
        return running[-1]

    events = [visit(T0 + timedelta(seconds=n), 60, device=f"{n:08x}") for n in range(20)]
    try:
        first = member(1)
        member(2).stop()  # its persistent session stays at the broker, in the share group
        for event in events:
            publisher(f"footfall/v1/{event.store}/{event.sensor}/visit", event.to_json())
        wait_for(lambda: first.stats.stored > 0, "the running member to store its share")
        returned = member(2)
        wait_for(lambda: first.stats.stored + returned.stats.stored == len(events), "every event stored")
        stored = stores[0].visits("paris-01", T0 - timedelta(days=1), T0 + timedelta(days=1))
    finally:
        for collector in running:
            collector.stop()
        for store in stores:
            store.close()
    assert sorted(v.device for v in stored) == sorted(e.device for e in events)
