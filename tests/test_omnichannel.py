"""Omnichannel KPIs over a constructed data set, checked against figures worked out by hand.

Store paris-01, period 2024-05-01..02 in Europe/Paris (UTC+2), N = 2 days; times below are local.
Consents: alice (device A), bob (B), carol (C), dave (two devices, D1 and D2). erin has no consent.

    online                                       store visits (visitor unless said)
    bob   email page_view   04-29 12:00          bob   B   05-01 10:00, 10 min
    erin  web   page_view   05-01 08:00          anon      05-01 11:00
    alice web   page_view   05-01 09:00          erin  E   05-01 12:00 (token not registered)
    alice app   purchase    05-02 10:00          alice A   05-01 15:00, 30 min
    dave  app   add_to_cart 05-02 08:00          alice A   05-01 18:00 at lyon-02 (another store)
    carol web   product_view 05-02 20:00         dave  D1  05-02 07:00
    bob   web   purchase    05-04 09:00          anon      05-02 16:00
                                                 dave  D2  05-03 11:00 (after the period)
                                                 carol C   05-03 10:00 at lyon-02
                                                 carol C   05-04 12:00 passerby

Visitor visits in the period: bob, anon, erin, alice (05-01: 4), dave D1, anon (05-02: 2) = 6;
recognised: bob, alice, dave = 3 (05-01: 2, 05-02: 1) → share 50 %.
Web-to-store: consented profiles online in the period: alice, carol, dave (bob's event is before it,
erin has no consent) = 3; alice came 6 h after, dave (D2) 27 h after, carol only to lyon-02 and as a
passerby → 2 of 3. Store-to-web: alice's visit (ended 15:30) then her purchase 05-02 10:00 → yes; bob's
purchase is 46 h 50 min after his visit ended, more than 2 days → no; dave bought nothing → 1 of 3.
Lag: alice 09:00 → 15:00 = 6 h; bob 04-29 12:00 → 05-01 10:00 = 46 h (within 2 days); dave's only event
is after his D1 visit → median of 6 h and 46 h = 26 h = 93 600 s, over 2 visits.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from collector.cli.omni import COMMANDS
from collector.config import ReportConfig
from collector.online import kpis as omnichannel
from collector.online.profiles import OnlineEvent, Profile
from collector.storage.base import Store
from collector.storage.privacy import RegistryEntry
from collector.storage.sqlite import SqliteStore
from tests.pgserver import BACKENDS, open_backend, postgres_dsn, postgres_server  # noqa: F401
from tests.test_report import PARIS, local, visit

FIRST, LAST = date(2024, 5, 1), date(2024, 5, 2)
NOW = datetime(2024, 5, 10, 12, tzinfo=UTC)
TOKENS = {
    "A": "a" * 32,
    "B": "b" * 32,
    "C": "c" * 32,
    "D1": "d1" * 16,
    "D2": "d2" * 16,
    "E": "e" * 32,
}
CONSENTS = {"A": "alice", "B": "bob", "C": "carol", "D1": "dave", "D2": "dave"}  # E: erin never consented


def at(month: int, day: int, hh: int, mm: int = 0) -> datetime:
    return local(date(2024, month, day), hh, mm)


def online(n: int, profile: str, when: datetime, channel: str, type_: str, **more: Any) -> OnlineEvent:
    return OnlineEvent.model_validate(
        {"id": f"ev-{n}", "profile_id": profile, "at": when, "channel": channel, "type": type_, **more}
    )


def consented_visit(
    device: str | None, when: datetime, minutes: float = 20, kind: str = "visitor", **more: Any
) -> Any:
    name = device or f"anon{when:%d%H}"
    event = visit(when, minutes * 60, kind, device=name.lower(), **more)
    return event.model_copy(update={"consent": TOKENS[device] if device else None})


ONLINE = [
    online(1, "bob", at(4, 29, 12), "email", "page_view"),
    online(2, "erin", at(5, 1, 8), "web", "page_view"),
    online(3, "alice", at(5, 1, 9), "web", "page_view"),
    online(4, "alice", at(5, 2, 10), "app", "purchase", product="sku-1", value=59.9),
    online(5, "dave", at(5, 2, 8), "app", "add_to_cart", product="sku-2"),
    online(6, "carol", at(5, 2, 20), "web", "product_view", product="sku-3"),
    online(7, "bob", at(5, 4, 9), "web", "purchase", value=12.0),
]
VISITS = [
    consented_visit("B", at(5, 1, 10), 10),
    consented_visit(None, at(5, 1, 11)),
    consented_visit("E", at(5, 1, 12)),
    consented_visit("A", at(5, 1, 15), 30),
    consented_visit("A", at(5, 1, 18), store="lyon-02"),
    consented_visit("D1", at(5, 2, 7)),
    consented_visit(None, at(5, 2, 16)),
    consented_visit("D2", at(5, 3, 11)),
    consented_visit("C", at(5, 3, 10), store="lyon-02"),
    consented_visit("C", at(5, 4, 12), 1, "passerby"),
]


def populate(db: Store) -> None:
    """The data set above, in a real store: visits, consents, profiles and online events."""
    db.add(VISITS)
    entries = [RegistryEntry("consent", TOKENS[d], p, at(4, 1, 12), "test") for d, p in CONSENTS.items()]
    assert db.registry_put(entries, NOW).applied
    profiles = db.profiles()
    profiles.put_profiles([Profile(id=p) for p in ("alice", "bob", "carol", "dave", "erin")], NOW)
    assert profiles.add_online_events(ONLINE) == len(ONLINE)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The data set on each backend (SQLite; PostgreSQL when a server can be started here)."""
    store = open_backend(request, tmp_path)()
    populate(store)
    yield store
    store.close()


