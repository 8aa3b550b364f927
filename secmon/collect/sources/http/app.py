"""The ingest application (its routers, its problems, the ``X-Elastic-Product`` header) and the source serving it."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from secmon import __version__
from secmon.auth import KeyStore
from secmon.collect.sources import SourceEnvironment
from secmon.collect.sources.http import bulk, elasticsearch_api, ingest
from secmon.collect.sources.http.intake import Intake
from secmon.collect.sources.settings import HttpSourceSettings
from secmon.collect.topology import Pipeline
from secmon.errors import ConfigError
from secmon.log import get_logger
from secmon.serving import AsgiServer, problems
from secmon.serving.problems import INTERNAL_ERROR, Problem

log = get_logger(__name__)

# Answered as problem details; every other path is Elasticsearch's, answered in its error shape.
_PROBLEM_PATHS = ("/ingest", "/healthz")

health_router = APIRouter(tags=["health"])


@health_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Answer while the source runs; no API key needed."""
    return {"status": "ok"}


def create_ingest_app(pipeline: Pipeline, keys: KeyStore, settings: HttpSourceSettings, component: str) -> FastAPI:
    """The ingest application of source ``component``."""
    app = FastAPI(
        title="secmon ingest",
        version=__version__,
        description="Send events to secmon: NDJSON, or Elasticsearch's bulk API from Beats, Vector or Fluent Bit.",
    )
    app.state.intake = Intake(pipeline, keys, settings, component)
    app.include_router(health_router)
    app.include_router(ingest.router)
    app.include_router(bulk.router)
    app.include_router(elasticsearch_api.router)

    def respond(request: Request, problem: Problem) -> Response:
        pipeline.telemetry.errors.labels(component, "request").inc()
        if request.url.path.startswith(_PROBLEM_PATHS):
            return problem.response()
        return problem.elasticsearch_response()

    problems.install(app, respond)
    app.add_middleware(ElasticsearchProductHeader, component=component, pipeline=pipeline)
    return app


class ElasticsearchProductHeader:
    """Adds ``X-Elastic-Product: Elasticsearch`` to every answer, errors included.

    Elasticsearch's own clients refuse an answer without it. It is also where an unexpected
    failure becomes a 500 answer (logged and counted), so that answer carries the header too.
    """

    def __init__(self, app: ASGIApp, component: str, pipeline: Pipeline) -> None:
        self.app = app
        self.component = component
        self.pipeline = pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_header(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).append("X-Elastic-Product", "Elasticsearch")
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        except Exception:
            log.exception("An ingest request failed.", component=self.component, path=scope.get("path"))
            self.pipeline.telemetry.errors.labels(self.component, "request").inc()
            if started:
                raise  # too late for an answer: the connection is closed
            problem = Problem(INTERNAL_ERROR, "an unexpected error; it is logged on the server")
            await problem.elasticsearch_response()(scope, receive, send_with_header)


class HttpSource:
    """Serves :func:`create_ingest_app` on ``settings.address``, in the running event loop."""

    def __init__(self, component: str, settings: HttpSourceSettings, pipeline: Pipeline, keys: KeyStore) -> None:
        self.component = component
        self.settings = settings
        self._server = AsgiServer(
            create_ingest_app(pipeline, keys, settings, component),
            settings.address,
            name=f"http-{component}",
            tls_cert=settings.tls_cert,
            tls_key=settings.tls_key,
        )

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound (host, port) once started."""
        return self._server.address

    async def start(self) -> None:
        """Bind and start serving."""
        await self._server.start()

    async def stop(self) -> None:
        """Stop accepting; requests under way are answered first (up to 10 s), then the connections close."""
        await self._server.stop()


def build(component: str, settings: HttpSourceSettings, environment: SourceEnvironment) -> HttpSource:
    """The :data:`~secmon.collect.sources.SOURCES` entry of ``type: http``."""
    if environment.keys is None:
        raise ConfigError(
            f"sources.{component}: an http source checks API keys in Elasticsearch, "
            "which a collector-only agency (forward.url set) does not have"
        )
    return HttpSource(component, settings, environment.pipeline, environment.keys)
