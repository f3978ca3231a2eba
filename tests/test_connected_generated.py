"""Generated days with the store's guest Wi-Fi (dev/footfall_dev/generator/guest.py): phones that join it are
counted as connected, a consent given with their per-network address is recognised on their visits, and an
opted-out connected phone leaves no trace (the events are those of a day without its frames)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from functools import cache

import pytest
from footfall_dev.generator.day import GeneratedDay, generate
from footfall_dev.generator.guest import GuestNetwork, Joined
from footfall_dev.generator.model import StoreModel
from footfall_dev.generator.population import Kind
from footfall_dev.generator.radio import DeviceStats, beacon_emissions, device_emissions

from footfall.events import CountEvent, Event, VisitEvent
from footfall.times import NS
from sensor.config import SensorConfig
from sensor.keys.consent import PrivacyFilter
from sensor.keys.pseudonym import FixedSalt, Pseudonymizer
from sensor.pipeline import ListSink, Pipeline
from tests.test_consent import KEY, control

GUEST = GuestNetwork()
SEEDS = (3, 4)  # two days (the fit of nothing here: the tracker's numbers were set before these days)


@cache
def day(seed: int) -> tuple[GeneratedDay, tuple[Joined, ...]]:
    model = dataclasses.replace(StoreModel.demo(), visitors=150, seed=seed)
    generated = generate(model)
    joined = tuple(j for p in generated.people if p.kind is Kind.VISITOR and (j := GUEST.joined(model, p)))
    return generated, joined


def run(
    records: Iterable[tuple[int, bytes]], g: GeneratedDay, consent: list[bytes], optout: list[bytes]
) -> list[Event]:
    return pipeline_run(records, g, consent, optout)[0]


def pipeline_run(
    records: Iterable[tuple[int, bytes]],
    g: GeneratedDay,
    consent: list[bytes],
    optout: list[bytes],
    on_link: Callable[[str, str], None] | None = None,
) -> tuple[list[Event], Pipeline]:
    bssid = next(beacon_emissions(g.model, 0, 1e9))[1]
    config = SensorConfig.model_validate(
        {
            "site": {"store": "paris-01"},
            "privacy": {"mode": "consent"},
            "capture": {"filter": "probe_requests", "store_networks": [{"ssid": "Store-Guest", "bssids": [bssid.hex(":")]}]},
        }
    )  # fmt: skip
    privacy = PrivacyFilter("paris-01", KEY)
    msg = control(consent=tuple(KEY.token(m) for m in consent), optout=tuple(KEY.token(m) for m in optout))
    assert privacy.apply(msg.to_json()).accepted
    sink = ListSink()
    pipeline = Pipeline(
        config,
        FixedSalt(b"s" * 32, epoch="e1"),
        sink,
        drop_mac=privacy.drop,
        consent_of_mac=privacy.consent_token,
    )
    assert pipeline.tracker is not None
    pipeline.tracker.on_link = on_link
    for ts, data in records:
        pipeline.feed(ts, 127, data)
    pipeline.finish()
    return sink.events, pipeline


def overlaps(v: VisitEvent, g: GeneratedDay, j: Joined) -> bool:
    start = g.truth.start_ns + round(j.start_s * NS)
    end = g.truth.start_ns + round(j.end_s * NS)
    return v.start.timestamp() * NS < end and v.end.timestamp() * NS > start


def test_consented_connected_visitors_are_recognised_on_at_least_95_percent_of_their_visits() -> None:
    recognised = total = 0
    for seed in SEEDS:
        g, joined = day(seed)
        consented = joined[::2]  # half of them gave their consent on the captive portal
        events = run(g.records(guest=GUEST), g, [j.address for j in consented], [])
        visits = [e for e in events if isinstance(e, VisitEvent) and e.kind == "visitor"]
        for j in consented:
            token = KEY.token(j.address)
            total += 1
            recognised += any(v.consent == token and v.connected and overlaps(v, g, j) for v in visits)
    assert total >= 25
    assert recognised / total >= 0.95, f"{recognised} of {total}"


def test_connected_visitors_of_the_truth_are_the_connected_visits() -> None:
    g, joined = day(SEEDS[0])
    events = run(g.records(guest=GUEST), g, [], [])
    connected = [e for e in events if isinstance(e, VisitEvent) and e.connected]
    matched = sum(1 for j in joined if any(v.kind == "visitor" and overlaps(v, g, j) for v in connected))
    assert matched / len(joined) >= 0.9, f"{matched} of {len(joined)}"
    # every connected visitor visit is one of the truth's joined visitors
    visitors = [v for v in connected if v.kind == "visitor"]
    assert all(any(overlaps(v, g, j) for j in joined) for v in visitors)
    counts = [e for e in events if isinstance(e, CountEvent)]
    assert max(c.connected or 0 for c in counts) >= 2


def test_every_sequence_link_joins_a_probe_address_to_the_same_phones_connected_address() -> None:
    g, _ = day(SEEDS[0])
    links: list[tuple[str, str]] = []
    _, pipeline = pipeline_run(g.records(guest=GUEST), g, [], [], on_link=lambda p, s: links.append((p, s)))
    assert pipeline.tracker is not None
    pseudonym = Pseudonymizer(FixedSalt(b"s" * 32, epoch="e1"), pipeline.config.privacy.pseudonym_bits)
    person_of: dict[str, int] = {}
    for person in g.people:
        if person.device is None:
            continue
        stats = DeviceStats()
        for _ in device_emissions(g.model, person, stats):
            pass
        joined = GUEST.joined(g.model, person)
        for mac in stats.heard | ({joined.address} if joined else set()):
            person_of[pseudonym.pseudonym(mac, g.truth.start_ns)] = person.index
    assert links and pipeline.tracker.links_by_seq == len(links)  # phones that keep one counter are linked
    assert [person_of[probe] for probe, _ in links] == [person_of[station] for _, station in links]


def without(records: Iterator[tuple[int, bytes]], macs: list[bytes]) -> Iterator[tuple[int, bytes]]:
    for ts, data in records:
        if not any(m in data for m in macs):
            yield ts, data


@pytest.mark.parametrize("seed", SEEDS[:1])
def test_opted_out_connected_phones_are_never_counted_nor_published(seed: int) -> None:
    g, joined = day(seed)
    out = [j.address for j in joined[1::2]]
    consent = [j.address for j in joined[::2]]
    with_them = run(g.records(guest=GUEST), g, consent, out)
    never_there = run(without(g.records(guest=GUEST), out), g, consent, [])
    assert with_them == never_there  # every event, count and visit, as if their frames had never been sent
    assert sum(1 for e in with_them if isinstance(e, VisitEvent) and e.connected) >= 5
