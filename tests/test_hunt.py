"""``secmon hunt`` over stored events: a match says where the event is in its original log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from secmon.config import ElasticsearchSettings
from tests.support.datasets import DATASETS
from tests.support.import_cli import import_config, run_import

LOG_CLEARED = DATASETS / "evtx" / "defense-evasion" / "DE_104_system_log_cleared.evtx"
SYSTEM_RULES = DATASETS / "sigma" / "rules" / "windows" / "builtin" / "system"


def test_hunt_reports_the_event_record_id_event_viewer_shows(
    es_settings: ElasticsearchSettings, tmp_path: Path
) -> None:
    _, _, config = import_config(es_settings, tmp_path, "hunt")
    run_import(config, "evtx", str(LOG_CLEARED))
    result = subprocess.run(
        [sys.executable, "-m", "secmon", "--config", str(config), "hunt", "-r", str(SYSTEM_RULES), "--since", "3650d"],
        capture_output=True, text=True, timeout=300, check=False, env={"HOME": str(tmp_path), "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (cleared,) = [
        m for m in map(json.loads, result.stdout.splitlines()) if m["title"] == "Important Windows Eventlog Cleared"
    ]
    # System/EventRecordID of the record (the file's own header numbers it 1; see test_detect_cli.py).
    assert cleared["record_id"] == 27736
    assert cleared["file"] == str(LOG_CLEARED)
