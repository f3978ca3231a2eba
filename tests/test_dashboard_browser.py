"""The dashboard in a real browser: Debian's chromium, headless, driven by Selenium through chromedriver.

The store is filled from the demo replay (tests/dashboard_data.py). The browser logs in through the
form, opens every page and is checked for: the figures `report --format json` and `kpis --format json`
print for the same store and range, every chart drawn as a non-empty SVG, no console error, no request
to any host but the collector (the performance log lists every request), the store scope, a refused
wrong password, and the "now" figure following a new count event within 10 s. Screenshots go to the
test's tmp dir (and to $FOOTFALL_SCREENSHOTS when set, which is how docs/dashboard.png was made).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from collector.reports.report import period
from collector.storage.base import Store
from collector.storage.sqlite import SqliteStore
from collector.storage.trigger_log import trigger_log
from tests.dashboard_data import BIN, CALIBRATION, DEMO_DAY, PASSWORDS, count, fill, replay_demo, served

CHROMEDRIVER = Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not CHROMEDRIVER.exists() or shutil.which("chromium") is None,
    reason="Debian's chromium and chromium-driver are not installed (scripts/bootstrap installs them)",
)
RANGE = f"from={DEMO_DAY}&to={DEMO_DAY}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store, Path]]:
    directory = tmp_path_factory.mktemp("browser")
    db = SqliteStore(directory / "f.db")
    fill(db, replay_demo(directory))
    with served(db) as url:
        yield url, db, directory
    db.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1200,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # An explicit driver path: Selenium Manager is never asked to download a driver or a browser.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def cli_json(db: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run([str(BIN / "footfall-collector"), *args, "--db", str(db), "--format", "json"],
                         check=True, capture_output=True, text=True)  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def log_in(driver: Any, url: str, name: str, password: str, *, drop_csrf: bool = False) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.delete_all_cookies()
    driver.get(f"{url}/login")
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(password)
    if drop_csrf:  # a forged form: the same fields, without the token
        driver.execute_script("document.querySelector('input[name=csrf]').remove()")
    button = driver.find_element(By.CSS_SELECTOR, "form.login button")
    button.click()
    WebDriverWait(driver, 20).until(expected_conditions.staleness_of(button))  # the answer has loaded


def figure(driver: Any, name: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, f'[data-figure="{name}"]').text)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def check_page_health(driver: Any, url: str) -> None:
    """Every chart drawn, no console error, no request to another host (since the last check)."""
    from selenium.webdriver.common.by import By

    for chart in driver.find_elements(By.CSS_SELECTOR, "figure.chart"):
        svg = chart.find_element(By.TAG_NAME, "svg")
        assert svg.size["width"] > 100 and svg.size["height"] > 50, chart.get_attribute("id")
        assert chart.find_elements(By.CSS_SELECTOR, "svg .plot *"), chart.get_attribute("id")
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    ours, seen = urlsplit(url).netloc, 0
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested = urlsplit(message["params"]["request"]["url"])
            if requested.scheme in ("http", "https", "ws", "wss", "ftp"):  # chrome:, data: are no network
                assert requested.netloc == ours, requested.geturl()
                seen += 1
    assert seen, "the performance log shows no request at all"


def shot(driver: Any, directory: Path, name: str) -> None:
    path = directory / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    wanted = os.environ.get("FOOTFALL_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(wanted) / path.name)


def test_every_page_shows_the_report_and_kpi_figures_with_drawn_charts_and_nothing_from_elsewhere(
    site: tuple[str, Store, Path], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, db, directory = site
    db_file = directory / "f.db"
    report = cli_json(db_file, "report", "--store", "demo", "--from", DEMO_DAY, "--to", DEMO_DAY)["totals"]
    log_in(browser, url, "olga", PASSWORDS["olga"])
    assert browser.current_url == f"{url}/"
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-store="demo"]')
    assert row.find_element(By.CSS_SELECTOR, '[data-figure="visitors"]').text == str(report["visitors"])
    assert row.find_element(By.CSS_SELECTOR, '[data-figure="capture_rate"]').text == pct(
        report["capture_rate"]
    )
    assert row.find_element(By.CSS_SELECTOR, '[data-figure="sensors"]').text == "1 / 2"
    check_page_health(browser, url)
    shot(browser, directory, "overview")

    browser.get(f"{url}/stores/demo?{RANGE}")
    assert figure(browser, "visitors") == str(report["visitors"])
    assert figure(browser, "passersby") == str(report["passersby"])
    assert figure(browser, "capture_rate") == pct(report["capture_rate"])
    assert figure(browser, "median_dwell") == f"{report['median_dwell_s'] / 60:.1f} min"
    assert figure(browser, "repeat_visitors") == str(report["repeat_visitors"])
    assert figure(browser, "fixed_devices") == str(report["fixed_devices"])
    assert figure(browser, "present_peak") == f"{report['present_peak']:.1f}"
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart")
    assert len(charts) == 7
    check_page_health(browser, url)
    shot(browser, directory, "dashboard")

    kpis = cli_json(db_file, "kpis", "--store", "paris-01", "--from", "2024-05-01", "--to", "2024-05-10")
    browser.get(f"{url}/stores/paris-01/omnichannel?from=2024-05-01&to=2024-05-10")
    assert figure(browser, "recognised") == pct(kpis["recognised"]["share"])
    assert figure(browser, "web_to_store") == pct(kpis["web_to_store"]["rate"])
    assert figure(browser, "store_to_web") == pct(kpis["store_to_web"]["rate"])
    assert figure(browser, "median_lag") == f"{kpis['median_lag_s'] / 3600:.1f} h"
    browser.find_element(By.NAME, "profile").send_keys("alice")
    browser.find_element(By.CSS_SELECTOR, "#journey button").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.journey tbody tr"))
    logged = trigger_log(db, "paris-01", datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 11, tzinfo=UTC))
    lines = browser.find_elements(By.CSS_SELECTOR, "#triggers tbody tr[data-visit]")
    assert [r.get_attribute("data-visit") for r in lines] == [t.visit for t in logged] and logged
    assert "alice" in browser.find_element(By.ID, "triggers").text
    link = browser.find_element(By.CSS_SELECTOR, '#triggers a[data-csv="triggers"]').get_attribute("href")
    assert link == f"{url}/stores/paris-01/triggers.csv?from=2024-05-01&to=2024-05-10"
    check_page_health(browser, url)
    shot(browser, directory, "omnichannel")

    browser.get(f"{url}/stores/demo/calibration")
    assert figure(browser, "mae-fitted") == f"{CALIBRATION.fitted.mae:.2f}"
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure.chart")) == 1
    check_page_health(browser, url)


# Each chart's drawn values by series: pygal writes each point's value beside it, bars in the plot,
# line and dot markers in its overlay (the text and tooltip overlays repeat the series, empty).
DRAWN = """
return [...document.querySelectorAll('figure.chart')].map(f => {
  const values = {};
  f.querySelectorAll('svg g.plot:not(.text-overlay):not(.tooltip-overlay) > g.series').forEach(g => {
    const n = parseInt([...g.classList].find(c => c.startsWith('serie-')).slice(6));
    values[n] = (values[n] || []).concat([...g.querySelectorAll('desc.value')].map(d => d.textContent));
  });
  return {key: f.dataset.chart, csv: f.querySelector('a.csv').href,
          series: Object.keys(values).map(Number).sort((a, b) => a - b).map(n => values[n])};
});
"""


def drawn_and_csv(driver: Any) -> list[tuple[str, list[list[float]], list[list[float]], list[str]]]:
    """Each chart of the page: the values its SVG draws per series (pygal writes each point's value
    beside it), the non-empty values of its CSV's columns as the browser's session downloads it, and
    the CSV's header."""
    import httpx

    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    out = []
    for chart in driver.execute_script(DRAWN):
        text = httpx.get(chart["csv"], cookies=cookies, timeout=20).text
        header, *rows = list(csv.reader(io.StringIO(text)))
        columns = [[float(r[k]) for r in rows if r[k] != ""] for k in range(1, len(header))]
        svg = [[float(v) for v in series] for series in chart["series"]]
        out.append((chart["key"], svg, columns, header))
    return out


