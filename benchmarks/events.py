"""Connection events through the outbox to a webhook, with replicas: events/s, none lost.

Everything runs against a throw-away ``connectors_bench_<random>`` database on the local
PostgreSQL server (``--postgres-url``, the admin URL; dropped at the end, also after an
error or an interrupt).

The receiver is a Starlette app served by uvicorn in a process of its own (this script
again, ``--receive``) on a free loopback port. It checks every request as the docs tell
a receiver to (the Standard Webhooks signature, computed with ``sign_webhook`` and
compared in constant time; a timestamp within five minutes; the body's event id is the
``webhook-id``), answers 204 and records the id, the replica that sent it (an
``x-bench-replica`` header its transport adds, outside what is signed) and when it
arrived; it answers 401 to anything else and counts it.

A replica is this script again (``--deliver NAME``), configured only by ``CONNECTORS_*``
variables as a server is: ``Connections`` with an empty registry (so the ``hooks``
destination, which every deliverer has, finds no plugin to call) and the ``run()`` loop
of ``connections.deliverer(hold=--hold)``, the one the server runs. It says it is ready
once its store is open; the benchmark then starts the round's replicas at the same
moment (a line on their stdin), so their start-up is not timed, and stops them the same
way (they cancel their loop, which gives back its claims).

Each round first writes ``--events`` new events for ``--connections`` new connections:
each connection stored with ``store.put(..., event=connected)``, then the rest,
interleaved (event j is about connection j mod C), in one transaction by the outbox's
own ``write_event``, as ``put`` writes one. Writing is not timed. A round's time runs
from starting its replicas to the first arrival of its last event; events/s is the
number of events over that time. Rounds alternate 2 replicas and 1 (the baseline), the
order flipping every round. Then one kill round: 2 replicas, one of them SIGKILLed once
``--kill-at`` of the events have arrived, a replacement started at once (as an
orchestrator restarts a pod); the killed replica's streams go on once its claims run
out (``--hold`` seconds; 60 s in a server).

After every round the benchmark waits until the outbox records every stream (both
destinations) as delivered and unclaimed, then stops the replicas. Checks, per round:
no event lost, no bad signature, no unknown event, each connection's events first
received in the order written, and no duplicate, except in the kill round, once, an
event in flight at the kill: first received from the killed replica, and later than
what the outbox recorded for its stream once the killed replica's database sessions
ended (read at once, long before its claims run out). Each of those must come again,
once; they are counted. Any failed check exits with status 1, and so does a median
below the goal of 500 events/s with 2 replicas (unless ``--no-goal-check``: a test on a
busy machine checks behaviour, not speed). The machine is shared and noisy: read
medians and ratios.

    python benchmarks/events.py                    # 5000 events, 200 connections, 3 rounds
    python benchmarks/events.py --events 600 --connections 60 --rounds 1 --no-goal-check
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import hmac
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx2
import psycopg

from connectors_core import ConnectionEvent, EventType, Registry
from connectors_core.connections import Connections, Settings, sign_webhook
from connectors_core.store import ConnectionState, StoredConnection, generate_key, open_store

GOAL = 500.0
"""Events per second, sustained, through the outbox to the webhook with 2 replicas."""

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECTOR = "bench"
REPLICA_HEADER = "x-bench-replica"
DESTINATIONS = ("hooks", "webhook")  # what a replica with a webhook URL delivers to

Arrival = tuple[str, str, float]
"""An event's arrival at the receiver: its id, the replica that sent it, when (UNIX time)."""


# --- the receiver (a process of its own) ---------------------------------------------------


def receiver_app(secret: str) -> Any:
    """The webhook receiver: checks each request, records what arrived; a count and a log."""
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    arrivals: list[Arrival] = []
    seen: set[str] = set()
    bad = collections.Counter[str]()

    async def hook(request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:  # a killed replica's request, cut off: nothing arrived
            return Response(status_code=400)
        try:
            message_id = request.headers["webhook-id"]
            stamp = int(request.headers["webhook-timestamp"])
            signatures = request.headers["webhook-signature"].split()
            event_id = json.loads(body)["data"]["id"]
        except (KeyError, ValueError, TypeError):
            bad["malformed"] += 1
            return Response(status_code=400)
        expected = sign_webhook(secret, message_id, stamp, body)
        if not any(hmac.compare_digest(expected, each) for each in signatures):
            bad["signature"] += 1
            return Response(status_code=401)
        if abs(time.time() - stamp) > 300 or event_id != message_id:
            bad["timestamp or id"] += 1
            return Response(status_code=401)
        arrivals.append((message_id, request.headers.get(REPLICA_HEADER, "?"), time.time()))
        seen.add(message_id)
        return Response(status_code=204)

    async def count(request: Request) -> JSONResponse:
        return JSONResponse({"unique": len(seen), "received": len(arrivals)})

    async def log(request: Request) -> JSONResponse:
        return JSONResponse({"arrivals": arrivals, "bad": dict(bad)})

    async def reset(request: Request) -> Response:
        arrivals.clear()
        seen.clear()
        bad.clear()
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/hook", hook, methods=["POST"]),
            Route("/count", count),
            Route("/log", log),
            Route("/reset", reset, methods=["POST"]),
        ]
    )


