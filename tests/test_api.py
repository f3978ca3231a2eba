"""The HTTP API through a real uvicorn server on loopback and a real HTTP client (httpx).

The store holds the omnichannel data set (tests/test_omnichannel.py), so journeys and KPIs are checked
against the same hand-computed figures. Every refusal is checked to have stored nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from collector.api.app import ApiTokenError, create_app, load_api_token
from collector.config import CollectorConfig
from collector.storage.base import Store
from collector.storage.sqlite import SqliteStore
from footfall.tokens import TokenKey
from tests.conftest import free_port
from tests.pgserver import BACKENDS, open_backend, postgres_dsn, postgres_server  # noqa: F401
from tests.test_omnichannel import NOW, populate
from tests.test_report import count, visit

TOKEN = b"0123456789abcdef0123456789abcdef-api"
AUTH = {"Authorization": f"Bearer {TOKEN.decode()}"}
KEY = TokenKey(bytearray(range(32)))
MAC = "3c:22:fb:12:ab:9f"


@dataclass
class Api:
    client: httpx.Client
    db: Store
    path: Path


def wait_listening(port: int, ready: threading.Event | None = None) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after 15 s")


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    db = open_backend(request, tmp_path)()
    populate(db)
    app = create_app(CollectorConfig(), db, TOKEN, key=KEY, clock=lambda: NOW)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_listening(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=20) as client:
            yield Api(client, db, tmp_path / "f.db")
    finally:
        server.should_exit = True
        thread.join(15)
        db.close()


def details(response: httpx.Response) -> list[tuple[list[object], str]]:
    return [(d["loc"], d["msg"]) for d in response.json()["detail"]]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}])
def test_a_request_without_the_right_bearer_token_is_refused_before_its_body_is_read(
    api: Api, headers: dict[str, str]
) -> None:
    for method, path, body in (("POST", "/v1/profiles", "not json"), ("GET", "/v1/journeys/alice", None)):
        response = httpx.request(method, f"{api.client.base_url}{path}", headers=headers, content=body)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert api.client.get("/v1/journeys/alice").status_code == 200


def test_the_openapi_description_lists_every_route_and_needs_no_token(api: Api) -> None:
    spec = httpx.get(f"{api.client.base_url}/openapi.json").json()
    assert set(spec["paths"]) == {
        "/v1/consents", "/v1/optouts", "/v1/profiles", "/v1/profiles/{profile}", "/v1/events", "/v1/journeys/{profile}",
        "/v1/stores/{store}/report", "/v1/stores/{store}/kpis",
    }  # fmt: skip
    assert "OnlineEvent" in spec["components"]["schemas"]


def test_profiles_are_stored_and_a_batch_with_a_bad_item_stores_nothing(api: Api) -> None:
    ok = api.client.post("/v1/profiles", json=[{"id": "zoe", "segments": ["vip"]}, {"id": "alice"}])
    assert ok.status_code == 200 and ok.json() == {"added": 1, "updated": 0, "unchanged": 1}
    bad = api.client.post(
        "/v1/profiles", json=[{"id": "yan"}, {"id": "xia", "email": "x@example.org"}, {"id": "w w"}]
    )
    assert bad.status_code == 422
    assert details(bad) == [
        (["body", 1, "email"], "Extra inputs are not permitted"),
        (["body", 2, "id"], "String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'"),
    ]
    assert "x@example.org" not in bad.text
    profiles = api.db.profiles()
    assert profiles.profile("zoe") is not None and profiles.profile("yan") is None


def test_online_events_are_deduplicated_and_a_future_or_repeated_id_refuses_the_batch(api: Api) -> None:
    event = {
        "id": "web-1",
        "profile_id": "alice",
        "at": "2024-05-03T10:00:00+02:00",
        "channel": "web",
        "type": "page_view",
    }
    first = api.client.post("/v1/events", json=[event])
    again = api.client.post("/v1/events", json=[event])
    assert first.json() == {"received": 1, "new": 1, "duplicates": 0} and again.json()["duplicates"] == 1
    future = {**event, "id": "web-2", "at": "2024-05-12T10:00:00Z"}
    bad = api.client.post("/v1/events", json=[{**event, "id": "web-3"}, future])
    assert bad.status_code == 422 and details(bad) == [
        (["body", 1], "at: 2024-05-12T10:00:00+00:00 is more than a day in the future")
    ]
    assert [e.id for e in api.db.profiles().online_events("alice") if e.id.startswith("web")] == ["web-1"]


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        (b"{not json", "JSON decode error"),
        (b'{"id": "p"}', "Input should be a valid list"),
        (json.dumps([{"id": "p"}] * 10_001).encode(), "List should have at most 10000 items"),
    ],
)
def test_a_body_that_is_not_a_json_array_of_items_gets_a_422_with_the_reason(
    api: Api, body: bytes, msg: str
) -> None:
    response = api.client.post("/v1/profiles", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and msg in response.json()["detail"][0]["msg"]


def test_a_consent_stores_the_mac_s_token_only_and_never_repeats_a_mac(api: Api) -> None:
    ok = api.client.post("/v1/consents", json=[{"profile_id": "zoe", "mac": MAC, "source": "portal"}])
    assert ok.status_code == 200 and ok.json()["added"] == 1
    assert [(e.token, e.profile) for e in api.db.registry_entries("consent") if e.profile == "zoe"] == [
        (KEY.token(bytes.fromhex(MAC.replace(":", ""))), "zoe")
    ]
    bad = api.client.post(
        "/v1/consents",
        json=[
            {"profile_id": "yan", "mac": "3c:22:fb:12:ab:aa"},
            {"profile_id": "xia", "mac": "3c:22:fb:12:ab"},
        ],
    )
    assert bad.status_code == 422 and details(bad)[0][0] == ["body", 1] and "not a MAC address" in bad.text
    assert "3c:22" not in bad.text and "yan" not in {e.profile for e in api.db.registry_entries("consent")}
    long = api.client.post("/v1/consents", json=[{"profile_id": "yan", "mac": "3c:22:fb:12:ab:aa" * 3}])
    assert long.status_code == 422 and "3c:22" not in long.text
    if not isinstance(api.db, SqliteStore):
        return  # the rows were checked above; the SQLite case also reads the files themselves
    data = b"".join(p.read_bytes() for p in api.path.parent.glob("f.db*"))  # the file and its WAL
    assert MAC.encode() not in data and bytes.fromhex(MAC.replace(":", "")) not in data


def test_an_opted_out_device_cannot_consent_and_the_whole_batch_is_refused(api: Api) -> None:
    assert api.client.post("/v1/optouts", json=[{"mac": MAC}]).status_code == 200
    refused = api.client.post(
        "/v1/consents",
        json=[{"profile_id": "zoe", "mac": "3c:22:fb:12:ab:aa"}, {"profile_id": "zoe", "mac": MAC}],
    )
    assert refused.status_code == 409 and details(refused) == [(["body", 1], "the device has opted out")]
    assert all(e.profile != "zoe" for e in api.db.registry_entries("consent"))


def test_journeys_are_given_for_consented_profiles_only(api: Api) -> None:
    alice = api.client.get("/v1/journeys/alice")
    assert alice.status_code == 200 and alice.json()["store_visits"] == 2
    assert alice.json()["steps"][0]["at"] == "2024-05-01T09:00:00+02:00"
    erin = api.client.get("/v1/journeys/erin")
    assert erin.status_code == 404 and "no registered consent" in erin.json()["detail"]


def test_kpis_and_report_match_the_hand_computed_figures(api: Api) -> None:
    kpis = api.client.get(
        "/v1/stores/paris-01/kpis", params={"from": "2024-05-01", "to": "2024-05-02", "days": 2}
    )
    assert kpis.status_code == 200
    assert (kpis.json()["median_lag_s"], kpis.json()["recognised"]["share"]) == (93_600, 0.5)
    report = api.client.get("/v1/stores/paris-01/report", params={"from": "2024-05-01", "to": "2024-05-02"})
    assert report.status_code == 200 and report.json()["totals"]["visitors"] == 6


def test_the_report_endpoint_carries_the_80_percent_range_of_people_present(api: Api) -> None:
    start = datetime(2024, 5, 1, 7, tzinfo=UTC)
    api.db.add(
        [count(start, 3.0, store="lyon-09").model_copy(update={"present_low": 2.0, "present_high": 4.5})]
    )
    report = api.client.get("/v1/stores/lyon-09/report", params={"from": "2024-05-01", "to": "2024-05-01"})
    assert report.status_code == 200
    totals, hour = report.json()["totals"], report.json()["hours"][0]
    assert (totals["present_mean"], totals["present_low"], totals["present_high"]) == (3.0, 2.0, 4.5)
    assert (hour["present_low"], hour["present_high"]) == (2.0, 4.5)


def test_the_report_endpoint_gives_connected_visitors_next_to_visitors_and_passersby(api: Api) -> None:
    at = datetime(2024, 5, 1, 7, tzinfo=UTC)
    api.db.add(
        [
            visit(at, 900, device="c1", store="lyon-09").model_copy(update={"connected": True}),
            visit(at, 600, device="c2", store="lyon-09").model_copy(update={"connected": False}),
            visit(at, 30, "passerby", device="c3", store="lyon-09").model_copy(update={"connected": True}),
            count(at, 2.0, store="lyon-09").model_copy(update={"connected": 2}),
        ]
    )
    assert [c.connected for c in api.db.counts("lyon-09", at, at.replace(day=2))] == [2]
    report = api.client.get("/v1/stores/lyon-09/report", params={"from": "2024-05-01", "to": "2024-05-01"})
    totals, hour = report.json()["totals"], report.json()["hours"][0]
    # connected visitors are a share of visitors (Meraki's funnel): the connected passerby is a passerby
    assert (totals["passersby"], totals["visitors"], totals["connected"]) == (1, 2, 1)
    assert (hour["visitors"], hour["connected"]) == (2, 1)
    old = api.client.get("/v1/stores/paris-01/report", params={"from": "2024-05-01", "to": "2024-05-02"})
    assert old.json()["totals"]["connected"] is None  # sensors that listen to no store network


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/stores/nowhere/kpis", {}, 404),
        ("/v1/stores/paris-01/kpis", {"from": "2024-05-03", "to": "2024-05-01"}, 400),
        ("/v1/stores/paris-01/kpis", {"days": 0}, 422),
        ("/v1/stores/paris-01/report", {"from": "May 1st"}, 422),
    ],
)
def test_bad_report_queries_get_a_4xx_with_the_reason(
    api: Api, path: str, params: dict[str, str | int], status: int
) -> None:
    response = api.client.get(path, params=params)
    assert response.status_code == status and response.json()["detail"]


def test_the_token_file_must_be_private_and_long_enough(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(TOKEN + b"\n")
    path.chmod(0o644)
    with pytest.raises(ApiTokenError, match="lets group or others read it"):
        load_api_token(path)
    path.chmod(0o600)
    assert load_api_token(path) == TOKEN
    path.write_bytes(b"short\n")
    with pytest.raises(ApiTokenError, match="at least 32 printable characters"):
        load_api_token(path)


def test_the_api_command_serves_with_the_token_file(tmp_path: Path) -> None:
    token = tmp_path / "api-token"
    token.write_bytes(TOKEN + b"\n")
    token.chmod(0o600)
    port = free_port()
    command = [sys.executable, "-c", "from collector.cli.omni import api; api()", "--db", str(tmp_path / "f.db"),
               "--port", str(port), "--token-file", str(token)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    try:
        wait_listening(port)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/v1/journeys/x").status_code == 401
        assert httpx.post(f"{base}/v1/profiles", headers=AUTH, json=[{"id": "p"}]).json()["added"] == 1
        assert httpx.post(f"{base}/v1/consents", headers=AUTH, json=[]).status_code == 503  # no token key
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    assert process.returncode == 0 and b"Application shutdown complete" in err, err.decode()


def test_a_profile_can_be_erased_with_its_online_events(api: Api) -> None:
    erased = api.client.delete("/v1/profiles/alice")
    assert erased.status_code == 200 and erased.json() == {"profiles": 1, "online_events": 2}
    assert api.client.get("/v1/journeys/alice").json()["online_events"] == 0  # her consent still joins visits
    assert api.client.delete("/v1/profiles/alice").status_code == 404


def test_a_body_over_the_size_limit_is_refused_unread(api: Api) -> None:
    response = api.client.post(
        "/v1/events",
        content=b"[" + b" " * (16 * 1024 * 1024) + b"]",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413 and "body over 16777216 bytes" in response.json()["detail"]
