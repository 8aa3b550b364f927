"""Peer Sigma engines: the same SigmaHQ rules and EVTX files, run by another tool.

Each runner starts the peer once as a subprocess over copies of the given EVTX files (staged in
``workdir``, so every peer reads the same bytes from one flat folder), times that run with
``time.perf_counter`` and counts what the peer wrote out: matched (rule, event) pairs, the events
it read and the rules it loaded. The wall time includes everything the peer does in that process:
start-up, reading and converting the rules, parsing the EVTX files, matching and writing results.

The peers are built by hand from their sources, under ``~/.cache/secmon/peers`` by default (see
``benchmarks/README.md`` for the build steps); :func:`find_peers` tells which are there. This
module knows their source layouts and output formats, which is why it lives outside secmon.

* Zircolite (Python) converts the Sigma YAML rules itself with pySigma's SQLite backend and the
  ``sysmon`` and ``windows-logsources`` pipelines, loads the events into SQLite and runs one query
  per rule. It runs from its own virtual environment, ``<zircolite>/.venv``.
* Chainsaw (Rust) loads the Sigma YAML rules directly, with its own mapping file
  (``mappings/sigma-event-logs-all.yml``) for logsources and field names. Rules using features it
  lacks are skipped (:func:`chainsaw_unloaded_rules` lists them with the reason). It does not
  report how many records it read, so ``events`` is counted here with the ``evtx`` package.
* Hayabusa (Rust) cannot use Sigma's ``logsource`` natively: ``hayabusa dfir-timeline`` runs rules
  converted from the same SigmaHQ folder by Yamato Security's ``sigma-to-hayabusa-converter`` (one
  Sysmon and, where possible, one built-in-log variant per rule, see
  :func:`convert_rules_for_hayabusa`; the conversion is not timed), with the rule configuration
  folder of ``hayabusa-rules``. Its rule count is therefore of converted rule files, not of Sigma
  rules, and its channel filter skips files that no loaded rule can match.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PEERS_DIR = Path.home() / ".cache" / "secmon" / "peers"
DEFAULT_TIMEOUT = 1800.0  # seconds for one hunting run; Zircolite converts ~2,400 rules with pySigma first
STDERR_TAIL = 2000  # characters of a failing peer's output quoted in PeerError

# Where each peer's entry point sits under its folder in the peers directory.
ZIRCOLITE_ENTRY = Path("zircolite.py")
ZIRCOLITE_PYTHON = Path(".venv/bin/python")
CHAINSAW_ENTRY = Path("target/release/chainsaw")
CHAINSAW_MAPPING = Path("mappings/sigma-event-logs-all.yml")
HAYABUSA_ENTRY = Path("target/release/hayabusa")
HAYABUSA_CONVERTER = Path("sigma-to-hayabusa-converter/sigma-to-hayabusa-converter.py")
HAYABUSA_RULES_CONFIG = Path("hayabusa-rules/config")  # under the peers directory

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Rich console markup in Zircolite's log file: [cyan], [/], [/cyan], [link=file:///...]; not [+] or [>].
_MARKUP = re.compile(r"\[(?:/|/?[a-z][a-z _-]*(?:=[^\]]*)?)\]")


class PeerError(Exception):
    """A peer engine could not be run or failed; the message names it and quotes the end of its output."""


@dataclass(frozen=True, slots=True)
class PeerResult:
    """One run of a peer engine over the benchmark's rules and EVTX files."""

    name: str  # tool and version, e.g. "chainsaw 2.16.4"
    seconds: float  # wall time of the hunting run only (not the build)
    events: int  # events (records) the peer read
    rules_loaded: int  # rules the peer reports loaded/used (-1: it cannot tell)
    matches: int  # matched (rule, event) pairs it reported
    note: str  # how it was run, anything not comparable

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def find_peers(peers_dir: Path = DEFAULT_PEERS_DIR) -> dict[str, Path]:
    """The peers built under ``peers_dir``: name -> executable (Chainsaw, Hayabusa) or script (Zircolite)."""
    found: dict[str, Path] = {}
    zircolite = peers_dir / "zircolite"
    if (zircolite / ZIRCOLITE_ENTRY).is_file() and (zircolite / ZIRCOLITE_PYTHON).is_file():
        found["zircolite"] = zircolite / ZIRCOLITE_ENTRY
    for name, entry in (("chainsaw", CHAINSAW_ENTRY), ("hayabusa", HAYABUSA_ENTRY)):
        exe = peers_dir / name / entry
        if exe.is_file() and os.access(exe, os.X_OK):
            found[name] = exe
    return found


