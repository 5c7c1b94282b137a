"""Connections: OAuth 2.0 with PKCE, API keys, token renewal, the API client (``server`` extra).

The public entry point is :class:`Connections`: the web routes use it, and a
host application's jobs call its :meth:`~Connections.client` (an
authenticated ``httpx2.AsyncClient`` on a connector's API),
:meth:`~Connections.get_access_token` and :meth:`~Connections.refresh_due`.
"""

from .._settings import ClientCredentials, Settings
from ._client import RETRY
from ._delivery import Deliverer, Listener, sign_webhook
from ._oauth import OAuthClient, OAuthEndpoints, TokenResponse
from ._service import Connections
from ._tokens import RefreshOutcome, RefreshReport

__all__ = [
    "RETRY",
    "ClientCredentials",
    "Connections",
    "Deliverer",
    "Listener",
    "OAuthClient",
    "OAuthEndpoints",
    "RefreshOutcome",
    "RefreshReport",
    "Settings",
    "TokenResponse",
    "sign_webhook",
]
