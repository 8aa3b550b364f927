"""The API application: routers per resource, auth as dependencies, errors as problem details."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry

from secmon import __version__
from secmon.api import problems
from secmon.api.middleware import Guard
from secmon.api.routes import alerts, events, keys, notifications, ops, rules
from secmon.api.services import ApiServices

DESCRIPTION = """\
Alerts, rules and events of secmon, for analysts, rule authors and agencies.

Authenticate with an API key (`secmon apikey create --role analyst --name alice`):
`Authorization: Bearer <key>`. A key scoped to agencies sees only their alerts and events.
Errors are problem details (RFC 9457) whose `detail` says what to change.
"""


def create_app(services: ApiServices) -> FastAPI:
    """The API over ``services``."""
    # /docs and /redoc load Swagger UI and ReDoc from files shipped in fastapi-offline, not from a
    # CDN, so that they work on a SOC network without internet; so does Swagger UI's validator
    # badge, which would ask validator.swagger.io about the schema, and is turned off.
    app = FastAPIOffline(
        title="secmon API",
        version=__version__,
        description=DESCRIPTION,
        static_url="/docs/assets",
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.services = services
    registry = CollectorRegistry()
    services.registries.append(registry)
    for router in (ops.router, alerts.router, events.router, keys.router, notifications.router, rules.router):
        app.include_router(router)
    problems.install(app)
    app.add_middleware(Guard, max_body_bytes=services.settings.api.max_body_bytes, registry=registry)
    return app
