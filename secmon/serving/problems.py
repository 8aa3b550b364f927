"""Problem details (RFC 9457): the one error kernel of secmon's HTTP applications, ingest and the API.

Every refusal is a :class:`Problem` of a :class:`ProblemType`, whose ``type`` URI
(``urn:secmon:problem:<slug>``) names the kind of problem and whose ``detail`` says what to
change. :func:`install` registers the exception handlers of an application once, so that no
route translates errors itself:

* a :class:`Problem` raised by a route or a dependency is answered as it is;
* the application's own ``translate`` maps its domain errors (the API: an alert not found → 404);
* FastAPI's unknown endpoints, wrong methods and invalid parameters become problems too;
* Elasticsearch overloaded (429), unavailable (503), with a shard not started, or unreachable,
  and secmon's :class:`~secmon.errors.StoreError`, are a 503 with ``Retry-After``: the client
  should come back, so it is never a 500;
* anything else is a 500, logged with its traceback.

Each application renders a problem its way: the API as ``application/problem+json``; ingest
also as Elasticsearch's error shape, for the shippers that talk to it as to Elasticsearch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from elastic_transport import TransportError
from elasticsearch import ApiError
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from secmon.auth import KeyStoreUnavailable
from secmon.errors import SecmonError, StoreError
from secmon.log import get_logger
from secmon.store.errors import error_reason, error_type, is_temporary

log = get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
# How long a client waits before asking again when Elasticsearch cannot answer.
RETRY_AFTER_SECONDS = 5
# What Elasticsearch itself answers with these statuses; shippers retry a 429 after backing off.
_ELASTICSEARCH_TYPES = {401: "security_exception", 403: "security_exception", 429: "es_rejected_execution_exception"}


@dataclass(frozen=True, slots=True)
class ProblemType:
    """A kind of problem: the ``type`` URI's last part, the HTTP status and the title (the same for every instance)."""

    slug: str
    status: int
    title: str

    @property
    def uri(self) -> str:
        return f"urn:secmon:problem:{self.slug}"

    @property
    def elasticsearch_type(self) -> str:
        """The ``error.type`` Elasticsearch would answer with this status."""
        return _ELASTICSEARCH_TYPES.get(self.status, "illegal_argument_exception")


# The kinds both applications answer; each application defines its own beside them.
INVALID_REQUEST = ProblemType("invalid-request", 400, "The request is not valid")
UNAUTHORIZED = ProblemType("unauthorized", 401, "A valid API key is needed")
FORBIDDEN = ProblemType("forbidden", 403, "This API key may not do this")
NOT_FOUND = ProblemType("not-found", 404, "Not found")
METHOD_NOT_ALLOWED = ProblemType("method-not-allowed", 405, "Method not allowed here")
BODY_TOO_LARGE = ProblemType("body-too-large", 413, "The request body is too large")
INTERNAL_ERROR = ProblemType("internal-error", 500, "secmon failed on this request")
KEYS_UNAVAILABLE = ProblemType("keys-unavailable", 503, "API keys cannot be checked right now")
ELASTICSEARCH_UNAVAILABLE = ProblemType("elasticsearch-unavailable", 503, "Elasticsearch cannot answer right now")


