"""The storage interface on both backends: SQLite (default) and a real PostgreSQL server.

Each test runs once per backend; the PostgreSQL cases skip with the reason when no server can be
started here. Figures are the same as the SQLite-only tests in test_collector_store.py and
test_retention.py, so a backend that differs shows up as a difference here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.online.profiles import OnlineEvent, Profile
from collector.storage.base import DeadLetter, Store, StoreError, migrations
from collector.storage.privacy import PutOutcome, RegistryEntry, RetentionCutoffs
from footfall.events import Event
from tests.pgserver import BACKENDS, open_backend, postgres_dsn, postgres_server  # noqa: F401
from tests.test_report import count, status, visit

T0 = datetime(2024, 5, 1, 8, tzinfo=UTC)
TOKEN_A, TOKEN_B = "a" * 32, "b" * 32


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture(params=BACKENDS)
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    return open_backend(request, tmp_path)


@pytest.fixture
def store(reopen: Callable[[], Store]) -> Iterator[Store]:
    db = reopen()
    yield db
    db.close()


def test_every_migration_is_applied_once_and_reopening_applies_nothing(reopen: Callable[[], Store]) -> None:
    first = reopen()
    version = first.schema_version()  # type: ignore[attr-defined]
    first.close()
    again = reopen()
    assert version == again.schema_version() == max(m.version for m in migrations()) == 10  # type: ignore[attr-defined]
    again.close()


def test_add_counts_only_new_events_so_a_resend_is_stored_once(store: Store) -> None:
    events: list[Event] = [visit(at(0), 600), visit(at(1), 60, "passerby", device="d2"), count(at(0), 1.5),
                           status(at(0), sensor="s1")]  # fmt: skip
    assert store.add(events) == 4
    assert store.add(events) == 0
    assert store.add([events[0], events[0], visit(at(2), 30, device="d3")]) == 1
    assert len(store.visits("paris-01", at(-60), at(60))) == 3


def test_period_queries_answer_per_store_in_aware_utc(store: Store) -> None:
    store.add([count(at(0), 2.0), count(at(5), 3.0, sensor="s2"), visit(at(20), 60), status(at(30), sensor="s9"),
               visit(at(500), 60, store="lyon")])  # fmt: skip
    assert [(c.sensor, c.start, c.present) for c in store.counts("paris-01", at(0), at(60))] == [
        ("s1", at(0), 2.0),
        ("s2", at(5), 3.0),
    ]
    (row,) = store.visits("paris-01", at(0), at(60))
    assert (row.start, row.end, row.dwell_s, row.kind) == (at(20), at(21), 60.0, "visitor")
    assert store.sensors("paris-01", at(0), at(60)) == ["s1", "s2", "s9"]
    assert store.stores() == ["lyon", "paris-01"]
    assert store.extent("paris-01") == (at(0), at(20)) and store.extent("nowhere") is None


def test_the_dead_letter_sample_keeps_the_newest_and_totals_keep_everything(store: Store) -> None:
    def letter(n: int, reason: str = "not_json") -> DeadLetter:
        return DeadLetter(at(n), reason, f"footfall/v1/s/x/visit{n}", "detail", 10, b"x" * 10)

    store.dead_letter([letter(n) for n in range(5)], {"not_json": 5}, keep=3)
    store.dead_letter([letter(5, "oversized")], {"oversized": 1, "not_json": 0}, keep=3)
    assert [d.topic[-6:] for d in store.dead_letters()] == ["visit3", "visit4", "visit5"]
    assert store.dead_letters()[-1] == letter(5, "oversized")
    store.dead_letter([letter(6)], {"not_json": 1}, keep=0)
    assert store.dead_letters() == [] and store.rejections() == {"not_json": 6, "oversized": 1}


def test_a_naive_time_is_refused_rather_than_guessed(store: Store) -> None:
    with pytest.raises(StoreError, match="naive timestamp"):
        store.visits("paris-01", datetime(2024, 5, 1), datetime(2024, 5, 2))


def consent(token: str, profile: str, list_: str = "consent") -> RegistryEntry:
    return RegistryEntry(list_, token, profile, T0, "test")  # type: ignore[arg-type]


def test_an_opt_out_withdraws_the_consent_and_clears_the_token_from_visits(store: Store) -> None:
    store.add([visit(at(0), 600).model_copy(update={"consent": TOKEN_A})])
    put = store.registry_put([consent(TOKEN_A, "alice"), consent(TOKEN_B, "bob")], at(60))
    assert put.outcomes == (PutOutcome.ADDED, PutOutcome.ADDED) and put.revision == 1
    assert [v.profile for v in store.consented_visits("paris-01", at(-1), at(1))] == ["alice"]
    assert store.registry_put([consent(TOKEN_A, "alice")], at(61)).outcomes == (PutOutcome.UNCHANGED,)
    out = store.registry_put([consent(TOKEN_A, "", "optout")], at(62))
    assert (out.consents_withdrawn, out.visit_tokens_cleared, out.revision) == (1, 1, 2)
    assert store.consented_visits("paris-01", at(-1), at(1)) == []
    refused = store.registry_put([consent(TOKEN_B, "bob2"), consent(TOKEN_A, "alice")], at(63), strict=True)
    assert not refused.applied and refused.outcomes[1] == PutOutcome.OPTED_OUT
    assert store.registry_sets().consent == (TOKEN_B,) and store.registry_revision() == 2
    assert store.registry_entries("consent")[0].profile == "bob"  # the strict batch wrote nothing
    removed = store.registry_remove("consent", [TOKEN_B, "c" * 32])
    assert (removed.removed, removed.missing, removed.revision) == (1, 1, 3)


def test_retention_drops_pseudonyms_and_deletes_old_visits_and_a_dry_run_keeps_all(store: Store) -> None:
    store.add([visit(at(0), 60, device="d1"), visit(at(10), 60, device="d1"), visit(at(2000), 60, device="d2"),
               visit(at(-5000), 60, device="d3")])  # fmt: skip
    cutoffs = RetentionCutoffs(pseudonyms=at(100), consents=at(100), visits=at(-1000))
    labels = iter(["11111111", "22222222"])
    dry = store.apply_retention(cutoffs, dry_run=True, label=lambda n: next(labels))
    assert (dry.visits_deleted, dry.pseudonyms_dropped, dry.devices_relabelled) == (1, 2, 1)
    assert len(store.visits("paris-01", at(-6000), at(3000))) == 4
    done = store.apply_retention(cutoffs, dry_run=False, label=lambda n: "33333333")
    assert done == dry
    assert [v.device for v in store.visits("paris-01", at(-6000), at(3000))] == [
        "33333333",
        "33333333",
        visit(at(0), 1, device="d2").device,
    ]


def test_profiles_and_online_events_join_visits_through_consents_only(store: Store) -> None:
    profiles = store.profiles()
    store.add([visit(at(0), 600).model_copy(update={"consent": TOKEN_A})])
    store.registry_put([consent(TOKEN_A, "alice")], at(60))
    assert (
        profiles.put_profiles([Profile(id="alice", segments=("vip",)), Profile(id="erin")], at(60)).added == 2
    )
    event = OnlineEvent(id="e1", profile_id="alice", at=at(-30), channel="web", type="page_view")
    assert (profiles.add_online_events([event]), profiles.add_online_events([event])) == (1, 0)
    assert profiles.profile("alice") == Profile(id="alice", segments=("vip",))
    assert profiles.consented("alice") and not profiles.consented("erin")
    assert [v.start for v in profiles.profile_visits("alice")] == [at(0)]
    assert profiles.consented_online_events(at(-60), at(0)) == [event]
    assert profiles.consent_profiles([TOKEN_A, TOKEN_B]) == {TOKEN_A: "alice"}
    assert profiles.erase("alice") == (1, 1) and profiles.online_events("alice") == []


def test_a_count_intervals_80_percent_bounds_are_stored_and_read_back(store: Store) -> None:
    bounded = count(at(0), 3.0).model_copy(update={"present_low": 1.5, "present_high": 4.25})
    store.add([bounded, count(at(5), 2.0)])
    rows = store.counts("paris-01", at(-1), at(10))
    assert [(r.present, r.present_low, r.present_high) for r in rows] == [(3.0, 1.5, 4.25), (2.0, None, None)]
