"""An in-memory store, for tests and quick demos only: it forgets everything on exit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs

from .._exceptions import NotConnectedError
from ._base import Lease, Store
from ._records import ConnectionSummary, PendingAuthorization, StoredConnection

__all__ = ["MemoryStore"]


class _MemoryLease(Lease):
    def __init__(self, store: MemoryStore, connection: StoredConnection | None) -> None:
        self.store = store
        self.connection = connection

    async def save(self, connection: StoredConnection) -> StoredConnection:
        if await self.store.get(connection.tenant, connection.connector_id) is None:
            raise NotConnectedError(
                f"{connection.connector_id} was disconnected while its tokens were refreshed",
                connector_id=connection.connector_id,
            )
        saved = await self.store.put(connection)
        self.connection = saved
        return saved


class MemoryStore(Store):
    """Keeps everything in this process. Not for production: nothing survives a restart."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, PendingAuthorization] = {}
        self._connections: dict[tuple[str, str], StoredConnection] = {}
        self._leases: dict[tuple[str, str], asyncio.Lock] = {}

    async def put_authorization(
        self, pending: PendingAuthorization, *, now: float, max_per_session: int = 10
    ) -> None:
        if max_per_session < 1:
            raise ValueError("max_per_session must be at least 1")
        with self._lock:
            for state in [s for s, p in self._pending.items() if p.expires_at <= now]:
                del self._pending[state]
            self._pending[pending.state] = pending = attrs.evolve(
                pending, config=dict(pending.config), secrets=dict(pending.secrets)
            )
            same = [p for p in self._pending.values() if p.session_hash == pending.session_hash]
            # The new one first, then the newest: the oldest beyond the cap go.
            same.sort(key=lambda p: (p.state != pending.state, -p.expires_at))
            for old in same[max_per_session:]:
                del self._pending[old.state]

    async def peek_authorization(self, state: str, *, now: float) -> PendingAuthorization | None:
        with self._lock:
            pending = self._pending.get(state)
        return pending if pending is not None and pending.expires_at > now else None

    async def take_authorization(self, state: str, *, now: float) -> PendingAuthorization | None:
        with self._lock:
            pending = self._pending.pop(state, None)
        return pending if pending is not None and pending.expires_at > now else None

    async def get(self, tenant: str, connector_id: str) -> StoredConnection | None:
        with self._lock:
            return self._connections.get((tenant, connector_id))

    async def summary(self, tenant: str, connector_id: str) -> ConnectionSummary | None:
        connection = await self.get(tenant, connector_id)
        return None if connection is None else ConnectionSummary.of(connection)

    async def summaries(self, tenant: str) -> dict[str, ConnectionSummary]:
        with self._lock:
            mine = [c for (owner, _), c in self._connections.items() if owner == tenant]
        return {c.connector_id: ConnectionSummary.of(c) for c in mine}

    async def list(
        self, *, tenant: str | None = None, connector_id: str | None = None
    ) -> list[ConnectionSummary]:
        with self._lock:
            found = [
                c
                for (owner, connector), c in sorted(self._connections.items())
                if tenant in (None, owner) and connector_id in (None, connector)
            ]
        return [ConnectionSummary.of(c) for c in found]

    async def put(self, connection: StoredConnection) -> StoredConnection:
        key = (connection.tenant, connection.connector_id)
        with self._lock:
            old = self._connections.get(key)
            stored = attrs.evolve(
                connection,
                version=(old.version if old else 0) + 1,
                # Snapshots, as a database keeps: the caller's dicts may change later.
                config=dict(connection.config),
                secrets=dict(connection.secrets),
            )
            self._connections[key] = stored
        return stored

    async def delete(self, tenant: str, connector_id: str) -> bool:
        with self._lock:
            return self._connections.pop((tenant, connector_id), None) is not None

    @asynccontextmanager
    async def lease(self, tenant: str, connector_id: str) -> AsyncIterator[Lease]:
        lock = self._leases.setdefault((tenant, connector_id), asyncio.Lock())
        async with lock:
            yield _MemoryLease(self, await self.get(tenant, connector_id))
