"""The collector's HTTP API: consents, opt-outs, profiles and online events in; journeys and reports out.

FastAPI, because the models the CLI already checks with (pydantic, `extra="forbid"`) become the request
schemas and the OpenAPI description (/openapi.json) as they are, and it is well kept and typed; uvicorn
serves it. Every /v1 route needs `Authorization: Bearer <token>`, compared in constant time against the
token file, before the body is even read.

Bulk bodies are JSON arrays taken all or nothing: one bad item and the answer is a 4xx naming each bad
item (`loc` = ["body", index, field...]) with the reason, and nothing is stored. A MAC address (consents,
opt-outs) becomes its token at once and is never stored, logged or repeated in an answer: validation
errors are returned without the input they refused.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from collector.config import CollectorConfig, ReportConfig
from collector.online import journeys
from collector.online import kpis as omnichannel
from collector.online.profiles import OnlineEvent, Profile, check_batch
from collector.privacy.registry import PrivacyError, entry
from collector.reports import report as reports
from collector.storage.base import ProfileStore, Store
from collector.storage.privacy import ListName, PutOutcome, RegistryEntry
from collector.web import app as dashboard
from footfall.secretfile import KeyFileError, read_private, zero
from footfall.times import too_far_ahead
from footfall.tokens import TokenKey

MAX_ITEMS = 10_000
MAX_BODY_BYTES = 16 * 1024 * 1024  # uvicorn sets no limit; a bigger array is refused unread
MIN_TOKEN_CHARS = 32
UNAUTHORISED = "missing or wrong bearer token"
Clock = Callable[[], datetime]
ITEMS = Body(max_length=MAX_ITEMS, description=f"a JSON array, at most {MAX_ITEMS} items, all or nothing")
FIRST_DAY = Query(alias="from", description="first local day, YYYY-MM-DD (default: first with data)")
LAST_DAY = Query(alias="to", description="last local day, inclusive (default: last with data)")


class ApiTokenError(Exception):
    """The API token file cannot be used; the message names the file and says why."""


def load_api_token(path: Path) -> bytes:
    """The token in an owner-only file (one line, at least 32 characters, e.g. `openssl rand -hex 32`)."""
    try:
        raw = read_private(path)
    except KeyFileError as exc:
        raise ApiTokenError(str(exc)) from None
    try:
        token = bytes(raw).strip()
    finally:
        zero(raw)
    if len(token) < MIN_TOKEN_CHARS or any(b < 0x21 or b > 0x7E for b in token):
        raise ApiTokenError(
            f"{path}: the token must be one line of at least {MIN_TOKEN_CHARS} printable characters"
        )
    return token


class ConsentIn(BaseModel):
    """A consent: the person agreed that visits of this device be joined to this profile."""

    model_config = ConfigDict(extra="forbid")

    profile_id: str = Field(max_length=200)
    mac: str = Field(max_length=40, description="the device's Wi-Fi MAC; tokenised at once, never stored")
    at: AwareDatetime | None = Field(None, description="when the person consented (default: now)")
    source: str = Field("api", max_length=200, description="where it came from (captive portal, CRM...)")


class OptOutIn(BaseModel):
    """An opt-out: the device's visits are not counted any more, and its consent (if any) is withdrawn."""

    model_config = ConfigDict(extra="forbid")

    mac: str = Field(max_length=40, description="the device's Wi-Fi MAC; tokenised at once, never stored")
    profile_id: str = Field("", max_length=200)
    at: AwareDatetime | None = None
    source: str = Field("api", max_length=200)


def _bad(items: list[tuple[int, str]], status: int = 422) -> HTTPException:
    return HTTPException(status, [{"loc": ["body", i], "msg": r} for i, r in items])


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, without the refused input (it may be a MAC or other personal data)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def _registry_entries(
    list_: ListName, items: Sequence[ConsentIn | OptOutIn], key: TokenKey, now: datetime
) -> list[RegistryEntry]:
    entries: list[RegistryEntry] = []
    bad: list[tuple[int, str]] = []
    for i, item in enumerate(items):
        at = (item.at or now).astimezone(UTC)
        if too_far_ahead(at, now):
            bad.append((i, f"at: {at.isoformat()} is more than a day in the future"))
            continue
        try:
            entries.append(
                entry(list_, key, mac=item.mac, profile=item.profile_id, at=at, source=item.source)
            )
        except PrivacyError as exc:
            bad.append((i, str(exc)))
    if bad:
        raise _bad(bad)
    return entries


