"""The people estimate: inside devices, held over between scans, fixed ones left out, times a factor."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from footfall.events import CountEvent, VisitEvent
from sensor.decode.frames import Sighting
from sensor.estimate.devices import DeviceResolver
from sensor.estimate.occupancy import EstimatorParams, OccupancyEstimator, fit_site
from sensor.estimate.visits import PresenceModel, PresenceParams

S = 1_000_000_000


def sighting(t_s: float, rssi: int | None = -55, address: str = "ab" * 8) -> Sighting:
    return Sighting(int(t_s * S), address, "e1", True, rssi, 6, 1, "f" * 16, (0, 1), False)


def feed(est: OccupancyEstimator, frames: Sequence[tuple[float, str, int | None]]) -> None:
    for t, device, rssi in sorted(frames):
        est.observe(sighting(t, rssi), device)


def test_a_device_heard_every_minute_counts_as_one_person_times_the_site_factor() -> None:
    est = OccupancyEstimator(EstimatorParams(site_factor=1.5, holdover_s=120))
    feed(est, [(60.0 * m, "d1", -50) for m in range(40)])
    assert est.devices_inside(600 * S, 1800 * S) == pytest.approx(1.0)
    assert est.present(600 * S, 1800 * S) == pytest.approx(1.5)


def test_frames_weaker_than_the_inside_threshold_do_not_count() -> None:
    est = OccupancyEstimator(EstimatorParams(inside_rssi_dbm=-67))
    feed(est, [(60.0 * m, "corridor", -80) for m in range(20)])
    assert est.present(0, 1200 * S) == 0.0


def test_a_single_frame_counts_for_the_holdover_then_stops() -> None:
    est = OccupancyEstimator(EstimatorParams(holdover_s=300))
    feed(est, [(1000.0, "d1", -50)])
    assert est.devices_inside(1000 * S, 1600 * S) == pytest.approx(0.5)
    assert est.devices_inside(1300 * S, 1600 * S) == 0.0


def test_a_gap_longer_than_the_holdover_is_counted_as_absence() -> None:
    est = OccupancyEstimator(EstimatorParams(holdover_s=100))
    feed(est, [(0.0, "d1", -50), (50.0, "d1", -50), (1000.0, "d1", -50), (1050.0, "d1", -50)])
    # inside [0, 150) and [1000, 1150): 300 s of the first 1200
    assert est.devices_inside(0, 1200 * S) == pytest.approx(300 / 1200)


def test_devices_flagged_fixed_are_left_out_even_for_the_time_before_the_flag() -> None:
    fixed: set[str] = set()
    est = OccupancyEstimator(EstimatorParams(holdover_s=120), is_fixed=fixed.__contains__)
    feed(est, [(60.0 * m, "pc", -45) for m in range(15)] + [(60.0 * m, "phone", -55) for m in range(15)])
    assert est.devices_inside(0, 900 * S) == pytest.approx(2.0)
    fixed.add("pc")
    assert est.devices_inside(0, 900 * S) == pytest.approx(1.0)


def test_signal_free_link_types_count_every_frame() -> None:
    est = OccupancyEstimator(EstimatorParams(holdover_s=600))
    feed(est, [(0.0, "d1", None)])
    assert est.devices_inside(0, 600 * S) == pytest.approx(1.0)


def test_old_segments_are_pruned_so_memory_stays_bounded() -> None:
    est = OccupancyEstimator(EstimatorParams(holdover_s=10), retain_s=600)
    feed(est, [(t * 30.0, f"d{t}", -50) for t in range(2000)])
    assert len(est._open) + len(est._closed) < 40


def test_an_empty_interval_is_an_error_that_names_the_bounds() -> None:
    with pytest.raises(ValueError, match="start 5 >= end 5"):
        OccupancyEstimator().present(5, 5)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("inside_rssi_dbm", 10, "got 10"),
        ("holdover_s", 0.0, "got 0.0"),
        ("site_factor", -1.0, "got -1.0"),
        ("exit_margin_db", -3.0, "got -3.0"),
    ],
)
def test_parameters_out_of_range_are_refused_with_the_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EstimatorParams(**{field: value})  # type: ignore[arg-type]


def test_fit_site_finds_the_factor_and_threshold_that_reproduce_the_truth() -> None:
    # Inside devices at -55 dBm (two people each) leave one by one; four corridor devices stay at -75.
    leave = {0: 3600, 1: 2700, 2: 1800}
    frames = [(60.0 * m, f"in{i}", -55) for i in range(3) for m in range(leave[i] // 60)]
    frames += [(60.0 * m + 30, f"out{i}", -75) for i in range(4) for m in range(60)]
    windows = [(w * 900 * S, (w + 1) * 900 * S) for w in range(4)]
    truth = [6.0, 6.0, 4.0, 2.0]

    def count(params: EstimatorParams) -> list[float]:
        est = OccupancyEstimator(params)
        feed(est, frames)
        return [est.devices_inside(a, b) for a, b in windows]

    base = EstimatorParams(inside_rssi_dbm=-80, holdover_s=60, site_factor=1.0)
    fit = fit_site(count, truth, base, rssi_grid=(-80, -70, -60), holdover_grid=(60.0,))
    assert fit.mae_before > 1.5  # corridor devices counted as people
    assert fit.mae_after < 0.05
    assert fit.params.site_factor == pytest.approx(2.0, abs=0.05)
    assert fit.params.inside_rssi_dbm == -70


def test_the_estimator_plugs_into_the_presence_model() -> None:
    events: list[VisitEvent | CountEvent] = []
    resolver = DeviceResolver()
    est = OccupancyEstimator(EstimatorParams(holdover_s=600, site_factor=1.0), resolver.is_fixed)
    model = PresenceModel(PresenceParams(interval_s=300), "s", "s1", events.append, people=est)
    for m in range(20):
        s = sighting(60.0 * m, -50, address=f"{m:016x}")
        device = resolver.resolve(s)
        est.observe(s, device)
        model.observe(s, device)
    model.flush()
    counts = [e for e in events if isinstance(e, CountEvent)]
    assert counts[1].present == pytest.approx(1.0)


def test_a_device_probing_with_its_global_address_counts_global_weight() -> None:
    est = OccupancyEstimator(EstimatorParams(holdover_s=120, global_weight=0.5, site_factor=1.0))
    for m in range(15):
        laptop = Sighting(int(60 * m * S), "cd" * 8, "e1", False, -50, 6, m, "e" * 16, (0, 1), False)
        est.observe(laptop, "laptop")
        est.observe(sighting(60.0 * m + 1, -50), "phone")
    assert est.devices_inside(0, 900 * S) == pytest.approx(1.5, abs=0.01)


def test_a_device_heard_well_below_the_inside_level_after_its_inside_frames_has_left() -> None:
    # Inside at -50 until 600 s, then a burst at -85 on the way out (inside -67, margin 10).
    est = OccupancyEstimator(EstimatorParams(holdover_s=450, exit_margin_db=10))
    feed(est, [(60.0 * m, "d1", -50) for m in range(11)] + [(660.0, "d1", -85)])
    assert est.devices_inside(0, 900 * S) == pytest.approx(660 / 900)


def test_a_weak_frame_within_the_burst_of_an_inside_frame_does_not_end_the_stay() -> None:
    # A sensor hears a phone's frames on a neighbouring channel 20-40 dB weaker, in the same burst.
    est = OccupancyEstimator(EstimatorParams(holdover_s=300, exit_margin_db=10))
    feed(est, [(0.0, "d1", -50), (0.3, "d1", -88)])
    assert est.devices_inside(0, 300 * S) == pytest.approx(1.0)


def test_a_frame_just_below_the_inside_level_is_not_an_exit() -> None:
    est = OccupancyEstimator(EstimatorParams(holdover_s=300, exit_margin_db=10))
    feed(est, [(0.0, "d1", -50), (60.0, "d1", -72)])
    assert est.devices_inside(0, 300 * S) == pytest.approx(1.0)
