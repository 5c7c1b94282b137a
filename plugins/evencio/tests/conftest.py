"""Fixtures: the discovery index out of the user's cache; Evencio connected to its sandbox."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio
import attrs
import httpx2
import pytest

import connectors_evencio
from connectors_core.connections import Connections
from connectors_core.testing.contract import ProviderHandle, connect_at_provider

TENANT = "tenant-1"
"""The tenant of ``integrations_client`` (it has no ``x-tenant`` header)."""

_T = TypeVar("_T")


@pytest.fixture(autouse=True)
def index_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONNECTORS_INDEX_DIR", str(tmp_path / "index"))
    return tmp_path / "index"


class Recorder:
    """An ASGI app around the sandbox API that notes each request reaching it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        """``(method, path, query)`` of each request, in order."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query = dict(parse_qsl(scope["query_string"].decode()))
            self.requests.append((scope["method"], scope["path"], query))
        await self.app(scope, receive, send)

    def paths(self) -> list[str]:
        return [path for _method, path, _query in self.requests]


@attrs.define
class Sandbox:
    """Evencio behind the strict provider, and the integration routes wired to it."""

    client: Any
    """The Starlette test client of the routes (``integrations_client``)."""
    handle: ProviderHandle
    api: Recorder
    """The sandbox API as mounted behind the provider, noting each request."""
    tenant: str = TENANT
    """Whose connection it is."""

    @property
    def connections(self) -> Connections:
        connections: Connections = self.client.app.state.connections
        return connections

    def connect(self, *, scopes: list[str] | None = None) -> None:
        """Connect Evencio as a user would, approving ``scopes`` only if given."""
        landed = self.attempt(scopes=scopes)
        assert landed.endswith("result=connected"), landed

    def attempt(self, *, scopes: list[str] | None = None) -> str:
        """Start Connect, approve at the provider, and return where the callback sends the user."""
        return connect_at_provider(self.client, "evencio", scopes=scopes)

    def status(self) -> Any:
        return self.client.get("/api/integrations/evencio/status").json()

    def tokens(self) -> tuple[str, str]:
        """The stored access and refresh tokens."""
        stored = self.run(self.connections.store.get, self.tenant, "evencio")
        assert stored is not None
        assert stored.tokens is not None
        assert stored.tokens.refresh_token is not None
        return stored.tokens.access_token, stored.tokens.refresh_token

    def revoke(self, token: str) -> None:
        """Revoke ``token`` at the provider's revocation endpoint (RFC 7009)."""
        with httpx2.Client() as http:
            http.post(
                f"{self.handle.url}/api/oauth/revoke",
                data={"token": token},
                auth=(self.handle.client_id_for("evencio"), self.handle.client_secret),
            ).raise_for_status()

    @staticmethod
    def run(function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        return anyio.run(function, *args)


@pytest.fixture
def sandbox(integrations_client: Any, oauth_provider: ProviderHandle) -> Sandbox:
    """Evencio's sandbox API behind the strict provider, not connected yet."""
    assert "evencio" in oauth_provider.apis, "the plugin's sandbox_api app is not mounted"
    api = Recorder(connectors_evencio.sandbox_api(connector=connectors_evencio.EVENCIO))
    oauth_provider.provider.mount_api("evencio", api)  # the same app, noting what reaches it
    return Sandbox(integrations_client, oauth_provider, api)


@pytest.fixture
def connected(sandbox: Sandbox) -> Sandbox:
    """Evencio connected for ``TENANT`` with every scope it asks for."""
    sandbox.connect()
    sandbox.api.requests.clear()
    return sandbox
