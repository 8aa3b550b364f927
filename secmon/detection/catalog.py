"""The rule catalog: every rule the engine runs, where it comes from, and the rules users upload.

Rules come from the configured paths (``detection.rules``; the rules secmon ships are
``shipped``, others ``configured``) and the rules users upload. The uploaded rules and the ids of
disabled rules are shared by every instance: they are kept in Elasticsearch
(:mod:`secmon.detection.catalog_store`) and mirrored into each instance's ``state_dir``
(``<state_dir>/rules/<id>.yml``, ``<state_dir>/rules-disabled.json``), which the engine
(:class:`~secmon.detection.stage.DetectionStage`) reads through :class:`CatalogFiles` and
hot-reloads. A change is written to Elasticsearch, then to this instance's files at once; the
other instances mirror it within ``detection.reload_interval``. Reads answer from the files: what
this instance's engine runs.

Every rule is loaded the way the engine loads it (:func:`~secmon.detection.loader.load_text`
with secmon's pipeline, logsource table and placeholders), so a rule the catalog accepts loads
in the engine, and a rule it lists as not loaded is not matched there either.

Errors::

    CatalogError (RuleError's sibling under SecmonError)
    ├── RuleNotFound    no rule with that id
    ├── RuleConflict    the change is not possible for that rule (a shipped rule, a taken id)
    └── RuleRefused     the rule text does not load; ``problems`` carry the lines

A change when Elasticsearch cannot be reached raises the client's error (the API answers 503).
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from secmon.config import SHIPPED_RULES_DIR, DetectionSettings
from secmon.detection.catalog_store import SAFE_ID, CatalogMirror
from secmon.detection.correlation import CorrelationRule, load_correlations
from secmon.detection.detector import Detector
from secmon.detection.loader import load_text, rule_files
from secmon.detection.logsource import LogsourceKey, LogsourceMap
from secmon.detection.pipelines import RULES_DIR, build_pipeline, default_pipeline_files
from secmon.detection.rules import Rule, RuleProblem, RuleSet
from secmon.errors import SecmonError
from secmon.yaml_loader import SafeLoader

Origin = Literal["shipped", "configured", "uploaded"]
RuleType = Literal["sigma", "correlation"]
UPLOAD_PATH = "uploaded rule"  # the path RuleProblems of an upload name


class CatalogError(SecmonError):
    """A catalog change or look-up that cannot be done; the message says why."""


class RuleNotFound(CatalogError):
    """No rule has that id."""


class RuleConflict(CatalogError):
    """The change conflicts with the rule's origin or with another rule."""


class RuleRefused(CatalogError):
    """The rule text does not load; :attr:`problems` say where and why."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One rule of the catalog: metadata, where it is, whether it runs, and why not."""

    id: str
    title: str
    type: RuleType
    level: str
    status: str
    tags: tuple[str, ...]
    logsource: LogsourceKey  # product, category, service; all None for correlations
    path: str
    origin: Origin
    enabled: bool
    loaded: bool  # the engine compiled it; it is matched when also enabled
    problems: tuple[RuleProblem, ...] = ()
    description: str = ""
    author: str = ""


