"""The Elasticsearch API shippers call before sending, answered as a healthy Elasticsearch 8.19 would.

What the shippers call, as read in their sources:

* Beats (libbeat's Elasticsearch output): ``GET /`` for the version (``build_flavor``
  "serverless" would switch ILM off); ``GET /_license?human=false``, which the default
  distribution of Beats requires to be an active license; ``GET /_cat/templates/<name>`` then
  ``PUT /_index_template/<name>``; ``GET`` then ``PUT /_ilm/policy/<name>``; Filebeat modules
  ``GET`` then ``PUT /_ingest/pipeline/<id>``; Beats 7 ``HEAD|PUT /_template/<name>`` and
  ``GET /_xpack``. Then ``POST /_bulk?filter_path=...``, gzip-compressed by default since 8.x.
* Vector's elasticsearch sink: ``GET /`` (``api_version: auto``), ``GET /_cluster/health``
  (health check), ``POST /_bulk?timeout=...``; it looks for ``"errors":true`` in the answer.
* Fluent Bit's es output: ``POST /_bulk`` only; it reads ``errors`` and the items' ``status``.

Templates, policies and pipelines are acknowledged and reported as present, never applied:
secmon normalizes events itself. ``pipeline`` and ``filter_path`` parameters are ignored.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from secmon.collect.sources.http.intake import Intake, IntakeDep, RequestBody, ingest_key, json_response

ES_VERSION = "8.19.21"

router = APIRouter(tags=["elasticsearch"], dependencies=[Depends(ingest_key)])


@router.api_route("/", methods=["GET", "HEAD"])
async def cluster_info(intake: IntakeDep) -> dict[str, Any]:
    """Introduce secmon as an Elasticsearch 8.19 node, as shippers check before sending."""
    return cluster_info_of(intake)


@router.get("/_license")
async def license_info() -> dict[str, Any]:
    """An active basic license, which Beats require."""
    return {"license": _LICENSE}


@router.get("/_xpack")
async def xpack_info() -> dict[str, Any]:
    """The features Beats 7 look for before loading a lifecycle policy."""
    features = {"ilm": {"available": True, "enabled": True}, "security": {"available": True, "enabled": True}}
    return {"build": {"hash": "secmon", "date": "2025-01-01T00:00:00.000Z"}, "license": _LICENSE, "features": features}


@router.get("/_cluster/health")
async def cluster_health() -> dict[str, Any]:
    """A green cluster: Vector's health check."""
    return {"cluster_name": "secmon", "status": "green", "timed_out": False, "number_of_nodes": 1}


@router.get("/_nodes")
@router.get("/_nodes/{selector:path}")
async def nodes_info(intake: IntakeDep, request: Request) -> dict[str, Any]:
    """This one node, reachable where the request came in, with the largest body it takes."""
    node = {
        "name": f"secmon-{intake.component}",
        "version": ES_VERSION,
        "build_flavor": "default",
        "roles": ["data", "ingest", "master"],
        "http": {
            "publish_address": request.url.netloc,
            "max_content_length_in_bytes": intake.settings.max_body_bytes,
        },
        "ingest": {"processors": []},
    }
    counts = {"total": 1, "successful": 1, "failed": 0}
    return {"_nodes": counts, "cluster_name": "secmon", "nodes": {intake.node_id: node}}


@router.get("/_cat/templates/{name}")
async def cat_templates(name: str, request: Request) -> Response:
    """Report the template as present, so Beats do not send it."""
    if request.query_params.get("format") == "json":
        return json_response([{"name": name, "index_patterns": f"[{name}*]", "order": "0", "composed_of": "[]"}])
    return Response(f"{name} [{name}*] 0  []\n", media_type="text/plain")


@router.api_route("/_index_template/{name}", methods=["GET", "HEAD"])
async def get_index_template(name: str) -> dict[str, Any]:
    """Report the index template as present; secmon keeps its own mappings."""
    template = {"index_patterns": [f"{name}*"], "composed_of": [], "data_stream": {}}
    return {"index_templates": [{"name": name, "index_template": template}]}


@router.api_route("/_template/{name}", methods=["GET", "HEAD"])
async def get_legacy_template(name: str) -> dict[str, Any]:
    """Report the legacy template as present (Beats 7)."""
    return {name: {"order": 0, "index_patterns": [f"{name}*"], "settings": {}, "mappings": {}, "aliases": {}}}


@router.get("/_ilm/policy/{name}")
async def get_ilm_policy(name: str) -> dict[str, Any]:
    """Report the lifecycle policy as present; secmon applies its own retention."""
    return {name: {"version": 1, "modified_date": "2025-01-01T00:00:00.000Z", "policy": {"phases": {}}}}


@router.get("/_ingest/pipeline/{name}")
async def get_ingest_pipeline(name: str) -> dict[str, Any]:
    """Report the ingest pipeline as present; secmon normalizes events itself."""
    return {name: {"description": "accepted by secmon, which runs no ingest pipelines", "processors": []}}


@router.put("/_index_template/{name}")
@router.put("/_template/{name}")
@router.put("/_ilm/policy/{name}")
@router.put("/_ingest/pipeline/{name}")
async def put_setup(name: str, body: RequestBody) -> dict[str, Any]:
    """Acknowledge a template, policy or pipeline; secmon does not apply it."""
    return {"acknowledged": True}


_LICENSE = {
    "status": "active",
    "uid": "00000000-0000-4000-8000-00000000ec30",
    "type": "basic",
    "mode": "basic",
    "issue_date": "2025-01-01T00:00:00.000Z",
    "issue_date_in_millis": 1735689600000,
    "max_nodes": 1000,
    "issued_to": "secmon",
    "issuer": "secmon",
    "start_date_in_millis": -1,
}


def cluster_info_of(intake: Intake) -> dict[str, Any]:
    """``GET /`` of an Elasticsearch 8.19 node."""
    return {
        "name": f"secmon-{intake.component}",
        "cluster_name": "secmon",
        "cluster_uuid": intake.node_id,
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "secmon",
            "build_hash": "secmon",
            "build_date": "2025-01-01T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "9.12.2",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    }
