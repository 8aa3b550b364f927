"""Which channel receives which alert, decided by a matcher compiled once per channel."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from secmon.notify.config import EmailChannel, WebhookChannel

AlertMatcher = Callable[[Mapping[str, Any]], bool]


def compile_filter(channel: WebhookChannel | EmailChannel) -> AlertMatcher:
    """A predicate telling whether an alert document goes to ``channel``.

    The channel's ``agency`` scopes it to that agency's alerts; then each filter list that is
    not empty must match: the rule level, the rule id, the agency, and any one of the tags.
    """
    agency = channel.agency
    levels = frozenset(channel.filter.levels)
    rules = frozenset(channel.filter.rules)
    tags = frozenset(tag.lower() for tag in channel.filter.tags)
    agencies = frozenset(channel.filter.agencies)

    def matches(alert: Mapping[str, Any]) -> bool:
        rule = _section(alert, "rule")
        if agency is not None or agencies:
            organization = _section(alert, "organization").get("id")
            if agency is not None and organization != agency:
                return False
            if agencies and organization not in agencies:
                return False
        if levels and str(rule.get("level") or "").lower() not in levels:
            return False
        if rules and rule.get("id") not in rules:
            return False
        return not tags or any(tag in tags for tag in _tags(alert, rule))

    return matches


def _section(alert: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = alert.get(name)
    return value if isinstance(value, Mapping) else {}


def _tags(alert: Mapping[str, Any], rule: Mapping[str, Any]) -> Iterable[str]:
    """The alert's tags and its rule's (an alert copies them, a hand-made one may have only one)."""
    for tags in (alert.get("tags"), rule.get("tags")):
        if isinstance(tags, list):
            yield from (str(tag).lower() for tag in tags)
