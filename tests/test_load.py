"""A small team at once on the embedded store: a real ``connectors serve``, no 5xx, nothing lost.

``connectors serve`` runs as its own process on loopback with its defaults
(an SQLite file in its working folder, a local key file), the strict OAuth
provider stands in for Evencio, and a job process refreshes a token while the
provider holds the refresh for 3 seconds. Twenty clients, each its own tenant
and browser, mix API-key saves, OAuth connects, replayed callbacks and status
reads for 10 seconds. The run is bounded in time and requests, and sends
traffic only to loopback.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from connectors_core._settings import Settings
from connectors_core.store import open_store
from connectors_core.testing.oauth_provider import Account, Client, OAuthProvider, running
from tests.distributions import Dist, install, manifest_source
from tests.harness import EVENCIO_SECRET, TENANT_HEADER

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 20
DURATION = 10.0
REFRESH_HOLD = 3.0

KEY_PLUGIN = Dist(
    "load-key-connector",
    "1.0.0",
    {"loadkey": "load_key_connector"},
    {
        "load_key_connector/__init__.py": f"""
            from connectors_core import hookimpl

            @hookimpl
            def provide_connector():
                return {
            manifest_source(
                "loadkey", connection=repr({"startPath": "/api/integrations/loadkey/connect"})
            )
        }
        """
    },
)

JOB = """
import anyio, sys
from connectors_core import discover
from connectors_core._settings import Settings
from connectors_core.connections import Connections
from connectors_core.store import open_store

async def main():
    settings = Settings.from_env()
    service = Connections(discover(), open_store(settings), settings)
    try:
        print(await service.get_access_token(sys.argv[1], "evencio"))
    finally:
        await service.store.close()

