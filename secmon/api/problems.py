"""The API's problems: its own kinds beside the shared ones, and its domain errors mapped to them.

Routes raise :class:`~secmon.serving.problems.Problem`, or let the domain's own errors through
(an alert not found, a refused triage change, an invalid query, a refused rule):
:func:`translate` maps each to its problem here, once, and :func:`install` hands that to the
shared kernel, which also answers Elasticsearch being unavailable (503) and the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from elasticsearch import ApiError
from fastapi import FastAPI, Request, Response

from secmon.detection.catalog import RuleConflict, RuleNotFound, RuleRefused
from secmon.detection.rules import RuleProblem
from secmon.serving import problems
from secmon.serving.problems import NOT_FOUND, Problem, ProblemType
from secmon.store.errors import error_reason
from secmon.triage.query import InvalidQuery
from secmon.triage.store import AlertNotFound
from secmon.triage.workflow import TriageError

INVALID_QUERY = ProblemType("invalid-query", 400, "The search cannot be run")
CONFLICT = ProblemType("conflict", 409, "The change conflicts with the current state")
UNSUPPORTED_MEDIA_TYPE = ProblemType("unsupported-media-type", 415, "The content type is not supported")
INVALID_PARAMETERS = ProblemType("invalid-parameters", 422, "The request is not valid")
INVALID_BODY = ProblemType("invalid-body", 422, "The request body is not valid")
INVALID_RULE = ProblemType("invalid-rule", 422, "The rule cannot be loaded")
SERVICE_UNAVAILABLE = ProblemType("service-unavailable", 503, "A service secmon needs is not running here")


def translate(exc: Exception) -> Problem | None:  # noqa: PLR0911 - one answer per error kind
    """The problem a domain error stands for; None for errors the kernel answers."""
    if isinstance(exc, RuleRefused):
        return rule_problems(exc.problems)
    if isinstance(exc, RuleNotFound):
        return Problem(NOT_FOUND, str(exc))
    if isinstance(exc, RuleConflict):
        return Problem(CONFLICT, str(exc))
    if isinstance(exc, AlertNotFound):
        return Problem(NOT_FOUND, f"no alert {exc.args[0]} (or not one of your agencies')")
    if isinstance(exc, TriageError):
        return Problem(CONFLICT, str(exc))
    if isinstance(exc, InvalidQuery):
        return Problem(INVALID_QUERY, str(exc))
    if isinstance(exc, ApiError) and exc.meta.status == 400:
        return Problem(INVALID_QUERY, f"Elasticsearch refused the search: {error_reason(exc)}")
    return None


def problem_of(exc: Exception, request: Request | None = None) -> Problem:
    """The problem an exception raised while answering ``request`` stands for."""
    return problems.problem_of(exc, request, translate=translate, invalid=INVALID_PARAMETERS)


def rule_problems(found: list[RuleProblem]) -> Problem:
    """A refused rule upload: each problem with its line."""
    details = [{"line": problem.line, "problem": problem.reason, "kind": problem.kind} for problem in found]
    text = "; ".join(f"line {p.line}: {p.reason}" if p.line else p.reason for p in found)
    return Problem(INVALID_RULE, f"the rule cannot be loaded: {text}", errors=details)


def install(app: FastAPI, respond: Callable[[Request, Problem], Response] | None = None) -> None:
    """Answer every error of ``app`` as problem details, naming the path refused as the ``instance``.

    ``respond`` renders them instead (the console shows its pages' problems as a page).
    """
    problems.install(app, respond or json_problem, translate=translate, invalid=INVALID_PARAMETERS)


def json_problem(request: Request, problem: Problem) -> Response:
    return problem.response(request.url.path)
