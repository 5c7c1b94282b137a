"""An in-memory store, for tests and quick demos only: it forgets everything on exit."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import attrs

from .._events import ConnectionEvent
from .._exceptions import AccountTakenError, NotConnectedError
from ._base import EventRecord, Lease, Outbox, Store, Stream, only_one
from ._records import ConnectionSummary, PendingAuthorization, StoredConnection

__all__ = ["MemoryStore"]

Key = tuple[str, str, str]


def _order(connection: StoredConnection) -> tuple[str, str, float, str]:
    return (
        connection.tenant,
        connection.connector_id,
        connection.created_at,
        connection.connection_id,
    )


class _MemoryLease(Lease):
    def __init__(self, store: MemoryStore, key: Key, connection: StoredConnection | None) -> None:
        self.store = store
        self.key = key
        self.connection = connection

    async def save(
        self, connection: StoredConnection, *, event: ConnectionEvent | None = None
    ) -> StoredConnection:
        if (connection.tenant, connection.connector_id, connection.connection_id) != self.key:
            raise ValueError("a lease saves only the connection it holds")
        saved = self.store._put(connection, event, existing=True)
        self.connection = saved
        return saved


@attrs.define
class _Stream:
    delivered_seq: int
    pending: bool = True
    attempts: int = 0
    next_attempt_at: float = 0.0
    claimed_by: str | None = None
    claimed_until: float | None = None
    last_error: str | None = None


class _MemoryOutbox(Outbox):
    """The outbox of :class:`MemoryStore`: the same rules, in this process's memory."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._events: list[tuple[int, ConnectionEvent]] = []
        self._destinations: dict[str, int] = {}
        self._streams: dict[tuple[str, str, str, str], _Stream] = {}
        self._seq = 0

    def _write(self, event: ConnectionEvent) -> None:
        """Keep ``event``; the caller holds the lock (with the change it reports)."""
        self._seq += 1
        self._events.append((self._seq, event))
        for name, since in self._destinations.items():
            key = (name, event.tenant, event.connector_id, event.connection_id)
            stream = self._streams.setdefault(key, _Stream(since, next_attempt_at=event.at))
            stream.pending = True

    async def register_destinations(self, names: Sequence[str]) -> None:
        with self._lock:
            # The first destinations ever take the events written before (nobody could
            # have delivered them); any later one, those written from now on.
            since = self._seq if self._destinations else 0
            for name in names:
                if name in self._destinations:
                    continue
                self._destinations[name] = since
                for seq, event in self._events:
                    if seq > since:
                        key = (name, event.tenant, event.connector_id, event.connection_id)
                        self._streams.setdefault(key, _Stream(since, next_attempt_at=event.at))

    async def claim(
        self, destinations: Sequence[str], holder: str, *, now: float, limit: int, hold: float
    ) -> list[Stream]:
        with self._lock:
            due = [
                (key, stream)
                for key, stream in self._streams.items()
                if key[0] in destinations
                and stream.pending
                and stream.next_attempt_at <= now
                and (stream.claimed_until is None or stream.claimed_until < now)
            ]
            due.sort(key=lambda item: item[1].next_attempt_at)
            claimed = []
            for key, stream in due[:limit]:
                stream.claimed_by, stream.claimed_until = holder, now + hold
                claimed.append(Stream(*key, stream.delivered_seq, stream.attempts))
            return claimed

    async def events(self, stream: Stream, *, limit: int) -> list[tuple[int, ConnectionEvent]]:
        with self._lock:
            found = [
                (seq, event)
                for seq, event in self._events
                if seq > stream.delivered_seq
                and (event.tenant, event.connector_id, event.connection_id)
                == (stream.tenant, stream.connector_id, stream.connection_id)
            ]
        return found[:limit]

    def _stream(self, stream: Stream) -> _Stream | None:
        key = (stream.destination, stream.tenant, stream.connector_id, stream.connection_id)
        return self._streams.get(key)

    async def delivered(self, stream: Stream, holder: str, seq: int, *, until: float) -> bool:
        with self._lock:
            found = self._stream(stream)
            if found is None or found.claimed_by != holder:
                return False
            found.delivered_seq, found.attempts, found.last_error = seq, 0, None
            found.claimed_until = until
            return True

    async def release(
        self,
        stream: Stream,
        holder: str,
        *,
        now: float,
        retry_at: float | None = None,
        error: str | None = None,
        skip_to: int | None = None,
    ) -> None:
        with self._lock:
            found = self._stream(stream)
            if found is None or found.claimed_by != holder:
                return
            if skip_to is not None:
                found.delivered_seq, found.attempts, found.last_error = skip_to, 0, error
            elif retry_at is not None:
                found.attempts += 1
                found.next_attempt_at, found.last_error = retry_at, (error or "")[:200] or None
            else:
                found.next_attempt_at = now
            found.claimed_by = found.claimed_until = None
            found.pending = any(
                seq > found.delivered_seq
                and (event.tenant, event.connector_id, event.connection_id)
                == (stream.tenant, stream.connector_id, stream.connection_id)
                for seq, event in self._events
            )

    async def recent(
        self, *, tenant: str | None = None, connector_id: str | None = None, limit: int = 50
    ) -> list[EventRecord]:
        with self._lock:
            found = [
                (seq, event)
                for seq, event in reversed(self._events)
                if tenant in (None, event.tenant) and connector_id in (None, event.connector_id)
            ][:limit]
            records = []
            for seq, event in found:
                deliveries = {}
                for (name, *connection), stream in self._streams.items():
                    same = tuple(connection) == (
                        event.tenant,
                        event.connector_id,
                        event.connection_id,
                    )
                    if not same or seq <= self._destinations.get(name, 0):
                        continue
                    if stream.delivered_seq >= seq:
                        deliveries[name] = "delivered"
                    elif stream.last_error:
                        deliveries[name] = (
                            f"pending ({stream.attempts} failed: {stream.last_error})"
                        )
                    else:
                        deliveries[name] = "pending"
                records.append(EventRecord(seq, event, deliveries))
            return records

    async def prune(self, before: float, *, waiting: bool = False) -> int:
        with self._lock:
            # Unless told otherwise, an event some destination still waits for is kept.
            behind: dict[tuple[str, str, str], int] = {}
            for (_name, *connection), stream in self._streams.items():
                key = (connection[0], connection[1], connection[2])
                behind[key] = min(behind.get(key, stream.delivered_seq), stream.delivered_seq)
            kept = [
                (seq, event)
                for seq, event in self._events
                if event.at >= before
                or (
                    not waiting
                    and seq
                    > behind.get((event.tenant, event.connector_id, event.connection_id), seq)
                )
            ]
            gone = len(self._events) - len(kept)
            self._events = kept
            return gone


