"""API keys: one store for the whole service, kept in Elasticsearch (index ``<prefix>-apikeys``).

A key is shown once, when it is created: ``secmon_<id>_<random>``. Only its SHA-256 is stored.
Keys are 256-bit random strings, so a fast hash is the right one: there is nothing to guess that
a slow hash would protect, and verification stays cheap enough for every ingest request.

Verified keys are cached in memory for ``ttl`` seconds and unknown or wrong keys for
``miss_ttl``, so neither busy senders nor a flood of bad keys reach Elasticsearch per request.
A revocation takes effect at once in the process that revokes, and within ``ttl`` elsewhere.
While Elasticsearch cannot be reached, a key verified before keeps working (its cached answer
is used past its TTL) and an unknown one raises :class:`KeyStoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch, NotFoundError

from secmon.errors import StoreError
from secmon.log import get_logger
from secmon.store.errors import error_reason
from secmon.store.indices import ensure_index
from secmon.store.names import IndexNames
from secmon.timestamps import datetime_to_iso_millis

log = get_logger(__name__)

SECRET_PREFIX = "secmon"
_ID_BYTES = 8  # 16 hex characters: no "_", so the id is found without ambiguity
_RANDOM_BYTES = 32  # 43 URL-safe characters
_SECRET = re.compile(rf"{SECRET_PREFIX}_([0-9a-f]{{{2 * _ID_BYTES}}})_([A-Za-z0-9_-]{{32,128}})")
_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "name": {"type": "keyword"},
        "role": {"type": "keyword"},
        "agencies": {"type": "keyword"},
        "created": {"type": "date"},
        "revoked": {"type": "boolean"},
        "revoked_at": {"type": "date"},
        # Looked up by key id, never searched: no index, no doc values.
        "secret_sha256": {"type": "keyword", "index": False, "doc_values": False},
    },
}


class Role(StrEnum):
    """What a key may do."""

    ADMIN = "admin"  # everything, for every agency
    ANALYST = "analyst"  # triage alerts of its agencies
    RULE_AUTHOR = "rule_author"  # write and test rules
    AGENCY = "agency"  # send events as one of its agencies


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as the service knows it; the secret itself is never kept."""

    id: str
    name: str
    role: Role
    agencies: tuple[str, ...]
    created: datetime
    revoked: bool = False

    @property
    def scope(self) -> tuple[str, ...] | None:
        """The agencies whose data this key reads; None for all (admin keys, and keys with no agency:
        the monitoring team's)."""
        return None if self.role is Role.ADMIN or not self.agencies else self.agencies

    def covers(self, agency: str) -> bool:
        """True when this key may act for ``agency``: an admin key for any, others for their own."""
        return self.role is Role.ADMIN or agency in self.agencies


class KeyStoreUnavailable(StoreError):
    """Elasticsearch could not be asked about a key, and no earlier answer about it is cached."""


@dataclass(slots=True)
class _Cached:
    key_id: str
    key: ApiKey | None  # None: no such key, a wrong secret, or revoked
    expires: float


def apikeys_index(names: IndexNames) -> str:
    """The index holding the keys (a plain index with a strict mapping)."""
    return f"{names.prefix}-apikeys"


