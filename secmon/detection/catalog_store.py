"""The rule catalog shared by every instance: kept in Elasticsearch, mirrored into each ``state_dir``.

The uploaded rules and the disabled rule ids live in one index of their own (``<prefix>-rules``,
:attr:`~secmon.store.IndexNames.rules`), one document per uploaded rule (``rule:<id>``: its YAML,
who changed it and when) and one per disabled id (``disabled:<id>``). One document per id means
that two instances changing different rules never touch the same document; a replacement of a
rule is written with optimistic concurrency (``if_seq_no``/``if_primary_term``), so the text it
replaced, which the audit trail records, is the one it really replaced.

The engine keeps reading files (:class:`CatalogFiles`), so that it runs on when Elasticsearch is
down: :class:`CatalogMirror` writes what the index holds into ``<state_dir>/rules/<id>.yml`` and
``<state_dir>/rules-disabled.json`` at start and every ``detection.reload_interval`` (only what
changed, atomically), and the engine's file watch reloads. An instance's own change is written to
its files as soon as Elasticsearch accepted it.

Upgrading from a secmon that kept the catalog in ``state_dir`` alone: at the first start against
an index, the rules and disabled ids of the files that the index lacks are imported into it
(:meth:`CatalogMirror.migrate`); a rule the index already holds keeps the index's text.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import ApiError, AsyncElasticsearch, ConflictError, NotFoundError

from secmon.config import DetectionSettings
from secmon.detection.loader import rule_files
from secmon.errors import StoreError
from secmon.log import get_logger
from secmon.store.errors import error_reason
from secmon.store.indices import ensure_index
from secmon.store.templates import load_mapping
from secmon.timestamps import datetime_to_iso_millis

log = get_logger(__name__)

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
PAGE_SIZE = 1000
# Attempts at replacing a rule that other instances keep changing meanwhile, before giving up.
REPLACE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class CatalogFiles:
    """Where the uploaded rules and the disabled ids live, under ``state_dir``; shared with the engine."""

    state_dir: Path

    @property
    def uploaded(self) -> Path:
        return self.state_dir / "rules"

    @property
    def disabled_file(self) -> Path:
        return self.state_dir / "rules-disabled.json"

    @property
    def imported_file(self) -> Path:
        """Says into which index the files were imported: the import happens once per index."""
        return self.state_dir / "rules-imported.json"

    def rule_file(self, rule_id: str) -> Path:
        return self.uploaded / f"{rule_id}.yml"

    def disabled(self) -> frozenset[str]:
        """The disabled rule ids (none when the file is missing or unreadable)."""
        try:
            data = orjson.loads(self.disabled_file.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return frozenset()
        ids = data.get("disabled") if isinstance(data, dict) else None
        return frozenset(str(i) for i in ids) if isinstance(ids, list) else frozenset()

    def write_disabled(self, ids: Iterable[str]) -> None:
        _write_atomically(self.disabled_file, orjson.dumps({"disabled": sorted(set(ids))}, option=orjson.OPT_INDENT_2))

    def rule_paths(self, settings: DetectionSettings) -> list[Path]:
        """The configured rule paths and then the uploaded folder: what the engine loads."""
        configured = [p for p in settings.rules if p.resolve() != self.uploaded.resolve()]
        return [*configured, self.uploaded] if self.uploaded.is_dir() else configured

    def watched(self) -> list[Path]:
        """The files whose change must reload the engine (besides the configured rules)."""
        return [*rule_files([self.uploaded]), self.disabled_file] if self.uploaded.is_dir() else [self.disabled_file]

    def uploaded_texts(self) -> dict[str, str]:
        """The uploaded rules on disk by id: the ``<id>.yml`` files the catalog writes (others are not its own)."""
        texts: dict[str, str] = {}
        for path in sorted(self.uploaded.glob("*.yml")):
            if not SAFE_ID.match(path.stem):
                continue
            try:
                texts[path.stem] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # the engine reports the file; it cannot be mirrored or imported
        return texts

    def write_rule(self, rule_id: str, text: str) -> bool:
        """Write a rule's file unless it already holds ``text``; whether it was written."""
        path = self.rule_file(rule_id)
        try:
            if path.read_text(encoding="utf-8") == text:
                return False
        except (OSError, UnicodeDecodeError):
            pass
        _write_atomically(path, text.encode("utf-8"))
        return True

    def remove_rule(self, rule_id: str) -> None:
        self.rule_file(rule_id).unlink(missing_ok=True)
        disabled = self.disabled()
        if rule_id in disabled:
            self.write_disabled(disabled - {rule_id})

    def set_disabled(self, rule_id: str, disabled: bool) -> None:
        ids = self.disabled()
        changed = ids | {rule_id} if disabled else ids - {rule_id}
        if changed != ids or not self.disabled_file.exists():
            self.write_disabled(changed)

    def mirror(self, snapshot: CatalogSnapshot) -> int:
        """Make the files say what ``snapshot`` says, writing only what differs; how many files changed."""
        changed = sum(self.write_rule(rule_id, text) for rule_id, text in snapshot.rules.items())
        for rule_id in self.uploaded_texts().keys() - snapshot.rules.keys():
            self.rule_file(rule_id).unlink(missing_ok=True)
            changed += 1
        if self.disabled() != snapshot.disabled:
            self.write_disabled(snapshot.disabled)
            changed += 1
        return changed


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """What the shared catalog holds: the uploaded rules' texts by id, and the disabled ids."""

    rules: Mapping[str, str]
    disabled: frozenset[str]