BEARER = HTTPBearer(auto_error=False)


def _authorised(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> None:
    # The middleware has checked already; checked again here so that the OpenAPI description carries
    # the bearer scheme (module-level: FastAPI resolves a dependency's annotations in module globals).
    given = credentials.credentials.encode() if credentials else b""
    if not hmac.compare_digest(given, request.app.state.api_token):
        raise HTTPException(401, UNAUTHORISED, headers={"WWW-Authenticate": "Bearer"})


def _token_key(request: Request) -> TokenKey:
    key: TokenKey | None = request.app.state.token_key
    if key is None:
        raise HTTPException(503, "no token key configured (privacy.token_key_file): consents are off")
    return key


def _v1() -> APIRouter:
    return APIRouter(prefix="/v1", dependencies=[Depends(_authorised)])


def _install_bearer_first(app: FastAPI, token: bytes) -> None:
    """Refuse a request without the token (401) or with an oversized body (413) before anything else."""

    def right(given: str) -> bool:
        return hmac.compare_digest(given.encode(), token)

    @app.middleware("http")
    async def bearer_first(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # FastAPI parses a body before it runs any dependency: without this, a caller without the token
        # would get 422s that describe the schema, and the body would be parsed for nothing.
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if request.url.path.startswith("/v1/") and not (scheme.lower() == "bearer" and right(given.strip())):
            return JSONResponse({"detail": UNAUTHORISED}, 401, headers={"WWW-Authenticate": "Bearer"})
        size = request.headers.get("content-length", "0")
        if not size.isdigit() or int(size) > MAX_BODY_BYTES:
            return JSONResponse(
                {"detail": f"body over {MAX_BODY_BYTES} bytes (or a bad Content-Length)"}, 413
            )
        return await call_next(request)


def _registry_routes(db: Store, clock: Clock) -> APIRouter:
    """POST /v1/consents and /v1/optouts: a MAC in, its token into the registry."""
    v1 = _v1()

    def put_registry(list_: ListName, items: Sequence[ConsentIn | OptOutIn], tk: TokenKey) -> dict[str, Any]:
        now = clock()
        result = db.registry_put(_registry_entries(list_, items, tk, now), now, strict=True)
        if not result.applied:
            refused = [
                (i, "the device has opted out")
                for i, o in enumerate(result.outcomes)
                if o == PutOutcome.OPTED_OUT
            ]
            raise _bad(refused, 409)
        out: dict[str, Any] = {
            o.value: result.outcomes.count(o)
            for o in (PutOutcome.ADDED, PutOutcome.UPDATED, PutOutcome.UNCHANGED)
        }
        return {**out, "consents_withdrawn": result.consents_withdrawn, "revision": result.revision}

    @v1.post("/consents", summary="Record consents (MAC → token at once); 409 if a device opted out")
    def post_consents(
        items: Annotated[list[ConsentIn], ITEMS], tk: Annotated[TokenKey, Depends(_token_key)]
    ) -> dict[str, Any]:
        return put_registry("consent", items, tk)

    @v1.post("/optouts", summary="Record opt-outs; each withdraws the device's consent")
    def post_optouts(
        items: Annotated[list[OptOutIn], ITEMS], tk: Annotated[TokenKey, Depends(_token_key)]
    ) -> dict[str, Any]:
        return put_registry("optout", items, tk)

    return v1


def _online_routes(profiles: ProfileStore, clock: Clock, zone: ZoneInfo) -> APIRouter:
    """Profiles, online events and a consented profile's journey."""
    v1 = _v1()

    @v1.post("/profiles", summary="Insert or replace online profiles")
    def post_profiles(items: Annotated[list[Profile], ITEMS]) -> dict[str, int]:
        now = clock()
        bad = check_batch(items, now, range(len(items)))
        if bad:
            raise _bad([(b.line, b.reason) for b in bad])
        counts = profiles.put_profiles(items, now)
        return {"added": counts.added, "updated": counts.updated, "unchanged": counts.unchanged}

    @v1.delete("/profiles/{profile}", summary="Erase a profile and its online events (right to erasure)")
    def delete_profile(profile: str) -> dict[str, int]:
        profiles_deleted, events_deleted = profiles.erase(profile)
        if not profiles_deleted and not events_deleted:
            raise HTTPException(404, f"no profile or online event for {profile!r}")
        return {"profiles": profiles_deleted, "online_events": events_deleted}

    @v1.post("/events", summary="Store online events (an id already stored is skipped)")
    def post_events(items: Annotated[list[OnlineEvent], ITEMS]) -> dict[str, int]:
        bad = check_batch(items, clock(), range(len(items)))
        if bad:
            raise _bad([(b.line, b.reason) for b in bad])
        new = profiles.add_online_events(items)
        return {"received": len(items), "new": new, "duplicates": len(items) - new}

    @v1.get("/journeys/{profile}", summary="The merged timeline of a consented profile")
    def get_journey(profile: str) -> dict[str, Any]:
        try:
            return journeys.to_dict(journeys.for_profile(profiles, profile), zone)
        except journeys.JourneyError as exc:
            raise HTTPException(404, str(exc)) from None

    return v1


def _report_routes(db: Store, profiles: ProfileStore, config: ReportConfig) -> APIRouter:
    """A store's footfall report and omnichannel KPIs over a period of local days."""
    v1 = _v1()
    zone = config.zone

    def period(store: str, first: date | None, last: date | None) -> tuple[date, date]:
        extent = db.extent(store)
        if extent is None:
            raise HTTPException(404, f"no events for store {store!r}")
        data_first, data_last = extent[0].astimezone(zone).date(), extent[1].astimezone(zone).date()
        first = first or (data_first if last is None else min(data_first, last))
        last = last or max(data_last, first)
        if first > last:
            raise HTTPException(400, f"from {first} is after to {last}")
        return first, last

    @v1.get("/stores/{store}/report", summary="Footfall report: hours, capture rate, dwell, repeat visitors")
    def get_report(
        store: str,
        first: Annotated[date | None, FIRST_DAY] = None,
        last: Annotated[date | None, LAST_DAY] = None,
    ) -> dict[str, Any]:
        first, last = period(store, first, last)
        return reports.to_dict(reports.for_store(db, store, first, last, config))

    @v1.get("/stores/{store}/kpis", summary="Omnichannel KPIs: web-to-store, store-to-web, lag, recognised")
    def get_kpis(
        store: str,
        first: Annotated[date | None, FIRST_DAY] = None,
        last: Annotated[date | None, LAST_DAY] = None,
        days: Annotated[
            int, Query(ge=1, le=365, description="N, the window in days")
        ] = omnichannel.DEFAULT_DAYS,
    ) -> dict[str, Any]:
        first, last = period(store, first, last)
        return omnichannel.to_dict(omnichannel.for_store(db, profiles, store, first, last, config, days))

    return v1


def create_app(
    config: CollectorConfig,
    db: Store,
    token: bytes,
    *,
    key: TokenKey | None = None,
    clock: Clock = lambda: datetime.now(UTC),
) -> FastAPI:
    """The API over an open store; `key` is the token key (consents and opt-outs need it)."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ApiTokenError(f"the API token must have at least {MIN_TOKEN_CHARS} characters")
    profiles: ProfileStore = db.profiles()
    app = FastAPI(
        title="footfall collector",
        version="1",
        summary="Store visits joined with online profiles, for consented profiles only.",
        exception_handlers={RequestValidationError: _validation_error},
    )
    _install_bearer_first(app, token)
    app.include_router(_registry_routes(db, clock))
    app.include_router(_online_routes(profiles, clock, config.report.zone))
    app.include_router(_report_routes(db, profiles, config.report))
    app.state.api_token = token
    app.state.token_key = key
    dashboard.mount(app, config, db, clock=clock)  # the pages at /, next to /v1
    return app
