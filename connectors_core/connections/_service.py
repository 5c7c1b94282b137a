"""Connections: connect, status, disconnect, and valid access tokens for the host's jobs.

This is the API the web routes call, and the one a host application's
background jobs use::

    token = await connections.get_access_token(tenant, "evencio")

It ties the registry (which connector, which plugin), the store (what is
connected, encrypted) and the OAuth client (the provider) together, and owns
the rules: one-time states bound to a browser session and a tenant, refresh
shortly before expiry and only once at a time per connection, rotated refresh
tokens saved before they are used, ``needs_reauth`` only when the provider
rejected the grant.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import attrs
import httpx2
import pluggy

from .._exceptions import (
    IntegrationError,
    NeedsReauthError,
    NotConnectedError,
    ProviderUnavailableError,
    SecretError,
)
from .._manifest import ApiKeyAuth, Connector, NoAuth, OAuth
from .._registry import Registry
from .._settings import Settings
from ..store import (
    ConnectionState,
    ConnectionSummary,
    PendingAuthorization,
    Store,
    StoredConnection,
    TokenSet,
)
from ._oauth import OAuthClient, TokenResponse, new_state, new_verifier
from ._plugins import plugin_hooks

__all__ = ["Connections", "session_hash"]

log = logging.getLogger("connectors_core.connections")

API_KEY_MIN = 8
API_KEY_MAX = 512


def session_hash(session_id: str) -> str:
    """What the store keeps of a browser session id."""
    return hashlib.sha256(b"connectors-core session\0" + session_id.encode()).hexdigest()


def _account_from(raw: Mapping[str, Any]) -> dict[str, str]:
    """Organization and user ids, when the token response carries them."""
    account: dict[str, str] = {}
    for key, names in (
        ("organizationId", ("organizationId", "organization_id", "orgId", "org_id")),
        ("userId", ("userId", "user_id")),
    ):
        value = next((raw[n] for n in names if raw.get(n) not in (None, "")), None)
        if value is not None:
            account[key] = str(value)
    return account


class Connections:
    """Connect, check and disconnect connectors for tenants; hand out valid tokens.

    :param registry: the connectors (from :func:`connectors_core.discover`).
    :param store: where connections are kept.
    :param settings: public URL, client credentials, timeouts.
    :param transport: an httpx2 transport for provider calls (tests, proxies).
    """

    def __init__(
        self,
        registry: Registry,
        store: Store,
        settings: Settings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.store = store
        self.settings = settings
        self._transport = transport
        self._clock = clock
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    # --- helpers -----------------------------------------------------------------

    def connector(self, connector_id: str) -> Connector:
        """The connector, which must declare connection paths.

        :raises UnknownConnectorError: for an unknown id.
        :raises IntegrationError: ``not_connectable`` when it declares no connection.
        """
        connector = self.registry.get(connector_id)
        if connector.connection is None:
            raise IntegrationError(
                f"connector {connector_id!r} declares no connection paths",
                reason="not_connectable",
                connector_id=connector_id,
            )
        return connector

    def oauth_client(self, connector: Connector) -> OAuthClient:
        """The OAuth client of ``connector``.

        :raises IntegrationError: ``unsupported_auth`` when it does not use OAuth,
            ``not_configured`` when its client id is not configured.
        """
        if not isinstance(connector.auth, OAuth):
            raise IntegrationError(
                f"connector {connector.id!r} does not use OAuth",
                reason="unsupported_auth",
                connector_id=connector.id,
            )
        credentials = self.settings.client_credentials(connector.id)
        if credentials is None:
            prefix = f"CONNECTORS_{connector.id.upper().replace('-', '_')}_CLIENT_ID"
            raise IntegrationError(
                f"the OAuth client of {connector.id!r} is not configured (set {prefix})",
                reason="not_configured",
                connector_id=connector.id,
            )
        return OAuthClient(
            connector, credentials, self.settings, transport=self._transport, clock=self._clock
        )

    def _http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(timeout=self.settings.http_timeout, transport=self._transport)

    # --- OAuth ---------------------------------------------------------------------

    async def begin_oauth(self, tenant: str, connector_id: str, session_id: str) -> str:
        """Start the authorization code flow; return the provider URL to redirect to."""
        connector = self.connector(connector_id)
        client = self.oauth_client(connector)
        state, verifier = new_state(), new_verifier()
        now = self._clock()
        await self.store.put_authorization(
            PendingAuthorization(
                state=state,
                tenant=tenant,
                connector_id=connector.id,
                session_hash=session_hash(session_id),
                code_verifier=verifier,
                redirect_uri=client.redirect_uri,
                expires_at=now + self.settings.state_lifetime,
            ),
            now=now,
            max_per_session=self.settings.max_pending_per_session,
        )
        return client.authorization_url(state, verifier)

    async def finish_oauth(
        self, connector_id: str, tenant: str, session_id: str | None, params: Mapping[str, str]
    ) -> StoredConnection:
        """Complete the flow from the provider's redirect; store the connection.

        :raises IntegrationError: with reason ``invalid_state`` (missing,
            replayed, forged or expired state), ``session_mismatch``,
            ``wrong_tenant``, ``access_denied``, ``provider_error``,
            ``exchange_failed`` or ``provider_unavailable``. Nothing is stored
            unless the whole flow succeeded.
        """
        connector = self.connector(connector_id)
        state = params.get("state", "")
        # Checked before the state is consumed: a callback from another browser,
        # session or tenant must not burn the pending authorization of the user
        # who started it.
        pending = await self.store.peek_authorization(state, now=self._clock()) if state else None
        if pending is None or pending.connector_id != connector.id:
            raise IntegrationError(
                "unknown, used or expired authorization state",
                reason="invalid_state",
                connector_id=connector.id,
            )
        if session_id is None or session_hash(session_id) != pending.session_hash:
            raise IntegrationError(
                "the authorization was started in another browser session",
                reason="session_mismatch",
                connector_id=connector.id,
            )
        if tenant != pending.tenant:
            raise IntegrationError(
                "the authorization was started by another tenant",
                reason="wrong_tenant",
                connector_id=connector.id,
            )
        # Loaded before the state is spent and a code exchanged: a plugin that
        # cannot load leaves the authorization, and no fresh grant, behind.
        hooks = await plugin_hooks(
            self.registry, connector.id, timeout=self.settings.plugin_load_timeout
        )
        if await self.store.take_authorization(state, now=self._clock()) is None:
            raise IntegrationError(
                "unknown, used or expired authorization state",
                reason="invalid_state",
                connector_id=connector.id,
            )
        error = params.get("error")
        if error:
            reason = "access_denied" if error == "access_denied" else "provider_error"
            raise IntegrationError(
                f"the provider ended the authorization: {error[:64]}",
                reason=reason,
                connector_id=connector.id,
            )
        code = params.get("code")
        if not code:
            raise IntegrationError(
                "the provider sent no authorization code",
                reason="provider_error",
                connector_id=connector.id,
            )
        client = self.oauth_client(connector)
        response = await client.exchange_code(code, pending.code_verifier)
        account = await self._account(connector, hooks, response)
        now = self._clock()
        stored = await self.store.put(
            StoredConnection(
                tenant=tenant,
                connector_id=connector.id,
                state=ConnectionState.CONNECTED,
                tokens=response.tokens,
                account=account,
                created_at=now,
                updated_at=now,
            )
        )
        log.info("connected %s for tenant %s", connector.id, tenant)
        return stored

    async def _account(
        self, connector: Connector, hooks: pluggy.HookRelay, response: TokenResponse
    ) -> dict[str, str]:
        """Who the connection belongs to: from the plugin's hook, else the token response."""
        account = _account_from(response.raw)
        async with self._http() as http:
            try:
                found = hooks.connection_account(
                    connector=connector,
                    access_token=response.tokens.access_token,
                    token_response=response.raw,
                    http=http,
                    settings=self.settings,
                )
                if inspect.isawaitable(found):
                    found = await found
                found = {str(k): str(v) for k, v in dict(found or {}).items()}
            except httpx2.TransportError as exc:
                raise ProviderUnavailableError(
                    f"the provider could not be reached ({type(exc).__name__})",
                    connector_id=connector.id,
                ) from None
            except httpx2.HTTPStatusError as exc:
                status = exc.response.status_code
                if status >= 500 or status == 429:
                    raise ProviderUnavailableError(
                        f"the provider answered HTTP {status}", connector_id=connector.id
                    ) from None
                raise IntegrationError(
                    f"the provider refused the account lookup (HTTP {status})",
                    reason="exchange_failed",
                    connector_id=connector.id,
                ) from None
            except Exception as exc:  # noqa: BLE001 - a plugin's bug ends this flow, not the server
                # The type only: a message may quote a response that carries a token.
                log.warning(
                    "the account lookup of %s failed in its plugin: %s",
                    connector.id,
                    type(exc).__name__,
                )
                raise IntegrationError(
                    f"the account lookup failed ({type(exc).__name__})",
                    reason="exchange_failed",
                    connector_id=connector.id,
                ) from None
        account.update(found)
        return account

    # --- API keys ------------------------------------------------------------------

    async def connect_api_key(
        self, tenant: str, connector_id: str, api_key: str
    ) -> StoredConnection:
        """Store an API key for ``tenant`` (encrypted); never echoed back.

        :raises IntegrationError: ``unsupported_auth`` for a non-API-key
            connector, ``invalid_api_key`` for an empty, oversized or malformed key.
        """
        connector = self.connector(connector_id)
        if not isinstance(connector.auth, ApiKeyAuth):
            raise IntegrationError(
                f"connector {connector.id!r} does not take an API key",
                reason="unsupported_auth",
                connector_id=connector.id,
            )
        key = api_key.strip()
        # Visible ASCII only: anything else cannot travel in an HTTP header.
        if not API_KEY_MIN <= len(key) <= API_KEY_MAX or not all("!" <= c <= "~" for c in key):
            raise IntegrationError(
                f"an API key is {API_KEY_MIN} to {API_KEY_MAX} visible ASCII characters, "
                "without spaces",
                reason="invalid_api_key",
                connector_id=connector.id,
            )
        return await self._store_new(tenant, connector.id, api_key=key)

    async def _store_new(
        self, tenant: str, connector_id: str, *, api_key: str | None = None
    ) -> StoredConnection:
        now = self._clock()
        connection = StoredConnection(
            tenant=tenant,
            connector_id=connector_id,
            state=ConnectionState.CONNECTED,
            api_key=api_key,
            created_at=now,
            updated_at=now,
        )
        return await self.store.put(connection)

    async def connect_none(self, tenant: str, connector_id: str) -> StoredConnection:
        """Record a connection for a connector that needs no credentials."""
        connector = self.connector(connector_id)
        if not isinstance(connector.auth, NoAuth):
            raise IntegrationError(
                f"connector {connector.id!r} needs credentials",
                reason="unsupported_auth",
                connector_id=connector.id,
            )
        return await self._store_new(tenant, connector.id)

    # --- status and disconnect -----------------------------------------------------

    async def status(self, tenant: str, connector_id: str) -> dict[str, Any]:
        """The status JSON: ``{"connected": true, "status": {...}}`` or an error reason."""
        connector = self.connector(connector_id)
        return _status_json(connector, await self.store.summary(tenant, connector.id))

    async def statuses(self, tenant: str) -> dict[str, dict[str, Any]]:
        """The status JSON of every connectable connector, from one read of the store."""
        summaries = await self.store.summaries(tenant)
        return {
            connector.id: _status_json(connector, summaries.get(connector.id))
            for connector in self.registry
            if connector.connection is not None
        }

    async def disconnect(self, tenant: str, connector_id: str) -> bool:
        """Revoke at the provider where possible, then delete local secrets.

        Idempotent. Local secrets are deleted even when revocation fails.
        Returns whether there was a connection.
        """
        connector = self.connector(connector_id)
        try:
            connection = await self.store.get(tenant, connector.id)
        except SecretError:
            # Its key is gone or it was tampered with: nothing can be revoked,
            # but the user asked for it to go, and it must not stay.
            log.warning(
                "the stored secrets of %s for tenant %s cannot be decrypted; "
                "deleting them without revocation",
                connector.id,
                tenant,
            )
            return await self.store.delete(tenant, connector.id)
        if connection is None:
            return False
        if connection.tokens is not None and isinstance(connector.auth, OAuth):
            await self._revoke(connector, connection.tokens)
        deleted = await self.store.delete(tenant, connector.id)
        log.info("disconnected %s for tenant %s", connector.id, tenant)
        return deleted

    async def _revoke(self, connector: Connector, tokens: TokenSet) -> None:
        """Revoke both tokens, each on its own: one failing does not spare the other."""
        try:
            client = self.oauth_client(connector)
        except IntegrationError as exc:
            log.warning("cannot revoke %s (%s); deleting it locally", connector.id, exc.reason)
            return
        pairs = [(tokens.refresh_token, "refresh_token"), (tokens.access_token, "access_token")]
        for token, hint in pairs:
            if not token:
                continue
            try:
                await client.revoke(token, hint)
            except IntegrationError as exc:
                log.warning(
                    "revocation of the %s of %s failed (%s); deleting it locally",
                    hint.replace("_", " "),
                    connector.id,
                    exc.reason,
                )

    # --- tokens for the host's jobs --------------------------------------------------

    async def get_access_token(self, tenant: str, connector_id: str) -> str:
        """A valid access token, refreshed shortly before it expires.

        At most one refresh runs per connection at a time; callers waiting for
        it get its result. A rotated refresh token is stored before the new
        access token is returned.

        :raises NotConnectedError: nothing is connected.
        :raises NeedsReauthError: the provider rejected the grant; the connection
            is marked and no further refresh is attempted until the user reconnects.
        :raises ProviderUnavailableError: a transient failure; try again later.
        """
        connection = await self._usable(tenant, connector_id)
        assert connection.tokens is not None
        if not self._due(connection):
            return connection.tokens.access_token
        seen = connection.version
        lock = self._locks.setdefault((tenant, connector_id), asyncio.Lock())
        # Within this process, callers queue on a lock; across processes (replicas
        # sharing a database), on the store's lease. Whoever gets the lease second
        # finds the token its predecessor saved, and does not refresh again.
        async with lock:
            connection = await self._usable(tenant, connector_id)
            assert connection.tokens is not None
            if not self._due(connection) or self._fresh(connection, seen):
                return connection.tokens.access_token
            return await self._refresh(tenant, connector_id, seen)

    def _due(self, connection: StoredConnection) -> bool:
        """Whether the access token should be refreshed now.

        The margin is ``refresh_margin``, but never more than half the token's
        lifetime (from when it was stored to when it expires): a token that
        lives 30 seconds is not refreshed again the moment it arrives. Tokens
        stored without an expiry but with a refresh token are taken to live
        ``default_token_lifetime``.
        """
        tokens = connection.tokens
        assert tokens is not None
        expires_at = tokens.expires_at
        issued = connection.updated_at
        if expires_at is None:
            if not tokens.refresh_token:
                return False
            expires_at = issued + self.settings.default_token_lifetime
        margin = float(self.settings.refresh_margin)
        if issued and expires_at > issued:
            margin = min(margin, (expires_at - issued) / 2)
        return expires_at - self._clock() <= margin

    def _fresh(self, connection: StoredConnection, seen: int) -> bool:
        """Someone else refreshed since ``seen``, and their token has not expired yet."""
        tokens = connection.tokens
        assert tokens is not None
        if connection.version == seen:
            return False
        expires_at = tokens.expires_at
        return expires_at is None or expires_at > self._clock()

    async def get_api_key(self, tenant: str, connector_id: str) -> str:
        """The stored API key of an API-key connection (for the host's jobs)."""
        connection = await self.store.get(tenant, connector_id)
        if connection is None or connection.api_key is None:
            raise NotConnectedError(f"{connector_id} is not connected", connector_id=connector_id)
        return connection.api_key

    async def _usable(self, tenant: str, connector_id: str) -> StoredConnection:
        return self._check(await self.store.get(tenant, connector_id), connector_id)

    @staticmethod
    def _check(connection: StoredConnection | None, connector_id: str) -> StoredConnection:
        if connection is None or connection.tokens is None:
            raise NotConnectedError(f"{connector_id} is not connected", connector_id=connector_id)
        if connection.state is ConnectionState.NEEDS_REAUTH:
            raise NeedsReauthError(
                f"{connector_id} must be connected again", connector_id=connector_id
            )
        return connection

    async def _refresh(self, tenant: str, connector_id: str, seen: int) -> str:
        connector = self.registry.get(connector_id)
        client = self.oauth_client(connector)
        failure: IntegrationError | None = None
        async with self.store.lease(tenant, connector_id) as lease:
            connection = self._check(lease.connection, connector_id)
            assert connection.tokens is not None
            if not self._due(connection) or self._fresh(connection, seen):
                return connection.tokens.access_token

            async def keep(rotated: str) -> None:
                # The provider spent the old refresh token: store the new one
                # whatever the rest of its answer turns out to be.
                nonlocal connection
                assert connection.tokens is not None
                tokens = attrs.evolve(connection.tokens, refresh_token=rotated)
                connection = await lease.save(attrs.evolve(connection, tokens=tokens))

            # Shielded from the caller's cancellation (bounded by the HTTP timeout):
            # once the provider may have rotated the refresh token, what it sent
            # must be saved, or the next refresh would present a spent token.
            with anyio.CancelScope(shield=True):
                try:
                    response = await client.refresh(connection.tokens, on_rotated=keep)
                except NeedsReauthError as exc:
                    failure = exc
                    await lease.save(
                        attrs.evolve(
                            connection, state=ConnectionState.NEEDS_REAUTH, updated_at=self._clock()
                        )
                    )
                except IntegrationError as exc:
                    # Leave the lease normally, so that what keep() saved is committed.
                    failure = exc
                else:
                    # Saved (the new refresh token with it) before the caller sees the token.
                    await lease.save(
                        attrs.evolve(connection, tokens=response.tokens, updated_at=self._clock())
                    )
                    return response.tokens.access_token
        assert failure is not None
        if isinstance(failure, NeedsReauthError):
            log.warning("%s for tenant %s needs re-authorization", connector.id, tenant)
        raise failure


def _status_json(connector: Connector, summary: ConnectionSummary | None) -> dict[str, Any]:
    """``{"connected": true, "status": {...}}`` or ``{"connected": false, "error": ...}``."""
    if summary is None:
        return {"connected": False, "error": "not_connected"}
    if summary.state is ConnectionState.NEEDS_REAUTH:
        return {"connected": False, "error": "needs_reauth"}
    details: dict[str, Any] = {**summary.account, "authType": connector.auth.type}
    if isinstance(connector.auth, OAuth):
        details["scopes"] = list(summary.scopes)
    if summary.key_hint is not None:
        details["keyHint"] = summary.key_hint
    details["connectedAt"] = int(summary.created_at)
    return {"connected": True, "status": details}
