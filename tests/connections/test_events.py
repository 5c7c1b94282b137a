"""Connection events: written with their changes, delivered at least once, in order."""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors_core import (
    ConnectionEvent,
    EventType,
    IntegrationError,
    Registry,
    define_connector,
    hookimpl,
)
from connectors_core.connections import Connections, Settings
from connectors_core.store import generate_key, open_store
from tests.harness import Harness, serve

TENANT, ACME = "tenant-a", "acme-oauth"
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def connected(harness: Harness, tenant: str = TENANT) -> Connections:
    with harness.browser(tenant) as browser:
        assert harness.connect(browser, ACME).endswith("result=connected")
    return harness.connections


def recorded(connections: Connections, **filters: Any) -> list[ConnectionEvent]:
    """The events the store holds, oldest first."""
    records = anyio.run(lambda: connections.store.outbox.recent(limit=500, **filters))
    return [record.event for record in reversed(records)]


def types(events: list[ConnectionEvent]) -> list[str]:
    return [event.type.value for event in events]


# --- written with the change --------------------------------------------------------------


def test_each_change_writes_its_event(harness: Harness) -> None:
    connections = connected(harness)
    connected(harness)  # the same account again
    harness.advance(3600)
    harness.provider.respond_next("token", 400, {"error": "invalid_grant"})
    with pytest.raises(IntegrationError):
        anyio.run(connections.get_access_token, TENANT, ACME)
    anyio.run(connections.disconnect, TENANT, ACME)
    events = recorded(connections, connector_id=ACME)
    assert types(events) == ["connected", "reconnected", "needs_reauth", "disconnected"]
    assert len({e.connection_id for e in events}) == 1  # one connection, all along
    assert events[2].reason == "invalid_grant"
    assert events[2].actor is None  # the renewal: nobody did it
    assert len({e.id for e in events}) == 4


def test_a_refused_check_and_a_recovery_are_events_too(harness: Harness) -> None:
    connections = harness.connections
    anyio.run(connections.connect_api_key, TENANT, "acme-key", "key-0123456789abcdef")
    anyio.run(connections.mark_needs_reauth, TENANT, "acme-key", "invalid_credentials")
    anyio.run(connections.verify, TENANT, "acme-key")  # acme-key verifies nothing: it passes
    assert types(recorded(connections, connector_id="acme-key")) == [
        "connected",
        "needs_reauth",
        "recovered",
    ]


def test_a_check_that_passes_after_a_failed_one_is_a_recovery(harness: Harness) -> None:
    connections = harness.connections
    with harness.browser() as browser:
        landed = harness.connect(browser, "evencio")  # verified at the provider
    assert landed.endswith("result=connected")
    harness.provider.fail_next("status", 503)
    with pytest.raises(IntegrationError):
        anyio.run(connections.verify, TENANT, "evencio")
    anyio.run(connections.verify, TENANT, "evencio")
    anyio.run(connections.verify, TENANT, "evencio")  # still fine: nothing to recover from
    assert types(recorded(connections, connector_id="evencio")) == [
        "connected",
        "verification_failed",
        "recovered",
    ]


def test_no_event_for_a_change_that_did_not_happen(harness: Harness) -> None:
    connections = connected(harness)
    before = recorded(connections)
    # Disconnecting what is not connected, marking what is marked: nothing happened.
    assert anyio.run(connections.disconnect, TENANT, "acme-key") is False
    assert anyio.run(connections.mark_needs_reauth, TENANT, ACME, "revoked") is True
    assert anyio.run(connections.mark_needs_reauth, TENANT, ACME, "revoked") is False
    assert types(recorded(connections)) == [*types(before), "needs_reauth"]