anyio.run(main)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``connectors serve`` in a folder of its own, and what it needs around it."""

    def __init__(self, folder: Path, provider: OAuthProvider, provider_url: str, port: int):
        self.folder = folder
        self.provider = provider
        self.origin = f"http://127.0.0.1:{port}"
        site = folder / "site"
        install(site, KEY_PLUGIN)
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
            "CONNECTORS_PLUGINS_ALLOW": "evencio,loadkey",
            "CONNECTORS_INDEX_DIR": str(folder / "index"),
            "CONNECTORS_EVENCIO_CLIENT_ID": "evencio-client",
            "CONNECTORS_EVENCIO_CLIENT_SECRET": EVENCIO_SECRET,
            "CONNECTORS_EVENCIO_BASE_URL": provider_url,
            "CONNECTORS_EVENCIO_API_BASE_URL": provider_url,
        }
        for variable in ("CONNECTORS_DATABASE_URL", "CONNECTORS_SECRET_KEYS"):
            self.env.pop(variable, None)
        # Files, not pipes: the access log of a load fills a pipe nobody reads.
        with (folder / "serve.out").open("w") as out, (folder / "serve.err").open("w") as err:
            self.process = self._start(port, out, err)
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, self.log()
            try:
                httpx2.get(f"{self.origin}/api/integrations/openapi.json", timeout=1)
                break
            except httpx2.TransportError:
                assert time.monotonic() < deadline, "connectors serve did not start"
                time.sleep(0.1)

    def _start(self, port: int, out: Any, err: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from connectors_core.cli import main; main()",
                "serve",
                "--port",
                str(port),
                "--authenticator",
                "tests.harness:header_tenant",
            ],
            cwd=self.folder,
            env=self.env,
            stdout=out,
            stderr=err,
            text=True,
        )

    def job(self, tenant: str) -> subprocess.Popen[str]:
        """A host's job process: asks for a valid token (refreshing it) on the same file."""
        return subprocess.Popen(
            [sys.executable, "-c", JOB, tenant],
            cwd=self.folder,
            env={**self.env, "CONNECTORS_DEV_MODE": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def log(self) -> str:
        return (self.folder / "serve.err").read_text(encoding="utf-8")

    def stop(self) -> str:
        """Stop the server; return what it wrote to stderr."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    provider = OAuthProvider(
        clients=[
            Client(
                "evencio-client",
                EVENCIO_SECRET,
                (f"http://127.0.0.1:{port}/api/integrations/evencio/callback",),
                ("events:read", "venues:read", "guests:read", "offline_access"),
            )
        ],
        account=Account(user_id="user-42", organization_id="org-7"),
    )
    with running(provider) as provider_url:
        serving = Server(tmp_path, provider, provider_url, port)
        try:
            yield serving
        finally:
            serving.stop()


class Worker:
    """One person: their own tenant and browser, doing one thing after another."""

    def __init__(self, server: Server, number: int) -> None:
        self.server = server
        self.tenant = f"tenant-{number}"
        self.number = number
        self.statuses: Counter[int] = Counter()
        self.problems: list[str] = []
        self.saved_key: str | None = None
        self.callbacks: list[str] = []
        self.done: Counter[str] = Counter()

    def browser(self) -> httpx2.Client:
        return httpx2.Client(
            headers={TENANT_HEADER: self.tenant}, follow_redirects=False, timeout=30
        )

    def check(self, response: httpx2.Response, what: str, ok: bool) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code >= 500 or not ok:
            self.problems.append(f"{what}: HTTP {response.status_code} {response.text[:200]}")

    def save_key(self, browser: httpx2.Client, csrf: str, step: int) -> None:
        key = f"load-key-{self.number:02d}-{step:06d}-abcdef"
        response = browser.post(
            f"{self.server.origin}/api/integrations/loadkey/connect",
            data={"api_key": key},
            headers={"X-CSRF-Token": csrf, "Origin": self.server.origin},
        )
        ok = response.status_code == 200 and response.json().get("connected") is True
        self.check(response, "api-key save", ok)
        if ok:
            self.saved_key = key

    def connect(self, browser: httpx2.Client) -> None:
        origin = self.server.origin
        start = browser.get(f"{origin}/api/integrations/evencio/connect")
        self.check(start, "connect", start.status_code == 303)
        if start.status_code != 303:
            return
        authorize = httpx2.get(start.headers["location"], follow_redirects=False, timeout=30)
        callback_url = authorize.headers.get("location", "")
        finish = browser.get(callback_url)
        self.check(finish, "callback", "result=connected" in finish.headers.get("location", ""))
        self.callbacks.append(callback_url)

    def replay(self, browser: httpx2.Client) -> None:
        if not self.callbacks:
            return
        again = browser.get(self.callbacks[-1])
        self.check(again, "replay", "error=invalid_state" in again.headers.get("location", ""))

    def status(self, browser: httpx2.Client) -> None:
        response = browser.get(f"{self.server.origin}/api/integrations/loadkey/status")
        self.check(response, "status", response.status_code == 200)

    def run(self, deadline: float) -> None:
        try:
            with self.browser() as browser:
                csrf = browser.get(f"{self.server.origin}/api/integrations/csrf").json()[
                    "csrfToken"
                ]
                step = 0
                while time.monotonic() < deadline and step < 10_000:
                    action = ("key", "status", "connect", "status", "replay")[
                        (step + self.number) % 5
                    ]
                    if action == "key":
                        self.save_key(browser, csrf, step)
                    elif action == "connect":
                        self.connect(browser)
                    elif action == "replay":
                        self.replay(browser)
                    else:
                        self.status(browser)
                    self.done[action] += 1
                    step += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test, with the worker
            self.problems.append(f"{self.tenant} stopped: {type(exc).__name__}: {exc}")


def stored_keys(server: Server) -> dict[str, str | None]:
    database = server.folder / "connectors.sqlite3"
    key = (server.folder / "connectors.sqlite3.key").read_text(encoding="utf-8").strip()
    settings = Settings(database_url=f"sqlite:///{database}", secret_keys=(key,))

    async def read() -> dict[str, str | None]:
        store = open_store(settings)
        try:
            found = {}
            for number in range(CLIENTS):
                connection = await store.get(f"tenant-{number}", "loadkey")
                found[f"tenant-{number}"] = connection.api_key if connection else None
            return found
        finally:
            await store.close()

    return anyio.run(read)


def expire(server: Server, tenant: str) -> None:
    with sqlite3.connect(server.folder / "connectors.sqlite3", timeout=30) as db:
        db.execute("UPDATE connections SET expires_at = 0 WHERE tenant = ?", (tenant,))


def test_twenty_users_at_once_on_sqlite_get_no_error_and_lose_nothing(server: Server) -> None:
    # A connection whose token a job will refresh, slowly, in the middle of the load.
    refresher = Worker(server, 99)
    refresher.tenant = "refresher"
    with refresher.browser() as browser:
        refresher.connect(browser)
    assert not refresher.problems
    expire(server, "refresher")
    server.provider.delay_next("token", REFRESH_HOLD)

    # The job's refresh reaches the provider first, which holds it; the load
    # starts while it is held.
    job = server.job("refresher")
    wait_until = time.monotonic() + 60
    while "refresh_token" not in server.provider.token_requests:
        assert time.monotonic() < wait_until, "the job's refresh never reached the provider"
        time.sleep(0.01)
    workers = [Worker(server, number) for number in range(CLIENTS)]
    deadline = time.monotonic() + DURATION
    threads = [threading.Thread(target=w.run, args=(deadline,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION + 60)
    out, err = job.communicate(timeout=60)

    problems = [problem for worker in workers for problem in worker.problems]
    statuses = sum((worker.statuses for worker in workers), Counter())
    done = sum((worker.done for worker in workers), Counter())
    print(json.dumps({"statuses": statuses, "operations": done}, sort_keys=True))
    assert not any(thread.is_alive() for thread in threads)
    assert problems == []
    assert not [code for code in statuses if code >= 500]
    assert min(done[action] for action in ("key", "connect", "replay", "status")) > 0

    # The job's refresh went through despite the load, and its token is live.
    assert job.returncode == 0, err
    assert server.provider.is_active(out.strip())
    assert server.provider.token_requests.count("refresh_token") == 1
    # The hold went to the refresh: the first token request after it was queued.
    assert server.provider.token_requests[:2] == ["authorization_code", "refresh_token"]

    # Every save is stored: each tenant's last acknowledged key is the one on disk.
    assert stored_keys(server) == {w.tenant: w.saved_key for w in workers}
    assert "Traceback" not in server.stop()
