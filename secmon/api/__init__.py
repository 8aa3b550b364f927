"""The HTTP API: alerts, rules and events for analysts, rule authors and agencies."""

from secmon.api.app import create_app
from secmon.api.services import ApiServices

__all__ = ["ApiServices", "create_app"]
