"""The unheard ends of a stay (sensor/estimate/dwell.py): E[G²]/E[G] of the gaps between scans, learned."""

from __future__ import annotations

import pytest

from footfall.times import NS
from sensor.decode.frames import Sighting
from sensor.estimate.devices import DeviceResolver
from sensor.estimate.dwell import ScanGapParams, ScanGaps
from sensor.estimate.visits import PresenceModel, PresenceParams

NO_PRIOR = ScanGapParams(prior_weight_s=1e-9)


def test_phones_scanning_every_minute_leave_about_a_minute_unheard() -> None:
    gaps = ScanGaps(NO_PRIOR)
    for _ in range(100):
        gaps.add(60 * NS)
    assert gaps.unheard() / NS == pytest.approx(60.0)


def test_a_phone_that_sleeps_leaves_much_more_unheard_than_its_usual_gap() -> None:
    gaps = ScanGaps(NO_PRIOR)
    for _ in range(30):
        gaps.add(30 * NS)
    gaps.add(900 * NS)  # one 15-minute sleep: a random moment most likely falls into it
    assert gaps.unheard() / NS == pytest.approx((30 * 30**2 + 900**2) / (30 * 30 + 900))
    assert gaps.unheard() / NS > 10 * 30


def test_a_silence_past_the_lone_link_is_an_absence_not_a_gap() -> None:
    gaps = ScanGaps(NO_PRIOR)
    for _ in range(10):
        gaps.add(40 * NS)
    gaps.add(3 * 3600 * NS)
    assert gaps.unheard() / NS == pytest.approx(40.0)


def test_without_gaps_the_single_phones_prior_stands_and_old_gaps_fade() -> None:
    assert ScanGaps().unheard() / NS == pytest.approx(ScanGapParams().prior_s)
    gaps = ScanGaps(ScanGapParams(half_life_s=3600.0, prior_weight_s=600.0, prior_s=100.0))
    gaps.decay(0)
    for _ in range(10):
        gaps.add(400 * NS)  # 4000 s of gaps: (600·100 + 4000·400) / (600 + 4000)
    assert gaps.unheard() / NS == pytest.approx((600 * 100 + 4000 * 400) / 4600)
    gaps.decay(10 * 3600 * NS)  # ten half-lives later the prior is back
    assert gaps.unheard() / NS == pytest.approx(100.0, rel=0.02)


def _sighting(ts_s: float, address: str, rssi: int = -55) -> Sighting:
    return Sighting(
        ts_ns=int(ts_s * NS),
        address=address,
        epoch="e1",
        randomized=False,
        rssi_dbm=rssi,
        channel=6,
        seq=0,
        fingerprint="fp",
        ie_ids=(1, 50),
        directed=False,
    )


def test_a_visitor_visit_ends_the_learned_unheard_time_after_its_last_frame() -> None:
    resolver = DeviceResolver()
    events: list[object] = []
    model = PresenceModel(PresenceParams(), "s", "door", events.append, unheard=resolver.scan_gaps.unheard)
    t = 0.0
    for k in range(11):  # one phone inside for 10 minutes, scanning 45 and 75 s apart (not a clock)
        s = _sighting(t, "a1")
        model.observe(s, resolver.resolve(s))
        t += 45.0 if k % 2 else 75.0
    model.flush()
    (visit,) = [e for e in events if getattr(e, "kind", None) == "visitor"]
    unheard = resolver.scan_gaps.unheard() / NS
    # E[G²]/E[G] of five 75 s and five 45 s gaps (64 s), with the prior's hour of 74 s gaps
    data_1, data_2 = 5 * 75 + 5 * 45, 5 * 75**2 + 5 * 45**2
    prior = ScanGapParams()
    # the prior: gaps adding up to prior_weight_s whose Σg² / Σg is prior_s
    want = (data_2 + prior.prior_weight_s * prior.prior_s) / (data_1 + prior.prior_weight_s)
    assert unheard == pytest.approx(want, rel=1e-3)  # less the sums' decay over ten minutes
    assert visit.dwell_s == pytest.approx(600 + unheard, abs=1e-3)  # type: ignore[attr-defined]
    assert (visit.end - visit.start).total_seconds() == pytest.approx(visit.dwell_s)  # type: ignore[attr-defined]
