"""Rules: the loaded rules with their alert counts and problems, a rule's page (YAML, audit trail),
enable and disable, upload a Sigma rule (its problems shown at their lines), and test a rule
against the stored events of the last hours before enabling or uploading it.

Changes and tests go through :mod:`secmon.api.rule_actions`, as ``/rules`` does: the same catalog,
the same audit entries under the key's name.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from secmon.api import rule_actions
from secmon.api.deps import ServicesDep
from secmon.api.problems import INVALID_PARAMETERS
from secmon.api.rule_actions import StoredTest, in_thread
from secmon.auth import Role
from secmon.auth.sessions import Session
from secmon.console.web import CsrfChecked, RuleAuthorSession, RuleReaderSession, page
from secmon.detection.catalog import Listing, RuleInfo, RuleRefused
from secmon.detection.rules import RuleProblem
from secmon.events import get_field
from secmon.serving.problems import Problem

router = APIRouter(prefix="/console/rules", include_in_schema=False)
RuleId = Path(min_length=1, max_length=200)
DEFAULT_TEST_HOURS = 24.0
MOST_TEST_HOURS = 24 * 31
SHOWN_MATCHES = 50
MAX_UPLOAD_CHARS = 200_000
AUTHORS = (Role.ADMIN, Role.RULE_AUTHOR)


@router.get("", response_class=HTMLResponse)
async def rules(request: Request, services: ServicesDep, session: RuleReaderSession) -> HTMLResponse:
    """The catalog, filtered by title text, level, state and origin."""
    return await _rules_page(request, services, session)


@router.post("/upload", response_class=HTMLResponse, response_model=None)
async def upload(request: Request, services: ServicesDep, session: CsrfChecked, allowed: RuleAuthorSession) -> Response:
    """Upload the form's YAML (``action=upload``) or test it on stored events first (``action=test``)."""
    form = await request.form()
    text = await _rule_text(form)
    if form.get("action") == "test":
        hours = _hours(form)
        try:
            tested = await rule_actions.test_on_stored(services, session.key.scope, hours=hours, text=text)
        except RuleRefused as refused:
            return await _rules_page(request, services, session, draft=text, refused=refused.problems)
        return await _rules_page(request, services, session, draft=text, test=_test_view(tested, hours))
    try:
        info = await rule_actions.upload(services, session.key, text)
    except RuleRefused as refused:
        return await _rules_page(request, services, session, draft=text, refused=refused.problems, status_code=422)
    return _back(f"/console/rules/{quote(info.id)}", f"Rule {info.title} uploaded; it is {_state(info)}")


@router.get("/{rule_id}", response_class=HTMLResponse)
async def rule(
    request: Request, services: ServicesDep, session: RuleReaderSession, rule_id: str = RuleId
) -> HTMLResponse:
    return await _rule_page(request, services, session, rule_id)


@router.post("/{rule_id}/enabled")
async def set_enabled(
    request: Request, services: ServicesDep, session: CsrfChecked, allowed: RuleAuthorSession, rule_id: str = RuleId
) -> RedirectResponse:
    """Enable (``enabled=true``) or disable the rule; the change is in its audit trail."""
    wanted = str((await request.form()).get("enabled", ""))
    if wanted not in ("true", "false"):
        raise Problem(INVALID_PARAMETERS, "enabled is true or false")
    info = await rule_actions.set_enabled(services, session.key, rule_id, wanted == "true")
    return _back(f"/console/rules/{quote(info.id)}", f"Rule {info.title} is {_state(info)}")


@router.post("/{rule_id}/test", response_class=HTMLResponse)
async def test(
    request: Request, services: ServicesDep, session: CsrfChecked, allowed: RuleAuthorSession, rule_id: str = RuleId
) -> HTMLResponse:
    """The rule matched, alone, against the stored events of the form's ``hours``."""
    hours = _hours(await request.form())
    try:
        tested = await rule_actions.test_on_stored(services, session.key.scope, hours=hours, rule_id=rule_id)
    except RuleRefused as refused:
        return await _rule_page(request, services, session, rule_id, refused=refused.problems)
    return await _rule_page(request, services, session, rule_id, test=_test_view(tested, hours))


