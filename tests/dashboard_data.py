"""What the dashboard tests share: a store filled from the demo replay, accounts, a served app.

Store `demo` holds the shipped capture replayed by the real sensor CLI and stored through the
collector's ingestor, plus sensor statuses (the replay publishes none); store `paris-01` holds the
omnichannel data set of tests/test_omnichannel.py (consents, profiles, online events).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn

from collector.api.app import create_app
from collector.config import CollectorConfig
from collector.ingest.ingestor import Ingestor
from collector.online.triggers import Triggers, logged_in
from collector.storage.base import Store
from collector.storage.dashboard import put_calibration
from collector.web.accounts import ALL, open_accounts
from footfall.calibration import CalibrationReport, CalibrationWindow, Fit
from footfall.events import CountEvent, StatusEvent, event_id
from tests.conftest import REPO, free_port
from tests.test_api import TOKEN, wait_listening
from tests.test_omnichannel import NOW, VISITS, populate

BIN = Path(sys.executable).parent
DEMO = REPO / "sensor" / "demo" / "demo-store.pcap"
DEMO_DAY = "2024-03-14"
# dana: viewer of demo; olga: admin of every store; tess: viewer of demo, for the throttling test.
PASSWORDS = {"dana": "dana-viewer-pw", "olga": "olga-admin-pw1", "tess": "tess-viewer-pw"}


def replay_demo(directory: Path) -> Path:
    """The demo capture as the sensor's JSON lines (seeded, so the pseudonyms are the same every run)."""
    seed, out = directory / "demo.seed", directory / "demo.jsonl"
    sensor = directory / "sensor.yaml"
    sensor.write_text("site:\n  store: demo\n  sensor: door-1\n")
    run = [str(BIN / "footfall-sensor")]
    subprocess.run([*run, "keys", "seed", "--store", "demo", "--out", str(seed), "--tz", "Europe/Paris",
                    "--at", "2024-01-01T00:00"], check=True, capture_output=True)  # fmt: skip
    subprocess.run([*run, "replay", str(DEMO), "--config", str(sensor), "--seed", str(seed), "--to", "jsonl",
                    "--out", str(out)], check=True, capture_output=True)  # fmt: skip
    return out


def status(sensor: str, state: str, at: datetime, **fields: object) -> StatusEvent:
    return StatusEvent.model_validate(
        {
            "event_id": event_id("status", "demo", sensor, state, at),
            "store": "demo",
            "sensor": sensor,
            "epoch": "20240314T0300Z",
            "state": state,
            "at": at,
            "version": "0.1.0",
            **fields,
        }
    )


def count(at: datetime, present: float) -> CountEvent:
    return CountEvent.model_validate(
        {
            "event_id": event_id("count", "demo", "door-1", at),
            "store": "demo",
            "sensor": "door-1",
            "epoch": "20240314T0300Z",
            "start": at,
            "end": at + timedelta(minutes=5),
            "present": present,
            "visitors": 0,
            "passersby": 0,
            "visitors_present": 0,
            "new_visitors": 0,
            "returning_visitors": 0,
            "fixed_devices": 0,
            "frames": 0,
            "frames_randomized": 0,
            "addresses": 0,
            "addresses_randomized": 0,
            "devices": 0,
        }
    )


def _fit(mae: float, factor: float) -> Fit:
    return Fit(inside_rssi_dbm=-67, holdover_s=300, site_factor=factor, mae=mae, mape=None)


# A stored `calibrate counts --report` of door-1 (the demo capture comes with no hand count to fit).
CALIBRATION = CalibrationReport(
    store="demo",
    sensor="door-1",
    made_at=datetime(2024, 3, 14, 20, tzinfo=UTC),
    before=_fit(1.5, 1.34),
    fitted=_fit(0.5, 1.8),
    windows=tuple(
        CalibrationWindow(
            start=datetime(2024, 3, 14, 9, tzinfo=UTC) + i * timedelta(minutes=15),
            truth=t,
            before=t / 1.4,
            fitted=t * 0.95,
        )
        for i, t in enumerate((2.0, 4.0, 6.0, 5.0, 3.0))
    ),
)


def fill(db: Store, jsonl: Path) -> None:
    config = CollectorConfig()
    ingestor = Ingestor(db, config.ingest, config.mqtt.topic_prefix)
    for number, line in enumerate(jsonl.read_bytes().splitlines(), start=1):
        ingestor.handle_line(line, source=f"demo:{number}")
    ingestor.flush()
    assert ingestor.stats.rejected == {} or not sum(ingestor.stats.rejected.values())
    evening = datetime(2024, 3, 14, 19, 0, tzinfo=UTC)
    db.add(
        [
            status(
                "door-1",
                "online",
                evening,
                frames_per_s=12.5,
                drops=3,
                spool_depth=0,
                frames=13065,
                signal_ref_dbm=-61.0,
                signal_offset_db=9.5,
                signal_drift=True,
            ),
            status("door-2", "online", evening - timedelta(hours=2)),
            status("door-2", "offline", evening - timedelta(hours=1)),  # its last will
        ]
    )
    populate(db)
    # The collector's triggers for those visits, sent (to nowhere: the MQTT side is test_triggers.py's)
    # and kept in the trigger log as the service does.
    sent = Triggers(
        db.profiles(), lambda topic, body: None, "footfall/v1", clock=lambda: NOW, log=logged_in(db)
    )
    assert sent.handle(VISITS)
    put_calibration(db, CALIBRATION)
    accounts = open_accounts(db)
    accounts.add("dana", PASSWORDS["dana"], "viewer", ["demo"], NOW)
    accounts.add("olga", PASSWORDS["olga"], "admin", [ALL], NOW)
    accounts.add("tess", PASSWORDS["tess"], "viewer", ["demo"], NOW)


@contextmanager
def served(db: Store, clock: object = None) -> Iterator[str]:
    """The collector's app (API and dashboard) on a free loopback port; yields its base URL."""
    kwargs = {"clock": clock} if clock is not None else {}
    app = create_app(CollectorConfig(), db, TOKEN, **kwargs)  # type: ignore[arg-type]
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_listening(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
