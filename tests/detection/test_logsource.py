"""A rule's logsource selects the events of the one table entry for exactly that logsource.

rules/logsources.yml has product-less entries for the packet decoder and the web and firewall
parsers (``category: network_connection``, ``dns``, ``arp``, ``webserver``, ``firewall``). A
rule of the same category for one product must not get their selection as well.
"""

from __future__ import annotations

import pytest

from secmon.detection.convert import Converter


@pytest.fixture(scope="module")
def converter() -> Converter:
    return Converter()


def query_of(converter: Converter, logsource: str) -> str:
    """The Lucene query of a one-field rule of ``logsource``, or the problem that left it unconverted."""
    text = (
        f"title: t\nid: 5a3e0f2c-7d41-4b8e-9c55-1f6a2b3c4d5e\nlogsource: {{{logsource}}}\n"
        "detection:\n  selection:\n    marker: x\n  condition: selection\n"
    )
    (conversion,) = converter.convert_text(text, "t.yml")
    return conversion.queries[0] if conversion.ok else f"problem: {conversion.problem}"


@pytest.mark.parametrize(
    ("logsource", "selection"),
    [
        # Sysmon's event ids, from pySigma's own Sysmon table.
        ("product: windows, category: network_connection", "winlog.event_id:3"),
        ("product: windows, category: dns_query", "winlog.event_id:22"),
        # secmon's packet decoder and parsers.
        ("category: network_connection", "event.dataset:network.flow"),
        ("category: dns", "event.dataset:network.dns"),
        ("category: arp", "event.dataset:network.arp"),
        ("category: firewall", "event.dataset:iptables"),
        ("category: webserver", "event.dataset:(apache.access OR nginx.access)"),
    ],
)
def test_a_logsource_selects_its_own_entry_s_events_only(converter: Converter, logsource: str, selection: str) -> None:
    query = query_of(converter, logsource)
    assert selection in query
    other = "winlog." if "event.dataset" in selection else "event.dataset"
    assert other not in query, query


@pytest.mark.parametrize(
    "logsource",
    [
        # No Sysmon for Linux here: flows or syslog lines are not the events these rules describe.
        "product: linux, category: network_connection",
        "product: zeek, category: dns",
        "product: windows, category: webserver",
    ],
)
def test_a_logsource_only_a_broader_entry_covers_is_not_loaded(converter: Converter, logsource: str) -> None:
    assert "no secmon events for logsource" in query_of(converter, logsource)