@dataclass(frozen=True, slots=True)
class RuleSource:
    """A rule with the text of its file."""

    info: RuleInfo
    yaml: str


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded rule, and the text of the uploaded rule of the same id it replaced."""

    info: RuleInfo
    replaced: str | None


@dataclass(frozen=True, slots=True)
class Listing:
    """The catalog: its rules, and problems of files in which no rule could even be named."""

    rules: list[RuleInfo]
    problems: list[RuleProblem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TestMatch:
    """An event a rule matched: its position in the events given, its id if known, the rules."""

    position: int
    event_id: str | None
    rule_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RuleTest:
    """What testing rules on events found."""

    rule_ids: tuple[str, ...]
    scanned: int
    matches: list[TestMatch]


@dataclass(frozen=True, slots=True)
class _File:
    """One rule file, read and loaded; cached by modification time and size."""

    path: Path
    origin: Origin
    text: str
    documents: list[dict[str, Any]]
    items: list[Rule | RuleProblem]


class RuleCatalog:
    """The rules of ``settings.rules`` and the shared uploaded rules, as mirrored into ``state_dir``.

    Reads (:meth:`listing`, :meth:`get`, :meth:`test`) read files and run pySigma: call them in
    a thread from async code; a lock makes each atomic with respect to the others in this process.
    Changes (:meth:`upload`, :meth:`set_enabled`, :meth:`delete`) are coroutines: they write to
    Elasticsearch through ``mirror``, then to this instance's files.
    """

    def __init__(self, settings: DetectionSettings, mirror: CatalogMirror, *, rules_dir: Path = RULES_DIR) -> None:
        self.settings = settings
        self.mirror = mirror
        self.files = mirror.files
        self.files.uploaded.mkdir(parents=True, exist_ok=True)
        self.logsources = LogsourceMap.load(rules_dir / "logsources.yml")
        self.pipeline = build_pipeline(self.logsources, default_pipeline_files(rules_dir), settings.placeholders)
        self._lock = threading.RLock()
        self._cache: dict[Path, tuple[tuple[int, int], _File]] = {}
        self._correlations: tuple[tuple[object, ...], list[CorrelationRule], list[RuleProblem]] | None = None

    # -- reading ---------------------------------------------------------------------------------

    def listing(self) -> Listing:
        """Every rule, in the engine's load order."""
        with self._lock:
            return self._listing()

    def get(self, rule_id: str) -> RuleSource:
        """One rule and the text of its file; :class:`RuleNotFound` otherwise."""
        with self._lock:
            info = self._find(rule_id)
            return RuleSource(info, Path(info.path).read_text(encoding="utf-8"))

    # -- changing --------------------------------------------------------------------------------

    async def upload(self, text: str, *, by: str = "") -> Upload:
        """Validate one rule as the engine loads it and share it; ``by`` says who uploaded it.

        An uploaded rule with the same id is replaced; an id of a shipped or configured rule is a
        :class:`RuleConflict`; a rule that does not load is :class:`RuleRefused` with its lines.
        """
        rule_id = await asyncio.to_thread(self._checked_upload, text)
        async with self.mirror.lock:
            replaced = await self.mirror.store.put_rule(rule_id, text, by)
            await asyncio.to_thread(self.files.write_rule, rule_id, text)
        return Upload(await asyncio.to_thread(self._find_locked, rule_id), replaced)

    async def set_enabled(self, rule_id: str, enabled: bool, *, by: str = "") -> tuple[RuleInfo, bool]:
        """Enable or disable a rule everywhere; the rule after the change and whether it was enabled before."""
        before = await self._find_shared(rule_id)
        async with self.mirror.lock:
            was_disabled = await self.mirror.store.set_disabled(rule_id, not enabled, by)
            await asyncio.to_thread(self.files.set_disabled, rule_id, not enabled)
        return replace(before, enabled=enabled), not was_disabled

    async def delete(self, rule_id: str) -> RuleInfo:
        """Remove an uploaded rule everywhere (shipped and configured rules can only be disabled); the rule removed."""
        info = await self._find_shared(rule_id)
        if info.origin != "uploaded":
            raise RuleConflict(
                f"rule {rule_id} is a {info.origin} rule ({info.path}): only uploaded rules can be deleted; "
                "disable it instead"
            )
        async with self.mirror.lock:
            await self.mirror.store.delete_rule(rule_id)
            await asyncio.to_thread(self.files.remove_rule, rule_id)
        return info

    # -- testing ---------------------------------------------------------------------------------

    def test(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        text: str | None = None,
        rule_id: str | None = None,
        event_ids: Sequence[str | None] | None = None,
    ) -> RuleTest:
        """Match ``events`` against one rule alone: the ``text`` of a rule, or the catalog's ``rule_id``."""
        if text is not None:
            rules = self._loaded(text, UPLOAD_PATH)
        elif rule_id is not None:
            with self._lock:
                source = self.get(rule_id)
            if source.info.type == "correlation":
                raise RuleRefused(
                    [RuleProblem(source.info.path, "a correlation rule is not matched against single events", "sigma")]
                )
            rules = [r for r in self._loaded(source.yaml, source.info.path) if r.id == rule_id]
        else:
            raise ValueError("give the text of a rule or a rule id")
        detector = Detector(RuleSet(rules=rules), self.logsources)
        matches = []
        for position, event in enumerate(events):
            matched = detector.match(event)
            if matched:
                event_id = event_ids[position] if event_ids is not None else _event_id(event)
                matches.append(TestMatch(position, event_id, tuple(r.id for r in matched)))
        return RuleTest(tuple(r.id for r in rules), len(events), matches)

    # -- internals -------------------------------------------------------------------------------

    def _find_locked(self, rule_id: str) -> RuleInfo:
        with self._lock:
            return self._find(rule_id)

    async def _find_shared(self, rule_id: str) -> RuleInfo:
        """A rule of this instance's files, or else of the index (uploaded on another instance a moment ago)."""
        try:
            return await asyncio.to_thread(self._find_locked, rule_id)
        except RuleNotFound:
            await self.mirror.sync()
        return await asyncio.to_thread(self._find_locked, rule_id)

    def _checked_upload(self, text: str) -> str:
        """The id of the one rule of ``text``, which loads and does not take a shipped or configured rule's id."""
        with self._lock:
            rule_id = self._validate(text)
            for info in self._listing().rules:
                if info.id == rule_id and info.origin != "uploaded":
                    raise RuleConflict(
                        f"rule id {rule_id} is taken by the {info.origin} rule {info.path}; "
                        "give the rule a new id, or disable that one"
                    )
            return rule_id

    def _find(self, rule_id: str) -> RuleInfo:
        for info in self._listing().rules:
            if info.id == rule_id:
                return info
        raise RuleNotFound(f"no rule {rule_id}")

    def _loaded(self, text: str, path: str) -> list[Rule]:
        """The detection rules of ``text``; :class:`RuleRefused` unless all of it loads."""
        items = load_text(text, path, self.pipeline)
        problems = [item for item in items if isinstance(item, RuleProblem)]
        if problems:
            raise RuleRefused(problems)
        rules = [item for item in items if isinstance(item, Rule)]
        if not rules:
            reason = "no detection rule in the text (a correlation rule is not matched against single events)"
            raise RuleRefused([RuleProblem(path, reason, "sigma", 1)])
        return rules

    def _validate(self, text: str) -> str:
        """The id of the one rule of ``text``, which loads as the engine would load it."""
        documents = _documents(text)
        correlations = [d for d in documents if "correlation" in d]
        if correlations and len(documents) == 1:
            return self._validate_correlation(text, correlations[0])
        if correlations:
            raise RuleRefused([RuleProblem(UPLOAD_PATH, "upload a correlation rule on its own", "sigma", 1)])
        rules = self._loaded(text, UPLOAD_PATH)
        if len(rules) != 1:
            reason = f"upload one rule at a time; this text holds {len(rules)}"
            raise RuleRefused([RuleProblem(UPLOAD_PATH, reason, "sigma", 1)])
        return _checked_id(rules[0].id if not rules[0].id.startswith("file:") else None)

    def _validate_correlation(self, text: str, document: Mapping[str, Any]) -> str:
        rule_id = _checked_id(str(document["id"]) if document.get("id") else None)
        base = [r for f in self._files() for r in f.items if isinstance(r, Rule)]
        target = self.files.uploaded / f"{rule_id}.yml"
        others = [f.path for f in self._files() if f.path != target]
        with tempfile.TemporaryDirectory() as folder:
            candidate = Path(folder) / f"{rule_id}.yml"
            candidate.write_text(text, encoding="utf-8")
            loaded, problems = load_correlations([*others, candidate], self.pipeline, base)
        mine = [replace(p, path=UPLOAD_PATH) for p in problems if p.path == str(candidate)]
        if mine:
            raise RuleRefused(mine)
        if not any(c.id == rule_id for c in loaded):
            raise RuleRefused([RuleProblem(UPLOAD_PATH, "the correlation rule did not load", "correlation", 1)])
        return rule_id

    def _files(self) -> list[_File]:
        """Every rule file, read and loaded (from the cache when unchanged)."""
        paths = self.files.rule_paths(self.settings)
        found: list[_File] = []
        seen: set[Path] = set()
        for root in paths:
            origin = self._origin(root)
            for path in rule_files([root]):
                if path in seen:
                    continue
                seen.add(path)
                try:
                    stat = path.stat()
                except OSError:
                    continue
                stamp = (stat.st_mtime_ns, stat.st_size)
                cached = self._cache.get(path)
                if cached is None or cached[0] != stamp:
                    cached = (stamp, self._read(path, origin))
                    self._cache[path] = cached
                found.append(cached[1])
        for gone in set(self._cache) - seen:
            del self._cache[gone]
        return found

    def _origin(self, root: Path) -> Origin:
        resolved = root.resolve()
        if resolved == self.files.uploaded.resolve():
            return "uploaded"
        shipped = SHIPPED_RULES_DIR.resolve()
        return "shipped" if resolved == shipped or shipped in resolved.parents else "configured"

    def _read(self, path: Path, origin: Origin) -> _File:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return _File(path, origin, "", [], [RuleProblem(str(path), f"cannot read: {exc}", "io")])
        return _File(path, origin, text, _documents(text), load_text(text, str(path), self.pipeline))

    def _correlations_of(
        self, files: Sequence[_File], rules: list[Rule]
    ) -> tuple[list[CorrelationRule], list[RuleProblem]]:
        key: tuple[object, ...] = tuple((f.path, self._cache[f.path][0]) for f in files)
        if self._correlations is None or self._correlations[0] != key:
            if any("correlation" in d for f in files for d in f.documents):
                loaded, problems = load_correlations([f.path for f in files], self.pipeline, rules)
            else:
                loaded, problems = [], []
            self._correlations = (key, loaded, problems)
        return self._correlations[1], self._correlations[2]

    def _listing(self) -> Listing:
        files = self._files()
        disabled = self.files.disabled()
        seen: set[str] = set()
        base: list[Rule] = []
        for file in files:  # the engine keeps the first rule of an id and reports the others
            for item in file.items:
                if isinstance(item, Rule) and item.id not in seen:
                    seen.add(item.id)
                    base.append(item)
        correlations, correlation_problems = self._correlations_of(files, base)
        loaded_correlations = {c.id: c for c in correlations}
        engine_rules = {(r.id, r.path): r for r in base}
        infos: list[RuleInfo] = []
        orphans: list[RuleProblem] = []
        for file in files:
            problems = tuple(item for item in file.items if isinstance(item, RuleProblem))
            own_correlation_problems = tuple(p for p in correlation_problems if p.path == str(file.path))
            named = False
            for document in file.documents:
                if "action" in document:  # a Sigma collection's global/reset/repeat document
                    continue
                named = True
                info = _info(
                    document,
                    file,
                    engine_rules,
                    loaded_correlations,
                    problems,
                    own_correlation_problems,
                    disabled,
                )
                infos.append(info)
            if not named and problems:
                orphans.extend(problems)
        return Listing(infos, orphans)


