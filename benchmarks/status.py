"""Throughput and tail latency of the integrations status endpoint against a bare Starlette route.

Two apps, each served by uvicorn in a process of its own with the same settings (one
worker, default loop and HTTP implementation, no access log, a free port on 127.0.0.1,
start-up's objects frozen once it completes, as ``connectors serve`` does):
``status`` is ``create_app`` with the Evencio plugin, a store holding one connected
(encrypted) Evencio connection, and a constant authenticator, measured at
``GET /api/integrations/evencio/status``; ``bare`` is a one-route ``Starlette`` app
returning the same JSON shape; ``page`` is the Integrations page of the status app
(``GET /integrations``), whose registry holds 100 installed connectors (Evencio and 99
API-key connectors defined in code), 20 of them connected: a number to watch, reported
as a ratio to the status route. The store (``--database``) is an SQLite file in a
throw-away directory, or a throw-away ``connectors_bench_<random>`` database created on
the local PostgreSQL server (``--postgres-url``, the admin URL) and dropped at the end,
also after an error or an interrupt; the server process finds it through
``CONNECTORS_DATABASE_URL``. Given several databases, each is measured in turn against
a bare baseline of its own, measured in the same run.

Each takes C (default 50) concurrent keep-alive HTTP/1.1 connections for a fixed time
after an uncounted warm-up: from ``wrk`` when it is on PATH, else from a built-in asyncio
load generator (raw streams, one connection per coroutine) in a process of its own. The
targets alternate for several rounds, the order flipping every round, so that noise hits
both alike. It prints the medians over rounds of requests/s and p50/p99 latency, and the
ratios status/bare and page/status, then whether each goal is met (status/bare
requests/s: >= 0.60 on SQLite, >= 0.50 on PostgreSQL; status p99 <= 3x the bare
route's). The machine is shared and noisy: compare ratios, not absolute numbers.
A closed loop of C connections has a mean latency of C / throughput (Little's law).

    python benchmarks/status.py                          # 5 s runs, 3 rounds, 50 connections
    python benchmarks/status.py --seconds 2 --rounds 2 --loadgen python
    python benchmarks/status.py --database sqlite postgres
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors_core import Registry, define_connector, discover
from connectors_core.connections import Connections, Settings
from connectors_core.store import (
    ConnectionState,
    StoredConnection,
    TokenSet,
    generate_key,
    open_store,
)
from connectors_core.web import create_app, freeze_after_startup

TARGETS = {
    "bare": "/bare",
    "status": "/api/integrations/evencio/status",
    "page": "/integrations",
}
ACCOUNT = {"organizationId": "org-1", "userId": "user-1"}
GOAL_RATIO = {"sqlite": 0.60, "postgres": 0.50}
"""The least status/bare requests/s ratio, per database."""
GOAL_P99 = 3.0
"""The most status p99 / bare p99."""
SERVERS = {"bare": ["bare"], "status": ["status", "page"]}
"""The server processes, and the targets each serves."""
INSTALLED, CONNECTED = 100, 20
"""Connectors in the page's registry, and how many of them are connected."""
WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
Result = dict[str, float]


def status_app(port: int) -> Starlette:
    settings = Settings.from_env(
        {
            "CONNECTORS_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "CONNECTORS_DATABASE_URL": os.environ["CONNECTORS_DATABASE_URL"],
            "CONNECTORS_SECRET_KEYS": generate_key(),
        }
    )
    store, now = open_store(settings), time.time()
    tokens = TokenSet("access-1", "refresh-1", expires_at=now + 3600, scopes=("events:read",))
    state = ConnectionState.CONNECTED
    stored = [
        StoredConnection(
            "bench", "evencio", state, tokens, account=ACCOUNT, created_at=now, updated_at=now
        )
    ]
    registry = installed()
    for connector in list(registry)[1:CONNECTED]:
        key = f"key-{connector.id}-0123456789"
        stored.append(
            StoredConnection(
                "bench", connector.id, state, api_key=key, created_at=now, updated_at=now
            )
        )

    async def fill() -> None:
        for connection in stored:
            await store.put(connection)

    asyncio.run(fill())
    connections = Connections(registry, store, settings)
    return create_app(connections=connections, authenticator=lambda request: "bench")


def installed() -> Registry:
    """Evencio first, then API-key connectors defined in code: :data:`INSTALLED` in all."""
    registry = discover(allow=["evencio"])
    for number in range(1, INSTALLED):
        connector_id = f"bench-{number:03d}"
        auth = {"type": "api-key", "description": "The API key.", "headerName": "X-Key"}
        start = f"/api/integrations/{connector_id}/connect"
        registry.register(
            define_connector(
                id=connector_id,
                name=f"Bench {number:03d}",
                summary="A connector of the benchmark.",
                description="Defined in code for the page benchmark.",
                category="custom",
                status="available",
                auth=auth,
                capabilities=[{"id": "ping", "label": "Ping"}],
                connection={"startPath": start},
            )
        )
    return registry


