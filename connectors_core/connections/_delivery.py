"""Delivering connection events: at least once, in order per connection, off the request path.

The store writes each :class:`~connectors_core.ConnectionEvent` with the
change it reports (its outbox). A :class:`Deliverer` then takes them to
each destination this process can reach:

``listeners``
    the host's callables (``create_app(..., on_event=...)``,
    ``Connections(..., listeners=...)``), sync or async;
``hooks``
    the ``on_connection_event`` hook of the plugin providing the connector;
``webhook``
    ``CONNECTORS_WEBHOOK_URL``, each event a POST signed with the Standard
    Webhooks headers (``webhook-id``, ``webhook-timestamp``,
    ``webhook-signature``: HMAC-SHA256 of ``id.timestamp.body`` with the key
    of ``CONNECTORS_WEBHOOK_SECRET``).

A deliverer claims a connection's stream of events for one destination,
delivers its events in order and records each; a failure (an exception, a
non-2xx answer, a timeout) keeps the event for a later attempt, with a
doubling pause, and holds back that connection's later events for that
destination only. Replicas claim different streams, so each event reaches
each destination once; one killed mid-delivery lets its claims run out, and
another replica delivers again what it had not recorded (at least once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import httpx2

from .._events import ConnectionEvent
from .._settings import webhook_key

if TYPE_CHECKING:
    from ..store import Stream
    from ._service import Connections

__all__ = ["Deliverer", "Listener", "sign_webhook"]

# Our own generator: jitter never touches (or depends on) the global random state.
_jitter = random.Random()

log = logging.getLogger("connectors_core.events")

Listener = Callable[[ConnectionEvent], Awaitable[None] | None]
"""A host's listener: called with each event (sync or async); raising means "try again"."""


