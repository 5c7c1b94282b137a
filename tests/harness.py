"""A real app and a strict OAuth provider, each served over HTTP on loopback (fixtures)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request

from connectors_core import Registry, define_connector, discover
from connectors_core._settings import Settings
from connectors_core.connections import Connections
from connectors_core.store import generate_key, open_store
from connectors_core.testing.oauth_provider import ALL_GRANTS, Account, Client, OAuthProvider
from connectors_core.web import create_app

EVENCIO_SECRET = "evencio-client-secret-5f1c0e9a"
ACME_SECRET = "acme-client-secret-77d2b41c"
ACCOUNT = Account(user_id="user-42", organization_id="org-7")
TENANT_HEADER = "x-test-tenant"


@contextmanager
def serve(app: Any, sock: socket.socket) -> Iterator[None]:
    """Serve ``app`` with uvicorn on an already bound loopback socket, in a thread."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        assert thread.is_alive(), "the app failed to start"
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


WORKSPACES: list[str] = []
"""Every ``/ws/<team>`` path prefix the provider was called under (a shared record)."""


@contextmanager
def running_with_workspaces(provider: OAuthProvider) -> Iterator[str]:
    """Serve the provider at the root and under ``/ws/<team>`` (for URL templates)."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    async def workspace(scope: Any, receive: Any, send: Any) -> None:
        WORKSPACES.append(scope["path_params"]["team"])
        await provider.app(scope, receive, send)

    app = Starlette(routes=[Mount("/ws/{team}", app=workspace), Mount("", app=provider.app)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    provider._stopping.clear()
    try:
        with serve(app, sock):
            yield url
    finally:
        provider._stopping.set()


def mounted(integrations: Any, prefix: str) -> Any:
    """A host application serving ``integrations`` under ``prefix`` (and running its
    lifespan), with a home page of its own at ``/``."""
    from contextlib import asynccontextmanager

    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("the host application")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        async with integrations.router.lifespan_context(integrations):
            yield

    return Starlette(routes=[Route("/", home), Mount(prefix, app=integrations)], lifespan=lifespan)


def header_tenant(request: Request) -> str | None:
    """The test authenticator: the tenant is named by a header (a stand-in for a login)."""
    return request.headers.get(TENANT_HEADER)


def oauth_manifest(
    connector_id: str, provider_url: str, *, revocation: bool = True, multiple: bool = False
) -> Any:
    several = {"multiple": True, "accountKey": "organizationId"} if multiple else {}
    # The provider says whose token it is at /oauth/status (the account of a connection).
    whose = (
        {
            "verify": {
                "baseUrl": provider_url,
                "path": "/oauth/status",
                "account": {"organizationId": "organizationId", "userId": "userId"},
            }
        }
        if multiple
        else {}
    )
    return define_connector(
        **whose,
        id=connector_id,
        name=connector_id.title(),
        summary="A generic OAuth connector.",
        description="Connects to the local strict provider.",
        category="marketing",
        status="available",
        auth={
            "type": "oauth",
            "authorizeUrl": f"{provider_url}/oauth/authorize",
            "tokenUrl": f"{provider_url}/api/oauth/token",
            "scopes": ["read"],
            **({"revocationUrl": f"{provider_url}/api/oauth/revoke"} if revocation else {}),
        },
        capabilities=[{"id": "read", "label": "Read"}],
        connection={
            "startPath": f"/api/integrations/{connector_id}/connect",
            "statusPath": f"/api/integrations/{connector_id}/status",
            "disconnectPath": f"/api/integrations/{connector_id}/disconnect",
            **several,
        },
    )


def simple_manifest(connector_id: str, auth: dict[str, str], *, connectable: bool = True) -> Any:
    return define_connector(
        id=connector_id,
        name=connector_id.title(),
        summary="A test connector.",
        description="For tests.",
        category="custom",
        status="available",
        auth=auth,
        capabilities=[{"id": "ping", "label": "Ping"}],
        connection={"startPath": f"/api/integrations/{connector_id}/connect"}
        if connectable
        else None,
    )


class Clock:
    """The app's clock, which tests move forward (with the provider's) instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Harness:
    """The provider, the app and what a browser saw, for one test."""

    def __init__(
        self, provider: OAuthProvider, provider_url: str, origin: str, settings: Settings, app: Any
    ) -> None:
        self.provider = provider
        self.provider_url = provider_url
        self.origin = origin
        self.base = origin
        """Where the routes are mounted: the origin, and the prefix if there is one."""
        self.settings = settings
        self.app = app
        self.seen: list[str] = []  # every response a browser received: status, headers, body
        self.clock = Clock()

    def advance(self, seconds: float) -> None:
        """Move both clocks forward (the app's and the provider's)."""
        self.clock.offset += seconds
        self.provider.clock_offset += seconds

    @property
    def connections(self) -> Connections:
        return self.app.state.connections  # type: ignore[no-any-return]

    def _record(self, response: httpx2.Response) -> None:
        response.read()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        self.seen.append(
            f"{response.request.url}\n{response.status_code}\n{headers}\n{response.text}"
        )

    def browser(self, tenant: str | None = "tenant-a") -> httpx2.Client:
        """A cookie-keeping HTTP client that records every response it receives."""
        headers = {TENANT_HEADER: tenant} if tenant else {}
        return httpx2.Client(
            headers=headers,
            follow_redirects=False,
            timeout=10,
            event_hooks={"response": [self._record]},
        )

    def start_connect(self, browser: httpx2.Client, connector_id: str) -> str:
        """Click Connect; return the provider authorization URL."""
        response = browser.get(f"{self.base}/api/integrations/{connector_id}/connect")
        assert response.status_code == 303, response.text
        return response.headers["location"]

    def authorize(self, browser: httpx2.Client, url: str) -> str:
        """Visit the provider (auto-approving); return the callback URL it redirects to."""
        response = browser.get(url)
        assert response.status_code in (302, 303), response.text
        return response.headers["location"]

    def finish(self, browser: httpx2.Client, callback_url: str) -> str:
        """Land on the callback; return where the app sends the browser next."""
        response = browser.get(callback_url)
        assert response.status_code == 303, response.text
        return response.headers["location"]

    def connect(self, browser: httpx2.Client, connector_id: str) -> str:
        return self.finish(
            browser, self.authorize(browser, self.start_connect(browser, connector_id))
        )

    def csrf(self, browser: httpx2.Client) -> str:
        token = browser.get(f"{self.base}/api/integrations/csrf").json()["csrfToken"]
        return str(token)

    def status(self, browser: httpx2.Client, connector_id: str) -> dict[str, Any]:
        response = browser.get(f"{self.base}/api/integrations/{connector_id}/status")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def disconnect(self, browser: httpx2.Client, connector_id: str) -> httpx2.Response:
        return browser.post(
            f"{self.base}/api/integrations/{connector_id}/disconnect",
            headers={"X-CSRF-Token": self.csrf(browser), "Origin": self.origin},
        )


