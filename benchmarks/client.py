"""The cost of a request through ``Connections.client`` against a bare ``httpx2.AsyncClient``.

One local API (a one-route Starlette app answering a small JSON object to any
bearer token) is served by uvicorn in a process of its own. In this process,
``bare`` is an ``httpx2.AsyncClient`` on it with a fixed ``Authorization``
header; ``client`` is ``Connections.client`` for an OAuth connection stored
(encrypted) in an SQLite file, whose token is valid: the transport puts the
token on a copy of each request, checks the host, asks the plugin hooks and
decides about retries. Each round sends R requests one after another through
each (keep-alive, after an uncounted warm-up), the order flipping every
round, and times them with ``time.perf_counter``. It prints the median
per-request time of each over the rounds, and the ratio client/bare against
the goal. The machine is shared and noisy: compare ratios, not absolute times.

    python benchmarks/client.py                    # 2000 requests, 7 rounds
    python benchmarks/client.py --requests 500 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx2

from connectors_core import Registry, define_connector
from connectors_core.connections import Connections, Settings
from connectors_core.store import (
    ConnectionState,
    StoredConnection,
    TokenSet,
    generate_key,
    open_store,
)

GOAL = 1.2
TENANT = "tenant-1"
TOKEN = "bench-access-token-0123456789"


API = """
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def things(request):
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return JSONResponse({"error": "invalid_token"}, 401)
    return JSONResponse({"data": [{"id": 1, "name": "thing"}], "nextCursor": None})

app = Starlette(routes=[Route("/v1/things", things)])
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]),
            log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_api(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", API, str(port)])
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("the benchmark API did not start") from None
            time.sleep(0.05)


def service(folder: Path, base_url: str) -> Connections:
    connector = define_connector(
        id="bench",
        name="Bench",
        summary="A connector to measure the client.",
        description="An OAuth connector whose API is the local benchmark server.",
        category="custom",
        status="available",
        auth={
            "type": "oauth",
            "authorizeUrl": "https://auth.bench.example.com/authorize",
            "tokenUrl": "https://auth.bench.example.com/token",
            "scopes": ["read"],
        },
        api={"baseUrl": base_url},
        capabilities=[{"id": "read", "label": "Read"}],
        connection={"startPath": "/api/integrations/bench/connect"},
    )
    registry = Registry()
    registry.register(connector)
    settings = Settings(
        database_url=f"sqlite:///{folder / 'bench.sqlite3'}", secret_keys=(generate_key(),)
    )
    connections = Connections(registry, open_store(settings), settings)
    now = time.time()
    asyncio.run(
        connections.store.put(
            StoredConnection(
                tenant=TENANT,
                connector_id="bench",
                state=ConnectionState.CONNECTED,
                tokens=TokenSet(TOKEN, "refresh-token", expires_at=now + 86400, scopes=("read",)),
                created_at=now,
                updated_at=now,
                requested_scopes=("read",),
            )
        )
    )
    return connections


async def timed(send: Callable[[], Awaitable[httpx2.Response]], count: int) -> float:
    """Seconds per request, over ``count`` requests sent one after another."""
    started = time.perf_counter()
    for _ in range(count):
        response = await send()
        if response.status_code != 200:
            raise SystemExit(f"the API answered {response.status_code}")
    return (time.perf_counter() - started) / count


async def measure(connections: Connections, base_url: str, requests: int, rounds: int) -> None:
    results: dict[str, list[float]] = {"bare": [], "client": []}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx2.AsyncClient(base_url=base_url, headers=headers) as bare,
        connections.client(TENANT, "bench") as client,
    ):
        targets = {
            "bare": lambda: bare.get("/v1/things"),
            "client": lambda: client.get("/v1/things"),
        }
        for send in targets.values():  # warm-up: connections, caches, code paths
            await timed(send, max(50, requests // 10))
        for round_ in range(rounds):
            order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
            for name in order:
                results[name].append(await timed(targets[name], requests))
    bare_us = statistics.median(results["bare"]) * 1e6
    client_us = statistics.median(results["client"]) * 1e6
    ratio = client_us / bare_us
    print(f"requests per round: {requests}, rounds: {rounds} (medians over rounds)")
    print(f"  bare httpx2.AsyncClient     {bare_us:8.1f} us/request")
    print(f"  Connections.client          {client_us:8.1f} us/request")
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"client / bare: {ratio:.2f}x (goal <= {GOAL}x: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    port = free_port()
    api = start_api(port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory() as folder:
            connections = service(Path(folder), base_url)
            try:
                asyncio.run(measure(connections, base_url, args.requests, args.rounds))
            finally:
                asyncio.run(connections.aclose())
    finally:
        api.terminate()
        api.wait(timeout=10)


if __name__ == "__main__":
    main()
