"""``POST /ingest`` and ``/ingest/{format}``: NDJSON, one event per line.

A JSON object per line for the JSON formats, a raw log line for the others. The answer is
``{"accepted": n, "rejected": [...]}``: 200 when every line was taken, 207 when some were, 400
when none was. A line refused (not JSON, or naming an agency the key does not have) is
reported and dead-lettered alone; the rest is stored.
"""

from __future__ import annotations

import contextlib
import time

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from secmon.auth import ApiKey
from secmon.collect.sources.http.body import body_text
from secmon.collect.sources.http.intake import (
    JSON_FORMATS,
    UNKNOWN_FORMAT,
    IngestKey,
    Intake,
    IntakeDep,
    Refused,
    RequestBody,
    claimed_agency,
    ingest_key,
    json_object,
    peer,
)
from secmon.collect.topology import Agency
from secmon.events import Record
from secmon.serving.problems import Problem


class RejectedLine(BaseModel):
    """A line of the body that was not taken, and why."""

    line: int = Field(description="Its number in the body, from 1.")
    reason: str


class IngestResult(BaseModel):
    """What became of the lines of one request."""

    accepted: int = Field(description="Lines stored (durable in secmon's buffer when this answer is sent).")
    rejected: list[RejectedLine] = Field(description="Lines refused; each is also kept in the dead-letter stream.")


async def ingest_lines(intake: Intake, body: bytes, fmt: str, key: ApiKey, sender: str | None) -> IngestResult:
    """Submit each line of an NDJSON body; dead-letter and report the lines refused."""
    if fmt not in intake.formats:
        raise Problem(UNKNOWN_FORMAT, f"no format {fmt!r}; known: {', '.join(sorted(intake.formats))}")
    text = body_text(body)
    origin = intake.origin(sender)
    received = time.time()
    batches: dict[Agency | None, list[Record]] = {}
    rejected: list[RejectedLine] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        try:
            agency = intake.agency(key, _line_claim(line, fmt))
        except Refused as refused:
            rejected.append(RejectedLine(line=number, reason=refused.reason))
            await intake.reject(line, refused.reason, fmt, key, where=f"line {number}")
            continue
        batches.setdefault(agency, []).append(Record(line, origin, received))
    await intake.submit(batches, fmt)
    return IngestResult(accepted=sum(len(records) for records in batches.values()), rejected=rejected)


def _line_claim(line: str, fmt: str) -> str | None:
    """The agency an NDJSON line names; raises :class:`Refused` for a line its JSON format cannot take."""
    if fmt in JSON_FORMATS:
        return claimed_agency(json_object(line))
    if fmt == "auto" and line.startswith("{"):
        # "auto" parses it as JSON too: what it names matters, but a broken one is kept as text.
        with contextlib.suppress(Refused):
            return claimed_agency(json_object(line))
    return None


router = APIRouter(prefix="/ingest", tags=["ingest"], dependencies=[Depends(ingest_key)])


@router.post("", response_model=IngestResult, responses={207: {"model": IngestResult}})
async def ingest_default(
    intake: IntakeDep, key: IngestKey, body: RequestBody, request: Request, response: Response
) -> IngestResult:
    """Store NDJSON events, one per line, parsed in the source's configured format."""
    return _status(await ingest_lines(intake, body, intake.settings.format, key, peer(request)), response)


@router.post("/{fmt}", response_model=IngestResult, responses={207: {"model": IngestResult}})
async def ingest_format(
    fmt: str, *, intake: IntakeDep, key: IngestKey, body: RequestBody, request: Request, response: Response
) -> IngestResult:
    """Store NDJSON events, one per line, parsed in the format the path names."""
    return _status(await ingest_lines(intake, body, fmt, key, peer(request)), response)


def _status(result: IngestResult, response: Response) -> IngestResult:
    if result.rejected:
        response.status_code = 207 if result.accepted else 400
    return result
