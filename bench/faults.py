"""Fault figures: the issue's four failures, on real processes, with numbers.

    .venv/bin/python -m bench.faults [--outage 60] [--rate 5] [--only broker_killed ...]

Each scenario runs a real Mosquitto with config/mosquitto.conf (port and persistence directory
replaced), the collector (`python -m collector.cli.main run`) and one sensor process (`python -m bench.faults
sensor`: the demo capture's events, made once by `footfall-sensor replay --to jsonl`, sent through the
real MqttSink and spool at a steady `--rate`, as a live sensor would). A sensor restarted after a kill
reads the same events again: those its spool already holds go without delay (the spool keeps them
once), the rest at the rate, so a restart resumes where the killed one stopped. One fault is injected:

- broker_killed: SIGKILL the broker once a fifth of the events are stored; restart it `--outage` s
  later (or once the stream is over, if that is later).
- collector_killed: SIGKILL the collector likewise (its batch in hand was not acknowledged); restart it.
- sensor_killed: SIGKILL the sensor mid-stream, while the broker is frozen (SIGSTOP) for a second so
  that its spool holds unacknowledged events; restart it.
- spool_full: the broker is killed as in the first, but the sensor's spool holds only 100 events: the
  full policy drops visit events, never counts, and counts what it dropped.
- replay_lost_by_broker: the collector is offline (its session made, then stopped); the sensor sends the
  whole stream, the broker acknowledges all of it and is SIGKILLed before its next autosave, losing it;
  restarted, then the collector. The sensor kept every event until the collector's store acknowledgement.
- replay_lost_by_broker_sensor_restarted: the same, but the sensor is SIGKILLed too once the broker has
  acknowledged the stream, and started again (same spool) after the broker.

Figures: generated (distinct events the sensor made), stored (distinct in the collector's database),
dropped (by the spool's policy: the events its record of drops names), lost (events neither stored nor
dropped: what went missing unaccounted; an event can be both stored and dropped, when the broker died
after passing it on and before its PUBACK reached the sensor, and the note says how many), duplicated
(rows beyond one per event id), redelivered (copies the collector received and dropped by id), and the
time to catch up: from the restart of the failed process until the database holds every event made
before it. Timings include the clients' reconnect backoff (1 s doubling, at most 60 s).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "sensor" / "demo" / "demo-store.pcap"
RESULTS = REPO / "bench" / "results" / "faults.txt"
STORE, SENSOR = "demo", "door-1"
MOSQUITTO = next((p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), "mosquitto")


@dataclass(frozen=True, slots=True)
class Params:
    outage_s: float = 60.0  # broker down time (broker_killed, spool_full)
    down_s: float = 5.0  # collector or sensor down time
    rate: float = 5.0  # events per second from the sensor
    spool_events: int = 100  # the sensor's spool bound in spool_full (the least the config allows)
    timeout_s: float = 300.0  # give up waiting for the catch-up after this long


@dataclass(frozen=True, slots=True)
class Figures:
    scenario: str
    generated: int
    stored: int
    dropped: int
    lost: int
    duplicated: int
    redelivered: int
    catch_up_s: float
    note: str

    def line(self) -> str:
        return (
            f"{self.scenario:<17} generated {self.generated:4d}  stored {self.stored:4d}  dropped {self.dropped:3d}"
            f"  lost {self.lost}  duplicated {self.duplicated}  redelivered {self.redelivered:3d}"
            f"  catch-up {self.catch_up_s:5.1f} s  ({self.note})"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A child process with its output in a file: started, killed, restarted by the scenarios."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name, self.argv, self.log = name, argv, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            self.popen = subprocess.Popen(self.argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)

    def send(self, sig: signal.Signals) -> None:
        """Signal without waiting (SIGSTOP, SIGCONT)."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)

    def signal(self, sig: signal.Signals) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)
            self.popen.wait(timeout=30)
        self.popen = None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Rig:
    """Broker, collector and sensor for one scenario, in `work`."""

    def __init__(self, work: Path, events: Path, params: Params, *, spool_events: int | None = None) -> None:
        self.work, self.params = work, params
        self.port = free_port()
        self.db = work / "collector.db"
        self.spool = work / "spool.db"
        self.expected = {json.loads(line)["event_id"] for line in events.read_bytes().splitlines() if line}
        (work / "mosquitto-data").mkdir(parents=True, exist_ok=True)
        self.broker = Process("broker", [MOSQUITTO, "-c", str(self._broker_conf())], work / "broker.log")
        self.collector = Process(
            "collector",
            [sys.executable, "-m", "collector.cli.main", "run", "--config", str(self._collector_conf())],
            work / "collector.log",
        )
        sensor_conf = self._sensor_conf(spool_events)
        self.sensor = Process(
            "sensor",
            [sys.executable, "-m", "bench.faults", "sensor", str(sensor_conf), str(events), str(params.rate)],
            work / "sensor.log",
        )

    def _broker_conf(self) -> Path:
        text = (REPO / "config" / "mosquitto.conf").read_text()
        text = re.sub(r"(?m)^listener .*$", f"listener {self.port} 127.0.0.1", text)
        text = re.sub(
            r"(?m)^persistence_location .*$", f"persistence_location {self.work}/mosquitto-data/", text
        )
        if os.geteuid() == 0:  # as root Mosquitto becomes `mosquitto`, which cannot write our directory
            text += "\nuser root\n"
        conf = self.work / "mosquitto.conf"
        conf.write_text(text)
        return conf

    def _collector_conf(self) -> Path:
        conf = self.work / "collector.yaml"
        conf.write_text(
            f"mqtt:\n  port: {self.port}\n  client_id: fault-collector\n  session_expiry_s: 3600\n"
            f"  connect_timeout_s: 30\nstore:\n  path: {self.db}\ningest:\n  stats_log_interval_s: 5\n"
        )
        return conf

    def _sensor_conf(self, spool_events: int | None) -> Path:
        bound = f"  max_events: {spool_events}\n" if spool_events else ""
        conf = self.work / "sensor.yaml"
        conf.write_text(
            f"site:\n  store: {STORE}\n  sensor: {SENSOR}\nmqtt:\n  port: {self.port}\n"
            f"spool:\n  path: {self.spool}\n{bound}"
        )
        return conf

    def start(self) -> None:
        self.broker.start()
        wait_for(lambda: _listening(self.port), 10, "the broker to listen")
        self.collector.start()
        wait_for(lambda: "collecting footfall/v1/+/+/+" in self.collector.text(), 30, "the collector")
        self.sensor.start()

    def stop(self) -> None:
        self.sensor.signal(signal.SIGKILL)
        self.collector.signal(signal.SIGTERM)
        self.broker.signal(signal.SIGTERM)

    def stored(self) -> tuple[int, int]:
        """(rows, distinct expected event ids) in the collector's database."""
        ids = [
            r[0] for r in query(self.db, "SELECT event_id FROM visits UNION ALL SELECT event_id FROM counts")
        ]
        return len(ids), len(self.expected & set(ids))

    def stored_ids(self) -> set[str]:
        return {r[0] for r in query(self.db, "SELECT event_id FROM visits UNION SELECT event_id FROM counts")}

    def spool_figure(self, sql: str) -> int:
        rows = query(self.spool, sql)
        return int(rows[0][0]) if rows else 0

    def sensor_done(self) -> bool:
        return "generated all events" in self.sensor.text()

    def made_so_far(self) -> set[str]:
        """Events the sensor has made: in its spool (queued, acknowledged or not) or already stored."""
        return (
            {r[0] for r in query(self.spool, "SELECT event_id FROM events")} | self.stored_ids()
        ) & self.expected

    def restart(self, process: Process) -> float:
        """Start `process` again; returns the catch-up: seconds until every event made before is stored."""
        made = self.made_so_far()
        process.start()
        restarted = time.monotonic()
        wait_for(lambda: made <= self.stored_ids(), self.params.timeout_s, "the catch-up", fail=False)
        return time.monotonic() - restarted

    def wait_stored(self, n: int) -> float:
        """Wait until `n` expected events are stored (or the timeout); returns when (monotonic)."""
        wait_for(lambda: self.stored()[1] >= n, self.params.timeout_s, f"{n} events stored", fail=False)
        return time.monotonic()

    def figures(
        self, scenario: str, catch_up_s: float, note: str, dropped_ids: frozenset[str] = frozenset()
    ) -> Figures:
        """Once the stream is over and delivered (or the timeout), stop everything and count.

        `dropped_ids` are the events the sensor's spool says it gave up (its own record of them). An event
        is lost when it is neither stored nor among them; one both stored and dropped was in flight when
        the broker died: passed on to the collector, its PUBACK never back, then dropped by the full spool.
        """
        timeout = self.params.timeout_s
        wait_for(lambda: "all events acknowledged" in self.sensor.text(), timeout, "the sensor", fail=False)
        gave_up = dropped_ids & self.expected
        wait_for(
            lambda: self.expected - gave_up <= self.stored_ids(),
            timeout,
            "every kept event stored",
            fail=False,
        )
        self.stop()
        rows, stored = self.stored()
        stored_ids = self.stored_ids() & self.expected
        redelivered = sum(int(n) for n in re.findall(r"stopped: .*?duplicates (\d+)", self.collector.text()))
        generated = len(self.expected)
        lost = len(self.expected - stored_ids - gave_up)
        if gave_up & stored_ids:
            note += f"; {len(gave_up & stored_ids)} dropped had reached the collector before their PUBACK"
        return Figures(
            scenario, generated, stored, len(gave_up), lost, rows - stored, redelivered, catch_up_s, note
        )  # fmt: skip


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, *, fail: bool = True) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            if fail:
                raise RuntimeError(f"gave up waiting {timeout_s:g} s for {what}")
            return
        time.sleep(0.05)


