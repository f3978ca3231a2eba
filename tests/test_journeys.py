"""A consented profile's journey: online events and store visits (all its devices, all stores) merged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from collector.cli.omni import COMMANDS
from collector.online import journeys
from collector.storage.base import Store, StoreVisit
from collector.storage.privacy import RegistryEntry
from collector.storage.sqlite import SqliteStore
from tests.pgserver import BACKENDS, open_backend, postgres_dsn, postgres_server  # noqa: F401
from tests.test_omnichannel import NOW, TOKENS, at, online, populate
from tests.test_report import PARIS

cli = click.Group("footfall-collector", commands=list(COMMANDS))


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The data set on each backend (SQLite; PostgreSQL when a server can be started here)."""
    store = open_backend(request, tmp_path)()
    populate(store)
    yield store
    store.close()


def test_the_timeline_merges_both_sources_by_time_across_devices(db: Store) -> None:
    journey = journeys.for_profile(db.profiles(), "dave")
    assert [(s.at, s.source) for s in journey.steps] == [
        (at(5, 2, 7), "store"),  # device D1
        (at(5, 2, 8), "online"),
        (at(5, 3, 11), "store"),  # device D2
    ]
    assert (journey.online_events, journey.store_visits, journey.stores) == (1, 2, ("paris-01",))
    assert journey.steps[1].type == "add_to_cart" and journey.steps[1].product == "sku-2"


def test_visits_of_every_store_and_kind_are_on_the_timeline(db: Store) -> None:
    journey = journeys.for_profile(db.profiles(), "carol")
    assert [(s.source, s.store, s.kind) for s in journey.steps] == [
        ("online", None, None),
        ("store", "lyon-02", "visitor"),
        ("store", "paris-01", "passerby"),
    ]


def test_a_profile_without_consent_has_no_journey_even_with_online_events(db: Store) -> None:
    with pytest.raises(journeys.JourneyError, match="profile 'erin' has no registered consent"):
        journeys.for_profile(db.profiles(), "erin")


def test_an_opt_out_removes_the_device_s_visits_from_the_journey(db: Store) -> None:
    db.registry_put([RegistryEntry("optout", TOKENS["D1"], "", at(5, 9, 12), "test")], NOW)
    journey = journeys.for_profile(db.profiles(), "dave")  # D2 still consents
    assert [(s.at, s.source) for s in journey.steps] == [(at(5, 2, 8), "online"), (at(5, 3, 11), "store")]


def test_an_online_event_at_the_same_instant_as_a_visit_comes_first() -> None:
    same = at(5, 1, 9)
    journey = journeys.timeline(
        "p", [online(1, "p", same, "web", "page_view")], [StoreVisit("s", "s1", same, same, 0.0, "visitor")]
    )
    assert [s.source for s in journey.steps] == ["online", "store"]


def test_renderings_show_local_times(db: Store) -> None:
    journey = journeys.for_profile(db.profiles(), "alice")
    data = journeys.to_dict(journey, PARIS)
    assert data["steps"][0] == {
        "at": "2024-05-01T09:00:00+02:00", "source": "online", "channel": "web", "type": "page_view",
        "product": None, "value": None,
    }  # fmt: skip
    assert data["stores"] == ["lyon-02", "paris-01"]
    table = journeys.render_table(journey, PARIS)
    assert "2024-05-01 15:00:00  store   visitor visit at paris-01 (sensor s1), 30.0 min" in table
    assert "app purchase, product sku-1, value 59.90" in table


def test_the_journeys_command_prints_the_timeline_or_refuses(tmp_path: Path) -> None:
    db = SqliteStore(tmp_path / "f.db")
    populate(db)
    db.close()
    base = ["--db", str(tmp_path / "f.db")]
    ok = CliRunner().invoke(cli, ["journeys", "--profile", "alice", "--format", "json", *base])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["store_visits"] == 2
    refused = CliRunner().invoke(cli, ["journeys", "--profile", "erin", *base])
    assert refused.exit_code == 1 and "has no registered consent" in refused.output
