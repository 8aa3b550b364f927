"""Reading an API key out of an Authorization header, in every form senders use."""

from __future__ import annotations

import base64
import binascii

from secmon.auth.keys import SECRET_PREFIX


def presented_secret(authorization: str) -> str | None:
    """The secret in an Authorization header, in any form log shippers send it.

    ``ApiKey <secret>``, ``ApiKey base64(<id>:<secret>)`` (Beats' ``api_key: "id:key"``,
    Elasticsearch clients' ``api_key=(id, key)``), ``Bearer <secret>``, and ``Basic`` with any
    user name and the secret as password.
    """
    scheme, _, credentials = authorization.strip().partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme == "bearer" or (scheme == "apikey" and credentials.startswith(f"{SECRET_PREFIX}_")):
        return credentials
    if scheme in ("apikey", "basic"):
        decoded = _base64(credentials)
        if decoded is not None and ":" in decoded:
            return decoded.partition(":")[2]
    return None


def _base64(text: str) -> str | None:
    """Standard or URL-safe base64, padded or not, decoded to text; None if it is not that."""
    standard = text.translate(_URLSAFE_TO_STANDARD) + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(standard, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
