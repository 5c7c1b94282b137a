"""Access tokens for the host's jobs: refresh, single flight, rotation, failure modes."""

from __future__ import annotations

import anyio
import httpx2
import pytest

from connectors_core import NeedsReauthError, NotConnectedError, ProviderUnavailableError
from connectors_core.connections import Connections
from tests.harness import Harness
from tests.helpers import without_id

TENANT, ACME = "tenant-a", "acme-oauth"


def connected(harness: Harness) -> Connections:
    with harness.browser(TENANT) as browser:
        assert harness.connect(browser, ACME).endswith("result=connected")
    return harness.connections


def stored_refresh_token(connections: Connections) -> str | None:
    async def read() -> str | None:
        stored = await connections.store.get(TENANT, ACME)
        return stored.tokens.refresh_token if stored and stored.tokens else None

    return anyio.run(read)


def token(connections: Connections) -> str:
    return anyio.run(connections.get_access_token, TENANT, ACME)


def test_a_fresh_token_is_returned_without_calling_the_provider(harness: Harness) -> None:
    connections = connected(harness)
    assert token(connections) == token(connections)
    assert harness.provider.token_requests == ["authorization_code"]


def test_concurrent_callers_share_one_refresh(harness: Harness) -> None:
    connections = connected(harness)
    harness.advance(3600)
    results: list[str] = []

    async def many() -> None:
        async def one() -> None:
            results.append(await connections.get_access_token(TENANT, ACME))

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(one)

    anyio.run(many)
    assert harness.provider.token_requests == ["authorization_code", "refresh_token"]
    assert len(set(results)) == 1
    assert harness.provider.is_active(results[0])


def test_the_rotated_refresh_token_is_stored_before_the_token_is_returned(
    harness: Harness,
) -> None:
    connections = connected(harness)
    old = stored_refresh_token(connections)
    harness.advance(3600)
    token(connections)
    new = stored_refresh_token(connections)
    assert new is not None
    assert new != old
    assert harness.provider.is_active(new)
    assert old is not None
    assert not harness.provider.is_active(old)


def test_invalid_grant_marks_needs_reauth_and_stops_refreshing(harness: Harness) -> None:
    connections = connected(harness)
    refresh = stored_refresh_token(connections)
    assert refresh is not None
    with httpx2.Client() as client:  # the grant is revoked at the provider
        client.post(
            f"{harness.provider_url}/api/oauth/revoke",
            data={"token": refresh},
            auth=("acme-client", "acme-client-secret-77d2b41c"),
        ).raise_for_status()
    harness.advance(3600)

    with pytest.raises(NeedsReauthError):
        token(connections)
    with pytest.raises(NeedsReauthError):
        token(connections)
    assert harness.provider.token_requests == ["authorization_code", "refresh_token"]
    with harness.browser(TENANT) as browser:
        assert without_id(harness.status(browser, ACME)) == {
            "connected": False,
            "error": "needs_reauth",
            "reason": "invalid_grant",
        }
        # Reconnecting clears it.
        harness.connect(browser, ACME)
        assert harness.status(browser, ACME)["connected"] is True


@pytest.mark.parametrize("failure", [500, 503, 429, "timeout"])
def test_a_transient_failure_is_retried_later_never_needs_reauth(
    make_harness: object, failure: int | str
) -> None:
    harness: Harness = make_harness(http_timeout=0.5)  # type: ignore[operator]
    harness.provider.timeout_delay = 2.0
    connections = connected(harness)
    harness.advance(3600)
    harness.provider.fail_next("token", failure)

    with pytest.raises(ProviderUnavailableError) as info:
        token(connections)
    assert info.value.reason == "provider_unavailable"
    with harness.browser(TENANT) as browser:
        assert harness.status(browser, ACME)["connected"] is True
    assert token(connections)  # the next attempt succeeds
    assert harness.provider.token_requests[-1] == "refresh_token"


def test_the_old_refresh_token_is_kept_when_the_provider_sends_none(harness: Harness) -> None:
    connections = connected(harness)
    old = stored_refresh_token(connections)
    harness.provider.rotate_refresh_tokens = False
    harness.advance(3600)
    token(connections)
    assert stored_refresh_token(connections) == old


def test_not_connected(harness: Harness) -> None:
    with pytest.raises(NotConnectedError):
        token(harness.connections)
