"""The dashboard, the events search and the rules pages in a real browser over ``secmon up --demo``.

What the pages show is checked against sources outside secmon where one exists: the bundled
OpenSSH log read line by line, the shipped rule's own YAML tags, PyYAML's own error position,
and the syslog lines the test itself sends. Agency isolation is checked on every page.
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import yaml
from playwright.async_api import Browser, Page

from secmon.auth import Role
from secmon.demo import DATA_DIR
from tests.console.conftest import HEALTH_ATTACKER, DemoService, signed_in
from tests.support.wait import until

SSH_LOG = DATA_DIR / "loghub_OpenSSH_2k.log"
RULES = Path(__file__).parents[2] / "rules"
# The shipped rules as their YAML says, read without secmon.
BRUTE_FORCE = yaml.safe_load((RULES / "correlations" / "mr_ssh_brute_force.yml").read_text())
FAILED_LOGIN = yaml.safe_load((RULES / "linux" / "ssh_failed_login.yml").read_text())
FAILED_FROM = re.compile(r"Failed password for (?:invalid user )?\S+ from (\S+) port")
PROBE_IP = "203.0.113.77"  # the rule test's own recent failures


def failures_per_address() -> Counter[str]:
    """'Failed password' lines per source address in the demo's OpenSSH log, read without secmon."""
    found = (FAILED_FROM.search(line) for line in SSH_LOG.read_text().splitlines())
    return Counter(match.group(1) for match in found if match)


async def text_of(page: Page, selector: str) -> str:
    return (await page.inner_text(selector)).strip()


async def test_the_dashboard_counts_the_demo_and_its_matrix_follows_the_rules_tags(
    demo_service: DemoService, browser: Browser
) -> None:
    secret = await demo_service.key(Role.ANALYST, name="jo.demo", agencies=("demo",))
    context, page = await signed_in(browser, demo_service.url, secret)
    try:
        await page.goto(f"{demo_service.url}/?status=open&status=acknowledged&status=closed")
        queue_total = int(re.sub(r"\D", "", await text_of(page, ".counts .total")))
        await page.goto(f"{demo_service.url}/console/dashboard")
        assert int((await text_of(page, "#total-alerts")).replace(",", "")) == queue_total > 0
        assert await page.locator("svg.chart rect").count() > 0  # the chart is drawn
        agencies = await page.eval_on_selector_all(
            "#h-agency ~ table td:first-child", "cells => cells.map(c => c.innerText)"
        )
        assert agencies == ["demo"]

        # The matrix: SSH Brute Force's tags (read from its YAML) put its alerts in one cell.
        tags = BRUTE_FORCE["tags"]
        tactic = next(tag for tag in tags if not re.search(r"\d", tag))  # attack.credential_access
        technique = next(tag for tag in tags if re.search(r"\d", tag)).removeprefix("attack.").upper()
        rules = await page.eval_on_selector_all(
            "#h-rule ~ table tr", "rows => rows.map(r => [r.cells[0].innerText, r.cells[2].innerText])"
        )
        brute_force = int(dict(rules)["SSH Brute Force"])
        column = tactic.removeprefix("attack.").replace("_", " ").title().replace("And", "and")
        headers = await page.eval_on_selector_all(".matrix thead th", "cells => cells.map(c => c.innerText)")
        cell = page.locator(f".matrix tbody td:nth-child({headers.index(column) + 1}) a.cell", has_text=technique)
        assert (await cell.inner_text()).split() == [technique, str(brute_force)]
        await cell.click()
        query = parse_qs(urlsplit(page.url).query)
        assert query["technique"] == [technique] and query["tag"] == [tactic]
        assert int(re.sub(r"\D", "", await text_of(page, ".counts .total"))) == brute_force
    finally:
        await context.close()


async def test_the_events_search_finds_what_the_log_holds_and_keeps_its_columns_in_the_url(
    demo_service: DemoService, browser: Browser
) -> None:
    address, failures = failures_per_address().most_common(1)[0]
    secret = await demo_service.key(Role.ANALYST, name="kim.demo", agencies=("demo",))
    context, page = await signed_in(browser, demo_service.url, secret)
    try:
        await page.goto(f"{demo_service.url}/console/events?q=%22Failed%20password%22&source_ip={address}")
        assert int((await text_of(page, "#event-total")).replace(",", "")) == failures
        assert await page.locator("#events tbody.event").count() == min(failures, 50)
        assert await page.locator("svg.chart rect").count() > 0

        # Open the first event's document and add user.name as a column from it.
        first = page.locator("#events tbody.event").first
        await first.locator("summary").click()
        await first.locator('a.add[aria-label="Add log.syslog.hostname as a column"]').click()
        assert "log.syslog.hostname" in parse_qs(urlsplit(page.url).query)["columns"][0].split(",")
        headers = await page.eval_on_selector_all("#events thead th", "cells => cells.map(c => c.innerText)")
        assert any(header.startswith("log.syslog.hostname") for header in headers)
        await page.reload()  # the view is the URL: it survives a reload, and can be shared
        headers_again = await page.eval_on_selector_all("#events thead th", "cells => cells.map(c => c.innerText)")
        assert headers_again == headers
    finally:
        await context.close()


