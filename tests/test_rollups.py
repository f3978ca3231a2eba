"""The report from the roll-ups (collector/reports/rollup.py) equals the report from the rows, on both backends,
as events are stored, re-sent and deleted; a period with two sensors is left to the rows."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from collector.config import ReportConfig
from collector.reports import report as reports
from collector.reports import rollup
from collector.storage.base import Store, migrations
from collector.storage.dashboard import query_of, transaction_of
from collector.storage.privacy import RetentionCutoffs
from collector.storage.sqlite import SqliteStore
from tests import test_dashboard
from tests.dashboard_data import DEMO_DAY, count
from tests.pgserver import postgres_dsn, postgres_server  # noqa: F401
from tests.test_report import visit

# The demo replay on each backend, as the dashboard tests fill it.
demo_jsonl, fresh = test_dashboard.demo_jsonl, test_dashboard.fresh
same = test_dashboard.same
CONFIG = ReportConfig()
DAY = date.fromisoformat(DEMO_DAY)


def check(db: Store, store: str, first: date, last: date) -> dict[str, Any]:
    fast = rollup.for_store(db, store, first, last, CONFIG.zone, CONFIG.dwell_edges_min)
    assert fast is not None, "a one-sensor period is read from the roll-ups"
    rows = reports.to_dict(reports.from_rows(db, store, first, last, CONFIG))
    assert same(reports.to_dict(fast), rows), (reports.to_dict(fast), rows)
    return rows


def test_the_roll_up_report_equals_the_rows_report_for_days_and_ranges(fresh: Store) -> None:
    day = check(fresh, "demo", DAY, DAY)
    totals = day["totals"]
    assert totals["visitors"] > 0 and totals["passersby"] > 0 and day["hours"]
    assert totals["present_peak"] is not None and totals["median_dwell_s"] is not None
    check(fresh, "demo", DAY - timedelta(days=6), DAY + timedelta(days=1))  # empty days around it
    empty = check(fresh, "demo", DAY + timedelta(days=30), DAY + timedelta(days=30))
    assert empty["notes"][0].startswith("No visits or counts")


def test_the_count_roll_up_keeps_bounds_estimates_and_the_earliest_peak(fresh: Store) -> None:
    at = datetime(2024, 3, 14, 19, 30, tzinfo=UTC)
    late = [
        count(at + timedelta(minutes=5 * i), p).model_copy(
            update={"present_low": p - 1, "present_high": p + 2, "visitors_est": 1.5, "passersby_est": 0.25}
        )
        for i, p in enumerate((40.0, 41.5, 41.5, 3.0))
    ]
    late.append(count(at + timedelta(minutes=20), 2.0))  # no bounds: its hour's mean bound is undefined
    before = check(fresh, "demo", DAY, DAY)["totals"]
    fresh.add(late)
    fresh.add(late)  # a re-sent interval is stored once and rolled up once
    day = check(fresh, "demo", DAY, DAY)
    totals = day["totals"]
    assert totals["present_peak"] == 41.5
    assert totals["present_peak_at"] == (at + timedelta(minutes=5)).astimezone(CONFIG.zone).isoformat()
    assert totals["visitors_people"] == round((before["visitors_people"] or 0) + 6.0, 1)
    assert totals["passersby_people"] == round((before["passersby_people"] or 0) + 1.0, 1)
    hour = next(h for h in day["hours"] if h["start"].endswith("20:00:00+01:00"))
    assert (
        hour["present_mean"] == pytest.approx((40 + 41.5 + 41.5 + 3 + 2) / 5) and hour["present_low"] is None
    )
    check(fresh, "demo", DAY + timedelta(days=1), DAY + timedelta(days=1))


def test_deleted_visits_and_counts_leave_the_roll_ups(fresh: Store) -> None:
    noon = datetime(2024, 3, 14, 12, tzinfo=UTC)
    cutoffs = RetentionCutoffs(pseudonyms=datetime(2000, 1, 1, tzinfo=UTC), consents=noon, visits=noon)
    assert fresh.apply_retention(cutoffs, dry_run=False, label=lambda n: "3" * 2 * n).visits_deleted
    check(fresh, "demo", DAY, DAY)
    # Nothing deletes counts today; a delete still leaves the roll-up equal to the rows.
    with transaction_of(fresh)("delete counts") as db:
        one = datetime(2024, 3, 14, 13, 10, tzinfo=UTC)  # part of a bucket, so the rest is recomputed
        db.execute(
            "DELETE FROM counts WHERE store = ? AND start_us >= ? AND start_us < ?",
            ("demo", int(one.timestamp() * 1e6), int((one + timedelta(minutes=40)).timestamp() * 1e6)),
        )
    after = check(fresh, "demo", DAY, DAY)
    assert after["totals"]["present_mean"] is not None


def test_a_period_with_two_sensors_is_left_to_the_rows(fresh: Store) -> None:
    at = datetime(2024, 3, 14, 15, tzinfo=UTC)
    second = count(at, 4.0).model_copy(update={"sensor": "door-2", "event_id": "door-2-" + "0" * 25})
    fresh.add([second])
    assert rollup.for_store(fresh, "demo", DAY, DAY, CONFIG.zone, CONFIG.dwell_edges_min) is None
    two = reports.for_store(fresh, "demo", DAY, DAY, CONFIG)
    assert two.sensors == ("door-1", "door-2")
    assert reports.to_dict(two) == reports.to_dict(reports.from_rows(fresh, "demo", DAY, DAY, CONFIG))
    check(fresh, "demo", DAY + timedelta(days=1), DAY + timedelta(days=1))  # a day of one sensor again


def test_the_migration_s_backfill_view_holds_what_the_triggers_kept(fresh: Store) -> None:
    order = " ORDER BY store, bucket_us, sensor"
    kept = query_of(fresh)("read the roll-up", "SELECT * FROM count_rollup" + order, ())
    recomputed = query_of(fresh)("recompute the roll-up", "SELECT * FROM count_rollup_of" + order, ())
    assert len(kept) > 10 and same([list(r) for r in kept], [list(r) for r in recomputed])


def test_the_hourly_roll_ups_hold_what_the_rows_give_after_their_backfill_and_the_triggers(
    fresh: Store,
) -> None:
    """0010's tables, kept by their triggers as the demo was stored, equal the hours recomputed from the
    counts and visits; so does the migration's backfill from the 15-minute tables, run again here."""
    order = " ORDER BY store, bucket_us, sensor"
    visits_by_hour = (
        "SELECT store, sensor, start_us / 3600000000 * 3600000000 AS bucket_us, SUM(CASE WHEN kind = 'visitor'"
        " THEN 1 ELSE 0 END), SUM(CASE WHEN kind = 'passerby' THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN kind = 'fixed' THEN 1 ELSE 0 END) FROM visits GROUP BY 1, 2, 3"
    )
    read = query_of(fresh)

    def tables() -> tuple[list[list[Any]], list[list[Any]]]:
        return (
            [list(r) for r in read("read the hourly roll-up", "SELECT * FROM count_rollup_hour" + order, ())],
            [list(r) for r in read("read the hourly visits", "SELECT * FROM visit_rollup_hour" + order, ())],
        )

    recomputed = (
        [list(r) for r in read("recompute the hours", "SELECT * FROM count_rollup_hour_of" + order, ())],
        [list(r) for r in read("recompute the visits", f"SELECT * FROM ({visits_by_hour}) AS v" + order, ())],
    )
    assert len(recomputed[0]) > 10 and len(recomputed[1]) > 10
    assert same(list(tables()), list(recomputed))
    dialect = "" if isinstance(fresh, SqliteStore) else "postgresql"
    (sql,) = [m.sql for m in migrations(dialect) if m.version == 10]
    backfills = re.findall(r"^INSERT INTO \w+_rollup_hour\n.*?;$", sql, re.S | re.M)
    assert len(backfills) == 2
    with transaction_of(fresh)("backfill the hourly roll-ups again") as db:
        db.execute("DELETE FROM count_rollup_hour")
        db.execute("DELETE FROM visit_rollup_hour")
        for statement in backfills:
            # Run as the migration runs it, without parameters: psycopg would read its % as one.
            db.execute(statement.rstrip(";") if not dialect else statement.rstrip(";").replace("%", "%%"))
    assert same(list(tables()), list(recomputed))