class Problem(SecmonError):
    """A request refused, answered as problem details; ``extensions`` are more members of the document."""

    def __init__(
        self, kind: ProblemType, detail: str, *, headers: Mapping[str, str] | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions

    @property
    def status(self) -> int:
        return self.kind.status

    def document(self, instance: str | None = None) -> dict[str, Any]:
        """The problem details document; ``instance`` is the path of the request refused."""
        body: dict[str, Any] = {
            "type": self.kind.uri,
            "title": self.kind.title,
            "status": self.kind.status,
            "detail": self.detail,
            **self.extensions,
        }
        if instance:
            body["instance"] = instance
        return body

    def response(self, instance: str | None = None) -> Response:
        """The answer as ``application/problem+json``."""
        return Response(orjson.dumps(self.document(instance)), self.status, self.headers, PROBLEM_MEDIA_TYPE)

    def elasticsearch_response(self) -> Response:
        """The answer to an Elasticsearch client: the problem details plus Elasticsearch's ``error``, as JSON.

        Beats, Vector and Fluent Bit cannot parse ``application/problem+json``; they read
        ``error.type``, ``error.reason`` and ``status``.
        """
        error = {"type": self.kind.elasticsearch_type, "reason": self.detail}
        body = {**self.document(), "error": {"root_cause": [error], **error}}
        return Response(orjson.dumps(body), self.status, self.headers, "application/json")


def unavailable(detail: str) -> Problem:
    """Elasticsearch cannot answer now: a 503 that says when to ask again."""
    return Problem(ELASTICSEARCH_UNAVAILABLE, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def elasticsearch_problem(exc: BaseException) -> Problem | None:
    """The 503 of Elasticsearch being overloaded, unavailable, not ready or unreachable; None for other errors."""
    if isinstance(exc, KeyStoreUnavailable):
        return Problem(KEYS_UNAVAILABLE, str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, ApiError) and is_temporary(exc):
        kind = error_type(exc) or "no error type"
        return unavailable(f"Elasticsearch cannot answer now (HTTP {exc.meta.status}, {kind}): {error_reason(exc)}")
    if isinstance(exc, TransportError):
        return unavailable(f"Elasticsearch is unreachable: {exc.message}")
    if isinstance(exc, StoreError):  # IndexNotReady names the indices whose shards did not start
        return unavailable(str(exc))
    return None


Translate = Callable[[Exception], Problem | None]


def problem_of(
    exc: Exception,
    request: Request | None = None,
    *,
    translate: Translate | None = None,
    invalid: ProblemType = INVALID_REQUEST,
) -> Problem:
    """The problem ``exc``, raised while answering ``request``, stands for.

    ``translate`` maps the application's own errors first; ``invalid`` is the kind of invalid
    parameters (the API answers them 422, ingest 400, as Elasticsearch does).
    """
    if isinstance(exc, Problem):
        return exc
    translated = translate(exc) if translate is not None else None
    if translated is not None:
        return translated
    if isinstance(exc, RequestValidationError):
        errors = [{"where": ".".join(map(str, error["loc"])), "problem": error["msg"]} for error in exc.errors()]
        detail = "; ".join(f"{error['where']}: {error['problem']}" for error in errors)
        return Problem(invalid, detail, errors=errors)
    if isinstance(exc, StarletteHTTPException):
        return _routing_problem(exc, request)
    problem = elasticsearch_problem(exc)
    if problem is not None:
        return problem
    log.error("A request failed.", path=request and request.url.path, error=repr(exc), exc_info=exc)
    return Problem(INTERNAL_ERROR, "an unexpected error; it is logged on the server")


def _routing_problem(exc: StarletteHTTPException, request: Request | None) -> Problem:
    where = f"{request.method} {request.url.path}" if request is not None else "this request"
    if exc.status_code == 404:
        return Problem(NOT_FOUND, f"{where}: no such endpoint; see /docs")
    if exc.status_code == 405:
        return Problem(METHOD_NOT_ALLOWED, f"{where}: the method is not allowed here; see /docs")
    kind = ProblemType(f"http-{exc.status_code}", exc.status_code, "The request failed")
    return Problem(kind, str(exc.detail), headers=exc.headers)


def install(
    app: FastAPI,
    respond: Callable[[Request, Problem], Response],
    *,
    translate: Translate | None = None,
    invalid: ProblemType = INVALID_REQUEST,
) -> None:
    """Answer every error of ``app`` as the problem it stands for, rendered by ``respond``."""

    async def on_error(request: Request, exc: Exception) -> Response:
        return respond(request, problem_of(exc, request, translate=translate, invalid=invalid))

    # A handler serves the subclasses of its class too: SecmonError covers Problem, StoreError
    # and every domain error.
    for kind in (SecmonError, RequestValidationError, StarletteHTTPException, ApiError, TransportError):
        app.add_exception_handler(kind, on_error)
