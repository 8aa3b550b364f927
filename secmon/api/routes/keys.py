"""API keys over HTTP, for administrators: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field

from secmon.api.deps import AdminKey, ServicesDep
from secmon.api.problems import CONFLICT, INVALID_PARAMETERS
from secmon.auth import ApiKey, Role
from secmon.serving.problems import NOT_FOUND, Problem
from secmon.triage.audit import Actor
from secmon.triage.workflow import FieldChange

router = APIRouter(prefix="/apikeys", tags=["api keys"])


class KeyOut(BaseModel):
    id: str
    name: str
    role: Role
    agencies: list[str]
    created: datetime
    revoked: bool

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(
            id=key.id,
            name=key.name,
            role=key.role,
            agencies=list(key.agencies),
            created=key.created,
            revoked=key.revoked,
        )


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    name: str = Field(min_length=1, max_length=200, description="Who or what uses it.")
    agencies: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=100, description="Agencies it acts for; none: all (not for agency keys)."
    )


class CreatedKey(KeyOut):
    secret: str = Field(description="Shown only in this answer; secmon keeps only its hash.")


@router.get("", response_model=list[KeyOut])
async def list_keys(services: ServicesDep, key: AdminKey) -> list[KeyOut]:
    """Every key, revoked ones included (never their secrets)."""
    return [KeyOut.of(found) for found in await services.keys.list()]


@router.post("", response_model=CreatedKey, status_code=status.HTTP_201_CREATED)
async def create_key(services: ServicesDep, key: AdminKey, body: KeyIn) -> CreatedKey:
    """Create a key; its secret is in this answer and nowhere else."""
    try:
        created, secret = await services.keys.create(body.role, agencies=body.agencies, name=body.name)
    except ValueError as exc:
        raise Problem(INVALID_PARAMETERS, str(exc)) from None
    change = FieldChange("key", None, {"role": created.role.value, "agencies": list(created.agencies)})
    await services.audit.record(Actor.of(key), "create", "apikey", created.id, [change])
    return CreatedKey(**KeyOut.of(created).model_dump(), secret=secret)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(services: ServicesDep, key: AdminKey, key_id: Annotated[str, Path(max_length=64)]) -> None:
    """Revoke a key for good (not the one making this request: another admin's key does that)."""
    if key_id == key.id:
        raise Problem(CONFLICT, "a key cannot revoke itself; revoke it with another admin key or secmon apikey revoke")
    if not await services.keys.revoke(key_id):
        raise Problem(NOT_FOUND, f"no API key {key_id}")
    await services.audit.record(Actor.of(key), "revoke", "apikey", key_id, [FieldChange("revoked", False, True)])