class RuleStore:
    """The catalog's index: reads the whole of it, and changes one rule or one disabled id at a time.

    Elasticsearch's errors are let through (unreachable, unavailable: the API answers 503). Every
    write waits for a refresh, so the next search of any instance sees it.
    """

    def __init__(self, client: AsyncElasticsearch, index: str) -> None:
        self.client = client
        self.index = index

    async def ensure_index(self) -> None:
        """Create the index, or bring its mapping up to date; safe to run at every start."""
        await ensure_index(self.client, self.index, load_mapping("rules"))

    async def snapshot(self) -> CatalogSnapshot:
        """Every uploaded rule and disabled id, a page at a time."""
        rules: dict[str, str] = {}
        disabled: set[str] = set()
        after: list[Any] | None = None
        while True:
            response = await self.client.search(
                index=self.index,
                query={"match_all": {}},
                sort=[{"kind": "asc"}, {"rule_id": "asc"}],
                size=PAGE_SIZE,
                search_after=after,
                source_includes=["kind", "rule_id", "yaml"],
            )
            hits = response["hits"]["hits"]
            for hit in hits:
                source = hit["_source"]
                if source["kind"] == "rule":
                    rules[str(source["rule_id"])] = str(source["yaml"])
                elif source["kind"] == "disabled":
                    disabled.add(str(source["rule_id"]))
            if len(hits) < PAGE_SIZE:
                return CatalogSnapshot(rules, frozenset(disabled))
            after = hits[-1]["sort"]

    async def put_rule(self, rule_id: str, text: str, by: str) -> str | None:
        """Store an uploaded rule; the text of the rule of that id it replaced, if any."""
        document = {"kind": "rule", "rule_id": rule_id, "yaml": text, **_stamp(by)}
        for _ in range(REPLACE_ATTEMPTS):
            current = await self.client.options(ignore_status=404).get(index=self.index, id=_rule_doc(rule_id))
            try:
                if not current.get("found"):
                    await self.client.create(
                        index=self.index, id=_rule_doc(rule_id), document=document, refresh="wait_for"
                    )
                    return None
                await self.client.index(
                    index=self.index,
                    id=_rule_doc(rule_id),
                    document=document,
                    if_seq_no=current["_seq_no"],
                    if_primary_term=current["_primary_term"],
                    refresh="wait_for",
                )
                return str(current["_source"]["yaml"])
            except ConflictError:
                continue  # another instance changed it between the read and the write: read again
        raise StoreError(f"rule {rule_id} kept being changed by other instances; upload it again")

    async def delete_rule(self, rule_id: str) -> None:
        """Remove an uploaded rule and its disabled mark."""
        for doc_id in (_rule_doc(rule_id), _disabled_doc(rule_id)):
            await self.client.options(ignore_status=404).delete(index=self.index, id=doc_id, refresh="wait_for")

    async def set_disabled(self, rule_id: str, disabled: bool, by: str) -> bool:
        """Mark a rule disabled or enabled; whether it was disabled before."""
        if disabled:
            document = {"kind": "disabled", "rule_id": rule_id, **_stamp(by)}
            try:
                await self.client.create(
                    index=self.index, id=_disabled_doc(rule_id), document=document, refresh="wait_for"
                )
            except ConflictError:
                return True
            return False
        try:
            await self.client.delete(index=self.index, id=_disabled_doc(rule_id), refresh="wait_for")
        except NotFoundError:
            return False
        return True

    async def import_missing(self, snapshot: CatalogSnapshot, by: str) -> int:
        """Add the rules and disabled ids of ``snapshot`` that the index lacks (a document there wins); how many."""
        operations: list[dict[str, Any]] = []
        stamp = _stamp(by)
        for rule_id, text in snapshot.rules.items():
            operations += [
                {"create": {"_id": _rule_doc(rule_id)}},
                {"kind": "rule", "rule_id": rule_id, "yaml": text, **stamp},
            ]
        for rule_id in sorted(snapshot.disabled):
            operations += [
                {"create": {"_id": _disabled_doc(rule_id)}},
                {"kind": "disabled", "rule_id": rule_id, **stamp},
            ]
        if not operations:
            return 0
        response = await self.client.bulk(index=self.index, operations=operations, refresh="wait_for")
        created = 0
        for item in response["items"]:
            outcome = item["create"]
            if outcome.get("status") == 409:
                continue  # imported meanwhile by another instance, or already there
            if "error" in outcome:
                raise StoreError(f"Elasticsearch refused to import rule {outcome['_id']}: {outcome['error']['reason']}")
            created += 1
        return created


