"""Triage from the console: one alert (its detail page, the queue's a and c keys) or many (bulk).

Forms post here with the session's CSRF token; the change goes through the same
:class:`~secmon.triage.store.AlertStore` as ``PATCH /alerts/{id}``, so it is recorded in the audit
trail under the key's name and refused by the same workflow rules.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from secmon.api.deps import ServicesDep
from secmon.api.problems import INVALID_PARAMETERS, problem_of
from secmon.console.pages.login import local_path
from secmon.console.web import CsrfChecked, TriageSession
from secmon.serving.problems import Problem
from secmon.triage.audit import Actor
from secmon.triage.workflow import MAX_NOTE_CHARS, Resolution, Status, TriageChange

router = APIRouter(prefix="/console/alerts", include_in_schema=False)
ACTIONS = ("acknowledge", "close", "reopen", "assign", "assign_me", "note")


@router.post("/triage")
async def triage(
    request: Request, services: ServicesDep, session: CsrfChecked, allowed: TriageSession
) -> RedirectResponse:
    """Apply the form's ``action`` to its ``id`` values, then go back to ``back`` with a notice."""
    form = await request.form()
    ids = [str(value) for value in form.getlist("id") if str(value)]
    if not ids:
        raise Problem(INVALID_PARAMETERS, "select at least one alert")
    change = change_of(
        str(form.get("action", "")),
        resolution=str(form.get("resolution", "")),
        assignee=str(form.get("assignee", "")),
        note=str(form.get("note", "")),
        me=session.key.name,
    )
    outcomes = await services.alerts.triage_many(ids, change, Actor.of(session.key), session.key.scope)
    failed = {alert_id: problem_of(o).detail for alert_id, o in outcomes.items() if isinstance(o, Exception)}
    updated = len(ids) - len(failed)
    notice = f"{updated} alert{'s' if updated != 1 else ''} updated"
    if failed:
        notice += "; not changed: " + "; ".join(f"{alert_id}: {detail}" for alert_id, detail in failed.items())
    back = local_path(str(form.get("back", "/")))
    separator = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{separator}{urlencode({'notice': notice})}", status_code=303)


def change_of(action: str, *, resolution: str, assignee: str, note: str, me: str) -> TriageChange:
    """The triage change a console action asks for; :class:`Problem` (422) for one it cannot be."""
    if len(note) > MAX_NOTE_CHARS:
        raise Problem(INVALID_PARAMETERS, f"a note has at most {MAX_NOTE_CHARS} characters")
    text = note.strip() or None
    if action == "acknowledge":
        return TriageChange(status=Status.ACKNOWLEDGED, note=text)
    if action == "close":
        if resolution not in {r.value for r in Resolution}:
            raise Problem(INVALID_PARAMETERS, "closing needs a resolution: true_positive, false_positive or benign")
        return TriageChange(status=Status.CLOSED, resolution=Resolution(resolution), note=text)
    if action == "reopen":
        return TriageChange(status=Status.OPEN, note=text)
    if action == "assign":
        return TriageChange(assignee=assignee.strip(), note=text)
    if action == "assign_me":
        return TriageChange(assignee=me, note=text)
    if action == "note" and text:
        return TriageChange(note=text)
    raise Problem(INVALID_PARAMETERS, f"action {action!r} is not one of {', '.join(ACTIONS)} (a note needs text)")
