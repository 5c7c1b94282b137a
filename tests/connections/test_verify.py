"""Credentials are verified before they are stored: refused, unreachable, or the account found."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors_core import (
    IntegrationError,
    InvalidFieldsError,
    ProviderUnavailableError,
    Registry,
    define_connector,
)
from connectors_core.connections import Connections, Settings
from connectors_core.store import MemoryStore
from connectors_core.testing.oauth_provider import ALL_GRANTS, Client, OAuthProvider, running
from tests.harness import serve

GOOD_KEY = "good-key-0123456789abcdef"
ORIGIN = "http://127.0.0.1:8000"


class Api:
    """A provider's API: who a key or a Basic login belongs to (401 otherwise)."""

    def __init__(self) -> None:
        self.fail: int | None = None
        self.calls = 0
        self.app = Starlette(routes=[Route("/v1/me", self.me)])

    async def me(self, request: Request) -> JSONResponse:
        self.calls += 1
        if self.fail is not None:
            return JSONResponse({"error": "busy"}, status_code=self.fail)
        header = request.headers.get("authorization", "")
        basic = "Basic " + base64.b64encode(b"anna:right-password").decode()
        if header in (f"Bearer {GOOD_KEY}", basic):
            return JSONResponse({"org": {"id": "org-9"}, "user": "anna"})
        return JSONResponse({"error": "unauthorized"}, status_code=401)


@pytest.fixture
def api() -> Iterator[tuple[Api, str]]:
    fake = Api()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with serve(fake.app, sock):
        yield fake, url


def connector(connector_id: str, auth: dict[str, Any], base_url: str, **extra: Any) -> Any:
    return define_connector(
        id=connector_id,
        name=connector_id.title(),
        summary="S.",
        description="S.",
        category="custom",
        status="available",
        auth=auth,
        api={"baseUrl": f"{base_url}/v1"},
        verify={"path": "/me", "account": {"organizationId": "org.id", "userId": "user"}},
        capabilities=[{"id": "x", "label": "X"}],
        connection={"startPath": f"/api/integrations/{connector_id}/connect"},
        **extra,
    )


def service(*connectors: Any, environ: dict[str, str] | None = None) -> Connections:
    registry = Registry()
    for item in connectors:
        registry.register(item)
    settings = Settings(public_url=ORIGIN, database_url="memory://", environ=environ or {})
    return Connections(registry, MemoryStore(), settings)


def web_app(url: str, *, connected: bool) -> tuple[Any, Connections]:
    """The routes for an API-key connector verified at ``url``, tenant ``t1``."""
    from connectors_core.store import generate_key
    from connectors_core.web import create_app

    settings = Settings.from_env(
        {
            "CONNECTORS_PUBLIC_URL": "http://testserver",
            "CONNECTORS_DATABASE_URL": "memory://",
            "CONNECTORS_SECRET_KEYS": generate_key(),
        }
    )
    registry = Registry()
    registry.register(connector("acme", KEY_AUTH, url))
    connections = Connections(registry, MemoryStore(), settings)
    if connected:
        anyio.run(connections.connect_api_key, "t1", "acme", GOOD_KEY)
    return create_app(connections=connections, authenticator=lambda request: "t1"), connections


KEY_AUTH = {
    "type": "api-key",
    "description": "Key.",
    "headerName": "Authorization",
    "valuePrefix": "Bearer ",
}


def test_a_good_key_is_stored_with_the_account_it_belongs_to(api: tuple[Api, str]) -> None:
    _fake, url = api
    connections = service(connector("acme", KEY_AUTH, url))
    anyio.run(connections.connect_api_key, "t1", "acme", GOOD_KEY)
    status = anyio.run(connections.status, "t1", "acme")
    assert status["status"]["organizationId"] == "org-9"
    assert status["status"]["userId"] == "anna"


def test_a_wrong_well_formed_key_is_refused_and_nothing_stored(api: tuple[Api, str]) -> None:
    _fake, url = api
    connections = service(connector("acme", KEY_AUTH, url))
    with pytest.raises(InvalidFieldsError) as info:
        anyio.run(connections.connect_api_key, "t1", "acme", "wrong-key-0123456789abcdef")
    assert info.value.reason == "invalid_credentials"
    assert info.value.fields == {
        "api_key": "the provider did not accept these credentials (HTTP 401)"
    }
    assert anyio.run(connections.store.get, "t1", "acme") is None


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_provider_outage_during_verification_stores_nothing_and_says_so(
    api: tuple[Api, str], status: int
) -> None:
    fake, url = api
    fake.fail = status
    connections = service(connector("acme", KEY_AUTH, url))
    with pytest.raises(ProviderUnavailableError):
        anyio.run(connections.connect_api_key, "t1", "acme", GOOD_KEY)
    assert anyio.run(connections.store.get, "t1", "acme") is None