def fields_manifests(provider_url: str) -> list[Any]:
    """Connectors with connection fields, one per auth type, and two OAuth variants."""
    team = {
        "id": "team",
        "label": "Team",
        "help": "The team name in your Acme address.",
        "pattern": "[a-z0-9][a-z0-9-]{1,30}",
        "example": "my-team",
    }
    shop = oauth_manifest("acme-shop", provider_url)
    workspace = f"{provider_url}/ws/{{team}}"
    return [
        define_connector(
            id="acme-fields",
            name="Acme Fields",
            summary="An API-key connector with fields.",
            description="Sends the key as a bearer token, to the region chosen.",
            category="custom",
            status="available",
            auth={
                "type": "api-key",
                "description": "Your Acme API key.",
                "headerName": "Authorization",
                "valuePrefix": "Bearer ",
            },
            fields=[
                team,
                {
                    "id": "region",
                    "label": "Region",
                    "type": "choice",
                    "choices": ["us", "eu"],
                    "default": "eu",
                },
                {
                    "id": "signing_secret",
                    "label": "Signing secret",
                    "type": "secret",
                    "required": False,
                },
            ],
            capabilities=[{"id": "ping", "label": "Ping"}],
            connection={"startPath": "/api/integrations/acme-fields/connect"},
        ),
        define_connector(
            id="acme-basic",
            name="Acme Basic",
            summary="An HTTP Basic connector.",
            description="Username and password.",
            category="custom",
            status="available",
            auth={
                "type": "basic",
                "description": "An Acme API user.",
                "usernameLabel": "API user",
                "passwordLabel": "API token",
            },
            fields=[{"id": "subdomain", "label": "Subdomain", "suffix": ".acme.example"}],
            capabilities=[{"id": "ping", "label": "Ping"}],
            connection={"startPath": "/api/integrations/acme-basic/connect"},
        ),
        define_connector(
            {
                **shop.to_wire(),
                "name": "Acme Shop",
                "fields": [team],
                "auth": {
                    **shop.to_wire()["auth"],
                    "authorizeUrl": f"{workspace}/oauth/authorize",
                    "tokenUrl": f"{workspace}/api/oauth/token",
                    "revocationUrl": f"{workspace}/api/oauth/revoke",
                },
            }
        ),
        define_connector(
            {
                **oauth_manifest("acme-cc", provider_url).to_wire(),
                "name": "Acme Machine",
                "auth": {
                    "type": "oauth",
                    "grant": "client_credentials",
                    "tokenUrl": f"{provider_url}/api/oauth/token",
                    "scopes": ["read"],
                },
            }
        ),
        {**oauth_manifest("acme-unset", provider_url).to_wire(), "name": "Acme Unset"},
    ]