class CatalogMirror:
    """Keeps an instance's catalog files the copy of the shared index.

    :attr:`lock` is held by every change of the files, the catalog's own and the sync's, so that
    a sync that read the index before a change cannot write the older state over it.
    """

    def __init__(self, store: RuleStore, files: CatalogFiles) -> None:
        self.store = store
        self.files = files
        self.lock = asyncio.Lock()
        self._started = False

    async def start(self) -> None:
        """Create the index, import what only the files hold, and mirror the index; once per mirror."""
        if self._started:
            return
        await self.store.ensure_index()
        await self.migrate()
        await self.sync()
        self._started = True

    async def migrate(self) -> int:
        """Import the files' rules and disabled ids the index lacks, once per index; how many were added.

        A rule the index holds with another text keeps the index's (it is the one every other
        instance runs); the file is then overwritten by the next sync, and a warning names it.
        """
        marker = self.files.imported_file
        if await asyncio.to_thread(_imported_into, marker) == self.store.index:
            return 0
        async with self.lock:
            local = CatalogSnapshot(
                await asyncio.to_thread(self.files.uploaded_texts), await asyncio.to_thread(self.files.disabled)
            )
            shared = await self.store.snapshot()
            for rule_id, text in local.rules.items():
                if rule_id in shared.rules and shared.rules[rule_id] != text:
                    log.warning("Uploaded rule differs from the shared one; keeping the shared one.", rule=rule_id)
            missing = CatalogSnapshot(
                {rule_id: text for rule_id, text in local.rules.items() if rule_id not in shared.rules},
                local.disabled - shared.disabled,
            )
            added = await self.store.import_missing(missing, by=f"import from {self.files.state_dir}")
            document = {"index": self.store.index, "at": datetime_to_iso_millis(datetime.now(UTC))}
            await asyncio.to_thread(_write_atomically, marker, orjson.dumps(document))
        if added:
            log.info("Rule catalog imported into Elasticsearch.", index=self.store.index, added=added)
        return added

    async def sync(self) -> int:
        """Write what the index holds into the files; how many files changed."""
        async with self.lock:
            snapshot = await self.store.snapshot()
            changed = await asyncio.to_thread(self.files.mirror, snapshot)
        if changed:
            log.info("Rule catalog mirrored.", changed=changed, rules=len(snapshot.rules))
        return changed

    async def run(self, interval: float) -> None:
        """Mirror the index every ``interval`` seconds, until cancelled; a failed sync keeps the files as they are."""
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync()
            except Exception as exc:  # Elasticsearch down: the engine runs on with the files it has
                log.warning("Rule catalog sync failed; the engine keeps the mirrored rules.", error=_reason(exc))


def _rule_doc(rule_id: str) -> str:
    return f"rule:{rule_id}"


def _disabled_doc(rule_id: str) -> str:
    return f"disabled:{rule_id}"


def _stamp(by: str) -> dict[str, str]:
    return {"updated_at": datetime_to_iso_millis(datetime.now(UTC)), "updated_by": by}


def _imported_into(marker: Path) -> str | None:
    try:
        data = orjson.loads(marker.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return str(data.get("index")) if isinstance(data, dict) else None


def _reason(exc: Exception) -> str:
    return error_reason(exc) if isinstance(exc, ApiError) else repr(exc)


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f.name, path)
