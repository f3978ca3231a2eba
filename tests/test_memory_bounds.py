"""Memory follows the devices live at once: what the presence model keeps of a forgotten device goes."""

from __future__ import annotations

from collections.abc import Callable

from footfall.events import Event, VisitEvent
from sensor.estimate.visits import PresenceModel
from tests.test_visits import CFG, h, sight


def visit_numbers(is_live: Callable[[str], bool] | None) -> list[int]:
    """The visit_no of a device's two visits, 20 minutes apart (four intervals of silence between)."""
    events: list[Event] = []
    model = PresenceModel(CFG, "shop", "door", events.append, is_live=is_live)
    for t in (0, 30, 60, 1260, 1290):
        model.observe(sight(t, "phone"), h("phone"))
    model.flush()
    return [e.visit_no for e in events if isinstance(e, VisitEvent)]


def test_a_device_still_tracked_keeps_its_visit_count() -> None:
    assert visit_numbers(lambda device: True) == [1, 2]
    assert visit_numbers(None) == [1, 2]  # no resolver to ask (every address is its own device)


def test_the_visit_count_of_a_device_the_resolver_forgot_is_dropped() -> None:
    # The resolver never hands out a forgotten id again, so nothing is lost by dropping its count.
    assert visit_numbers(lambda device: False) == [1, 1]


def test_the_street_bursts_remember_an_address_only_until_the_next_interval() -> None:
    # a street of one-scan passers-by, a new address every 3 s for an hour: the burst tracker's memory is
    # the addresses of the interval under way (at most 100 of 300 s), not the day's 1,200
    model = PresenceModel(CFG, "shop", "door", lambda event: None)
    most = 0
    for i in range(1200):
        model.observe(sight(3 * i, f"p{i}", rssi=-88), h(f"p{i}"))
        most = max(most, model.street_addresses)
    assert most <= 100