def test_an_event_never_outlives_a_rolled_back_change(postgres_url: str) -> None:
    """On PostgreSQL a lease's saves commit when it ends: a failure rolls the event back too."""
    from connectors_core.store import ConnectionState, StoredConnection
    from tests.postgres import reset

    reset(postgres_url)
    store = open_store(Settings(database_url=postgres_url, secret_keys=(generate_key(),)))
    now = time.time()
    connection = StoredConnection(
        tenant=TENANT, connector_id=ACME, state=ConnectionState.CONNECTED, created_at=now
    )

    async def fail_after_saving() -> None:
        async with store.lease(TENANT, ACME, connection.connection_id) as lease:
            assert lease.connection is not None
            event = ConnectionEvent.about(lease.connection, EventType.NEEDS_REAUTH, at=now)
            await lease.save(lease.connection, event=event)
            raise RuntimeError("the holder fails after saving")

    async def work() -> list[Any]:
        await store.put(connection)
        with pytest.raises(RuntimeError, match="fails after saving"):
            await fail_after_saving()
        found = await store.outbox.recent()
        await store.close()
        return found

    assert anyio.run(work) == []


# --- delivered ----------------------------------------------------------------------------


def deliver_until(deliverer: Any, done: Any, rounds: int = 100) -> None:
    """Run the deliverer's passes until ``done()`` (or ``rounds`` passes), in one loop."""

    async def loop() -> None:
        try:
            for _ in range(rounds):
                await deliverer.run_once()
                if done():
                    return
                await anyio.sleep(0.05)
        finally:
            await deliverer.aclose()

    anyio.run(loop)


def test_listeners_get_each_event_in_order_and_a_failing_one_gets_it_again(
    harness: Harness,
) -> None:
    connections = harness.connections
    got: list[tuple[str, str]] = []
    failures = {"left": 1}

    def listener(event: ConnectionEvent) -> None:  # a sync listener runs in a thread
        if event.tenant == TENANT and failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("the host's database is down")
        got.append((event.tenant, event.type.value))

    connections.listeners.append(listener)
    deliverer = connections.deliverer(first_retry=0.05, max_retry=0.05)
    anyio.run(deliverer.register)
    connected(harness)
    connected(harness, tenant="tenant-b")
    anyio.run(connections.disconnect, TENANT, ACME)
    deliver_until(deliverer, lambda: len(got) == 3)
    assert sorted(got) == [
        (TENANT, "connected"),
        (TENANT, "disconnected"),
        ("tenant-b", "connected"),
    ]
    # tenant-b's event was not held back by tenant-a's failing one; tenant-a's came in order.
    assert [kind for tenant, kind in got if tenant == TENANT] == ["connected", "disconnected"]
    assert failures["left"] == 0


def test_a_hanging_listener_times_out_and_blocks_no_other_connection(
    make_harness: Any,
) -> None:
    harness: Harness = make_harness(event_timeout=0.3)
    connections = harness.connections
    got: list[str] = []

    async def listener(event: ConnectionEvent) -> None:
        if event.tenant == TENANT:
            await anyio.sleep(3600)  # hangs
        got.append(event.tenant)

    connections.listeners.append(listener)
    deliverer = connections.deliverer(first_retry=60)
    anyio.run(deliverer.register)
    connected(harness)
    connected(harness, tenant="tenant-b")
    started = time.monotonic()
    deliver_until(deliverer, lambda: got == ["tenant-b"])
    assert got == ["tenant-b"]
    assert time.monotonic() - started < 30
    pending = anyio.run(lambda: connections.store.outbox.recent(tenant=TENANT))
    assert pending[0].deliveries["listeners"].startswith("pending (1 failed: timed out")


