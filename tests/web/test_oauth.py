"""OAuth end to end: the app and a strict provider on loopback, driven like a browser."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
import sqlalchemy as sa

from tests.harness import ACCOUNT, Harness


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_connect_redirects_to_the_provider_with_pkce_and_a_state(harness: Harness) -> None:
    with harness.browser() as browser:
        url = harness.start_connect(browser, "evencio")

    params = query(url)
    assert url.startswith(f"{harness.provider_url}/oauth/authorize?")
    assert params["response_type"] == "code"
    assert params["client_id"] == "evencio-client"
    assert params["redirect_uri"] == f"{harness.origin}/api/integrations/evencio/callback"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32
    assert params["scope"] == "events:read venues:read guests:read offline_access"
    assert "code_verifier" not in params
    assert "client_secret" not in url


def test_evencio_connects_and_reports_its_organization_and_user(harness: Harness) -> None:
    with harness.browser() as browser:
        landing = harness.connect(browser, "evencio")
        status = harness.status(browser, "evencio")

    assert landing == "/integrations?connector=evencio&result=connected"
    assert status["connected"] is True
    assert status["status"]["organizationId"] == ACCOUNT.organization_id
    assert status["status"]["userId"] == ACCOUNT.user_id
    assert status["status"]["scopes"] == [
        "events:read",
        "venues:read",
        "guests:read",
        "offline_access",
    ]
    assert harness.provider.token_requests == ["authorization_code"]


def test_full_cycle_connect_refresh_and_disconnect_revokes(harness: Harness) -> None:
    import anyio

    with harness.browser() as browser:
        harness.connect(browser, "acme-oauth")
        connections = harness.connections

        async def tokens() -> tuple[str, str]:
            stored = await connections.store.get("tenant-a", "acme-oauth")
            assert stored is not None
            assert stored.tokens is not None
            assert stored.tokens.refresh_token is not None
            return stored.tokens.access_token, stored.tokens.refresh_token

        first_access, first_refresh = anyio.run(tokens)
        assert anyio.run(connections.get_access_token, "tenant-a", "acme-oauth") == first_access

        harness.advance(3600)  # the access token is now expired
        renewed = anyio.run(connections.get_access_token, "tenant-a", "acme-oauth")
        second_access, second_refresh = anyio.run(tokens)
        assert renewed == second_access != first_access
        assert second_refresh != first_refresh  # rotated, and the new one is stored
        assert not harness.provider.is_active(first_refresh)

        response = harness.disconnect(browser, "acme-oauth")
        assert response.status_code == 200
        assert response.json() == {"connected": False, "error": "not_connected"}
        assert harness.status(browser, "acme-oauth") == {
            "connected": False,
            "error": "not_connected",
        }
        assert not harness.provider.is_active(second_refresh)
        assert not harness.provider.is_active(second_access)
        assert harness.disconnect(browser, "acme-oauth").status_code == 200  # idempotent


def test_a_replayed_callback_exchanges_nothing(harness: Harness) -> None:
    with harness.browser() as browser:
        callback = harness.authorize(browser, harness.start_connect(browser, "evencio"))
        assert harness.finish(browser, callback).endswith("result=connected")
        assert harness.finish(browser, callback) == (
            "/integrations?connector=evencio&error=invalid_state"
        )
    assert harness.provider.token_requests == ["authorization_code"]


@pytest.mark.parametrize("state", ["forged-state-value", ""])
def test_a_forged_or_missing_state_is_refused(harness: Harness, state: str) -> None:
    with harness.browser() as browser:
        harness.start_connect(browser, "evencio")
        landing = harness.finish(
            browser, f"{harness.origin}/api/integrations/evencio/callback?code=abc&state={state}"
        )
        assert landing.endswith("error=invalid_state")
        assert harness.status(browser, "evencio")["connected"] is False
    assert harness.provider.token_requests == []


def test_a_state_is_bound_to_the_browser_session_that_started_it(harness: Harness) -> None:
    with harness.browser() as victim, harness.browser() as attacker:
        callback = harness.authorize(victim, harness.start_connect(victim, "evencio"))
        # The same tenant, but another browser (no session cookie) lands on the callback.
        assert harness.finish(attacker, callback).endswith("error=session_mismatch")
        assert harness.provider.token_requests == []
        # The refused callback did not consume the state: the real browser finishes.
        assert harness.finish(victim, callback).endswith("result=connected")
        assert harness.status(victim, "evencio")["connected"] is True
        # ...once.
        assert harness.finish(victim, callback).endswith("error=invalid_state")
    assert harness.provider.token_requests == ["authorization_code"]


def test_pending_authorizations_are_capped_per_browser_session(make_harness: object) -> None:
    harness: Harness = make_harness(max_pending_per_session=3)  # type: ignore[operator]
    with harness.browser() as browser:
        callbacks = [
            harness.authorize(browser, harness.start_connect(browser, "acme-oauth"))
            for _ in range(5)
        ]
        # The two oldest were dropped; the three newest still work (once each).
        for callback in callbacks[:2]:
            assert harness.finish(browser, callback).endswith("error=invalid_state")
        for callback in callbacks[2:]:
            assert harness.finish(browser, callback).endswith("result=connected")
    assert harness.provider.token_requests == ["authorization_code"] * 3


def test_disconnect_revokes_the_access_token_when_the_refresh_token_revocation_fails(
    harness: Harness,
) -> None:
    with harness.browser() as browser:
        harness.connect(browser, "acme-oauth")
        stored = anyio.run(harness.connections.store.get, "tenant-a", "acme-oauth")
        assert stored is not None
        assert stored.tokens is not None
        harness.provider.fail_next("revoke", 503)
        assert harness.disconnect(browser, "acme-oauth").status_code == 200
        assert harness.status(browser, "acme-oauth")["connected"] is False
    assert harness.provider.revocations == [stored.tokens.access_token]
    assert not harness.provider.is_active(stored.tokens.access_token)


def test_a_connection_whose_secrets_cannot_be_decrypted_is_still_disconnected(
    make_harness: object, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    first: Harness = make_harness(database=database)  # type: ignore[operator]
    with first.browser() as browser:
        harness_connect = first.connect(browser, "acme-oauth")
        assert harness_connect.endswith("result=connected")
    # The row's ciphertext is damaged (a bad restore, a tampered dump).
    engine = sa.create_engine(database)
    with engine.begin() as db:
        db.execute(sa.text("UPDATE connections SET access_token = access_token || 'x'"))
    engine.dispose()
    with first.browser() as browser:
        response = first.disconnect(browser, "acme-oauth")
        assert response.status_code == 200
        assert response.json() == {"connected": False, "error": "not_connected"}
    assert anyio.run(first.connections.store.summary, "tenant-a", "acme-oauth") is None


def test_an_unreadable_account_answer_ends_as_verification_failed(harness: Harness) -> None:
    # Evencio's verify request reads the account from the JSON answer: HTML cannot be read.
    harness.provider.respond_next("status", 200, "<html>maintenance</html>")
    with harness.browser() as browser:
        assert harness.connect(browser, "evencio").endswith("error=verification_failed")
        assert harness.status(browser, "evencio")["connected"] is False


def test_access_denied_stores_nothing(harness: Harness) -> None:
    harness.provider.deny_next = True
    with harness.browser() as browser:
        assert harness.connect(browser, "evencio").endswith("error=access_denied")
        assert harness.status(browser, "evencio") == {"connected": False, "error": "not_connected"}
    assert harness.provider.token_requests == []


def test_a_provider_outage_during_the_exchange_stores_nothing(harness: Harness) -> None:
    harness.provider.fail_next("token", 503)
    with harness.browser() as browser:
        assert harness.connect(browser, "evencio").endswith("error=provider_unavailable")
        assert harness.status(browser, "evencio")["connected"] is False


def test_a_failing_account_lookup_stores_nothing(harness: Harness) -> None:
    harness.provider.fail_next("status", 500)
    with harness.browser() as browser:
        assert harness.connect(browser, "evencio").endswith("error=provider_unavailable")
        assert harness.status(browser, "evencio")["connected"] is False


def test_tenants_are_isolated(harness: Harness) -> None:
    with harness.browser("tenant-a") as a, harness.browser("tenant-b") as b:
        harness.connect(a, "evencio")
        assert harness.status(b, "evencio") == {"connected": False, "error": "not_connected"}
        assert harness.disconnect(b, "evencio").status_code == 200
        assert harness.status(a, "evencio")["connected"] is True

        # Tenant B cannot complete an authorization tenant A started, even with A's cookie.
        callback = harness.authorize(a, harness.start_connect(a, "acme-oauth"))
        b.cookies.update(a.cookies)
        assert harness.finish(b, callback).endswith("error=wrong_tenant")
        assert harness.status(b, "acme-oauth")["connected"] is False
        assert harness.status(a, "acme-oauth")["connected"] is False


def test_requests_without_a_tenant_are_unauthenticated(harness: Harness) -> None:
    with harness.browser(tenant=None) as anonymous:
        for method, path in (
            ("GET", "connect"),
            ("GET", "status"),
            ("POST", "disconnect"),
            ("GET", "callback"),
        ):
            response = anonymous.request(
                method, f"{harness.origin}/api/integrations/evencio/{path}"
            )
            assert response.status_code == 401
            assert response.json()["error"] == "unauthenticated"


def test_the_default_local_tenant_works_on_loopback(make_harness: object) -> None:
    from connectors_core.web import local_tenant

    harness = make_harness(authenticator=local_tenant)  # type: ignore[operator]
    with harness.browser(tenant=None) as browser:
        assert harness.connect(browser, "evencio").endswith("result=connected")
        assert harness.status(browser, "evencio")["connected"] is True


def test_an_unconfigured_client_is_a_clear_error(make_harness: object) -> None:
    # The settings keep no per-connector variables: no client id for anyone.
    harness = make_harness(environ={})  # type: ignore[operator]
    with harness.browser() as browser:
        response = browser.get(f"{harness.origin}/api/integrations/evencio/connect")
    assert response.status_code == 409
    assert response.json()["error"] == "not_configured"
    assert "CONNECTORS_EVENCIO_CLIENT_ID" in response.json()["message"]


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [
        ("nope/status", 404, "unknown_connector"),
        ("acme-static/connect", 404, "not_connectable"),
        ("acme-key/callback", 303, None),
    ],
)
def test_bad_targets_get_a_4xx_with_a_reason(
    harness: Harness, path: str, status: int, reason: str | None
) -> None:
    with harness.browser() as browser:
        response = browser.get(f"{harness.origin}/api/integrations/{path}")
    assert response.status_code == status
    if reason:
        assert response.json()["error"] == reason
    else:
        assert response.headers["location"].endswith("error=invalid_state")


def test_a_hundred_concurrent_replays_of_one_callback_connect_once_and_fail_cleanly(
    harness: Harness,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with harness.browser() as browser:
        callback = harness.authorize(browser, harness.start_connect(browser, "evencio"))
        cookies = dict(browser.cookies)

    def land(_: int) -> tuple[int, str]:
        with harness.browser() as replayer:
            replayer.cookies.update(cookies)
            response = replayer.get(callback)
            return response.status_code, response.headers.get("location", "")

    with ThreadPoolExecutor(max_workers=20) as pool:
        landings = list(pool.map(land, range(100)))

    assert {status for status, _ in landings} == {303}
    outcomes = sorted(location.rsplit("&", 1)[1] for _, location in landings)
    assert outcomes == ["error=invalid_state"] * 99 + ["result=connected"]
    assert harness.provider.token_requests == ["authorization_code"]
