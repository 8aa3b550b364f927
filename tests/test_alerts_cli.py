"""``secmon alerts``: the real command, as a subprocess, against the running test API.

The subprocess is started with asyncio so that the API fixture, served in this test's event
loop, keeps answering while the command waits for it.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import sys
from pathlib import Path

import orjson

from secmon.collect.topology import Agency, SourceContext
from secmon.config import ElasticsearchSettings, Settings
from secmon.events import Record
from secmon.service import running_service
from secmon.store import cluster_url
from tests.api.conftest import Api, api  # noqa: F401 - the running API fixture lives with the API tests

SECRET_ENV = ("SECMON_API_KEY", "SECMON_API_URL")
WHOLE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")
ATTACKER = "198.51.100.77"
# Ten failed logins from one address within a minute: the shipped SSH brute force correlation.
SSH_FAILURES = [
    f"Dec 10 06:55:{10 + n:02d} LabSZ sshd[{24200 + n}]: Failed password for invalid user webmaster "
    f"from {ATTACKER} port {38926 + n} ssh2"
    for n in range(10)
]


async def secmon(*args: str, key: str | None, cwd: Path) -> tuple[int, str, str]:
    """Run ``python -m secmon`` with ``args``; its exit code, stdout and stderr."""
    env = {name: value for name, value in os.environ.items() if name not in SECRET_ENV}
    env["COLUMNS"] = "80"  # what a pipe gets: values must come out whole all the same
    if key is not None:
        env["SECMON_API_KEY"] = key
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "secmon",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def agency() -> str:
    return f"cli-{secrets.token_hex(3)}"


def piped_rows(out: str) -> list[dict[str, str]]:
    """A table printed into a pipe: a header line, then one tab-separated line per row, by column name."""
    header, *lines = out.splitlines()
    names = header.split("\t")
    rows = []
    for line in lines:
        cells = line.split("\t")
        assert len(cells) == len(names), line  # one row a line: nothing folded onto the next
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


def piped_facts(out: str) -> dict[str, str]:
    """The name and value lines (two tab-separated cells) of ``secmon alerts show`` printed into a pipe."""
    pairs = (line.split("\t") for line in out.splitlines())
    return {cells[0]: cells[1] for cells in pairs if len(cells) == 2}


async def test_ls_lists_and_filters(api: Api, tmp_path: Path) -> None:  # noqa: F811
    name = agency()
    web = await api.store_alerts(name, 3, host="web-1", user="alice")
    db = await api.store_alerts(name, 1, host="db-1", user="bob")
    key = await api.key("analyst", [name])

    code, out, err = await secmon("alerts", "ls", "--api", api.url, "--agency", name, key=key, cwd=tmp_path)
    assert code == 0, err
    assert all(alert_id in out for alert_id in web + db)
    assert "Suspicious whoami" in out
    assert "4 of 4 alerts" in err  # piped, the count goes to stderr: stdout has the rows alone

    code, out, err = await secmon(
        "alerts", "ls", "--api", api.url, "--agency", name, "--host", "db-1", "--json", key=key, cwd=tmp_path
    )
    assert code == 0, err
    listed = [orjson.loads(line) for line in out.splitlines()]
    assert [alert["id"] for alert in listed] == db
    assert listed[0]["user"] == "bob"

    code, out, err = await secmon(
        "alerts", "ls", "--api", api.url, "--agency", name, "--user", "alice", "--since", "1h", "--level", "high",
        "--status", "open", "--json", key=key, cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    assert sorted(orjson.loads(line)["id"] for line in out.splitlines()) == sorted(web)

    code, out, err = await secmon(
        "alerts", "ls", "--api", api.url, "--agency", name, "--limit", "2", key=key, cwd=tmp_path
    )
    assert code == 0, err
    assert "2 of 4 alerts" in err
    assert "--all" in err

    code, out, err = await secmon(
        "alerts", "ls", "--api", api.url, "--agency", name, "--limit", "1", "--all", "--json", key=key, cwd=tmp_path
    )
    assert code == 0, err
    assert len(out.splitlines()) == 4

    code, out, err = await secmon(
        "alerts", "ls", "--api", api.url, "--agency", name, "--since", "yesterday", key=key, cwd=tmp_path
    )
    assert code == 1
    assert "neither a duration" in err


async def test_ack_close_and_show(api: Api, tmp_path: Path) -> None:  # noqa: F811
    name = agency()
    first, second, third = await api.store_alerts(name, 3)
    key = await api.key("analyst", [name], name="analyst-carol")
    url = ("--api", api.url)

    code, out, err = await secmon(
        "alerts", "ack", first, *url, "--assignee", "carol", "--note", "Looking into it", key=key, cwd=tmp_path
    )
    assert code == 0, err
    assert first in out
    assert "acknowledged" in out

    code, out, err = await secmon("alerts", "show", first, *url, key=key, cwd=tmp_path)
    assert code == 0, err
    assert "Suspicious whoami" in out
    assert "T1033" in out  # the rule's technique
    assert "Looking into it" in out
    assert "carol" in out
    assert "audit trail" in out
    assert "analyst-carol" in out  # who changed it
    assert "open → acknowledged" in out
    assert "whoami.exe" in out  # the triggering event, summarised

    code, out, err = await secmon(
        "alerts", "close", first, second, *url, "--resolution", "true_positive", key=key, cwd=tmp_path
    )
    assert code == 0, err
    assert "2 updated, 0 failed" in out
    async with api.client(key) as client:
        for alert_id in (first, second):
            alert = (await client.get(f"/alerts/{alert_id}")).json()
            assert (alert["status"], alert["resolution"]) == ("closed", "true_positive")
        assert (await client.get(f"/alerts/{third}")).json()["status"] == "open"

    # One alert the workflow refuses (acknowledging a closed alert) and one that does not exist.
    code, out, err = await secmon("alerts", "ack", first, "no-such-alert", third, *url, key=key, cwd=tmp_path)
    assert code == 1, (out, err)
    assert "1 updated, 2 failed" in out
    assert "no-such-alert" in out

    code, out, err = await secmon("alerts", "close", third, *url, "--resolution", "maybe", key=key, cwd=tmp_path)
    assert code == 2  # refused by the command line itself
    assert "maybe" in err

    code, out, err = await secmon("alerts", "show", "no-such-alert", *url, key=key, cwd=tmp_path)
    assert code == 1
    assert "no-such-alert" in err or "not found" in err.lower()

    # Ids are URL-safe base64: one in 64 begins with "-", and must not be taken for an option.
    code, out, err = await secmon("alerts", "show", "-Xno-such-alert", *url, key=key, cwd=tmp_path)
    assert code == 1, err
    assert "-Xno-such-alert" in err or "not found" in err.lower()
    code, out, err = await secmon("alerts", "ack", "-Xa", "--assigne", "bob", *url, key=key, cwd=tmp_path)
    assert code == 2 and "--assigne" in err  # a mistyped option is still refused as one


async def test_bad_or_missing_key_says_what_to_do(api: Api, tmp_path: Path) -> None:  # noqa: F811
    for key in ("sm_not-a-real-key", None):
        code, out, err = await secmon("alerts", "ls", "--api", api.url, key=key, cwd=tmp_path)
        assert code == 1
        assert "SECMON_API_KEY" in err
        assert "secmon apikey create --role analyst" in err
        assert "Traceback" not in err
    code, out, err = await secmon("alerts", "ls", "--api", api.url, key="sm_not-a-real-key", cwd=tmp_path)
    assert "sm_not-a-real-key" not in out + err  # the key is never printed


async def test_rule_author_key_is_refused_with_a_hint(api: Api, tmp_path: Path) -> None:  # noqa: F811
    key = await api.key("rule_author")
    code, _, err = await secmon("alerts", "ack", "any-id", "--api", api.url, key=key, cwd=tmp_path)
    assert code == 1
    assert "--role analyst" in err


async def test_unreachable_api_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    code, _, err = await secmon("alerts", "ls", "--api", url, key="anything", cwd=tmp_path)
    assert code == 1
    assert "is `secmon up` running?" in err
    assert url in err

    # Without --api: SECMON_API_URL is unset, so the configuration's api.address is used.
    (tmp_path / "secmon.yml").write_text(f"api:\n  address: 0.0.0.0:{port}\n")
    code, _, err = await secmon("alerts", "ls", key="anything", cwd=tmp_path)
    assert code == 1
    assert f"http://127.0.0.1:{port}" in err


async def test_piped_tables_print_whole_values_one_row_a_line(
    api: Api,  # noqa: F811
    es_settings: ElasticsearchSettings,
    tmp_path: Path,
) -> None:
    name = agency()
    host, user = "frontend-web-01.health.agency.example.org", "alice.longname@health.example.org"
    ids = await api.store_alerts(name, 3, host=host, user=user)
    key = await api.key("analyst", [name])

    code, out, err = await secmon("alerts", "ls", "--api", api.url, "--agency", name, key=key, cwd=tmp_path)
    assert code == 0, err
    rows = piped_rows(out)
    assert sorted(row["id"] for row in rows) == sorted(ids)
    assert all(len(row["id"]) >= 20 for row in rows)  # whole, not split across lines
    for row in rows:
        assert WHOLE_TIME.fullmatch(row["first seen"]), row
        assert (row["level"], row["rule"], row["organization.id"]) == ("high", "Suspicious whoami", name)
        assert (row["host.name"], row["user.name"], row["count"], row["status"]) == (host, user, "1", "open")

    code, out, err = await secmon("alerts", "show", ids[0], "--api", api.url, key=key, cwd=tmp_path)
    assert code == 0, err
    assert out.splitlines()[0] == f"Suspicious whoami  {ids[0]}"
    facts = piped_facts(out)
    assert (facts["level"], facts["organization.id"]) == ("high", name)
    assert (facts["host.name"], facts["user.name"]) == (host, user)
    assert WHOLE_TIME.fullmatch(facts["first seen"])
    lines = out.splitlines()
    header = lines.index("time\tdataset\tevent")  # the table of the events that raised it: here, one
    [event] = piped_rows("\n".join(lines[header : header + 2]))
    assert WHOLE_TIME.fullmatch(event["time"])
    assert f"user.name={user} host.name={host}" in event["event"]  # the summary, not cut at 80 columns

    # A command that reads Elasticsearch directly: key ids and creation times whole too.
    created, _ = await api.services.keys.create("analyst", agencies=[name], name=f"{name}-a-rather-long-key-name")
    config = tmp_path / "secmon.yml"
    config.write_text(
        f"elasticsearch:\n  url: {cluster_url(es_settings)}\n  index_prefix: {es_settings.index_prefix}\n"
    )
    code, out, err = await secmon("--config", str(config), "apikey", "list", key=None, cwd=tmp_path)
    assert code == 0, err
    [row] = [row for row in piped_rows(out) if row["id"] == created.id]
    assert (row["name"], row["role"], row["agencies"]) == (f"{name}-a-rather-long-key-name", "analyst", name)
    assert row["created"] == created.created.isoformat()


async def test_an_attacker_address_is_source_ip_in_every_command_and_the_api(
    api: Api,  # noqa: F811
    es_settings: ElasticsearchSettings,
    tmp_path: Path,
) -> None:
    name = agency()
    settings = Settings.model_validate({"elasticsearch": es_settings.model_dump(), "state_dir": tmp_path / "state"})
    async with running_service(settings, with_sources=False) as running:  # the real detection and correlations
        await running.pipeline.submit(
            [Record(line) for line in SSH_FAILURES], SourceContext("ssh", "auto", Agency(name))
        )
        await running.pipeline.wait_drained()
    await api.services.client.indices.refresh(index=api.names.alerts)
    key = await api.key("analyst", [name])
    url = ("--api", api.url)

    code, out, err = await secmon("alerts", "ls", *url, "--agency", name, key=key, cwd=tmp_path)
    assert code == 0, err
    [row] = piped_rows(out)
    assert row["rule"] == "SSH Brute Force"
    assert row["source.ip"] == ATTACKER  # the attacker's address, named after its ECS field
    assert row["group"] == f"source.ip={ATTACKER}"  # what the correlation counted by, in a column of its own
    assert row["host.name"] == ""  # not the address again under another name

    code, out, err = await secmon("alerts", "ls", *url, "--source-ip", ATTACKER, "--json", key=key, cwd=tmp_path)
    assert code == 0, err
    [alert] = [orjson.loads(line) for line in out.splitlines()]
    assert alert["id"] == row["id"]
    assert (alert["source_ip"], alert["group"]) == (ATTACKER, {"source.ip": ATTACKER})  # the API says the same

    # --host filters host.name, the column of that name: the attacker's address is not a host.
    code, out, err = await secmon("alerts", "ls", *url, "--host", ATTACKER, key=key, cwd=tmp_path)
    assert (code, out) == (0, "") and "No alerts match." in err

    code, out, err = await secmon("alerts", "show", row["id"], *url, key=key, cwd=tmp_path)
    assert code == 0, err
    facts = piped_facts(out)
    assert (facts["source.ip"], facts["group"]) == (ATTACKER, f"source.ip={ATTACKER}")
    assert "host.name" not in facts and "source ip" not in out
