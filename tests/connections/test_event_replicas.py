"""Two replicas on one PostgreSQL database deliver each event once per destination, in order.

Each replica is a ``Connections`` with a store (and a pool of database
connections) of its own, as two server processes have; both make changes
and both run their deliverer at the same time.
"""

from __future__ import annotations

import collections
import functools
import time
from typing import Any

import anyio

from connectors_core import ConnectionEvent, Registry, define_connector
from connectors_core.connections import Connections, Settings
from connectors_core.store import generate_key, open_store
from tests.postgres import reset

PLAIN = "acme-plain"
TENANTS = [f"tenant-{n}" for n in range(40)]


def registry() -> Registry:
    found = Registry()
    found.register(
        define_connector(
            id=PLAIN,
            name="Plain",
            summary="S.",
            description="S.",
            category="custom",
            status="available",
            auth={"type": "none"},
            capabilities=[{"id": "x", "label": "X"}],
            connection={"startPath": f"/api/integrations/{PLAIN}/connect"},
        )
    )
    return found


def test_two_replicas_deliver_each_event_once_per_destination(postgres_url: str) -> None:
    reset(postgres_url)
    settings = Settings(database_url=postgres_url, secret_keys=(generate_key(),))
    seen: list[tuple[int, ConnectionEvent]] = []

    def listener(replica: int) -> Any:
        async def hear(event: ConnectionEvent) -> None:
            await anyio.sleep(0)  # let the other replica run meanwhile
            seen.append((replica, event))

        return hear

    replicas = [
        Connections(registry(), open_store(settings), settings, listeners=[listener(n)])
        for n in (1, 2)
    ]

    async def scenario() -> None:
        deliverers = [replica.deliverer(hold=30) for replica in replicas]
        for deliverer in deliverers:
            await deliverer.register()
        for n, tenant in enumerate(TENANTS):  # changes made on either replica
            one, other = replicas[n % 2], replicas[(n + 1) % 2]
            await one.connect_none(tenant, PLAIN)
            await other.disconnect(tenant, PLAIN)
            await one.connect_none(tenant, PLAIN)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for deliverer in deliverers:
                    group.start_soon(functools.partial(deliverer.run, idle=0.02))
                while len(seen) < 3 * len(TENANTS):
                    await anyio.sleep(0.05)
                await anyio.sleep(0.3)  # time for a duplicate to show, if there were one
                group.cancel_scope.cancel()
        for deliverer in deliverers:
            await deliverer.aclose()
        for replica in replicas:
            await replica.aclose()

    anyio.run(scenario)

    counts = collections.Counter(event.id for _, event in seen)
    assert len(counts) == 3 * len(TENANTS)
    assert set(counts.values()) == {1}, "an event reached the listeners twice"
    by_connection: dict[str, list[str]] = collections.defaultdict(list)
    for _, event in seen:
        by_connection[event.connection_id].append(event.type.value)
    # In order per connection: each tenant's first connection, then its second.
    assert sorted(by_connection.values()) == sorted(
        [["connected", "disconnected"], ["connected"]] * len(TENANTS)
    )


def test_a_replica_that_stops_leaves_the_rest_to_the_other(postgres_url: str) -> None:
    # A replica that claimed streams and stopped without recording anything: until its
    # claims run out nobody else delivers them; then the other delivers every event.

    from connectors_core.store._tables import event_streams

    reset(postgres_url)
    settings = Settings(database_url=postgres_url, secret_keys=(generate_key(),))
    seen: list[str] = []
    first = Connections(registry(), open_store(settings), settings)
    second = Connections(
        registry(), open_store(settings), settings, listeners=[lambda e: seen.append(e.id)]
    )

    async def scenario() -> None:
        stuck = first.deliverer()
        live = second.deliverer()
        await stuck.register()
        await live.register()
        for tenant in TENANTS[:5]:
            await first.connect_none(tenant, PLAIN)
        destinations = sorted(live.destinations)  # the listeners, the plugins' hooks
        claimed = await first.store.outbox.claim(
            destinations, stuck.holder, now=time.time(), limit=100, hold=600
        )
        assert len(claimed) == 5 * len(destinations)  # it holds every stream, then "dies"
        assert await live.run_once() == 0  # held: not delivered twice at once
        # Its claims run out (as ten minutes later).
        with first.store.engine.begin() as db:  # type: ignore[attr-defined]
            db.execute(
                event_streams.update()
                .where(event_streams.c.claimed_by == stuck.holder)
                .values(claimed_until=time.time() - 1)
            )
        with anyio.fail_after(30):
            while len(seen) < 5:
                await live.run_once()
        await live.aclose()
        await first.aclose()
        await second.aclose()

    anyio.run(scenario)
    assert len(seen) == len(set(seen)) == 5
