"""Authentication and authorization as dependencies: a route names who may call it in its signature.

Every route but the health, readiness and metrics ones takes one of the ``*Key`` types below;
the key's :attr:`~secmon.auth.ApiKey.scope` then filters every query it makes. Keys come in an
``Authorization`` header: ``Bearer <secret>`` (also ``ApiKey <secret>``). OIDC bearer tokens
would be one more verifier in :func:`caller`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from secmon.api.services import ApiServices
from secmon.auth import ApiKey, Role, presented_secret
from secmon.serving.problems import FORBIDDEN, UNAUTHORIZED, Problem

_bearer = HTTPBearer(auto_error=False, description="A secmon API key: secmon apikey create --role ROLE")


# Dependencies are ``async`` even without I/O: FastAPI runs plain functions in a thread pool,
# a hand-off per request that costs more than the function itself.
async def get_services(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


ServicesDep = Annotated[ApiServices, Depends(get_services)]


async def caller(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The API key of the request; 401 without a valid one."""
    header = request.headers.get("authorization")
    secret = presented_secret(header) if header else None
    if secret is None:
        raise Problem(
            UNAUTHORIZED,
            "send an API key: Authorization: Bearer <key> (create one with secmon apikey create)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = await services.keys.verify(secret)
    if key is None:
        raise Problem(UNAUTHORIZED, "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"})
    request.state.key = key  # for the access log and rate limits
    return key


CallerDep = Annotated[ApiKey, Depends(caller)]


def role_in(*roles: Role, what: str) -> Callable[..., Coroutine[Any, Any, ApiKey]]:
    """A dependency admitting keys of ``roles``; ``what`` names the action for the 403 answer."""

    async def check(key: CallerDep) -> ApiKey:
        if key.role not in roles:
            allowed = ", ".join(role.value for role in roles)
            raise Problem(FORBIDDEN, f"a key of role {key.role.value} may not {what}; roles allowed: {allowed}")
        return key

    return check


async def alert_reader(key: CallerDep, services: ServicesDep) -> ApiKey:
    """Keys that read alerts: admins, analysts, rule authors, and agencies where configured."""
    check_alert_reader(key, services)
    return key


def check_alert_reader(key: ApiKey, services: ApiServices) -> None:
    """403 unless ``key`` reads alerts: agency keys do only where ``api.agency_reads_alerts`` is on."""
    if key.role is Role.AGENCY and not services.settings.api.agency_reads_alerts:
        raise Problem(FORBIDDEN, "agency keys read alerts only where api.agency_reads_alerts is on")


AlertReaderKey = Annotated[ApiKey, Depends(alert_reader)]
TriageKey = Annotated[ApiKey, Depends(role_in(Role.ADMIN, Role.ANALYST, what="triage alerts"))]
EventReaderKey = Annotated[ApiKey, Depends(role_in(Role.ADMIN, Role.ANALYST, Role.RULE_AUTHOR, what="search events"))]
RuleReaderKey = Annotated[ApiKey, Depends(role_in(Role.ADMIN, Role.ANALYST, Role.RULE_AUTHOR, what="read rules"))]
RuleAuthorKey = Annotated[ApiKey, Depends(role_in(Role.ADMIN, Role.RULE_AUTHOR, what="change or test rules"))]
AnalystKey = Annotated[ApiKey, Depends(role_in(Role.ADMIN, Role.ANALYST, what="read notifications"))]
AdminKey = Annotated[ApiKey, Depends(role_in(Role.ADMIN, what="manage keys and notification channels"))]
