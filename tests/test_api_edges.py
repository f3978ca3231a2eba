"""No input makes the API answer 500, and the body limit holds on the stream (chunked bodies too).

The property test drives every route of the real app (FastAPI's TestClient, in process) over a real SQLite
store holding the omnichannel data set, with generated path segments, query strings and bodies: any answer
but a 5xx is fine, the point is that none is a crash. The chunked body goes through a real uvicorn.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.api.app import MAX_BODY_BYTES, create_app
from collector.config import CollectorConfig
from collector.storage.sqlite import SqliteStore
from tests.pgserver import postgres_dsn, postgres_server  # noqa: F401
from tests.test_api import AUTH, KEY, TOKEN, Api, api  # noqa: F401
from tests.test_omnichannel import NOW, populate


def test_a_chunked_body_past_the_limit_is_refused_while_it_streams(api: Api) -> None:  # noqa: F811
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b"["
        while sent < 4 * MAX_BODY_BYTES:  # 64 MiB, no Content-Length: the server stops reading after 16
            sent += 1 << 20
            yield b" " * (1 << 20)
        yield b"]"

    try:
        response = api.client.post(
            "/v1/events", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413, response.text
        assert "body over 16777216 bytes" in response.json()["detail"]
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        pass  # the server answered and closed while the client was still sending: refused as well
    assert api.client.get("/v1/journeys/alice").status_code == 200, "the API is still up"


@pytest.mark.parametrize("route", ["report", "kpis"])
@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2100-01-01", "1999-12-31"])
def test_a_date_outside_the_wire_window_is_a_422_not_a_500(api: Api, route: str, day: str) -> None:  # noqa: F811
    for key in ("from", "to"):
        response = api.client.get(f"/v1/stores/paris-01/{route}", params={key: day})
        assert response.status_code == 422, response.text


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = SqliteStore(tmp_path_factory.mktemp("api-fuzz") / "f.db")
    populate(db)
    app = create_app(CollectorConfig(), db, TOKEN, key=KEY, clock=lambda: NOW)
    with TestClient(app, raise_server_exceptions=False, headers=AUTH) as c:
        yield c
    db.close()


# Every route, from the app's own OpenAPI description (so a route added later is fuzzed too).
ROUTES = sorted(
    (method.upper(), path)
    for path, operations in create_app(CollectorConfig(), SqliteStore(":memory:"), TOKEN)
    .openapi()["paths"]
    .items()
    for method in operations
)
segment = st.one_of(
    st.sampled_from(["paris-01", "lyon-02", "alice", "zoe", "", ".", "..", "%00", "a" * 300]),
    st.text(min_size=1, max_size=40).filter(lambda s: "/" not in s and "?" not in s and "#" not in s),
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(
        ["2024-05-01", "2024-05-01T10:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01", "3c:22:fb:12:ab:9f"]
    ),
)
item_keys = st.sampled_from(
    [
        "id",
        "profile_id",
        "mac",
        "source",
        "at",
        "channel",
        "type",
        "product",
        "value",
        "segments",
        "first_seen",
    ]
)
items = st.lists(st.dictionaries(item_keys, scalar | st.lists(scalar, max_size=3), max_size=8), max_size=4)
bodies = st.one_of(
    items.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.sampled_from([b"", b"[", b"{}", b"null", b"[[]]", b"1e999999", b'"\\ud800"', b"[" * 5000]),
)
dates = st.one_of(st.dates().map(str), st.text(max_size=12), st.sampled_from(["9999-12-31", "2024-02-30"]))
queries = st.dictionaries(
    st.sampled_from(["from", "to", "days"]), st.one_of(dates, st.integers().map(str)), max_size=3
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), params=st.data())
def test_no_request_to_any_route_gets_a_500(client: TestClient, route: tuple[str, str], params: Any) -> None:
    method, template = route
    path = template
    while "{" in path:
        name = path[path.index("{") + 1 : path.index("}")]
        path = path.replace("{" + name + "}", quote(params.draw(segment), safe=""), 1)
    query = params.draw(queries)
    body = params.draw(bodies) if method in ("POST", "PUT") else None
    response = client.request(
        method, path, params=query, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500, (method, path, query, body, response.status_code, response.text[:300])


def test_the_property_test_covers_every_route() -> None:
    paths = {path for _, path in ROUTES}
    assert {"/v1/consents", "/v1/optouts", "/v1/profiles", "/v1/events"} <= paths
    assert {"/v1/stores/{store}/report", "/v1/stores/{store}/kpis", "/v1/journeys/{profile}"} <= paths
