"""The dashboard on the collector's FastAPI app: login, logout, sessions, CSRF, then the pages (pages.py).

Sessions are a random id in an HttpOnly, SameSite=Lax cookie (Secure when the request came over
TLS), looked up in the database (collector/web/accounts.py). Every form that changes state is a POST
carrying a CSRF token: the session's own token once logged in; before login, a random token the login
page sets in a cookie and repeats in the form (double submit), so a third-party page cannot post a
login either. Date-range forms are plain GETs: they change nothing.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from collector.config import CollectorConfig
from collector.storage.base import ProfileStore, Store
from collector.web.accounts import SESSION_LIFETIME, Accounts, Session, open_accounts
from collector.web.security import HEADERS, Clock, LoginThrottle

SESSION_COOKIE = "footfall_session"
LOGIN_COOKIE = "footfall_login"
LOGIN_PATH = "/login"


class LoginRequired(Exception):
    """No live session: HTML pages redirect to the login page, data answers 401."""


class Refused(Exception):
    """A forbidden request (bad CSRF token, a store out of scope); the page says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Web:
    """What the dashboard's routes work with."""

    config: CollectorConfig
    db: Store
    accounts: Accounts
    profiles: ProfileStore
    throttle: LoginThrottle
    clock: Clock
    templates: Jinja2Templates

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        session = getattr(request.state, "session", None)
        return self.templates.TemplateResponse(
            request,
            name,
            {"session": session, "zone": self.config.report.zone.key, **context},
            status_code=status,
        )


def session_of(request: Request) -> Session:
    """The request's live session (a FastAPI dependency); LoginRequired without one."""
    web: Web = request.app.state.web
    cookie = request.cookies.get(SESSION_COOKIE)
    found = web.accounts.session(cookie, web.clock()) if cookie else None
    if found is None:
        raise LoginRequired
    request.state.session = found
    return found


def check_csrf(expected: str | None, given: str | None) -> None:
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Refused(403, "the form's CSRF token is missing or wrong: reload the page and try again")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _auth_routes(web: Web) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(LOGIN_PATH, response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
        response = web.page(request, "login.html", csrf=token, error=None)
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/"
        )
        return response

    @router.post(LOGIN_PATH, response_class=HTMLResponse)
    def login(
        request: Request,
        name: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
        csrf: Annotated[str | None, Form(max_length=100)] = None,
    ) -> Response:
        token = request.cookies.get(LOGIN_COOKIE)
        check_csrf(token, csrf)
        address = request.client.host if request.client else "?"
        wait = web.throttle.retry_after(name, address)
        if wait is not None:
            response = web.page(
                request,
                "login.html",
                429,
                csrf=token,
                error=f"Too many failed logins: try again in {wait} s.",
            )
            response.headers["Retry-After"] = str(wait)
            return response
        user = web.accounts.verify(name, password)
        if user is None:
            web.throttle.failed(name, address)
            return web.page(request, "login.html", 401, csrf=token, error="Wrong user name or password.")
        web.throttle.succeeded(name)
        session_id, _ = web.accounts.open_session(user, web.clock())
        done = RedirectResponse("/", 303)
        done.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=_secure(request),
            path="/",
        )
        done.delete_cookie(LOGIN_COOKIE, path="/")
        return done

    @router.post("/logout")
    def logout(
        request: Request,
        session: Annotated[Session, Depends(session_of)],
        csrf: Annotated[str | None, Form(max_length=100)] = None,
    ) -> Response:
        check_csrf(session.csrf, csrf)
        web.accounts.close_session(request.cookies[SESSION_COOKIE])
        response = RedirectResponse(LOGIN_PATH, 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router


def mount(
    app: FastAPI, config: CollectorConfig, db: Store, *, clock: Clock = lambda: datetime.now(UTC)
) -> None:
    """Serve the dashboard at / on `app` (next to its /v1 API)."""
    from collector.web.pages import page_routes

    env = Environment(loader=PackageLoader("collector.web", "templates"), autoescape=select_autoescape())
    web = Web(
        config,
        db,
        open_accounts(db),
        db.profiles(),
        LoginThrottle(clock),
        clock,
        Jinja2Templates(env=env),
    )
    app.state.web = web

    async def login_required(request: Request, exc: Exception) -> Response:
        if request.url.path.endswith((".json", ".csv")):
            return Response("log in first", 401, media_type="text/plain")
        return RedirectResponse(LOGIN_PATH, 303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return web.page(request, "refused.html", exc.status, message=str(exc))

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Refused, refused)

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if not request.url.path.startswith("/v1/"):
            for name, value in HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    app.mount("/static", StaticFiles(packages=[("collector.web", "static")]), name="static")
    app.include_router(_auth_routes(web))
    app.include_router(page_routes(web))