def receive(port: int) -> None:
    import uvicorn

    app = receiver_app(os.environ["CONNECTORS_WEBHOOK_SECRET"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- a replica (a process of its own) ----------------------------------------------------


class Tagged(httpx2.AsyncHTTPTransport):
    """The default transport, naming the replica in a header (the signature does not cover it)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers[REPLICA_HEADER] = self.name
        return await super().handle_async_request(request)


async def replica(name: str, hold: float, concurrency: int) -> None:
    """Open the store, say ready, wait for go, deliver until told to stop."""
    settings = Settings.from_env()
    connections = Connections(Registry(), open_store(settings), settings)
    deliverer = connections.deliverer(hold=hold, concurrency=concurrency, transport=Tagged(name))
    try:
        await deliverer.register()
        print("ready", flush=True)
        if sys.stdin.readline() != "go\n":
            raise SystemExit("no go from the benchmark")
        async with anyio.create_task_group() as group:
            group.start_soon(deliverer.run)
            await anyio.to_thread.run_sync(sys.stdin.readline)  # "stop", or end of file
            group.cancel_scope.cancel()
    finally:
        await connections.aclose()


# --- the benchmark -----------------------------------------------------------------------


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def receiver(port: int, env: dict[str, str]) -> Iterator[httpx2.Client]:
    """The receiver's process, and a client on it; stopped on exit."""
    command = [sys.executable, __file__, f"--receive={port}"]
    with subprocess.Popen(command, env=env) as process:
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise SystemExit("the webhook receiver did not start") from None
                    time.sleep(0.05)
            with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                yield client
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


class Replicas:
    """The round's replica processes: started ready, released together, stopped or killed."""

    def __init__(
        self, stack: contextlib.ExitStack, env: dict[str, str], args: argparse.Namespace
    ) -> None:
        self.stack, self.env, self.args = stack, env, args
        self.processes: dict[str, subprocess.Popen[str]] = {}

    def start(self, names: list[str]) -> float:
        """Start a process per name, release them together once all are ready: when."""
        started = []
        for name in names:
            command = [
                sys.executable,
                __file__,
                f"--deliver={name}",
                f"--hold={self.args.hold}",
                f"--concurrency={self.args.concurrency}",
            ]
            # Its database sessions carry its name: the benchmark sees when they are gone.
            url = f"{self.env['CONNECTORS_DATABASE_URL']}?application_name={name}"
            # A claim outlasts a delivery's timeout (the deliverer holds at least twice it).
            timeout = f"{self.args.hold / 2:g}"
            env = self.env | {"CONNECTORS_DATABASE_URL": url, "CONNECTORS_EVENT_TIMEOUT": timeout}
            pipe = subprocess.PIPE
            process = subprocess.Popen(command, env=env, stdin=pipe, stdout=pipe, text=True)
            self.stack.enter_context(process)
            self.stack.callback(process.kill)  # runs first: a process still alive is killed
            self.processes[name] = process
            started.append(process)
        for process in started:
            assert process.stdout is not None
            if process.stdout.readline() != "ready\n":
                raise SystemExit("a replica process did not get ready")
        go = time.time()
        for process in started:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        return go

    def kill(self, name: str) -> float:
        """SIGKILL one replica, as a crash or an OOM kill would, and wait until its database
        sessions are gone (its last statements done, committed or not): when it was killed."""
        process = self.processes.pop(name)
        at = time.time()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        with psycopg.connect(self.env["CONNECTORS_DATABASE_URL"], autocommit=True) as db:

            def gone() -> bool:
                row = db.execute(query, (name,)).fetchone()
                return row is not None and row[0] == 0

            wait_for(f"the sessions of {name} to end", gone, 30)
        return at

    def stop(self) -> dict[str, int | None]:
        """Tell every replica to stop; their exit codes."""
        for process in self.processes.values():
            assert process.stdin is not None
            process.stdin.write("stop\n")
            process.stdin.close()
        codes: dict[str, int | None] = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                codes[name] = None
        return codes


async def register(env: dict[str, str]) -> None:
    """Make the destinations known before any event is written (a server ran once)."""
    settings = Settings.from_env(env)
    connections = Connections(Registry(), open_store(settings), settings)
    try:
        await connections.deliverer().register()
    finally:
        await connections.aclose()


async def produce(env: dict[str, str], prefix: str, count: int, spread: int) -> dict[str, Any]:
    """Write ``count`` events about ``spread`` new connections: each id's (connection, index)."""
    # The outbox's own writer, in one transaction for the lot (private: a benchmark's liberty).
    from connectors_core.store._outbox import write_event
    from connectors_core.store._sql import SQLStore

    store = open_store(Settings.from_env(env))
    assert isinstance(store, SQLStore), "the benchmark runs on PostgreSQL"
    now = time.time()
    stored = [
        StoredConnection(
            tenant=f"{prefix}-t{number:04d}",
            connector_id=CONNECTOR,
            state=ConnectionState.CONNECTED,
            created_at=now,
            updated_at=now,
        )
        for number in range(spread)
    ]
    events: list[ConnectionEvent] = []
    for number in range(count):
        connection = stored[number % spread]
        if number < spread:
            kind, reason = EventType.CONNECTED, None
        elif (number // spread) % 2:
            kind, reason = EventType.VERIFICATION_FAILED, "invalid_credentials"
        else:
            kind, reason = EventType.RECOVERED, None
        events.append(ConnectionEvent.about(connection, kind, at=now, reason=reason))
    limit = asyncio.Semaphore(8)

    async def put(connection: StoredConnection, event: ConnectionEvent) -> None:
        async with limit:
            await store.put(connection, event=event)

    try:
        await asyncio.gather(*(put(c, e) for c, e in zip(stored, events, strict=False)))
        rest = events[spread:]
        await store._write(lambda db: [write_event(db, event) for event in rest])
    finally:
        await store.close()
    return {
        event.id: (event.connection_id, number // spread) for number, event in enumerate(events)
    }


def unsettled(url: str, prefix: str, spread: int) -> int:
    """The round's streams not yet recorded as delivered and given back (or not there)."""
    query = """
        SELECT count(*) FILTER (WHERE s.pending OR s.claimed_by IS NOT NULL
                                OR s.delivered_seq < last.seq), count(*)
        FROM event_streams s
        JOIN (SELECT tenant, connector_id, connection_id, max(seq) AS seq FROM events
              WHERE tenant LIKE %(prefix)s GROUP BY 1, 2, 3) last
          USING (tenant, connector_id, connection_id)
    """
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(query, {"prefix": f"{prefix}-%"}).fetchone()
    assert row is not None
    left, streams = int(row[0]), int(row[1])
    return left + (spread * len(DESTINATIONS) - streams)


def wait_for(what: str, done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"FAILED: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def progress(url: str, prefix: str) -> tuple[dict[str, int], dict[str, int]]:
    """How far the round's webhook streams are recorded (per connection), and each event's
    sequence number."""
    with psycopg.connect(url, autocommit=True) as db:
        recorded = db.execute(
            "SELECT connection_id, delivered_seq FROM event_streams"
            " WHERE destination = 'webhook' AND tenant LIKE %s",
            (f"{prefix}-%",),
        ).fetchall()
        seqs = db.execute(
            "SELECT event_id, seq FROM events WHERE tenant LIKE %s", (f"{prefix}-%",)
        ).fetchall()
    return {c: int(seq) for c, seq in recorded}, {e: int(seq) for e, seq in seqs}


class Kill(NamedTuple):
    name: str
    """The replica killed."""
    recorded: dict[str, int]
    """Per connection, the last event recorded as delivered to the webhook when it died."""
    seqs: dict[str, int]
    """Each event's sequence number."""


def analyse(expected: dict[str, Any], arrivals: list[Arrival], kill: Kill | None) -> dict[str, Any]:
    """Lost, duplicates (across the kill or not), unknown ids, order; the last first arrival."""
    first: dict[str, tuple[str, float]] = {}  # each event's first arrival: sender, when
    again: set[str] = set()
    following: dict[str, int] = collections.defaultdict(int)  # per connection: next index
    killed = None if kill is None else kill.name

    def in_flight(event_id: str) -> bool:
        """Sent by the killed replica, and not recorded as delivered when it died."""
        if kill is None or first[event_id][0] != killed:
            return False
        return kill.seqs[event_id] > kill.recorded.get(expected[event_id][0], 0)

    unknown = out_of_order = unexpected = 0
    for event_id, sender, at in arrivals:
        if event_id not in expected:
            unknown += 1
        elif event_id in first:
            if in_flight(event_id) and sender != killed and event_id not in again:
                again.add(event_id)  # sent again, once, by another replica: allowed
            else:
                unexpected += 1
        else:
            first[event_id] = (sender, at)
            connection, index = expected[event_id]
            if index != following[connection]:
                out_of_order += 1
            following[connection] = max(following[connection], index + 1)
    return {
        "lost": len(expected) - len(first),
        "across": len(again),
        "in_flight": sum(in_flight(event_id) for event_id in first),
        "unexpected": unexpected,
        "unknown": unknown,
        "out_of_order": out_of_order,
        "last": max((at for _, at in first.values()), default=time.time()),
        "senders": collections.Counter(sender for sender, _ in first.values()),
    }


def run_round(
    args: argparse.Namespace,
    env: dict[str, str],
    url: str,
    http: httpx2.Client,
    number: int,
    replicas: int,
    kill: bool,
) -> dict[str, Any]:
    prefix = f"r{number}"
    expected = asyncio.run(produce(env, prefix, args.events, args.connections))
    http.post("/reset").raise_for_status()

    def unique() -> int:
        return int(http.get("/count").json()["unique"])

    died: Kill | None = None
    killed_at = 0.0
    with contextlib.ExitStack() as stack:
        group = Replicas(stack, env, args)
        names = [f"replica-{n + 1}" for n in range(replicas)]
        go = group.start(names)
        if kill:
            threshold = int(args.events * args.kill_at)
            wait_for(f"{threshold} events to arrive", lambda: unique() >= threshold, args.timeout)
            killed_at = group.kill(names[0])
            # At once, long before its claims run out: what it had recorded when it died.
            died = Kill(names[0], *progress(url, prefix))
            group.start([f"replica-{replicas + 1}"])
        wait_for("every event to arrive", lambda: unique() >= args.events, args.timeout)
        wait_for(
            "the outbox to record every delivery",
            lambda: unsettled(url, prefix, args.connections) == 0,
            args.timeout,
        )
        codes = group.stop()
    log = http.get("/log").json()
    arrivals = [(str(i), str(s), float(t)) for i, s, t in log["arrivals"]]
    found = analyse(expected, arrivals, died)
    found |= {
        "replicas": replicas,
        "kill": kill,
        "seconds": found["last"] - go,
        "rate": args.events / (found["last"] - go),
        "bad": sum(log["bad"].values()),
        "bad_kinds": ", ".join(f"{n} {kind}" for kind, n in log["bad"].items()),
        "exits": codes,
        "killed_after": killed_at - go if kill else None,
    }
    return found


def problems(result: dict[str, Any]) -> list[str]:
    """What is wrong with a round's deliveries (empty if nothing)."""
    wrong = []
    for key, label in (
        ("lost", "lost"),
        ("unexpected", "duplicated (not in flight at a kill)"),
        ("unknown", "unknown ids"),
        ("out_of_order", "out of order"),
        ("bad", "bad requests"),
    ):
        if result[key]:
            wrong.append(f"{result[key]} {label}")
    if result["across"] != result["in_flight"]:  # at least once: each must come again
        wrong.append(
            f"{result['in_flight'] - result['across']} in flight at the kill not sent again"
        )
    if any(code != 0 for code in result["exits"].values()):
        wrong.append(f"replica exit codes {result['exits']}")
    return wrong


def describe(result: dict[str, Any]) -> str:
    senders = ", ".join(f"{name} {n}" for name, n in sorted(result["senders"].items()))
    line = (
        f"{result['rate']:7.0f} events/s ({result['seconds']:.2f} s) | lost {result['lost']}, "
        f"duplicates {result['across'] + result['unexpected']}, out of order "
        f"{result['out_of_order']}, bad {result['bad']} | first sent by: {senders}"
    )
    if result["bad"]:
        line += f" | bad: {result['bad_kinds']}"
    if result["kill"]:
        line += f" | killed after {result['killed_after']:.2f} s"
    return line


def benchmark(args: argparse.Namespace) -> list[str]:
    """Run every round and print them; what failed."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    port = free_port()
    failures: list[str] = []
    with database(args.postgres_url) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTORS_")}
        env |= {
            "CONNECTORS_DATABASE_URL": url,
            "CONNECTORS_SECRET_KEYS": generate_key(),
            "CONNECTORS_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
            "CONNECTORS_WEBHOOK_SECRET": secret,
        }
        with receiver(port, env) as http:
            asyncio.run(register(env))
            print(f"database: postgres (throw-away database {urlsplit(url).path[1:]})")
            print(f"receiver: uvicorn at http://127.0.0.1:{port}/hook, checking signatures")
            print(
                f"{args.events} events about {args.connections} connections per round, "
                f"destinations {', '.join(DESTINATIONS)}; hold {args.hold:g} s, concurrency "
                f"{args.concurrency}; {args.rounds} rounds of 2 and 1 replicas, then a kill round"
            )
            rates: dict[int, list[float]] = {2: [], 1: []}
            number = 0
            for round_ in range(args.rounds):
                order = [2, 1] if round_ % 2 == 0 else [1, 2]
                for replicas in order:
                    number += 1
                    result = run_round(args, env, url, http, number, replicas, kill=False)
                    rates[replicas].append(result["rate"])
                    wrong = problems(result)
                    failures += [f"round {number} ({replicas} replicas): {w}" for w in wrong]
                    print(
                        f"  round {number}, {replicas} replica{'s' * (replicas > 1)}: "
                        f"{describe(result)}"
                    )
            number += 1
            killed = run_round(args, env, url, http, number, 2, kill=True)
            wrong = problems(killed)
            failures += [f"kill round: {w}" for w in wrong]
            print(f"  round {number}, 2 replicas, one killed: {describe(killed)}")
    two, one = statistics.median(rates[2]), statistics.median(rates[1])
    print(f"\nmedians over {args.rounds} rounds (events/s, to the webhook):")
    print(f"  {'1 replica (baseline)':24s} {one:7.0f}  {one / GOAL:5.2f}x goal")
    print(f"  {'2 replicas':24s} {two:7.0f}  {two / GOAL:5.2f}x goal")
    print(f"2 replicas / 1 replica: {two / one:.2f}x")
    print(
        f"kill round: lost {killed['lost']}, duplicates across the kill {killed['across']} "
        f"(of {killed['in_flight']} events in flight: sent by the killed replica, not yet "
        f"recorded), other duplicates {killed['unexpected']}, out of order "
        f"{killed['out_of_order']}; all arrived {killed['seconds']:.1f} s after the start "
        f"(hold {args.hold:g} s)"
    )
    verdict = "met" if two >= GOAL else "NOT met"
    print(f"goal: >= {GOAL:.0f} events/s with 2 replicas: {two:.0f} ({two / GOAL:.2f}x, {verdict})")
    if two < GOAL and not args.no_goal_check:
        failures.append(f"throughput {two:.0f} events/s is below the goal of {GOAL:.0f}")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="per round")
    parser.add_argument("--connections", type=int, default=200, help="per round")
    parser.add_argument("--rounds", type=int, default=3, help="of 2 and 1 replicas each")
    parser.add_argument("--kill-at", type=float, default=0.5, help="fraction arrived")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds a claim lasts")
    parser.add_argument("--concurrency", type=int, default=32, help="streams per replica")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per wait")
    parser.add_argument("--no-goal-check", action="store_true", help="check correctness only")
    parser.add_argument("--postgres-url", default=POSTGRES, help="admin URL of the server")
    parser.add_argument("--receive", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--deliver", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive is not None:
        receive(args.receive)
        return
    if args.deliver is not None:
        asyncio.run(replica(args.deliver, args.hold, args.concurrency))
        return
    if args.rounds < 1 or not 1 <= args.connections <= args.events or not 0 < args.kill_at < 1:
        parser.error("need --rounds >= 1, 1 <= --connections <= --events, 0 < --kill-at < 1")
    # A SIGTERM unwinds like Ctrl-C: processes reaped, the throw-away database dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    failures = benchmark(args)
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        raise SystemExit(1)
    print("\nall checks passed: none lost, none duplicated but across the kill, in order")


if __name__ == "__main__":
    main()
