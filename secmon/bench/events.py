"""Synthetic ECS events for benchmarks: a reproducible mix of auth, web and firewall logs."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

_USERS = ["root", "admin", "oracle", "postgres", "deploy", "alice", "bob", "test", "ubuntu", "git"]
_PATHS = ["/", "/login", "/wp-login.php", "/api/v1/items", "/index.php?id=1'--", "/static/app.js", "/admin"]
_AGENCIES = ["health", "transport", "finance", "education"]


def synthetic_events(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """``count`` events shaped like secmon's parsed sshd, web access and firewall events."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(count):
        ts = (start + timedelta(milliseconds=n * 37)).isoformat().replace("+00:00", "Z")
        ip = f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        host = f"srv-{rng.randrange(40):02d}"
        agency = _AGENCIES[n % len(_AGENCIES)]
        kind = n % 3
        event: dict[str, Any] = {
            "@timestamp": ts,
            "host": {"name": host},
            "source": {"ip": ip, "port": rng.randrange(1024, 65535)},
            "organization": {"id": agency},
            "event": {"kind": "event", "ingested": ts},
        }
        if kind == 0:
            user = rng.choice(_USERS)
            line = f"Failed password for invalid user {user} from {ip} port {event['source']['port']} ssh2"
            event["event"].update(dataset="sshd", category=["authentication"], outcome="failure", action="ssh_login")
            event["user"] = {"name": user}
            event["process"] = {"name": "sshd", "pid": rng.randrange(1000, 60000)}
        elif kind == 1:
            path = rng.choice(_PATHS)
            status = rng.choice([200, 200, 200, 301, 404, 500])
            line = f'{ip} - - [{ts}] "GET {path} HTTP/1.1" {status} {rng.randrange(200, 9000)} "-" "Mozilla/5.0"'
            event["event"].update(dataset="apache.access", category=["web"], outcome="success")
            event["http"] = {"request": {"method": "GET"}, "response": {"status_code": status}}
            event["url"] = {"original": path}
            event["user_agent"] = {"original": "Mozilla/5.0"}
        else:
            port = rng.choice([22, 23, 80, 443, 445, 3389, 8080])
            line = f"[UFW BLOCK] IN=eth0 OUT= SRC={ip} DST=10.0.0.5 PROTO=TCP SPT=40000 DPT={port}"
            event["event"].update(dataset="iptables", category=["network"], action="block")
            event["destination"] = {"ip": "10.0.0.5", "port": port}
            event["network"] = {"transport": "tcp"}
        event["message"] = line
        event["event"]["original"] = f"<34>Nov  1 00:00:00 {host} {line}"
        yield event
