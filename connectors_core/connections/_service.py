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

import logging
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, NoReturn

import attrs
import httpx2
import pluggy

from .._events import Actor, ConnectionEvent, EventType
from .._exceptions import (
    IntegrationError,
    InvalidFieldsError,
    NeedsReauthError,
    NotConnectedError,
)
from .._fields import FieldErrors, check_values
from .._manifest import Connector
from .._registry import Registry
from .._settings import ClientCredentials, Settings
from ..flows import Redirect, ReplaceCheck, Submission, flow_for
from ..flows._oauth import session_hash
from ..flows._verify import Verified
from ..store import (
    ConnectionState,
    ConnectionSummary,
    Store,
    StoredConnection,
)
from ._delivery import Deliverer, Listener
from ._lifecycle import Lifecycle
from ._oauth import OAuthClient
from ._plugins import plugin_hooks
from ._tokens import TokenKeeper, missing_scopes

__all__ = ["Connections", "session_hash"]

log = logging.getLogger("connectors_core.connections")


class Connections(TokenKeeper, Lifecycle):
    """Connect, check and disconnect connectors for tenants; hand out valid tokens.

    Each auth type's part is its flow (:mod:`connectors_core.flows`); this
    service checks what is submitted, serializes refreshes and reads the store.
    It is also the :class:`~connectors_core.flows.FlowContext` flows work with.

    :param registry: the connectors (from :func:`connectors_core.discover`).
    :param store: where connections are kept.
    :param settings: public URL, client credentials, timeouts.
    :param transport: an httpx2 transport for provider calls (tests, proxies).
    :param listeners: callables given each :class:`~connectors_core.ConnectionEvent`
        (sync or async), delivered by :meth:`deliver_events` / the server's loop.
    """

    def __init__(
        self,
        registry: Registry,
        store: Store,
        settings: Settings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self.registry = registry
        self.store = store
        self.settings = settings
        self.listeners: list[Listener] = list(listeners)
        """The host's event listeners; ``create_app(on_event=...)`` adds to them."""
        self._transport = transport
        self._clock = clock
        self._locks = weakref.WeakKeyDictionary()

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
        connection_id: str | None = None,
        actor: Actor | None = None,
        may_replace: ReplaceCheck | None = None,
    ) -> StoredConnection | Redirect:
        """Connect ``connector_id`` for ``tenant`` from the values a user submitted.

        ``values`` holds the connector's fields by id and the flow's own inputs
        (``api_key``; ``username`` and ``password``). Every value is checked
        before anything is stored or sent; secret values are stored encrypted.
        The new credentials become a new connection, or those of the one
        already holding the same provider account (``connection_id`` names
        the connection to connect again, whose account may not change).
        ``actor`` is who does it; ``may_replace`` is asked before the
        credentials of an existing connection are replaced (the web routes
        ask the authorizer for ``connect`` on that connection).

        :returns: the stored connection, or a :class:`~connectors_core.flows.Redirect`
            to the provider (OAuth authorization code; ``session_id`` is then required).
        :raises InvalidFieldsError: every invalid value at once, by input name.
        :raises IntegrationError: with a reason code (``not_configured``,
            ``account_mismatch``, ...).
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
        if (
            connection_id is not None
            and await self.store.get(tenant, connector.id, connection_id) is None
        ):
            raise NotConnectedError(
                f"{connector.id} has no connection {connection_id[:64]!r} to connect again",
                connector_id=connector.id,
            )
        submission = Submission(
            config, secrets, credentials, session_id, connection_id, actor, may_replace
        )
        return await flow.connect(self, connector, tenant, submission)

    async def begin_oauth(
        self,
        tenant: str,
        connector_id: str,
        session_id: str,
        values: Mapping[str, str] | None = None,
        *,
        connection_id: str | None = None,
    ) -> str:
        """Start a redirect flow; return the provider URL to send the browser to.

        ``connection_id`` names a connection to connect again (its account may
        not change).
        """
        connector = self.connector(connector_id)
        if not flow_for(connector).continues_at_provider(connector):
            raise IntegrationError(
                f"connector {connector_id!r} does not redirect to a provider",
                reason="unsupported_auth",
                connector_id=connector_id,
            )
        result = await self.connect(
            tenant, connector_id, values, session_id=session_id, connection_id=connection_id
        )
        assert isinstance(result, Redirect)
        return result.url

    async def finish_oauth(
        self,
        connector_id: str,
        tenant: str,
        session_id: str | None,
        params: Mapping[str, str],
        *,
        actor: Actor | None = None,
        may_replace: ReplaceCheck | None = None,
    ) -> StoredConnection:
        """Complete a redirect flow from the provider's answer; store the connection.

        :raises IntegrationError: with reason ``invalid_state`` (missing,
            replayed, forged or expired state), ``session_mismatch``,
            ``wrong_tenant``, ``access_denied``, ``provider_error``,
            ``exchange_failed``, ``account_mismatch`` or ``provider_unavailable``.
            Nothing is stored unless the whole flow succeeded.
        """
        connector = self.connector(connector_id)
        flow = flow_for(connector)
        return await flow.callback(
            self, connector, tenant, session_id, params, actor=actor, may_replace=may_replace
        )

    async def connect_api_key(
        self, tenant: str, connector_id: str, api_key: str, *, actor: Actor | None = None
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
        result = await self.connect(tenant, connector_id, {"api_key": api_key}, actor=actor)
        assert isinstance(result, StoredConnection)
        return result

    async def connect_none(
        self, tenant: str, connector_id: str, *, actor: Actor | None = None
    ) -> StoredConnection:
        """Record a connection for a connector that needs nothing entered."""
        connector = self.connector(connector_id)
        flow = flow_for(connector)
        if flow.inputs(connector) or flow.continues_at_provider(connector):
            raise IntegrationError(
                f"connector {connector.id!r} needs credentials",
                reason="unsupported_auth",
                connector_id=connector.id,
            )
        result = await self.connect(tenant, connector_id, actor=actor)
        assert isinstance(result, StoredConnection)
        return result

    # --- status --------------------------------------------------------------------

    async def status(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> dict[str, Any]:
        """The status JSON: ``{"connected": true, "status": {...}}`` or an error reason.

        Of the connection ``connection_id`` names, or of the connector's only
        one. For a connector that may hold several (``connection.multiple``),
        without an id: ``{"connected": <any is>, "connections": [<status JSON>, ...]}``.
        """
        connector = self.connector(connector_id)
        if connection_id is None and _multiple(connector):
            found = await self.store.list(tenant=tenant, connector_id=connector.id)
            return _statuses_json(connector, found)
        return _status_json(
            connector, await self.store.summary(tenant, connector.id, connection_id)
        )

    async def statuses(
        self, tenant: str, summaries: Sequence[ConnectionSummary] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The status JSON of every connectable connector, from one read of the store
        (none if the tenant's ``summaries`` are given)."""
        if summaries is None:
            summaries = await self.store.summaries(tenant)
        by_connector: dict[str, list[ConnectionSummary]] = {}
        for summary in summaries:
            by_connector.setdefault(summary.connector_id, []).append(summary)
        found: dict[str, dict[str, Any]] = {}
        for connector in self.registry:
            if connector.connection is None:
                continue
            mine = by_connector.get(connector.id, [])
            if _multiple(connector):
                found[connector.id] = _statuses_json(connector, mine)
            else:
                found[connector.id] = _status_json(connector, mine[0] if mine else None)
        return found

    async def verify(
        self,
        tenant: str,
        connector_id: str,
        connection_id: str | None = None,
        *,
        actor: Actor | None = None,
    ) -> dict[str, Any]:
        """Prove the stored credentials still work, and record when (or why not).

        Runs the connector's ``verify`` request and ``verify_connection`` hook
        with the stored credentials (an OAuth token renewed first if due).
        The result is kept with the connection: ``verifiedAt`` in its status
        when it passed, ``verificationError`` (the reason) when it failed. An
        API key or Basic connection marked ``needs_reauth`` whose credentials
        pass is connected again. Refused OAuth tokens are treated as the API
        client treats them: renewed once and checked again; refused again,
        or not renewable, the connection needs the user again.

        :returns: the status JSON after the check.
        :raises NotConnectedError: nothing is connected.
        :raises NeedsReauthError: OAuth tokens that need the user again (marked).
        :raises IntegrationError: the verification's reason (``invalid_credentials``,
            ``provider_unavailable``...), recorded first.
        """
        from ..flows._verify import verified_account

        connector = self.connector(connector_id)
        connection = await self.store.get(tenant, connector.id, connection_id)
        if connection is None:
            raise NotConnectedError(f"{connector_id} is not connected", connector_id=connector_id)
        if connection.tokens is not None or connection.state is ConnectionState.CONNECTED:
            connection = await self._current(tenant, connector.id, connection.connection_id)
        failure: IntegrationError | None = None
        found = Verified()
        hooks = await self.plugin_hooks(connector)
        for attempt in (1, 2):
            try:
                found = await verified_account(self, connector, connection, hooks)
            except IntegrationError as exc:
                failure = exc
            else:
                failure = None
                break
            if connection.tokens is None or failure.reason != "invalid_credentials":
                break
            if attempt == 2 or not flow_for(connector).renewable(connector, connection):
                await self._refused(connector, connection)
            connection, _renewed = await self._renewed(connection, seen=connection, rejected=True)
        await self._record_verification(connection, found, failure, actor)
        if failure is not None:
            log.info("verifying %s for tenant %s: %s", connector.id, tenant, failure.reason)
            raise failure
        return await self.status(tenant, connector.id, connection.connection_id)

    async def _record_verification(
        self,
        connection: StoredConnection,
        found: Verified,
        failure: IntegrationError | None,
        actor: Actor | None,
    ) -> None:
        """Keep the result on the row as it is now (a renewal may have saved meanwhile)."""
        key = (connection.tenant, connection.connector_id, connection.connection_id)
        async with self.store.lease(*key) as lease:
            current = lease.connection
            if current is None:
                return
            event = None
            if failure is None:
                failed_before = current.verify_reason is not None
                current = attrs.evolve(
                    current,
                    verified_at=self._clock(),
                    verify_reason=None,
                    account={**current.account, **found.account},
                    config={**current.config, **found.kept},
                )
                reauthorized = (
                    current.tokens is None and current.state is ConnectionState.NEEDS_REAUTH
                )
                if reauthorized:
                    current = attrs.evolve(
                        current, state=ConnectionState.CONNECTED, state_reason=None
                    )
                if reauthorized or failed_before:  # what its last event said is over
                    event = ConnectionEvent.about(
                        current, EventType.RECOVERED, at=self._clock(), actor=actor
                    )
            else:
                current = attrs.evolve(current, verify_reason=failure.reason)
                event = ConnectionEvent.about(
                    current,
                    EventType.VERIFICATION_FAILED,
                    at=self._clock(),
                    reason=failure.reason,
                    actor=actor,
                )
            await lease.save(current, event=event)

    async def _refused(self, connector: Connector, connection: StoredConnection) -> NoReturn:
        """The provider refused OAuth tokens that cannot be renewed (again): mark, and raise."""
        from ._tokens import _credential_of

        await self._mark(connection, "revoked", only_if=_credential_of(connection))
        raise NeedsReauthError(
            f"{connector.id} refused the connection's tokens; the user must connect again",
            cause="revoked",
            connector_id=connector.id,
        )

    # --- for the host's jobs ----------------------------------------------------------

    def client(
        self,
        tenant: str,
        connector_id: str,
        connection_id: str | None = None,
        *,
        retry_unsafe: bool = False,
        timeout: float | None = None,
    ) -> AbstractAsyncContextManager[httpx2.AsyncClient]:
        """An ``httpx2.AsyncClient`` on the connector's API, with the connection's credentials::

            async with connections.client(tenant, "evencio") as http:
                response = await http.get("/v1/events", params={"limit": 50})

        Relative URLs are resolved against ``api.baseUrl`` (its placeholders
        filled from the connection), with ``api.headers`` on every request.
        Each request gets the credentials the connector's flow sends (a
        token renewed shortly before it expires), on a copy: what the job,
        its logs and its exceptions see carries none. A token-expired status
        renews the token once and sends the request once more; an idempotent
        request is tried again on ``api.retry.statuses`` and transport
        errors (``retry_unsafe=True``, or ``extensions={RETRY: True}`` on one
        request, for a POST or PATCH that is safe to repeat).

        :raises UnknownConnectorError: for an unknown connector id.
        :raises NotConnectedError: nothing is connected (on entering).
        :raises NeedsReauthError: on entering, or from a request the provider
            refused for good; the connection is then marked.
        :raises HostNotAllowedError: from a request to a host outside
            ``api.baseUrl``'s and ``api.allowedHosts``; nothing was sent.
        :raises IntegrationError: ``no_api`` when the connector declares no
            ``api.baseUrl``.
        """
        from ._client import open_client

        return open_client(
            self,
            tenant,
            connector_id,
            connection_id,
            retry_unsafe=retry_unsafe,
            timeout=timeout,
            transport=self._transport,
        )

    def sync_client(
        self,
        tenant: str,
        connector_id: str,
        connection_id: str | None = None,
        *,
        retry_unsafe: bool = False,
        timeout: float | None = None,
    ) -> AbstractContextManager[httpx2.Client]:
        """The synchronous twin of :meth:`client`, for jobs that are not async::

            with connections.sync_client(tenant, "evencio") as http:
                events = http.get("/v1/events").json()

        It runs an event loop of its own in a thread for as long as it is
        open, and reads each response whole before returning it. Do not
        call it from an event loop's thread.
        """
        from ._client import open_sync_client

        return open_sync_client(
            self,
            tenant,
            connector_id,
            connection_id,
            retry_unsafe=retry_unsafe,
            timeout=timeout,
            transport=self._transport,
        )

    async def get_api_key(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> str:
        """The stored API key of an API-key connection, as entered (without ``valuePrefix``).

        Prefer :meth:`client`, which sends it the way the connector says.

        :raises UnknownConnectorError: for an unknown connector id.
        :raises IntegrationError: ``unsupported_auth`` for a connector that takes no API key.
        :raises NotConnectedError: nothing is connected.
        :raises NeedsReauthError: the key was refused; the user must enter a new one.
        """
        connector = self.registry.get(connector_id)
        if "api_key" not in {i.name for i in flow_for(connector).credential_inputs(connector)}:
            raise IntegrationError(
                f"{connector.id!r} uses {flow_for(connector).label}, not an API key",
                reason="unsupported_auth",
                connector_id=connector.id,
            )
        connection = await self._usable(tenant, connector.id, connection_id)
        if connection.api_key is None:
            raise NotConnectedError(f"{connector_id} is not connected", connector_id=connector_id)
        return connection.api_key

    async def list(
        self, *, tenant: str | None = None, connector_id: str | None = None
    ) -> list[ConnectionSummary]:
        """Every connection, of one tenant and/or one connector if given; no secret in them.

        Ordered by tenant, connector id, then when each was connected.
        :meth:`describe` turns one into JSON.
        """
        return await self.store.list(tenant=tenant, connector_id=connector_id)

    def describe(self, summary: ConnectionSummary) -> dict[str, Any]:
        """``{"tenant", "connectorId", "connectionId", "connected", "status" | "error", ...}``
        for one summary.

        The status JSON of the connection, with whose and which it is; a
        connection of a connector no longer installed says ``unknown_connector``.
        """
        head = {
            "tenant": summary.tenant,
            "connectorId": summary.connector_id,
            "connectionId": summary.connection_id,
        }
        if summary.connector_id not in self.registry:
            return {**head, "connected": False, "error": "unknown_connector"}
        return {**head, **_status_json(self.registry.get(summary.connector_id), summary)}

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, registry: Registry | None = None
    ) -> Connections:
        """The service as the server would build it: settings and store from the environment.

        For a job or a cron outside the web process::

            connections = Connections.from_env()
            try:
                report = await connections.refresh_due()
            finally:
                await connections.aclose()

        :raises ConfigurationError: for a bad setting or a missing encryption key.
        """
        from ..store import open_store

        settings = Settings.from_env(environ)
        if registry is None:
            from .._discovery import discover

            registry = discover()
        return cls(registry, open_store(settings), settings)

    def deliverer(self, **options: Any) -> Deliverer:
        """A :class:`~connectors_core.connections.Deliverer` of this service's events to its
        listeners, plugins' hooks and the webhook (``options``: its tuning)."""
        return Deliverer(self, listeners=self.listeners, **options)

    async def deliver_events(self) -> int:
        """Deliver the events that are due, once (for a job or cron; the server loops).

        :returns: how many events went out.
        """
        deliverer = self.deliverer()
        try:
            return await deliverer.run_once()
        finally:
            await deliverer.aclose()

    async def aclose(self) -> None:
        """Release the store's connections and files."""
        await self.store.close()