def test_an_unreachable_provider_stores_nothing() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nothing listens there
    connections = service(connector("acme", KEY_AUTH, url))
    with pytest.raises(ProviderUnavailableError):
        anyio.run(connections.connect_api_key, "t1", "acme", GOOD_KEY)
    assert anyio.run(connections.store.get, "t1", "acme") is None


def test_a_wrong_basic_password_is_shown_beside_the_password(api: tuple[Api, str]) -> None:
    _fake, url = api
    connections = service(connector("acme", {"type": "basic", "description": "User."}, url))
    with pytest.raises(InvalidFieldsError) as info:
        anyio.run(connections.connect, "t1", "acme", {"username": "anna", "password": "nope"})
    assert set(info.value.fields) == {"password"}
    anyio.run(connections.connect, "t1", "acme", {"username": "anna", "password": "right-password"})
    assert anyio.run(connections.status, "t1", "acme")["status"]["organizationId"] == "org-9"


def test_the_plugins_verify_connection_can_refuse(
    api: tuple[Api, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake, url = api
    connections = service(connector("acme", KEY_AUTH, url))

    class Hooks:
        def verify_connection(self, **_: Any) -> bool:
            return False

    async def plugin_hooks(_connector: Any) -> Hooks:
        return Hooks()

    monkeypatch.setattr(connections, "plugin_hooks", plugin_hooks)
    with pytest.raises(InvalidFieldsError) as info:
        anyio.run(connections.connect_api_key, "t1", "acme", GOOD_KEY)
    assert info.value.reason == "invalid_credentials"
    assert anyio.run(connections.store.get, "t1", "acme") is None


def test_an_oauth_connection_is_verified_after_the_exchange() -> None:
    provider = OAuthProvider(
        clients=[
            Client(
                "c",
                "s-secret",
                (f"{ORIGIN}/api/integrations/oauthy/callback",),
                ("read",),
                ALL_GRANTS,
            )
        ]
    )
    with running(provider) as url:
        manifest = define_connector(
            id="oauthy",
            name="Oauthy",
            summary="S.",
            description="S.",
            category="custom",
            status="available",
            auth={
                "type": "oauth",
                "authorizeUrl": f"{url}/oauth/authorize",
                "tokenUrl": f"{url}/api/oauth/token",
                "revocationUrl": f"{url}/api/oauth/revoke",
                "scopes": ["read"],
            },
            api={"baseUrl": url},
            verify={"path": "/oauth/status", "account": {"verifiedOrg": "organizationId"}},
            capabilities=[{"id": "x", "label": "X"}],
            connection={"startPath": "/api/integrations/oauthy/connect"},
        )
        environ = {
            "CONNECTORS_OAUTHY_CLIENT_ID": "c",
            "CONNECTORS_OAUTHY_CLIENT_SECRET": "s-secret",
        }

        def connect() -> Any:
            connections = service(manifest, environ=environ)
            begun = anyio.run(connections.begin_oauth, "t1", "oauthy", "session")
            with httpx2.Client(follow_redirects=False) as browser:
                answer = browser.get(begun)
            params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
            return connections, params

        connections, params = connect()
        anyio.run(connections.finish_oauth, "oauthy", "t1", "session", params)
        status = anyio.run(connections.status, "t1", "oauthy")
        assert status["status"]["verifiedOrg"] == "org-1"

        provider.fail_next("status", 503)
        connections, params = connect()
        revoked = len(provider.revocations)
        with pytest.raises(IntegrationError) as info:
            anyio.run(connections.finish_oauth, "oauthy", "t1", "session", params)
        assert info.value.reason == "provider_unavailable"
        assert anyio.run(connections.store.get, "t1", "oauthy") is None
        # The tokens the exchange granted were revoked, not left valid and unknown.
        assert len(provider.revocations) == revoked + 2


def test_over_http_a_refused_key_is_a_422_beside_the_key_and_a_browser_sees_the_form(
    api: tuple[Api, str],
) -> None:
    from starlette.testclient import TestClient

    _fake, url = api
    app, _connections = web_app(url, connected=False)
    with TestClient(app, base_url="http://testserver") as client:
        token = client.get("/api/integrations/csrf").json()["csrfToken"]
        refused = client.post(
            "/api/integrations/acme/connect",
            json={"apiKey": "wrong-key-0123456789abcdef"},
            headers={"X-CSRF-Token": token},
        )
        page = client.post(
            "/api/integrations/acme/connect",
            data={"csrf_token": token, "api_key": "wrong-key-0123456789abcdef"},
            headers={"Accept": "text/html"},
        )
    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid_credentials"
    assert refused.json()["fields"] == {
        "api_key": "the provider did not accept these credentials (HTTP 401)"
    }
    assert page.status_code == 422
    assert 'id="connect-api_key-error"' in page.text
    assert "wrong-key-0123456789abcdef" not in page.text


def test_verifying_a_stored_connection_records_when_it_passed(api: tuple[Api, str]) -> None:
    fake, url = api
    clock = [1_800_000_000.0]
    connections = service(connector("acme", KEY_AUTH, url))
    connections._clock = lambda: clock[0]
    anyio.run(connections.connect_api_key, "t1", "acme", GOOD_KEY)
    assert "verifiedAt" not in anyio.run(connections.status, "t1", "acme")["status"]
    clock[0] += 60
    status = anyio.run(connections.verify, "t1", "acme")
    assert status["status"]["verifiedAt"] == 1_800_000_060
    assert fake.calls == 2  # once before storing, once on demand


def test_a_failed_verification_is_recorded_with_its_reason(api: tuple[Api, str]) -> None:
    fake, url = api
    connections = service(connector("acme", KEY_AUTH, url))
    anyio.run(connections.connect_api_key, "t1", "acme", GOOD_KEY)
    fake.fail = 503
    with pytest.raises(ProviderUnavailableError):
        anyio.run(connections.verify, "t1", "acme")
    status = anyio.run(connections.status, "t1", "acme")
    assert status["connected"] is True  # a transient failure leaves the connection
    assert status["status"]["verificationError"] == "provider_unavailable"
    fake.fail = None
    status = anyio.run(connections.verify, "t1", "acme")
    assert "verificationError" not in status["status"]
    assert "verifiedAt" in status["status"]


def test_verifying_nothing_connected_says_so(api: tuple[Api, str]) -> None:
    from connectors_core import NotConnectedError

    _fake, url = api
    connections = service(connector("acme", KEY_AUTH, url))
    with pytest.raises(NotConnectedError):
        anyio.run(connections.verify, "t1", "acme")


def test_the_test_route_is_csrf_protected_and_verifies(api: tuple[Api, str]) -> None:
    from starlette.testclient import TestClient

    fake, url = api
    app, _connections = web_app(url, connected=True)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        forged = client.post("/api/integrations/acme/test")
        token = client.get("/api/integrations/csrf").json()["csrfToken"]
        checked = client.post("/api/integrations/acme/test", headers={"X-CSRF-Token": token})
        fake.fail = 503
        failed = client.post(
            "/api/integrations/acme/test",
            data={"csrf_token": token},
            headers={"Accept": "text/html"},
        )
    assert forged.status_code == 403
    assert checked.status_code == 200
    assert "verifiedAt" in checked.json()["status"]
    assert failed.status_code == 303
    assert failed.headers["location"] == ("/integrations?connector=acme&error=provider_unavailable")


def test_the_page_offers_a_test_and_shows_a_failed_check(api: tuple[Api, str]) -> None:
    from starlette.testclient import TestClient

    fake, url = api
    app, _connections = web_app(url, connected=True)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        page = client.get("/integrations").text
        assert 'action="/api/integrations/acme/test"' in page
        assert "The last check failed" not in page
        fake.fail = 503
        token = client.get("/api/integrations/csrf").json()["csrfToken"]
        client.post("/api/integrations/acme/test", headers={"X-CSRF-Token": token})
        page = client.get("/integrations").text
        notice = client.get("/integrations?connector=acme&result=verified").text
    assert "The last check failed: Acme could not be reached. Try again in a moment." in page
    assert "Acme answered: the connection works." in notice


@pytest.mark.parametrize(("status", "reason"), [(401, "invalid_credentials"), (503, None)])
def test_an_http_error_the_hook_raises_means_refused_or_try_again(
    api: tuple[Api, str], monkeypatch: pytest.MonkeyPatch, status: int, reason: str | None
) -> None:
    _fake, url = api
    connections = service(connector("acme", KEY_AUTH, url))

    class Hooks:
        def verify_connection(self, **_: Any) -> None:
            request = httpx2.Request("GET", "https://api.acme.example/whoami")
            response = httpx2.Response(status, request=request)
            raise httpx2.HTTPStatusError("refused", request=request, response=response)

    async def plugin_hooks(_connector: Any) -> Hooks:
        return Hooks()

    monkeypatch.setattr(connections, "plugin_hooks", plugin_hooks)
    expected = ProviderUnavailableError if reason is None else InvalidFieldsError
    with pytest.raises(expected) as info:
        anyio.run(connections.connect_api_key, "t1", "acme", GOOD_KEY)
    assert info.value.reason == (reason or "provider_unavailable")
    assert anyio.run(connections.store.get, "t1", "acme") is None