async def test_an_analyst_of_another_agency_sees_no_demo_count_and_no_demo_event(
    demo_service: DemoService, browser: Browser
) -> None:
    address = failures_per_address().most_common(1)[0][0]
    secret = await demo_service.key(Role.ANALYST, name="lee.health", agencies=("health",))
    context, page = await signed_in(browser, demo_service.url, secret)
    try:

        async def health_dashboard() -> list[str]:
            await page.goto(f"{demo_service.url}/console/dashboard")
            cells: list[str] = await page.eval_on_selector_all(
                "#h-agency ~ table td:first-child", "cells => cells.map(c => c.innerText)"
            )
            return cells

        assert await until(health_dashboard, "agency health's alerts on its dashboard", timeout=90) == ["health"]
        await page.goto(f"{demo_service.url}/?status=open&status=acknowledged&status=closed")
        health_total = int(re.sub(r"\D", "", await text_of(page, ".counts .total")))
        await page.goto(f"{demo_service.url}/console/dashboard")
        assert int((await text_of(page, "#total-alerts")).replace(",", "")) == health_total
        assert "demo" not in await text_of(page, "main")

        await page.goto(f"{demo_service.url}/console/events?source_ip={address}")
        assert await text_of(page, "#event-total") == "0"
        await page.goto(f"{demo_service.url}/console/events?agency=demo")
        assert await text_of(page, "#event-total") == "0"
        await page.goto(f"{demo_service.url}/console/events?source_ip={HEALTH_ATTACKER}")
        assert int(await text_of(page, "#event-total")) >= 10  # its own events are there
    finally:
        await context.close()


async def test_a_rule_author_sees_yaml_errors_at_their_line_tests_a_rule_on_recent_events_then_uploads_and_disables_it(
    demo_service: DemoService, browser: Browser
) -> None:
    now = datetime.now(UTC)
    with socket.create_connection(("127.0.0.1", demo_service.syslog_port)) as sender:
        sender.sendall(
            "".join(
                f"<38>{now:%b} {now.day:2d} {now:%H:%M:%S} clinic3 sshd[{51200 + n}]: Failed password for "
                f"nurse{n} from {PROBE_IP} port {52100 + n} ssh2\n"
                for n in range(3)
            ).encode()
        )
    secret = await demo_service.key(Role.RULE_AUTHOR, name="max.author")
    context, page = await signed_in(browser, demo_service.url, secret)
    try:
        await page.goto(f"{demo_service.url}/console/rules")
        listed = await page.eval_on_selector_all("#rules tbody tr[data-id]", "rows => rows.map(r => r.dataset.id)")
        assert {BRUTE_FORCE["id"], FAILED_LOGIN["id"]} <= set(listed)

        broken = RULE.replace("    service: sshd", "  service: sshd")  # one line indented wrongly
        try:
            yaml.safe_load(broken)
        except yaml.MarkedYAMLError as exc:
            assert exc.problem_mark is not None
            wrong_line = exc.problem_mark.line + 1  # where PyYAML itself says the text goes wrong
        await page.click(".upload summary")
        await page.fill("#rule-yaml", broken)
        await page.click("#upload-rule")
        refused = page.locator("#refused")
        assert f"line {wrong_line}:" in await refused.inner_text()
        assert await refused.locator(f"li#line-{wrong_line}.has-problem").count() == 1

        async def probe_matches() -> int | None:
            await page.goto(f"{demo_service.url}/console/rules")
            await page.click(".upload summary")
            await page.fill("#rule-yaml", RULE)
            await page.click("#test-draft")
            matched = int(await text_of(page, "#test-matched"))
            return matched if matched == 3 else None

        assert await until(probe_matches, "the rule test to match the three failures just sent", timeout=60) == 3
        assert (await page.inner_text("#test-result")).count(PROBE_IP) == 3

        await page.click("#upload-rule")
        await page.wait_for_url(f"**/console/rules/{RULE_ID}?notice=*")
        assert await text_of(page, "#rule-state") == "running"
        await page.click("#toggle-rule")
        await page.wait_for_selector("text=is disabled")
        assert await text_of(page, "#rule-state") == "disabled"
        trail = await text_of(page, "#rule-audit")
        assert "max.author upload" in trail and "max.author disable" in trail and "enabled: True → False" in trail
        await page.click("#test-rule")  # a disabled rule can still be tried on what is stored
        assert await text_of(page, "#test-matched") == "3"
        async with httpx.AsyncClient(base_url=demo_service.url) as api:
            answer = await api.get(f"/rules/{RULE_ID}", headers={"Authorization": f"Bearer {secret}"})
        assert answer.json()["enabled"] is False
    finally:
        await context.close()


RULE_ID = "7a3f0c1e-52d4-4b8e-9a61-0c5d2e8f4b17"
RULE = f"""title: Failed SSH Password From The Probe Address
id: {RULE_ID}
status: test
description: The console test's own rule.
logsource:
    product: linux
    service: sshd
detection:
    selection:
        source.ip: {PROBE_IP}
        event.outcome: failure
    condition: selection
level: low
"""


async def test_every_page_fits_a_phone_and_labels_every_control(demo_service: DemoService, browser: Browser) -> None:
    secret = await demo_service.key(Role.ADMIN, name="ned.admin")
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = await context.new_page()
        await page.goto(f"{demo_service.url}/")
        await page.fill("#api_key", secret)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#queue")
        alert_id = await page.get_attribute("#queue tbody tr[data-id]", "data-id")
        for path in (
            "/",
            f"/console/alerts/{alert_id}",
            "/console/dashboard",
            "/console/events",
            "/console/rules",
            f"/console/rules/{BRUTE_FORCE['id']}",
        ):
            await page.goto(f"{demo_service.url}{path}")
            # Nothing wider than the screen: wide tables scroll inside themselves, the page does not.
            assert await page.evaluate("() => document.documentElement.scrollWidth") <= 390, path
            unlabelled = await page.eval_on_selector_all(
                "input:not([type=hidden]), select, textarea",
                """controls => controls.filter(c => !(c.closest('label') || c.getAttribute('aria-label')
                    || (c.id && document.querySelector(`label[for="${c.id}"]`)))).map(c => c.outerHTML)""",
            )
            assert unlabelled == [], path
    finally:
        await context.close()
