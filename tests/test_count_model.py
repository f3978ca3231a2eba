"""The count model file (sensor/estimate/count_model.py): its loader, its evaluation, its shipped version."""

from __future__ import annotations

import json

import pytest

from bench.heldout import NS, RATE_MINUTES, DayRun, event_rows
from bench.train import LAB_SITE_FACTOR
from bench.trees import boost, predict
from sensor.estimate.calibrate import Window
from sensor.estimate.count_model import MODEL_VERSION, CountModel, load_model, shipped_model
from sensor.estimate.occupancy import EstimatorParams, OccupancyEstimator
from sensor.estimate.rates import WindowRates


def test_the_shipped_model_is_version_5_with_its_training_command_trees_and_a_shops_site_factor() -> None:
    model = shipped_model()
    assert model.version == MODEL_VERSION == 5
    assert "python -m bench.train" in model.trained_on and "generated store seeds 1, 2" in model.trained_on
    assert model.trees and model.reference_site_factor == LAB_SITE_FACTOR  # stored at the lab's factor
    # An uncalibrated sensor counts with the factor fitted on generated shops, not the lab room's.
    assert EstimatorParams().site_factor == model.default_site_factor > 1.5 * LAB_SITE_FACTOR
    assert not model.reads_rates  # the scan-rate feature did not help held out (README)


def test_a_model_file_round_trips_through_its_json() -> None:
    model = shipped_model()
    again = load_model(json.dumps(model.to_json()), "again.json")
    assert again == model and again.trees == model.trees


def test_a_version_1_file_is_refused_naming_the_file_and_both_versions() -> None:
    v1 = {"version": 1, "device_weight": 0.23, "visitor_weight": 0.35, "blend_from_people": 2.0}
    with pytest.raises(ValueError, match=r"old\.json: count model version 1: this sensor reads version 5"):
        load_model(json.dumps(v1), "old.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, r"m\.json: unknown field\(s\) colour; expected some of .*device_weight"),
        ({"trees": [[5, 1.0, 0.1, 0.2]]}, r"m\.json: trees\[0\]: feature index must be 0\.\.2"),
        ({"trees": [[0, 1.0, 0.1, "x"]]}, r"m\.json: trees\[0\]\.right: expected a number or \[feature"),
        ({"trees": [[0, "a", 0.1, 0.2]]}, r"m\.json: trees\[0\]: threshold must be a number"),
        ({"visitor_weight": -1}, r"m\.json: visitor_weight must be in 0\.\.10, got -1"),
        ({"tree_bound": 1.5}, r"m\.json: tree_bound must be in 0\.\.1, got 1\.5"),
        ({"default_site_factor": 0}, r"m\.json: default_site_factor must be in \(0, 100\], got 0"),
        ({"rates": {"ab": 0.0}}, r"m\.json: scan rate of ab must be in \(0, 600\] per minute"),
    ],
)
def test_a_bad_model_file_says_which_file_field_and_value(change: dict[str, object], message: str) -> None:
    values = shipped_model().to_json() | change
    with pytest.raises(ValueError, match=message):
        load_model(json.dumps(values), "m.json")
    with pytest.raises(ValueError, match=r"m\.json: not JSON"):
        load_model("{", "m.json")


def test_the_blend_and_its_trees_give_people_scaled_by_the_site_factor() -> None:
    # 0.5 x devices + 0.25 x visitors, then one tree: +1 person above 10 visitors, -0.5 below.
    model = CountModel(
        device_weight=0.5,
        visitor_weight=0.25,
        trees=((1, 10.0, -0.5, 1.0),),
        reference_site_factor=2.0,
        blend_from_people=2.0,
        tree_bound=1.0,
    )
    assert model.people(2.0, 4.0, 8.0) == pytest.approx(2.0 + 2.0 - 0.5)
    assert model.people(2.0, 4.0, 12.0) == pytest.approx(2.0 + 3.0 + 1.0)
    assert model.people(4.0, 4.0, 12.0) == pytest.approx(2 * (2.0 + 3.0 + 1.0))  # twice the site factor
    assert model.people(2.0, 0.5, 12.0) == 1.0  # under blend_from_people: the device-only estimate


