"""Errors as problem details (RFC 9457): every refusal says what went wrong and what to do.

Routes raise :class:`Problem`, or let the domain's own errors through (an alert not found, a
refused triage change, an invalid query, Elasticsearch unreachable): :func:`install` maps each
to its status here, once, so that handlers never translate errors themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from elastic_transport import TransportError
from elasticsearch import ApiError
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from secmon.auth import KeyStoreUnavailable
from secmon.detection.catalog import CatalogError, RuleConflict, RuleNotFound, RuleRefused
from secmon.detection.rules import RuleProblem
from secmon.errors import StoreError
from secmon.log import get_logger
from secmon.triage.query import InvalidQuery
from secmon.triage.store import AlertNotFound
from secmon.triage.workflow import TriageError

log = get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TITLES = {
    400: "The request is not valid",
    401: "A valid API key is needed",
    403: "This API key may not do this",
    404: "Not found",
    405: "Method not allowed here",
    409: "The change conflicts with the current state",
    413: "The request body is too large",
    422: "The request is not valid",
    429: "Too many requests",
    500: "secmon failed on this request",
    503: "A service secmon needs is unavailable",
}


class Problem(Exception):
    """A refusal, answered as problem details."""

    def __init__(
        self, status: int, detail: str, *, headers: Mapping[str, str] | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions

    def response(self, instance: str | None = None) -> Response:
        body: dict[str, Any] = {
            "type": f"urn:secmon:problem:{self.status}",
            "title": _TITLES.get(self.status, "The request failed"),
            "status": self.status,
            "detail": self.detail,
            **self.extensions,
        }
        if instance:
            body["instance"] = instance
        return Response(orjson.dumps(body), self.status, self.headers, PROBLEM_MEDIA_TYPE)


def problem_of(exc: Exception, request: Request | None = None) -> Problem:  # noqa: PLR0911 - one answer per error kind
    """The problem an exception raised while answering ``request`` stands for."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, RuleRefused):
        return rule_problems(exc.problems)
    if isinstance(exc, RuleNotFound):
        return Problem(404, str(exc))
    if isinstance(exc, RuleConflict):
        return Problem(409, str(exc))
    if isinstance(exc, AlertNotFound):
        return Problem(404, f"no alert {exc.args[0]} (or not one of your agencies')")
    if isinstance(exc, TriageError):
        return Problem(409, str(exc))
    if isinstance(exc, InvalidQuery):
        return Problem(400, str(exc))
    if isinstance(exc, RequestValidationError):
        errors = [
            {"where": ".".join(str(part) for part in error["loc"]), "problem": error["msg"]} for error in exc.errors()
        ]
        detail = "; ".join(f"{error['where']}: {error['problem']}" for error in errors)
        return Problem(422, detail, errors=errors)
    if isinstance(exc, StarletteHTTPException):
        if request is None:
            return Problem(exc.status_code, str(exc.detail))
        if exc.status_code == 404:
            return Problem(404, f"no endpoint {request.url.path}; see /docs")
        if exc.status_code == 405:
            return Problem(405, f"{request.method} is not allowed on {request.url.path}; see /docs")
        return Problem(exc.status_code, str(exc.detail))
    if isinstance(exc, KeyStoreUnavailable):
        return Problem(503, "API keys cannot be checked: Elasticsearch is unreachable", headers={"Retry-After": "5"})
    if isinstance(exc, TransportError):
        return Problem(503, f"Elasticsearch is unreachable: {exc.message}", headers={"Retry-After": "5"})
    if isinstance(exc, ApiError) and exc.meta.status == 400:
        return Problem(400, f"Elasticsearch refused the search: {_es_reason(exc)}")
    if isinstance(exc, StoreError):
        return Problem(503, str(exc), headers={"Retry-After": "5"})
    log.error("A request failed.", path=request and request.url.path, error=repr(exc))
    return Problem(500, "an unexpected error; it is logged on the server")


def rule_problems(problems: list[RuleProblem]) -> Problem:
    """A refused rule upload: each problem with its line."""
    details = [{"line": problem.line, "problem": problem.reason, "kind": problem.kind} for problem in problems]
    text = "; ".join(f"line {p.line}: {p.reason}" if p.line else p.reason for p in problems)
    return Problem(422, f"the rule cannot be loaded: {text}", errors=details)


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem details."""

    async def on_error(request: Request, exc: Exception) -> Response:
        return problem_of(exc, request).response(request.url.path)

    handled: list[type[Exception]] = [
        Problem,
        AlertNotFound,
        CatalogError,
        TriageError,
        InvalidQuery,
        RequestValidationError,
        StarletteHTTPException,
        KeyStoreUnavailable,
        TransportError,
        ApiError,
        StoreError,
    ]
    for kind in handled:
        app.add_exception_handler(kind, on_error)


def _es_reason(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", {})
    while isinstance(error, dict) and isinstance(error.get("caused_by"), dict):
        error = error["caused_by"]
    return str(error.get("reason") if isinstance(error, dict) else error) or str(exc)