# -- the scenarios ----------------------------------------------------------------------------------------------
def broker_killed(rig: Rig) -> Figures:
    rig.start()
    rig.wait_stored(len(rig.expected) // 5)
    rig.broker.signal(signal.SIGKILL)
    killed = time.monotonic()
    time.sleep(rig.params.outage_s)
    # The outage lasts at least outage_s and until the stream is over, so all of it meets a dead broker.
    wait_for(rig.sensor_done, rig.params.timeout_s, "the sensor to finish the stream", fail=False)
    outage = time.monotonic() - killed
    spooled = rig.spool_figure("SELECT COUNT(*) FROM events WHERE acked_at IS NULL")
    caught_up = rig.restart(rig.broker)
    note = f"broker SIGKILLed for {outage:.0f} s, past the stream's end; {spooled} waited in the spool"
    return rig.figures("broker_killed", caught_up, note)


def collector_killed(rig: Rig) -> Figures:
    rig.start()
    rig.wait_stored(len(rig.expected) // 5)
    time.sleep(0.5)  # half the collector's flush interval: it holds a batch it has not stored yet
    rig.collector.signal(signal.SIGKILL)
    time.sleep(rig.params.down_s)
    caught_up = rig.restart(rig.collector)
    return rig.figures("collector_killed", caught_up, f"collector SIGKILLed, down {rig.params.down_s:g} s")


def sensor_killed(rig: Rig) -> Figures:
    rig.start()
    rig.wait_stored(len(rig.expected) // 5)
    # Freeze the broker a moment first, so that the sensor dies with events queued but unacknowledged.
    rig.broker.send(signal.SIGSTOP)
    time.sleep(1.0)
    rig.sensor.signal(signal.SIGKILL)
    made = len(rig.made_so_far())
    unacked = rig.spool_figure("SELECT COUNT(*) FROM events WHERE acked_at IS NULL")
    rig.broker.send(signal.SIGCONT)
    time.sleep(rig.params.down_s)
    caught_up = rig.restart(rig.sensor)
    note = f"sensor SIGKILLed after {made} events, {unacked} unacknowledged; down {rig.params.down_s:g} s"
    return rig.figures("sensor_killed", caught_up, note)


def spool_full(rig: Rig) -> Figures:
    rig.start()
    rig.wait_stored(len(rig.expected) // 5)
    rig.broker.signal(signal.SIGKILL)
    wait_for(rig.sensor_done, rig.params.timeout_s, "the sensor to finish the stream")
    time.sleep(min(rig.params.outage_s, 1.0))
    counted = rig.spool_figure("SELECT COALESCE(SUM(value), 0) FROM counters WHERE name LIKE 'dropped_%'")
    dropped = frozenset(r[0] for r in query(rig.spool, "SELECT event_id FROM dropped"))
    caught_up = rig.restart(rig.broker)
    counts, visits = (len(query(rig.db, f"SELECT 1 FROM {table}")) for table in ("counts", "visits"))
    note = f"spool bound {rig.params.spool_events} events, {counted} drops counted; stored {counts} counts, {visits} visits"
    return rig.figures("spool_full", caught_up, note, dropped)


def replay_lost_by_broker(rig: Rig, *, restart_sensor: bool = False) -> Figures:
    rig.broker.start()
    started = time.monotonic()
    wait_for(lambda: _listening(rig.port), 10, "the broker to listen")
    rig.collector.start()  # makes the collector's persistent session, then leaves: the broker queues for it
    wait_for(lambda: "collecting footfall/v1/+/+/+" in rig.collector.text(), 30, "the collector")
    rig.collector.signal(signal.SIGTERM)
    rig.sensor.start()
    wait_for(rig.sensor_done, rig.params.timeout_s, "the sensor to finish the stream")
    time.sleep(1.0)  # the broker's PUBACKs for the last window
    if restart_sensor:
        rig.sensor.signal(signal.SIGKILL)
    spooled = rig.spool_figure("SELECT COUNT(*) FROM events")
    rig.broker.signal(signal.SIGKILL)
    held_s = time.monotonic() - started
    rig.broker.start()
    wait_for(lambda: _listening(rig.port), 10, "the broker to listen again")
    if restart_sensor:
        rig.sensor.start()
    caught_up = rig.restart(rig.collector)
    note = (
        f"broker SIGKILLed {held_s:.0f} s after its start (autosave_interval 30 s) holding the whole stream"
        f" for an offline collector; {spooled} kept in the spool{'; sensor restarted' if restart_sensor else ''}"
    )
    return rig.figures(
        "replay_lost_by_broker" + ("_sensor_restarted" if restart_sensor else ""), caught_up, note
    )


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` on a database another process is writing ([] while it does not exist yet)."""
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=5)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()


SCENARIOS: dict[str, Callable[[Rig], Figures]] = {
    "broker_killed": broker_killed,
    "collector_killed": collector_killed,
    "sensor_killed": sensor_killed,
    "spool_full": spool_full,
    "replay_lost_by_broker": replay_lost_by_broker,
    "replay_lost_by_broker_sensor_restarted": lambda rig: replay_lost_by_broker(rig, restart_sensor=True),
}


def make_events(work: Path) -> Path:
    """The demo capture's events as JSON lines (the real sensor pipeline, one throwaway key)."""
    out = work / "events.jsonl"
    main = "from sensor.cli.main import main; main()"
    command = [sys.executable, "-c", main, "replay", str(DEMO), "--to", "jsonl", "--out", str(out)]
    command += ["--store", STORE, "--sensor", SENSOR]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    return out


def run(name: str, work: Path, events: Path, params: Params) -> Figures:
    work.mkdir(parents=True, exist_ok=True)
    rig = Rig(work, events, params, spool_events=params.spool_events if name == "spool_full" else None)
    try:
        return SCENARIOS[name](rig)
    finally:
        rig.stop()


def write_results(figures: list[Figures], header: str, path: Path = RESULTS) -> str:
    text = header + "\n" + "\n".join(f.line() for f in figures) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


# -- the sensor process ---------------------------------------------------------------------------------------
def sensor_main(config_path: Path, events_path: Path, rate: float) -> None:
    """Send the events through the real MqttSink at `rate` per second; events the spool had already go at once."""
    import logging

    from footfall.events import model_for_schema
    from sensor.config import load
    from sensor.publish.mqttsink import MqttSink

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sink = MqttSink.connect(load(config_path), "bench", time.time_ns(), wait_s=None, ack_timeout_s=3600)
    next_at = time.monotonic()
    for line in events_path.read_bytes().splitlines():
        model = model_for_schema(json.loads(line)["schema"])
        if model is None:
            raise SystemExit(f"{events_path}: unknown schema in {line[:80]!r}")
        queued = sink.spool.stats().totals.get("queued", 0)
        sink.send(model.model_validate_json(line))  # type: ignore[arg-type]  # one of the Event models
        if rate > 0 and sink.spool.stats().totals.get("queued", 0) > queued:  # new, not a resumed one
            next_at = max(next_at + 1 / rate, time.monotonic() - 1)
            time.sleep(max(0.0, next_at - time.monotonic()))
    print("generated all events", flush=True)
    sink.close()
    print("all events acknowledged", flush=True)


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with TemporaryDirectory(prefix="footfall-faults-") as tmp:
        yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["sensor"]:
        sensor_main(Path(args[1]), Path(args[2]), float(args[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage", type=float, default=60.0, help="broker outage, seconds (default 60)")
    parser.add_argument("--down", type=float, default=5.0, help="collector/sensor down time, seconds")
    parser.add_argument("--rate", type=float, default=5.0, help="sensor events per second (default 5)")
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="run these scenarios only")
    parser.add_argument("--work", type=Path, help="keep the processes' files here")
    opts = parser.parse_args(args)
    params = Params(outage_s=opts.outage, down_s=opts.down, rate=opts.rate)
    figures = []
    with _workdir(opts.work) as work:
        events = make_events(work)
        for name in opts.only or list(SCENARIOS):
            figures.append(run(name, work / name, events, params))
            print(figures[-1].line(), flush=True)
    header = (
        f"# python -m bench.faults --outage {params.outage_s:g} --down {params.down_s:g} --rate {params.rate:g}"
        f"  ({len(figures)} scenarios, demo capture, {time.strftime('%Y-%m-%d')})"
    )
    write_results(figures, header)
    return 0 if all(f.lost == 0 and f.duplicated == 0 for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