def _multiple(connector: Connector) -> bool:
    return connector.connection is not None and connector.connection.multiple


def _statuses_json(connector: Connector, found: list[ConnectionSummary]) -> dict[str, Any]:
    """The status of a connector that may hold several connections: each one's, and whether
    any is connected."""
    each = [_status_json(connector, summary) for summary in found]
    result: dict[str, Any] = {"connected": any(s["connected"] for s in each)}
    if not each:
        result["error"] = "not_connected"
    result["connections"] = each
    return result


def _identified(summary: ConnectionSummary) -> dict[str, Any]:
    """What tells a connection that needs the user again apart from the connector's others."""
    found: dict[str, Any] = {"connectionId": summary.connection_id}
    if summary.label is not None:
        found["label"] = summary.label
    if summary.account:
        found["account"] = dict(summary.account)
    return found


def _status_json(connector: Connector, summary: ConnectionSummary | None) -> dict[str, Any]:
    """``{"connected": true, "status": {...}}`` or ``{"connected": false, "error": ...}``.

    A connection that needs the user again says why: ``{"connected": false,
    "error": "needs_reauth", "reason": "invalid_grant", "connectionId": ...}``
    (``scopes_missing`` with ``missingScopes`` when the connector now asks for more),
    with its ``label`` and the ``account`` it was connected to, if known.
    """
    if summary is None:
        return {"connected": False, "error": "not_connected"}
    if summary.state is ConnectionState.NEEDS_REAUTH:
        return {
            "connected": False,
            "error": "needs_reauth",
            "reason": summary.state_reason or "invalid_grant",
            **_identified(summary),
        }
    if missing := missing_scopes(connector, summary):
        return {
            "connected": False,
            "error": "needs_reauth",
            "reason": "scopes_missing",
            "missingScopes": list(missing),
            **_identified(summary),
        }
    details: dict[str, Any] = {
        **summary.account,
        "connectionId": summary.connection_id,
        "authType": connector.auth.type,
    }
    if summary.label is not None:
        details["label"] = summary.label
    details.update(flow_for(connector).status_details(connector, summary))
    if summary.config:
        details["config"] = dict(summary.config)
    details["connectedAt"] = int(summary.created_at)
    if summary.connected_by is not None:
        details["connectedBy"] = {"id": summary.connected_by, "name": summary.connected_by_name}
    if summary.verified_at is not None and summary.verify_reason is None:
        details["verifiedAt"] = int(summary.verified_at)
    if summary.verify_reason is not None:
        details["verificationError"] = summary.verify_reason
    if summary.last_refreshed_at is not None:
        details["lastRefreshedAt"] = int(summary.last_refreshed_at)
    if summary.last_error is not None:
        details["lastError"] = summary.last_error
    return {"connected": True, "status": details}
