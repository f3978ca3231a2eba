"""The report over a constructed day of events, checked against figures worked out by hand.

The day is 2024-05-01 in Europe/Paris (UTC+2). Visits, local start times and dwell:

    L visitor  s1 e1 d8  00:30 (2024-04-30T22:30Z: the previous day in UTC)   10 min
    I fixed    s1 e1 d7  08:00                                                 10 h
    A visitor  s1 e1 d1  09:10                                                  4 min
    E passerby s1 e1 d3  09:20,  F passerby s1 e1 d4  09:40
    C visitor  s1 e1 d2  09:59:59                                               5 min (a bucket edge)
    G passerby s1 e1 d5  10:05
    D visitor  s1 e2 d1  10:30 (same pseudonym, other epoch: another device)   65 min
    B visitor  s1 e1 d1  11:00 (d1's second visit: a repeat visitor)           20 min
    H passerby s1 e1 d6  11:30,  P passerby s2 e1 da 11:10 (other sensor; d1 there would merge into B)
    J fixed    s1 e1 d7  13:00
    left out: M visitor 2024-05-02 00:30 local (still 05-01 in UTC), N of another store

Counts (present): s1 09:00 = 2, s2 09:00 = 1, s1 09:05 = 4, s1 10:00 = 0.5; left out: s1 05-02 00:10.
Status: s3 at 12:00 (a sensor seen with no visits); left out: s4 on 05-02.

So: visitors 5 (00h 1, 09h 2, 10h 1, 11h 1), passersby 5 (09h 2, 10h 1, 11h 2), capture 50 %;
devices with a visitor visit 4, repeat 1; dwell 240, 300, 600, 1200, 3900 s → median 600 s,
buckets <5: 1, 5-15: 2, 15-30: 1, 30-60: 0, ≥60: 1; present per interval 3, 4, 0.5 → mean 2.5,
peak 4 at 09:05, hour 09 mean 3.5, hour 10 mean 0.5; fixed 2 visits of 1 device; sensors s1 s2 s3.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from collector.config import ReportConfig
from collector.reports import report as reports
from collector.storage.base import VisitRow
from collector.storage.sqlite import SqliteStore
from footfall.events import CountEvent, Event, StatusEvent, VisitEvent, event_id

PARIS = ZoneInfo("Europe/Paris")
DAY = date(2024, 5, 1)


def h(name: str) -> str:
    """A readable test name as the hex pseudonym the schema requires."""
    digits = name.encode().hex()
    return digits.ljust(-(-len(digits) // 8) * 8, "0")


def local(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=PARIS).astimezone(UTC)


def visit(
    start: datetime,
    dwell_s: float,
    kind: str = "visitor",
    *,
    device: str = "d1",
    sensor: str = "s1",
    store: str = "paris-01",
    epoch: str = "e1",
) -> VisitEvent:
    return VisitEvent.model_validate(
        {
            "event_id": event_id("visit", store, sensor, epoch, device, start),
            "store": store,
            "sensor": sensor,
            "epoch": epoch,
            "device": h(device),
            "start": start,
            "end": start + timedelta(seconds=dwell_s),
            "dwell_s": float(dwell_s),
            "kind": kind,
            "frames": 3,
            "addresses": 1,
            "randomized": True,
            "rssi_max": -60,
            "visit_no": 1,
        }
    )


def count(start: datetime, present: float, *, sensor: str = "s1", store: str = "paris-01") -> CountEvent:
    return CountEvent.model_validate(
        {
            "event_id": event_id("count", store, sensor, start),
            "store": store,
            "sensor": sensor,
            "epoch": "e1",
            "start": start,
            "end": start + timedelta(minutes=5),
            "present": present,
            "visitors": 0,
            "passersby": 0,
            "visitors_present": 0,
            "new_visitors": 0,
            "returning_visitors": 0,
            "frames": 10,
            "frames_randomized": 5,
            "addresses": 4,
            "addresses_randomized": 2,
            "devices": 3,
        }
    )


def status(at: datetime, *, sensor: str, store: str = "paris-01") -> StatusEvent:
    return StatusEvent.model_validate(
        {
            "event_id": event_id("status", store, sensor, at),
            "store": store,
            "sensor": sensor,
            "epoch": "e1",
            "state": "online",
            "at": at,
            "version": "0.1.0",
        }
    )


def the_day() -> list[Event]:
    nxt = DAY + timedelta(days=1)
    return [
        visit(local(DAY, 0, 30), 600, device="d8"),  # L
        visit(local(DAY, 8), 36_000, "fixed", device="d7"),  # I
        visit(local(DAY, 9, 10), 240, device="d1"),  # A
        visit(local(DAY, 9, 20), 60, "passerby", device="d3"),  # E
        visit(local(DAY, 9, 40), 30, "passerby", device="d4"),  # F
        visit(local(DAY, 9, 59, 59), 300, device="d2"),  # C
        visit(local(DAY, 10, 5), 30, "passerby", device="d5"),  # G
        visit(local(DAY, 10, 30), 3900, device="d1", epoch="e2"),  # D
        visit(local(DAY, 11), 1200, device="d1"),  # B
        visit(local(DAY, 11, 30), 45, "passerby", device="d6"),  # H
        visit(local(DAY, 11, 10), 20, "passerby", device="da", sensor="s2"),  # P
        visit(local(DAY, 13), 3600, "fixed", device="d7"),  # J
        visit(local(nxt, 0, 30), 600, device="d9"),  # M: next local day
        visit(local(DAY, 12), 600, device="d1", store="lyon-02"),  # N: another store
        count(local(DAY, 9), 2.0),
        count(local(DAY, 9), 1.0, sensor="s2"),
        count(local(DAY, 9, 5), 4.0),
        count(local(DAY, 10), 0.5),
        count(local(nxt, 0, 10), 9.0),
        status(local(DAY, 12), sensor="s3"),
        status(local(nxt, 12), sensor="s4"),
    ]


@pytest.fixture
def day_report() -> reports.Report:
    db = SqliteStore(":memory:")
    db.add(the_day())
    try:
        return reports.for_store(db, "paris-01", DAY, DAY, ReportConfig())
    finally:
        db.close()


def test_the_period_is_whole_local_days_in_utc() -> None:
    assert reports.period(DAY, DAY, PARIS) == (
        datetime(2024, 4, 30, 22, tzinfo=UTC),
        datetime(2024, 5, 1, 22, tzinfo=UTC),
    )


def test_totals_capture_rate_and_repeat_visitors_match_the_hand_count(day_report: reports.Report) -> None:
    r = day_report
    assert (r.visitors, r.passersby, r.capture_rate) == (5, 5, 0.5)
    assert (r.unique_visitors, r.repeat_visitors) == (4, 1)
    assert (r.fixed_visits, r.fixed_devices) == (2, 1)
    assert r.sensors == ("s1", "s2", "s3")


def test_visits_fall_in_the_local_hour_they_started(day_report: reports.Report) -> None:
    by_hour = {row.start.hour: (row.passersby, row.visitors) for row in day_report.hours}
    assert by_hour[0] == (0, 1)  # 22:30 UTC the day before
    assert by_hour[9] == (2, 2)  # 09:59:59 still counts in 09h
    assert by_hour[10] == (1, 1)
    assert by_hour[11] == (2, 1)
    assert by_hour[8] == (0, 0)  # the fixed device is not a visitor


def test_hours_run_from_the_first_to_the_last_active_hour_of_the_day(day_report: reports.Report) -> None:
    starts = [row.start for row in day_report.hours]
    assert [s.hour for s in starts] == list(range(12))
    assert starts[0] == datetime(2024, 5, 1, 0, tzinfo=PARIS)
    assert all(s.utcoffset() == timedelta(hours=2) for s in starts)


def test_dwell_buckets_and_median_cover_visitors_only(day_report: reports.Report) -> None:
    assert [(b.label, b.visitors) for b in day_report.dwell] == [
        ("under 5 min", 1),
        ("5-15 min", 2),  # 300 s is exactly 5 min: the lower edge belongs to the bucket
        ("15-30 min", 1),
        ("30-60 min", 0),
        ("60 min and more", 1),
    ]
    assert day_report.median_dwell_s == 600


def test_present_is_summed_over_sensors_per_interval_then_averaged(day_report: reports.Report) -> None:
    r = day_report
    assert r.present_mean == pytest.approx(2.5)
    assert (r.present_peak, r.present_peak_at) == (4.0, datetime(2024, 5, 1, 9, 5, tzinfo=PARIS))
    by_hour = {row.start.hour: row.present_mean for row in r.hours}
    assert by_hour[9] == pytest.approx(3.5)
    assert by_hour[10] == pytest.approx(0.5)
    assert by_hour[11] is None


def test_the_report_says_what_repeat_means(day_report: reports.Report) -> None:
    assert any("within one pseudonym epoch" in note for note in day_report.notes)
    assert any("2 sensors" in note or "3 sensors" in note for note in day_report.notes)


def _row(start: datetime, kind: str = "visitor") -> VisitRow:
    return VisitRow("s1", "e1", h("d1"), start, start + timedelta(minutes=10), 600.0, kind, 1)


def test_the_autumn_dst_day_has_25_hours_and_two_distinct_2_am_hours() -> None:
    day = date(2024, 10, 27)  # 03:00 CEST → 02:00 CET
    first_2am = datetime(2024, 10, 27, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second_2am = datetime(2024, 10, 27, 1, 30, tzinfo=UTC)  # 02:30 CET
    start, end = reports.period(day, day, PARIS)
    assert end - start == timedelta(hours=25)
    r = reports.build(
        "x",
        day,
        day,
        PARIS,
        visits=[_row(first_2am), _row(second_2am)],
        counts=[],
        sensors=["s1"],
        dwell_edges_min=[5],
    )
    assert [(h.start.isoformat(), h.visitors) for h in r.hours] == [
        ("2024-10-27T02:00:00+02:00", 1),
        ("2024-10-27T02:00:00+01:00", 1),
    ]


def test_the_spring_dst_day_has_23_hours_and_no_2_am() -> None:
    day = date(2024, 3, 31)  # 02:00 CET → 03:00 CEST
    start, end = reports.period(day, day, PARIS)
    assert end - start == timedelta(hours=23)
    r = reports.build(
        "x",
        day,
        day,
        PARIS,
        visits=[
            _row(datetime(2024, 3, 31, 0, 30, tzinfo=UTC)),
            _row(datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),
        ],
        counts=[],
        sensors=[],
        dwell_edges_min=[5],
    )
    assert [h.start.isoformat() for h in r.hours] == [
        "2024-03-31T01:00:00+01:00",
        "2024-03-31T03:00:00+02:00",
    ]


def test_a_period_without_events_has_no_rates_and_says_so() -> None:
    r = reports.build("x", DAY, DAY, PARIS, visits=[], counts=[], sensors=[], dwell_edges_min=[5, 15])
    assert (r.hours, r.visitors, r.capture_rate, r.median_dwell_s, r.present_mean) == (
        (),
        0,
        None,
        None,
        None,
    )
    assert r.notes[0] == "No visits or counts for store 'x' in this period."
    assert "(no activity)" in reports.render_table(r)


def test_rows_outside_the_period_are_ignored_not_misplaced() -> None:
    outside = _row(datetime(2024, 5, 2, 23, 0, tzinfo=UTC))
    r = reports.build("x", DAY, DAY, PARIS, visits=[outside], counts=[], sensors=[], dwell_edges_min=[5])
    assert r.visitors == 0


def test_the_table_shows_connected_visitors_only_when_a_sensor_listens_to_a_store_network() -> None:
    db = SqliteStore(":memory:")
    at = datetime(2024, 5, 1, 7, tzinfo=UTC)
    try:
        db.add(
            [visit(at, 900, device="c1").model_copy(update={"connected": True}), visit(at, 600, device="c2")]
        )
        report = reports.for_store(db, "paris-01", DAY, DAY, ReportConfig())
    finally:
        db.close()
    lines = reports.render_table(report).splitlines()
    assert lines[3] == "Date        Hour   Passersby  Visitors  Connected  Capture  Present"
    assert "Connected        1 visitor visits on the store's Wi-Fi (50.0% of visitors)" in lines
    assert report.connected == 1 and sum(h.connected for h in report.hours) == 1


def test_table_aligns_each_hour_and_the_totals(day_report: reports.Report) -> None:
    lines = reports.render_table(day_report).splitlines()
    assert lines[0] == "Footfall report: store paris-01, 2024-05-01 (Europe/Paris)"
    assert lines[1] == "Sensors: s1, s2, s3"
    header = lines[3]
    assert header == "Date        Hour   Passersby  Visitors  Capture  Present"
    nine = next(line for line in lines if line.startswith("2024-05-01  09:00"))
    assert nine == "2024-05-01  09:00          2         2    50.0%      3.5"
    assert len(nine) == len(header)
    total = next(line for line in lines if line.startswith("Total"))
    assert total == "Total                      5         5    50.0%"
    assert "Median dwell     10.0 min" in lines
    assert "People present   mean 2.5, peak 4.0 at 2024-05-01 09:05" in lines


def test_csv_has_one_row_per_hour_and_a_total(day_report: reports.Report) -> None:
    rows = list(csv.DictReader(io.StringIO(reports.render_csv(day_report))))
    assert len(rows) == 12 + 1
    assert rows[9] == {
        "store": "paris-01",
        "hour_start": "2024-05-01T09:00:00+02:00",
        "passersby": "2",
        "visitors": "2",
        "capture_rate": "0.5000",
        "present_mean": "3.5000",
        "present_low": "",  # no sensor of the day sent an interval
        "present_high": "",
        "connected": "",  # no sensor of the day listens to a store network
    }
    assert rows[-1]["hour_start"] == "total"
    assert (rows[-1]["passersby"], rows[-1]["visitors"]) == ("5", "5")


def test_json_carries_every_figure(day_report: reports.Report) -> None:
    data = json.loads(reports.render_json(day_report))
    assert data["from"] == data["to"] == "2024-05-01"
    assert data["totals"]["visitors"] == 5
    assert data["totals"]["repeat_visitors"] == 1
    assert data["totals"]["median_dwell_s"] == 600
    assert data["totals"]["present_peak_at"] == "2024-05-01T09:05:00+02:00"
    assert [b["visitors"] for b in data["dwell"]] == [1, 2, 1, 0, 1]
    assert data["dwell"][-1] == {"label": "60 min and more", "from_min": 60, "to_min": None, "visitors": 1}
    assert len(data["hours"]) == 12


def test_people_estimates_from_calibrated_sensors_are_summed_and_absent_otherwise(
    day_report: reports.Report,
) -> None:
    assert day_report.visitors_people is None
    calibrated = [
        count(local(DAY, 10), 1.0).model_copy(update={"visitors_est": 2.2, "passersby_est": 4.4}),
        count(local(DAY, 10, 5), 1.0).model_copy(
            update={"visitors_est": 1.1, "passersby_est": 0.0, "event_id": event_id("c2")}
        ),
    ]
    db = SqliteStore(":memory:")
    db.add(calibrated)
    report = reports.for_store(db, "paris-01", DAY, DAY, ReportConfig())
    db.close()
    assert (report.visitors_people, report.passersby_people) == (3.3, 4.4)
    assert "People (est.)    3 visitors, 4 passersby" in reports.render_table(report)
    assert reports.to_dict(report)["totals"]["visitors_people"] == 3.3


def test_the_80_percent_range_of_present_is_shown_in_table_csv_and_json() -> None:
    bounded = [
        count(local(DAY, 9), 2.0).model_copy(update={"present_low": 1.0, "present_high": 3.5}),
        count(local(DAY, 9, 5), 4.0).model_copy(
            update={"present_low": 3.0, "present_high": 5.5, "event_id": event_id("c2")}
        ),
    ]
    db = SqliteStore(":memory:")
    db.add(bounded)
    report = reports.for_store(db, "paris-01", DAY, DAY, ReportConfig())
    db.close()
    assert (report.present_mean, report.present_low, report.present_high) == (3.0, 2.0, 4.5)
    table = reports.render_table(report).splitlines()
    assert "80% range" in table[3]
    assert table[4].endswith("2.0-4.5")
    assert "People present   mean 3.0, peak 4.0 at 2024-05-01 09:05 (80% range of the mean 2.0-4.5)" in table
    rows = list(csv.DictReader(io.StringIO(reports.render_csv(report))))
    assert (rows[0]["present_low"], rows[0]["present_high"]) == ("2.0000", "4.5000")
    assert (rows[-1]["present_low"], rows[-1]["present_high"]) == ("2.0000", "4.5000")
    data = json.loads(reports.render_json(report))
    assert (data["hours"][0]["present_low"], data["hours"][0]["present_high"]) == (2.0, 4.5)
    assert (data["totals"]["present_low"], data["totals"]["present_high"]) == (2.0, 4.5)


def test_without_bounds_from_the_sensor_the_table_has_no_range_column(day_report: reports.Report) -> None:
    assert "80% range" not in reports.render_table(day_report)
    assert day_report.present_low is day_report.present_high is None
