"""Sigma rules the tests write: one that fires on a failed SSH login of one user."""

from __future__ import annotations


def sshd_failure_rule(rule_id: str, user: str, title: str | None = None) -> str:
    """A rule matching sshd's failed logins of ``user`` (ECS fields, as secmon stores them)."""
    return f"""\
title: {title or f"SSH login failure of {user}"}
id: {rule_id}
level: high
logsource: {{product: linux, service: sshd}}
detection:
  selection: {{event.outcome: failure, user.name: {user}}}
  condition: selection
"""