async def bare(request: Request) -> JSONResponse:
    return JSONResponse({"connected": True, "status": ACCOUNT})


def serve(target: str, port: int) -> None:
    bare_app = Starlette(routes=[Route("/bare", bare)])
    app = bare_app if target == "bare" else status_app(port)
    config = uvicorn.Config(
        # Both apps as `connectors serve` serves one: start-up's objects frozen.
        freeze_after_startup(app),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()


async def worker(port: int, request: bytes, warm_end: float, end: float, out: list[float]) -> int:
    """Send requests on one keep-alive connection until ``end``; return the errors."""
    errors = 0
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (start := time.perf_counter()) < end:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            if start < warm_end:
                continue
            if head.startswith(b"HTTP/1.1 200 "):
                out.append(time.perf_counter() - start)
            else:
                errors += 1
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        errors += 1  # this connection is done; the others go on
    finally:
        writer.close()
    return errors


async def generate_load(args: argparse.Namespace) -> Result:
    request = f"GET {args.load} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    latencies: list[float] = []
    warm_end = time.perf_counter() + args.warmup
    end = warm_end + args.seconds
    workers = [
        worker(args.port, request, warm_end, end, latencies) for _ in range(args.connections)
    ]
    async with asyncio.timeout(args.warmup + args.seconds + 30):
        errors = await asyncio.gather(*workers)
    if len(latencies) < 2:
        raise SystemExit(f"too few responses from {args.load} ({len(latencies)})")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    rps = len(latencies) / args.seconds
    return {"rps": rps, "p50": cuts[49] * 1000, "p99": cuts[98] * 1000, "errors": sum(errors)}


def parse_wrk(text: str) -> Result:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    found = re.findall(r"(?m)^\s*(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text)
    cuts = {percent: float(number) * WRK_UNITS[unit] for percent, number, unit in found}
    if rate is None or set(cuts) != {"50", "99"}:
        raise SystemExit(f"cannot parse wrk output:\n{text}")
    errors = re.findall(r"(?:Non-2xx or 3xx responses:|connect|read|write|timeout) (\d+)", text)
    rps = float(rate.group(1))
    return {"rps": rps, "p50": cuts["50"], "p99": cuts["99"], "errors": sum(map(int, errors))}


def output(command: list[str], limit: float) -> str:
    """The stdout of a bounded child process (its stderr goes to ours)."""
    run = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, timeout=limit)
    return run.stdout


def measure(wrk: bool, port: int, path: str, args: argparse.Namespace) -> Result:
    limit = args.warmup + args.seconds + 60
    if wrk:
        base, url = ["wrk", "-t2", f"-c{args.connections}"], f"http://127.0.0.1:{port}{path}"
        output([*base, f"-d{args.warmup}s", url], limit)  # warm-up, not counted
        return parse_wrk(output([*base, f"-d{args.seconds}s", "--latency", url], limit))
    options = [f"--port={port}", f"--connections={args.connections}"]
    options += [f"--warmup={args.warmup}", f"--seconds={args.seconds}"]
    command = [sys.executable, __file__, f"--load={path}", *options]
    result: Result = json.loads(output(command, limit))
    return result


def first_response(server: subprocess.Popen[bytes], port: int, path: str) -> bytes:
    """Wait (at most 60 s) for the server's first answer, which must be a 200; its body."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            status, body = response.status, response.read()
        except OSError:
            time.sleep(0.1)
            continue
        finally:
            connection.close()
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {body[:200]!r}")
        return body
    raise SystemExit(f"the server of {path} exited or did not answer within 60 s")


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


@contextmanager
def database(kind: str, server: str) -> Iterator[tuple[str, str]]:
    """A throw-away store: its URL and a description; removed on exit, whatever happened."""
    if kind == "sqlite":
        work = Path(tempfile.mkdtemp(prefix="connectors-status-"))
        try:
            yield f"sqlite:///{work}/bench.sqlite3", f"sqlite (a file in {work})"
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    import psycopg

    name = f"connectors_bench_{secrets.token_hex(6)}"
    parts = urlsplit(server)
    with psycopg.connect(server, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = parts._replace(path=f"/{name}").geturl()
            yield url, f"postgres (throw-away database {name} on {parts.hostname}:{parts.port})"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(samples: dict[str, list[Result]], rounds: int, kind: str) -> float:
    medians = {
        target: {key: statistics.median([r[key] for r in results]) for key in results[0]}
        for target, results in samples.items()
    }
    print(f"\nmedians over {rounds} rounds:")
    print(f"  {'target':38s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
    for target, m in medians.items():
        print(
            f"  {'GET ' + TARGETS[target]:38s} {m['rps']:8.0f} {m['p50']:8.1f} {m['p99']:8.1f} "
            f"{m['errors']:7.0f}"
        )
    for name, (above, below) in {
        "status / bare": ("status", "bare"),
        "page / status": ("page", "status"),
    }.items():
        one, other = medians[above], medians[below]
        print(
            f"  {name:38s} {one['rps'] / other['rps']:7.2f}x {one['p50'] / other['p50']:7.2f}x "
            f"{one['p99'] / other['p99']:7.2f}x"
        )
    status, bare = medians["status"], medians["bare"]
    ratio, p99 = status["rps"] / bare["rps"], status["p99"] / bare["p99"]
    met = {True: "met", False: "NOT met"}
    least = GOAL_RATIO[kind]
    print(f"goal: status/bare req/s on {kind} >= {least:.2f}: {ratio:.2f} ({met[ratio >= least]})")
    print(
        f"goal: status/bare p99 on {kind} <= {GOAL_P99:.0f}x: {p99:.2f}x ({met[p99 <= GOAL_P99]})"
    )
    print(f"watch: page/status req/s on {kind}: {medians['page']['rps'] / status['rps']:.3f}")
    return ratio


def compare(args: argparse.Namespace, database_url: str) -> dict[str, list[Result]]:
    wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk") is not None)
    env = {**os.environ, "CONNECTORS_DATABASE_URL": database_url}
    # The page is served by the status app (one store, filled once).
    servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        sockets = [socket.create_server(("127.0.0.1", 0)) for _ in SERVERS]  # distinct ports
        for serving, one in zip(SERVERS, sockets, strict=True):
            port = one.getsockname()[1]
            one.close()
            command = [sys.executable, __file__, f"--serve={serving}", f"--port={port}"]
            server = port, subprocess.Popen(command, env=env)
            servers.update(dict.fromkeys(SERVERS[serving], server))
        for target, (port, server) in servers.items():
            body = first_response(server, port, TARGETS[target])
            if target == "page":
                cards, connected = body.count(b"data-state>"), body.count(b">Connected<")
                if (cards, connected) != (INSTALLED, CONNECTED):
                    raise SystemExit(f"GET /integrations: {cards} cards, {connected} connected")
                print(f"GET /integrations: {len(body)} bytes, {cards} cards, {connected} connected")
                continue
            data = json.loads(body)
            if data.get("connected") is not True:
                raise SystemExit(f"GET {TARGETS[target]} is not connected: {data}")
            print(f"GET {TARGETS[target]}: {json.dumps(data)}")
        generator = "wrk -t2" if wrk else "built-in asyncio generator (own process)"
        print(
            f"load generator: {generator}; {args.connections} keep-alive connections, "
            f"{args.warmup} s warm-up + {args.seconds} s measured, {args.rounds} rounds"
        )
        samples: dict[str, list[Result]] = {target: [] for target in TARGETS}
        for number in range(args.rounds):
            for target in list(TARGETS)[:: 1 if number % 2 == 0 else -1]:
                port, _ = servers[target]
                samples[target].append(measure(wrk, port, TARGETS[target], args))
            line = " | ".join(
                f"{t} {r[-1]['rps']:6.0f} req/s p99 {r[-1]['p99']:6.1f} ms"
                for t, r in samples.items()
            )
            print(f"  round {number + 1}: {line}")
    finally:
        for _, server in dict.fromkeys(servers.values()):
            stop(server)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted seconds before each run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--database", nargs="+", choices=["sqlite", "postgres"], default=["sqlite"])
    parser.add_argument("--postgres-url", default=POSTGRES, help="admin URL of the server")
    parser.add_argument("--serve", choices=sorted(SERVERS), help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
    elif args.load:
        print(json.dumps(asyncio.run(generate_load(args))))
    else:
        # A SIGTERM unwinds like Ctrl-C: servers stopped, throw-away databases dropped.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        ratios = {}
        for kind in dict.fromkeys(args.database):
            with database(kind, args.postgres_url) as (url, description):
                print(f"\n=== database: {description}")
                ratios[kind] = report(compare(args, url), args.rounds, kind)
        if len(ratios) > 1:
            each = ", ".join(f"{kind} {ratio:.2f}x" for kind, ratio in ratios.items())
            print(f"\nthroughput status / bare, each against its own bare baseline: {each}")


if __name__ == "__main__":
    main()
