"""One replica of the app, as a separate process sharing the database (for tests).

``python -m uvicorn --factory tests.replica:create`` serves the routes;
``python -m tests.replica tokens N`` asks for an access token N times at once,
as a host's job would, and prints the tokens as JSON; ``python -m
tests.replica requests N`` sends N requests at once through the connection's
client and prints their statuses. All are configured by the environment
(``CONNECTORS_*`` and ``REPLICA_PROVIDER_URL``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from connectors_core.connections import Connections, Settings
from connectors_core.store import open_store
from connectors_core.web import create_app
from tests.harness import build_registry, header_tenant


def connections() -> Connections:
    settings = Settings.from_env()
    registry = build_registry(os.environ["REPLICA_PROVIDER_URL"])
    return Connections(registry, open_store(settings), settings)


def create() -> Any:
    """The ASGI app of one replica."""
    return create_app(connections=connections(), authenticator=header_tenant)


async def tokens(count: int) -> list[str]:
    service = connections()
    try:
        results = await asyncio.gather(
            *(service.get_access_token("tenant-a", "acme-oauth") for _ in range(count)),
            return_exceptions=True,
        )
    finally:
        await service.store.close()
    return [r if isinstance(r, str) else f"{type(r).__name__}: {r}" for r in results]


async def requests(count: int) -> list[str]:
    import httpx2

    service = connections()
    try:
        async with service.client("tenant-a", "acme-oauth") as http:
            results = await asyncio.gather(
                *(http.get("/things") for _ in range(count)), return_exceptions=True
            )
    finally:
        await service.aclose()
    return [
        str(r.status_code) if isinstance(r, httpx2.Response) else f"{type(r).__name__}: {r}"
        for r in results
    ]


if __name__ == "__main__":
    job = {"tokens": tokens, "requests": requests}[sys.argv[1]]
    print(json.dumps(asyncio.run(job(int(sys.argv[2])))))
