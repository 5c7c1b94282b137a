"""Which organization and user a connection belongs to: found by the manifest's verify request."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import connectors_evencio
from connectors_core.testing.oauth_provider import Account

if TYPE_CHECKING:
    from conftest import Sandbox


def test_the_manifest_verifies_with_oauth_status_on_the_api() -> None:
    evencio = connectors_evencio.EVENCIO
    assert evencio.api is not None
    assert evencio.api.base_url == "https://api.evenc.io"
    assert evencio.api.token_expired_statuses == (401,)
    assert 401 not in evencio.api.retry.statuses
    assert evencio.verify is not None
    assert (evencio.verify.method, evencio.verify.path) == ("GET", "/oauth/status")
    assert evencio.verify.base_url is None  # the API's: CONNECTORS_EVENCIO_API_BASE_URL moves both
    assert dict(evencio.verify.account) == {
        "organizationId": "organizationId",
        "userId": "userId",
    }


def test_connecting_shows_the_organization_and_user_the_api_names(sandbox: Sandbox) -> None:
    sandbox.handle.provider.account = Account(user_id="user-42", organization_id="org-42")

    sandbox.connect()

    status = sandbox.status()
    assert status["connected"] is True
    assert status["status"]["organizationId"] == "org-42"
    assert status["status"]["userId"] == "user-42"
    # Asked of the API base URL (the sandbox), once: the provider's own /oauth/status,
    # where the old CONNECTORS_EVENCIO_API_URL pointed, is not asked any more.
    assert sandbox.api.requests == [("GET", "/oauth/status", {})]


def answering(status: int) -> Starlette:
    async def oauth_status(request: Request) -> JSONResponse:
        return JSONResponse({"error": "nope"}, status)

    return Starlette(routes=[Route("/oauth/status", oauth_status)])


@pytest.mark.parametrize(
    ("status", "reason"), [(403, "invalid_credentials"), (503, "provider_unavailable")]
)
def test_a_failed_lookup_stores_nothing(sandbox: Sandbox, status: int, reason: str) -> None:
    sandbox.handle.provider.mount_api("evencio", answering(status))

    assert sandbox.attempt().endswith(f"error={reason}")

    assert sandbox.status() == {"connected": False, "error": "not_connected"}
