"""Retention of online events: older than `online_days` (or `visits_days` when unset) they are deleted,
counted in the account, and a dry run only counts them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.config import RetentionConfig
from collector.online.profiles import OnlineEvent, Profile
from collector.privacy import retention
from collector.storage.base import Store
from tests.pgserver import BACKENDS, open_backend, postgres_dsn, postgres_server  # noqa: F401

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def online(n: int, when: datetime) -> OnlineEvent:
    return OnlineEvent.model_validate(
        {"id": f"ev-{n}", "profile_id": "bob", "at": when, "channel": "web", "type": "page_view"}
    )


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store = open_backend(request, tmp_path)()
    profiles = store.profiles()
    profiles.put_profiles([Profile(id="bob")], NOW)
    # 400 days ago, 100 days ago, yesterday
    days = (400, 100, 1)
    profiles.add_online_events([online(n, NOW - timedelta(days=d)) for n, d in enumerate(days)])
    yield store
    store.close()


def ids(db: Store) -> list[str]:
    return [e.id for e in db.profiles().online_events("bob")]


def test_online_events_older_than_visits_days_go_by_default(db: Store) -> None:
    done = retention.run(db, RetentionConfig(), NOW, profiles=db.profiles())  # visits_days 396
    assert done.online_events_deleted == 1 and ids(db) == ["ev-1", "ev-2"]
    assert done.online_before == NOW - timedelta(days=396)
    assert done.to_dict()["counts"]["online_events_deleted"] == 1
    assert done.line().endswith("; 1 online events deleted (before 2024-05-01T00:00:00+00:00)")


def test_online_days_sets_its_own_cutoff_and_a_dry_run_only_counts(db: Store) -> None:
    config = RetentionConfig(online_days=30)
    dry = retention.run(db, config, NOW, dry_run=True, profiles=db.profiles())
    assert dry.online_events_deleted == 2 and ids(db) == ["ev-0", "ev-1", "ev-2"]
    done = retention.run(db, config, NOW, profiles=db.profiles())
    assert done.online_events_deleted == 2 and ids(db) == ["ev-2"]


def test_without_the_profile_storage_online_events_are_not_part_of_the_run(db: Store) -> None:
    done = retention.run(db, RetentionConfig(online_days=1), NOW)
    assert done.online_before is None and "online" not in done.line()
    assert "online_events_deleted" not in done.to_dict()["counts"] and len(ids(db)) == 3
