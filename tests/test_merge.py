"""Multi-sensor merge: one device heard by two sensors of a store at once is one visit.

Hand-worked cases (times on 2024-05-01, UTC; `s1`/`s2`/`s3` sensors, `e1`/`e2` epochs):

    overlap     s1 e1 d1 10:00-10:20 rssi -70 visitor  +  s2 e1 d1 10:15-10:40 rssi -50 passerby
                → one visit 10:00-10:40 (2400 s), s2's kind and rssi (the stronger signal)
    no overlap  s1 e1 d1 10:00-10:20  +  s2 e1 d1 10:30-10:40  → two visits, unchanged
    epochs      s1 e1 d1 10:00-10:20  +  s2 e2 d1 10:05-10:15  → two (other epoch: another device)
    one sensor  s1 e1 d1 10:00-10:20  +  s1 e1 d1 10:10-10:30  → two (the sensor sessionised them)
    chain       s1 10:00-10:10 + s2 10:05-10:30 + s3 10:25-10:50 → one visit 10:00-10:50

People present across sensors (5-minute count intervals):

    10:00  s1 and s2 both hear d1 (visitor 10:00-10:20), s2 alone hears d2 (10:00-10:05)
           visitor time per sensor 300 + 600 = 900 s, merged (d1 once, d2) 600 s → share 2/3
           present s1 1.0 + s2 2.0 = 3.0 → store 2.0 (bounds 0.5+1.5 → 4/3, 1.5+2.5 → 8/3)
    10:05  d1 only, on both: 300 + 300 s, merged 300 → share 1/2; present 1.0 + 1.2 → 1.1
    10:30  nobody inside on either: the share over all count intervals, (600 + 300) / (900 + 600) = 3/5
           present 0.7 + 0.7 → 0.84
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from collector.config import ReportConfig
from collector.online import kpis as omnichannel
from collector.reports import report as reports
from collector.reports.merge import merge_overlapping, merge_recognised, merge_sensors, store_intervals
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
    assert merge_sensors(rows) == [VisitRow("s2", "e1", "d1", t(9), t(9, 20), 1200.0, "visitor", 1)]


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


def test_people_present_heard_by_two_sensors_count_once_by_the_share_the_visits_show() -> None:
    raw = [
        VisitRow("s1", "e1", "d1", t(10), t(10, 20), 1200.0, "visitor", 1),
        VisitRow("s2", "e1", "d1", t(10), t(10, 20), 1200.0, "visitor", 1),
        VisitRow("s2", "e1", "d2", t(10), t(10, 5), 300.0, "visitor", 1),
    ]
    counts = [
        five("s1", t(10), 1.0, 0.5, 1.5), five("s2", t(10), 2.0, 1.5, 2.5),
        five("s1", t(10, 5), 1.0), five("s2", t(10, 5), 1.2),
        five("s1", t(10, 30), 0.7), five("s2", t(10, 30), 0.7),
    ]  # fmt: skip
    got = store_intervals(counts, raw, merge_sensors(raw))
    assert [(i.start, i.sensors) for i in got] == [(t(10), 2), (t(10, 5), 2), (t(10, 30), 2)]
    assert [i.present for i in got] == pytest.approx([2.0, 1.1, 0.84])
    assert (got[0].present_low, got[0].present_high) == pytest.approx((4 / 3, 8 / 3))
    assert got[1].present_low is None  # one sensor sent no interval: none for the store


def test_one_sensors_counts_pass_through_unchanged() -> None:
    raw = [VisitRow("s1", "e1", "d1", t(10), t(10, 20), 1200.0, "visitor", 1)]
    got = store_intervals([five("s1", t(10), 1.4, 1.0, 2.0)], raw, merge_sensors(raw))
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
