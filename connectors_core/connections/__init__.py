"""Connections: OAuth 2.0 with PKCE, API keys, token refresh (the ``server`` extra).

The public entry point is :class:`Connections`; its
:meth:`~Connections.get_access_token` is what a host application's jobs call.
"""

from .._settings import ClientCredentials, Settings
from ._oauth import OAuthClient, OAuthEndpoints, TokenResponse
from ._service import Connections

__all__ = [
    "ClientCredentials",
    "Connections",
    "OAuthClient",
    "OAuthEndpoints",
    "Settings",
    "TokenResponse",
]
