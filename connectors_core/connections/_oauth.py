"""The OAuth 2.0 client side, on Authlib: authorize URL, code exchange, refresh, revoke.

Kept apart from the routes and the store. Every failure becomes one of the
stable errors of :mod:`connectors_core._exceptions`:

* a timeout, a network error, HTTP 5xx or 429 → :class:`ProviderUnavailableError`
  (transient: try again later, never ask the user to reconnect);
* ``invalid_grant`` or HTTP 401 on refresh → :class:`NeedsReauthError`;
* any other OAuth error → :class:`IntegrationError` with reason ``exchange_failed``
  or ``refresh_failed``.

Messages carry the provider's error code, never a token, a secret or a verifier.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs
import httpx2
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from .._exceptions import IntegrationError, NeedsReauthError, ProviderUnavailableError
from .._manifest import Connector, OAuth
from .._settings import ClientCredentials, Settings
from ..store import TokenSet

__all__ = ["OAuthClient", "OAuthEndpoints", "TokenResponse", "new_state", "new_verifier"]


def new_state() -> str:
    """A fresh, unguessable OAuth ``state``."""
    return secrets.token_urlsafe(32)


def new_verifier() -> str:
    """A fresh PKCE code verifier (RFC 7636: 43 to 128 characters)."""
    return secrets.token_urlsafe(64)


@attrs.frozen
class OAuthEndpoints:
    """Where a connector's provider is reached (the manifest's, or a configured base URL)."""

    authorize_url: str
    token_url: str
    revocation_url: str | None

    @classmethod
    def of(cls, connector: Connector, settings: Settings) -> OAuthEndpoints:
        """The endpoints of ``connector``.

        ``CONNECTORS_<ID>_BASE_URL`` moves them all to another origin (keeping
        their paths); ``CONNECTORS_<ID>_AUTHORIZE_URL``, ``_TOKEN_URL`` and
        ``_REVOCATION_URL`` replace one each.
        """
        auth = connector.auth
        assert isinstance(auth, OAuth)
        explicit = {
            name: settings.connector_setting(connector.id, name)
            for name in ("authorize_url", "token_url", "revocation_url")
        }
        base = settings.connector_setting(connector.id, "base_url")

        def move(url: str | None) -> str | None:
            if url is None or not base:
                return url
            target = urlsplit(base.rstrip("/"))
            source = urlsplit(url)
            path = target.path + source.path
            return urlunsplit((target.scheme, target.netloc, path, source.query, ""))

        authorize = explicit["authorize_url"] or move(auth.authorize_url)
        token = explicit["token_url"] or move(auth.token_url)
        assert authorize is not None
        assert token is not None
        return cls(authorize, token, explicit["revocation_url"] or move(auth.revocation_url))


@attrs.frozen
class TokenResponse:
    """A successful token response: the tokens, plus the raw fields (for account ids)."""

    tokens: TokenSet
    raw: Mapping[str, Any] = attrs.field(repr=False)


def _check_status(response: httpx2.Response) -> httpx2.Response:
    """Authlib compliance hook: a transient status never reaches the token parser."""
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderUnavailableError(
            f"the provider answered HTTP {response.status_code}", reason="provider_unavailable"
        )
    return response


class OAuthClient:
    """Talks OAuth to one connector's provider on behalf of the server."""

    def __init__(
        self,
        connector: Connector,
        credentials: ClientCredentials,
        settings: Settings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        auth = connector.auth
        assert isinstance(auth, OAuth)
        self.connector = connector
        self.auth = auth
        self.endpoints = OAuthEndpoints.of(connector, settings)
        self.redirect_uri = settings.redirect_uri(connector.id)
        self._credentials = credentials
        self._timeout = settings.http_timeout
        self._transport = transport
        self._clock = clock

    def _client(self) -> AsyncOAuth2Client:
        client = AsyncOAuth2Client(
            client_id=self._credentials.client_id,
            client_secret=self._credentials.client_secret,
            token_endpoint_auth_method=(
                "client_secret_basic" if self._credentials.client_secret else "none"
            ),
            scope=" ".join(self.auth.scopes),
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256" if self.auth.pkce else None,
            timeout=self._timeout,
            transport=self._transport,
        )
        client.register_compliance_hook("access_token_response", _check_status)
        client.register_compliance_hook("refresh_token_response", _check_status)
        return client

    def authorization_url(self, state: str, code_verifier: str) -> str:
        """The provider URL the browser is sent to (with PKCE S256 when enabled)."""
        client = self._client()
        url, _state = client.create_authorization_url(
            self.endpoints.authorize_url,
            state=state,
            code_verifier=code_verifier if self.auth.pkce else None,
        )
        return str(url)

    async def exchange_code(self, code: str, code_verifier: str) -> TokenResponse:
        """Exchange an authorization code for tokens, server-side."""
        async with self._client() as client:
            raw = await self._call(
                "exchange_failed",
                client.fetch_token(
                    self.endpoints.token_url,
                    grant_type="authorization_code",
                    code=code,
                    redirect_uri=self.redirect_uri,
                    code_verifier=code_verifier if self.auth.pkce else None,
                ),
            )
        return self._response(raw, previous=None)

    async def refresh(self, tokens: TokenSet) -> TokenResponse:
        """Use the refresh token; the response's refresh token replaces it if there is one."""
        if not tokens.refresh_token:
            raise NeedsReauthError("the connection has no refresh token")
        async with self._client() as client:
            raw = await self._call(
                "refresh_failed",
                client.refresh_token(self.endpoints.token_url, refresh_token=tokens.refresh_token),
                refreshing=True,
            )
        return self._response(raw, previous=tokens)

    async def revoke(self, token: str, hint: str) -> None:
        """Revoke ``token`` at the provider (RFC 7009), if it has a revocation endpoint."""
        if self.endpoints.revocation_url is None:
            return
        async with self._client() as client:
            try:
                response = await client.revoke_token(
                    self.endpoints.revocation_url, token=token, token_type_hint=hint
                )
            except httpx2.TransportError as exc:
                raise ProviderUnavailableError(f"revocation failed: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise ProviderUnavailableError(f"revocation answered HTTP {response.status_code}")

    async def _call(self, failure: str, request: Any, *, refreshing: bool = False) -> Any:
        try:
            return await request
        except httpx2.TransportError as exc:
            # TimeoutException is a TransportError; the message names no secret.
            raise ProviderUnavailableError(
                f"the provider could not be reached ({type(exc).__name__})"
            ) from None
        except OAuthError as exc:
            code = str(exc.error or "unknown_error")
            if refreshing and code in ("invalid_grant", "invalid_client", "unauthorized_client"):
                raise NeedsReauthError(f"the provider rejected the grant: {code}") from None
            if code in ("temporarily_unavailable", "server_error"):
                raise ProviderUnavailableError(f"the provider answered {code}") from None
            raise IntegrationError(f"the provider answered {code}", reason=failure) from None
        except ValueError:
            raise IntegrationError(
                "the provider's token response is not valid JSON", reason=failure
            ) from None

    def _response(self, raw: Mapping[str, Any], previous: TokenSet | None) -> TokenResponse:
        access = raw.get("access_token")
        if not isinstance(access, str) or not access:
            raise IntegrationError(
                "the token response has no access token", reason="exchange_failed"
            )
        expires_in = raw.get("expires_in")
        expires_at = raw.get("expires_at")
        if isinstance(expires_in, int | float):
            expires_at = self._clock() + float(expires_in)
        scope = raw.get("scope")
        scopes = tuple(str(scope).split()) if scope else (previous.scopes if previous else ())
        refresh = raw.get("refresh_token") or (previous.refresh_token if previous else None)
        tokens = TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=float(expires_at) if isinstance(expires_at, int | float) else None,
            token_type=str(raw.get("token_type") or "Bearer"),
            scopes=scopes or tuple(self.auth.scopes),
        )
        return TokenResponse(tokens, raw)
