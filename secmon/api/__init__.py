"""The HTTP API: alerts, rules and events for analysts, rule authors and agencies.

The app is imported when first asked for: every ``secmon`` command imports this package (for
its response schemas), and FastAPI with the routes costs a second of start-up that
``secmon detect`` or ``secmon alerts`` should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from secmon.api.app import create_app
    from secmon.api.services import ApiServices

__all__ = ["ApiServices", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from secmon.api.app import create_app

        return create_app
    if name == "ApiServices":
        from secmon.api.services import ApiServices

        return ApiServices
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