# --- shared helpers ---------------------------------------------------------------------------


def _tail(text: str) -> str:
    text = _ANSI.sub("", text).strip()
    return text[-STDERR_TAIL:] if len(text) > STDERR_TAIL else text


def _run(
    name: str, cmd: Sequence[str | Path], cwd: Path, timeout: float, *, check: bool = True
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``cmd`` with its output captured; return it and its wall time in seconds."""
    args = [str(part) for part in cmd]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "NO_COLOR": "1"},
            check=False,
        )
    except FileNotFoundError as exc:
        raise PeerError(f"{name}: cannot start {args[0]}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        out = exc.stderr or exc.stdout or b""
        text = out.decode(errors="replace") if isinstance(out, bytes) else out
        raise PeerError(f"{name}: no result within {timeout:.0f} s: {' '.join(args)}\n{_tail(text)}") from exc
    seconds = time.perf_counter() - start
    if check and proc.returncode != 0:
        raise PeerError(
            f"{name} exited with status {proc.returncode}: {' '.join(args)}\n{_tail(proc.stderr or proc.stdout)}"
        )
    return proc, seconds


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def stage_evtx(evtx_files: Sequence[Path], folder: Path) -> list[Path]:
    """Copy ``evtx_files`` into a fresh flat ``folder`` (numbered, so equal names do not collide)."""
    if not evtx_files:
        raise PeerError("no EVTX files to hunt through")
    _fresh_dir(folder)
    staged = []
    for n, src in enumerate(evtx_files):
        dest = folder / f"{n:04d}_{src.stem}.evtx"
        shutil.copyfile(src, dest)
        staged.append(dest)
    return staged


def count_evtx_records(evtx_files: Sequence[Path]) -> int:
    """Records in ``evtx_files``, as the ``evtx`` package (the Rust parser Chainsaw also uses) reads them."""
    from evtx import PyEvtxParser

    total = 0
    for path in evtx_files:
        for _record in PyEvtxParser(str(path)).records():
            total += 1
    return total


def _count(pattern: str, text: str) -> int | None:
    match = re.search(pattern, text)
    return int(match.group(1).replace(",", "")) if match else None


def _read_jsonl(path: Path, name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PeerError(f"{name}: line {n} of {path} is not JSON: {exc}") from exc
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _version(name: str, cmd: Sequence[str | Path], cwd: Path, pattern: str) -> str:
    try:
        proc, _ = _run(name, cmd, cwd, 60.0, check=False)
    except PeerError:
        return name
    match = re.search(pattern, _ANSI.sub("", proc.stdout + proc.stderr))
    return f"{name} {match.group(1)}" if match else name


# --- Zircolite --------------------------------------------------------------------------------


def zircolite_python(peer: Path) -> Path:
    """The interpreter of Zircolite's own virtual environment, beside ``zircolite.py``."""
    python = peer.parent / ZIRCOLITE_PYTHON
    if not python.is_file():
        raise PeerError(f"zircolite: no virtual environment at {python.parent.parent}")
    return python


def run_zircolite(
    peer: Path,
    rules_dir: Path,
    evtx_files: Sequence[Path],
    workdir: Path,
    *,
    pipelines: Sequence[str] = ("sysmon", "windows-logsources"),
    timeout: float = DEFAULT_TIMEOUT,
) -> PeerResult:
    """Zircolite over the Sigma YAML rules in ``rules_dir`` (converted in the same run with pySigma)."""
    python = zircolite_python(peer)
    work = _fresh_dir(workdir / "zircolite")
    evtx_dir = work / "evtx"
    stage_evtx(evtx_files, evtx_dir)
    out, log = work / "detected_events.json", work / "zircolite.log"
    cmd: list[str | Path] = [python, peer, "--evtx", evtx_dir, "--ruleset", rules_dir]
    for pipeline in pipelines:
        cmd += ["--pipeline", pipeline]
    # --unified-db: one SQLite database for all files, whatever their number and sizes (no auto mode).
    cmd += ["--config", peer.parent / "config" / "config.yaml", "--unified-db", "--quiet"]
    cmd += ["--outfile", out, "--logfile", log]
    proc, seconds = _run("zircolite", cmd, work, timeout)

    text = _MARKUP.sub("", log.read_text(encoding="utf-8", errors="replace")) if log.exists() else ""
    rules = _count(r"\[\+\] ([\d,]+) rules loaded", text)
    events = 0
    for match in re.finditer(r"Total events processed: ([\d,]+)(?: \(([\d,]+) events filtered out\))?", text):
        events += int(match.group(1).replace(",", "")) + int((match.group(2) or "0").replace(",", ""))
    if rules is None:
        raise PeerError(f"zircolite: no 'rules loaded' line in {log}\n{_tail(proc.stdout + proc.stderr)}")
    converted = re.search(r"Converted [\d,]+ rules(?: \(([^)]*)\))?", text)
    skipped = f", conversion: {converted.group(1)}" if converted and converted.group(1) else ""
    if out.exists():
        try:
            results = json.loads(out.read_text(encoding="utf-8", errors="replace") or "[]")
        except json.JSONDecodeError as exc:
            raise PeerError(f"zircolite: {out} is not JSON: {exc}") from exc
    else:
        results = []
    matches = sum(int(r.get("count", len(r.get("matches", [])))) for r in results if isinstance(r, dict))

    import_version = re.search(r'__version__ = "([^"]+)"', (peer.parent / "zircolite" / "__init__.py").read_text())
    name = f"zircolite {import_version.group(1)}" if import_version else "zircolite"
    note = (
        f"Sigma YAML converted by pySigma's SQLite backend in the run (pipelines {', '.join(pipelines)}{skipped}); "
        "time includes Python start-up, rule conversion, EVTX parsing into SQLite and one query per rule; "
        "events = records read (processed + dropped by its channel/EventID pre-filter)"
    )
    return PeerResult(name, seconds, events, rules, matches, note)


# --- Chainsaw ---------------------------------------------------------------------------------


def chainsaw_mapping(peer: Path) -> Path:
    """Chainsaw's Sigma mapping for event logs, in the source tree the executable was built in."""
    for parent in peer.resolve().parents:
        mapping = parent / CHAINSAW_MAPPING
        if mapping.is_file():
            return mapping
    raise PeerError(f"chainsaw: no {CHAINSAW_MAPPING} above {peer}")


def run_chainsaw(
    peer: Path,
    rules_dir: Path,
    evtx_files: Sequence[Path],
    workdir: Path,
    *,
    mapping: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> PeerResult:
    """``chainsaw hunt`` with the Sigma YAML rules in ``rules_dir`` and its event-log mapping."""
    mapping = mapping or chainsaw_mapping(peer)
    work = _fresh_dir(workdir / "chainsaw")
    evtx_dir = work / "evtx"
    staged = stage_evtx(evtx_files, evtx_dir)
    out = work / "detections.jsonl"
    cmd: list[str | Path] = [peer, "--no-banner", "hunt", "--sigma", rules_dir, "--mapping", mapping]
    cmd += ["--jsonl", "--output", out, evtx_dir]
    proc, seconds = _run("chainsaw", cmd, work, timeout)

    text = _ANSI.sub("", proc.stderr + proc.stdout)
    rules = _count(r"Loaded ([\d,]+) detection rules", text)
    not_loaded = _count(r"Loaded [\d,]+ detection rules \(([\d,]+) not loaded\)", text) or 0
    matches = 0
    for row in _read_jsonl(out, "chainsaw"):
        documents = row.get("documents")
        # "individual" detections are one document each; "aggregate" ones (correlations) list theirs.
        matches += len(documents) if row.get("kind") == "aggregate" and isinstance(documents, list) else 1
    events = count_evtx_records(staged)
    note = (
        f"Sigma YAML loaded directly with {mapping.name} ({not_loaded} rule files not loaded: "
        "unsupported modifiers or syntax); rules excluded by title in the mapping are loaded but never run; "
        "time includes start-up, rule loading and EVTX parsing; events counted by the benchmark with the evtx package "
        "(Chainsaw does not report them)"
    )
    return PeerResult(
        _version("chainsaw", [peer, "--version"], work, r"chainsaw ([\w.\-]+)"),
        seconds,
        events,
        rules if rules is not None else -1,
        matches,
        note,
    )


def chainsaw_unloaded_rules(peer: Path, rules_dir: Path, *, timeout: float = 600.0) -> dict[str, str]:
    """Rule files of ``rules_dir`` that Chainsaw cannot load (``chainsaw lint``): relative path -> reason."""
    proc, _ = _run("chainsaw", [peer, "--no-banner", "lint", "--kind", "sigma", rules_dir], rules_dir, timeout)
    failed: dict[str, str] = {}
    for line in _ANSI.sub("", proc.stderr + proc.stdout).splitlines():
        match = re.match(r"\[!\] (.+?\.ya?ml): (.*)$", line.strip())
        if match:
            failed[match.group(1).lstrip("/")] = re.sub(r" - tau_engine::Error.*", "", match.group(2))
    return failed


# --- Hayabusa ---------------------------------------------------------------------------------


def convert_rules_for_hayabusa(
    converter: Path, rules_dir: Path, out_dir: Path, *, python: Path | None = None, timeout: float = 3600.0
) -> Path:
    """Convert SigmaHQ rules with ``sigma-to-hayabusa-converter.py`` into ``out_dir``, once.

    The conversion (minutes: it rewrites every rule with ruamel.yaml) is not part of any timed run.
    A stamp file records the source folder; a later call for the same folder reuses the output.
    """
    stamp = out_dir / ".converted-from"
    if stamp.is_file() and stamp.read_text() == str(rules_dir.resolve()):
        return out_dir
    venv_python = converter.parent / ".venv" / "bin" / "python"
    interpreter = python or (venv_python if venv_python.is_file() else Path("python3"))
    _fresh_dir(out_dir)
    cmd: list[str | Path] = [interpreter, converter, "--rule_path", rules_dir, "--output", out_dir]
    _run("sigma-to-hayabusa-converter", cmd, converter.parent, timeout)
    if not any(out_dir.rglob("*.yml")):
        raise PeerError(f"sigma-to-hayabusa-converter wrote no rules into {out_dir}")
    stamp.write_text(str(rules_dir.resolve()))
    return out_dir


def hayabusa_rules_config(peer: Path) -> Path:
    """The ``config`` folder of hayabusa-rules, looked for beside Hayabusa's source tree."""
    for parent in peer.resolve().parents:
        for candidate in (parent / HAYABUSA_RULES_CONFIG, parent / "rules" / "config"):
            if (candidate / "eventkey_alias.txt").is_file():
                return candidate
    raise PeerError(f"hayabusa: no rules config folder (hayabusa-rules/config) above {peer}")


def run_hayabusa(
    peer: Path,
    rules_dir: Path,
    evtx_files: Sequence[Path],
    workdir: Path,
    *,
    rules_config: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> PeerResult:
    """``hayabusa dfir-timeline`` with rules converted by :func:`convert_rules_for_hayabusa` in ``rules_dir``."""
    rules_config = rules_config or hayabusa_rules_config(peer)
    work = _fresh_dir(workdir / "hayabusa")
    evtx_dir = work / "evtx"
    staged = stage_evtx(evtx_files, evtx_dir)
    out = work / "timeline.jsonl"
    cmd: list[str | Path] = [peer, "dfir-timeline", "--directory", evtx_dir, "--rules", rules_dir]
    cmd += ["--rules-config", rules_config, "--output-type", "jsonl", "--output", out, "--clobber"]
    cmd += ["--no-wizard", "--quiet", "--no-color", "--utc", "--enable-noisy-rules"]
    proc, seconds = _run("hayabusa", cmd, work, timeout)

    text = _ANSI.sub("", proc.stdout + proc.stderr)
    total_rules = _count(r"Total detection rules: ([\d,]+)", text)
    rules = _count(r"Detection rules enabled after channel filter: ([\d,]+)", text)
    excluded = _count(r"Excluded rules: ([\d,]+)", text)
    files = _count(r"Evtx files loaded after channel filter: ([\d,]+)", text)
    events = _count(r"Total events: [\d,]+ / ([\d,]+)", text)
    matches = len(_read_jsonl(out, "hayabusa"))
    note = (
        "rules converted from the same SigmaHQ YAML by sigma-to-hayabusa-converter (a Sysmon and a built-in-log "
        f"variant per rule where possible: {total_rules} rule files loaded, {excluded} excluded by its "
        "exclude_rules.txt, rules_loaded = those left by its channel filter), noisy rules enabled; "
        f"its channel filter read {files} of {len(staged)} files, events = records in those; "
        "time includes start-up, rule loading and EVTX parsing"
    )
    if events is None:
        events = count_evtx_records(staged)
        note += "; events counted by the benchmark with the evtx package"
    return PeerResult(
        _version("hayabusa", [peer, "help"], work, r"Hayabusa v?(\d[\w.\-]*)"),
        seconds,
        events,
        rules if rules is not None else (total_rules if total_rules is not None else -1),
        matches,
        note,
    )


Runner = Callable[[Path, Path, Sequence[Path], Path], PeerResult]
RUNNERS: dict[str, Runner] = {"zircolite": run_zircolite, "chainsaw": run_chainsaw, "hayabusa": run_hayabusa}
