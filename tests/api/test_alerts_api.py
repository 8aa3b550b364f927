"""The alert endpoints against a real Elasticsearch: list, filters, cursor, detail, triage, bulk, stats."""

from __future__ import annotations

import secrets

from secmon.auth import Role
from tests.api.conftest import Api


def agency() -> str:
    return f"agency-{secrets.token_hex(3)}"


async def test_list_filters_and_detail_with_events(api: Api) -> None:
    mine = agency()
    ids = await api.store_alerts(mine, 3, host="db-7", user="bob")
    async with api.client(await api.key(Role.ANALYST, [mine])) as client:
        answer = await client.get("/alerts", params={"host": "db-7", "level": "high"})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert sorted(alert["id"] for alert in page["alerts"]) == sorted(ids)
        assert page["total"] == 3 and page["total_is_exact"]
        first = page["alerts"][0]
        assert first["rule"]["title"] == "Suspicious whoami"
        assert first["techniques"] == ["T1033"]
        assert first["agency"] == mine and first["status"] == "open"

        assert (await client.get("/alerts", params={"host": "db-7", "level": "low"})).json()["alerts"] == []
        assert len((await client.get("/alerts", params={"technique": "t1033", "user": "bob"})).json()["alerts"]) == 3

        detail = (await client.get(f"/alerts/{ids[0]}")).json()
        assert [event["id"] for event in detail["events"]] == detail["document"]["event"]["ids"]
        assert detail["events"][0]["host"]["name"] == "db-7"


async def test_cursor_pages_through_every_alert_once(api: Api) -> None:
    mine = agency()
    ids = await api.store_alerts(mine, 7)
    seen: list[str] = []
    async with api.client(await api.key(Role.ANALYST, [mine])) as client:
        cursor = None
        while True:
            params = {"size": 3, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/alerts", params=params)).json()
            seen += [alert["id"] for alert in page["alerts"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
        bad = await client.get("/alerts", params={"cursor": "not-a-cursor"})
        assert bad.status_code == 400
        assert bad.headers["content-type"] == "application/problem+json"
        assert "cursor" in bad.json()["detail"]


async def test_triage_workflow_and_audit_trail(api: Api) -> None:
    mine = agency()
    [alert_id] = await api.store_alerts(mine)
    async with api.client(await api.key(Role.ANALYST, [mine], name="carol")) as client:
        closing_without_resolution = await client.patch(f"/alerts/{alert_id}", json={"status": "closed"})
        assert closing_without_resolution.status_code == 409
        assert "resolution" in closing_without_resolution.json()["detail"]

        acked = await client.patch(
            f"/alerts/{alert_id}", json={"status": "acknowledged", "assignee": "carol", "add_tags": ["phishing"]}
        )
        assert acked.status_code == 200, acked.text
        assert acked.json()["status"] == "acknowledged" and acked.json()["tags"] == ["phishing"]

        noted = await client.patch(f"/alerts/{alert_id}", json={"note": "Admin ran whoami during maintenance."})
        closed = await client.patch(f"/alerts/{alert_id}", json={"status": "closed", "resolution": "benign"})
        assert noted.status_code == closed.status_code == 200
        assert closed.json()["resolution"] == "benign"
        assert [note["text"] for note in closed.json()["notes"]] == ["Admin ran whoami during maintenance."]

        assert (await client.patch(f"/alerts/{alert_id}", json={"status": "acknowledged"})).status_code == 409
        trail = (await client.get(f"/alerts/{alert_id}/audit")).json()
        assert [entry["actor"]["name"] for entry in trail] == ["carol"] * 3
        changes = [(c["field"], c["from"], c["to"]) for entry in trail for c in entry["changes"]]
        assert ("status", "open", "acknowledged") in changes
        assert ("status", "acknowledged", "closed") in changes
        assert ("resolution", None, "benign") in changes

        reopened = (await client.patch(f"/alerts/{alert_id}", json={"status": "open"})).json()
        assert reopened["status"] == "open" and reopened["resolution"] is None
        closed_list = await client.get("/alerts", params={"status": "closed", "agency": mine})
        assert closed_list.json()["alerts"] == []


async def test_bulk_triage_reports_each_alert(api: Api) -> None:
    mine, other = agency(), agency()
    ids = await api.store_alerts(mine, 3)
    [foreign] = await api.store_alerts(other)
    async with api.client(await api.key(Role.ANALYST, [mine])) as client:
        answer = await client.post(
            "/alerts/bulk",
            json={
                "ids": [*ids, foreign, "no-such-alert"],
                "change": {"status": "closed", "resolution": "false_positive"},
            },
        )
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["updated"] == 3 and result["failed"] == 2
        statuses = {outcome["id"]: outcome["status"] for outcome in result["results"]}
        assert statuses == {**dict.fromkeys(ids, 200), foreign: 404, "no-such-alert": 404}
        closed = (await client.get("/alerts", params={"status": "closed", "resolution": "false_positive"})).json()
        assert sorted(alert["id"] for alert in closed["alerts"]) == sorted(ids)
    async with api.client(await api.key(Role.ADMIN)) as admin:
        untouched = (await admin.get(f"/alerts/{foreign}")).json()
        assert untouched["status"] == "open"


async def test_stats_count_by_level_agency_and_time(api: Api) -> None:
    first, second = agency(), agency()
    await api.store_alerts(first, 2)
    await api.store_alerts(second, 1)
    async with api.client(await api.key(Role.ANALYST, [first, second])) as client:
        stats = (await client.get("/alerts/stats", params={"by": ["agency", "level"], "interval": "1h"})).json()
        assert stats["total"] == 3
        assert {b["key"]: b["count"] for b in stats["by"]["agency"]} == {first: 2, second: 1}
        assert stats["by"]["level"] == [{"key": "high", "count": 3}]
        assert sum(bucket["count"] for bucket in stats["timeline"]) == 3


async def test_errors_are_problem_details(api: Api) -> None:
    async with api.client(None) as anonymous:
        missing = await anonymous.get("/alerts")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "apikey create" in missing.json()["detail"]
    async with api.client("secmon_0000000000000000_" + "x" * 43) as wrong:
        assert (await wrong.get("/alerts")).status_code == 401
    async with api.client(await api.key(Role.ANALYST)) as client:
        invalid = await client.get("/alerts", params={"status": "pending", "size": 0})
        assert invalid.status_code == 422
        assert {error["where"] for error in invalid.json()["errors"]} == {"query.status.0", "query.size"}
        huge = await client.patch("/alerts/x", content=b"{" + b" " * (2 << 20) + b"}")
        assert huge.status_code == 413
        assert (await client.get("/alerts/no-such-alert")).status_code == 404
        assert (await client.get("/nowhere")).json()["status"] == 404
        reversed_range = await client.get(
            "/alerts", params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
        )
        assert reversed_range.status_code == 400


async def test_health_readiness_and_metrics(api: Api) -> None:
    async with api.client(None) as client:
        assert (await client.get("/healthz")).json()["status"] == "ok"
        ready = (await client.get("/readyz")).json()
        assert ready["status"] == "ready"
        await client.get("/alerts")
        metrics = (await client.get("/metrics")).text
        assert 'secmon_api_request_seconds_count{method="GET",route="/alerts",status="401"}' in metrics
