"""Health, readiness and Prometheus metrics: unauthenticated, for load balancers and scrapers."""

from __future__ import annotations

from elastic_transport import TransportError
from elasticsearch import ApiError
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from secmon import __version__
from secmon.api.deps import ServicesDep
from secmon.serving.problems import unavailable

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    version: str


class Readiness(BaseModel):
    status: str
    elasticsearch: str


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The API process is up."""
    return Health(status="ok", version=__version__)


@router.get("/readyz", response_model=Readiness, responses={503: {"description": "Elasticsearch is unreachable"}})
async def readyz(services: ServicesDep) -> Readiness:
    """The API can answer: Elasticsearch is reachable and not red."""
    try:
        health = await services.client.options(request_timeout=2, max_retries=0).cluster.health()
    except (TransportError, ApiError) as exc:
        raise unavailable(f"Elasticsearch is unreachable: {exc}") from None
    colour = str(health.get("status", "unknown"))
    if colour == "red":
        raise unavailable("the Elasticsearch cluster is red")
    return Readiness(status="ready", elasticsearch=colour)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics of this process: API requests, and the pipeline's when it runs here."""
    body = b"".join(generate_latest(registry) for registry in services.registries)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
