"""Profiles and online events: the models, the SQLite storage and all-or-nothing file imports."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from collector.cli.omni import COMMANDS
from collector.online.profile_files import read_records
from collector.online.profiles import OnlineEvent, Profile, reason
from collector.storage.sqlite import SqliteStore

NOW = datetime(2024, 5, 10, 12, tzinfo=UTC)
cli = click.Group("footfall-collector", commands=list(COMMANDS))


def event(**change: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "ev-1", "profile_id": "p-1", "at": "2024-05-01T09:00:00+02:00", "channel": "web",
        "type": "purchase", "product": "sku-1", "value": 19.5,
    }  # fmt: skip
    return {**base, **change}


def test_a_profile_keeps_its_segments_sorted_once_and_refuses_unknown_fields() -> None:
    p = Profile.model_validate({"id": "p-1", "segments": ["vip", "new", "vip"], "attributes": {"tier": 2}})
    assert p.segments == ("new", "vip") and p.attributes == {"tier": 2}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Profile.model_validate({"id": "p-1", "email": "x@example.org"})


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"id": "3c22fb12ab9f"}, "id"),
        ({"id": "p-1", "attributes": {"device": "3C-22-FB-12-AB-9F"}}, "attributes"),
        ({"id": "has space"}, "id"),
    ],
)
def test_a_mac_shaped_or_malformed_value_is_refused_without_being_repeated(
    data: dict[str, object], where: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Profile.model_validate(data)
    text = reason(caught.value)
    assert text.startswith(where) and "3c22" not in text.lower() and "has space" not in text


def test_an_online_event_needs_an_offset_a_known_channel_and_type_and_no_negative_value() -> None:
    assert OnlineEvent.model_validate(event()).at == datetime(2024, 5, 1, 7, tzinfo=UTC)
    for bad, field in (
        ({"at": "2024-05-01T09:00:00"}, "at"),
        ({"channel": "sms"}, "channel"),
        ({"type": "refund"}, "type"),
        ({"value": -1}, "value"),
    ):
        with pytest.raises(ValidationError) as caught:
            OnlineEvent.model_validate(event(**bad))
        assert reason(caught.value).startswith(field)


def test_profiles_are_replaced_whole_and_counted_by_what_changed(tmp_path: Path) -> None:
    db = SqliteStore(tmp_path / "f.db")
    store = db.profiles()
    first = store.put_profiles([Profile(id="a", segments=("x",)), Profile(id="b")], NOW)
    again = store.put_profiles([Profile(id="a", segments=("y",)), Profile(id="b")], NOW)
    assert (first.added, again.updated, again.unchanged) == (2, 1, 1)
    assert store.profile("a") == Profile(id="a", segments=("y",))
    assert store.profile("nobody") is None


def test_an_online_event_sent_twice_is_stored_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "f.db").profiles()
    e = OnlineEvent.model_validate(event())
    assert (store.add_online_events([e]), store.add_online_events([e])) == (1, 0)
    assert store.online_events("p-1") == [e]


def test_a_csv_file_is_read_with_extra_columns_as_attributes_and_bad_lines_named() -> None:
    text = "id,segments,tier,city\np-1,vip;new,gold,Lyon\np 2,,,\np-3,,,\np-1,,,\n"
    parsed = read_records(io.StringIO(text), Profile, "csv", NOW)
    assert [r.id for r in parsed.records] == ["p-1", "p-3", "p-1"]
    assert parsed.records[0].attributes == {"tier": "gold", "city": "Lyon"}
    assert parsed.records[0].segments == ("new", "vip")
    assert [(b.line, b.reason.split(":")[0]) for b in parsed.bad] == [(3, "id"), (5, "id")]
    assert "also given at 2" in parsed.bad[1].reason


def test_a_json_lines_file_names_unparsable_and_future_lines() -> None:
    future = (NOW + timedelta(days=2)).isoformat()
    lines = [json.dumps(event()), "{not json", "[1]", json.dumps(event(id="ev-2", at=future)), ""]
    parsed = read_records(io.StringIO("\n".join(lines)), OnlineEvent, "jsonl", NOW)
    assert [b.line for b in parsed.bad] == [2, 3, 4]
    assert (
        parsed.bad[0].reason.startswith("not JSON")
        and "more than a day in the future" in parsed.bad[2].reason
    )


def test_an_import_with_one_bad_row_stores_nothing_and_lists_every_bad_line(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    good = tmp_path / "events.jsonl"
    good.write_text(json.dumps(event()) + "\n" + json.dumps(event(id="ev-2", type="page_view")) + "\n")
    bad = tmp_path / "more.csv"
    bad.write_text("id,profile_id,at,channel,type,product,value\nev-3,p-1,2024-05-01T10:00:00Z,web,purchase,,3\n"
                   "ev-4,p-1,2024-05-01T10:00:00Z,fax,purchase,,\nev-5,p-1,yesterday,web,page_view,,\n")  # fmt: skip
    result = CliRunner().invoke(cli, ["events", "import", str(bad), "--db", str(db)])
    assert result.exit_code == 1
    assert f"{bad}:3: channel" in result.output and f"{bad}:4: at" in result.output
    assert "2 bad rows: nothing stored" in result.output
    assert not db.exists() or SqliteStore(db).profiles().online_events("p-1") == []
    ok = CliRunner().invoke(cli, ["events", "import", str(good), "--db", str(db)])
    assert ok.exit_code == 0 and "2 online events: 2 new, 0 already stored" in ok.output
    again = CliRunner().invoke(cli, ["events", "import", str(good), "--db", str(db)])
    assert "0 new, 2 already stored" in again.output


def test_the_profiles_import_command_reports_added_and_updated(tmp_path: Path) -> None:
    db, file = tmp_path / "f.db", tmp_path / "p.csv"
    file.write_text("id,segments,tier\np-1,vip,gold\np-2,,\n")
    first = CliRunner().invoke(cli, ["profiles", "import", str(file), "--db", str(db)])
    assert first.exit_code == 0 and "2 profiles: 2 added, 0 updated, 0 unchanged" in first.output
    file.write_text("id,segments,tier\np-1,vip,silver\np-2,,\n")
    second = CliRunner().invoke(cli, ["profiles", "import", str(file), "--db", str(db)])
    assert "1 added" not in second.output and "0 added, 1 updated, 1 unchanged" in second.output


def test_a_file_of_unknown_suffix_needs_a_format(tmp_path: Path) -> None:
    file = tmp_path / "p.txt"
    file.write_text('{"id": "p-1"}\n')
    refused = CliRunner().invoke(cli, ["profiles", "import", str(file), "--db", str(tmp_path / "f.db")])
    assert refused.exit_code == 2 and "give --format csv or jsonl" in refused.output
    ok = CliRunner().invoke(
        cli, ["profiles", "import", str(file), "--format", "jsonl", "--db", str(tmp_path / "f.db")]
    )
    assert ok.exit_code == 0, ok.output


def test_erasing_a_profile_deletes_it_and_its_online_events_only(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    store = SqliteStore(db).profiles()
    store.put_profiles([Profile(id="p-1"), Profile(id="p-2")], NOW)
    store.add_online_events(
        [OnlineEvent.model_validate(event()), OnlineEvent.model_validate(event(id="ev-9", profile_id="p-2"))]
    )
    result = CliRunner().invoke(cli, ["profiles", "erase", "p-1", "--db", str(db)])
    assert result.exit_code == 0 and "1 profile and 1 online events erased" in result.output
    assert store.profile("p-1") is None and store.online_events("p-1") == []
    assert store.profile("p-2") is not None and len(store.online_events("p-2")) == 1
    again = CliRunner().invoke(cli, ["profiles", "erase", "p-1", "--db", str(db)])
    assert again.exit_code == 1 and "no profile or online event for 'p-1'" in again.output
