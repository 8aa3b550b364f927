"""schemathesis against /openapi.json: generated requests to every operation find no server error.

The schemathesis CLI runs in a subprocess against the API served in this test's event loop, with
an admin key, so that every operation is reached past its authorization.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path

from secmon.auth import Role
from tests.api.conftest import Api

SHIPPED_RULE_ID = "ce69d572-59aa-4839-ae0f-20366e0fa924"  # rules/linux/ssh_failed_login.yml


async def test_generated_requests_find_no_server_error(api: Api, tmp_path: Path) -> None:
    secret = await api.key(Role.ADMIN, name="schemathesis")
    # Real ids for the path parameters, so that generated requests reach past the 404s.
    [alert_id] = await api.store_alerts(f"agency-{secrets.token_hex(3)}")
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\nalert_id = "{alert_id}"\nrule_id = "{SHIPPED_RULE_ID}"\n')
    schemathesis = Path(sys.executable).with_name("schemathesis")
    process = await asyncio.create_subprocess_exec(
        str(schemathesis),
        "--config-file",
        str(config),
        "run",
        f"{api.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {secret}",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "30",
        "--seed",
        "20261124",
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
        cwd=tmp_path,  # schemathesis keeps its state in ./.schemathesis
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    assert "No issues found" in text or "passed" in text, text[-3000:]
