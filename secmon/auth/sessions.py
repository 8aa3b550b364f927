"""Console sessions: an API key exchanged once for a cookie, kept in Elasticsearch (``<prefix>-sessions``).

The browser holds only the session token, in an HttpOnly cookie; the store keeps its SHA-256, the
key it stands for (id and the secret's SHA-256, never the secret), an absolute expiry and the
CSRF token the console's pages carry. Every request checks the key again through the
:class:`~secmon.auth.keys.KeyStore`, so a revoked key ends its sessions within the key cache's TTL.
Sessions live in Elasticsearch so that every API process (scale-out runs several) honours them,
and a sign-out ends the session everywhere; each process caches a lookup for ``ttl`` seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import AsyncElasticsearch, NotFoundError

from secmon.auth.keys import ApiKey, KeyStore, secret_digest
from secmon.store.indices import ensure_index
from secmon.store.names import IndexNames
from secmon.timestamps import datetime_to_iso_millis

_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "key_id": {"type": "keyword"},
        "key_name": {"type": "keyword"},
        "key_sha256": {"type": "keyword", "index": False, "doc_values": False},
        "csrf": {"type": "keyword", "index": False, "doc_values": False},
        "created": {"type": "date"},
        "expires": {"type": "date"},
    },
}


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: the key it acts as, its CSRF token and when it ends."""

    key: ApiKey
    csrf: str
    expires: datetime


@dataclass(frozen=True, slots=True)
class _Stored:
    key_id: str
    key_sha256: str
    csrf: str
    expires: datetime


def sessions_index(names: IndexNames) -> str:
    return f"{names.prefix}-sessions"


class SessionStore:
    """Opens, reads and ends console sessions; see the module docstring."""

    def __init__(
        self,
        client: AsyncElasticsearch,
        names: IndexNames,
        keys: KeyStore,
        *,
        lifetime: timedelta = timedelta(hours=8),
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index = sessions_index(names)
        self.lifetime = lifetime
        self._client = client
        self._keys = keys
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, _Stored | None]] = {}

    async def ensure_index(self) -> None:
        await ensure_index(self._client, self.index, _MAPPING)

    async def open(self, secret: str) -> tuple[str, Session] | None:
        """A new session for the key ``secret`` (its token and the session); None for a key that does not verify."""
        identity = secret_digest(secret)
        if identity is None:
            return None
        key = await self._keys.verify_digest(*identity)
        if key is None:
            return None
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        stored = _Stored(key.id, identity[1], secrets.token_urlsafe(32), now + self.lifetime)
        document = {
            "key_id": key.id,
            "key_name": key.name,
            "key_sha256": stored.key_sha256,
            "csrf": stored.csrf,
            "created": datetime_to_iso_millis(now),
            "expires": datetime_to_iso_millis(stored.expires),
        }
        await self._client.create(index=self.index, id=_digest(token), document=document, refresh="wait_for")
        self._remember(_digest(token), stored)
        return token, Session(key, stored.csrf, stored.expires)

    async def get(self, token: str) -> Session | None:
        """The live session of ``token``: None when unknown, ended, expired, or its key revoked."""
        digest = _digest(token)
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > self._clock():
            stored = cached[1]
        else:
            stored = await self._read(digest)
            self._remember(digest, stored)
        if stored is None or stored.expires <= datetime.now(UTC):
            return None
        key = await self._keys.verify_digest(stored.key_id, stored.key_sha256)
        return None if key is None else Session(key, stored.csrf, stored.expires)

    async def end(self, token: str) -> None:
        """Sign out: the session is gone, here at once and in other processes within ``ttl``."""
        digest = _digest(token)
        self._remember(digest, None)
        with contextlib.suppress(NotFoundError):
            await self._client.delete(index=self.index, id=digest, refresh="wait_for")

    async def _read(self, digest: str) -> _Stored | None:
        try:
            response = await self._client.get(index=self.index, id=digest)
        except NotFoundError:
            return None
        source = response["_source"]
        return _Stored(
            str(source["key_id"]),
            str(source["key_sha256"]),
            str(source["csrf"]),
            datetime.fromisoformat(source["expires"]),
        )

    def _remember(self, digest: str, stored: _Stored | None) -> None:
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (self._clock() + self._ttl, stored)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()
