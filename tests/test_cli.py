"""The command line as a user meets it: clear one-line errors, exit codes, and the public surface."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from rich.table import Table

import secmon.node
import secmon.store
from secmon.cli.context import CliConsole


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secmon", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_an_invalid_config_file_fails_with_file_line_key_and_reason(tmp_path: Path) -> None:
    config = tmp_path / "secmon.yml"
    config.write_text("elasticsearch:\n  local:\n    heap: lots\n")
    result = run("--config", str(config), "config", "check")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{config}:3: elasticsearch.local.heap: String should match pattern" in " ".join(result.stderr.split())


def test_config_check_prints_the_settings_without_secrets(tmp_path: Path) -> None:
    config = tmp_path / "secmon.yml"
    config.write_text("elasticsearch:\n  url: https://es.example:9200\n  password: hunter2\n  username: secmon\n")
    result = run("--config", str(config), "config", "check")
    assert result.returncode == 0, result.stderr
    assert "https://es.example:9200" in result.stdout
    assert "hunter2" not in result.stdout


def test_public_modules_export_what_they_name() -> None:
    for module in (secmon.store, secmon.node):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"


def test_a_piped_table_keeps_one_row_a_line_whatever_its_values_hold() -> None:
    # An agency's host name or an API key's name may hold NEL (\x85), a Unicode line separator or
    # another control character: into a pipe each is escaped, so that a row stays one line (rich
    # itself drops a carriage return).
    out = io.StringIO()
    table = Table("id", "name")
    table.add_row("k1", "lab\rhost\x85one\u2028two\x04")
    table.add_row("k2", "first line\nsecond line")
    CliConsole(file=out).print(table)
    assert out.getvalue().splitlines() == [
        "id\tname",
        "k1\tlabhost\\x85one\\u2028two\\x04",
        "k2\tfirst line; second line",
    ]
