"""Salt epoch schedule: local-time boundaries, DST, alignment, limits, and ids every sensor agrees on."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.keys.salts import EpochSpan, SaltSchedule, ScheduleError, epoch_id

H = 3600 * 10**9


def ns(iso: str) -> int:
    """UTC ns of an ISO time with an explicit offset."""
    return (
        (datetime.fromisoformat(iso) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    )


def hours(span: EpochSpan) -> float:
    return (span.end_ns - span.start_ns) / H


def test_daily_epoch_starts_at_the_configured_local_time_in_winter_and_summer() -> None:
    paris = SaltSchedule.parse("daily@04:00", "Europe/Paris")
    winter = paris.span_at(ns("2026-11-24T12:00+01:00"))
    assert (winter.start_ns, winter.end_ns) == (ns("2026-11-24T04:00+01:00"), ns("2026-11-25T04:00+01:00"))
    summer = paris.span_at(ns("2026-07-14T03:59+02:00"))  # before 04:00: still the previous day's epoch
    assert summer.start_ns == ns("2026-07-13T04:00+02:00")


def test_epoch_id_is_the_utc_start_so_every_sensor_names_it_alike() -> None:
    span = SaltSchedule.parse("daily@04:00", "Europe/Paris").span_at(ns("2026-11-24T12:00+01:00"))
    assert span.id == "20261124T0300Z" == epoch_id(span.start_ns)
    other_sensor = SaltSchedule.parse("daily@04:00", "Europe/Paris")
    assert other_sensor.span_at(ns("2026-11-25T03:59:59+01:00")) == span


def test_spring_forward_day_is_23_hours_and_fall_back_day_25() -> None:
    paris = SaltSchedule.parse("daily@04:00", "Europe/Paris")  # 2026: 29 March and 25 October
    spring = paris.span_at(ns("2026-03-28T12:00+01:00"))
    autumn = paris.span_at(ns("2026-10-24T12:00+02:00"))
    assert (hours(spring), hours(autumn)) == (23, 25)
    assert spring.end_ns == ns("2026-03-29T04:00+02:00")
    assert autumn.end_ns == ns("2026-10-25T04:00+01:00")
    assert hours(paris.span(spring.index + 1)) == 24


def test_boundary_in_a_dst_gap_starts_when_the_gap_ends() -> None:
    # 02:30 does not exist in Paris on 29 March 2026: clocks go from 02:00 CET to 03:00 CEST.
    span = SaltSchedule.parse("daily@02:30", "Europe/Paris").span_at(ns("2026-03-29T12:00+02:00"))
    assert span.start_ns == ns("2026-03-29T03:00+02:00")
    # Sao Paulo started DST at midnight: 4 November 2018 had no 00:00, so the midnight epoch starts at 01:00.
    midnight = SaltSchedule.parse("every:24h", "America/Sao_Paulo").span_at(ns("2018-11-04T12:00-02:00"))
    assert midnight.start_ns == ns("2018-11-04T01:00-02:00")


def test_boundary_repeated_by_fall_back_takes_its_first_occurrence() -> None:
    # 02:30 happens twice in Paris on 25 October 2026 (CEST, then CET): the first one counts.
    span = SaltSchedule.parse("daily@02:30", "Europe/Paris").span_at(ns("2026-10-25T12:00+01:00"))
    assert span.start_ns == ns("2026-10-25T02:30+02:00")


def test_hourly_epochs_skip_the_hour_a_dst_gap_swallows() -> None:
    hourly = SaltSchedule.parse("every:1h", "Europe/Paris")
    first = hourly.index_at(ns("2026-03-29T01:30+01:00"))
    spans = [hourly.span(i) for i in range(first, first + 3)]
    assert [hours(s) for s in spans] == [1, 0, 1]  # the 02:00 epoch is empty: 02:00 never happens
    assert spans[0].end_ns == spans[1].start_ns == spans[2].start_ns == ns("2026-03-29T03:00+02:00")
    assert hourly.index_at(spans[2].start_ns) == first + 2  # no instant is ever in the empty one


def test_hourly_epoch_over_fall_back_covers_both_passes_of_the_repeated_hour() -> None:
    hourly = SaltSchedule.parse("every:1h", "Europe/Paris")
    span = hourly.span_at(ns("2026-10-25T02:30+01:00"))  # the second 02:30
    assert (span.start_ns, hours(span)) == (ns("2026-10-25T02:00+02:00"), 2)


def test_every_n_hours_is_aligned_to_local_midnight() -> None:
    six = SaltSchedule.parse("every:6h", "Europe/Paris")
    first = six.index_at(ns("2026-11-24T00:00+01:00"))
    starts = [six.span(first + k).start_ns for k in range(5)]
    assert starts == [ns(f"2026-11-{d}T{h}+01:00") for d, h in (("24", "00:00"), ("24", "06:00"),
                                                                  ("24", "12:00"), ("24", "18:00"),
                                                                  ("25", "00:00"))]  # fmt: skip
    offset = SaltSchedule.parse("every:6h@04:00", "Europe/Paris").span_at(ns("2026-11-24T09:00+01:00"))
    assert offset.start_ns == ns("2026-11-24T04:00+01:00")


@pytest.mark.parametrize("n", [5, 7, 9, 10, 11, 13, 23])
def test_hours_that_do_not_divide_the_day_are_rejected(n: int) -> None:
    with pytest.raises(ScheduleError, match=f"epoch length {n} h does not divide the day"):
        SaltSchedule.parse(f"every:{n}h", "UTC")


def test_an_epoch_longer_than_24_hours_needs_allow_long() -> None:
    with pytest.raises(ScheduleError, match=r"epoch length 25 h exceeds 24 h.*allow_long"):
        SaltSchedule.parse("every:25h", "Europe/Paris")
    with pytest.raises(ScheduleError, match="whole days"):
        SaltSchedule.parse("every:25h", "Europe/Paris", allow_long=True)


def test_allowed_long_epochs_log_a_warning_and_span_whole_local_days(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="sensor.keys.salts"):
        two_days = SaltSchedule.parse("every:48h", "Europe/Paris", allow_long=True)
    assert "more than a day" in caplog.text
    span = two_days.span_at(ns("2026-11-24T12:00+01:00"))
    assert hours(span) == 48
    assert datetime.fromtimestamp(span.start_ns // 10**9, ZoneInfo("Europe/Paris")).hour == 0


@pytest.mark.parametrize("spec", ["daily@04:00", "every:6h", "every:6h@01:00", "every:1h", "every:48h@03:00"])
def test_the_canonical_spec_parses_back_to_the_same_schedule(spec: str) -> None:
    schedule = SaltSchedule.parse(spec, "Europe/Paris", allow_long=True)
    assert schedule.spec == spec
    assert SaltSchedule.parse(schedule.spec, "Europe/Paris", allow_long=True) == schedule


def test_every_24h_is_daily_at_midnight() -> None:
    assert SaltSchedule.parse("every:24h", "UTC").spec == "daily@00:00"


@pytest.mark.parametrize(
    ("spec", "zone", "message"),
    [
        ("daily", "UTC", "daily needs a time"),
        ("daily@24:00", "UTC", "not a time of day"),
        ("weekly", "UTC", "expected daily@HH:MM"),
        ("every:0h", "UTC", "at least 1 h"),
        ("every:6h@07:00", "UTC", "every:6h@01:00 names the same boundaries"),
        ("daily@04:00", "Europe/Atlantis", "unknown time zone 'Europe/Atlantis'"),
        ("daily@04:00", "../etc/passwd", "unknown time zone"),
    ],
)
def test_malformed_schedules_are_rejected_with_the_value(spec: str, zone: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        SaltSchedule.parse(spec, zone)


ZONES = ["UTC", "Europe/Paris", "America/New_York", "America/Sao_Paulo", "Australia/Lord_Howe",
         "Asia/Kathmandu", "Pacific/Apia", "Europe/Dublin"]  # fmt: skip
SPECS = [
    "daily@04:00",
    "daily@02:30",
    "daily@00:00",
    "every:1h",
    "every:3h@02:00",
    "every:8h",
    "every:12h@01:30",
]


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    spec=st.sampled_from(SPECS),
    ts=st.integers(ns("1971-01-01T00:00+00:00"), ns("2100-01-01T00:00+00:00")),
)
def test_every_instant_is_in_exactly_one_epoch_and_epochs_tile_time(zone: str, spec: str, ts: int) -> None:
    schedule = SaltSchedule.parse(spec, zone)
    span = schedule.span_at(ts)
    assert ts in span
    assert schedule.index_at(span.start_ns) == span.index
    following = schedule.span_at(span.end_ns)
    assert following.start_ns == span.end_ns
    assert following.index > span.index
    assert all(schedule.span(i).start_ns == span.end_ns for i in range(span.index + 1, following.index))
    assert following.id != span.id
