"""The `visit_open` event: a consented device heard inside triggers the marketing tool while it is there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.online.triggers import Triggers
from collector.storage.sqlite import SqliteStore
from footfall.events import Event, VisitEvent, VisitOpenEvent, event_id
from sensor.estimate.visits import PresenceModel, PresenceParams
from tests.test_omnichannel import populate
from tests.test_triggers import BOB
from tests.test_visits import T0, h, sight

CFG = PresenceParams(visit_timeout_s=120, visitor_rssi=-65, min_dwell_s=300, interval_s=300)
TOKEN = "c0" * 16


def run(rssis: list[int], *, consent: str | None = TOKEN, fixed: bool = False) -> list[Event]:
    events: list[Event] = []
    model = PresenceModel(
        CFG, "shop", "door", events.append, is_fixed=lambda d: fixed, consent_of=lambda d: consent
    )
    for i, rssi in enumerate(rssis):
        model.observe(sight(i * 30, "aa01", rssi=rssi), h("aa01"))
    model.flush()
    return events


def opens(events: list[Event]) -> list[VisitOpenEvent]:
    return [e for e in events if isinstance(e, VisitOpenEvent)]


def test_a_consented_device_is_announced_once_at_its_first_inside_frame() -> None:
    events = run([-80, -75, -60, -50, -60])
    (announced,) = opens(events)
    assert announced.at.timestamp() == T0 / 1e9 + 60  # the third frame, the first at >= -65 dBm
    assert announced.consent == TOKEN
    (visit,) = [e for e in events if isinstance(e, VisitEvent)]
    assert (announced.device, announced.start) == (visit.device, visit.start)


@pytest.mark.parametrize(
    ("rssis", "consent", "fixed"),
    [([-60, -60], None, False), ([-80, -70], TOKEN, False), ([-60, -60], TOKEN, True)],
    ids=["not consented", "never inside", "fixed device"],
)
def test_no_announcement_without_consent_inside_signal_or_for_fixed_devices(
    rssis: list[int], consent: str | None, fixed: bool
) -> None:
    assert opens(run(rssis, consent=consent, fixed=fixed)) == []


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "f.db")
    populate(store)
    yield store
    store.close()


def opening_of(visit: VisitEvent) -> VisitOpenEvent:
    assert visit.consent is not None
    return VisitOpenEvent(
        event_id=event_id("open", visit.event_id),
        store=visit.store,
        sensor=visit.sensor,
        epoch=visit.epoch,
        device=visit.device,
        start=visit.start,
        at=visit.start,
        consent=visit.consent,
    )


def test_the_trigger_fires_at_the_opening_and_not_again_when_the_visit_closes(db: SqliteStore) -> None:
    published: list[tuple[str, bytes]] = []
    triggers = Triggers(db.profiles(), lambda t, b: published.append((t, b)), "footfall/v1")
    first = triggers.handle([opening_of(BOB)])
    assert [t.profile_id for t in first] == ["bob"]
    assert first[0].visit == opening_of(BOB).event_id
    assert triggers.handle([BOB]) == []  # the same visit, now closed
    assert len(published) == 1


def test_a_closed_visit_without_an_opening_still_triggers(db: SqliteStore) -> None:
    triggers = Triggers(db.profiles(), lambda t, b: None, "footfall/v1")
    assert [t.profile_id for t in triggers.handle([BOB])] == ["bob"]


def test_the_store_keeps_the_closing_visit_and_not_the_opening(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.db")
    assert store.add([opening_of(BOB), BOB]) == 1
    store.close()


def test_the_collector_accepts_a_visit_open_payload_without_storing_or_counting_a_duplicate() -> None:
    from collector.config import IngestConfig
    from collector.ingest.ingestor import Ingestor

    db = SqliteStore(":memory:")
    ingestor = Ingestor(db, IngestConfig(), "footfall/v1")
    opening = opening_of(BOB)
    outcome = ingestor.handle(f"footfall/v1/{opening.store}/{opening.sensor}/visit_open", opening.to_json())
    ingestor.flush()
    assert outcome.accepted
    assert (ingestor.stats.stored, ingestor.stats.duplicates) == (0, 0)
    db.close()
