"""The dashboard's pages, their charts' CSV and the small "now" JSON the pages poll.

Every store route checks the scope first: a store the user may not see is a 404, the same answer as a
store that does not exist, so the scope does not even tell which stores there are.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from collector.online import journeys
from collector.reports.merge import StoreInterval
from collector.web import figures
from collector.web.accounts import Session
from collector.web.app import Refused, Web, check_csrf, session_of

SESSION = Annotated[Session, Depends(session_of)]
FROM = Query(None, alias="from", max_length=10)
TO = Query(None, alias="to", max_length=10)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_RANGE_DAYS = 366


def _day(value: str | None, what: str) -> date | None:
    if not value:
        return None
    try:
        if not _DAY.fullmatch(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise Refused(400, f"{what} {value!r} is not a date of the form YYYY-MM-DD") from None


def _present_json(p: StoreInterval | None, web: Web) -> dict[str, Any]:
    if p is None:
        return {"present": None}
    zone = web.config.report.zone
    return {
        "present": round(p.present, 1),
        "low": None if p.present_low is None else round(p.present_low, 1),
        "high": None if p.present_high is None else round(p.present_high, 1),
        "start": p.start.astimezone(zone).isoformat(),
        "end": p.end.astimezone(zone).isoformat(),
    }


def page_routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    zone = web.config.report.zone

    def today() -> date:
        return web.clock().astimezone(zone).date()

    def scoped(session: Session, store: str) -> str:
        if not session.user.may_see(store) or store not in web.db.stores():
            raise Refused(404, f"no store {store!r} here")
        return store

    def span(store: str, first: str | None, last: str | None) -> tuple[date, date]:
        day = figures.reference_day(web.db, store, zone, today())
        end = _day(last, "to") or day
        start = _day(first, "from") or end - timedelta(days=figures.DEFAULT_RANGE_DAYS - 1)
        if start > end:
            raise Refused(400, f"from {start} is after to {end}")
        if (end - start).days >= MAX_RANGE_DAYS:
            raise Refused(400, f"at most {MAX_RANGE_DAYS} days at once")
        return start, end

    def visible(session: Session) -> list[str]:
        return session.user.visible(web.db.stores())

    @router.get("/", response_class=HTMLResponse)
    def overview(request: Request, session: SESSION) -> Response:
        rows = figures.summaries(web.db, visible(session), web.config.report, today())
        return web.page(request, "overview.html", rows=rows, local=lambda at: figures.local(at, zone))

    @router.get("/now.json")
    def chain_now(session: SESSION) -> JSONResponse:
        stores = visible(session)
        now = figures.present_now_each(web.db, stores)
        return JSONResponse({s: _present_json(p, web) for s, p in zip(stores, now, strict=True)})

    @router.get("/stores/{store}", response_class=HTMLResponse)
    def store_page(
        request: Request, store: str, session: SESSION, first: str | None = FROM, last: str | None = TO
    ) -> Response:
        scoped(session, store)
        start, end = span(store, first, last)
        model = figures.store_page(web.db, store, web.config.report, today(), start, end)
        return web.page(
            request, "store.html", p=model, local=lambda at: figures.local(at, zone), query=_query(start, end)
        )

    @router.get("/stores/{store}/now.json")
    def store_now(store: str, session: SESSION) -> JSONResponse:
        scoped(session, store)
        return JSONResponse({store: _present_json(figures.present_now(web.db, store), web)})

    @router.get("/stores/{store}/charts/{key}.csv")
    def chart_csv(
        store: str, key: str, session: SESSION, first: str | None = FROM, last: str | None = TO
    ) -> Response:
        scoped(session, store)
        start, end = span(store, first, last)
        if key.startswith("omni-"):
            charts = figures.omni_page(web.db, web.profiles, store, web.config.report, start, end).charts
        elif key.startswith("calibration-"):
            charts = figures.calibration_page(web.db, store, zone).charts
        else:
            charts = figures.store_page(web.db, store, web.config.report, today(), start, end).charts
        chart = next((c for c in charts if c.key == key), None)
        if chart is None:
            raise Refused(404, f"no chart {key!r}")
        name = f"{store}-{key}-{start}-{end}.csv"
        return Response(
            chart.csv(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @router.get("/stores/{store}/calibration", response_class=HTMLResponse)
    def calibration(request: Request, store: str, session: SESSION) -> Response:
        scoped(session, store)
        model = figures.calibration_page(web.db, store, zone)
        return web.page(
            request, "calibration.html", p=model, query="", local=lambda at: figures.local(at, zone)
        )

    @router.get("/stores/{store}/omnichannel", response_class=HTMLResponse)
    def omni(
        request: Request, store: str, session: SESSION, first: str | None = FROM, last: str | None = TO
    ) -> Response:
        scoped(session, store)
        start, end = span(store, first, last)
        return _omni(request, session, store, start, end)

    def _omni(
        request: Request,
        session: Session,
        store: str,
        start: date,
        end: date,
        journey: Any = None,
        status: int = 200,
    ) -> Response:
        model = figures.omni_page(web.db, web.profiles, store, web.config.report, start, end)
        triggers = (
            figures.trigger_log(web.db, store, zone, start, end) if session.user.role == "admin" else []
        )
        return web.page(
            request,
            "omni.html",
            status,
            p=model,
            triggers=triggers,
            journey=journey,
            local=lambda at: figures.local(at, zone),
            query=_query(start, end),
        )

    @router.get("/stores/{store}/triggers.csv")
    def triggers_csv(
        store: str, session: SESSION, first: str | None = FROM, last: str | None = TO
    ) -> Response:
        scoped(session, store)
        if session.user.role != "admin":
            raise Refused(403, "only an admin may read the trigger log")
        start, end = span(store, first, last)
        return Response(
            figures.trigger_csv(figures.trigger_log(web.db, store, zone, start, end)),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{store}-triggers-{start}-{end}.csv"'},
        )

    @router.post("/stores/{store}/omnichannel", response_class=HTMLResponse)
    def omni_journey(
        request: Request,
        store: str,
        session: SESSION,
        profile: Annotated[str, Form(max_length=200)],
        csrf: Annotated[str | None, Form(max_length=100)] = None,
        first: str | None = FROM,
        last: str | None = TO,
    ) -> Response:
        check_csrf(session.csrf, csrf)
        scoped(session, store)
        if session.user.role != "admin":
            raise Refused(403, "only an admin may open a profile's journey")
        start, end = span(store, first, last)
        try:
            found = journeys.for_profile(web.profiles, profile)
        except journeys.JourneyError as exc:
            return _omni(request, session, store, start, end, journey=str(exc), status=404)
        # Store visits outside the admin's scope are not shown.
        steps = [s for s in found.steps if s.store is None or session.user.may_see(s.store)]
        return _omni(request, session, store, start, end, journey=(found.profile, steps))

    return router


def _query(start: date, end: date) -> str:
    return f"from={start}&to={end}"
