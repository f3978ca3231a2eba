"""Multi-sensor merge: one device heard by two sensors of a store at once is one visit.

Hand-worked cases (times on 2024-05-01, UTC; `s1`/`s2`/`s3` sensors, `e1`/`e2` epochs):

    overlap     s1 e1 d1 10:00-10:20 rssi -70 visitor  +  s2 e1 d1 10:15-10:40 rssi -50 passerby
                → one visit 10:00-10:40 (2400 s), s2's kind and rssi (the stronger signal)
    no overlap  s1 e1 d1 10:00-10:20  +  s2 e1 d1 10:30-10:40  → two visits, unchanged
    epochs      s1 e1 d1 10:00-10:20  +  s2 e2 d1 10:05-10:15  → two (other epoch: another device)
    one sensor  s1 e1 d1 10:00-10:20  +  s1 e1 d1 10:10-10:30  → two (the sensor sessionised them)
    chain       s1 10:00-10:10 + s2 10:05-10:30 + s3 10:25-10:50 → one visit 10:00-10:50

Across the sensors of a store (store_visits; 5-minute count intervals):

    gap         s1 e1 d1 passerby 10:00-10:01 + s2 e1 d1 passerby 10:08 → one (within the 10-min visit timeout)
                ... + s2 e1 d1 passerby 10:15 → two (14 min after s1's)
    shared      s1: f1-f4 factory-address visitors 10:00-10:30, r1 random 10:00-10:30 (visitor time 9000 s)
                s2: f1-f4 10:05-10:25, x1 random 10:10-10:20 (r1 under another name), x2 random 11:00-11:10
                s1 heard most: it counts whole. s2's 4 factory visits all joined s1's: shared
                (4 + 3 x 4/6) / (4 + 3) = 6/7 of s2's 6 visitor visits; it keeps round(6 x 1/7) = 1 of its 2
                unjoined random ones, x2 (x1 lies inside s1's visits): 6 store visitors, not 7.
                present 10:00 s1 5.0 (4.0-6.0) + s2 4.0 (3.0-5.0) x 1/7 → 5 4/7 (4 3/7 - 6 5/7)
    apart       s2 hears other people: its 2 factory visits join nothing, shared 0 → the sum
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from collector.config import ReportConfig
from collector.online import kpis as omnichannel
from collector.reports import report as reports
from collector.reports.merge import (
    merge_overlapping,
    merge_recognised,
    store_intervals,
    store_visits,
)
from collector.storage.base import CountRow, VisitRow
from collector.storage.privacy import ConsentedVisit
from collector.storage.sqlite import SqliteStore
from tests.test_report import count, visit

UTC_DAY = date(2024, 5, 1)


def t(hh: int, mm: int = 0) -> datetime:
    return datetime(2024, 5, 1, hh, mm, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Heard:
    """A visit row with its strongest signal, as the store keeps it."""

    sensor: str
    epoch: str
    device: str
    start: datetime
    end: datetime
    dwell_s: float
    kind: str
    rssi_max: int | None


def heard(sensor: str, start: datetime, end: datetime, rssi: int | None = None, **more: str) -> Heard:
    fields = {"epoch": "e1", "device": "d1", "kind": "visitor", **more}
    return Heard(sensor, start=start, end=end, dwell_s=(end - start).total_seconds(), rssi_max=rssi, **fields)


def by_device(v: Heard) -> tuple[str, str]:
    return (v.epoch, v.device)


def test_overlapping_visits_of_two_sensors_become_one_and_the_strongest_signal_wins() -> None:
    near = heard("s2", t(10, 15), t(10, 40), -50, kind="passerby")
    merged = merge_overlapping([heard("s1", t(10), t(10, 20), -70), near], by_device)
    assert merged == [
        Heard("s2", "e1", "d1", t(10), t(10, 40), 2400.0, "passerby", -50),
    ]


def test_visits_that_do_not_overlap_stay_apart() -> None:
    visits = [heard("s1", t(10), t(10, 20), -70), heard("s2", t(10, 30), t(10, 40), -50)]
    assert merge_overlapping(visits, by_device) == visits


def test_the_same_pseudonym_in_another_epoch_is_another_device_and_never_merges() -> None:
    visits = [heard("s1", t(10), t(10, 20)), heard("s2", t(10, 5), t(10, 15), epoch="e2")]
    assert merge_overlapping(visits, by_device) == visits


def test_two_overlapping_visits_of_one_sensor_are_left_as_that_sensor_made_them() -> None:
    visits = [heard("s1", t(10), t(10, 20)), heard("s1", t(10, 10), t(10, 30))]
    assert merge_overlapping(visits, by_device) == visits


def test_a_chain_of_overlaps_across_three_sensors_is_one_visit_from_first_start_to_last_end() -> None:
    visits = [
        heard("s1", t(10), t(10, 10)),
        heard("s2", t(10, 5), t(10, 30)),
        heard("s3", t(10, 25), t(10, 50)),
    ]
    [one] = merge_overlapping(visits, by_device)
    assert (one.start, one.end, one.dwell_s) == (t(10), t(10, 50), 3000.0)
    assert one.sensor == "s2"  # no signal known: the longest dwell (25 min) wins


def test_stored_rows_merge_by_epoch_and_device_keeping_the_winner_row_shape() -> None:
    rows = [
        VisitRow("s1", "e1", "d1", t(9), t(9, 10), 600.0, "visitor", 1),
        VisitRow("s2", "e1", "d1", t(9, 5), t(9, 20), 900.0, "visitor", 1),
    ]
    assert store_visits(rows).visits == [VisitRow("s2", "e1", "d1", t(9), t(9, 20), 1200.0, "visitor", 1)]


def test_recognised_visits_merge_by_profile() -> None:
    rows = [
        ConsentedVisit("bob", "s1", t(9), t(9, 10), 600.0, "visitor"),
        ConsentedVisit("bob", "s2", t(9, 5), t(9, 20), 900.0, "visitor"),
        ConsentedVisit("alice", "s2", t(9, 5), t(9, 20), 900.0, "visitor"),
    ]
    assert merge_recognised(rows) == [
        ConsentedVisit("bob", "s2", t(9), t(9, 20), 1200.0, "visitor"),
        ConsentedVisit("alice", "s2", t(9, 5), t(9, 20), 900.0, "visitor"),
    ]


def test_the_report_counts_a_visit_heard_by_two_sensors_once() -> None:
    # A s1 e1 d1 09:00 10 min + B s2 e1 d1 09:05 15 min → one visit 09:00-09:20 (1200 s);
    # C s2 e1 d1 11:00 5 min: d1's second visit (a repeat); D s2 e2 d1 09:02 passerby: another device.
    db = SqliteStore(":memory:")
    try:
        db.add(
            [
                visit(t(9), 600, sensor="s1"),
                visit(t(9, 5), 900, sensor="s2"),
                visit(t(11), 300, sensor="s2"),
                visit(t(9, 2), 240, "passerby", sensor="s2", epoch="e2"),
            ]
        )
        config = ReportConfig(timezone="UTC")
        r = reports.for_store(db, "paris-01", UTC_DAY, UTC_DAY, config)
    finally:
        db.close()
    assert (r.visitors, r.passersby, r.unique_visitors, r.repeat_visitors) == (2, 1, 1, 1)
    assert r.median_dwell_s == 750.0  # of 1200 and 300 s


def test_the_omnichannel_kpis_count_a_visit_heard_by_two_sensors_once() -> None:
    rows = [
        VisitRow("s1", "e1", "d1", t(9), t(9, 10), 600.0, "visitor", 1),
        VisitRow("s2", "e1", "d1", t(9, 5), t(9, 20), 900.0, "visitor", 1),
    ]
    recognised = [
        ConsentedVisit("bob", "s1", t(9), t(9, 10), 600.0, "visitor"),
        ConsentedVisit("bob", "s2", t(9, 5), t(9, 20), 900.0, "visitor"),
    ]
    k = omnichannel.build(
        "paris-01",
        UTC_DAY,
        UTC_DAY,
        ZoneInfo("UTC"),
        7,
        visits=rows,
        recognised=recognised,
        online=[],
        sensors=2,
    )
    assert (k.visitor_visits, k.recognised_visits, k.recognised_profiles) == (1, 1, 1)
    assert k.daily[0].visitors == 1 and k.recognised_share == 1.0


def five(
    sensor: str, start: datetime, present: float, low: float | None = None, high: float | None = None
) -> CountRow:
    return CountRow(sensor, start, start + timedelta(minutes=5), present, present_low=low, present_high=high)


def row(
    sensor: str, device: str, start: datetime, end: datetime, kind: str = "visitor", *, factory: bool = False
) -> VisitRow:
    dwell = (end - start).total_seconds()
    return VisitRow(sensor, "e1", device, start, end, dwell, kind, 1, randomized=not factory)


def test_a_device_heard_by_two_sensors_minutes_apart_is_one_visit_within_the_visit_timeout() -> None:
    first = row("s1", "d1", t(10), t(10, 1), "passerby")
    assert len(store_visits([first, row("s2", "d1", t(10, 8), t(10, 8), "passerby")]).visits) == 1
    assert len(store_visits([first, row("s2", "d1", t(10, 15), t(10, 15), "passerby")]).visits) == 2


SHARED = [
    *(row("s1", f"f{i}", t(10), t(10, 30), factory=True) for i in range(1, 5)),
    row("s1", "r1", t(10), t(10, 30)),
    *(row("s2", f"f{i}", t(10, 5), t(10, 25), factory=True) for i in range(1, 5)),
    row("s2", "x1", t(10, 10), t(10, 20)),
    row("s2", "x2", t(11), t(11, 10)),
]


def test_a_later_sensor_adds_only_the_people_its_factory_address_visits_show_the_first_did_not_hear() -> None:
    store = store_visits(SHARED)
    assert store.order == ("s1", "s2")
    assert store.shared[("s2", "visitor")] == pytest.approx(6 / 7)
    assert sorted(v.device for v in store.visits) == ["f1", "f2", "f3", "f4", "r1", "x2"]
    got = store_intervals([five("s1", t(10), 5.0, 4.0, 6.0), five("s2", t(10), 4.0, 3.0, 5.0)], SHARED)
    assert [(i.start, i.sensors) for i in got] == [(t(10), 2)]
    assert (got[0].present, got[0].present_low, got[0].present_high) == pytest.approx(
        (5 + 4 / 7, 4 + 3 / 7, 6 + 5 / 7)
    )


def test_sensors_that_hear_different_people_add_up() -> None:
    raw = [
        row("s1", "a1", t(10), t(10, 30), factory=True),
        row("s1", "a2", t(10), t(10, 30)),
        row("s2", "b1", t(10), t(10, 20), factory=True),
        row("s2", "b2", t(10), t(10, 20)),
    ]
    assert len(store_visits(raw).visits) == 4
    counts = [five("s1", t(10), 2.0, 1.5, 2.5), five("s2", t(10), 1.5), five("s1", t(10, 5), 1.0)]
    got = store_intervals(counts, raw)
    assert [i.present for i in got] == pytest.approx([3.5, 1.0])
    assert got[0].present_low is None  # one sensor sent no interval: none for the store


def test_one_sensors_counts_pass_through_unchanged() -> None:
    raw = [VisitRow("s1", "e1", "d1", t(10), t(10, 20), 1200.0, "visitor", 1)]
    got = store_intervals([five("s1", t(10), 1.4, 1.0, 2.0)], raw)
    assert [(i.present, i.present_low, i.present_high) for i in got] == [(1.4, 1.0, 2.0)]


def test_the_report_and_its_people_estimates_do_not_count_a_shared_person_twice() -> None:
    # d1 visits both sensors at once: one visitor; each sensor's estimate says 2.0 people behind it.
    db = SqliteStore(":memory:")
    try:
        db.add(
            [
                visit(t(9), 600, sensor="s1"),
                visit(t(9), 600, sensor="s2"),
                count(t(9), 1.0, sensor="s1").model_copy(update={"visitors_est": 2.0}),
                count(t(9), 1.0, sensor="s2").model_copy(update={"visitors_est": 2.0}),
            ]
        )
        r = reports.for_store(db, "paris-01", UTC_DAY, UTC_DAY, ReportConfig(timezone="UTC"))
    finally:
        db.close()
    assert (r.visitors, r.present_mean, r.visitors_people) == (1, 1.0, 2.0)


def test_a_later_sensor_adds_only_its_unshared_share_of_people_whatever_its_people_per_visit() -> None:
    # d1 passes both sensors at once: one passer-by. s1 (the visitor time: d2) says 1.0 person behind it, s2
    # de-chained its longer copy into 3.0. The store takes s1's whole and none of s2's (all shared): the
    # summed estimates scaled by the visits kept would have said (1 + 3) / 2 = 2.0.
    db = SqliteStore(":memory:")
    try:
        db.add(
            [
                visit(t(9), 60, "passerby", sensor="s1"),
                visit(t(9), 240, "passerby", sensor="s2"),
                visit(t(10), 600, device="d2", sensor="s1"),
                count(t(9), 1.0, sensor="s1").model_copy(update={"passersby_est": 1.0}),
                count(t(9), 1.0, sensor="s2").model_copy(update={"passersby_est": 3.0}),
            ]
        )
        r = reports.for_store(db, "paris-01", UTC_DAY, UTC_DAY, ReportConfig(timezone="UTC"))
    finally:
        db.close()
    assert (r.passersby, r.passersby_people) == (1, 1.0)


def test_the_sensor_that_hears_the_street_best_leads_the_stores_passersby_people() -> None:
    # s2 has the visitor time (it leads visitors and people present) and as many passerby visits, but s1
    # hears them stronger: s1 is at the window. s2, further in, hears the street weaker and its rate says
    # 3.0 passers-by; the store takes s1's 2.0 and of s2's nothing (its passerby visits s1 heard too).
    db = SqliteStore(":memory:")
    try:
        db.add(
            [
                visit(t(9), 60, "passerby", sensor="s1"),
                visit(t(9, 30), 60, "passerby", device="d3", sensor="s1"),
                visit(t(9), 240, "passerby", sensor="s2").model_copy(update={"rssi_max": -80}),
                visit(t(9, 30), 60, "passerby", device="d3", sensor="s2").model_copy(
                    update={"rssi_max": -80}
                ),
                visit(t(10), 1800, device="d2", sensor="s2"),
                count(t(9), 1.0, sensor="s1").model_copy(update={"passersby_est": 2.0}),
                count(t(9), 1.0, sensor="s2").model_copy(update={"passersby_est": 3.0}),
            ]
        )
        r = reports.for_store(db, "paris-01", UTC_DAY, UTC_DAY, ReportConfig(timezone="UTC"))
    finally:
        db.close()
    assert (r.passersby, r.passersby_people) == (2, 2.0)
