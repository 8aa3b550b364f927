"""Rules: list and read the engine's rules with their alert counts, upload, enable, disable, delete, test.

Changes go through :class:`~secmon.detection.catalog.RuleCatalog`, which shares them with every
instance through Elasticsearch and writes the files the detection engine hot-reloads; each change
is recorded in the audit trail (target type ``rule``).
Enabling and disabling is ``PUT /rules/{id}/enabled`` with ``{"enabled": true|false}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field, model_validator

from secmon.api.deps import RuleAuthorKey, RuleReaderKey, ServicesDep
from secmon.api.problems import INVALID_BODY, UNSUPPORTED_MEDIA_TYPE
from secmon.api.rule_actions import MAX_TEST_EVENTS, alert_counts, in_thread, set_enabled, test_on_stored, upload
from secmon.api.schemas import AuditEntry
from secmon.detection.catalog import RuleInfo, RuleTest
from secmon.detection.rules import RuleProblem
from secmon.serving.problems import Problem
from secmon.triage.audit import Actor
from secmon.triage.workflow import FieldChange

router = APIRouter(prefix="/rules", tags=["rules"])
RuleId = Annotated[str, Path(min_length=1, max_length=200, description="The rule's id.")]
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")


class ProblemOut(BaseModel):
    path: str
    line: int | None = None
    problem: str
    kind: str

    @classmethod
    def of(cls, problem: RuleProblem) -> ProblemOut:
        return cls(path=problem.path, line=problem.line, problem=problem.reason, kind=problem.kind)


class LogsourceOut(BaseModel):
    product: str | None = None
    category: str | None = None
    service: str | None = None


class RuleOut(BaseModel):
    """A rule of the catalog."""

    id: str
    title: str
    type: Literal["sigma", "correlation"]
    level: str
    status: str
    tags: list[str]
    logsource: LogsourceOut
    path: str
    origin: Literal["shipped", "configured", "uploaded"] = Field(
        description="shipped with secmon, in a configured rule folder, or uploaded through the API."
    )
    enabled: bool
    loaded: bool = Field(description="The engine loaded it; it matches events when also enabled.")
    problems: list[ProblemOut] = Field(default_factory=list, description="Why it did not load.")
    description: str = ""
    author: str = ""
    hits: int | None = Field(None, description="Alerts of this rule in your agencies (null when not counted).")

    @classmethod
    def of(cls, info: RuleInfo, hits: int | None = None) -> RuleOut:
        product, category, service = info.logsource
        return cls(
            id=info.id,
            title=info.title,
            type=info.type,
            level=info.level,
            status=info.status,
            tags=list(info.tags),
            logsource=LogsourceOut(product=product, category=category, service=service),
            path=info.path,
            origin=info.origin,
            enabled=info.enabled,
            loaded=info.loaded,
            problems=[ProblemOut.of(p) for p in info.problems],
            description=info.description,
            author=info.author,
            hits=hits,
        )


class RuleDetailOut(RuleOut):
    yaml: str = Field(description="The text of the rule's file.")


class RuleListOut(BaseModel):
    rules: list[RuleOut]
    total: int
    problems: list[ProblemOut] = Field(
        default_factory=list, description="Files in which no rule could be read (invalid YAML)."
    )


class EnabledIn(BaseModel):
    enabled: bool


class UploadIn(BaseModel):
    yaml: str = Field(min_length=1, description="The Sigma rule, as YAML text.")


class TestIn(BaseModel):
    """A rule (its YAML, or the id of a catalog rule) and the events to match it against."""

    rule: str | None = Field(None, min_length=1, description="A Sigma rule as YAML text.")
    rule_id: str | None = Field(None, min_length=1, max_length=200, description="The id of a catalog rule.")
    events: list[dict[str, Any]] = Field(max_length=MAX_TEST_EVENTS, description="ECS events as secmon stores them.")

    @model_validator(mode="after")
    def one_rule(self) -> TestIn:
        if (self.rule is None) == (self.rule_id is None):
            raise ValueError("give either rule (YAML text) or rule_id")
        return self


class MatchOut(BaseModel):
    position: int = Field(description="The event's position in the events tested (0-based, newest first when stored).")
    event_id: str | None = None
    index: str | None = Field(None, description="Where a stored event is.")
    rule_ids: list[str]
    event: dict[str, Any] | None = Field(None, description="The stored event (tests over stored events).")


class TestOut(BaseModel):
    rule_ids: list[str] = Field(description="The rules tested (a rule file may hold several).")
    scanned: int = Field(description="Events matched against the rule.")
    matched: int
    truncated: bool = Field(False, description="More stored events were in the time range than were scanned.")
    matches: list[MatchOut]


@router.get("", response_model=RuleListOut)
async def list_rules(
    *,
    services: ServicesDep,
    key: RuleReaderKey,
    level: Annotated[list[str] | None, Query(description="informational … critical (repeatable).")] = None,
    enabled: bool | None = None,
    origin: Annotated[list[Literal["shipped", "configured", "uploaded"]] | None, Query()] = None,
    kind: Annotated[
        Literal["sigma", "correlation"] | None, Query(alias="type", description="sigma or correlation.")
    ] = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of the title (case-insensitive).")] = None,
) -> RuleListOut:
    """The rules the engine runs (and those it could not load), with their alert counts."""
    listing = await in_thread(services.rules.listing)
    text = q.lower() if q else None
    rules = [
        info
        for info in listing.rules
        if (not level or info.level in level)
        and (enabled is None or info.enabled is enabled)
        and (not origin or info.origin in origin)
        and (kind is None or info.type == kind)
        and (text is None or text in info.title.lower())
    ]
    hits = await alert_counts(services, key.scope, [info.id for info in rules])
    return RuleListOut(
        rules=[RuleOut.of(info, hits.get(info.id, 0)) for info in rules],
        total=len(rules),
        problems=[ProblemOut.of(p) for p in listing.problems],
    )


@router.post(
    "",
    response_model=RuleOut,
    status_code=201,
    responses={
        409: {"description": "The id belongs to a shipped or configured rule"},
        422: {"description": "The rule does not load"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
                "application/json": {"schema": UploadIn.model_json_schema()},
            },
        }
    },
)
async def upload_rule(request: Request, services: ServicesDep, key: RuleAuthorKey) -> RuleOut:
    """Add a Sigma rule (YAML, or JSON {"yaml": ...}); an uploaded rule with the same id is replaced."""
    return RuleOut.of(await upload(services, key, await _rule_text(request)), None)


@router.post("/test", response_model=TestOut)
async def test_rule(services: ServicesDep, key: RuleAuthorKey, body: TestIn) -> TestOut:
    """Match a rule (YAML or a catalog id), alone, against example events; say which it matched."""
    result = await in_thread(services.rules.test, body.events, text=body.rule, rule_id=body.rule_id)
    return _test_out(result)


@router.get("/{rule_id}", response_model=RuleDetailOut)
async def get_rule(services: ServicesDep, key: RuleReaderKey, rule_id: RuleId) -> RuleDetailOut:
    """One rule: metadata, the YAML of its file, and its alert count."""
    source = await in_thread(services.rules.get, rule_id)
    hits = await alert_counts(services, key.scope, [rule_id])
    return RuleDetailOut(**RuleOut.of(source.info, hits.get(rule_id, 0)).model_dump(), yaml=source.yaml)


@router.put("/{rule_id}/enabled", response_model=RuleOut)
async def set_rule_enabled(services: ServicesDep, key: RuleAuthorKey, rule_id: RuleId, body: EnabledIn) -> RuleOut:
    """Enable or disable a rule: a disabled rule stays listed but matches no event."""
    return RuleOut.of(await set_enabled(services, key, rule_id, body.enabled), None)


@router.delete("/{rule_id}", status_code=204, responses={409: {"description": "Not an uploaded rule"}})
async def delete_rule(services: ServicesDep, key: RuleAuthorKey, rule_id: RuleId) -> Response:
    """Remove an uploaded rule; shipped and configured rules can only be disabled."""
    source = await in_thread(services.rules.get, rule_id)
    await services.rules.delete(rule_id)
    await services.audit.record(Actor.of(key), "delete", "rule", rule_id, [FieldChange("yaml", source.yaml, None)])
    return Response(status_code=204)


@router.get("/{rule_id}/audit", response_model=list[AuditEntry])
async def rule_audit(services: ServicesDep, key: RuleReaderKey, rule_id: RuleId) -> list[AuditEntry]:
    """Every change made to the rule through the API: who, when, from what to what; oldest first."""
    entries = await services.audit.trail("rule", rule_id, None)  # rules belong to no agency
    return [AuditEntry.model_validate(entry) for entry in entries]


@router.post("/{rule_id}/test", response_model=TestOut)
async def test_rule_on_stored_events(
    services: ServicesDep,
    key: RuleAuthorKey,
    rule_id: RuleId,
    hours: Annotated[float, Query(gt=0, le=24 * 31, description="How far back to look.")] = 24,
    limit: Annotated[
        int, Query(ge=1, le=MAX_TEST_EVENTS, description="Most events to scan, newest first.")
    ] = MAX_TEST_EVENTS,
) -> TestOut:
    """Match a catalog rule against the stored events of the last ``hours`` in your agencies."""
    tested = await test_on_stored(services, key.scope, hours=hours, limit=limit, rule_id=rule_id)
    out = _test_out(tested.result, truncated=tested.truncated)
    for match in out.matches:
        hit = tested.hits[match.position]
        match.index, match.event = hit["_index"], hit["_source"]
    return out


async def _rule_text(request: Request) -> str:
    """The rule of an upload: the body itself (YAML or text), or JSON's ``yaml``."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if media == "application/json":
        try:
            upload = UploadIn.model_validate(orjson.loads(body))
        except (orjson.JSONDecodeError, ValueError):
            raise Problem(INVALID_BODY, 'send JSON of the form {"yaml": "<the Sigma rule>"}') from None
        return upload.yaml
    if media not in YAML_TYPES:
        raise Problem(
            UNSUPPORTED_MEDIA_TYPE,
            f'send the rule as application/yaml, text/plain or JSON {{"yaml": ...}}, not {media or "no content type"}',
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(INVALID_BODY, "the rule is not UTF-8 text") from None
    if not text.strip():
        raise Problem(INVALID_BODY, "the body is empty: send the Sigma rule")
    return text


def _test_out(result: RuleTest, *, truncated: bool = False) -> TestOut:
    return TestOut(
        rule_ids=list(result.rule_ids),
        scanned=result.scanned,
        matched=len(result.matches),
        truncated=truncated,
        matches=[
            MatchOut(position=m.position, event_id=m.event_id, index=None, rule_ids=list(m.rule_ids), event=None)
            for m in result.matches
        ],
    )
