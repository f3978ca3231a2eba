"""Retention: pseudonyms become random labels after pseudonyms_h, consent tokens and visits go on time,
aggregates stay, the report's figures survive, and what is dropped is gone from the database files."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from collector.cli.privacy import COMMANDS
from collector.config import CollectorConfig, ReportConfig, RetentionConfig
from collector.privacy import retention
from collector.reports import report as reports
from collector.storage.base import DeadLetter
from collector.storage.privacy import RegistryEntry, RetentionCounts
from collector.storage.sqlite import SqliteStore
from footfall.configfile import ConfigError, validate_model
from tests.conftest import Broker
from tests.test_report import DAY, count, h, the_day, visit

CONFIG = RetentionConfig()
T0 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
TOKEN_KEPT, TOKEN_GONE = "a" * 32, "b" * 32
cli = click.Group("footfall-collector", commands=list(COMMANDS))


def rows(db: SqliteStore) -> list[tuple[str, str, str, str | None, int]]:
    """(sensor, epoch, device, consent, pseudonym_dropped) of every visit, by start."""
    return db._db.execute(
        "SELECT sensor, epoch, device, consent, pseudonym_dropped FROM visits ORDER BY start_us, event_id"
    ).fetchall()


def consented(db: SqliteStore, token: str) -> None:
    db.registry_put([RegistryEntry("consent", token, "crm-1", T0, "crm")], T0)


def test_the_report_is_the_same_after_every_pseudonym_is_dropped() -> None:
    db = SqliteStore(":memory:")
    db.add(the_day())
    before = reports.to_dict(reports.for_store(db, "paris-01", DAY, DAY, ReportConfig()))
    done = retention.run(db, CONFIG, T0 + timedelta(days=9))
    assert done.counts.pseudonyms_dropped == 14 and done.counts.visits_deleted == 0
    after = reports.to_dict(reports.for_store(db, "paris-01", DAY, DAY, ReportConfig()))
    assert after == before
    old = {h(f"d{n}") for n in range(1, 10)}
    assert all(device not in old and dropped == 1 for _, _, device, _, dropped in rows(db))


def test_one_fresh_label_per_store_epoch_and_device_shared_by_the_stores_sensors() -> None:
    db = SqliteStore(":memory:")
    a = visit(T0, 60, device="d1")
    b = visit(T0 + timedelta(hours=2), 60, device="d1")  # the same device's second visit
    other_epoch = visit(T0 + timedelta(hours=3), 60, device="d1", epoch="e2")
    # The store's sensors share the epoch's pseudonyms (one seed), so the same phone heard by another
    # sensor keeps the same label and the report still merges it into one visitor after retention.
    other_sensor = visit(T0 + timedelta(hours=4), 60, device="d1", sensor="s2")
    db.add([a, b, other_epoch, other_sensor])
    done = retention.run(db, CONFIG, T0 + timedelta(days=2))
    labels = [device for _, _, device, _, _ in rows(db)]
    by_visit = dict(
        zip((a.event_id, b.event_id, other_epoch.event_id, other_sensor.event_id), labels, strict=True)
    )
    assert by_visit[a.event_id] == by_visit[b.event_id] == by_visit[other_sensor.event_id]
    assert by_visit[other_epoch.event_id] != by_visit[a.event_id]
    assert h("d1") not in labels
    assert all(len(label) == len(h("d1")) for label in labels)
    assert (done.counts.pseudonyms_dropped, done.counts.devices_relabelled) == (4, 2)


def test_a_due_devices_younger_visits_in_the_epoch_get_the_same_label_at_once() -> None:
    db = SqliteStore(":memory:")
    now = T0 + timedelta(days=1, hours=2)
    db.add([visit(T0, 60, device="d1"), visit(now - timedelta(hours=1), 60, device="d1")])
    db.add([visit(now - timedelta(minutes=50), 60, device="d2")])  # not due: left alone
    retention.run(db, CONFIG, now)
    (_, _, first, _, x), (_, _, second, _, y), (_, _, young, _, z) = rows(db)
    assert first == second != h("d1") and (x, y) == (1, 1)
    assert (young, z) == (h("d2"), 0)


def test_a_second_run_finds_nothing_left_to_do() -> None:
    db = SqliteStore(":memory:")
    db.add(the_day())
    retention.run(db, CONFIG, T0 + timedelta(days=9))
    labels = rows(db)
    again = retention.run(db, CONFIG, T0 + timedelta(days=9, hours=1))
    assert again.counts == RetentionCounts() and rows(db) == labels


def test_consent_tokens_stay_while_consent_stands_and_go_after_consent_days() -> None:
    db = SqliteStore(":memory:")
    consented(db, TOKEN_KEPT)
    db.add([
        visit(T0, 60, device="d1").model_copy(update={"consent": TOKEN_KEPT}),
        visit(T0, 60, device="d2").model_copy(update={"consent": TOKEN_GONE}),  # consent since withdrawn
    ])  # fmt: skip
    config = RetentionConfig(consent_days=30)
    done = retention.run(db, config, T0 + timedelta(days=2))
    assert [consent for *_, consent, _ in rows(db)] == [TOKEN_KEPT, None]
    assert done.counts.consent_tokens_cleared == 1
    assert [v.profile for v in db.consented_visits("paris-01", T0, T0 + timedelta(days=1))] == ["crm-1"]
    done = retention.run(db, config, T0 + timedelta(days=31))
    assert [consent for *_, consent, _ in rows(db)] == [None, None]
    assert done.counts.consent_tokens_cleared == 1


def test_visits_are_deleted_after_visits_days_and_the_counts_are_kept() -> None:
    db = SqliteStore(":memory:")
    db.add([visit(T0, 60), visit(T0 + timedelta(days=300), 60, device="d2"), count(T0, 2.0)])
    done = retention.run(db, CONFIG, T0 + timedelta(days=397))
    assert done.counts.visits_deleted == 1
    assert len(rows(db)) == 1
    assert [c.present for c in db.counts("paris-01", T0, T0 + timedelta(days=1))] == [2.0]


def test_rejected_payload_samples_go_with_the_pseudonyms() -> None:
    db = SqliteStore(":memory:")
    letter = DeadLetter(
        T0, "invalid", "footfall/v1/paris-01/s1/visit", "", 10, b'{"device":"0011223344556677"}'
    )
    db.dead_letter(
        [letter, DeadLetter(T0 + timedelta(days=2), "invalid", "t", "", 1, b"x")], {"invalid": 2}, 100
    )
    done = retention.run(db, CONFIG, T0 + timedelta(days=2))
    assert done.counts.dead_letters_deleted == 1
    assert [d.payload for d in db.dead_letters()] == [b"x"]
    assert db.rejections() == {"invalid": 2}  # the totals are aggregates: kept


def test_a_dry_run_gives_the_same_account_and_changes_nothing() -> None:
    db = SqliteStore(":memory:")
    db.add(the_day())
    consented(db, TOKEN_KEPT)
    before = rows(db)
    dry = retention.run(db, CONFIG, T0 + timedelta(days=400), dry_run=True)
    assert rows(db) == before and dry.dry_run
    real = retention.run(db, CONFIG, T0 + timedelta(days=400))
    assert dry.counts == real.counts and real.counts.visits_deleted == 14


def test_dropped_pseudonyms_are_gone_from_the_database_file_and_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    db = SqliteStore(path)
    devices = [f"x{n:03d}" for n in range(30)]  # h() makes 32-bit pseudonyms of these
    db.add([visit(T0 + timedelta(minutes=n), 60, device=d) for n, d in enumerate(devices)])
    pseudonyms = [h(d).encode() for d in devices]
    assert all(any(p in f.read_bytes() for f in tmp_path.iterdir()) for p in pseudonyms)
    retention.run(db, CONFIG, T0 + timedelta(days=2))
    files = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    db.close()
    files.update({f.name: f.read_bytes() for f in tmp_path.iterdir()})
    for name, data in files.items():
        assert not [p for p in pseudonyms if p in data], f"{name} still holds a dropped pseudonym"


def test_the_account_names_each_action_and_its_cutoff() -> None:
    db = SqliteStore(":memory:")
    db.add([visit(T0, 60)])
    done = retention.run(db, CONFIG, datetime(2024, 5, 3, tzinfo=UTC))
    assert done.line() == (
        "retention at 2024-05-03T00:00:00+00:00: 0 visits deleted (ended before 2023-04-03T00:00:00+00:00);"
        " 1 visits lost their pseudonym (ended before 2024-05-02T00:00:00+00:00); 1 devices got a random"
        " label; 0 consent tokens cleared; 0 rejected payload samples deleted"
    )
    assert done.to_dict()["counts"] == {
        "visits_deleted": 0, "pseudonyms_dropped": 1, "devices_relabelled": 1,
        "consent_tokens_cleared": 0, "dead_letters_deleted": 0,
    }  # fmt: skip


def test_retention_run_from_the_cli_with_dry_run_and_a_given_time(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    db = SqliteStore(path)
    db.add([visit(T0, 60)])
    db.close()
    args = ["retention", "run", "--db", str(path), "--at", "2024-05-03T00:00:00Z", "--format", "json"]
    result = CliRunner().invoke(cli, [*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    account = json.loads(result.output)
    assert account["dry_run"] and account["counts"]["pseudonyms_dropped"] == 1
    result = CliRunner().invoke(cli, args)
    assert json.loads(result.output)["counts"]["pseudonyms_dropped"] == 1
    result = CliRunner().invoke(cli, args)
    assert json.loads(result.output)["counts"]["pseudonyms_dropped"] == 0


def test_pseudonyms_cannot_outlive_the_visits() -> None:
    with pytest.raises(ConfigError, match=r"pseudonyms_h \(240 h\) must not exceed visits_days \(5 d\)"):
        validate_model(CollectorConfig, {"retention": {"pseudonyms_h": 240, "visits_days": 5}})


@pytest.mark.mqtt
def test_the_running_collector_applies_retention_on_its_schedule(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collector.ingest import service

    monkeypatch.setattr(service, "FIRST_RETENTION_S", 0.0)
    path = tmp_path / "f.db"
    db = SqliteStore(path)
    db.add([visit(T0, 60)])
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"port": broker.port, "client_id": "retention-test", "session_expiry_s": 0},
            "store": {"path": str(path)},
        }
    )
    later = (T0 + timedelta(days=2)).timestamp()
    collector = service.Collector(config, store=db, clock=lambda: later)
    collector.start()
    thread = threading.Thread(target=collector.wait, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if collector.last_retention is not None:
                break
            threading.Event().wait(0.05)
    finally:
        collector.request_stop()
        collector.stop()
    assert collector.last_retention is not None
    assert collector.last_retention.counts.pseudonyms_dropped == 1
    assert rows(db)[0][4] == 1
    db.close()