def _info(  # noqa: PLR0917 - one call site, arguments in the order they are made
    document: Mapping[str, Any],
    file: _File,
    engine_rules: Mapping[tuple[str, str], Rule],
    correlations: Mapping[str, CorrelationRule],
    problems: tuple[RuleProblem, ...],
    correlation_problems: tuple[RuleProblem, ...],
    disabled: frozenset[str],
) -> RuleInfo:
    path = str(file.path)
    rule_id = str(document.get("id") or f"file:{path}")
    if "correlation" in document:
        correlation = correlations.get(rule_id)
        loaded = correlation is not None and correlation.path == path
        return RuleInfo(
            id=rule_id,
            title=str(document.get("title") or file.path.stem),
            type="correlation",
            level=correlation.level if correlation else str(document.get("level") or "medium"),
            status=str(document.get("status") or ""),
            tags=tuple(str(t) for t in document.get("tags") or ()),
            logsource=(None, None, None),
            path=path,
            origin=file.origin,
            enabled=rule_id not in disabled,
            loaded=loaded,
            problems=() if loaded else correlation_problems,
            description=str(document.get("description") or ""),
            author=str(document.get("author") or ""),
        )
    rule = engine_rules.get((rule_id, path))
    if rule is not None:
        return RuleInfo(
            id=rule.id,
            title=rule.title,
            type="sigma",
            level=rule.level,
            status=rule.status,
            tags=rule.tags,
            logsource=rule.logsource,
            path=path,
            origin=file.origin,
            enabled=rule.id not in disabled,
            loaded=True,
            description=rule.description,
            author=rule.author,
        )
    logsource = document.get("logsource") if isinstance(document.get("logsource"), dict) else {}
    assert isinstance(logsource, dict)
    loaded_elsewhere = any(isinstance(i, Rule) and i.id == rule_id for i in file.items)
    why = problems or (
        (RuleProblem(path, f"duplicate rule id {rule_id} (loaded from another file)", "duplicate"),)
        if loaded_elsewhere
        else ()
    )
    return RuleInfo(
        id=rule_id,
        title=str(document.get("title") or file.path.stem),
        type="sigma",
        level=str(document.get("level") or "medium"),
        status=str(document.get("status") or ""),
        tags=tuple(str(t) for t in document.get("tags") or ()),
        logsource=(
            _optional(logsource.get("product")),
            _optional(logsource.get("category")),
            _optional(logsource.get("service")),
        ),
        path=path,
        origin=file.origin,
        enabled=rule_id not in disabled,
        loaded=False,
        problems=why,
        description=str(document.get("description") or ""),
        author=str(document.get("author") or ""),
    )


def _optional(value: object) -> str | None:
    return str(value) if value is not None else None


def _documents(text: str) -> list[dict[str, Any]]:
    """The mapping documents of a YAML text; none when it does not parse (the loader reports it)."""
    try:
        return [d for d in yaml.load_all(text, Loader=SafeLoader) if isinstance(d, dict)]
    except yaml.YAMLError:
        return []


def _checked_id(rule_id: str | None) -> str:
    if rule_id is None:
        raise RuleRefused([RuleProblem(UPLOAD_PATH, "the rule needs an id (a UUID) to be uploaded", "sigma", 1)])
    if not SAFE_ID.match(rule_id):
        raise RuleRefused([RuleProblem(UPLOAD_PATH, f"rule id {rule_id!r} is not a UUID", "sigma", 1)])
    return rule_id


def _event_id(event: Mapping[str, Any]) -> str | None:
    value = event.get("id", event.get("_id"))
    return str(value) if isinstance(value, str | int) else None