class MemoryStore(Store):
    """Keeps everything in this process. Not for production: nothing survives a restart."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, PendingAuthorization] = {}
        self._connections: dict[Key, StoredConnection] = {}
        # Thread locks, waited for without blocking the loop: a sync client's loop and the
        # server's may both hold leases.
        self._leases: dict[Key, threading.Lock] = {}
        self.outbox: _MemoryOutbox = _MemoryOutbox(self._lock)

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

    def _of(self, tenant: str, connector_id: str) -> list[StoredConnection]:
        """The tenant's connections to ``connector_id``, oldest first; the caller holds the lock."""
        found = [
            c
            for (t, c_id, _), c in self._connections.items()
            if (t, c_id) == (tenant, connector_id)
        ]
        return sorted(found, key=_order)

    async def get(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> StoredConnection | None:
        with self._lock:
            if connection_id is not None:
                return self._connections.get((tenant, connector_id, connection_id))
            found = self._of(tenant, connector_id)
        return only_one(found, connector_id)

    async def by_account(
        self, tenant: str, connector_id: str, account_key: str
    ) -> StoredConnection | None:
        with self._lock:
            found = [c for c in self._of(tenant, connector_id) if c.account_key == account_key]
        return found[0] if found else None

    async def summary(
        self, tenant: str, connector_id: str, connection_id: str | None = None
    ) -> ConnectionSummary | None:
        connection = await self.get(tenant, connector_id, connection_id)
        return None if connection is None else ConnectionSummary.of(connection)

    async def summaries(self, tenant: str) -> list[ConnectionSummary]:
        return await self.list(tenant=tenant)

    async def list(
        self, *, tenant: str | None = None, connector_id: str | None = None
    ) -> list[ConnectionSummary]:
        with self._lock:
            found = [
                c
                for c in self._connections.values()
                if tenant in (None, c.tenant) and connector_id in (None, c.connector_id)
            ]
        return [ConnectionSummary.of(c) for c in sorted(found, key=_order)]

    async def put(
        self, connection: StoredConnection, *, event: ConnectionEvent | None = None
    ) -> StoredConnection:
        return self._put(connection, event)

    def _put(
        self,
        connection: StoredConnection,
        event: ConnectionEvent | None,
        *,
        existing: bool = False,
    ) -> StoredConnection:
        """Store ``connection`` (``existing``: only over itself, as a lease saves), under
        one hold of the lock: a delete cannot come in between and be undone."""
        key = (connection.tenant, connection.connector_id, connection.connection_id)
        with self._lock:
            if existing and key not in self._connections:
                raise NotConnectedError(
                    f"{connection.connector_id} was disconnected while its tokens were refreshed",
                    connector_id=connection.connector_id,
                )
            for other in self._of(connection.tenant, connection.connector_id):
                same_account = other.account_key == connection.account_key
                if same_account and other.connection_id != connection.connection_id:
                    raise AccountTakenError(
                        f"another connection of {connection.connector_id} holds that account",
                        connector_id=connection.connector_id,
                    )
            old = self._connections.get(key)
            stored = attrs.evolve(
                connection,
                version=(old.version if old else 0) + 1,
                created_at=old.created_at if old else connection.created_at,
                # Snapshots, as a database keeps: the caller's dicts may change later.
                config=dict(connection.config),
                secrets=dict(connection.secrets),
            )
            self._connections[key] = stored
            if event is not None:
                self.outbox._write(event)
        return stored

    async def delete(
        self,
        tenant: str,
        connector_id: str,
        connection_id: str,
        *,
        event: ConnectionEvent | None = None,
    ) -> bool:
        with self._lock:
            gone = self._connections.pop((tenant, connector_id, connection_id), None) is not None
            if gone and event is not None:
                self.outbox._write(event)
            return gone

    @asynccontextmanager
    async def lease(
        self, tenant: str, connector_id: str, connection_id: str
    ) -> AsyncIterator[Lease]:
        key = (tenant, connector_id, connection_id)
        with self._lock:
            lock = self._leases.setdefault(key, threading.Lock())
        while not lock.acquire(blocking=False):
            await anyio.sleep(0.002)
        try:
            yield _MemoryLease(self, key, await self.get(tenant, connector_id, connection_id))
        finally:
            lock.release()