class KeyStore:
    """Creates, verifies, lists and revokes API keys; see the module docstring."""

    def __init__(
        self,
        client: AsyncElasticsearch,
        names: IndexNames,
        *,
        ttl: float = 30.0,
        miss_ttl: float = 5.0,
        max_cached: int = 10_000,
        lookup_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index = apikeys_index(names)
        self._client = client
        # A lookup sits in the path of an ingest request: fail fast, then fall back on the cache.
        self._lookup_client = client.options(request_timeout=lookup_timeout, max_retries=0)
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._max_cached = max_cached
        self._clock = clock
        self._cache: dict[str, _Cached] = {}  # by SHA-256 of the secret
        self._lookups: dict[str, asyncio.Future[ApiKey | None]] = {}

    async def ensure_index(self) -> None:
        """Create the keys index, or bring its mapping up to date; safe to run at every start."""
        await ensure_index(self._client, self.index, _MAPPING)

    async def create(self, role: Role | str, *, agencies: Iterable[str] = (), name: str) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is returned only here and never stored."""
        role = Role(role)
        agencies = tuple(dict.fromkeys(agency.strip() for agency in agencies))
        if not name.strip():
            raise ValueError("an API key needs a name saying who or what uses it")
        if any(not agency for agency in agencies):
            raise ValueError("an agency id cannot be empty")
        if role is Role.AGENCY and not agencies:
            raise ValueError("an agency key must name at least one agency")
        key_id = secrets.token_hex(_ID_BYTES)
        secret = f"{SECRET_PREFIX}_{key_id}_{secrets.token_urlsafe(_RANDOM_BYTES)}"
        now = datetime.now(UTC)
        created = now.replace(microsecond=now.microsecond // 1000 * 1000)  # what Elasticsearch keeps
        key = ApiKey(key_id, name.strip(), role, agencies, created)
        document = {
            "name": key.name,
            "role": key.role.value,
            "agencies": list(key.agencies),
            "created": datetime_to_iso_millis(created),
            "revoked": False,
            "secret_sha256": _digest(secret),
        }
        with _store_errors("store a new API key"):
            await self._client.create(index=self.index, id=key_id, document=document, refresh="wait_for")
        self._remember(_digest(secret), key_id, key, self._ttl)
        log.info("API key created.", id=key_id, name=key.name, role=key.role.value, agencies=",".join(agencies))
        return key, secret

    async def verify(self, secret: str) -> ApiKey | None:
        """The key ``secret`` belongs to, or None for an unknown, malformed, wrong or revoked one.

        Raises :class:`KeyStoreUnavailable` when Elasticsearch cannot answer and nothing is cached.
        """
        identity = secret_digest(secret)
        return None if identity is None else await self.verify_digest(*identity)

    async def verify_digest(self, key_id: str, digest: str) -> ApiKey | None:
        """The key ``key_id`` if ``digest`` is its secret's SHA-256 (see :func:`secret_digest`), as :meth:`verify`.

        A console session keeps these two instead of the secret itself.
        """
        cached = self._cache.get(digest)
        if cached is not None and cached.expires > self._clock():
            return cached.key
        # One lookup per secret at a time, however many requests carry it.
        lookup = self._lookups.get(digest)
        if lookup is None:
            lookup = asyncio.ensure_future(self._lookup(key_id, digest))
            self._lookups[digest] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(digest, None))
        return await asyncio.shield(lookup)

    async def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with _store_errors("list the API keys"):
            try:
                response = await self._client.search(
                    index=self.index,
                    size=10_000,
                    sort=[{"created": "asc"}],
                    source_excludes=["secret_sha256"],
                    query={"match_all": {}},
                )
            except NotFoundError:
                return []
        return [_key(hit["_id"], hit["_source"]) for hit in response["hits"]["hits"]]

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key for good; False when there is no key ``key_id``."""
        if not re.fullmatch(r"[0-9a-f]+", key_id):
            return False
        with _store_errors("revoke an API key"):
            try:
                await self._client.update(
                    index=self.index,
                    id=key_id,
                    doc={"revoked": True, "revoked_at": datetime_to_iso_millis(datetime.now(UTC))},
                    refresh="wait_for",
                )
            except NotFoundError:
                return False
        for digest in [digest for digest, entry in self._cache.items() if entry.key_id == key_id]:
            self._remember(digest, key_id, None, self._ttl)
        log.info("API key revoked.", id=key_id)
        return True

    # -- verification ----------------------------------------------------------------------

    async def _lookup(self, key_id: str, digest: str) -> ApiKey | None:
        try:
            response = await self._lookup_client.get(index=self.index, id=key_id)
        except NotFoundError:
            self._remember(digest, key_id, None, self._miss_ttl)
            return None
        except (ApiError, TransportError) as exc:
            stale = self._cache.get(digest)
            if stale is None or stale.key is None:
                raise KeyStoreUnavailable(f"cannot verify an API key: Elasticsearch did not answer ({exc})") from None
            log.warning("Elasticsearch did not answer; trusting an API key verified before.", id=key_id, error=exc)
            self._remember(digest, key_id, stale.key, self._miss_ttl)  # ask again soon, not at every request
            return stale.key
        source = response["_source"]
        stored = str(source.get("secret_sha256", ""))
        key = _key(key_id, source) if hmac.compare_digest(stored, digest) else None
        if key is not None and key.revoked:
            key = None
        self._remember(digest, key_id, key, self._ttl if key is not None else self._miss_ttl)
        return key

    def _remember(self, digest: str, key_id: str, key: ApiKey | None, ttl: float) -> None:
        now = self._clock()
        self._cache.pop(digest, None)  # re-inserted last: the oldest entries come first
        if len(self._cache) >= self._max_cached:
            for stale in [d for d, entry in self._cache.items() if entry.expires <= now]:
                del self._cache[stale]
            while len(self._cache) >= self._max_cached:
                del self._cache[next(iter(self._cache))]
        self._cache[digest] = _Cached(key_id, key, now + ttl)


@contextlib.contextmanager
def _store_errors(action: str) -> Iterator[None]:
    """Elasticsearch's refusals to ``action`` become :class:`StoreError`; not-found stays for the caller."""
    try:
        yield
    except NotFoundError:
        raise
    except ApiError as exc:
        raise StoreError(f"Elasticsearch refused to {action}: {error_reason(exc)}") from None
    except TransportError as exc:
        raise StoreError(f"Elasticsearch could not be reached to {action}: {exc.message}") from None


def secret_digest(secret: str) -> tuple[str, str] | None:
    """The key id and SHA-256 a well-formed ``secret`` is verified by; None for a malformed one."""
    match = _SECRET.fullmatch(secret)
    return None if match is None else (match[1], _digest(secret))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _key(key_id: str, source: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=key_id,
        name=str(source["name"]),
        role=Role(source["role"]),
        agencies=tuple(source.get("agencies") or ()),
        created=datetime.fromisoformat(source["created"]),
        revoked=bool(source.get("revoked", False)),
    )
