"""The whole story through the real service: an agency's events arrive over HTTP, detection raises
an alert, the channel is notified, an analyst acknowledges the alert and closes it as a false
positive, and the audit trail shows both steps under the analyst's key name."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.types import Receive, Scope, Send

from secmon.auth import Role
from secmon.config import ElasticsearchSettings, Settings
from secmon.notify import verify_signature
from secmon.service import running_service
from secmon.serving import AsgiServer
from tests.support.wait import until

# Ten failed logins from one address within a minute: the shipped SSH brute force correlation.
SSH_FAILURES = [
    f"Dec 10 06:55:{10 + n:02d} LabSZ sshd[{24200 + n}]: Failed password for invalid user webmaster "
    f"from 173.234.31.186 port {38926 + n} ssh2"
    for n in range(10)
]
WEBHOOK_SECRET = "story-secret"


class Receiver:
    """A webhook endpoint standing in for the agency's ticketing system."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {name.decode(): value.decode() for name, value in scope["headers"]}
        self.requests.append((headers, body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_event_to_closed_false_positive_with_audit_trail(
    es_settings: ElasticsearchSettings, tmp_path: Path
) -> None:
    agency = f"agency-{secrets.token_hex(3)}"
    receiver = Receiver()
    hook = AsgiServer(receiver, "127.0.0.1:0", name="webhook-receiver")  # type: ignore[arg-type]
    await hook.start()
    settings = Settings.model_validate(
        {
            "elasticsearch": es_settings.model_dump(),
            "state_dir": tmp_path / "state",
            "metrics": {"address": None},
            "api": {"address": "127.0.0.1:0"},
            "sources": {"agencies": {"type": "http", "address": "127.0.0.1:0", "format": "json"}},
            "notifications": {
                "channels": [
                    {
                        "name": "agency-tickets",
                        "type": "webhook",
                        "url": f"{hook.url}/hooks/secmon",
                        "secret": WEBHOOK_SECRET,
                        "agency": agency,
                    }
                ]
            },
        }
    )
    try:
        async with running_service(settings) as running:
            assert running.api is not None
            keys = running.keys
            _, sender = await keys.create(Role.AGENCY, agencies=[agency], name="agency-syslog-forwarder")
            _, analyst = await keys.create(Role.ANALYST, agencies=[agency], name="dana.analyst")
            ingest_url = running.sources["agencies"].address
            assert ingest_url is not None
            async with httpx.AsyncClient(timeout=30) as http:
                sent = await http.post(
                    f"http://{ingest_url[0]}:{ingest_url[1]}/ingest/syslog",
                    content="\n".join(SSH_FAILURES),
                    headers={"Authorization": f"ApiKey {sender}"},
                )
                assert sent.json() == {"accepted": 10, "rejected": []}

            async with httpx.AsyncClient(
                base_url=running.api.url, headers={"Authorization": f"Bearer {analyst}"}, timeout=30
            ) as api:

                async def listed() -> list[dict[str, Any]]:
                    return list((await api.get("/alerts", params={"agency": agency})).json()["alerts"])

                [alert] = await until(listed, "the alert showing in the list")
                assert alert["rule"]["title"] == "SSH Brute Force" and alert["status"] == "open"
                assert alert["source_ip"] == "173.234.31.186" and alert["count"] == 10

                async def events() -> list[dict[str, Any]]:  # searchable within a second of the alert
                    return list((await api.get(f"/alerts/{alert['id']}")).json()["events"])

                triggering = await until(events, "the alert's events showing in its detail")
                assert [event["event"]["original"] for event in triggering] == SSH_FAILURES

                acknowledged = await api.patch(f"/alerts/{alert['id']}", json={"status": "acknowledged"})
                assert acknowledged.json()["status"] == "acknowledged"
                closed = await api.patch(
                    f"/alerts/{alert['id']}",
                    json={"status": "closed", "resolution": "false_positive", "note": "Known scanner, allow-listed."},
                )
                assert closed.json()["status"] == "closed" and closed.json()["resolution"] == "false_positive"

                trail = (await api.get(f"/alerts/{alert['id']}/audit")).json()
                steps = [
                    (entry["actor"]["name"], change["field"], change["from"], change["to"])
                    for entry in trail
                    for change in entry["changes"]
                    if change["field"] == "status"
                ]
                assert steps == [
                    ("dana.analyst", "status", "open", "acknowledged"),
                    ("dana.analyst", "status", "acknowledged", "closed"),
                ]

            await until(lambda: receiver.requests, "the webhook delivery")
            [(headers, body)] = receiver.requests
            assert orjson.loads(body)["alert"]["id"] == alert["id"]
            assert verify_signature(
                WEBHOOK_SECRET.encode(),
                headers["x-secmon-timestamp"],
                body,
                headers["x-secmon-signature"],
                now=float(headers["x-secmon-timestamp"]),
            )
    finally:
        await hook.stop()