def kpis(db: Store, days: int = 2) -> omnichannel.Kpis:
    return omnichannel.for_store(
        db, db.profiles(), "paris-01", FIRST, LAST, ReportConfig(timezone="Europe/Paris"), days
    )


def test_recognised_share_counts_visitor_visits_whose_token_is_registered(db: Store) -> None:
    k = kpis(db)
    assert (k.visitor_visits, k.recognised_visits, k.recognised_profiles) == (6, 3, 3)
    assert k.recognised_share == 0.5


def test_web_to_store_counts_profiles_online_in_the_period_that_came_within_n_days(db: Store) -> None:
    k = kpis(db)
    assert (k.web_to_store_profiles, k.online_profiles) == (2, 3)
    assert k.web_to_store_rate == pytest.approx(2 / 3)


def test_store_to_web_counts_visits_followed_by_a_purchase_within_n_days_of_their_end(
    db: Store,
) -> None:
    k = kpis(db)
    assert (k.store_to_web_visits, k.recognised_visits) == (1, 3)
    assert k.store_to_web_rate == pytest.approx(1 / 3)


def test_median_lag_runs_from_the_last_online_event_within_n_days_to_the_visit(db: Store) -> None:
    k = kpis(db)
    assert (k.lag_visits, k.median_lag_s) == (2, 93_600)


def test_daily_rows_set_footfall_beside_recognised_visits(db: Store) -> None:
    assert [(d.day, d.visitors, d.recognised, d.recognised_profiles) for d in kpis(db).daily] == [
        (date(2024, 5, 1), 4, 2, 2),
        (date(2024, 5, 2), 2, 1, 1),
    ]


def test_a_longer_window_takes_in_later_visits_and_purchases(db: Store) -> None:
    k = kpis(db, days=3)  # bob's purchase is now in time; carol only passed paris-01 by
    assert (k.web_to_store_profiles, k.store_to_web_visits) == (2, 2)
    one = kpis(db, days=1)  # dave's D2 visit is 27 h after his event; bob's event 46 h before his visit
    assert (one.web_to_store_profiles, one.lag_visits, one.median_lag_s) == (1, 1, 21_600)


def test_an_opt_out_takes_the_device_out_of_every_kpi(db: Store) -> None:
    db.registry_put([RegistryEntry("optout", TOKENS["A"], "", at(5, 9, 12), "test")], NOW)
    k = kpis(db)
    assert (k.recognised_visits, k.web_to_store_profiles, k.store_to_web_visits, k.lag_visits) == (2, 1, 0, 1)


def test_the_pure_build_refuses_a_window_under_a_day() -> None:
    with pytest.raises(ValueError, match="days must be at least 1, got 0"):
        omnichannel.build("s", FIRST, LAST, PARIS, 0, visits=[], recognised=[], online=[])


def test_renderings_carry_the_same_figures(db: Store) -> None:
    k = kpis(db)
    data = omnichannel.to_dict(k)
    assert data["web_to_store"] == {"rate": pytest.approx(2 / 3), "profiles": 2, "online_profiles": 3}
    assert data["median_lag_s"] == 93_600 and data["recognised"]["share"] == 0.5
    table = omnichannel.render_table(k)
    assert "66.7%: 2 of 3" in table and "33.3%: 1 of 3" in table and "26.0 h" in table


def test_the_kpis_command_prints_them_for_the_given_days(tmp_path: Path) -> None:
    db = SqliteStore(tmp_path / "f.db")
    populate(db)
    db.close()
    cli = click.Group("footfall-collector", commands=list(COMMANDS))
    result = CliRunner().invoke(
        cli,
        ["kpis", "--store", "paris-01", "--from", "2024-05-01", "--to", "2024-05-02", "--days", "2",
         "--db", str(tmp_path / "f.db"), "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"median_lag_s": 93600' in result.output
    unknown = CliRunner().invoke(cli, ["kpis", "--store", "nowhere", "--db", str(tmp_path / "f.db")])
    assert unknown.exit_code == 1 and "no events for store 'nowhere'" in unknown.output


def test_times_are_compared_in_utc_whatever_the_offset_given() -> None:
    shifted = online(9, "x", at(5, 1, 9).astimezone(PARIS), "web", "page_view")
    assert shifted.at == at(5, 1, 9) and shifted.at.utcoffset() == timedelta(0)
