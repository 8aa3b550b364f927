"""Who may call what: every role against every endpoint, and agencies never seeing each other."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import pytest

from secmon.api import create_app
from secmon.auth import Role
from tests.api.conftest import Api

ADMIN, ANALYST, AUTHOR, AGENCY = Role.ADMIN, Role.ANALYST, Role.RULE_AUTHOR, Role.AGENCY
ALL = frozenset(Role)
OPEN = "open"  # no key needed

# (method, path template) -> the roles that may call it; a route missing here fails the test below.
MATRIX: dict[tuple[str, str], frozenset[Role] | str] = {
    ("GET", "/healthz"): OPEN,
    ("GET", "/readyz"): OPEN,
    ("GET", "/metrics"): OPEN,
    ("GET", "/alerts"): frozenset({ADMIN, ANALYST, AUTHOR}),
    ("GET", "/alerts/stats"): frozenset({ADMIN, ANALYST, AUTHOR}),
    ("GET", "/alerts/{alert_id}"): frozenset({ADMIN, ANALYST, AUTHOR}),
    ("GET", "/alerts/{alert_id}/audit"): frozenset({ADMIN, ANALYST, AUTHOR}),
    ("PATCH", "/alerts/{alert_id}"): frozenset({ADMIN, ANALYST}),
    ("POST", "/alerts/bulk"): frozenset({ADMIN, ANALYST}),
    ("GET", "/events"): frozenset({ADMIN, ANALYST, AUTHOR}),
    ("GET", "/apikeys"): frozenset({ADMIN}),
    ("POST", "/apikeys"): frozenset({ADMIN}),
    ("DELETE", "/apikeys/{key_id}"): frozenset({ADMIN}),
    ("GET", "/notifications/channels"): frozenset({ADMIN, ANALYST}),
    ("GET", "/notifications/deliveries"): frozenset({ADMIN, ANALYST}),
    ("POST", "/notifications/channels/{name}/test"): frozenset({ADMIN}),
    ("GET", "/rules"): frozenset({ADMIN, ANALYST, AUTHOR}),
    ("GET", "/rules/{rule_id}"): frozenset({ADMIN, ANALYST, AUTHOR}),
    ("GET", "/rules/{rule_id}/audit"): frozenset({ADMIN, ANALYST, AUTHOR}),
    ("POST", "/rules"): frozenset({ADMIN, AUTHOR}),
    ("POST", "/rules/test"): frozenset({ADMIN, AUTHOR}),
    ("POST", "/rules/{rule_id}/test"): frozenset({ADMIN, AUTHOR}),
    ("PUT", "/rules/{rule_id}/enabled"): frozenset({ADMIN, AUTHOR}),
    ("DELETE", "/rules/{rule_id}"): frozenset({ADMIN, AUTHOR}),  # last of the rule routes: it deletes the rule
}
RULE = """\
title: Matrix probe {rule_id}
id: {rule_id}
status: test
level: low
logsource: {{product: linux, service: sshd}}
detection:
  selection: {{user.name: matrix-probe}}
  condition: selection
