"""The presence model on constructed sightings: visits, visitor/passerby decisions and interval counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from footfall.events import CountEvent, Event, VisitEvent
from sensor.decode.frames import Sighting
from sensor.estimate.visits import PresenceModel, PresenceParams

NS = 1_000_000_000
T0 = int(datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp()) * NS  # an interval boundary
CFG = PresenceParams(visit_timeout_s=120, visitor_rssi=-65, min_dwell_s=300, interval_s=300)


def h(name: str) -> str:
    """A readable test name as the hex pseudonym the schema requires."""
    digits = name.encode().hex()
    return digits.ljust(-(-len(digits) // 8) * 8, "0")


def sight(
    t_s: float, address: str, rssi: int | None = -60, *, randomized: bool = False, epoch: str = "e1"
) -> Sighting:
    return Sighting(T0 + int(t_s * NS), h(address), epoch, randomized, rssi, 6, 1, "f" * 16, (0, 1), False)


def run(sightings: list[Sighting], *, fixed: frozenset[str] = frozenset()) -> list[Event]:
    events: list[Event] = []
    model = PresenceModel(CFG, "shop", "door", events.append, is_fixed=lambda d: d in {h(f) for f in fixed})
    for s in sightings:
        model.observe(s, s.address)
    model.flush()
    return events


def visits(events: list[Event]) -> list[VisitEvent]:
    return [e for e in events if isinstance(e, VisitEvent)]


def counts(events: list[Event]) -> list[CountEvent]:
    return [e for e in events if isinstance(e, CountEvent)]


def test_strong_signal_staying_past_min_dwell_is_a_visitor() -> None:
    events = run([sight(t, "aa01") for t in range(0, 601, 60)])
    (visit,) = visits(events)
    assert visit.kind == "visitor"
    assert visit.dwell_s == 600
    assert visit.frames == 11
    assert visit.rssi_max == -60


def test_weak_signal_is_a_passerby_however_long_it_stays() -> None:
    (visit,) = visits(run([sight(t, "aa02", rssi=-80) for t in range(0, 601, 60)]))
    assert visit.kind == "passerby"


def test_strong_but_short_visit_is_a_passerby() -> None:
    (visit,) = visits(run([sight(t, "aa03", rssi=-50) for t in range(0, 200, 20)]))
    assert visit.kind == "passerby"
    assert visit.dwell_s == 180


def test_silence_longer_than_the_timeout_splits_visits_and_numbers_them() -> None:
    early = [sight(t, "aa04") for t in range(0, 61, 30)]
    late = [sight(t, "aa04") for t in range(1000, 1400, 30)]
    first, second = visits(run(early + late))
    assert (first.visit_no, second.visit_no) == (1, 2)
    assert first.end < second.start
    assert first.event_id != second.event_id


def test_counts_cover_every_interval_including_silent_ones() -> None:
    events = run([sight(10, "aa05"), sight(1210, "aa06")])
    starts = [int(c.start.timestamp()) - T0 // NS for c in counts(events)]
    assert starts == [0, 300, 600, 900, 1200]
    assert [c.frames for c in counts(events)] == [1, 0, 0, 0, 1]


def test_visitor_is_counted_in_the_interval_it_qualified_and_as_new_then_returning() -> None:
    first = [sight(t, "aa07") for t in range(0, 361, 30)]  # qualifies at t=300 (second interval)
    second = [sight(t, "aa07") for t in range(900, 1261, 30)]  # after a 540 s gap > timeout
    cs = counts(run(first + second))
    assert [c.visitors for c in cs] == [0, 1, 0, 0, 1]
    assert [c.new_visitors for c in cs] == [0, 1, 0, 0, 0]
    assert [c.returning_visitors for c in cs] == [0, 0, 0, 0, 1]


def test_passerby_is_counted_in_the_interval_its_visit_closed() -> None:
    cs = counts(run([sight(10, "aa08", rssi=-85), sight(20, "aa08", rssi=-85), sight(700, "zz99", rssi=-85)]))
    # closes at 20 + 120 s timeout, i.e. in the first interval; zz99 closes at the end of input.
    assert [c.passersby for c in cs] == [1, 0, 1]


def _passersby(sightings: list[Sighting], params: PresenceParams) -> tuple[int, float | None]:
    """(passerby visits, passersby_est) of the whole input."""
    events: list[Event] = []
    model = PresenceModel(params, "shop", "door", events.append)
    for s in sightings:
        model.observe(s, s.address)
    model.flush()
    cs = counts(events)
    return sum(c.passersby for c in cs), sum(c.passersby_est or 0.0 for c in cs)


STREET = PresenceParams(visit_timeout_s=120, passerby_factor=1.0, street_rssi=-82)


def test_passersby_est_counts_the_scan_bursts_that_began_below_the_street_level() -> None:
    # one device chained from a stream of passers-by: four bursts at the street's far side (two frames
    # each, 0.2 s apart), one nearer; a single passerby visit
    stream = [sight(t + dt, "aa0a", rssi=-88) for t in (0, 40, 80, 120) for dt in (0.0, 0.2)]
    near = [sight(160, "aa0a", rssi=-75)]
    assert _passersby(stream + near, STREET) == (1, 4.0)
    assert _passersby(stream + near, replace(STREET, street_rssi=None)) == (1, 1.0)  # per visit


def test_a_burst_is_the_streets_by_its_first_frame() -> None:
    # a burst that opens at -75 dBm stays the pavement's even if its next frame, on another channel, is weak
    burst = [sight(0.0, "aa0b", rssi=-75), sight(0.3, "aa0b", rssi=-90)]
    assert _passersby(burst, STREET) == (1, 0.0)


def test_the_passerby_factor_scales_the_street_bursts_to_people() -> None:
    one = [sight(0, "aa0c", rssi=-85)]
    assert _passersby(one, replace(STREET, passerby_factor=2.5)) == (1, 2.5)


def test_randomized_frames_and_addresses_are_counted_apart() -> None:
    ss = [sight(1, "r1", randomized=True), sight(2, "r2", randomized=True), sight(3, "g1"), sight(4, "g1")]
    (c,) = counts(run(ss))
    assert (c.frames, c.frames_randomized, c.addresses, c.addresses_randomized) == (4, 2, 3, 2)


def test_present_is_time_averaged_over_the_interval() -> None:
    # One inside device heard from t=0 to t=150 of a 300 s interval: half a person on average.
    (c,) = counts(run([sight(t, "aa09") for t in range(0, 151, 30)]))
    assert c.present == 0.5


def test_fixed_devices_are_reported_apart_and_never_visitors() -> None:
    events = run([sight(t, "till") for t in range(0, 601, 30)], fixed=frozenset({"till"}))
    (visit,) = visits(events)
    assert visit.kind == "fixed"
    assert sum(c.visitors for c in counts(events)) == 0
    assert counts(events)[0].fixed_devices == 1
    assert counts(events)[0].devices == 0
    assert all(c.present == 0 for c in counts(events))


def test_new_epoch_forgets_visit_numbers() -> None:
    ss = [sight(t, "aa10") for t in range(0, 61, 30)] + [
        sight(t, "aa10", epoch="e2") for t in range(1000, 1100, 30)
    ]
    first, second = visits(run(ss))
    assert second.visit_no == 1
    assert (first.epoch, second.epoch) == ("e1", "e2")


def test_same_input_gives_the_same_events() -> None:
    ss = [sight(t, f"d{t % 7}", rssi=-50 - t % 40) for t in range(0, 3000, 13)]
    assert [e.to_json() for e in run(ss)] == [e.to_json() for e in run(ss)]


def test_advance_closes_visits_without_new_frames() -> None:
    events: list[Event] = []
    model = PresenceModel(CFG, "shop", "door", events.append)
    model.observe(sight(0, "aa11"), h("aa11"))
    model.advance(T0 + 100 * NS)
    assert not visits(events)
    model.advance(T0 + 200 * NS)
    assert len(visits(events)) == 1
    assert model.open_visits == 0


def test_aggregate_mode_builds_no_visit_event_but_the_same_counts() -> None:
    ss = [sight(t, f"d{t % 5}", rssi=-50 - t % 30) for t in range(0, 2000, 11)]
    full = run(ss)
    events: list[Event] = []
    model = PresenceModel(CFG, "shop", "door", events.append, per_visit=False)
    for s in ss:
        model.observe(s, s.address)
    model.flush()
    assert all(isinstance(e, CountEvent) for e in events)
    assert [e.to_json() for e in events] == [e.to_json() for e in counts(full)]
    assert model.visits_emitted == 0


def test_the_median_signal_counts_the_signals_below_a_bytes_range_too() -> None:
    # A Prism header's signal field is wider than radiotap's byte: -1000 is counted apart from
    # the per-dBm counts, and still ordered below them (the lower middle of six frames is the third).
    signals = [-40, -1000, -60, -128, -40, -50]
    (visit,) = visits(run([sight(t, "aa0f", rssi=r) for t, r in zip(range(0, 60, 10), signals, strict=True)]))
    assert visit.rssi_median == -60
    assert visit.rssi_max == -40
