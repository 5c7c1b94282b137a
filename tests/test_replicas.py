"""Several replicas sharing one PostgreSQL database, as real processes.

The strict provider runs in this process; each replica is a uvicorn process
(or a job process) of its own, configured only through the environment.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import sqlalchemy as sa

from connectors_core.store import generate_key
from connectors_core.testing.oauth_provider import Client, OAuthProvider, running
from tests.harness import ACME_SECRET
from tests.helpers import without_id
from tests.postgres import reset

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
KEY = generate_key()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    def __init__(
        self, database: str, provider: OAuthProvider, provider_url: str, public: str
    ) -> None:
        self.database = database
        self.provider = provider
        self.provider_url = provider_url
        self.public = public
        self.processes: list[subprocess.Popen[str]] = []
        self.a = self.b = ""  # the replicas' origins

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "CONNECTORS_DATABASE_URL": self.database,
            "CONNECTORS_SECRET_KEYS": KEY,
            "CONNECTORS_PUBLIC_URL": self.public,
            "CONNECTORS_ACME_OAUTH_CLIENT_ID": "acme-client",
            "CONNECTORS_ACME_OAUTH_CLIENT_SECRET": ACME_SECRET,
            "REPLICA_PROVIDER_URL": self.provider_url,
            "CONNECTORS_ACME_OAUTH_API_BASE_URL": f"{self.provider_url}/connector-api",
        }

    def serve(self, port: int) -> str:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "tests.replica:create",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=self.env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        origin = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.communicate()
            try:
                httpx2.get(f"{origin}/api/integrations/openapi.json", timeout=1)
                return origin
            except httpx2.TransportError:
                assert time.monotonic() < deadline, "the replica did not start"
                time.sleep(0.1)

    def job(self, count: int, kind: str = "tokens") -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.replica", kind, str(count)],
            env=self.env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def expire(self) -> None:
        engine = sa.create_engine(self.database.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as db:
            db.execute(sa.text("UPDATE connections SET expires_at = 0"))
        engine.dispose()


@pytest.fixture
def cluster(postgres_url: str) -> Iterator[Cluster]:
    reset(postgres_url)
    port_a, port_b = free_port(), free_port()
    public = f"http://127.0.0.1:{port_b}"  # the load balancer's address: replica B
    provider = OAuthProvider(
        clients=[
            Client(
                "acme-client",
                ACME_SECRET,
                (f"{public}/api/integrations/acme-oauth/callback",),
                ("read",),
            )
        ]
    )
    with running(provider) as provider_url:
        group = Cluster(postgres_url, provider, provider_url, public)
        group.a = group.serve(port_a)
        group.b = group.serve(port_b)
        try:
            yield group
        finally:
            for process in group.processes:
                if process.poll() is None:
                    process.terminate()
                try:
                    process.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()


def connect(cluster: Cluster) -> None:
    """Start connecting on replica A; the provider sends the browser to replica B."""
    with httpx2.Client(headers={"x-test-tenant": "tenant-a"}, follow_redirects=False) as browser:
        started = browser.get(f"{cluster.a}/api/integrations/acme-oauth/connect")
        assert started.status_code == 303
        callback = browser.get(started.headers["location"]).headers["location"]
        assert callback.startswith(f"{cluster.b}/api/integrations/acme-oauth/callback?")
        finished = browser.get(callback)
        assert finished.headers["location"].endswith("result=connected")
        status = browser.get(f"{cluster.a}/api/integrations/acme-oauth/status").json()
        assert status["connected"] is True


def results(process: subprocess.Popen[str]) -> list[str]:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_connect_on_one_replica_completes_on_another(cluster: Cluster) -> None:
    connect(cluster)
    assert cluster.provider.token_requests == ["authorization_code"]


def test_concurrent_refreshes_across_replicas_hit_the_provider_once(cluster: Cluster) -> None:
    connect(cluster)
    cluster.expire()
    jobs = [cluster.job(50), cluster.job(50)]
    tokens = results(jobs[0]) + results(jobs[1])

    assert cluster.provider.token_requests.count("refresh_token") == 1
    assert len(tokens) == 100
    assert len(set(tokens)) == 1
    assert cluster.provider.is_active(tokens[0])


def test_requests_from_two_replicas_with_an_expired_token_renew_it_once(cluster: Cluster) -> None:
    connect(cluster)
    cluster.expire()
    (access, _refresh) = cluster.provider.issued
    with httpx2.Client() as http:  # and the provider no longer takes it either
        http.post(
            f"{cluster.provider_url}/api/oauth/revoke",
            data={"token": access},
            auth=("acme-client", ACME_SECRET),
        ).raise_for_status()
    jobs = [cluster.job(50, "requests"), cluster.job(50, "requests")]
    statuses = results(jobs[0]) + results(jobs[1])
    assert statuses == ["200"] * 100
    assert cluster.provider.token_requests.count("refresh_token") == 1


def test_short_lived_tokens_are_refreshed_once_not_once_per_call(cluster: Cluster) -> None:
    # 30-second tokens, shorter than the 60-second refresh margin.
    cluster.provider.access_token_lifetime = 30
    connect(cluster)
    tokens = results(cluster.job(50)) + results(cluster.job(50))
    assert cluster.provider.token_requests.count("refresh_token") == 0
    assert len(set(tokens)) == 1

    cluster.expire()
    jobs = [cluster.job(50), cluster.job(50)]
    tokens = results(jobs[0]) + results(jobs[1])
    assert cluster.provider.token_requests.count("refresh_token") == 1
    assert len(set(tokens)) == 1
    assert cluster.provider.is_active(tokens[0])


def test_a_replica_killed_during_a_refresh_leaves_the_connection_usable(cluster: Cluster) -> None:
    connect(cluster)
    cluster.expire()
    cluster.provider.timeout_delay = 30
    cluster.provider.fail_next("token", "timeout")
    doomed = cluster.job(1)
    deadline = time.monotonic() + 20
    while cluster.provider.token_requests.count("refresh_token") < 1:
        assert time.monotonic() < deadline, "the refresh never reached the provider"
        time.sleep(0.05)
    doomed.send_signal(signal.SIGKILL)  # holding the lease, mid-request
    doomed.communicate()

    (token,) = results(cluster.job(1))
    assert cluster.provider.is_active(token)


def test_a_refresh_lost_after_rotation_is_reported_as_needs_reauth(cluster: Cluster) -> None:
    connect(cluster)
    cluster.expire()
    # A replica rotated the refresh token at the provider, then died before saving it.
    import anyio

    from connectors_core.connections import Settings
    from connectors_core.store import open_store

    store = open_store(Settings(database_url=cluster.database, secret_keys=(KEY,)))
    stored = anyio.run(store.get, "tenant-a", "acme-oauth")
    anyio.run(store.close)
    assert stored is not None
    assert stored.tokens is not None
    httpx2.post(
        f"{cluster.provider_url}/api/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": stored.tokens.refresh_token},
        auth=("acme-client", ACME_SECRET),
    ).raise_for_status()

    (outcome,) = results(cluster.job(1))
    assert outcome.startswith("NeedsReauthError")
    status = httpx2.get(
        f"{cluster.a}/api/integrations/acme-oauth/status", headers={"x-test-tenant": "tenant-a"}
    ).json()
    assert without_id(status) == {
        "connected": False,
        "error": "needs_reauth",
        "reason": "invalid_grant",
    }
