"""The count model file (sensor/estimate/count_model.py): its loader, its evaluation, its shipped version."""

from __future__ import annotations

import json

import pytest

from sensor.estimate.count_model import MODEL_VERSION, CountModel, load_model, shipped_model
from sensor.estimate.occupancy import EstimatorParams, OccupancyEstimator


def test_the_shipped_model_is_version_2_with_its_training_command_and_trees() -> None:
    model = shipped_model()
    assert model.version == MODEL_VERSION == 2
    assert "python -m bench.train" in model.trained_on
    assert model.trees and model.reference_site_factor == EstimatorParams().site_factor
    assert not model.reads_rates  # the scan-rate feature did not help held out (README)


def test_a_model_file_round_trips_through_its_json() -> None:
    model = shipped_model()
    again = load_model(json.dumps(model.to_json()), "again.json")
    assert again == model and again.trees == model.trees


def test_a_version_1_file_is_refused_naming_the_file_and_both_versions() -> None:
    v1 = {"version": 1, "device_weight": 0.23, "visitor_weight": 0.35, "blend_from_people": 2.0}
    with pytest.raises(ValueError, match=r"old\.json: count model version 1: this sensor reads version 2"):
        load_model(json.dumps(v1), "old.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, r"m\.json: unknown field\(s\) colour; expected some of .*device_weight"),
        ({"trees": [[5, 1.0, 0.1, 0.2]]}, r"m\.json: trees\[0\]: feature index must be 0\.\.2"),
        ({"trees": [[0, 1.0, 0.1, "x"]]}, r"m\.json: trees\[0\]\.right: expected a number or \[feature"),
        ({"trees": [[0, "a", 0.1, 0.2]]}, r"m\.json: trees\[0\]: threshold must be a number"),
        ({"visitor_weight": -1}, r"m\.json: visitor_weight must be in 0\.\.10, got -1"),
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
