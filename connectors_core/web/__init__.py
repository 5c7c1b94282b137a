"""The web layer: a mountable Starlette app with the integration routes (``server`` extra)."""

from ._app import ROUTES, create_app
from ._security import Authenticator, is_loopback, local_tenant
from ._server import AccessLogFilter

__all__ = [
    "ROUTES",
    "AccessLogFilter",
    "Authenticator",
    "create_app",
    "is_loopback",
    "local_tenant",
]