def test_the_estimator_counts_scan_rates_only_for_a_model_that_reads_them() -> None:
    assert OccupancyEstimator(EstimatorParams()).rates is None  # the shipped model: no cost per frame
    reads = CountModel(trees=((2, 3.0, 0.0, 1.0),))
    assert reads.reads_rates and not CountModel(trees=((1, 3.0, 0.0, 1.0),)).reads_rates
    assert OccupancyEstimator(EstimatorParams(model=reads)).rates is not None
    assert OccupancyEstimator(EstimatorParams(model=CountModel(rate_weight=0.1))).rates is not None


def test_the_trees_move_the_blend_by_at_most_their_bound_so_an_unseen_crowd_cannot_halve_a_count() -> None:
    # The lab's trees take 1.7 people off a blend of 2 where few devices leave many visits open (a
    # boutique's regime, never seen in the lab room): bounded to a quarter of the blend.
    model = CountModel(device_weight=0.5, visitor_weight=0.25, trees=((0, 3.0, -1.7, 3.0),), tree_bound=0.25)
    assert model.people(1.0, 2.0, 4.0) == pytest.approx(2.0 * 0.75)  # -1.7 held at -0.5
    assert model.people(1.0, 4.0, 4.0) == pytest.approx(3.0 * 1.25)  # +3 held at +0.75
    shipped = shipped_model()
    for devices, visits in ((0.8, 2.0), (1.2, 3.4), (1.7, 4.3), (12.0, 30.0)):
        blend = shipped.device_weight * devices + shipped.visitor_weight * visits
        people = shipped.people(shipped.reference_site_factor, devices, visits)
        if people >= shipped.blend_from_people:
            assert 0.75 * blend - 1e-9 <= people <= 1.25 * blend + 1e-9


def test_trees_boosted_on_absolute_error_follow_the_typical_window_not_a_few_far_off_ones() -> None:
    # 100 windows the blend reads 1 person low, 10 of them (a day of idle phones) 20 low: least
    # squares moves every window by the mean (+2.9), absolute deviation by the median (+1).
    xs = [(float(i % 7), float(i % 5), 0.0) for i in range(100)]
    ys = [21.0 if i % 10 == 0 else 1.0 for i in range(100)]
    start = [0.0] * 100

    def bend(loss: str) -> float:
        trees = boost(xs, ys, start, loss)
        return sum(sum(predict(t, x) for t in trees) for x in xs) / len(xs)

    assert bend("ls") == pytest.approx(3.0 * (1 - 0.9**60), abs=0.3)
    assert bend("lad") == pytest.approx(1.0 * (1 - 0.9**60), abs=0.1)


def test_the_first_k_trees_of_a_long_boost_are_the_k_round_model_a_fit_chooses_among() -> None:
    # bench/heldout.py boosts the most rounds once and truncates to the rounds its inner CV picks.
    xs = [(float(i % 7), float(i % 5), 0.0) for i in range(100)]
    ys = [float(i % 7) * 0.5 + (3.0 if i % 5 > 2 else 0.0) for i in range(100)]
    long = boost(xs, ys, [0.0] * 100, "lad", rounds=30)
    assert len(long) == 30
    assert long[:12] == boost(xs, ys, [0.0] * 100, "lad", rounds=12)


def test_a_count_event_is_fitted_on_the_truth_of_the_windows_it_overlaps() -> None:
    # Version 5 fits on count events: one 5-minute event inside a window takes that window's truth,
    # one straddling two windows the mean of both, weighted by its overlap with each.
    m = 60 * NS
    windows = [Window(0, 0, 15 * m, 4.0), Window(15 * m, 15 * m, 30 * m, 10.0)]
    events = [(0, 5 * m, WindowRates(5.0, ())), (12 * m, 17 * m, WindowRates(5.0, ()))]
    run = DayRun(
        "2022-11-22", "2022-11", "busy", [3.0, 6.0], [4.0, 8.0], [4.0, 10.0], False,
        {minutes: events for minutes in RATE_MINUTES}, windows, (0, 30 * m), [2.0, 5.0], [3.0, 7.0],
    )  # fmt: skip
    rows = event_rows([run])
    assert [(row["devices"], row["visitors"]) for row, _, _ in rows] == [(2.0, 3.0), (5.0, 7.0)]
    assert [y for _, y, _ in rows] == pytest.approx([4.0, (3 * 4.0 + 2 * 10.0) / 5])
