"""What every console page shares: its session, the CSRF check, and rendering a template.

A page names who may see it in its signature, as the API's routes do: ``SignedIn`` is any
signed-in key, ``TriageSession`` an analyst or admin, ``RuleAuthorSession`` a rule author or admin
(as the API's routes admit keys of these roles).
Without a session a page answers with a redirect to the sign-in form (and back afterwards). Every
request that changes something takes ``CsrfChecked``: the session's CSRF token in the
``X-CSRF-Token`` header or a ``csrf`` form field, and no foreign ``Origin``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from secmon import __version__
from secmon.api.deps import ServicesDep, check_alert_reader
from secmon.auth import Role
from secmon.auth.sessions import Session
from secmon.serving.problems import FORBIDDEN, Problem

COOKIE = "secmon_session"
PACKAGE = Path(__file__).parent
templates = Jinja2Templates(directory=PACKAGE / "templates")
LEVELS = ("critical", "high", "medium", "low", "informational")
STATUSES = ("open", "acknowledged", "closed")


class SignInNeeded(Exception):
    """No live session: the console answers with the sign-in form (see :func:`secmon.console.install`)."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


async def signed_in(request: Request, services: ServicesDep) -> Session:
    """The request's session; :class:`SignInNeeded` without a live one."""
    token = request.cookies.get(COOKIE)
    session = await services.sessions.get(token) if token else None
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInNeeded(target)
    request.state.key = session.key  # for the access log and rate limits, as API keys are
    return session


SignedIn = Annotated[Session, Depends(signed_in)]


def session_of_role(*roles: Role, what: str) -> Callable[..., Coroutine[Any, Any, Session]]:
    async def check(session: SignedIn) -> Session:
        if session.key.role not in roles:
            raise Problem(FORBIDDEN, f"a key of role {session.key.role.value} may not {what}")
        return session

    return check


async def alert_reader(session: SignedIn, services: ServicesDep) -> Session:
    """Sessions that read alerts: as :func:`secmon.api.deps.alert_reader` admits keys."""
    check_alert_reader(session.key, services)
    return session


AlertReaderSession = Annotated[Session, Depends(alert_reader)]
TriageSession = Annotated[Session, Depends(session_of_role(Role.ADMIN, Role.ANALYST, what="triage alerts"))]
RuleReaderSession = Annotated[
    Session, Depends(session_of_role(Role.ADMIN, Role.ANALYST, Role.RULE_AUTHOR, what="read rules"))
]
RuleAuthorSession = Annotated[
    Session, Depends(session_of_role(Role.ADMIN, Role.RULE_AUTHOR, what="change or test rules"))
]
EventSession = Annotated[
    Session, Depends(session_of_role(Role.ADMIN, Role.ANALYST, Role.RULE_AUTHOR, what="search events"))
]


async def csrf_checked(request: Request, session: SignedIn) -> Session:
    """The session, once the request proves it comes from one of the console's own pages."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Problem(FORBIDDEN, f"a request from {origin} may not change anything here")
    presented = request.headers.get("x-csrf-token")
    if presented is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("csrf")
        presented = value if isinstance(value, str) else None
    if presented is None or not hmac.compare_digest(presented, session.csrf):
        raise Problem(FORBIDDEN, "the CSRF token is missing or wrong: reload the page and try again")
    return session


CsrfChecked = Annotated[Session, Depends(csrf_checked)]


def page(
    request: Request, template: str, session: Session | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """``template`` rendered for ``session`` (None on the sign-in page)."""
    return templates.TemplateResponse(
        request,
        template,
        {"session": session, "key": session.key if session else None, "version": __version__, **context},
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def query_string(params: dict[str, Any], **changes: Any) -> str:
    """``params`` (values: a string or a list of them) with ``changes`` applied, as ``?a=1&b=2``."""
    merged = {**params, **changes}
    pairs = [
        (name, value)
        for name, values in merged.items()
        for value in (values if isinstance(values, list | tuple) else [values])
        if value not in (None, "")
    ]
    return "?" + urlencode(pairs) if pairs else "?"


def relative_time(value: Any) -> str:
    """A time as analysts read it in a queue: '3 min ago', then the date."""
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    seconds = (datetime.now(UTC) - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return moment.strftime("%Y-%m-%d %H:%M")


def iso_time(value: Any) -> str:
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def technique_url(technique: str) -> str:
    """The ATT&CK page of ``technique`` (T1059.001 → /techniques/T1059/001/)."""
    return "https://attack.mitre.org/techniques/" + quote(technique.upper().replace(".", "/")) + "/"


templates.env.filters["relative_time"] = relative_time
templates.env.filters["iso_time"] = iso_time
templates.env.filters["technique_url"] = technique_url
templates.env.globals["query_string"] = query_string
templates.env.globals["LEVELS"] = LEVELS
templates.env.globals["STATUSES"] = STATUSES


def is_console_path(path: str) -> bool:
    return path == "/" or path.startswith("/console/")


templates.env.globals["is_console_path"] = is_console_path