def test_every_chart_draws_exactly_the_numbers_of_its_csv_and_each_page_every_figure_it_promises(
    site: tuple[str, Store, Path], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    url, db, directory = site
    db_file = directory / "f.db"
    day = date.fromisoformat(DEMO_DAY)
    log_in(browser, url, "olga", PASSWORDS["olga"])
    # The chain overview: today's figures of the report, sensors online / total, the same weekday.
    report = cli_json(db_file, "report", "--store", "demo", "--from", DEMO_DAY, "--to", DEMO_DAY)
    totals = report["totals"]
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-store="demo"]')
    shown = {
        e.get_attribute("data-figure"): e.text for e in row.find_elements(By.CSS_SELECTOR, "[data-figure]")
    }
    latest = max(db.counts("demo", *period(day, day, ZoneInfo("Europe/Paris"))), key=lambda c: c.start)
    before = [
        cli_json(db_file, "report", "--store", "demo", "--from", str(d), "--to", str(d))["totals"]["visitors"]
        for d in (day - timedelta(weeks=w) for w in range(1, 5))
    ]
    assert before == [0, 0, 0, 0]  # the demo is one day: the comparison says there is nothing to compare
    # The latest interval carries its 80 % band unless the live test stored one without (42.0).
    interval = (
        {}
        if latest.present_low is None
        else {"present-interval": f"({latest.present_low:.1f}–{latest.present_high:.1f})"}
    )
    assert shown == {
        "day": DEMO_DAY,
        "present": f"{latest.present:.1f}",
        **interval,
        "visitors": str(totals["visitors"]),
        "passersby": str(totals["passersby"]),
        "capture_rate": pct(totals["capture_rate"]),
        "median_dwell": f"{totals['median_dwell_s'] / 60:.1f} min",
        "sensors": "1 / 2",
        "against_same_weekday": "- (no visitors then)",
    }
    # The store page: now with its interval, the sensor table from the retained statuses and last will.
    browser.get(f"{url}/stores/demo?{RANGE}")
    assert figure(browser, "present") == f"{latest.present:.1f}"
    if interval:
        assert figure(browser, "present-interval") == interval["present-interval"]
    sensors = {
        r.get_attribute("data-sensor"): [c.text for c in r.find_elements(By.TAG_NAME, "td")]
        for r in browser.find_elements(By.CSS_SELECTOR, "table.sensors tbody tr")
    }
    assert sensors["door-1"][1:2] + sensors["door-1"][3:] == [
        "online", "12.5", "3", "0", "-61.0 dBm", "+9.5 dB drift", "20240314T0300Z", "0.1.0",
    ]  # fmt: skip
    assert sensors["door-2"][1] == "offline"  # its last will
    charts = {key: (svg, columns, header) for key, svg, columns, header in drawn_and_csv(browser)}
    assert set(charts) == {"today", "capture", "occupancy", "daily", "weekly", "dwell", "heatmap"}
    assert charts["occupancy"][2] == ["hour_start", "present_mean", "present_low", "present_high"]  # the band
    assert charts["dwell"][1] == [[float(b["visitors"]) for b in report["dwell"]]]
    assert charts["heatmap"][2][1:] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert sum(charts["heatmap"][1][day.weekday()]) == totals["visitors"]  # a Thursday
    assert charts["today"][1] == [
        [float(h["passersby"]) for h in report["hours"]],
        [float(h["visitors"]) for h in report["hours"]],
    ]
    checked = 0
    for page in (f"/stores/demo?{RANGE}", "/stores/paris-01/omnichannel?from=2024-05-01&to=2024-05-10",
                 "/stores/demo/calibration"):  # fmt: skip
        browser.get(url + page)
        for key, svg, columns, _ in drawn_and_csv(browser):
            # A dot chart (the heatmap) may leave out its zero cells: compare what is not zero.
            nonzero = key == "heatmap"
            assert [[v for v in s if v or not nonzero] for s in svg] == [
                [v for v in c if v or not nonzero] for c in columns
            ] and any(svg), (page, key)
            checked += 1
        check_page_health(browser, url)
    assert checked == 7 + 1 + 1