def test_the_days_the_clocks_change_read_from_the_hourly_roll_ups_give_the_rows_report(fresh: Store) -> None:
    """Paris's 23- and 25-hour days of 2024: every local hour still starts on a UTC hour."""
    for changed in (datetime(2024, 3, 31, 1, tzinfo=UTC), datetime(2024, 10, 27, 1, tzinfo=UTC)):
        fresh.add(
            [count(changed + timedelta(minutes=5 * i), 1.0 + i % 7) for i in range(-30, 30)]
            + [
                visit(
                    changed + timedelta(minutes=11 * i),
                    60.0 * i,
                    kind,
                    store="demo",
                    sensor="door-1",
                    device=f"x{i % 5}",
                )
                for i, kind in enumerate(["visitor", "passerby", "visitor", "fixed", "visitor"] * 3)
            ]
        )
        day = changed.astimezone(CONFIG.zone).date()
        assert rollup.whole_hours(
            CONFIG.zone, *reports.period(day - timedelta(days=1), day + timedelta(days=1), CONFIG.zone)
        )
        hours = check(fresh, "demo", day - timedelta(days=1), day + timedelta(days=1))["hours"]
        assert len({h["start"][-6:] for h in hours}) == 2  # both offsets of the day, +01:00 and +02:00


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Europe/Paris", "UTC"])
def test_a_zone_off_the_hour_reads_the_quarters_and_gives_the_rows_report_too(
    fresh: Store, zone: str
) -> None:
    config = ReportConfig(timezone=zone)
    start, end = reports.period(DAY - timedelta(days=1), DAY + timedelta(days=1), config.zone)
    assert rollup.whole_hours(config.zone, start, end) == (zone != "Asia/Kolkata")
    fast = rollup.for_store(
        fresh, "demo", DAY - timedelta(days=1), DAY + timedelta(days=1), config.zone, config.dwell_edges_min
    )
    rows = reports.from_rows(fresh, "demo", DAY - timedelta(days=1), DAY + timedelta(days=1), config)
    assert fast is not None and same(reports.to_dict(fast), reports.to_dict(rows))
    assert rows.visitors > 0 and len({h.start.minute for h in rows.hours}) == 1


def test_connected_visitors_come_out_of_the_roll_up_report_as_the_rows_give_them(fresh: Store) -> None:
    day = date(2024, 6, 3)
    noon = datetime(2024, 6, 3, 10, tzinfo=UTC)
    on_wifi = [
        visit(noon + timedelta(minutes=7 * i), 600, kind, device=f"w{i}").model_copy(update={"connected": c})
        for i, (kind, c) in enumerate(
            [("visitor", True), ("visitor", False), ("visitor", True), ("passerby", False), ("fixed", True)]
        )
    ]
    fresh.add(on_wifi)
    totals = check(fresh, "paris-01", day, day)["totals"]
    assert totals["connected"] == 2 and totals["visitors"] == 3
    # A day whose only visits are passersby of a listening sensor: connected 0, not "not listening".
    fresh.add(
        [visit(noon + timedelta(days=1), 60, "passerby", device="p").model_copy(update={"connected": False})]
    )
    assert (
        check(fresh, "paris-01", day + timedelta(days=1), day + timedelta(days=1))["totals"]["connected"] == 0
    )
    assert check(fresh, "demo", DAY, DAY)["totals"]["connected"] is None  # the demo sensor listens to none
