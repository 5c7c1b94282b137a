"""The web layer: a mountable Starlette app with the integration routes (``server`` extra)."""

from ._app import ROUTES
from ._create import create_app
from ._heap import freeze_after_startup
from ._security import (
    Action,
    Authenticator,
    Authorizer,
    Identity,
    by_role,
    identity_of,
    is_loopback,
    local_tenant,
)
from ._server import AccessLogFilter

__all__ = [
    "ROUTES",
    "AccessLogFilter",
    "Action",
    "Authenticator",
    "Authorizer",
    "Identity",
    "by_role",
    "create_app",
    "freeze_after_startup",
    "identity_of",
    "is_loopback",
    "local_tenant",
]
