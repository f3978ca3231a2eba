"""The dashboard over HTTP on a real uvicorn server and both store backends: accounts, sessions, CSRF,
login throttling, the store scope, and figures and CSV equal to the report's.

The browser-side checks (charts drawn, no other host, the live figure) are in test_dashboard_browser.py.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from collector.cli.main import main as collector_cli
from collector.config import CollectorConfig
from collector.ingest.ingestor import Ingestor
from collector.reports import report as reports
from collector.storage.base import Store
from collector.storage.dashboard import calibrations, put_calibration, sensor_health, visit_totals
from collector.storage.privacy import RetentionCutoffs
from collector.storage.sqlite import SqliteStore
from collector.storage.trigger_log import trigger_log
from collector.web import figures
from collector.web.accounts import AccountError, open_accounts
from collector.web.security import LoginThrottle
from footfall.calibration import CalibrationReport
from footfall.events import event_id
from tests.dashboard_data import DEMO_DAY, PASSWORDS, count, fill, replay_demo, served, status
from tests.pgserver import BACKENDS, open_backend, postgres_dsn, postgres_server  # noqa: F401

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 3, 15, 9, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def demo_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return replay_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module", params=BACKENDS)
def served_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, demo_jsonl: Path
) -> Iterator[tuple[str, Store, Clock]]:
    """One filled store per backend for the module (filling and argon2 are slow on a busy machine)."""
    db = open_store(request, tmp_path_factory.mktemp("site"))
    fill(db, demo_jsonl)
    clock = Clock()
    with served(db, clock) as url:
        yield url, db, clock
    db.close()


@pytest.fixture
def site(served_site: tuple[str, Store, Clock]) -> tuple[str, Store, Clock]:
    served_site[2].now = Clock().now  # a test may have moved the clock
    return served_site


def open_store(request: pytest.FixtureRequest, directory: Path) -> Store:
    if request.param == "sqlite":
        return SqliteStore(directory / "f.db")
    import psycopg

    from collector.storage.postgres import PostgresStore

    server: str = request.getfixturevalue("postgres_server")
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute('CREATE DATABASE "footfall_dashboard"')
    return PostgresStore(server.replace("dbname=postgres", "dbname=footfall_dashboard"))


def login(url: str, name: str, password: str, *, csrf: bool = True) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=20)
    token = CSRF.findall(client.get("/login").text)[0]
    form = {"name": name, "password": password, **({"csrf": token} if csrf else {})}
    return client, client.post("/login", data=form)


def session_csrf(client: httpx.Client) -> str:
    return str(CSRF.findall(client.get("/").text)[0])


def test_a_right_password_opens_a_session_in_an_httponly_samesite_cookie(
    site: tuple[str, Store, Clock],
) -> None:
    url, _, _ = site
    client, answer = login(url, "dana", PASSWORDS["dana"])
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert "footfall_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; over TLS it is set
    page = client.get("/")
    assert page.status_code == 200 and 'data-store="demo"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_a_wrong_password_or_unknown_user_is_refused_and_opens_nothing(
    site: tuple[str, Store, Clock],
) -> None:
    url, _, _ = site
    for name, password in (("dana", "not-her-password"), ("nobody", PASSWORDS["dana"])):
        client, answer = login(url, name, password)
        assert answer.status_code == 401 and "Wrong user name or password" in answer.text
        assert "footfall_session" not in answer.headers.get("set-cookie", "")
        assert client.get("/").status_code == 303  # back to the login page


def test_a_login_or_logout_without_the_csrf_token_is_refused(site: tuple[str, Store, Clock]) -> None:
    url, _, _ = site
    _, answer = login(url, "dana", PASSWORDS["dana"], csrf=False)
    assert answer.status_code == 403 and "CSRF" in answer.text
    client, answer = login(url, "dana", PASSWORDS["dana"])
    assert client.post("/logout", data={}).status_code == 403
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
    assert client.get("/").status_code == 200  # still logged in
    assert client.post("/logout", data={"csrf": session_csrf(client)}).status_code == 303
    assert client.get("/").status_code == 303


def test_a_viewer_of_one_store_gets_no_page_figure_or_csv_of_another(site: tuple[str, Store, Clock]) -> None:
    url, _, _ = site
    viewer, _ = login(url, "dana", PASSWORDS["dana"])
    assert "paris-01" not in viewer.get("/").text
    assert "paris-01" not in viewer.get("/now.json").json()
    for path in (
        "/stores/paris-01",
        "/stores/paris-01/omnichannel",
        "/stores/paris-01/charts/daily.csv",
        "/stores/paris-01/now.json",
    ):
        assert viewer.get(path).status_code == 404, path
    admin, _ = login(url, "olga", PASSWORDS["olga"])
    assert admin.get("/stores/paris-01").status_code == 200
    assert set(admin.get("/now.json").json()) == {"demo", "lyon-02", "paris-01"}


def test_only_an_admin_may_open_a_profile_s_journey(site: tuple[str, Store, Clock]) -> None:
    url, _, _ = site
    admin, _ = login(url, "olga", PASSWORDS["olga"])
    page = admin.post("/stores/paris-01/omnichannel", data={"profile": "alice", "csrf": session_csrf(admin)})
    assert page.status_code == 200 and 'class="journey"' in page.text
    assert admin.post("/stores/paris-01/omnichannel", data={"profile": "alice"}).status_code == 403
    viewer, _ = login(url, "dana", PASSWORDS["dana"])
    token = session_csrf(viewer)
    assert (
        viewer.post("/stores/demo/omnichannel", data={"profile": "alice", "csrf": token}).status_code == 403
    )
    assert "Trigger log" not in viewer.get("/stores/demo/omnichannel").text


def test_the_trigger_log_lists_the_sent_triggers_with_its_csv_for_admins_in_scope_only(
    site: tuple[str, Store, Clock],
) -> None:
    url, db, _ = site
    span = "from=2024-05-01&to=2024-05-10"
    logged = trigger_log(db, "paris-01", datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 11, tzinfo=UTC))
    assert {t.profile_id for t in logged} >= {"alice", "bob"}
    admin, _ = login(url, "olga", PASSWORDS["olga"])
    page = admin.get(f"/stores/paris-01/omnichannel?{span}").text
    assert re.findall(r'<tr data-visit="([0-9a-f]+)">', page) == [t.visit for t in logged]
    answer = admin.get(f"/stores/paris-01/triggers.csv?{span}")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    zone = CollectorConfig().report.zone
    assert [(r["visit"], r["profile_id"], r["sensor"], r["visit_start"]) for r in rows] == [
        (t.visit, t.profile_id, t.sensor, figures.local(t.at, zone)) for t in logged
    ]
    for r in rows:
        assert f"<td>{r['visit_start']}</td><td>{r['profile_id']}</td><td>{r['sensor']}</td>" in page
    assert not list(
        csv.DictReader(
            io.StringIO(admin.get("/stores/paris-01/triggers.csv?from=2024-06-01&to=2024-06-02").text)
        )
    )
    viewer, _ = login(url, "dana", PASSWORDS["dana"])
    assert viewer.get(f"/stores/paris-01/triggers.csv?{span}").status_code == 404  # not their store
    assert viewer.get("/stores/demo/triggers.csv").status_code == 403  # their store, but no admin


def test_erasing_a_profile_or_retention_erases_its_trigger_log_lines(fresh: Store) -> None:
    whole = (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 11, tzinfo=UTC))
    before = trigger_log(fresh, "paris-01", *whole)
    fresh.profiles().erase("alice")
    after = trigger_log(fresh, "paris-01", *whole)
    assert [t for t in before if t.profile_id != "alice"] == after and len(after) < len(before)
    cutoff = datetime(2024, 5, 2, tzinfo=UTC)
    assert any(t.at < cutoff for t in after)
    fresh.apply_retention(
        RetentionCutoffs(pseudonyms=datetime(2000, 1, 1, tzinfo=UTC), consents=cutoff, visits=cutoff),
        dry_run=False,
        label=lambda n: "3" * 2 * n,
    )
    assert trigger_log(fresh, "paris-01", *whole) == [t for t in after if t.at >= cutoff]


def test_an_expired_session_opens_nothing(site: tuple[str, Store, Clock]) -> None:
    url, _, clock = site
    client, _ = login(url, "dana", PASSWORDS["dana"])
    assert client.get("/stores/demo/now.json").status_code == 200
    clock.now += timedelta(hours=12, seconds=1)
    assert client.get("/stores/demo/now.json").status_code == 401
    assert client.get("/").status_code == 303


def test_a_chart_csv_holds_the_report_s_numbers_and_the_page_its_totals(
    site: tuple[str, Store, Clock],
) -> None:
    url, db, _ = site
    client, _ = login(url, "dana", PASSWORDS["dana"])
    day = datetime.fromisoformat(DEMO_DAY).date()
    expected = reports.for_store(db, "demo", day, day, reports.ReportConfig())
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(f"/stores/demo/charts/today.csv?from={DEMO_DAY}&to={DEMO_DAY}").text)
        )
    )
    assert [(r["hour_start"], int(r["passersby"]), int(r["visitors"])) for r in rows] == [
        (f"{h.start:%H:%M}", h.passersby, h.visitors) for h in expected.hours
    ]
    daily = list(
        csv.DictReader(
            io.StringIO(client.get(f"/stores/demo/charts/daily.csv?from={DEMO_DAY}&to={DEMO_DAY}").text)
        )
    )
    assert daily == [
        {"date": DEMO_DAY, "passersby": str(expected.passersby), "visitors": str(expected.visitors)}
    ]
    page = client.get(f"/stores/demo?from={DEMO_DAY}&to={DEMO_DAY}").text
    assert f'data-figure="visitors">{expected.visitors}<' in page
    assert client.get("/stores/demo?from=2024-03-15&to=2024-03-14").status_code == 400


def test_the_sensor_table_shows_the_latest_retained_status_of_each_sensor_and_its_signal_drift(
    site: tuple[str, Store, Clock],
) -> None:
    url, db, _ = site
    client, _ = login(url, "dana", PASSWORDS["dana"])
    page = client.get("/stores/demo").text
    door1 = re.search(r'<tr data-sensor="door-1">(.*?)</tr>', page, re.S)
    door2 = re.search(r'<tr data-sensor="door-2">(.*?)</tr>', page, re.S)
    assert door1 and door2
    assert "online" in door1[1] and "12.5" in door1[1] and "<td>3</td>" in door1[1]
    assert "offline" in door2[1]  # the last will, after its online status
    # The signal scale of footfall/events.py's status, stored and shown, a drift flagged.
    assert '<td data-figure="signal_ref">-61.0 dBm</td>' in door1[1]
    assert re.search(
        r'<td data-figure="signal_offset" class="drift"[^>]*>\+9\.5 dB <b>drift</b></td>', door1[1]
    )
    assert '<td data-figure="signal_offset">-</td>' in door2[1] and "drift" not in door2[1]
    (health,) = [h for h in sensor_health(db, "demo") if h.sensor == "door-1"]
    assert (health.signal_ref_dbm, health.signal_offset_db, health.signal_drift) == (-61.0, 9.5, True)


def test_failed_logins_are_throttled_per_user_and_per_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock, per_user=3, per_address=5)
    for _ in range(3):
        throttle.failed("dana", "10.0.0.1")
    assert throttle.retry_after("dana", "10.0.0.9") is not None  # the user, from any address
    assert throttle.retry_after("olga", "10.0.0.2") is None
    for name in ("a", "b"):
        throttle.failed(name, "10.0.0.1")
    assert throttle.retry_after("someone-else", "10.0.0.1") is not None  # the address, for any name
    clock.now += timedelta(minutes=15, seconds=1)
    assert throttle.retry_after("dana", "10.0.0.1") is None


def test_the_sixth_wrong_password_is_throttled_even_when_right(site: tuple[str, Store, Clock]) -> None:
    url, _, _ = site
    for _ in range(5):
        assert login(url, "tess", "wrong-password")[1].status_code == 401
    _, answer = login(url, "tess", PASSWORDS["tess"])
    assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 0


def test_users_are_added_listed_repassworded_and_removed_with_prompted_passwords(tmp_path: Path) -> None:
    db_path = tmp_path / "f.db"
    runner = CliRunner()

    def run(*args: str, given: str | None = None) -> str:
        result = runner.invoke(collector_cli, [*args, "--db", str(db_path)], input=given)
        assert result.exit_code == 0, result.output
        return result.output

    run(
        "users", "add", "dana", "--store", "demo", "--store", "lyon", given="first-password\nfirst-password\n"
    )
    run("users", "add", "olga", "--all", "--role", "admin", given="olga-password\nolga-password\n")
    listed = run("users", "list")
    assert re.search(r"dana\s+viewer\s+demo, lyon", listed) and re.search(
        r"olga\s+admin\s+every store", listed
    )
    store = SqliteStore(db_path)
    stored = store.query("read", "SELECT password_hash FROM web_users WHERE name = 'dana'")[0][0]
    assert stored.startswith("$argon2id$") and "first-password" not in stored
    accounts = open_accounts(store)
    assert accounts.verify("dana", "first-password") is not None
    run("users", "passwd", "dana", given="second-password\nsecond-password\n")
    assert accounts.verify("dana", "first-password") is None
    assert accounts.verify("dana", "second-password") is not None
    run("users", "remove", "dana")
    assert [u.name for u in accounts.users()] == ["olga"]
    store.close()

    mismatch = runner.invoke(
        collector_cli,
        ["users", "add", "x", "--all", "--db", str(db_path)],
        input="a-password-1\nanother-one\n" * 3,
    )
    assert mismatch.exit_code != 0
    both = runner.invoke(collector_cli, ["users", "add", "x", "--all", "--store", "a", "--db", str(db_path)])
    assert both.exit_code == 2 and "not both" in both.output
    short = runner.invoke(
        collector_cli, ["users", "add", "x", "--all", "--db", str(db_path)], input="short\nshort\n"
    )
    assert short.exit_code == 1 and "at least 10 characters" in short.output


def test_removing_a_user_or_changing_the_password_ends_their_sessions(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "f.db")
    accounts = open_accounts(store)
    now = datetime(2024, 3, 15, tzinfo=UTC)
    accounts.add("dana", "a-long-password", "viewer", ["demo"], now)
    user = accounts.verify("dana", "a-long-password")
    assert user is not None
    session_id, _ = accounts.open_session(user, now)
    assert accounts.session(session_id, now) is not None
    accounts.set_password("dana", "another-password")
    assert accounts.session(session_id, now) is None
    with pytest.raises(AccountError, match="exists already"):
        accounts.add("dana", "a-long-password", "viewer", ["demo"], now)
    stored = json.dumps(store.query("read", "SELECT * FROM web_sessions"))
    assert session_id not in stored  # only its hash is kept
    store.close()


def test_a_calibrate_counts_report_is_stored_and_shown_with_its_csv(
    site: tuple[str, Store, Clock], tmp_path: Path
) -> None:
    from sensor.cli.calibrate import calibrate
    from tests.test_calibrate import CONFIG, crafted_day

    url, db, _ = site
    capture, truth, config = tmp_path / "day.pcap", tmp_path / "truth.csv", tmp_path / "sensor.yaml"
    crafted_day(capture, 3.0)
    truth.write_text("timestamp,count\n2023-11-14T22:13:20Z,6\n2023-11-15T01:13:20Z,6\n")
    config.write_text("site:\n  store: demo\n  sensor: door-1\n" + CONFIG)
    report_file = tmp_path / "calibration.json"
    made = CliRunner().invoke(
        calibrate, ["counts", str(capture), "--truth", str(truth), "--config", str(config),
                    "--report", str(report_file)],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    report = json.loads(report_file.read_text())
    assert report["schema"] == "footfall.calibration/1" and report["windows"]
    stored = put_calibration(db, CalibrationReport.model_validate_json(report_file.read_text()))
    assert stored
    client, _ = login(url, "dana", PASSWORDS["dana"])
    page = client.get("/stores/demo/calibration").text
    assert f'data-figure="mae-fitted">{report["fitted"]["mae"]:.2f}<' in page
    assert f'data-figure="mae-before">{report["before"]["mae"]:.2f}<' in page
    rows = list(csv.DictReader(io.StringIO(client.get("/stores/demo/charts/calibration-door-1.csv").text)))
    assert [float(r["truth"]) for r in rows] == [w["truth"] for w in report["windows"]]
    older = CalibrationReport.model_validate({**report, "made_at": "2020-01-01T00:00:00Z"})
    assert not put_calibration(db, older)  # an older report does not replace the latest


def test_calibration_import_stores_a_report_and_refuses_a_bad_file_with_one_line(tmp_path: Path) -> None:
    fit = {"inside_rssi_dbm": -67, "holdover_s": 300, "site_factor": 1.3, "mae": 0.5}
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"store": "demo", "sensor": "door-1", "made_at": "2024-03-14T12:00:00Z",
                                "before": fit, "fitted": fit, "windows": []}))  # fmt: skip
    db_path = tmp_path / "f.db"
    result = CliRunner().invoke(collector_cli, ["calibration", "import", str(good), "--db", str(db_path)])
    assert result.exit_code == 0 and "stored as the report of demo/door-1" in result.output
    store = SqliteStore(db_path)
    assert [r.sensor for r in calibrations(store, "demo")] == ["door-1"]
    store.close()
    bad = tmp_path / "c.json"
    bad.write_text('{"schema": "footfall.calibration/1", "store": "demo"}')
    result = CliRunner().invoke(
        collector_cli, ["calibration", "import", str(bad), "--db", str(tmp_path / "f.db")]
    )
    assert result.exit_code == 1 and f"{bad}: sensor: Field required" in result.output


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path, demo_jsonl: Path) -> Iterator[Store]:
    db = open_backend(request, tmp_path)()
    fill(db, demo_jsonl)
    yield db
    db.close()


def test_the_visit_rollup_gives_the_report_s_day_figures_as_visits_are_stored_and_deleted(
    fresh: Store, demo_jsonl: Path
) -> None:
    config = reports.ReportConfig()
    day = date.fromisoformat(DEMO_DAY)

    def both(store: str, d: date) -> tuple[tuple[int, int], tuple[int, int]]:
        report = reports.for_store(fresh, store, d, d, config)
        totals = visit_totals(fresh, store, *reports.period(d, d, config.zone))
        return (report.visitors, report.passersby), (totals.visitors, totals.passersby)

    expected, rolled = both("demo", day)
    assert rolled == expected and expected[0] > 0
    fill_again = Ingestor(fresh, CollectorConfig().ingest, "footfall/v1")
    for line in demo_jsonl.read_bytes().splitlines():
        fill_again.handle_line(line)
    fill_again.flush()
    assert both("demo", day) == (expected, expected)  # a re-sent visit is stored once, counted once
    # Several sensors: the overview asks the report itself, so its figure is the report's every day.
    days = [date(2024, 5, 1) + timedelta(days=i) for i in range(10)]
    assert figures._visitors_each(fresh, [("paris-01", d) for d in days], config) == [
        reports.for_store(fresh, "paris-01", d, d, config).visitors for d in days
    ]
    noon = datetime(2024, 3, 14, 12, tzinfo=UTC)
    cutoffs = RetentionCutoffs(pseudonyms=datetime(2000, 1, 1, tzinfo=UTC), consents=noon, visits=noon)
    assert fresh.apply_retention(cutoffs, dry_run=False, label=lambda n: "3" * 2 * n).visits_deleted
    expected, rolled = both("demo", day)
    assert rolled == expected  # deleted visits leave the roll-up too


def test_counts_with_an_interval_show_it_now_and_as_the_occupancy_band(fresh: Store) -> None:
    at = datetime(2024, 3, 14, 19, 30, tzinfo=UTC)  # later than every replayed interval
    fresh.add([count(at, 6.0).model_copy(update={"present_low": 4.5, "present_high": 8.0})])
    with served(fresh) as url:
        client, _ = login(url, "dana", PASSWORDS["dana"])
        now = client.get("/stores/demo/now.json").json()["demo"]
        assert (now["present"], now["low"], now["high"]) == (6.0, 4.5, 8.0)
        assert 'data-figure="present-interval">(4.5–8.0)<' in client.get("/stores/demo").text
        rows = list(
            csv.DictReader(
                io.StringIO(
                    client.get(f"/stores/demo/charts/occupancy.csv?from={DEMO_DAY}&to={DEMO_DAY}").text
                )
            )
        )
    day = date.fromisoformat(DEMO_DAY)
    hour = next(
        h
        for h in reports.for_store(fresh, "demo", day, day, reports.ReportConfig()).hours
        if h.start.hour == 20
    )
    row = next(r for r in rows if r["hour_start"].endswith("20:00"))
    assert float(row["present_low"]) == round(hour.present_low or -1, 2)
    assert float(row["present_high"]) == round(hour.present_high or -1, 2)


def test_the_sensor_table_reads_each_sensor_s_latest_of_many_statuses_a_tie_by_event_id(fresh: Store) -> None:
    t0 = datetime(2024, 3, 14, 19, 5, tzinfo=UTC)
    minutes = [status("door-3", "online", t0 + timedelta(minutes=i), drops=i) for i in range(30)]
    tie = [status("door-3", state, t0 + timedelta(minutes=30)) for state in ("online", "offline")]
    fresh.add(minutes[15:] + tie + minutes[:15])  # out of order, as a replayed spool may send them
    winner = max(tie, key=lambda e: e.event_id)  # at one time, the last by event id
    (door3,) = [h for h in sensor_health(fresh, "demo") if h.sensor == "door-3"]
    assert (door3.state, door3.status_at) == (winner.state, winner.at)


def copy_store(db: Store, jsonl: Path, store: str, weeks: Sequence[int], keep_every: int) -> None:
    """The demo's events again as store `store`, moved `w` weeks on for each of `weeks` (so the chain has
    more one-sensor stores, with the same weekday in earlier weeks), every `keep_every`-th visit dropped
    in each earlier week so that no two weeks are alike."""
    ingestor = Ingestor(db, CollectorConfig().ingest, "footfall/v1")
    for w in weeks:
        for n, line in enumerate(jsonl.read_bytes().splitlines()):
            event = json.loads(line)
            if w and event["schema"].startswith("footfall.visit") and n % keep_every == 0:
                continue
            event["store"] = store
            event["event_id"] = event_id("copy", store, w, event["event_id"])
            for key in ("start", "end", "at"):
                if key in event:
                    moved = datetime.fromisoformat(event[key]) + timedelta(weeks=w)
                    event[key] = moved.isoformat().replace("+00:00", "Z")
            ingestor.handle_line(json.dumps(event).encode())
    ingestor.flush()
    assert not sum(ingestor.stats.rejected.values())


def same(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 (a roll-up's mean is a sum over a count, the rows' an exact `fmean`)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def overview_rows(page: str) -> dict[str, dict[str, str]]:
    """The chain overview's figures, store by store, as the page shows them."""
    rows = {}
    for store, row in re.findall(r'<tr data-store="([^"]+)">(.*?)</tr>', page, re.S):
        figures_shown = dict(re.findall(r'data-figure="([a-z_]+)">([^<]*)<', row))
        rows[store] = {k: v.strip() for k, v in figures_shown.items()}
    return rows


