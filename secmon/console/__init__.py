"""The analysts' web console, served at ``/`` beside the API by the same process: pages rendered on the server.

Pages are Jinja2 templates over the stores the JSON API reads (alerts, audit, events, rules),
always within the signed-in key's agencies. The browser loads only what ships in this package
(``static/``: one stylesheet and one script of secmon's own), so the console works on a SOC
network without internet, and charts are SVG drawn on the server (:mod:`secmon.console.charts`).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from secmon.api import ApiServices, create_app
from secmon.api import problems as api_problems
from secmon.console.pages import alert, dashboard, events, health, login, queue, rules, triage
from secmon.console.web import PACKAGE, SignInNeeded, is_console_path, page
from secmon.serving.problems import Problem

STATIC_PATH = "/console/static"


def create_site(services: ApiServices) -> FastAPI:
    """The API over ``services`` with the console on it: what ``secmon up`` and ``secmon api`` serve."""
    app = create_app(services)
    app.mount(STATIC_PATH, StaticFiles(directory=PACKAGE / "static"), name="console-static")
    for module in (login, queue, alert, triage, dashboard, events, rules, health):
        app.include_router(module.router)
    api_problems.install(app, _respond)

    @app.exception_handler(SignInNeeded)
    async def sign_in(request: Request, exc: SignInNeeded) -> Response:
        if request.headers.get("x-requested-with") == "secmon-console":  # the page's own polling
            return Response(status_code=401)
        return RedirectResponse(f"/console/login?next={quote(exc.next_url, safe='')}", status_code=303)

    return app


def _respond(request: Request, problem: Problem) -> Response:
    """A console page's problem as a page of the console; the API's as problem details."""
    if is_console_path(request.url.path) and "text/html" in request.headers.get("accept", ""):
        return page(request, "problem.html", None, status_code=problem.status, problem=problem)
    return api_problems.json_problem(request, problem)
