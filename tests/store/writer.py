"""A second process writing to the same SQLite file as the tests (for tests).

``python -m tests.store.writer <command> <database url> <key> <args…>``:

* ``mixed NAME SECONDS``: puts, deletes, pending authorizations taken back,
  and leased increments of the shared counter, for SECONDS; prints what it
  did as JSON (errors included, which the tests expect to be none);
* ``put TENANT``: stores one connection for TENANT and prints ``ok``;
* ``hold LIFETIME``: takes the lease of the shared counter (lease lifetime
  LIFETIME seconds), prints ``held`` and waits to be killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import attrs

from connectors_core._settings import Settings
from connectors_core.store import (
    ConnectionState,
    PendingAuthorization,
    SecretBox,
    Store,
    StoredConnection,
    open_store,
)
from connectors_core.store._sql import SQLStore, create_engine

ROOT = Path(__file__).resolve().parents[2]

COUNTER = ("shared", "counter", "conn-counter")


def only(connector_id: str) -> str:
    """The id of the one connection each test tenant holds of ``connector_id``."""
    return f"conn-{connector_id}"


def api_key_connection(tenant: str, connector_id: str, api_key: str) -> StoredConnection:
    """A connection holding one API key (the value the tests check afterwards)."""
    now = time.time()
    return StoredConnection(
        tenant=tenant,
        connector_id=connector_id,
        connection_id=only(connector_id),
        state=ConnectionState.CONNECTED,
        api_key=api_key,
        created_at=now,
        updated_at=now,
    )


async def increment(store: Store) -> None:
    """Add one to the shared counter under its lease (a lost update shows an overlap)."""
    async with store.lease(*COUNTER) as lease:
        assert lease.connection is not None
        count = int(lease.connection.account["n"])
        await anyio.sleep(0)  # let another holder in, were the lease not exclusive
        await lease.save(attrs.evolve(lease.connection, account={"n": str(count + 1)}))


async def mixed(store: Store, name: str, seconds: float) -> dict[str, Any]:
    """Every kind of write, in turn, until ``seconds`` have passed."""
    expected: dict[str, str | None] = {}
    errors: list[str] = []
    increments = taken = 0
    deadline = time.monotonic() + seconds
    step = 0
    while time.monotonic() < deadline:
        step += 1
        connector_id = f"c{step % 5}"
        try:
            if step % 4 == 0:
                await store.delete(name, connector_id, only(connector_id))
                expected[connector_id] = None
            else:
                value = f"key-{name}-{step:06d}"
                await store.put(api_key_connection(name, connector_id, value))
                expected[connector_id] = value
            now = time.time()
            state = f"{name}-state-{step}"
            await store.put_authorization(
                PendingAuthorization(
                    state, name, "evencio", "s" * 64, f"verifier-{step}", "http://x/cb", now + 60
                ),
                now=now,
                max_per_session=10_000,
            )
            pending = await store.take_authorization(state, now=now)
            if pending is None or pending.code_verifier != f"verifier-{step}":
                errors.append(f"pending authorization {state} was not taken back")
            else:
                taken += 1
            await increment(store)
            increments += 1
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none may happen
            errors.append(f"{type(exc).__name__}: {exc}")
    return {"expected": expected, "errors": errors, "increments": increments, "taken": taken}


def main(argv: list[str]) -> None:
    command, url, key, *args = argv
    settings = Settings(database_url=url, secret_keys=(key,))
    if command == "mixed":
        store = open_store(settings)
        print(json.dumps(anyio.run(mixed, store, args[0], float(args[1]))))
    elif command == "put":
        store = open_store(settings)
        anyio.run(store.put, api_key_connection(args[0], "evencio", "key-from-another-process"))
        print("ok")
    elif command == "hold":
        store = SQLStore(create_engine(url), SecretBox([key]), lease_lifetime=float(args[0]))

        async def hold() -> None:
            async with store.lease(*COUNTER):
                print("held", flush=True)
                await anyio.sleep(3600)

        anyio.run(hold)
    else:
        raise SystemExit(f"unknown command {command!r}")
    anyio.run(store.close)


if __name__ == "__main__":
    main(sys.argv[1:])