def test_the_chain_overview_shows_for_each_store_the_figures_of_its_own_report(
    fresh: Store, demo_jsonl: Path
) -> None:
    """Batched across stores (a few queries for the chain), each row still equals the report of its store
    and day built from the rows (`report.from_rows`, which merges sensors), its sensors the sensor
    table's, and its comparison the reports of the same weekday 1-4 weeks before."""
    config = reports.ReportConfig()
    copy_store(fresh, demo_jsonl, "nice-03", [0, 1, 2, 4], keep_every=3)  # no data 3 weeks before
    copy_store(fresh, demo_jsonl, "lille-04", [-1, 0], keep_every=2)  # its last day is the demo's
    clock = Clock()
    clock.now = datetime(2024, 4, 11, 20, tzinfo=UTC)  # nice-03's last day; the others' is before
    stores = fresh.stores()
    assert {"demo", "paris-01", "nice-03", "lille-04"} <= set(stores)
    with served(fresh, clock) as url:
        admin, _ = login(url, "olga", PASSWORDS["olga"])
        shown = overview_rows(admin.get("/").text)
        now = admin.get("/now.json").json()
    assert set(shown) == set(stores)
    for store in stores:
        row = shown[store]
        day = date.fromisoformat(row["day"])
        assert day == figures.reference_day(fresh, store, config.zone, clock.now.date())
        expected = reports.from_rows(fresh, store, day, day, config)
        assert same(
            reports.to_dict(reports.for_store(fresh, store, day, day, config)), reports.to_dict(expected)
        )
        assert row["visitors"] == str(expected.visitors), store
        assert row["passersby"] == str(expected.passersby), store
        assert row["capture_rate"] == pct(expected.capture_rate), store
        median = expected.median_dwell_s
        assert row["median_dwell"] == ("-" if median is None else f"{median / 60:.1f} min"), store
        health = sensor_health(fresh, store)
        assert row["sensors"] == f"{sum(h.state == 'online' for h in health)} / {len(health)}", store
        before = [
            reports.from_rows(fresh, store, d, d, config).visitors
            for d in (day - timedelta(weeks=w) for w in range(1, 5))
        ]
        mean = sum(before) / 4
        assert row["against_same_weekday"] == (
            "- (no visitors then)"
            if not mean
            else f"{100 * (expected.visitors / mean - 1):+.1f}% (mean {mean:.1f})"
        ), store
        latest = max(
            fresh.counts(store, *reports.period(day, day, config.zone)), key=lambda c: c.start, default=None
        )
        if latest is not None and store != "paris-01":  # one sensor: its own latest interval
            assert row["present"] == f"{latest.present:.1f}" == f"{now[store]['present']:.1f}", store
    assert "%" in shown["nice-03"]["against_same_weekday"]  # three of its four weeks before had visitors
    assert shown["lille-04"]["visitors"] == shown["demo"]["visitors"] != "0"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
