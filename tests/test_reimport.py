"""A file imported again: new content, or another agency's copy, is stored; the same content for the same agency is not.

Document ids are made of the event's agency, its place at the source and its content
(secmon/collect/topology.py ``_keyed_id``). Ids made of the place alone called a daily export
rewritten at the same path "already stored" and lost it.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from secmon.config import ElasticsearchSettings
from tests.support.import_cli import import_config, run_import, stored_count

FAILED_ROOT = "Nov 24 10:00:00 hostA sshd[24200]: Failed password for root from 1.2.3.4 port 22 ssh2\n"
ACCEPTED_BOB = "Nov 24 10:05:00 hostB sshd[1]: Accepted password for bob from 5.6.7.8 port 22 ssh2\n"


def stored_events(url: str, pattern: str) -> list[tuple[str, str, str]]:
    """(agency, host, user) of every stored event, sorted."""
    stored_count(url, pattern)  # refreshes
    with urllib.request.urlopen(f"{url}/{pattern}/_search?size=100", timeout=10) as response:
        hits = json.load(response)["hits"]["hits"]
    return sorted(
        (h["_source"]["organization"]["id"], h["_source"]["host"]["hostname"], h["_source"]["user"]["name"])
        for h in hits
    )


def stored_and_duplicates(summary: list[int]) -> tuple[int, int]:
    _read, _failed_to_parse, stored, duplicates, *_ = summary
    return stored, duplicates


def test_a_path_rewritten_or_imported_for_another_agency_is_stored_and_the_same_file_is_not(
    es_settings: ElasticsearchSettings, tmp_path: Path
) -> None:
    url, names, config = import_config(es_settings, tmp_path, "reimport")
    log = tmp_path / "auth.log"

    log.write_text(FAILED_ROOT)
    assert stored_and_duplicates(run_import(config, "logs", str(log), "--agency", "alpha")[0]) == (1, 0)
    inode = log.stat().st_ino
    log.write_text(ACCEPTED_BOB)  # rewritten in place: same path, same inode, same offset
    assert log.stat().st_ino == inode
    assert stored_and_duplicates(run_import(config, "logs", str(log), "--agency", "beta")[0]) == (1, 0)
    assert stored_events(url, names.events_pattern) == [("alpha", "hostA", "root"), ("beta", "hostB", "bob")]

    # The same file for the same agency again: nothing new.
    assert stored_and_duplicates(run_import(config, "logs", str(log), "--agency", "beta")[0]) == (0, 1)
    # The same content for another agency: that agency's event.
    assert stored_and_duplicates(run_import(config, "logs", str(log), "--agency", "gamma")[0]) == (1, 0)
    assert stored_events(url, names.events_pattern) == [
        ("alpha", "hostA", "root"),
        ("beta", "hostB", "bob"),
        ("gamma", "hostB", "bob"),
    ]


def test_identical_lines_of_one_file_stay_separate_events(es_settings: ElasticsearchSettings, tmp_path: Path) -> None:
    url, names, config = import_config(es_settings, tmp_path, "reimport-twins")
    log = tmp_path / "auth.log"
    log.write_text(FAILED_ROOT * 3)  # a burst logged within one second: three attempts, three events

    assert stored_and_duplicates(run_import(config, "logs", str(log), "--agency", "alpha")[0]) == (3, 0)
    assert stored_and_duplicates(run_import(config, "logs", str(log), "--agency", "alpha")[0]) == (0, 3)
    assert stored_count(url, names.events_pattern) == 3
