"""The console's web application: server-rendered pages over a live engine's Redis.

Read-only. Every page but the sign-in form needs the token (see `engine.console.auth`).
The request log names the route (`/customers/{customer_id}`), never the ids, emails or
phones in a path or query.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from engine.console.auth import COOKIE, OPEN_PATHS, TokenCheck
from engine.console.errors import ConsoleError
from engine.console.live import LiveEngine
from engine.console.text import VERDICTS, show_value, when
from engine.console.views import customer_page, engine_report, journey_page
from engine.core.events import EventError, parse_timestamp
from engine.reporting.html import CSS as REPORT_CSS
from engine.reporting.labels import percent, points

log = logging.getLogger("engine.console")
HERE = Path(__file__).resolve().parent
REFRESH_S = 15
"""The journeys pages reload themselves this often, for live counts."""


def create_app(engine: LiveEngine, token: str) -> Starlette:
    """The console over `engine`, protected by `token`."""
    check = TokenCheck(token)
    environment = Environment(loader=FileSystemLoader(HERE / "templates"),
                              autoescape=select_autoescape(default=True))
    environment.globals.update(when=when, show=show_value, percent=percent, points=points,
                               verdicts=VERDICTS, refresh_s=REFRESH_S,
                               report_css=Markup(REPORT_CSS))
    templates = Jinja2Templates(env=environment)

    def page(request: Request, name: str, context: dict[str, Any],
             status_code: int = 200) -> Response:
        context.setdefault("prefix", engine.prefix)
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def not_found(request: Request, what: str) -> Response:
        return page(request, "message.html", {"title": "Not found", "message": what}, 404)

    def journeys(request: Request) -> Response:
        report = engine_report(engine)
        return page(request, "journeys.html", {"report": report, "shards": engine.shards,
                                               "clock": engine.clock()})

    def journey(request: Request) -> Response:
        journey_id = request.path_params["journey_id"]
        found = journey_page(engine, journey_id)
        if found is None:
            return not_found(request, "No journey with this id in the engine.")
        return page(request, "journey.html", {"page": found})

    def customers(request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        found = engine.find(query) if query else []
        if len(found) == 1:
            return RedirectResponse(f"/customers/{quote(found[0], safe='')}", 303)
        return page(request, "customers.html", {"query": query, "found": found})

    def customer(request: Request) -> Response:
        state = engine.state(request.path_params["customer_id"])
        if state is None:
            return not_found(request, "The engine keeps no state for this customer.")
        return page(request, "customer.html", {"c": customer_page(engine, state)})

    def explain(request: Request) -> Response:
        customer_id = request.path_params["customer_id"]
        journey_ids = [j for j in request.query_params.getlist("journey") if j]
        at_text = request.query_params.get("at", "").strip()
        try:
            at = _time(at_text) if at_text else None
            state, explanations = engine.explain(customer_id, journey_ids, at)
        except ConsoleError as exc:
            return page(request, "message.html", {"title": "Cannot explain",
                                                  "message": exc.message}, 404)
        return page(request, "explain.html", {
            "customer_id": customer_id, "tz": state.profile.timezone,
            "explanations": explanations, "chosen": journey_ids, "at": at_text,
            "journeys": [plan.journey_id for plan in engine.current_plans()]})

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return page(request, "login.html", {"failed": False})
        form = await request.form()
        given = str(form.get("token", ""))
        if not check.token_matches(given):
            return page(request, "login.html", {"failed": True}, 401)
        response = RedirectResponse("/", 303)
        response.set_cookie(COOKIE, check.cookie_value, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    def logout(request: Request) -> Response:
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE)
        return response

    async def guard(request: Request,
                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        began = time.perf_counter()
        if request.url.path in OPEN_PATHS or check.allowed(request):
            try:
                response = await call_next(request)
            except redis.RedisError:
                log.exception("Redis error on %s", _route_of(app, request))
                response = page(request, "message.html", {
                    "title": "Redis is not answering",
                    "message": "The engine's Redis did not answer; try again shortly."}, 503)
        else:
            response = page(request, "login.html", {"failed": False}, 401)
        log.info("%s %s %d %.0f ms", request.method, _route_of(app, request),
                 response.status_code, (time.perf_counter() - began) * 1000)
        return response

    app = Starlette(
        routes=[
            Route("/", journeys),
            Route("/journeys/{journey_id}", journey),
            Route("/customers", customers),
            Route("/customers/{customer_id}", customer),
            Route("/customers/{customer_id}/explain", explain),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=guard)],
    )
    return app


def _route_of(app: Starlette, request: Request) -> str:
    """The route template a request matched (`/customers/{customer_id}`), never its ids."""
    for route in app.routes:
        path = getattr(route, "path", None)
        if path is not None and route.matches(request.scope)[0].name == "FULL":
            return str(path)
    return "(no route)"


def _time(text: str) -> int:
    try:
        return parse_timestamp(int(text) if text.isdigit() else text)[0]
    except EventError as exc:
        raise ConsoleError(f"the time {text!r} cannot be read: {exc}") from None
