"""Counts against the generator's ground truth.

With phones that keep one address, every address is one person, so the presence model alone must
reproduce the truth: visitors (inside for at least min_dwell), passersby the sensor could hear, and
the median dwell. Randomizing phones are the estimator's problem (bench/accuracy.py measures it). On
the shipped defaults the count events' people estimates stand for people, not phones, on held-out
generated days (bench/generated.py scores every held-out seed).
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import pytest
from footfall_dev.generator import Kind, StoreModel, generate
from footfall_dev.stores import replay_store

from footfall.events import CountEvent, VisitEvent
from sensor.config import SensorConfig
from sensor.keys.pseudonym import FixedSalt
from sensor.pipeline import ListSink, Pipeline


def replay(model: StoreModel, estimator: bool) -> tuple[list[VisitEvent], list[CountEvent]]:
    config = SensorConfig()
    config = config.model_copy(
        update={"estimator": config.estimator.model_copy(update={"enabled": estimator})}
    )
    sink = ListSink()
    pipeline = Pipeline(config, FixedSalt(b"k" * 32), sink)
    for ts_ns, data in generate(model).records():
        pipeline.feed(ts_ns, 127, data)
    pipeline.finish()
    visits = [e for e in sink.events if isinstance(e, VisitEvent)]
    counts = [e for e in sink.events if isinstance(e, CountEvent)]
    return visits, counts


@pytest.fixture(scope="module")
def one_address_day() -> StoreModel:
    return replace(
        StoreModel.demo(), phone_share=1.0, device_mix=(("android_legacy", 1.0),), staff=0, fixed_devices=0
    )


@pytest.mark.parametrize("estimator", [False, True], ids=["naive", "estimator"])
def test_one_address_phones_give_the_true_visitors_passersby_and_dwell(
    one_address_day: StoreModel, estimator: bool
) -> None:
    truth = generate(one_address_day).truth
    min_dwell = SensorConfig().presence.min_dwell_s
    true_visitors = [p for p in truth.of(Kind.VISITOR) if p.dwell_s >= min_dwell]
    heard_passersby = truth.aggregates()["passersby_heard"]
    visits, counts = replay(one_address_day, estimator)
    visitors = [v for v in visits if v.kind == "visitor"]
    passersby = [v for v in visits if v.kind == "passerby"]
    assert len(visitors) == pytest.approx(len(true_visitors), rel=0.10)
    # Short visitors (under min_dwell) are passersby by definition, so they add to the heard passersby.
    short_visitors = len(truth.of(Kind.VISITOR)) - len(true_visitors)
    assert len(passersby) == pytest.approx(heard_passersby + short_visitors, rel=0.10)
    assert statistics.median(v.dwell_s for v in visitors) == pytest.approx(
        statistics.median(p.dwell_s for p in true_visitors), rel=0.10
    )
    # The interval counts add up to the visits.
    assert sum(c.visitors for c in counts) == len(visitors)
    assert sum(c.passersby for c in counts) == len(passersby)


def test_addresses_per_interval_overcount_people_when_phones_randomize() -> None:
    _, counts = replay(StoreModel.demo(), estimator=False)
    busy = [c for c in counts if c.frames]
    assert sum(c.addresses_randomized for c in busy) > 0.5 * sum(c.addresses for c in busy)
    # The naive count: many more addresses than devices would be present.
    assert max(c.addresses for c in busy) > 5 * max(c.present for c in busy)


@pytest.fixture(scope="module")
def demo_day() -> tuple[dict[str, float], list[VisitEvent]]:
    model = StoreModel.demo()
    visits, _ = replay(model, estimator=True)
    return generate(model).truth.aggregates(), [v for v in visits if v.kind == "visitor"]


def test_randomizing_phones_still_give_the_demo_days_median_dwell(
    demo_day: tuple[dict[str, float], list[VisitEvent]],
) -> None:
    """The demo day (most phones change address every scan or every few minutes, and sleep 5-20
    minutes at times): each visitor visit adds the unheard ends of its stay (sensor/estimate/dwell.py),
    so the median dwell is the stay's, not only the part heard (11.4 min for 11.5; 7.6 without them,
    measured before the generator's people walked)."""
    truth, visitors = demo_day
    assert statistics.median(v.dwell_s for v in visitors) == pytest.approx(
        truth["median_visitor_dwell_s"], rel=0.15
    )


def test_randomizing_phones_still_give_the_demo_days_visitors(
    demo_day: tuple[dict[str, float], list[VisitEvent]],
) -> None:
    """The demo day's visitor visits come within 15 % of the visitors heard: 66 for 60. Errors that
    cancel, not one visit per visitor (`bench/linking.py --visits --seeds 20240314`): 15 visits are the
    randomizing staff phone alone, 8 visitors are split (13 extra visits), 20 heard visitors have no
    visitor visit and 16 visits hold two or more people. It read 73 while the generator moved each
    person inside to a new distance at every scan (README, "Single phones")."""
    truth, visitors = demo_day
    assert len(visitors) == pytest.approx(truth["visitors_heard"], rel=0.15)


@pytest.mark.parametrize(
    ("model", "visitors_within", "passersby_within"),
    [
        # seeds 3-8 are held out of every fit (bench/visitfactors.py fits on 1-2 and 9-16, bench.train
        # on 1-2). Device visits alone read 30 % and 49 % low on the store's seed 7, 33 % and 64 % on the
        # mall's seed 4 (its streams of passers-by chain into a few long devices); the people estimates
        # -4 % and +12 %, -8 % and -7 % (the store's passersby are not within the 10 % target on this
        # seed since the street level moved to -85 dBm: README, "Generated stores").
        (StoreModel(seed=7), 0.10, 0.15),
        (StoreModel.mall(seed=4), 0.10, 0.10),
    ],
    ids=["store-seed-7", "mall-seed-4"],
)
def test_the_default_visitors_and_passersby_figures_are_people_on_a_held_out_generated_day(
    model: StoreModel, visitors_within: float, passersby_within: float
) -> None:
    result = replay_store(model)
    r, truth = result.report, result.truth
    assert r.visitors < 0.8 * truth.visitors and r.passersby < 0.6 * truth.passersby  # visits are not people
    assert r.visitors_people == pytest.approx(truth.visitors, rel=visitors_within)
    assert r.passersby_people == pytest.approx(truth.passersby, rel=passersby_within)