def sign_webhook(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` of a message (Standard Webhooks ``v1``, HMAC-SHA256)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class _Failed(Exception):
    """A delivery attempt that did not succeed; the message names no secret."""


class Deliverer:
    """Takes the outbox's events to this process's destinations.

    :param connections: the service (its store, registry and settings).
    :param listeners: the host's listeners (the ``listeners`` destination, if any).
    :param batch: streams claimed at once.
    :param concurrency: streams delivered at the same time.
    :param hold: seconds a claim lasts without news (a dead deliverer's run out).
    :param first_retry: seconds before the first retry of a failed event; it doubles.
    :param max_retry: the longest pause between two attempts.
    :param max_attempts: attempts at one event before it is given up (logged) and the
        connection's next events go on.
    :param transport: an httpx2 transport for the webhook (tests).
    """

    def __init__(
        self,
        connections: Connections,
        *,
        listeners: Sequence[Listener] = (),
        batch: int = 100,
        concurrency: int = 32,
        hold: float = 60.0,
        first_retry: float = 2.0,
        max_retry: float = 600.0,
        max_attempts: int = 25,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.connections = connections
        self.settings = connections.settings
        self.listeners = tuple(listeners)
        self.batch = batch
        self.concurrency = concurrency
        self.hold = hold
        self.first_retry = first_retry
        self.max_retry = max_retry
        self.max_attempts = max_attempts
        self.holder = "deliverer-" + secrets.token_hex(8)
        self._transport = transport
        self._http: httpx2.AsyncClient | None = None
        self._threads = anyio.CapacityLimiter(8)  # sync listeners that hang hold no more
        self._registered = False
        self._pruned_at = 0.0
        self.destinations: dict[str, Callable[[ConnectionEvent], Awaitable[None]]] = {
            "hooks": self._to_hook
        }
        """This process's destinations, by name."""
        if self.listeners:
            self.destinations["listeners"] = self._to_listeners
        if self.settings.webhook_url is not None:
            self.destinations["webhook"] = self._to_webhook

    # --- the loop -------------------------------------------------------------------

    async def run(self, *, idle: float = 0.25) -> None:
        """Deliver until cancelled; pause ``idle`` seconds when there was nothing to do."""
        try:
            while True:
                try:
                    delivered = await self.run_once()
                except Exception:  # the loop outlives a failed pass (a database restart)
                    log.exception("delivering connection events failed; trying again shortly")
                    delivered = 0
                if not delivered:
                    await anyio.sleep(idle * (0.5 + _jitter.random()))
        finally:
            with anyio.CancelScope(shield=True):
                await self.aclose()

    async def register(self) -> None:
        """Make this process's destinations known to the store (the first pass does it).

        A destination receives the events written after it was first registered,
        by any process.
        """
        await self.connections.store.outbox.register_destinations(list(self.destinations))
        self._registered = True

    async def run_once(self) -> int:
        """One pass: claim due streams, deliver what they hold; how many events went out."""
        outbox = self.connections.store.outbox
        if not self._registered:
            await self.register()
        now = time.time()
        if now - self._pruned_at > 600:
            self._pruned_at = now
            await outbox.prune(now - self.settings.event_retention)
        streams = await outbox.claim(
            list(self.destinations), self.holder, now=now, limit=self.batch, hold=self.hold
        )
        delivered = 0
        limiter = anyio.CapacityLimiter(self.concurrency)

        async def one(stream: Stream) -> None:
            nonlocal delivered
            async with limiter:
                delivered += await self._stream(stream)

        async with anyio.create_task_group() as group:
            for stream in streams:
                group.start_soon(one, stream)
        return delivered

    async def _stream(self, stream: Stream) -> int:
        """Deliver one stream's events in order, until one fails; how many went out."""
        outbox = self.connections.store.outbox
        deliver = self.destinations[stream.destination]
        count = 0
        try:
            for seq, event in await outbox.events(stream, limit=self.batch):
                try:
                    with anyio.fail_after(self.settings.event_timeout):
                        await deliver(event)
                except Exception as exc:  # noqa: BLE001 - any failure means "later", never a crash
                    await self._failed(stream, seq, event, exc)
                    return count
                count += 1
                if not await outbox.delivered(
                    stream, self.holder, seq, until=time.time() + self.hold
                ):
                    return count  # the claim ran out and another deliverer took over
            await outbox.release(stream, self.holder, now=time.time())
        except BaseException:
            with anyio.CancelScope(shield=True):
                await outbox.release(stream, self.holder, now=time.time())
            raise
        return count

    async def _failed(
        self, stream: Stream, seq: int, event: ConnectionEvent, exc: BaseException
    ) -> None:
        why = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        if not isinstance(exc, _Failed | TimeoutError):
            why = type(exc).__name__  # a listener's message may quote anything
        attempts = stream.attempts + 1
        outbox = self.connections.store.outbox
        if attempts >= self.max_attempts:
            log.error(
                "gave up delivering event %s (%s of %s) to %s after %d attempts: %s",
                event.id,
                event.type.value,
                event.connector_id,
                stream.destination,
                attempts,
                why,
            )
            await outbox.release(
                stream, self.holder, now=time.time(), skip_to=seq, error=f"gave up: {why}"
            )
            return
        pause = min(self.first_retry * 2 ** (attempts - 1), self.max_retry)
        pause *= 0.75 + _jitter.random() / 2  # timing, not security: any PRNG does
        log.warning(
            "delivering event %s to %s failed (%s); attempt %d again in %.0f s",
            event.id,
            stream.destination,
            why,
            attempts + 1,
            pause,
        )
        await outbox.release(
            stream, self.holder, now=time.time(), retry_at=time.time() + pause, error=why
        )

    # --- the destinations ------------------------------------------------------------------

    async def _to_listeners(self, event: ConnectionEvent) -> None:
        for listener in self.listeners:
            if inspect.iscoroutinefunction(listener):
                await listener(event)
                continue
            result = await anyio.to_thread.run_sync(
                listener, event, abandon_on_cancel=True, limiter=self._threads
            )
            if inspect.isawaitable(result):
                await result

    async def _to_hook(self, event: ConnectionEvent) -> None:
        registry = self.connections.registry
        if event.connector_id not in registry:
            return  # its plugin is gone: nobody to tell
        connector = registry.get(event.connector_id)
        hooks = await self.connections.plugin_hooks(connector)
        result = hooks.on_connection_event(connector=connector, event=event)
        for each in result if isinstance(result, list) else [result]:
            if inspect.isawaitable(each):
                await each

    async def _to_webhook(self, event: ConnectionEvent) -> None:
        url, secret = self.settings.webhook_url, self.settings.webhook_secret
        assert url is not None, "a webhook destination exists only with a URL"
        assert secret is not None, "checked with the settings"
        body = json.dumps(
            {
                "type": f"connection.{event.type.value}",
                "timestamp": datetime.fromtimestamp(event.at, UTC).isoformat(),
                "data": event.to_json(),
            },
            separators=(",", ":"),
        ).encode()
        stamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_webhook(secret, event.id, stamp, body),
        }
        if self._http is None:
            self._http = httpx2.AsyncClient(
                timeout=self.settings.event_timeout, transport=self._transport
            )
        try:
            response = await self._http.post(url, content=body, headers=headers)
        except httpx2.TransportError as exc:
            raise _Failed(f"the webhook could not be reached ({type(exc).__name__})") from None
        if not response.is_success:
            raise _Failed(f"the webhook answered HTTP {response.status_code}")

    async def aclose(self) -> None:
        """Close the webhook's connections."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
