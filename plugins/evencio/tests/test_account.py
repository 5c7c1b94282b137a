"""Evencio's connection_account hook: which organization and user approved the connection."""

from __future__ import annotations

import json

import anyio
import httpx2
import pytest

import connectors_evencio
from connectors_core import Connector, define_connector
from connectors_core.connections import Settings


def evencio_api(seen: list[httpx2.Request], status: int = 200) -> httpx2.MockTransport:
    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if request.headers.get("authorization") != "Bearer the-access-token":
            return httpx2.Response(401, json={"error": "invalid_token"})
        body = {"userId": "u-1", "organizationId": "o-1", "clientId": "c", "scopes": []}
        return httpx2.Response(status, content=json.dumps(body).encode())

    return httpx2.MockTransport(handle)


def call(transport: httpx2.MockTransport, connector: Connector, environ: dict[str, str]) -> object:
    async def run() -> object:
        async with httpx2.AsyncClient(transport=transport) as http:
            return await connectors_evencio.connection_account(
                connector=connector,
                access_token="the-access-token",
                http=http,
                settings=Settings.from_env(environ),
            )

    return anyio.run(run)


def test_asks_the_configured_api_with_the_new_token() -> None:
    seen: list[httpx2.Request] = []
    result = call(
        evencio_api(seen),
        connectors_evencio.EVENCIO,
        {"CONNECTORS_EVENCIO_API_URL": "https://api.staging.example.com/"},
    )
    assert result == {"organizationId": "o-1", "userId": "u-1"}
    assert str(seen[0].url) == "https://api.staging.example.com/oauth/status"


def test_defaults_to_the_production_api() -> None:
    seen: list[httpx2.Request] = []
    call(evencio_api(seen), connectors_evencio.EVENCIO, {})
    assert str(seen[0].url) == "https://api.evenc.io/oauth/status"


def test_an_api_error_is_raised_for_the_flow_to_report() -> None:
    with pytest.raises(httpx2.HTTPStatusError):
        call(evencio_api([], status=503), connectors_evencio.EVENCIO, {})


def test_other_connectors_are_left_alone() -> None:
    other = define_connector(
        id="other",
        name="Other",
        summary="s",
        description="d",
        category="custom",
        status="available",
        auth={"type": "none"},
        capabilities=[{"id": "x", "label": "X"}],
    )
    seen: list[httpx2.Request] = []
    assert call(evencio_api(seen), other, {}) is None
    assert seen == []
