"""A connection's life: stored new or over an old one, renamed, disconnected; and its events.

Every change here is written with the event that reports it, in one
transaction. New credentials become a new connection, or replace those of
the connection already holding that provider account (whose old
credentials are then revoked where the provider allows): a tenant never
holds one account twice. Connecting a named connection again with another
account is ``account_mismatch``, and stores nothing.
"""

from __future__ import annotations

import inspect
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import attrs

from .._events import Actor, ConnectionEvent, EventType
from .._exceptions import (
    AccountTakenError,
    IntegrationError,
    NotConnectedError,
    SecretError,
)
from .._manifest import Connector
from .._registry import Registry
from .._settings import Settings
from ..flows import ReplaceCheck, flow_for
from ..store import ConnectionSummary, Store, StoredConnection
from ._tokens import _credential_of

if TYPE_CHECKING:
    import httpx2
    import pluggy

    from ..flows import FlowContext

__all__ = ["Lifecycle"]

log = logging.getLogger("connectors_core.connections")

_LABEL = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


class Lifecycle:
    """The part of :class:`~connectors_core.connections.Connections` that stores and removes."""

    registry: Registry
    store: Store
    settings: Settings
    _clock: Callable[[], float]

    def http(self) -> httpx2.AsyncClient:
        raise NotImplementedError  # pragma: no cover - Connections has it

    async def plugin_hooks(self, connector: Connector) -> pluggy.HookRelay:
        raise NotImplementedError  # pragma: no cover - Connections has it

    def connector(self, connector_id: str) -> Connector:
        raise NotImplementedError  # pragma: no cover - Connections has it

    # --- storing new credentials --------------------------------------------------------

    async def save_connection(
        self,
        connector: Connector,
        candidate: StoredConnection,
        *,
        hooks: pluggy.HookRelay,
        target: str | None = None,
        actor: Actor | None = None,
        may_replace: ReplaceCheck | None = None,
    ) -> StoredConnection:
        """Store verified new credentials: a new connection, or over the account's own.

        The plugin's ``after_connect`` hook adds what it keeps of the account
        first. A connector with several connections tells them apart by its
        ``accountKey`` status field: connecting an account already connected
        updates that connection (``reconnected``), and its old credentials
        are revoked where the provider allows; any other account is a new
        connection (``connected``). A connector with one connection per
        tenant replaces it. ``target`` names the connection being connected
        again, whose account may not change (its ``accountKey``; for a
        single-connection connector its organization, else its user, where
        both are known). ``may_replace`` is asked before an existing
        connection's credentials are replaced.

        :raises IntegrationError: ``account_mismatch`` (``target`` holds another
            account), ``verification_failed`` (the provider did not say which
            account), ``forbidden`` (``may_replace`` refused); the new
            credentials are revoked where they can be, and nothing is stored.
        :raises NotConnectedError: ``target`` is gone.
        """
        candidate = await self._after_connect(connector, candidate, hooks)
        try:
            candidate = attrs.evolve(
                candidate,
                account_key=self._account_key(connector, candidate),
                connected_by=None if actor is None else actor.id,
                connected_by_name=None if actor is None else actor.name,
            )
            for attempt in (1, 2):
                existing = await self._existing(connector, candidate, target)
                if existing is not None:
                    if may_replace is not None and not await may_replace(
                        ConnectionSummary.of(existing)
                    ):
                        raise IntegrationError(
                            f"you may not replace the credentials of {connector.id} connection "
                            f"{existing.connection_id}",
                            reason="forbidden",
                            connector_id=connector.id,
                        )
                    return await self._replace(connector, existing, candidate, hooks, actor)
                event = ConnectionEvent.about(
                    candidate, EventType.CONNECTED, at=self._clock(), actor=actor
                )
                try:
                    stored = await self.store.put(candidate, event=event)
                except AccountTakenError:
                    if attempt == 2:
                        raise
                    continue  # connected by someone else a moment ago: update that one
                log.info("connected %s for tenant %s", connector.id, candidate.tenant)
                return stored
        except IntegrationError:
            # Nothing is stored: the credentials just granted must not stay valid either.
            await self._revoke(connector, candidate, hooks, replacing=True)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _account_key(self, connector: Connector, connection: StoredConnection) -> str:
        """What tells this connection apart from the connector's others (``""``: one only)."""
        settings = connector.connection
        if settings is None or not settings.multiple or settings.account_key is None:
            return ""
        value = connection.account.get(settings.account_key)
        if not value:
            raise IntegrationError(
                f"{connector.id} did not say which account this is (no {settings.account_key} "
                "in what its verification found)",
                reason="verification_failed",
                connector_id=connector.id,
            )
        return str(value)[:255]

    async def _existing(
        self, connector: Connector, candidate: StoredConnection, target: str | None
    ) -> StoredConnection | None:
        """The connection the new credentials replace, if any."""
        tenant = candidate.tenant
        if target is None:
            found = await self.store.by_account(tenant, connector.id, candidate.account_key)
            if found is None and candidate.account_key:
                found = await self._legacy(connector, candidate)
            return found
        existing = await self.store.get(tenant, connector.id, target)
        if existing is None:
            raise NotConnectedError(
                f"the {connector.id} connection to connect again is gone", connector_id=connector.id
            )
        mismatch = _other_account(connector, existing, candidate)
        if mismatch is not None:
            raise IntegrationError(
                f"that is another {connector.id} account ({mismatch[1]}) than this "
                f"connection's ({mismatch[0]}); connect it as a new connection instead",
                reason="account_mismatch",
                connector_id=connector.id,
            )
        return existing

    async def _legacy(
        self, connector: Connector, candidate: StoredConnection
    ) -> StoredConnection | None:
        """The tenant's connection made before the connector held several (its account
        key is empty), if it is of the candidate's account."""
        legacy = await self.store.by_account(candidate.tenant, connector.id, "")
        key = connector.connection.account_key if connector.connection else None
        if legacy is None or key is None:
            return None
        value = legacy.account.get(key)
        return legacy if value and str(value)[:255] == candidate.account_key else None

    async def _replace(
        self,
        connector: Connector,
        existing: StoredConnection,
        candidate: StoredConnection,
        hooks: pluggy.HookRelay,
        actor: Actor | None,
    ) -> StoredConnection:
        merged = attrs.evolve(
            candidate,
            connection_id=existing.connection_id,
            created_at=existing.created_at,
            label=existing.label,
        )
        if existing.connected_by is not None:
            # Who made the connection, on the day it was made (who connected it again
            # is the actor of its reconnected event).
            merged = attrs.evolve(
                merged,
                connected_by=existing.connected_by,
                connected_by_name=existing.connected_by_name,
            )
        event = ConnectionEvent.about(merged, EventType.RECONNECTED, at=self._clock(), actor=actor)
        stored = await self.store.put(merged, event=event)
        log.info("connected %s for tenant %s again", connector.id, merged.tenant)
        if _credential_of(existing) != _credential_of(stored) and not _shares_tokens(
            existing, stored
        ):
            await self._revoke(connector, existing, hooks, replacing=True)
        return stored

    async def _after_connect(
        self, connector: Connector, candidate: StoredConnection, hooks: pluggy.HookRelay
    ) -> StoredConnection:
        """The plugin's ``after_connect``: account data to keep. Its failure costs only that."""
        try:
            async with self.http() as http:
                found = hooks.after_connect(
                    connector=connector, connection=candidate, http=http, settings=self.settings
                )
                if inspect.isawaitable(found):
                    found = await found
        except Exception as exc:  # noqa: BLE001 - a plugin's bug must not lose the connection
            # The type only: a message may quote a response that carries a token.
            log.warning("after_connect of %s raised %s", connector.id, type(exc).__name__)
            return candidate
        if not isinstance(found, Mapping):
            return candidate
        extra = {str(k): str(v)[:200] for k, v in found.items()}
        return attrs.evolve(candidate, account={**candidate.account, **extra})

    async def _revoke(
        self,
        connector: Connector,
        connection: StoredConnection,
        hooks: pluggy.HookRelay | None = None,
        *,
        replacing: bool = False,
    ) -> None:
        """Revoke ``connection``'s credentials at the provider, unless the plugin does or says not.

        Failures are logged, never raised: what is local goes regardless.
        """
        if hooks is not None:
            try:
                async with self.http() as http:
                    decided = hooks.before_disconnect(
                        connector=connector,
                        connection=connection,
                        http=http,
                        settings=self.settings,
                        replacing=replacing,
                    )
                    if inspect.isawaitable(decided):
                        decided = await decided
            except Exception as exc:  # noqa: BLE001 - a plugin's bug must not block removal
                log.warning("before_disconnect of %s raised %s", connector.id, type(exc).__name__)
                decided = None
            if decided is not None:
                return  # True: the plugin revoked; False: nothing is to be revoked
        await flow_for(connector).disconnect(cast("FlowContext", self), connector, connection)

    # --- removing, renaming ---------------------------------------------------------------

    async def disconnect(
        self,
        tenant: str,
        connector_id: str,
        connection_id: str | None = None,
        *,
        actor: Actor | None = None,
    ) -> bool:
        """Revoke at the provider where possible, then delete the connection and its secrets.

        Idempotent: returns whether there was a connection. Local secrets are
        deleted even when revocation fails; a ``disconnected`` event goes out
        with the deletion. A connection of a connector that is no longer
        installed is deleted without revocation (nothing knows how).

        :raises ConnectionRequiredError: the connector holds several
            connections and ``connection_id`` names none.
        """
        if connector_id not in self.registry:
            return await self._forget(tenant, connector_id, connection_id, actor)
        connector = self.connector(connector_id)
        try:
            connection = await self.store.get(tenant, connector.id, connection_id)
        except SecretError:
            # Its key is gone or it was tampered with: nothing can be revoked, but
            # the user asked for it to go, and it must not stay.
            log.warning(
                "the stored secrets of %s for tenant %s cannot be decrypted; "
                "deleting them without revocation",
                connector.id,
                tenant,
            )
            return await self._forget(tenant, connector.id, connection_id, actor)
        if connection is None:
            return False
        await self._revoke(connector, connection, await self._hooks_or_none(connector))
        event = ConnectionEvent.about(
            connection, EventType.DISCONNECTED, at=self._clock(), actor=actor
        )
        deleted = await self.store.delete(
            tenant, connector.id, connection.connection_id, event=event
        )
        log.info("disconnected %s for tenant %s", connector.id, tenant)
        return deleted

    async def _hooks_or_none(self, connector: Connector) -> pluggy.HookRelay | None:
        """The plugin's hooks, or None when it cannot load: a disconnect goes on without."""
        try:
            return await self.plugin_hooks(connector)
        except IntegrationError:
            return None

    async def _forget(
        self, tenant: str, connector_id: str, connection_id: str | None, actor: Actor | None
    ) -> bool:
        """Delete without revoking (nothing can be opened, or nothing knows how)."""
        summary = await self.store.summary(tenant, connector_id, connection_id)
        if summary is None:
            if connector_id not in self.registry:
                self.registry.get(connector_id)  # UnknownConnectorError, as before
            return False
        event = ConnectionEvent.about(
            summary, EventType.DISCONNECTED, at=self._clock(), actor=actor
        )
        deleted = await self.store.delete(tenant, connector_id, summary.connection_id, event=event)
        if deleted:
            log.warning(
                "deleted the connection to %s for tenant %s without revoking it",
                connector_id,
                tenant,
            )
        return deleted

    async def rename(
        self,
        tenant: str,
        connector_id: str,
        connection_id: str,
        label: str | None,
    ) -> dict[str, Any]:
        """Give a connection a label (one line, at most 200 characters), or None to clear it.

        :returns: the connection's status JSON.
        :raises ValueError: for a label that is not one line of 1 to 200 characters.
        :raises NotConnectedError: no such connection.
        """
        if label is not None:
            label = label.strip()
            if not _LABEL.fullmatch(label) or any(
                unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in label
            ):
                # Format characters too: a right-to-left override would make the page
                # (and the confirmation) show another text than the one stored.
                raise ValueError(
                    "a label is one line of 1 to 200 characters, without control or "
                    "format characters"
                )
        connector = self.connector(connector_id)
        async with self.store.lease(tenant, connector.id, connection_id) as lease:
            held = lease.connection
            if held is None:
                raise NotConnectedError(
                    f"{connector_id} has no connection {connection_id}", connector_id=connector_id
                )
            await lease.save(attrs.evolve(held, label=label))
        status: dict[str, Any] = await self.status(tenant, connector.id, connection_id)  # type: ignore[attr-defined]
        return status


def _shares_tokens(old: StoredConnection, new: StoredConnection) -> bool:
    """Whether revoking ``old``'s tokens would revoke ``new``'s (the provider sent them again)."""
    if old.tokens is None or new.tokens is None:
        return False
    return old.tokens.access_token == new.tokens.access_token or (
        old.tokens.refresh_token is not None
        and old.tokens.refresh_token == new.tokens.refresh_token
    )


def _other_account(
    connector: Connector, existing: StoredConnection, candidate: StoredConnection
) -> tuple[str, str] | None:
    """(this connection's account, the new one) when new credentials are of another
    account than the connection they are to replace; None when they are of its own."""
    if existing.account_key or candidate.account_key:
        if not existing.account_key:  # made before the connector held several
            key = connector.connection.account_key if connector.connection else None
            known = existing.account.get(key) if key else None
            if not known or str(known)[:255] == candidate.account_key:
                return None
            return str(known), candidate.account_key
        if existing.account_key == candidate.account_key:
            return None
        return existing.account_key, candidate.account_key
    for name in ("organizationId", "userId"):  # the account, as far as both say
        before, after = existing.account.get(name), candidate.account.get(name)
        if before and after:
            return None if before == after else (f"{name} {before}", f"{name} {after}")
    return None
