"""The web layer: a mountable Starlette app with the integration routes (``server`` extra)."""

from ._app import ROUTES, create_app
from ._security import Authenticator, is_loopback, local_tenant

__all__ = ["ROUTES", "Authenticator", "create_app", "is_loopback", "local_tenant"]
