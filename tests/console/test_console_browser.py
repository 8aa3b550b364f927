"""The console in a real browser over the real service: ``secmon up --demo`` and Debian's Chromium.

An analyst signs in with a key, finds the demo's SSH brute force in the queue, reads its ten
sshd events (checked against the bundled log itself, not against secmon), acknowledges and then
closes it as a false positive with a note; the audit trail shows both steps under the key's name,
and the open queue no longer lists it. An analyst of another agency sees none of it. The session
cookie's flags, the CSRF refusal, sign-out, the keyboard and the "N new" marker are checked too.
"""

from __future__ import annotations

import os
import re
import socket
import struct
from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import Browser, Page

from secmon.auth import Role
from secmon.demo import DATA_DIR
from tests.console.conftest import HEALTH_ATTACKER, DemoService, signed_in
from tests.support.wait import until

SSH_LOG = DATA_DIR / "loghub_OpenSSH_2k.log"
SCREENSHOTS = os.environ.get("SECMON_SCREENSHOTS")  # ./run screenshots: docs/screenshots


async def queue_rows(page: Page) -> list[dict[str, str]]:
    """The queue's rows as the analyst reads them: id, level, rule, status, agency, about, count."""
    rows: list[dict[str, str]] = await page.eval_on_selector_all(
        "#queue tbody tr[data-id]",
        """rows => rows.map(row => {
            const cell = (n) => row.querySelectorAll('td')[n].innerText.trim();
            return {id: row.dataset.id, level: cell(1), rule: row.querySelector('td:nth-child(3) a').innerText.trim(),
                    status: cell(3), assignee: cell(4), agency: cell(5), about: cell(8), count: cell(9)};
        })""",
    )
    return rows


async def brute_force_of_ten(page: Page) -> dict[str, str]:
    """An open SSH Brute Force alert of the demo grouping ten failures (the shipped rule fires at ten)."""
    await page.goto(page.url.split("?")[0] + "?status=open&q=%22SSH%20Brute%20Force%22")
    rows = [row for row in await queue_rows(page) if row["rule"] == "SSH Brute Force" and row["count"] == "10"]
    assert rows, await queue_rows(page)
    return rows[0]


async def test_an_analyst_triages_the_demo_brute_force_from_queue_to_closed(
    demo_service: DemoService, browser: Browser
) -> None:
    secret = await demo_service.key(Role.ANALYST, name="dana.demo", agencies=("demo",))
    context, page = await signed_in(browser, demo_service.url, secret)
    try:
        alert = await brute_force_of_ten(page)
        assert alert["agency"] == "demo" and alert["level"] == "medium" and alert["status"] == "open"
        attacker = alert["about"].removeprefix("source.ip=")

        await page.click(f'#queue tr[data-id="{alert["id"]}"] td:nth-child(3) a')
        await page.wait_for_selector("#events-title")
        # textContent: a folded <details> renders no text.
        originals = await page.eval_on_selector_all("details.event pre", "pres => pres.map(p => p.textContent)")
        assert len(originals) == 10, originals
        shipped = SSH_LOG.read_text().splitlines()
        for original in originals:  # the very lines of the bundled log, sshd's failures from the attacker
            assert original in shipped, original
            assert "sshd[" in original and attacker in original

        await page.click("#acknowledge")
        await page.wait_for_selector("text=1 alert updated")
        assert (await page.inner_text("#alert-status")).startswith("acknowledged")
        await page.select_option("#resolution", "false_positive")
        await page.fill("#note", "Our own vulnerability scanner, see ticket 4711.")
        await page.click("#close")
        await page.wait_for_selector("text=1 alert updated")
        assert await page.inner_text("#alert-status") == "closed · false positive"
        assert "Our own vulnerability scanner, see ticket 4711." in await page.inner_text("section.notes")

        trail = await page.eval_on_selector_all(
            "#audit tbody tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText.trim()))"
        )
        assert [(who, action) for _, who, action, _ in trail] == [("dana.demo", "triage"), ("dana.demo", "triage")]
        assert "status: open → acknowledged" in trail[0][3]
        assert "status: acknowledged → closed" in trail[1][3]
        assert "resolution: — → false_positive" in trail[1][3]

        await page.goto(f"{demo_service.url}/?status=open")
        open_ids = {row["id"] for row in await queue_rows(page)}
        assert open_ids and alert["id"] not in open_ids
        await page.goto(f"{demo_service.url}/?status=closed")
        assert alert["id"] in {row["id"] for row in await queue_rows(page)}
    finally:
        await context.close()