def build_registry(provider_url: str) -> Registry:
    registry = discover(allow=["evencio"])
    registry.register(oauth_manifest("acme-oauth", provider_url))
    registry.register(oauth_manifest("acme-norevoke", provider_url, revocation=False))
    registry.register(oauth_manifest("acme-multi", provider_url, multiple=True))
    for manifest in fields_manifests(provider_url):
        registry.register(define_connector(manifest))
    registry.register(
        simple_manifest(
            "acme-key", {"type": "api-key", "description": "Key.", "headerName": "X-Key"}
        )
    )
    registry.register(simple_manifest("acme-plain", {"type": "none"}))
    registry.register(simple_manifest("acme-static", {"type": "none"}, connectable=False))
    return registry


@pytest.fixture
def make_harness(tmp_path: Any) -> Iterator[Callable[..., Harness]]:
    """Start a provider and an app (SQLite file store) wired to each other."""
    stack: list[Any] = []

    def make(
        *,
        keys: tuple[str, ...] | None = None,
        authenticator: Any = header_tenant,
        authorizer: Any = None,
        on_event: Any = None,
        database: str | None = None,
        prefix: str = "",
        public_prefix: str | None = None,
        login_url: str | None = None,
        **settings_overrides: Any,
    ) -> Harness:
        """``prefix``: mount the routes there, inside a host application (its public
        URL then carries the prefix, and so do the provider's redirect URIs);
        ``public_prefix``: another path for the public URL (a misconfiguration)."""
        app_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stack.append(app_socket)  # closed at the end, whatever happens in between
        app_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        app_socket.bind(("127.0.0.1", 0))
        origin = f"http://127.0.0.1:{app_socket.getsockname()[1]}"
        base = origin + prefix
        provider = OAuthProvider(
            clients=[
                Client(
                    "evencio-client",
                    EVENCIO_SECRET,
                    (f"{base}/api/integrations/evencio/callback",),
                    ("events:read", "venues:read", "guests:read", "offline_access"),
                ),
                Client(
                    "acme-client",
                    ACME_SECRET,
                    tuple(
                        f"{base}/api/integrations/{name}/callback"
                        for name in ("acme-oauth", "acme-norevoke", "acme-shop", "acme-multi")
                    ),
                    ("read",),
                    ALL_GRANTS,
                ),
            ],
            account=ACCOUNT,
        )
        provider_cm = running_with_workspaces(provider)
        provider_url = provider_cm.__enter__()
        stack.append(provider_cm)
        environ = {
            "CONNECTORS_PUBLIC_URL": origin + (prefix if public_prefix is None else public_prefix),
            "CONNECTORS_DATABASE_URL": database or f"sqlite:///{tmp_path / 'connectors.sqlite3'}",
            "CONNECTORS_SECRET_KEYS": ",".join(keys or (generate_key(),)),
            "CONNECTORS_EVENCIO_CLIENT_ID": "evencio-client",
            "CONNECTORS_EVENCIO_CLIENT_SECRET": EVENCIO_SECRET,
            "CONNECTORS_EVENCIO_BASE_URL": provider_url,
            "CONNECTORS_EVENCIO_API_BASE_URL": provider_url,
            "CONNECTORS_ACME_OAUTH_CLIENT_ID": "acme-client",
            "CONNECTORS_ACME_OAUTH_CLIENT_SECRET": ACME_SECRET,
            "CONNECTORS_ACME_NOREVOKE_CLIENT_ID": "acme-client",
            "CONNECTORS_ACME_NOREVOKE_CLIENT_SECRET": ACME_SECRET,
            "CONNECTORS_ACME_SHOP_CLIENT_ID": "acme-client",
            "CONNECTORS_ACME_SHOP_CLIENT_SECRET": ACME_SECRET,
            "CONNECTORS_ACME_MULTI_CLIENT_ID": "acme-client",
            "CONNECTORS_ACME_MULTI_CLIENT_SECRET": ACME_SECRET,
        }
        connector_environ = settings_overrides.pop("environ", None)
        settings = Settings.from_env(environ, **settings_overrides)
        if connector_environ is not None:
            settings = attrs.evolve(settings, environ=connector_environ)
        clock = Clock()
        connections = Connections(
            build_registry(provider_url), open_store(settings), settings, clock=clock
        )
        app = create_app(
            connections=connections,
            authenticator=authenticator,
            authorizer=authorizer,
            on_event=on_event,
            login_url=login_url,
        )
        served = mounted(app, prefix) if prefix else app
        app_cm = serve(served, app_socket)
        app_cm.__enter__()
        stack.append(app_cm)
        harness = Harness(provider, provider_url, origin, settings, app)
        harness.base = base
        harness.clock = clock
        return harness

    yield make
    for item in reversed(stack):
        if isinstance(item, socket.socket):
            item.close()
        else:
            item.__exit__(None, None, None)


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every log record, at every level, from every logger."""
    caplog.set_level(logging.DEBUG)
    return caplog
