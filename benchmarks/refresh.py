"""Refresh single-flight across replicas: one provider refresh for 100 concurrent callers.

A throw-away ``connectors_bench_<random>`` database on the local PostgreSQL server
(``--postgres-url``, the admin URL; dropped at the end, also after an error or an
interrupt) and the strict ``OAuthProvider`` of ``connectors_core.testing``, served on
127.0.0.1 in this process, with a client whose redirect URI is the app's Evencio
callback. One tenant is connected through it in this process: ``begin_oauth``, the
provider's authorize page (it approves at once), then ``finish_oauth`` with its code.

Each round runs two pairs of replica processes (this script again, ``--job N``), the
two of a pair started back to back. Each process, configured only through
``CONNECTORS_*`` variables, imports connectors-core, opens the store, builds
``Connections`` and says it is ready; once both are, the benchmark releases them at the
same moment (a line on their stdin) and each then:

* ``refresh`` pair: calls ``get_access_token`` N times at once (``--callers`` in all,
  default 100, split evenly), after ``expires_at = 0`` was written to the connection;
* ``no-op`` pair (the baseline): calls nothing.

The pairs alternate, the order flipping every round, so that noise hits both alike.
Every round must make exactly one refresh request to the provider and give every caller
the same (new, active) token; otherwise the script exits with status 1. It prints the
medians over rounds of the time from starting a pair to its slowest caller's answer (for
the no-op pair: to its release) and their ratio, and the part after the release. The
machine is shared and noisy: compare ratios, not milliseconds.

    python benchmarks/refresh.py                      # 5 rounds, 100 callers
    python benchmarks/refresh.py --rounds 2 --callers 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2
import psycopg

from connectors_core import discover
from connectors_core.connections import Connections, Settings
from connectors_core.store import generate_key, open_store

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
PUBLIC_URL = "http://127.0.0.1:8000"  # the app's origin in redirect URIs; never contacted
CALLBACK = f"{PUBLIC_URL}/api/integrations/evencio/callback"
SCOPES = ("events:read", "venues:read", "guests:read", "offline_access")
TENANT, CONNECTOR, SESSION = "bench", "evencio", "bench-browser-session"
CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-client-secret-3e8a41"
JOB_TIMEOUT = 120  # seconds a pair of replica processes may take
YES = {True: "yes", False: "NO"}


@contextlib.contextmanager
def database(server: str) -> Iterator[str]:
    """A throw-away database on ``server``: its URL; dropped on exit, whatever happened."""
    name = f"connectors_bench_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlsplit(server)._replace(path=f"/{name}").geturl()
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def connections(environ: dict[str, str] | None = None) -> Connections:
    """``Connections`` as a replica builds it: the Evencio plugin, the store, the env."""
    settings = Settings.from_env(environ)
    return Connections(discover(allow=[CONNECTOR]), open_store(settings), settings)


async def job(callers: int) -> dict[str, Any]:
    """One replica process: open the store, say ready, wait for go, ask ``callers`` times."""
    service = connections()
    try:
        print("ready", flush=True)
        if sys.stdin.readline() != "go\n":
            raise SystemExit("no go from the benchmark")
        calls = [service.get_access_token(TENANT, CONNECTOR) for _ in range(callers)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        done = time.time()
    finally:
        await service.store.close()
    tokens = [r if isinstance(r, str) else f"{type(r).__name__}: {r}" for r in results]
    return {"tokens": tokens, "done": done}


async def connect(env: dict[str, str]) -> str:
    """Connect the tenant as a browser would (authorize URL, provider, callback): its token."""
    service = connections(env)
    try:
        url = await service.begin_oauth(TENANT, CONNECTOR, SESSION)
        async with httpx2.AsyncClient(follow_redirects=False, timeout=10) as browser:
            callback = (await browser.get(url)).headers.get("location", "")
        if not callback.startswith(f"{CALLBACK}?"):
            raise SystemExit(f"the provider did not redirect to the callback: {callback!r}")
        params = dict(parse_qsl(urlsplit(callback).query))
        connected = await service.finish_oauth(CONNECTOR, TENANT, SESSION, params)
        assert connected.tokens is not None
        return connected.tokens.access_token
    finally:
        await service.store.close()


def expire(url: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as db:
        where = "tenant = %s AND connector_id = %s"
        updated = db.execute(
            f"UPDATE connections SET expires_at = 0 WHERE {where}", (TENANT, CONNECTOR)
        )
        if updated.rowcount != 1:
            raise SystemExit(f"expected one connection to expire, found {updated.rowcount}")


def pair(counts: list[int], env: dict[str, str]) -> tuple[list[str], float, float]:
    """Start one process per count at once and release their callers together once all are
    ready; their tokens and the times to the slowest caller from the start and the release."""
    processes: list[subprocess.Popen[str]] = []

    def kill() -> None:
        for process in processes:
            process.kill()

    with contextlib.ExitStack() as stack:  # on leaving: processes killed if alive, and reaped
        watchdog = threading.Timer(JOB_TIMEOUT, kill)  # bounds every read below
        watchdog.start()
        stack.callback(watchdog.cancel)
        start = time.time()
        for count in counts:
            command, pipe = [sys.executable, __file__, f"--job={count}"], subprocess.PIPE
            process = subprocess.Popen(command, env=env, stdin=pipe, stdout=pipe, text=True)
            processes.append(stack.enter_context(process))
            stack.callback(process.kill)
        streams = [(p.stdin, p.stdout) for p in processes if p.stdin and p.stdout]
        if [stdout.readline() for _, stdout in streams] != ["ready\n"] * len(counts):
            raise SystemExit("a replica process did not get ready")
        go = time.time()
        for stdin, _ in streams:
            stdin.write("go\n")
            stdin.close()
        outputs = [stdout.read() for _, stdout in streams]
        codes = [process.wait() for process in processes]
    if codes != [0] * len(counts):
        raise SystemExit(f"a replica process failed: exit codes {codes}")
    results = [json.loads(output) for output in outputs]
    done = max(result["done"] for result in results)
    return [token for result in results for token in result["tokens"]], done - start, done - go


def ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def benchmark(args: argparse.Namespace) -> None:
    # Imported here: the replica processes have no use for the provider's server.
    from connectors_core.testing.oauth_provider import Client, OAuthProvider, running

    provider = OAuthProvider(clients=[Client(CLIENT_ID, CLIENT_SECRET, (CALLBACK,), SCOPES)])
    counts = [args.callers // 2, args.callers - args.callers // 2]
    with database(args.postgres_url) as url, running(provider) as provider_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTORS_")}
        env |= {
            "CONNECTORS_DATABASE_URL": url,
            "CONNECTORS_SECRET_KEYS": generate_key(),
            "CONNECTORS_PUBLIC_URL": PUBLIC_URL,
            "CONNECTORS_EVENCIO_CLIENT_ID": CLIENT_ID,
            "CONNECTORS_EVENCIO_CLIENT_SECRET": CLIENT_SECRET,
            "CONNECTORS_EVENCIO_BASE_URL": provider_url,
            "CONNECTORS_EVENCIO_API_URL": provider_url,
        }
        print(f"database: postgres (throw-away database {urlsplit(url).path[1:]})")
        print(f"provider: strict OAuthProvider at {provider_url}, client {CLIENT_ID}")
        previous = asyncio.run(connect(env))
        print(
            f"connected tenant {TENANT!r} to {CONNECTOR}: token requests {provider.token_requests}"
        )
        print(
            f"{len(counts)} replica processes, {' + '.join(map(str, counts))} = {args.callers} "
            f"callers, {args.rounds} rounds; no-op and refresh pairs alternate"
        )
        walls: dict[str, list[float]] = {"no-op": [], "refresh": []}
        phases: list[float] = []
        failed: list[int] = []
        for number in range(1, args.rounds + 1):
            if number % 2 == 0:  # the no-op pair goes first in even rounds, last in odd ones
                walls["no-op"].append(pair([0] * len(counts), env)[1])
            expire(url)
            before = provider.token_requests.count("refresh_token")
            tokens, wall, phase = pair(counts, env)
            refreshes = provider.token_requests.count("refresh_token") - before
            walls["refresh"].append(wall)
            phases.append(phase)
            if number % 2 == 1:
                walls["no-op"].append(pair([0] * len(counts), env)[1])
            same = tokens.count(tokens[0]) == len(tokens) == args.callers
            fresh = tokens[0] != previous and provider.is_active(tokens[0])
            previous = tokens[0]
            if refreshes != 1 or not same or not fresh:
                failed.append(number)
            print(
                f"  round {number}: provider refresh requests {refreshes} | same token for all "
                f"{len(tokens)} callers: {YES[same]} (new and active: {YES[fresh]}) | "
                f"slowest caller {wall * 1000:5.0f} ms, no-op {walls['no-op'][-1] * 1000:5.0f} ms"
            )
            if not same:
                print(f"    distinct results: {sorted(set(tokens))[:5]}")
    base = ms(walls["no-op"])
    print(f"\nmedians over {args.rounds} rounds, from starting a pair of processes:")
    print(f"  {'no-op: import, open the store, release':42s} {base:7.0f} ms  1.00x")
    refresh = ms(walls["refresh"])
    print(f"  {'refresh: ... to the slowest caller':42s} {refresh:7.0f} ms  {refresh / base:5.2f}x")
    phase = ms(phases)
    print(
        f"  {'  of which release to the slowest caller':42s} {phase:7.0f} ms  {phase / base:5.2f}x"
    )
    if failed:
        raise SystemExit(f"FAILED: not exactly one refresh and one token in rounds {failed}")
    print(
        f"single-flight held in {args.rounds}/{args.rounds} rounds (1 provider refresh, "
        f"1 token for {args.callers} callers); slowest caller / no-op: {refresh / base:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--callers", type=int, default=100, help="in all, over 2 processes")
    parser.add_argument("--postgres-url", default=POSTGRES, help="admin URL of the server")
    parser.add_argument("--job", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job is not None:
        print(json.dumps(asyncio.run(job(args.job))))
        return
    if args.rounds < 1 or args.callers < 2:
        parser.error("--rounds must be at least 1 and --callers at least 2")
    # A SIGTERM unwinds like Ctrl-C: processes reaped, the throw-away database dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    benchmark(args)


if __name__ == "__main__":
    main()