"""


def request_for(method: str, template: str, alert_id: str, rule_id: str) -> tuple[str, dict[str, Any]]:
    """A valid request to the route, so that only authorization decides the answer."""
    path = template.replace("{alert_id}", alert_id).replace("{rule_id}", rule_id)
    path = path.replace("{key_id}", "0000000000000000").replace("{name}", "ops")
    body: dict[str, Any] = {}
    if (method, template) == ("POST", "/rules"):
        body = {"json": {"yaml": RULE.format(rule_id=uuid.uuid4())}}
    elif template == "/rules/test":
        body = {"json": {"rule_id": rule_id, "events": [{"user": {"name": "matrix-probe"}}]}}
    elif template == "/rules/{rule_id}/enabled":
        body = {"json": {"enabled": False}}
    if (method, template) == ("PATCH", "/alerts/{alert_id}"):
        body = {"json": {"note": "checked"}}
    elif template == "/alerts/bulk":
        body = {"json": {"ids": [alert_id], "change": {"note": "checked"}}}
    elif (method, template) == ("POST", "/apikeys"):
        body = {"json": {"role": "analyst", "name": "made-by-matrix"}}
    return path, body


def test_every_route_is_in_the_matrix(api: Api) -> None:
    schema = create_app(api.services).openapi()
    routes = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    assert routes == set(MATRIX)


@pytest.mark.parametrize("role", [None, *Role])
async def test_role_against_every_endpoint(api: Api, role: Role | None) -> None:
    agency = f"agency-{secrets.token_hex(3)}"
    [alert_id] = await api.store_alerts(agency)
    rule_id = str(uuid.uuid4())
    async with api.client(await api.key(ADMIN)) as admin:
        assert (await admin.post("/rules", json={"yaml": RULE.format(rule_id=rule_id)})).status_code == 201
    secret = await api.key(role, [agency]) if role else None
    async with api.client(secret) as client:
        for (method, template), allowed in MATRIX.items():
            path, body = request_for(method, template, alert_id, rule_id)
            answer = await client.request(method, path, **body)
            where = f"{role} {method} {path}: {answer.status_code} {answer.text[:200]}"
            if allowed == OPEN or (role is not None and role in allowed):
                made_up = "{key_id}" in template or "{name}" in template  # no such key or channel: 404 on the merits
                assert answer.status_code < 400 or (answer.status_code == 404 and made_up), where
            elif role is None:
                assert answer.status_code == 401, where
            else:
                assert answer.status_code == 403, where
                assert answer.json()["detail"], where


async def test_agency_keys_read_their_alerts_only_where_configured(api: Api) -> None:
    from secmon.api import ApiServices
    from secmon.serving import AsgiServer

    mine, theirs = f"agency-{secrets.token_hex(3)}", f"agency-{secrets.token_hex(3)}"
    [own] = await api.store_alerts(mine)
    [other] = await api.store_alerts(theirs)
    secret = await api.key(AGENCY, [mine])
    settings = api.services.settings.model_copy(
        update={"api": api.services.settings.api.model_copy(update={"agency_reads_alerts": True})}
    )
    services = ApiServices.build(settings, api.services.client, api.services.keys)
    server = AsgiServer(create_app(services), "127.0.0.1:0", name="api-agency-reads")
    await server.start()
    try:
        async with api.client(secret) as client:
            client.base_url = server.url  # type: ignore[assignment]
            listed = (await client.get("/alerts")).json()["alerts"]
            assert [alert["id"] for alert in listed] == [own]
            assert (await client.get(f"/alerts/{other}")).status_code == 404
            assert (await client.patch(f"/alerts/{own}", json={"status": "acknowledged"})).status_code == 403
            assert (await client.get("/events")).status_code == 403
    finally:
        await server.stop()


async def test_an_agency_never_sees_another_agencys_data(api: Api) -> None:
    mine, theirs = f"agency-{secrets.token_hex(3)}", f"agency-{secrets.token_hex(3)}"
    their_host, their_user = f"host-{secrets.token_hex(3)}", f"user-{secrets.token_hex(3)}"
    [own] = await api.store_alerts(mine)
    [other] = await api.store_alerts(theirs, host=their_host, user=their_user)
    async with api.client(await api.key(ANALYST, [mine])) as client:
        answers = [
            await client.get("/alerts", params={"agency": theirs}),
            await client.get("/alerts", params={"host": their_host}),
            await client.get("/alerts", params={"q": their_host}),
            await client.get("/alerts", params={"q": f"organization.id:{theirs}"}),
            await client.get("/alerts", params={"user": their_user, "agency": [mine, theirs]}),
            await client.get(f"/alerts/{other}"),
            await client.get(f"/alerts/{other}/audit"),
            await client.patch(f"/alerts/{other}", json={"status": "acknowledged"}),
            await client.post("/alerts/bulk", json={"ids": [other], "change": {"status": "acknowledged"}}),
            await client.get("/alerts/stats", params={"by": ["agency", "host", "rule"]}),
            await client.get("/events", params={"agency": theirs}),
            await client.get("/events", params={"q": their_host}),
            await client.get("/events", params={"host": their_host}),
        ]
        for answer in answers:
            assert answer.status_code in (200, 404), answer.text
            assert theirs not in answer.text and their_host not in answer.text, answer.text
        assert (await client.get(f"/alerts/{other}")).status_code == 404
        bulk = (await client.post("/alerts/bulk", json={"ids": [other], "change": {"note": "x"}})).json()
        assert bulk["results"][0]["status"] == 404
        assert [a["id"] for a in (await client.get("/alerts")).json()["alerts"]] == [own]
    async with api.client(await api.key(ADMIN)) as admin:
        assert (await admin.get(f"/alerts/{other}")).json()["status"] == "open"  # untouched
