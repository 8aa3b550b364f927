"""The file source: follows files matching globs as they grow, across rotations and restarts.

A file is known by its device and inode plus a fingerprint of its first bytes, so a rename
(logrotate's default) keeps reading the old file to its end while the new one is read from its
start, and a recycled inode is not mistaken for the file it replaced. A file that shrinks was
truncated in place (copytruncate) and is read again from offset 0.

Each line's record key is ``dev:inode:generation:offset`` (the generation counts truncations),
so its document id never changes: the
checkpoint (the offset up to which lines are durable in the buffer) is written after the
pipeline accepted them, and lines read again after a crash land on the ids they had.

A stop reads the files to their current end and sends a pending multi-line message, for up to
``stop_grace`` seconds; what a stop cuts short is read at the next start, from the checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from secmon.collect.sources import SourceEnvironment
from secmon.collect.sources.checkpoints import load_checkpoints, matching_paths, save_checkpoints
from secmon.collect.sources.settings import FileSourceSettings
from secmon.collect.sources.stopping import finish_within
from secmon.collect.sources.syslog import TRUNCATED_TAG
from secmon.collect.topology import Agency, Pipeline, SourceContext
from secmon.events import Event, Record
from secmon.log import get_logger

log = get_logger(__name__)

_FINGERPRINT_BYTES = 256
_READ_BYTES = 1 << 20
_GONE_GRACE = 5.0  # seconds a renamed-away file is still read, for late writes to it


@dataclass(slots=True)
class _Line:
    text: str
    offset: int  # where the line starts
    cut: bool = False


@dataclass(slots=True)
class _Followed:
    """A file being read."""

    path: str
    handle: BinaryIO  # held open, so a file renamed away is still read to its end
    dev: int
    inode: int
    offset: int  # bytes durable in the buffer (the checkpoint)
    fingerprint: tuple[int, str]  # (bytes hashed, hash) of the file's start
    generation: int = 0  # times the file was truncated in place: part of each line's key
    read_to: int = 0  # bytes read; lines not yet complete stay in `partial`
    partial: bytes = b""
    multiline: list[_Line] = field(default_factory=list)
    multiline_since: float = 0.0
    gone_since: float | None = None  # renamed or deleted: read to the end, then close

    @property
    def identity(self) -> str:
        return f"{self.dev}:{self.inode}"

    def key(self, offset: int) -> str:
        return f"{self.identity}:{self.generation}:{offset}"


class FileSource:
    """Polls ``settings.include`` and submits new lines to ``pipeline``."""

    def __init__(self, component: str, settings: FileSourceSettings, pipeline: Pipeline, state_dir: Path) -> None:
        self.component = component
        self.settings = settings
        self.pipeline = pipeline
        agency = Agency(settings.agency, settings.agency_name) if settings.agency else None
        self.context = SourceContext(component, settings.format, agency, settings.dataset)
        self.checkpoint_path = state_dir / "checkpoints" / f"{component}.json"
        self._multiline = re.compile(settings.multiline_start) if settings.multiline_start else None
        self._files: dict[str, _Followed] = {}
        self._checkpoints = load_checkpoints(self.checkpoint_path)
        self._first_scan = True
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"file-source-{self.component}")

    async def stop(self) -> None:
        """Read what the files hold now (see the module docstring), then close them."""
        await finish_within(
            self._task,
            self._stopping,
            self.settings.stop_grace,
            component=self.component,
            cut_short="Stopping before the files were read to their end; the rest is read at the next start.",
        )
        self._save_checkpoints()
        for followed in self._files.values():
            followed.handle.close()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self.poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.poll_interval)
        await self.poll(final=True)

    async def poll(self, *, final: bool = False) -> int:
        """Look for new files and new data once; returns the number of lines submitted.

        ``final``: the last poll before a stop, which sends a pending multi-line message whatever its age.
        """
        self._discover()
        submitted = 0
        for followed in list(self._files.values()):
            submitted += await self._read(followed, final=final)
        self._save_checkpoints()
        return submitted

    # -- discovery -------------------------------------------------------------------------

    def _discover(self) -> None:
        present: set[str] = set()
        for path in matching_paths(self.settings.include, self.settings.exclude):
            try:
                stat = os.stat(path)
            except OSError:
                continue
            if not os.path.isfile(path):
                continue
            identity = f"{stat.st_dev}:{stat.st_ino}"
            present.add(identity)
            followed = self._files.get(identity)
            if followed is not None:
                followed.path = path  # a rename keeps the file, under its new name
                followed.gone_since = None
                continue
            try:
                handle = open(path, "rb")  # noqa: SIM115  (held open for the file's life)
            except OSError as exc:
                log.warning("Cannot open a file.", component=self.component, path=path, error=exc.strerror)
                continue
            saved = self._checkpoints.get(identity)
            generation = 0
            if saved is not None and _same_start(handle, saved) and int(saved["offset"]) <= stat.st_size:
                offset, generation = int(saved["offset"]), int(saved.get("generation", 0))
            elif self._first_scan and self.settings.start_at == "end" and saved is None:
                offset = stat.st_size
            else:
                offset = 0
            self._files[identity] = _Followed(
                path, handle, stat.st_dev, stat.st_ino, offset, _fingerprint(handle), generation, read_to=offset
            )
            log.info("Following a file.", component=self.component, path=path, offset=offset)
        self._first_scan = False
        for identity, followed in self._files.items():
            if identity not in present and followed.gone_since is None:
                followed.gone_since = time.monotonic()

    # -- reading ---------------------------------------------------------------------------

    async def _read(self, followed: _Followed, *, final: bool = False) -> int:
        handle = followed.handle
        size = os.fstat(handle.fileno()).st_size
        length, digest = followed.fingerprint
        if size < followed.read_to or _fingerprint(handle, length) != (length, digest):
            # Shrunk, or rewritten from the start (copytruncate, then new lines past the old end).
            log.info("A file was truncated; reading it again from the start.", path=followed.path)
            followed.offset = followed.read_to = 0
            followed.partial = b""
            followed.multiline = []
            followed.generation += 1
            followed.fingerprint = _fingerprint(handle)
        submitted = 0
        while followed.read_to < size:
            handle.seek(followed.read_to)
            chunk = handle.read(_READ_BYTES)
            if not chunk:
                break
            submitted += await self._submit(followed, self._split(followed, chunk))
        submitted += await self._flush_multiline(followed, force=final or followed.gone_since is not None)
        if followed.fingerprint[0] < _FINGERPRINT_BYTES:
            followed.fingerprint = _fingerprint(handle)  # the file grew: fingerprint more of it
        if followed.gone_since is not None and time.monotonic() - followed.gone_since > _GONE_GRACE:
            # Renamed or deleted, and read to its end: let it go.
            handle.close()
            del self._files[followed.identity]
            self._checkpoints.pop(followed.identity, None)
        return submitted

    def _split(self, followed: _Followed, chunk: bytes) -> list[_Line]:
        data = followed.partial + chunk
        start_offset = followed.read_to - len(followed.partial)
        followed.read_to += len(chunk)
        lines: list[_Line] = []
        position = 0
        limit = self.settings.max_line_bytes
        while (newline := data.find(b"\n", position)) >= 0:
            raw = data[position:newline].rstrip(b"\r")
            if raw:
                cut = len(raw) > limit
                lines.append(_Line(raw[:limit].decode("utf-8", "backslashreplace"), start_offset + position, cut))
            position = newline + 1
        followed.partial = data[position:]
        if len(followed.partial) > limit:  # a line with no end in sight: send what a line may hold
            lines.append(
                _Line(followed.partial[:limit].decode("utf-8", "backslashreplace"), start_offset + position, True)
            )
            followed.partial = b""
        return lines

    async def _submit(self, followed: _Followed, lines: list[_Line]) -> int:
        if self._multiline is not None:
            lines = self._join_multiline(followed, lines)
        if not lines:
            return 0
        records = [self._record(followed, line) for line in lines]
        await self.pipeline.submit(records, self.context)
        # Durable in the buffer: the checkpoint may move past these lines (but not past a
        # multi-line message still being gathered).
        pending_start = followed.multiline[0].offset if followed.multiline else None
        followed.offset = pending_start if pending_start is not None else followed.read_to - len(followed.partial)
        return len(records)

    def _join_multiline(self, followed: _Followed, lines: list[_Line]) -> list[_Line]:
        assert self._multiline is not None
        complete: list[_Line] = []
        for line in lines:
            if self._multiline.match(line.text) and followed.multiline:
                complete.append(_joined(followed.multiline))
                followed.multiline = []
            if not followed.multiline:
                followed.multiline_since = time.monotonic()
            followed.multiline.append(line)
        return complete

    async def _flush_multiline(self, followed: _Followed, *, force: bool) -> int:
        if not followed.multiline:
            return 0
        if not force and time.monotonic() - followed.multiline_since < self.settings.multiline_timeout:
            return 0
        message = _joined(followed.multiline)
        followed.multiline = []
        await self.pipeline.submit([self._record(followed, message)], self.context)
        followed.offset = followed.read_to - len(followed.partial)
        return 1

    def _record(self, followed: _Followed, line: _Line) -> Record:
        origin: Event = {"log": {"file": {"path": followed.path}, "offset": line.offset}}
        if line.cut:
            origin["tags"] = [TRUNCATED_TAG]
        return Record(line.text, origin, time.time(), key=followed.key(line.offset))

    # -- checkpoints -----------------------------------------------------------------------

    def _save_checkpoints(self) -> None:
        for followed in self._files.values():
            self._checkpoints[followed.identity] = {
                "path": followed.path,
                "offset": followed.offset,
                "fingerprint_bytes": followed.fingerprint[0],
                "fingerprint": followed.fingerprint[1],
                "generation": followed.generation,
            }
        save_checkpoints(self.checkpoint_path, self._checkpoints)


def _joined(lines: list[_Line]) -> _Line:
    return _Line("\n".join(line.text for line in lines), lines[0].offset, any(line.cut for line in lines))


def _fingerprint(handle: BinaryIO, length: int = _FINGERPRINT_BYTES) -> tuple[int, str]:
    """(n, hash of the first n bytes), n up to ``length``: tells a recycled inode from its file."""
    handle.seek(0)
    head = handle.read(length)
    return len(head), hashlib.blake2b(head, digest_size=8).hexdigest()


def _same_start(handle: BinaryIO, saved: dict[str, Any]) -> bool:
    """Whether ``handle`` starts with the bytes a checkpoint saw (so it is the same file)."""
    length = saved.get("fingerprint_bytes")
    if not isinstance(length, int):
        return False
    return _fingerprint(handle, length) == (length, saved.get("fingerprint"))


def build(component: str, settings: FileSourceSettings, environment: SourceEnvironment) -> FileSource:
    """The :data:`~secmon.collect.sources.SOURCES` entry of ``type: file``."""
    return FileSource(component, settings, environment.pipeline, environment.state_dir)
