"""`footfall-collector` through CliRunner: ingest, report formats, schema, and one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli.main import main
from collector.config import CollectorConfig, load
from footfall.broker import broker_settings
from footfall.events import json_schemas
from tests.conftest import REPO
from tests.test_report import DAY, the_day


def invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--log-level", "error", *map(str, args)])
    return result.exit_code, result.output


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The hand-counted day of tests/test_report.py, stored through `ingest` with one bad line."""
    lines = [e.to_json() for e in the_day()]
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_bytes(b"\n".join([*lines, b"", b"{not json", lines[0]]) + b"\n")
    path = tmp_path / "f.db"
    code, out = invoke("ingest", jsonl, "--db", path)
    assert code == 0, out
    assert out == (
        f"{jsonl}: {len(lines) + 2} lines: received {len(lines) + 2}, stored {len(lines)}, duplicates 1, "
        "pending 0, rejected 1 (not_json 1)\n"
    )
    return path


def test_ingest_strict_fails_when_a_line_was_rejected(tmp_path: Path) -> None:
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_bytes(b"[]\n")
    code, out = invoke("ingest", jsonl, "--db", tmp_path / "f.db", "--strict")
    assert code == 1
    assert out.splitlines()[-1] == "Error: 1 lines rejected"


def test_report_table_for_the_day(db: Path) -> None:
    code, out = invoke(
        "report", "--store", "paris-01", "--db", db, "--from", "2024-05-01", "--to", "2024-05-01"
    )
    assert code == 0, out
    assert out.startswith("Footfall report: store paris-01, 2024-05-01 (Europe/Paris)\n")
    assert "2024-05-01  09:00          2         2    50.0%      3.5\n" in out


def test_report_without_dates_covers_the_days_with_data(db: Path) -> None:
    code, out = invoke("report", "--store", "paris-01", "--db", db, "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    # The event at 00:30 on 2 May (local) extends the data to that day.
    assert (data["from"], data["to"]) == ("2024-05-01", "2024-05-02")
    assert data["totals"]["visitors"] == 6


def test_report_csv_and_json_agree(db: Path) -> None:
    args = ("report", "--store", "paris-01", "--db", db, "--from", str(DAY), "--to", str(DAY))
    _, as_csv = invoke(*args, "--format", "csv")
    _, as_json = invoke(*args, "--format", "json")
    total = list(csv.DictReader(io.StringIO(as_csv)))[-1]
    totals = json.loads(as_json)["totals"]
    assert (
        (int(total["visitors"]), int(total["passersby"]))
        == (totals["visitors"], totals["passersby"])
        == (5, 5)
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--from", "2024-13-01"),
            "Invalid value for '--from': '2024-13-01' is not a date of the form YYYY-MM-DD",
        ),
        (
            ("--to", "01/05/2024"),
            "Invalid value for '--to': '01/05/2024' is not a date of the form YYYY-MM-DD",
        ),
        (
            ("--from", "2024-05-03", "--to", "2024-05-01"),
            "Invalid value for '--from'/'--to': --from 2024-05-03 is after",
        ),
    ],
)
def test_bad_dates_are_one_line_usage_errors(db: Path, args: tuple[str, ...], message: str) -> None:
    code, out = invoke("report", "--store", "paris-01", "--db", db, *args)
    assert code == 2
    assert message in out.splitlines()[-1]


def test_a_missing_database_is_named_not_created(tmp_path: Path) -> None:
    code, out = invoke("report", "--store", "paris-01", "--db", tmp_path / "none.db")
    assert (code, out) == (1, f"Error: no database at {tmp_path / 'none.db'}\n")
    assert not (tmp_path / "none.db").exists()


def test_an_unknown_store_lists_the_known_ones(db: Path) -> None:
    code, out = invoke("report", "--store", "pari-01", "--db", db)
    assert (code, out) == (
        1,
        f"Error: no events for store 'pari-01' in {db} (stores there: lyon-02, paris-01)\n",
    )


def test_a_misspelt_config_key_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("store:\n  path: f.db\nreport:\n  timezon: Europe/Paris\n")
    code, out = invoke("report", "--store", "paris-01", "--config", cfg)
    assert (code, out) == (
        1,
        f"Error: {cfg}:4: unknown key 'report.timezon': not a setting here (check the spelling)\n",
    )


def test_a_bad_config_value_names_key_value_and_expectation(tmp_path: Path) -> None:
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("report:\n  timezone: Paris/Europe\n  dwell_edges_min: [5, 5]\n")
    code, out = invoke("run", "--config", cfg)
    assert code == 1
    assert out.splitlines() == [
        f"Error: {cfg}:2: report.timezone = 'Paris/Europe': Value error, unknown time zone 'Paris/Europe' "
        "(use an IANA name such as Europe/Paris)",
        f"{cfg}:3: report.dwell_edges_min = [5, 5]: Value error, edges must increase, got 5 after 5",
    ]


def test_db_and_config_together_are_refused(db: Path, tmp_path: Path) -> None:
    code, out = invoke("report", "--store", "paris-01", "--db", db, "--config", tmp_path / "c.yaml")
    assert code == 2
    assert "give --db or --config, not both" in out


def test_run_names_the_broker_it_cannot_reach(tmp_path: Path) -> None:
    cfg = tmp_path / "collector.yaml"
    cfg.write_text(f"mqtt:\n  port: 1\n  connect_timeout_s: 0.5\nstore:\n  path: {tmp_path / 'f.db'}\n")
    result = CliRunner().invoke(main, ["--log-level", "error", "run", "--config", str(cfg)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no connection to mqtt://127.0.0.1:1 within 0.5 s")


def test_schema_json_is_the_events_json_schema() -> None:
    code, out = invoke("schema")
    assert code == 0
    assert json.loads(out) == json_schemas()


def test_schema_markdown_has_a_table_per_event_with_every_field() -> None:
    code, out = invoke("schema", "--format", "markdown")
    assert code == 0
    for name, spec in json_schemas().items():
        assert f"### `{name}`\n" in out
        for field in spec["properties"]:
            assert f"\n| `{field}` | " in out
    assert "| `frames` | integer (≥ 0) |" in out
    assert '| `kind` | `"visitor"` or `"passerby"` or `"fixed"` |' in out


def test_the_shipped_example_config_is_valid_and_equals_the_defaults() -> None:
    assert load(REPO / "config" / "collector.yaml") == CollectorConfig()


def test_the_mqtt_password_comes_from_its_file_without_the_newline(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    config = CollectorConfig.model_validate({"mqtt": {"username": "collector", "password_file": str(secret)}})
    settings = broker_settings(
        config.mqtt, config.mqtt.client_id, session_expiry_s=config.mqtt.session_expiry_s
    )
    assert (settings.username, settings.password, settings.session_expiry_s) == ("collector", "s3cret", 3600)
    assert "s3cret" not in repr(settings)


def test_an_unreadable_password_file_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "collector.yaml"
    cfg.write_text(f"mqtt:\n  password_file: {tmp_path / 'nope'}\nstore:\n  path: {tmp_path / 'f.db'}\n")
    code, out = invoke("run", "--config", cfg)
    assert (code, out) == (
        1,
        f"Error: {tmp_path / 'nope'}: cannot read mqtt.password_file: No such file or directory\n",
    )
    assert not (tmp_path / "f.db").exists()
