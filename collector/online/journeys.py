"""A consented profile's journey: its online events and its store visits on one timeline.

The join goes profile → its registered consent tokens → the visits that carry one of them; a profile
without a consent has no journey (refused, not empty: an empty one would suggest the person never came).
Visits of every store are included, with their kind; the report's figures leave passersby and fixed
devices out, a journey shows them so the timeline is complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from collector.online.profiles import OnlineEvent
from collector.storage.base import ProfileStore, StoreVisit

Source = Literal["online", "store"]


class JourneyError(Exception):
    """No journey can be given for this profile; the message says why."""


@dataclass(frozen=True, slots=True)
class Step:
    """One point of the timeline; the fields of the other source are None."""

    at: datetime  # aware, UTC: the online event's time or the visit's start
    source: Source
    channel: str | None  # online: web | app | email
    type: str | None  # online: page_view | product_view | add_to_cart | purchase
    product: str | None
    value: float | None
    store: str | None  # store visit
    sensor: str | None
    end: datetime | None
    dwell_s: float | None
    kind: str | None  # visitor | passerby | fixed


@dataclass(frozen=True, slots=True)
class Journey:
    profile: str
    steps: tuple[Step, ...]  # oldest first
    online_events: int
    store_visits: int
    stores: tuple[str, ...]


def _online(e: OnlineEvent) -> Step:
    return Step(e.at, "online", e.channel, e.type, e.product, e.value, None, None, None, None, None)


def _visit(v: StoreVisit) -> Step:
    return Step(v.start, "store", None, None, None, None, v.store, v.sensor, v.end, v.dwell_s, v.kind)


def timeline(profile: str, events: Sequence[OnlineEvent], visits: Sequence[StoreVisit]) -> Journey:
    """Merge both, by time; at the same instant the online event comes first (it may have led to the visit)."""
    steps = [_online(e) for e in events] + [_visit(v) for v in visits]
    steps.sort(key=lambda s: (s.at, s.source != "online", s.store or "", s.type or ""))
    return Journey(profile, tuple(steps), len(events), len(visits), tuple(sorted({v.store for v in visits})))


def for_profile(profiles: ProfileStore, profile: str) -> Journey:
    """The stored journey of a consented profile; JourneyError for a profile without a consent."""
    if not profiles.consented(profile):
        raise JourneyError(f"profile {profile!r} has no registered consent: its visits are not joined")
    return timeline(profile, profiles.online_events(profile), profiles.profile_visits(profile))


# -- rendering -----------------------------------------------------------------------------------------------
def _what(step: Step) -> str:
    if step.source == "online":
        parts = [f"{step.channel} {step.type}"]
        if step.product is not None:
            parts.append(f"product {step.product}")
        if step.value is not None:
            parts.append(f"value {step.value:.2f}")
        return ", ".join(parts)
    return f"{step.kind} visit at {step.store} (sensor {step.sensor}), {(step.dwell_s or 0) / 60:.1f} min"


def render_table(journey: Journey, zone: ZoneInfo) -> str:
    """One line per step, in the store's time zone."""
    out = [
        f"Journey of profile {journey.profile} ({zone.key}): {journey.online_events} online events, "
        f"{journey.store_visits} store visits"
        + (f" at {', '.join(journey.stores)}" if journey.stores else ""),
        "",
        f"{'Time':<19}  {'Source':<6}  What",
    ]
    out += [f"{s.at.astimezone(zone):%Y-%m-%d %H:%M:%S}  {s.source:<6}  {_what(s)}" for s in journey.steps]
    if not journey.steps:
        out.append("(nothing recorded)")
    return "\n".join(out) + "\n"


def to_dict(journey: Journey, zone: ZoneInfo) -> dict[str, Any]:
    def step(s: Step) -> dict[str, Any]:
        if s.source == "online":
            return {
                "at": s.at.astimezone(zone).isoformat(),
                "source": s.source,
                "channel": s.channel,
                "type": s.type,
                "product": s.product,
                "value": s.value,
            }
        return {
            "at": s.at.astimezone(zone).isoformat(),
            "source": s.source,
            "store": s.store,
            "sensor": s.sensor,
            "end": s.end.astimezone(zone).isoformat() if s.end else None,
            "dwell_s": s.dwell_s,
            "kind": s.kind,
        }

    return {
        "profile": journey.profile,
        "timezone": zone.key,
        "online_events": journey.online_events,
        "store_visits": journey.store_visits,
        "stores": list(journey.stores),
        "steps": [step(s) for s in journey.steps],
    }


def render_json(journey: Journey, zone: ZoneInfo) -> str:
    return json.dumps(to_dict(journey, zone), indent=2) + "\n"


RENDERERS: dict[str, Callable[[Journey, ZoneInfo], str]] = {"table": render_table, "json": render_json}
