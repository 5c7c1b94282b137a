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
    InvalidFieldsError,
    NeedsReauthError,
    NotConnectedError,
    SecretError,
)
from .._fields import FieldErrors, check_values
from .._manifest import Connector
from .._registry import Registry
from .._settings import ClientCredentials, Settings
from ..flows import Redirect, Submission, flow_for
from ..flows._oauth import session_hash
from ..store import (
    ConnectionState,
    ConnectionSummary,
    Store,
    StoredConnection,
)
from ._oauth import OAuthClient
from ._plugins import plugin_hooks

__all__ = ["Connections", "session_hash"]

log = logging.getLogger("connectors_core.connections")


class Connections:
    """Connect, check and disconnect connectors for tenants; hand out valid tokens.

    Each auth type's part is its flow (:mod:`connectors_core.flows`); this
    service checks what is submitted, serializes refreshes and reads the store.
    It is also the :class:`~connectors_core.flows.FlowContext` flows work with.

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

    # --- what flows use ---------------------------------------------------------------

    def now(self) -> float:
        """The current time, from the clock this service was given."""
        return self._clock()

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

    def oauth_client(
        self,
        connector: Connector,
        config: Mapping[str, Any] | None = None,
        credentials: ClientCredentials | None = None,
        hooks: pluggy.HookRelay | None = None,
    ) -> OAuthClient:
        """The OAuth client of ``connector``, its URLs filled from ``config``.

        ``config`` lacks a field? Its default fills in (a field added to the
        manifest after the connection was made). ``credentials`` are the
        connection's own client (client credentials grant); else the server's.
        ``hooks`` are the plugin's, for ``prepare_token_request`` and
        ``parse_token_response``.

        :raises IntegrationError: ``unsupported_auth`` when it does not use OAuth,
            ``not_configured`` when its client id is not configured.
        :raises InvalidFieldsError: a value cannot fill its URL placeholder.
        """
        defaults = {f.id: f.default for f in connector.fields if f.default is not None}
        config = {**defaults, **(config or {})}
        if credentials is None:
            credentials = self.settings.client_credentials(connector.id)
        if credentials is None:
            prefix = f"CONNECTORS_{connector.id.upper().replace('-', '_')}_CLIENT_ID"
            raise IntegrationError(
                f"the OAuth client of {connector.id!r} is not configured (set {prefix})",
                reason="not_configured",
                connector_id=connector.id,
            )
        return OAuthClient(
            connector,
            credentials,
            self.settings,
            config=config,
            transport=self._transport,
            clock=self._clock,
            hooks=hooks,
        )

    def http(self) -> httpx2.AsyncClient:
        """An HTTP client for calls to providers (the configured timeout and transport)."""
        return httpx2.AsyncClient(timeout=self.settings.http_timeout, transport=self._transport)

    async def plugin_hooks(self, connector: Connector) -> pluggy.HookRelay:
        """The hooks of the connector's plugin, waiting a bounded time for it to load."""
        return await plugin_hooks(
            self.registry, connector.id, timeout=self.settings.plugin_load_timeout
        )

    # --- connecting ---------------------------------------------------------------------

    async def connect(
        self,
        tenant: str,
        connector_id: str,
        values: Mapping[str, str] | None = None,
        *,
        session_id: str | None = None,
    ) -> StoredConnection | Redirect:
        """Connect ``connector_id`` for ``tenant`` from the values a user submitted.

        ``values`` holds the connector's fields by id and the flow's own inputs
        (``api_key``; ``username`` and ``password``). Every value is checked
        before anything is stored or sent; secret values are stored encrypted.

        :returns: the stored connection, or a :class:`~connectors_core.flows.Redirect`
            to the provider (OAuth authorization code; ``session_id`` is then required).
        :raises InvalidFieldsError: every invalid value at once, by input name.
        :raises IntegrationError: with a reason code (``not_configured``, ...).
        """
        connector = self.connector(connector_id)
        flow = flow_for(connector)
        submitted = dict(values or {})
        errors: dict[str, str] = {}
        config: dict[str, Any] = {}
        secrets: dict[str, str] = {}
        try:
            config, secrets = check_values(connector.fields, submitted)
        except FieldErrors as exc:
            errors.update(exc.errors)
        credential_errors = flow.check_credentials(connector, submitted)
        if errors or credential_errors:
            raise InvalidFieldsError(
                {**errors, **credential_errors},
                reason="invalid_fields" if errors else flow.credential_reason,
                connector_id=connector.id,
            )
        names = [i.name for i in flow.credential_inputs(connector)]
        credentials = {name: submitted[name] for name in names if name in submitted}
        submission = Submission(config, secrets, credentials, session_id)
        return await flow.connect(self, connector, tenant, submission)

    async def begin_oauth(
        self,
        tenant: str,
        connector_id: str,
        session_id: str,
        values: Mapping[str, str] | None = None,
    ) -> str:
        """Start a redirect flow; return the provider URL to send the browser to."""
        connector = self.connector(connector_id)
        if not flow_for(connector).continues_at_provider(connector):
            raise IntegrationError(
                f"connector {connector_id!r} does not redirect to a provider",
                reason="unsupported_auth",
                connector_id=connector_id,
            )
        result = await self.connect(tenant, connector_id, values, session_id=session_id)
        assert isinstance(result, Redirect)
        return result.url

    async def finish_oauth(
        self, connector_id: str, tenant: str, session_id: str | None, params: Mapping[str, str]
    ) -> StoredConnection:
        """Complete a redirect flow from the provider's answer; store the connection.

        :raises IntegrationError: with reason ``invalid_state`` (missing,
            replayed, forged or expired state), ``session_mismatch``,
            ``wrong_tenant``, ``access_denied``, ``provider_error``,
            ``exchange_failed`` or ``provider_unavailable``. Nothing is stored
            unless the whole flow succeeded.
        """
        connector = self.connector(connector_id)
        return await flow_for(connector).callback(self, connector, tenant, session_id, params)

    async def connect_api_key(
        self, tenant: str, connector_id: str, api_key: str
    ) -> StoredConnection:
        """Store an API key for ``tenant`` (encrypted); never echoed back.

        :raises IntegrationError: ``unsupported_auth`` for a connector that
            takes no API key, ``invalid_api_key`` for an empty, oversized or
            malformed key, ``invalid_fields`` when the connector has fields.
        """
        connector = self.connector(connector_id)
        if "api_key" not in {i.name for i in flow_for(connector).credential_inputs(connector)}:
            raise IntegrationError(
                f"connector {connector.id!r} does not take an API key",
                reason="unsupported_auth",
                connector_id=connector.id,
            )
        result = await self.connect(tenant, connector_id, {"api_key": api_key})
        assert isinstance(result, StoredConnection)
        return result

    async def connect_none(self, tenant: str, connector_id: str) -> StoredConnection:
        """Record a connection for a connector that needs nothing entered."""
        connector = self.connector(connector_id)
        flow = flow_for(connector)
        if flow.inputs(connector) or flow.continues_at_provider(connector):
            raise IntegrationError(
                f"connector {connector.id!r} needs credentials",
                reason="unsupported_auth",
                connector_id=connector.id,
            )
        result = await self.connect(tenant, connector_id)
        assert isinstance(result, StoredConnection)
        return result

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

    async def verify(self, tenant: str, connector_id: str) -> dict[str, Any]:
        """Prove the stored credentials still work, and record when (or why not).

        Runs the connector's ``verify`` request and ``verify_connection`` hook
        with the stored credentials (an OAuth token refreshed first if due).
        The result is kept with the connection: ``verifiedAt`` in its status
        when it passed, ``verificationError`` (the reason) when it failed.

        :returns: the status JSON after the check.
        :raises NotConnectedError: nothing is connected.
        :raises IntegrationError: the verification's reason (``invalid_credentials``,
            ``provider_unavailable``...), recorded first.
        """
        from ..flows._verify import Verified, verified_account

        connector = self.connector(connector_id)
        connection = await self.store.get(tenant, connector.id)
        if connection is None:
            raise NotConnectedError(f"{connector_id} is not connected", connector_id=connector_id)
        if connection.tokens is not None:
            await self.get_access_token(tenant, connector.id)  # refreshed if due
            connection = await self._usable(tenant, connector.id)
        failure: IntegrationError | None = None
        found = Verified()
        try:
            found = await verified_account(
                self, connector, connection, await self.plugin_hooks(connector)
            )
        except IntegrationError as exc:
            failure = exc
        # Recorded on the row as it is now (a refresh may have saved meanwhile).
        async with self.store.lease(tenant, connector.id) as lease:
            current = lease.connection
            if current is not None:
                if failure is None:
                    current = attrs.evolve(
                        current,
                        verified_at=self._clock(),
                        verify_reason=None,
                        account={**current.account, **found.account},
                        config={**current.config, **found.kept},
                    )
                else:
                    current = attrs.evolve(current, verify_reason=failure.reason)
                await lease.save(current)
        if failure is not None:
            log.info("verifying %s for tenant %s: %s", connector.id, tenant, failure.reason)
            raise failure
        return await self.status(tenant, connector.id)

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
        await flow_for(connector).disconnect(self, connector, connection)
        deleted = await self.store.delete(tenant, connector.id)
        log.info("disconnected %s for tenant %s", connector.id, tenant)
        return deleted

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

        The margin is the connector's ``refreshMarginSeconds`` or else the
        server's ``refresh_margin``, but never more than half the token's
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
        connector = self.registry.get(connection.connector_id)
        declared = flow_for(connector).refresh_margin(connector)
        margin = float(self.settings.refresh_margin if declared is None else declared)
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
        flow = flow_for(connector)
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
                    tokens = await flow.renew(self, connector, connection, on_rotated=keep)
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
                        attrs.evolve(connection, tokens=tokens, updated_at=self._clock())
                    )
                    return tokens.access_token
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
    details.update(flow_for(connector).status_details(connector, summary))
    if summary.config:
        details["config"] = dict(summary.config)
    details["connectedAt"] = int(summary.created_at)
    if summary.verified_at is not None and summary.verify_reason is None:
        details["verifiedAt"] = int(summary.verified_at)
    if summary.verify_reason is not None:
        details["verificationError"] = summary.verify_reason
    return {"connected": True, "status": details}
