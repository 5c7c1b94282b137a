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

A deliverer claims a connection's stream of events for one destination when
it can start on it, delivers its events in order and records how far it got
(behind the deliveries: a record does not hold up the next one); a failure
(an exception, a non-2xx answer, a timeout) keeps the event for a later
attempt, with a doubling pause, and holds back that connection's later
events for that destination only. Replicas claim different streams, so each
event reaches each destination once; one killed mid-delivery lets its claims
run out, and another replica delivers again what it had not recorded (at
least once).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import inspect
import json
import logging
import random
import secrets
import threading
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
    from anyio.abc import TaskGroup

    from ..store import Outbox, Stream
    from ._service import Connections

__all__ = ["Deliverer", "Listener", "sign_webhook"]

# Our own generator: jitter never touches (or depends on) the global random state.
_jitter = random.Random()

log = logging.getLogger("connectors_core.events")

UNRECORDED = 4
"""Deliveries of a stream that may go out before the earlier ones are recorded: the most
that go out again, per stream a deliverer was delivering, after it crashes."""

THREADS = 8
"""Sync listeners that may run at once (each in a thread of its own), hung ones included."""

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
    :param batch: streams claimed in one pass (a few at a time), and events read from
        a stream at once.
    :param concurrency: streams delivered at the same time.
    :param hold: seconds a claim lasts without news (a dead deliverer's run out); at
        least twice ``CONNECTORS_EVENT_TIMEOUT``, so that a slow delivery keeps its claim.
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
        # A delivery may take event_timeout; its claim must outlast it, or another
        # deliverer would take the stream over meanwhile and deliver the event again.
        self.hold = max(hold, 2 * self.settings.event_timeout)
        self.first_retry = first_retry
        self.max_retry = max_retry
        self.max_attempts = max_attempts
        self.holder = "deliverer-" + secrets.token_hex(8)
        self._transport = transport
        self._http: httpx2.AsyncClient | None = None
        # Threads of sync listeners still running, per connection: one that hangs past its
        # timeout keeps its thread (Python cannot stop it), and holds back the connection's
        # next events until it ends; at most THREADS such threads at once.
        self._threads = threading.BoundedSemaphore(THREADS)
        self._running: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._running_lock = threading.Lock()
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
        """One pass: claim due streams, deliver what they hold; how many events went out
        (each once, whatever the number of destinations it went to).

        A pass claims up to ``batch`` streams, a few at a time as its ``concurrency``
        slots free up (a stream claimed only when it can start keeps its claim for
        its delivery, not for a wait in a queue), until no stream is due.
        """
        outbox = self.connections.store.outbox
        if not self._registered:
            await self.register()
        now = time.time()
        if now - self._pruned_at > 600:
            self._pruned_at = now
            await self._prune(now)
        destinations = list(self.destinations)
        chunk = max(1, self.concurrency // 4)  # claim when this many slots are free
        sent: set[int] = set()  # the events' sequence numbers
        running = claimed = 0
        freed = anyio.Event()

        async def one(stream: Stream) -> None:
            nonlocal running
            try:
                await self._stream(stream, sent)
            finally:
                running -= 1
                freed.set()

        async with anyio.create_task_group() as group:
            due = True
            while True:
                room = min(self.concurrency - running, self.batch - claimed)
                if due and room > 0 and (room >= chunk or running == 0):
                    streams = await outbox.claim(
                        destinations, self.holder, now=time.time(), limit=room, hold=self.hold
                    )
                    due = len(streams) == room  # fewer: nothing else is due for now
                    claimed += len(streams)
                    running += len(streams)
                    for stream in streams:
                        group.start_soon(one, stream)
                if running == 0:
                    break
                freed = anyio.Event()  # no await since the check: no wake-up is missed
                await freed.wait()
        return len(sent)

    async def _prune(self, now: float) -> None:
        """Forget the events kept long enough: once every destination had them, after the
        retention; those still waited for, after four times it (logged: a destination
        nobody serves any more, or deliverers down that long)."""
        outbox = self.connections.store.outbox
        retention = self.settings.event_retention
        await outbox.prune(now - retention)
        dropped = await outbox.prune(now - 4 * retention, waiting=True)
        if dropped:
            log.error(
                "deleted %d event(s) never delivered to every destination within %d s",
                dropped,
                4 * retention,
            )

    async def _stream(self, stream: Stream, sent: set[int]) -> None:
        """Deliver one stream's events in order, until one fails; add them to ``sent``."""
        outbox = self.connections.store.outbox
        deliver = self.destinations[stream.destination]
        progress = _Progress(outbox, stream, self.holder, self.hold)
        delivered = False
        try:
            async with anyio.create_task_group() as records:
                for seq, event in await outbox.events(stream, limit=self.batch):
                    await progress.room()
                    if progress.lost:
                        break
                    try:
                        with anyio.fail_after(self.settings.event_timeout):
                            await deliver(event)
                    except Exception as exc:  # noqa: BLE001 - any failure means "later", never a crash
                        await progress.settled()
                        if not progress.lost:
                            # A delivery in this pass started the count again.
                            earlier = 0 if delivered else stream.attempts
                            await self._failed(stream, seq, event, exc, earlier)
                        return
                    delivered = True
                    sent.add(seq)
                    progress.note(seq, records)
            if not progress.lost:  # else the claim ran out and another deliverer took over
                await outbox.release(stream, self.holder, now=time.time())
        except BaseException:
            with anyio.CancelScope(shield=True):
                await progress.record_last()
                await outbox.release(stream, self.holder, now=time.time())
            raise

    async def _failed(
        self,
        stream: Stream,
        seq: int,
        event: ConnectionEvent,
        exc: BaseException,
        earlier: int,
    ) -> None:
        """Keep ``event`` for a later attempt (``earlier`` attempts at it failed before), or
        give it up after ``max_attempts``."""
        why = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        if not isinstance(exc, _Failed | TimeoutError):
            why = type(exc).__name__  # a listener's message may quote anything
        attempts = earlier + 1
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
                self._in_thread(listener, event), abandon_on_cancel=True
            )
            if inspect.isawaitable(result):
                await result

    def _in_thread(self, listener: Listener, event: ConnectionEvent) -> Callable[[], object]:
        """``listener(event)`` for a thread of its own, which it holds until it returns.

        :raises _Failed: a listener's thread for an earlier event of the connection is
            still running (the order would break), or every thread is taken.
        """
        key = (event.tenant, event.connector_id, event.connection_id)
        with self._running_lock:
            if self._running[key]:
                raise _Failed("a listener still runs for an earlier event of this connection")
            if not self._threads.acquire(blocking=False):
                raise _Failed(f"{THREADS} listener threads are still running")
            self._running[key] += 1

        def call() -> object:
            try:
                return listener(event)
            finally:
                with self._running_lock:
                    self._running[key] -= 1
                    if not self._running[key]:
                        del self._running[key]
                self._threads.release()

        return call

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


class _Progress:
    """How far a stream's delivery got, recorded behind it.

    A delivery does not wait for the previous one's record: one record is on its
    way at a time, with the latest delivery, and the deliveries made meanwhile
    are recorded together by the next one, up to :data:`UNRECORDED` of them. After
    a crash, the deliveries not yet recorded go out again (at least once).
    """

    def __init__(self, outbox: Outbox, stream: Stream, holder: str, hold: float) -> None:
        self._outbox = outbox
        self._stream = stream
        self._holder = holder
        self._hold = hold
        self._latest = self._recorded = stream.delivered_seq
        self._noted = self._counted = 0  # deliveries so far; of them, recorded
        self._recording = False
        self._changed = anyio.Event()  # set, and replaced, after each record
        self.lost = False
        """Whether a record found the claim gone (run out, and another deliverer took it)."""

    def note(self, seq: int, group: TaskGroup) -> None:
        """The stream's events up to ``seq`` were delivered: record it (in ``group``)."""
        self._latest = seq
        self._noted += 1
        if not self._recording:
            self._recording = True
            group.start_soon(self._record)

    async def _record(self) -> None:
        try:
            while self._recorded < self._latest and not self.lost:
                seq, noted = self._latest, self._noted
                until = time.time() + self._hold  # each record extends the claim
                if await self._outbox.delivered(self._stream, self._holder, seq, until=until):
                    self._recorded, self._counted = seq, noted
                else:
                    self.lost = True
                self._wake()
        finally:
            self._recording = False
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def room(self) -> None:
        """Wait while :data:`UNRECORDED` deliveries are not recorded yet."""
        while self._recording and self._noted - self._counted >= UNRECORDED:
            await self._changed.wait()

    async def settled(self) -> None:
        """Wait until every delivery so far is recorded (or the claim is found lost)."""
        while self._recording:
            await self._changed.wait()

    async def record_last(self) -> None:
        """Record the latest delivery now, if a record may be missing (the stream stops)."""
        if not self.lost and self._latest > self._recorded:
            until = time.time() + self._hold
            if await self._outbox.delivered(self._stream, self._holder, self._latest, until=until):
                self._recorded = self._latest