async def _rules_page(
    request: Request,
    services: ServicesDep,
    session: Session,
    *,
    draft: str = "",
    refused: list[RuleProblem] | None = None,
    test: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    listing: Listing = await in_thread(services.rules.listing)
    query = request.query_params
    text, levels = query.get("q", "").strip().lower(), query.getlist("level")
    state, origin = query.get("state", ""), query.get("origin", "")
    chosen = [
        info
        for info in listing.rules
        if (not text or text in info.title.lower() or text in info.id)
        and (not levels or info.level in levels)
        and (not origin or info.origin == origin)
        and (
            not state
            or (state == "enabled" and info.enabled and info.loaded)
            or (state == "disabled" and not info.enabled)
            or (state == "problems" and bool(info.problems))
        )
    ]
    hits = await rule_actions.alert_counts(services, session.key.scope, [info.id for info in chosen])
    return page(
        request,
        "rules.html",
        session,
        status_code=status_code,
        rules=sorted(chosen, key=lambda info: (-hits.get(info.id, 0), info.title.lower())),
        hits=hits,
        file_problems=listing.problems,
        totals={
            "all": len(listing.rules),
            "enabled": sum(1 for info in listing.rules if info.enabled and info.loaded),
            "problems": sum(1 for info in listing.rules if info.problems) + len(listing.problems),
        },
        filters={"q": query.get("q", ""), "level": levels, "state": state, "origin": origin},
        can_change=session.key.role in AUTHORS,
        draft=draft,
        draft_lines=_numbered(draft, refused or []),
        refused=refused or [],
        test=test,
        hours=DEFAULT_TEST_HOURS,
        notice=query.get("notice"),
    )


async def _rule_page(
    request: Request,
    services: ServicesDep,
    session: Session,
    rule_id: str,
    *,
    refused: list[RuleProblem] | None = None,
    test: dict[str, Any] | None = None,
) -> HTMLResponse:
    source, hits, trail = await asyncio.gather(
        in_thread(services.rules.get, rule_id),  # 404 for an unknown id
        rule_actions.alert_counts(services, session.key.scope, [rule_id]),
        services.audit.trail("rule", rule_id, None),  # rules belong to no agency
    )
    return page(
        request,
        "rule.html",
        session,
        info=source.info,
        lines=_numbered(source.yaml, [*source.info.problems, *(refused or [])]),
        hits=hits.get(rule_id, 0),
        trail=trail,
        can_change=session.key.role in AUTHORS,
        refused=refused or [],
        test=test,
        hours=test["hours"] if test else DEFAULT_TEST_HOURS,
        notice=request.query_params.get("notice"),
    )


def _numbered(text: str, problems: list[RuleProblem]) -> list[dict[str, Any]]:
    """The lines of a rule's YAML, each with the problems reported at it."""
    at: dict[int, list[str]] = {}
    for problem in problems:
        at.setdefault(problem.line or 1, []).append(problem.reason)
    return [{"number": n, "text": line, "problems": at.get(n, [])} for n, line in enumerate(text.splitlines(), 1)]


def _test_view(tested: StoredTest, hours: float) -> dict[str, Any]:
    matches = []
    for match in tested.result.matches[:SHOWN_MATCHES]:
        hit = tested.hits[match.position]
        event = hit["_source"]
        matches.append(
            {
                "id": hit["_id"],
                "index": hit["_index"],
                "timestamp": event.get("@timestamp"),
                "host": get_field(event, "host.name"),
                "message": get_field(event, "message") or get_field(event, "event.original"),
            }
        )
    return {
        "hours": hours,
        "scanned": tested.result.scanned,
        "matched": len(tested.result.matches),
        "truncated": tested.truncated,
        "matches": matches,
    }


async def _rule_text(form: FormData) -> str:
    """The rule of an upload form: the text area, or else the chosen file."""
    text = str(form.get("yaml") or "")
    chosen = form.get("file")
    if not text.strip() and chosen is not None and not isinstance(chosen, str):
        try:
            text = (await chosen.read()).decode("utf-8")
        except UnicodeDecodeError:
            raise Problem(INVALID_PARAMETERS, f"{chosen.filename or 'the file'} is not UTF-8 text") from None
    if not text.strip():
        raise Problem(INVALID_PARAMETERS, "paste a Sigma rule or choose its file")
    if len(text) > MAX_UPLOAD_CHARS:
        raise Problem(INVALID_PARAMETERS, f"a rule has at most {MAX_UPLOAD_CHARS:,} characters")
    return text


def _hours(form: FormData) -> float:
    try:
        hours = float(str(form.get("hours", DEFAULT_TEST_HOURS)))
    except ValueError:
        raise Problem(INVALID_PARAMETERS, "hours is a number, such as 24") from None
    if not 0 < hours <= MOST_TEST_HOURS:
        raise Problem(INVALID_PARAMETERS, f"hours is more than 0 and at most {MOST_TEST_HOURS}")
    return hours


def _state(info: RuleInfo) -> str:
    if not info.enabled:
        return "disabled"
    return "enabled" if info.loaded else "enabled but not loaded (see its problems)"


def _back(path: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'notice': notice})}", status_code=303)
