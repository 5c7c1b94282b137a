"""Keeping credentials alive: renewal when due, once at a time, and the connection's health.

A renewal (an OAuth refresh, or a new client-credentials token) runs at most
once at a time per connection: callers of one process queue on a lock, and
processes sharing a database on the store's lease. Whoever gets there second
finds the token its predecessor saved and does not renew again. A rotated
refresh token is saved before anything else happens. The connection records
how it went: ``last_refreshed_at`` and no ``last_error`` after a renewal;
``last_error`` (the reason code) after a transient failure; ``needs_reauth``
with its cause when the provider will not renew at all.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
import attrs

from .._events import Actor, ConnectionEvent, EventType
from .._exceptions import IntegrationError, NeedsReauthError, NotConnectedError, SecretError
from .._manifest import Connector
from .._registry import Registry
from .._settings import Settings
from ..flows import flow_for
from ..store import ConnectionState, ConnectionSummary, Store, StoredConnection

if TYPE_CHECKING:
    from ..flows import FlowContext

__all__ = ["RefreshOutcome", "RefreshReport", "TokenKeeper", "missing_scopes"]

log = logging.getLogger("connectors_core.connections")

_CAUSE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def missing_scopes(
    connector: Connector, summary: ConnectionSummary | StoredConnection
) -> tuple[str, ...]:
    """The scopes the connector asks for now that were not asked for when it was connected.

    Compared with what was *asked*, not what the provider says it granted
    (providers spell granted scopes their own way): a connector whose new
    version needs a scope more needs the user to connect again.
    """
    asked = set(summary.requested_scopes)
    if not asked:
        return ()  # connected before the scopes were recorded: unknown
    return tuple(s for s in flow_for(connector).scopes(connector) if s not in asked)


@attrs.frozen
class RefreshOutcome:
    """What :meth:`TokenKeeper.refresh_due` did for one connection."""

    tenant: str
    connector_id: str
    connection_id: str
    result: Literal["refreshed", "unchanged", "failed", "needs_reauth"]
    """``refreshed``; ``unchanged`` (another process had just done it); ``failed``
    (a transient failure, tried again next time); ``needs_reauth``."""
    reason: str | None = None
    """The reason code of a failure, or the cause of ``needs_reauth``."""


@attrs.frozen
class RefreshReport:
    """Every connection :meth:`TokenKeeper.refresh_due` looked at, and what it did."""

    outcomes: tuple[RefreshOutcome, ...] = ()

    def count(self, result: str) -> int:
        """How many outcomes had ``result``."""
        return sum(1 for outcome in self.outcomes if outcome.result == result)


class TokenKeeper:
    """The part of :class:`~connectors_core.connections.Connections` that renews credentials."""

    registry: Registry
    store: Store
    settings: Settings
    _clock: Callable[[], float]

    async def status(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - Connections has it

    # The locks of one event loop (a lock belongs to the loop it is first used in;
    # a sync client runs its own loop).
    _locks: weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[tuple[str, str, str], asyncio.Lock]
    ]

    def _lock(self, connection: StoredConnection) -> asyncio.Lock:
        locks = self._locks.setdefault(asyncio.get_running_loop(), {})
        key = (connection.tenant, connection.connector_id, connection.connection_id)
        return locks.setdefault(key, asyncio.Lock())

    # --- when -----------------------------------------------------------------------

    def _margin(self, connector: Connector) -> float:
        """Seconds before expiry to renew ``connector``'s tokens.

        ``CONNECTORS_<ID>_REFRESH_MARGIN``, else the manifest's
        ``refreshMarginSeconds``, else ``CONNECTORS_REFRESH_MARGIN``.
        """
        configured = self.settings.connector_number(connector.id, "refresh_margin")
        if configured is not None:
            return float(configured)
        declared = flow_for(connector).refresh_margin(connector)
        return float(self.settings.refresh_margin if declared is None else declared)

    def _due(
        self,
        connector: Connector,
        expires_at: float | None,
        issued: float,
        refreshable: bool,
        within: float = 0.0,
    ) -> bool:
        """Whether a token that expires at ``expires_at`` should be renewed now.

        The margin is never more than half the token's lifetime (from when it
        was issued to when it expires): a token that lives 30 seconds is not
        renewed again the moment it arrives. A token without an expiry but
        with a refresh token is taken to live ``default_token_lifetime``.
        ``within`` adds seconds: what will be due by then (a cron's interval).
        """
        if expires_at is None:
            if not refreshable:
                return False
            expires_at = issued + self.settings.default_token_lifetime
        margin = self._margin(connector)
        if issued and expires_at > issued:
            margin = min(margin, (expires_at - issued) / 2)
        return expires_at - self._clock() <= margin + within

    def _token_due(self, connection: StoredConnection, within: float = 0.0) -> bool:
        tokens = connection.tokens
        if tokens is None:
            return False
        connector = self.registry.get(connection.connector_id)
        return self._due(
            connector, tokens.expires_at, connection.updated_at, bool(tokens.refresh_token), within
        )

    def _idle(self, last_refreshed_at: float | None, created_at: float, idle: float) -> bool:
        """Whether a refresh token has gone unused ``idle`` seconds (0: never idle)."""
        return idle > 0 and (last_refreshed_at or created_at) <= self._clock() - idle

    # --- reading a usable connection --------------------------------------------------

    async def _usable(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> StoredConnection:
        """The connection (the only one, without an id), which must be connected.

        :raises UnknownConnectorError: for an unknown connector id.
        :raises ConnectionRequiredError: without an id, when there are several.
        :raises NotConnectedError: nothing is connected.
        :raises NeedsReauthError: it needs the user again (its cause, or scopes missing).
        """
        connector = self.registry.get(connector_id)
        return self._check(connector, await self.store.get(tenant, connector.id, connection_id))

    @staticmethod
    def _check(connector: Connector, connection: StoredConnection | None) -> StoredConnection:
        """``connection``, if it is connected (see :meth:`_usable`)."""
        connector_id = connector.id
        if connection is None:
            raise NotConnectedError(f"{connector_id} is not connected", connector_id=connector_id)
        if connection.state is ConnectionState.NEEDS_REAUTH:
            raise NeedsReauthError(
                f"{connector_id} must be connected again",
                cause=connection.state_reason or "invalid_grant",
                connector_id=connector_id,
            )
        if missing := missing_scopes(connector, connection):
            raise NeedsReauthError(
                f"{connector_id} must be connected again to grant {', '.join(missing)}",
                cause="scopes_missing",
                connector_id=connector_id,
            )
        return connection

    async def _current(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> StoredConnection:
        """The usable connection, its tokens renewed first if they are due."""
        connection = await self._usable(tenant, connector_id, connection_id)
        if not self._token_due(connection):
            return connection
        return await self._renewed_or_current(connection)

    async def _renewed_or_current(self, connection: StoredConnection) -> StoredConnection:
        """The connection, its due tokens renewed; on a transient failure, as it is while
        its token has not expired yet (the failure stays recorded as ``lastError``).

        :raises NeedsReauthError: the provider refused; the connection is marked.
        :raises ProviderUnavailableError: a transient failure, and the token expired.
        """
        try:
            renewed, _by_us = await self._renewed(connection, seen=connection)
        except NeedsReauthError:
            raise
        except IntegrationError:
            tokens = connection.tokens
            expired = tokens is None or (
                tokens.expires_at is not None and tokens.expires_at <= self._clock()
            )
            if expired:
                raise
            return connection
        return renewed

    # --- renewing -------------------------------------------------------------------

    def _settled(
        self,
        connection: StoredConnection,
        seen: StoredConnection | None,
        *,
        rejected: bool,
        within: float,
        idle: float,
        since: float | None = None,
    ) -> bool:
        """Whether ``connection`` needs no renewal now (someone else may have just done it).

        ``seen`` is the connection the caller read before it queued: tokens
        that changed since were renewed (or reconnected) by someone else. A
        token the provider ``rejected`` is renewed unless it changed already;
        otherwise a token is renewed when it is due, or idle.
        """
        tokens = connection.tokens
        if tokens is None:
            return True
        renewed = connection.last_refreshed_at
        if since is not None and renewed is not None and renewed >= since:
            return True  # renewed since this run began, by another replica or cron
        changed = (
            seen is not None
            and seen.tokens is not None
            and tokens.access_token != seen.tokens.access_token
        )
        if rejected:
            return changed
        if changed and (tokens.expires_at is None or tokens.expires_at > self._clock()):
            return True
        refreshable = bool(tokens.refresh_token)
        if refreshable and self._idle(connection.last_refreshed_at, connection.created_at, idle):
            return False
        return not self._token_due(connection, within)

    async def _renewed(
        self,
        connection: StoredConnection,
        *,
        seen: StoredConnection | None = None,
        rejected: bool = False,
        within: float = 0.0,
        idle: float = 0.0,
        since: float | None = None,
    ) -> tuple[StoredConnection, bool]:
        """Renew ``connection``'s tokens unless someone else did since ``seen`` (or since
        ``since``, when a run of :meth:`refresh_due` began): the
        connection after, and whether this call renewed them.

        :raises NeedsReauthError: the provider refused; the connection is marked.
        :raises ProviderUnavailableError: a transient failure, recorded as ``last_error``.
        """
        tenant, connector_id, connection_id = (
            connection.tenant,
            connection.connector_id,
            connection.connection_id,
        )
        async with self._lock(connection):
            current = await self._usable(tenant, connector_id, connection_id)
            if self._settled(
                current, seen, rejected=rejected, within=within, idle=idle, since=since
            ):
                return current, False
            return await self._refresh(
                current, seen, rejected=rejected, within=within, idle=idle, since=since
            )

    async def _refresh(
        self,
        connection: StoredConnection,
        seen: StoredConnection | None,
        *,
        rejected: bool,
        within: float,
        idle: float,
        since: float | None = None,
    ) -> tuple[StoredConnection, bool]:
        connector = self.registry.get(connection.connector_id)
        flow = flow_for(connector)
        failure: IntegrationError | None = None
        tenant, connection_id = connection.tenant, connection.connection_id
        async with self.store.lease(tenant, connector.id, connection_id) as lease:
            held = self._check(connector, lease.connection)
            if self._settled(held, seen, rejected=rejected, within=within, idle=idle, since=since):
                return held, False

            async def keep(rotated: str) -> None:
                # The provider spent the old refresh token: store the new one
                # whatever the rest of its answer turns out to be.
                nonlocal held
                assert held.tokens is not None
                tokens = attrs.evolve(held.tokens, refresh_token=rotated)
                held = await lease.save(attrs.evolve(held, tokens=tokens))

            # Shielded from the caller's cancellation (bounded by the HTTP timeout):
            # once the provider may have rotated the refresh token, what it sent
            # must be saved, or the next refresh would present a spent token.
            with anyio.CancelScope(shield=True):
                try:
                    tokens = await flow.renew(
                        cast("FlowContext", self), connector, held, on_rotated=keep
                    )
                except NeedsReauthError as exc:
                    failure = exc
                    marked = attrs.evolve(
                        held,
                        state=ConnectionState.NEEDS_REAUTH,
                        state_reason=exc.cause,
                        last_error=exc.cause,
                    )
                    event = ConnectionEvent.about(
                        marked, EventType.NEEDS_REAUTH, at=self._clock(), reason=exc.cause
                    )
                    await lease.save(marked, event=event)
                except IntegrationError as exc:
                    # Recorded, and the lease left normally, so what keep() saved is committed.
                    failure = exc
                    await lease.save(attrs.evolve(held, last_error=exc.reason))
                else:
                    now = self._clock()
                    # Saved (the new refresh token with it) before the caller sees the token.
                    saved = await lease.save(
                        attrs.evolve(
                            held,
                            tokens=tokens,
                            updated_at=now,
                            last_refreshed_at=now,
                            last_error=None,
                        )
                    )
                    return saved, True
        assert failure is not None
        if isinstance(failure, NeedsReauthError):
            log.warning(
                "%s for tenant %s needs the user again (%s)", connector.id, tenant, failure.cause
            )
        else:
            log.info("renewing %s for tenant %s failed: %s", connector.id, tenant, failure.reason)
        raise failure

    # --- the public face --------------------------------------------------------------

    async def get_access_token(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> str:
        """A valid access token, renewed shortly before it expires.

        At most one renewal runs per connection at a time; callers waiting for
        it get its result. A rotated refresh token is stored before the new
        access token is returned.

        :raises UnknownConnectorError: for an unknown connector id.
        :raises IntegrationError: ``unsupported_auth`` for a connector without
            OAuth tokens (use :meth:`get_api_key` or ``client()``).
        :raises NotConnectedError: nothing is connected.
        :raises ConnectionRequiredError: the connector holds several connections and
            ``connection_id`` names none.
        :raises NeedsReauthError: the provider rejected the grant; the connection
            is marked and no further renewal is attempted until the user reconnects.
        :raises ProviderUnavailableError: a transient failure; try again later.
        """
        connector = self.registry.get(connector_id)
        connection = await self._current(tenant, connector.id, connection_id)
        if connection.tokens is None:
            raise IntegrationError(
                f"{connector.id!r} uses {flow_for(connector).label}, not OAuth tokens: "
                "use get_api_key() or client()",
                reason="unsupported_auth",
                connector_id=connector.id,
            )
        return connection.tokens.access_token

    async def refresh(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> dict[str, Any]:
        """Renew the tokens now, due or not (for an operator, ``connectors connections refresh``).

        :returns: the status JSON after the renewal.
        :raises IntegrationError: ``unsupported_auth`` when the credentials cannot
            be renewed (an API key, Basic, or OAuth tokens without a refresh token).
        :raises NeedsReauthError: the provider refused; the connection is marked.
        :raises ProviderUnavailableError: a transient failure, recorded.
        """
        connector = self.registry.get(connector_id)
        connection = await self._usable(tenant, connector.id, connection_id)
        if not flow_for(connector).renewable(connector, connection):
            raise IntegrationError(
                f"the credentials of {connector.id!r} for tenant {tenant!r} cannot be renewed "
                "without the user",
                reason="unsupported_auth",
                connector_id=connector.id,
            )
        # Renewed unless someone else renewed since it was read: that is as good.
        async with self._lock(connection):
            await self._refresh(connection, connection, rejected=True, within=0.0, idle=0.0)
        return await self.status(tenant, connector.id, connection.connection_id)

    async def refresh_due(
        self,
        *,
        tenant: str | None = None,
        connector_id: str | None = None,
        within: float = 0.0,
        idle: float | None = None,
        concurrency: int = 4,
    ) -> RefreshReport:
        """Renew every connection whose tokens are due, or whose refresh token is idle.

        For a cron job or the server's own loop (``CONNECTORS_REFRESH_INTERVAL``):
        tokens that expire within their margin (plus ``within`` seconds, a
        cron's interval) are renewed, and so are refresh tokens unused for
        ``idle`` seconds (default ``CONNECTORS_REFRESH_IDLE``), before a
        provider lets them lapse. Each renewal holds the connection's lease,
        so replicas running this at the same moment renew each token once.
        Connections of connectors no longer installed are left alone.

        :returns: what was done for each connection looked at.
        """
        idle = float(self.settings.refresh_idle if idle is None else idle)
        since = self._clock()
        candidates = [
            summary
            for summary in await self.store.list(tenant=tenant, connector_id=connector_id)
            if self._wants_renewal(summary, within, idle)
        ]
        limiter = anyio.Semaphore(max(1, concurrency))
        outcomes: list[RefreshOutcome] = []

        async def renew(summary: ConnectionSummary) -> None:
            async with limiter:
                outcomes.append(await self._renew_one(summary, within, idle, since))

        async with anyio.create_task_group() as group:
            for summary in candidates:
                group.start_soon(renew, summary)
        order = {(s.tenant, s.connector_id, s.connection_id): i for i, s in enumerate(candidates)}
        outcomes.sort(key=lambda o: order[(o.tenant, o.connector_id, o.connection_id)])
        return RefreshReport(tuple(outcomes))

    def _wants_renewal(self, summary: ConnectionSummary, within: float, idle: float) -> bool:
        if (
            summary.state is not ConnectionState.CONNECTED
            or summary.connector_id not in self.registry
        ):
            return False
        connector = self.registry.get(summary.connector_id)
        if summary.expires_at is None and not summary.refreshable:
            return False  # no token that expires, and none to renew it with
        if summary.refreshable and self._idle(summary.last_refreshed_at, summary.created_at, idle):
            return True
        return self._due(
            connector, summary.expires_at, summary.updated_at, summary.refreshable, within
        )

    async def _renew_one(
        self, summary: ConnectionSummary, within: float, idle: float, since: float
    ) -> RefreshOutcome:
        key = (summary.tenant, summary.connector_id, summary.connection_id)
        try:
            connection = await self._usable(*key)
            _after, renewed = await self._renewed(connection, within=within, idle=idle, since=since)
        except NeedsReauthError as exc:
            return RefreshOutcome(*key, "needs_reauth", exc.cause)
        except IntegrationError as exc:
            return RefreshOutcome(*key, "failed", exc.reason)
        except SecretError:
            # Its key is gone or the row was tampered with: this one cannot be renewed,
            # the others still are.
            log.warning(
                "the secrets of %s for tenant %s cannot be decrypted", key[1], summary.tenant
            )
            return RefreshOutcome(*key, "failed", "unreadable_secrets")
        return RefreshOutcome(*key, "refreshed" if renewed else "unchanged")

    async def mark_needs_reauth(
        self,
        tenant: str,
        connector_id: str,
        reason: str = "revoked",
        *,
        connection_id: str | None = None,
        actor: Actor | None = None,
        if_unchanged_since: float | None = None,
    ) -> bool:
        """Record that the connection's credentials are dead: the user must connect again.

        For a job that learns it from the provider in a way connectors-core
        cannot see (an error in a response body, a webhook saying the app was
        uninstalled). The status then says ``needs_reauth`` with ``reason``, a
        ``needs_reauth`` event goes out, and no token is handed out or renewed
        until the user connects again.

        :param reason: a short code, such as ``revoked`` or ``uninstalled``
            (lowercase letters, digits and underscores, at most 64).
        :param if_unchanged_since: mark only if the credentials were not written
            (connected again, renewed) after this moment (UNIX time): a job that
            learned of the failure with credentials read then does not mark the
            ones the user connected meanwhile.
        :returns: whether the connection changed (False: it was marked already, or
            it changed since ``if_unchanged_since``).
        :raises UnknownConnectorError: for an unknown connector id.
        :raises NotConnectedError: nothing is connected.
        :raises ValueError: for a malformed reason.
        """
        if not _CAUSE.fullmatch(reason):
            raise ValueError(f"a reason is a short code such as 'revoked', got {reason!r}")
        connector = self.registry.get(connector_id)
        connection = await self.store.get(tenant, connector.id, connection_id)
        if connection is None:
            raise NotConnectedError(f"{connector_id} is not connected", connector_id=connector_id)
        return await self._mark(connection, reason, actor=actor, unchanged_since=if_unchanged_since)

    async def _mark(
        self,
        connection: StoredConnection,
        reason: str,
        *,
        only_if: str | None = None,
        actor: Actor | None = None,
        unchanged_since: float | None = None,
    ) -> bool:
        """Mark the connection; with ``only_if``, only while its credentials are still those
        (with ``unchanged_since``, only if they were not written after it)."""
        tenant, connector_id = connection.tenant, connection.connector_id
        async with self.store.lease(tenant, connector_id, connection.connection_id) as lease:
            held = lease.connection
            if held is None:
                raise NotConnectedError(
                    f"{connector_id} is not connected", connector_id=connector_id
                )
            if held.state is ConnectionState.NEEDS_REAUTH:
                return False
            if only_if is not None and _credential_of(held) != only_if:
                return False  # reconnected or renewed meanwhile: not the credentials refused
            if unchanged_since is not None and held.updated_at > unchanged_since:
                return False
            marked = attrs.evolve(held, state=ConnectionState.NEEDS_REAUTH, state_reason=reason)
            event = ConnectionEvent.about(
                marked, EventType.NEEDS_REAUTH, at=self._clock(), reason=reason, actor=actor
            )
            await lease.save(marked, event=event)
        log.warning("%s for tenant %s needs the user again (%s)", connector_id, tenant, reason)
        return True


def _credential_of(connection: StoredConnection) -> str:
    """What identifies the credentials a request was sent with (compared, never shown)."""
    import hashlib

    parts: Iterable[Any] = (
        connection.tokens.access_token if connection.tokens else None,
        connection.api_key,
        connection.username,
        connection.password,
    )
    return hashlib.sha256(repr(tuple(parts)).encode()).hexdigest()