async def test_the_session_is_an_httponly_strict_cookie_and_changes_need_the_csrf_token(
    demo_service: DemoService, browser: Browser
) -> None:
    secret = await demo_service.key(Role.ANALYST, name="erin.demo", agencies=("demo",))
    context, page = await signed_in(browser, demo_service.url, secret)
    try:
        [cookie] = [c for c in await context.cookies() if c["name"] == "secmon_session"]
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
        assert cookie["secure"] is False  # served over plain HTTP here; Secure when over TLS
        lifetime = cookie["expires"] - datetime.now(UTC).timestamp()
        assert 7.5 * 3600 < lifetime <= 8 * 3600  # api.session_hours: 8
        # Nothing of the key or the session is readable by the page's scripts.
        storage = await page.evaluate("() => document.cookie + JSON.stringify({...localStorage, ...sessionStorage})")
        assert secret not in storage and cookie["value"] not in storage and "secmon_session" not in storage

        alert = (await queue_rows(page))[0]
        answers = await page.evaluate(
            """async (id) => {
                const post = async (token) => {
                    const form = new FormData();
                    form.append('id', id); form.append('action', 'assign_me'); form.append('back', '/');
                    if (token !== null) form.append('csrf', token);
                    const init = {method: 'POST', body: form, redirect: 'manual'};
                    const answer = await fetch('/console/alerts/triage', init);
                    return answer.status;
                };
                return [await post(null), await post('forged')];
            }""",
            alert["id"],
        )
        assert answers == [403, 403]
        await page.reload()
        [after] = [row for row in await queue_rows(page) if row["id"] == alert["id"]]
        assert after["assignee"] == alert["assignee"]  # refused, so unchanged

        await page.click("text=Sign out")
        await page.wait_for_selector("#api_key")
        # The cookie the browser had is dead on the server, not only forgotten by the browser.
        answer = await context.request.get(
            f"{demo_service.url}/", headers={"Cookie": f"secmon_session={cookie['value']}"}, max_redirects=0
        )
        assert answer.status == 303 and answer.headers["location"].startswith("/console/login")
    finally:
        await context.close()


async def test_an_analyst_of_another_agency_sees_nothing_of_the_demo(
    demo_service: DemoService, browser: Browser
) -> None:
    demo_key = await demo_service.key(Role.ANALYST, name="fay.demo", agencies=("demo",))
    health_key = await demo_service.key(Role.ANALYST, name="gus.health", agencies=("health",))
    context, page = await signed_in(browser, demo_service.url, demo_key)
    demo_alert = (await queue_rows(page))[0]
    await context.close()

    context, page = await signed_in(browser, demo_service.url, health_key)
    try:

        async def health_rows() -> list[dict[str, str]]:
            await page.goto(f"{demo_service.url}/")
            return await queue_rows(page)

        rows = await until(health_rows, "agency health's own brute force alert in its analyst's queue", timeout=90)
        assert {row["agency"] for row in rows} == {"health"}
        assert any(row["about"] == f"source.ip={HEALTH_ATTACKER}" for row in rows)
        counts = await page.inner_text(".counts")
        assert f"{len(rows)} alert" in counts

        answer = await page.goto(f"{demo_service.url}/console/alerts/{demo_alert['id']}")
        assert answer is not None and answer.status == 404
        assert f"no alert {demo_alert['id']}" in await page.inner_text("main")
    finally:
        await context.close()


async def test_the_queue_answers_the_keyboard_and_marks_new_alerts_without_a_reload(
    demo_service: DemoService, browser: Browser
) -> None:
    secret = await demo_service.key(Role.ANALYST, name="hal.health", agencies=("health",))
    context, page = await signed_in(browser, demo_service.url, secret)
    try:
        rows = await until(lambda: queue_rows(page), "agency health's alerts", timeout=90)
        await page.evaluate("() => document.activeElement && document.activeElement.blur()")
        await page.keyboard.press("j")
        assert await page.get_attribute("#queue tbody tr.focused", "data-id") == rows[0]["id"]
        await page.keyboard.press("a")
        await page.wait_for_selector("text=1 alert updated")
        [first] = [row for row in await queue_rows(page) if row["id"] == rows[0]["id"]]
        assert first["status"] == "acknowledged"

        # A new brute force of agency health while the page is open: the marker appears, the page stays.
        marker = page.locator("#new-alerts")
        assert await marker.is_hidden()
        rendered = await page.evaluate("() => performance.timeOrigin")
        with socket.create_connection(("127.0.0.1", demo_service.syslog_port)) as sender:
            sender.sendall(
                "".join(
                    f"<38>Dec 10 08:20:{10 + n:02d} clinic2 sshd[{41200 + n}]: Failed password for root "
                    f"from 198.51.100.99 port {50100 + n} ssh2\n"
                    for n in range(10)
                ).encode()
            )
        await marker.wait_for(state="visible", timeout=60_000)
        assert re.fullmatch(r"\d+\+? new", await marker.inner_text())
        assert await page.evaluate("() => performance.timeOrigin") == rendered  # no reload happened
        await page.keyboard.press("k")  # still on the first row
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"**/console/alerts/{rows[0]['id']}")
    finally:
        await context.close()


async def test_screenshots_of_the_queue_the_detail_the_dashboard_events_and_rules(
    demo_service: DemoService, browser: Browser, tmp_path: Path
) -> None:
    """The README's pictures; ``./run screenshots`` writes them to docs/screenshots."""
    out = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    secret = await demo_service.key(Role.ANALYST, name="ivy.demo", agencies=("demo",))
    context, page = await signed_in(browser, demo_service.url, secret)
    try:
        shots = {"queue.png": f"{demo_service.url}/?level=medium&level=high&level=critical"}
        await page.goto(shots["queue.png"])
        alert = (await queue_rows(page))[0]
        shots["alert.png"] = f"{demo_service.url}/console/alerts/{alert['id']}"
        shots["dashboard.png"] = f"{demo_service.url}/console/dashboard"
        shots["events.png"] = f"{demo_service.url}/console/events?q=%22Failed%20password%22"
        shots["rules.png"] = f"{demo_service.url}/console/rules"
        for name, url in shots.items():
            await page.goto(url)
            await page.wait_for_load_state("networkidle")
            await page.screenshot(path=str(out / name))
            assert _png_size(out / name) == (1280, 800)
    finally:
        await context.close()


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", header[16:24])
    return width, height