def test_the_now_figure_follows_a_new_count_event_within_10_s(
    site: tuple[str, Store, Path], browser: Any
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    url, db, _ = site
    log_in(browser, url, "dana", PASSWORDS["dana"])
    browser.get(f"{url}/stores/demo")
    before = figure(browser, "present")
    db.add([count(datetime(2024, 3, 14, 19, 30, tzinfo=UTC), 42.0)])  # later than every replayed interval
    assert before != "42.0"
    WebDriverWait(browser, 10, poll_frequency=0.2).until(lambda d: figure(d, "present") == "42.0")
    check_page_health(browser, url)


def test_the_browser_is_refused_a_wrong_password_a_form_without_csrf_token_and_another_store(
    site: tuple[str, Store, Path], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    url, _, _ = site
    log_in(browser, url, "dana", "not-the-password")
    assert "Wrong user name or password" in browser.find_element(By.CSS_SELECTOR, ".error").text
    assert browser.current_url == f"{url}/login"
    log_in(browser, url, "dana", PASSWORDS["dana"], drop_csrf=True)
    assert "CSRF token is missing" in browser.find_element(By.CSS_SELECTOR, ".error").text
    log_in(browser, url, "dana", PASSWORDS["dana"])
    assert not browser.find_elements(By.CSS_SELECTOR, 'tr[data-store="paris-01"]')
    browser.get(f"{url}/stores/paris-01")
    assert "no store 'paris-01'" in browser.find_element(By.CSS_SELECTOR, ".error").text
    browser.get_log("browser")  # the 401, 403 and 404 above are logged as console errors: drop them
    browser.get(f"{url}/stores/demo")
    check_page_health(browser, url)