class Plugin:
    """A plugin that notes what happens to its connector's connections."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    async def on_connection_event(self, connector: Any, event: ConnectionEvent) -> None:
        self.seen.append(f"{connector.id}:{event.type.value}")


def test_plugins_hear_of_their_connections(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors_core._loading import new_manager, register

    plugin = Plugin()
    manager = new_manager()
    register(manager, plugin, "noting")
    connections = harness.connections

    async def plugin_hooks(_connector: Any) -> Any:
        return manager.hook

    monkeypatch.setattr(connections, "plugin_hooks", plugin_hooks)
    deliverer = connections.deliverer()
    anyio.run(deliverer.register)
    connected(harness)
    deliver_until(deliverer, lambda: plugin.seen)
    assert plugin.seen == [f"{ACME}:connected"]


# --- the webhook ---------------------------------------------------------------------------


def documented_check() -> Callable[..., bool]:
    """``verify_webhook`` exactly as docs/connections.md gives it."""
    text = (Path(__file__).parents[2] / "docs" / "connections.md").read_text(encoding="utf-8")
    section = text.split("### The webhook", 1)[1]
    code = next(
        block
        for block in re.findall(r"```python\n(.*?)```", section, re.DOTALL)
        if "def verify_webhook" in block
    )
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/connections.md", "exec"), namespace)
    return namespace["verify_webhook"]  # type: ignore[no-any-return]


class Receiver:
    """A webhook receiver that checks every signature as the docs say to, and can be down.

    Each message must pass the docs' own check and the Standard Webhooks reference
    library's, and fail both once a byte of it changes.
    """

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.down = False
        self.refused = 0  # attempts made while it was down
        self.check = documented_check()
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        if self.down:
            self.refused += 1
            return Response(status_code=503)
        body = await request.body()
        headers = dict(request.headers)
        if not self.check(SECRET, headers, body):
            return Response(status_code=401)
        Webhook(SECRET).verify(body, headers)  # raises if the reference disagrees
        assert not self.check(SECRET, headers, body + b" ")
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(body.replace(b"tenant", b"tenanT"), headers)
        stale = {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}
        assert not self.check(SECRET, stale, body)
        self.ids.append(headers["webhook-id"])
        self.received.append(json.loads(body))
        return Response(status_code=204)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    found = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    with serve(found.app, sock):
        yield found, url


def test_a_webhook_down_for_a_while_gets_every_event_afterwards_signed(
    make_harness: Any, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    harness: Harness = make_harness(webhook_url=url, webhook_secret=SECRET)
    connections = harness.connections
    deliverer = connections.deliverer(first_retry=0.05, max_retry=0.2)
    anyio.run(deliverer.register)
    hook.down = True
    connected(harness)
    anyio.run(connections.disconnect, TENANT, ACME)
    deliver_until(deliverer, lambda: False, rounds=5)  # the receiver is down meanwhile
    assert hook.received == []
    hook.down = False
    deliver_until(deliverer, lambda: len(hook.received) == 2)
    assert [m["type"] for m in hook.received] == ["connection.connected", "connection.disconnected"]
    first = hook.received[0]["data"]
    assert (first["tenant"], first["connectorId"]) == (TENANT, ACME)
    assert hook.ids == [m["data"]["id"] for m in hook.received]


def test_a_webhook_needs_a_proper_secret() -> None:
    from connectors_core import ConfigurationError

    for secret, message in (
        (None, "is required with CONNECTORS_WEBHOOK_URL"),
        ("plain", "must start with whsec_"),
        ("whsec_c2hvcnQ=", "24 to 64 random bytes"),
    ):
        environ = {"CONNECTORS_WEBHOOK_URL": "https://hooks.example.com/in"}
        if secret:
            environ["CONNECTORS_WEBHOOK_SECRET"] = secret
        with pytest.raises(ConfigurationError, match=message) as info:
            Settings.from_env(environ)
        assert "whsec_c2hvcnQ" not in str(info.value)
    with pytest.raises(ConfigurationError, match="must be an https URL"):
        Settings.from_env(
            {
                "CONNECTORS_WEBHOOK_URL": "http://hooks.example.com/in",
                "CONNECTORS_WEBHOOK_SECRET": SECRET,
            }
        )


# --- nothing lost across a restart; once per destination with replicas ----------------------


def test_events_written_while_nobody_delivered_go_out_after_a_restart(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'c.sqlite3'}", secret_keys=(generate_key(),)
    )
    registry = Registry()
    registry.register(
        define_connector(
            id="acme-plain",
            name="Plain",
            summary="S.",
            description="S.",
            category="custom",
            status="available",
            auth={"type": "none"},
            capabilities=[{"id": "x", "label": "X"}],
            connection={"startPath": "/api/integrations/acme-plain/connect"},
        )
    )
    got: list[str] = []
    first = Connections(
        registry, open_store(settings), settings, listeners=[lambda e: got.append(e.id)]
    )
    anyio.run(first.deliverer().register)  # the server ran once, and will again
    anyio.run(first.connect_none, TENANT, "acme-plain")
    anyio.run(first.disconnect, TENANT, "acme-plain")
    anyio.run(first.aclose)  # the server is killed before delivering anything
    assert got == []
    again = Connections(
        registry, open_store(settings), settings, listeners=[lambda e: got.append(e.type.value)]
    )
    assert anyio.run(again.deliver_events) == 2
    assert got == ["connected", "disconnected"]
    assert anyio.run(again.deliver_events) == 0  # delivered once
    anyio.run(again.aclose)


# --- what could once go wrong ----------------------------------------------------------------


def plain_service(tmp_path: Path, listener: Any) -> Connections:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'c.sqlite3'}", secret_keys=(generate_key(),)
    )
    registry = Registry()
    registry.register(
        define_connector(
            id="acme-plain",
            name="Plain",
            summary="S.",
            description="S.",
            category="custom",
            status="available",
            auth={"type": "none"},
            capabilities=[{"id": "x", "label": "X"}],
            connection={"startPath": "/api/integrations/acme-plain/connect"},
        )
    )
    return Connections(registry, open_store(settings), settings, listeners=[listener])


def test_an_event_delivered_after_failures_does_not_count_against_the_next(
    tmp_path: Path, captured_logs: pytest.LogCaptureFixture
) -> None:
    failures = {"connected": 2, "disconnected": 1}
    got: list[str] = []

    def flaky(event: ConnectionEvent) -> None:
        if failures[event.type.value]:
            failures[event.type.value] -= 1
            raise RuntimeError("not now")
        got.append(event.type.value)

    service = plain_service(tmp_path, flaky)
    deliverer = service.deliverer(first_retry=0.01, max_retry=0.01, max_attempts=3)
    anyio.run(deliverer.register)
    anyio.run(service.connect_none, TENANT, "acme-plain")
    anyio.run(service.disconnect, TENANT, "acme-plain")
    deliver_until(deliverer, lambda: len(got) == 2)
    assert got == ["connected", "disconnected"]
    assert "gave up" not in captured_logs.text
    anyio.run(service.aclose)


def test_events_after_old_ones_were_pruned_are_delivered(tmp_path: Path) -> None:
    got: list[str] = []
    service = plain_service(tmp_path, lambda event: got.append(event.type.value))
    outbox = service.store.outbox
    anyio.run(service.deliverer().register)
    anyio.run(service.connect_none, TENANT, "acme-plain")
    assert anyio.run(service.deliver_events) == 1
    assert anyio.run(outbox.prune, time.time() + 1) == 1  # every event is gone
    anyio.run(service.disconnect, TENANT, "acme-plain")  # the same connection's next one
    assert anyio.run(service.deliver_events) == 1  # not taken for the one delivered already
    assert got == ["connected", "disconnected"]
    [record] = anyio.run(outbox.recent)
    assert record.deliveries == {"hooks": "delivered", "listeners": "delivered"}
    anyio.run(service.aclose)


def test_a_destination_registered_while_an_event_is_written_gets_it(postgres_url: str) -> None:
    # The event's transaction has written it (and found the destinations) but not
    # committed when another process registers a new destination: that one must not
    # start after an event it has no stream for.
    import threading

    from connectors_core.store._outbox import write_event
    from tests.postgres import reset

    reset(postgres_url)
    store = open_store(Settings(database_url=postgres_url, secret_keys=(generate_key(),)))
    anyio.run(store.outbox.register_destinations, ["hooks"])
    event = ConnectionEvent(
        type=EventType.CONNECTED, tenant=TENANT, connector_id=ACME, connection_id="c1", at=1.0
    )
    engine = store.engine  # type: ignore[attr-defined]
    writer = engine.connect()
    transaction = writer.begin()
    seq = write_event(writer, event)
    registered = threading.Thread(
        target=anyio.run, args=(store.outbox.register_destinations, ["late"])
    )
    registered.start()
    registered.join(timeout=0.5)  # it waits for the writer (or, wrongly, does not)
    transaction.commit()
    writer.close()
    registered.join(timeout=30)
    assert not registered.is_alive()

    async def streams_of_late() -> list[Any]:
        return await store.outbox.claim(["late"], "probe", now=time.time(), limit=10, hold=1)

    import sqlalchemy as sa

    from connectors_core.store._tables import event_destinations

    with engine.connect() as db:
        since = db.execute(
            sa.select(event_destinations.c.since_seq).where(event_destinations.c.name == "late")
        ).scalar_one()
    # Either the event came before "late" began, or "late" has a stream holding it.
    assert since >= seq or [s.connection_id for s in anyio.run(streams_of_late)] == ["c1"]
    anyio.run(store.close)


def test_a_claim_outlasts_a_delivery_s_timeout(tmp_path: Path) -> None:
    # Else a slow delivery's stream would be taken over, and its event delivered twice.
    service = plain_service(tmp_path, lambda event: None)
    assert service.settings.event_timeout == 10
    assert service.deliverer(hold=1).hold == 20
    assert service.deliverer(hold=90).hold == 90
    anyio.run(service.aclose)


def test_events_written_before_any_deliverer_ran_are_delivered(tmp_path: Path) -> None:
    got: list[str] = []
    service = plain_service(tmp_path, lambda event: got.append(event.type.value))
    anyio.run(service.connect_none, TENANT, "acme-plain")  # a fresh database, nobody delivering
    assert anyio.run(service.deliver_events) == 1
    assert got == ["connected"]
    # A destination added later starts from then: the webhook is not sent the past.
    outbox = service.store.outbox
    anyio.run(outbox.register_destinations, ["late"])
    anyio.run(service.disconnect, TENANT, "acme-plain")
    [disconnected, connected] = anyio.run(outbox.recent)
    assert "late" in disconnected.deliveries
    assert "late" not in connected.deliveries
    anyio.run(service.aclose)


def test_an_event_still_waited_for_outlives_the_retention(tmp_path: Path) -> None:
    service = plain_service(tmp_path, lambda event: None)
    outbox = service.store.outbox
    anyio.run(outbox.register_destinations, ["hooks", "listeners", "nobody-serves-this"])
    anyio.run(service.connect_none, TENANT, "acme-plain")
    anyio.run(service.deliver_events)  # hooks and listeners had it; one destination did not
    later = time.time() + 1
    assert anyio.run(outbox.prune, later) == 0
    assert anyio.run(lambda: outbox.prune(later, waiting=True)) == 1
    anyio.run(service.aclose)


def test_a_hanging_sync_listener_holds_one_thread_and_its_connection_s_order(
    tmp_path: Path,
) -> None:
    import threading

    release = threading.Event()
    calls: list[str] = []

    def slow(event: ConnectionEvent) -> None:
        calls.append(event.type.value)
        if len(calls) == 1:
            release.wait(30)  # hangs past the timeout: Python cannot stop it

    service = plain_service(tmp_path, slow)
    service.settings = attrs.evolve(service.settings, event_timeout=0.1)
    deliverer = service.deliverer(first_retry=0.01, max_retry=0.01, hold=1)
    anyio.run(deliverer.register)
    anyio.run(service.connect_none, TENANT, "acme-plain")
    anyio.run(service.disconnect, TENANT, "acme-plain")
    deliver_until(deliverer, lambda: False, rounds=10)  # ten passes while it hangs
    assert calls == ["connected"]  # not called again meanwhile, nor for the next event
    release.set()
    deliverer = service.deliverer(first_retry=0.01, max_retry=0.01, hold=1)
    deliver_until(deliverer, lambda: calls[-1:] == ["disconnected"])
    assert calls == ["connected", "connected", "disconnected"]  # again, then in order
    anyio.run(service.aclose)
