"""Connections that stay healthy: renewal when due or idle, recorded errors, reasons."""

from __future__ import annotations

from typing import Any

import anyio
import attrs
import pytest

from connectors_core import (
    IntegrationError,
    NeedsReauthError,
    NotConnectedError,
    Registry,
    UnknownConnectorError,
    define_connector,
)
from connectors_core.connections import Connections
from tests.harness import Harness
from tests.helpers import without_id

TENANT, ACME = "tenant-a", "acme-oauth"


def connected(harness: Harness, connector_id: str = ACME, tenant: str = TENANT) -> Connections:
    with harness.browser(tenant) as browser:
        assert harness.connect(browser, connector_id).endswith("result=connected")
    return harness.connections


def status(connections: Connections, connector_id: str = ACME, tenant: str = TENANT) -> Any:
    return anyio.run(connections.status, tenant, connector_id)


def connect_key(connections: Connections, key: str = "key-0123456789abcdef") -> None:
    anyio.run(connections.connect_api_key, TENANT, "acme-key", key)


# --- the jobs API's errors -------------------------------------------------------------


def test_an_access_token_of_an_api_key_connector_is_the_wrong_question(harness: Harness) -> None:
    connections = harness.connections
    connect_key(connections)
    with pytest.raises(IntegrationError) as info:
        anyio.run(connections.get_access_token, TENANT, "acme-key")
    assert info.value.reason == "unsupported_auth"
    assert "get_api_key() or client()" in str(info.value)


def test_an_unknown_connector_is_unknown_not_unconnected(harness: Harness) -> None:
    connections = harness.connections
    for ask in (connections.get_api_key, connections.get_access_token):
        with pytest.raises(UnknownConnectorError):
            anyio.run(ask, TENANT, "nope")


def test_an_api_key_of_an_oauth_connector_is_the_wrong_question(harness: Harness) -> None:
    connections = connected(harness)
    with pytest.raises(IntegrationError) as info:
        anyio.run(connections.get_api_key, TENANT, ACME)
    assert info.value.reason == "unsupported_auth"
    with pytest.raises(NotConnectedError):
        anyio.run(connections.get_api_key, TENANT, "acme-key")


# --- marking and recording -------------------------------------------------------------


def test_a_job_marks_dead_credentials_and_the_status_says_why(harness: Harness) -> None:
    connections = connected(harness)
    assert anyio.run(connections.mark_needs_reauth, TENANT, ACME, "uninstalled") is True
    assert anyio.run(connections.mark_needs_reauth, TENANT, ACME, "revoked") is False
    assert without_id(status(connections)) == {
        "connected": False,
        "error": "needs_reauth",
        "reason": "uninstalled",
    }
    with pytest.raises(NeedsReauthError) as info:
        anyio.run(connections.get_access_token, TENANT, ACME)
    assert info.value.cause == "uninstalled"
    with pytest.raises(ValueError, match="short code"):
        anyio.run(connections.mark_needs_reauth, TENANT, ACME, "Not A Code")
    with pytest.raises(NotConnectedError):
        anyio.run(connections.mark_needs_reauth, "tenant-b", ACME, "revoked")
    # Connecting again clears it.
    connected(harness)
    assert status(connections)["connected"] is True


def test_a_renewal_is_recorded_and_a_transient_failure_shown_until_the_next_one(
    harness: Harness,
) -> None:
    connections = connected(harness)
    assert "lastRefreshedAt" not in status(connections)["status"]
    harness.advance(3600)
    harness.provider.fail_next("token", 503)
    with pytest.raises(IntegrationError):
        anyio.run(connections.get_access_token, TENANT, ACME)
    failed = status(connections)
    assert failed["connected"] is True  # transient: the user need not do anything
    assert failed["status"]["lastError"] == "provider_unavailable"
    anyio.run(connections.get_access_token, TENANT, ACME)
    healthy = status(connections)["status"]
    assert "lastError" not in healthy
    assert abs(healthy["lastRefreshedAt"] - harness.clock()) < 5


def test_a_refused_refresh_says_invalid_grant(harness: Harness) -> None:
    connections = connected(harness)
    harness.advance(3600)
    harness.provider.respond_next("token", 400, {"error": "invalid_grant"})
    with pytest.raises(NeedsReauthError) as info:
        anyio.run(connections.get_access_token, TENANT, ACME)
    assert info.value.cause == "invalid_grant"
    assert status(connections)["reason"] == "invalid_grant"


def test_a_connector_that_asks_for_more_scopes_needs_the_user_again(harness: Harness) -> None:
    connections = connected(harness)
    before = connections.registry.get(ACME)
    wider = define_connector(
        {**before.to_wire(), "auth": {**before.to_wire()["auth"], "scopes": ["read", "write"]}}
    )
    upgraded = Registry()  # a new version of the plugin, over the same store
    upgraded.register(wider)
    connections = Connections(upgraded, connections.store, connections.settings)
    assert without_id(status(connections)) == {
        "connected": False,
        "error": "needs_reauth",
        "reason": "scopes_missing",
        "missingScopes": ["write"],
    }
    with pytest.raises(NeedsReauthError) as info:
        anyio.run(connections.get_access_token, TENANT, ACME)
    assert info.value.cause == "scopes_missing"


def test_verifying_a_refused_key_that_works_again_connects_it_again(harness: Harness) -> None:
    connections = harness.connections
    connect_key(connections)
    anyio.run(connections.mark_needs_reauth, TENANT, "acme-key", "invalid_credentials")
    assert anyio.run(connections.verify, TENANT, "acme-key")["connected"] is True


# --- renewing when due --------------------------------------------------------------------


def test_refresh_due_renews_what_expires_soon_and_leaves_the_rest(harness: Harness) -> None:
    connections = connected(harness)
    connected(harness, tenant="tenant-b")
    connect_key(connections)
    report = anyio.run(lambda: connections.refresh_due())
    assert report.outcomes == ()  # fresh tokens, an API key: nothing to do
    harness.advance(3000)  # ten minutes left: outside the minute's margin
    assert anyio.run(lambda: connections.refresh_due()).outcomes == ()
    # A cron every ten minutes asks for what expires before its next run.
    report = anyio.run(lambda: connections.refresh_due(tenant=TENANT, within=600))
    assert [(o.tenant, o.connector_id, o.result) for o in report.outcomes] == [
        (TENANT, ACME, "refreshed")
    ]
    assert harness.provider.token_requests.count("refresh_token") == 1
    harness.advance(570)  # thirty seconds left for tenant-b: within the margin
    report = anyio.run(lambda: connections.refresh_due())
    assert [(o.tenant, o.result) for o in report.outcomes] == [("tenant-b", "refreshed")]


def test_a_refresh_token_unused_for_long_is_renewed_before_it_lapses(harness: Harness) -> None:
    harness.provider.access_token_lifetime = 30 * 86400  # access tokens that last a month
    connections = connected(harness)
    harness.advance(2 * 86400)  # not due, but the refresh token sat unused two days
    assert anyio.run(lambda: connections.refresh_due(idle=0)).outcomes == ()  # idle: off
    report = anyio.run(lambda: connections.refresh_due(idle=86400))
    assert [o.result for o in report.outcomes] == ["refreshed"]
    assert anyio.run(lambda: connections.refresh_due(idle=86400)).outcomes == ()  # just used
    # The default is CONNECTORS_REFRESH_IDLE, 14 days.
    harness.advance(13 * 86400)
    assert anyio.run(lambda: connections.refresh_due()).outcomes == ()
    harness.advance(86400 + 60)
    assert anyio.run(lambda: connections.refresh_due()).count("refreshed") == 1


def test_two_runs_at_once_renew_each_connection_once(harness: Harness) -> None:
    connections = connected(harness)
    harness.advance(3600)
    reports: list[Any] = []

    async def both() -> None:
        async def run() -> None:
            reports.append(await connections.refresh_due())

        async with anyio.create_task_group() as group:
            group.start_soon(run)
            group.start_soon(run)

    anyio.run(both)
    assert harness.provider.token_requests.count("refresh_token") == 1
    assert sorted(r.outcomes[0].result for r in reports) == ["refreshed", "unchanged"]


def test_a_failed_renewal_is_reported_and_recorded(harness: Harness) -> None:
    connections = connected(harness)
    harness.advance(3600)
    harness.provider.fail_next("token", 500)
    report = anyio.run(lambda: connections.refresh_due())
    assert [(o.result, o.reason) for o in report.outcomes] == [("failed", "provider_unavailable")]
    harness.provider.respond_next("token", 400, {"error": "invalid_grant"})
    report = anyio.run(lambda: connections.refresh_due())
    assert [(o.result, o.reason) for o in report.outcomes] == [("needs_reauth", "invalid_grant")]


def test_the_margin_is_settable_per_connector(harness: Harness) -> None:
    connected(harness)
    settings = harness.settings
    wider = attrs.evolve(
        settings, environ={**settings.environ, "CONNECTORS_ACME_OAUTH_REFRESH_MARGIN": "1200"}
    )
    connections = Connections(
        harness.connections.registry, harness.connections.store, wider, clock=harness.clock
    )
    harness.advance(3600 - 1000)  # 1000 s left: inside 1200, outside the default 60
    assert anyio.run(lambda: harness.connections.refresh_due()).outcomes == ()
    assert anyio.run(lambda: connections.refresh_due()).count("refreshed") == 1


def test_refresh_now_renews_once_and_refuses_what_cannot_be_renewed(harness: Harness) -> None:
    connections = connected(harness)
    before = anyio.run(connections.get_access_token, TENANT, ACME)
    status = anyio.run(connections.refresh, TENANT, ACME)
    assert "lastRefreshedAt" in status["status"]
    assert anyio.run(connections.get_access_token, TENANT, ACME) != before
    assert harness.provider.token_requests.count("refresh_token") == 1
    connect_key(connections)
    with pytest.raises(IntegrationError) as info:
        anyio.run(connections.refresh, TENANT, "acme-key")
    assert info.value.reason == "unsupported_auth"


def test_one_unreadable_connection_does_not_stop_the_others_renewal(harness: Harness) -> None:
    import sqlalchemy as sa

    connections = connected(harness)
    connected(harness, tenant="tenant-b")
    store: Any = connections.store
    with store.engine.begin() as db:  # tenant-a's refresh token no longer decrypts
        spoiled = "UPDATE connections SET refresh_token = 'v1.nope.AAAA' WHERE tenant = :tenant"
        db.execute(sa.text(spoiled), {"tenant": TENANT})
    harness.advance(3600)
    report = anyio.run(lambda: connections.refresh_due())
    assert [(o.tenant, o.result, o.reason) for o in report.outcomes] == [
        (TENANT, "failed", "unreadable_secrets"),
        ("tenant-b", "refreshed", None),
    ]


def test_a_connection_of_an_uninstalled_connector_can_still_be_disconnected(
    harness: Harness,
) -> None:
    connections = connected(harness)
    without = Connections(Registry(), connections.store, connections.settings)
    assert anyio.run(without.disconnect, TENANT, ACME) is True
    assert anyio.run(connections.store.get, TENANT, ACME) is None
    with pytest.raises(UnknownConnectorError):
        anyio.run(without.disconnect, TENANT, ACME)


# --- listing ---------------------------------------------------------------------------


def test_list_and_describe_show_connections_without_secrets(harness: Harness) -> None:
    connections = connected(harness)
    connected(harness, tenant="tenant-b")
    connect_key(connections, "key-0123456789abcdef")
    listed = anyio.run(lambda: connections.list())
    assert [(s.tenant, s.connector_id) for s in listed] == [
        (TENANT, "acme-key"),
        (TENANT, ACME),
        ("tenant-b", ACME),
    ]
    assert [s.tenant for s in anyio.run(lambda: connections.list(connector_id=ACME))] == [
        TENANT,
        "tenant-b",
    ]
    described = connections.describe(listed[0])
    assert described["tenant"] == TENANT
    assert described["connectorId"] == "acme-key"
    assert described["status"]["keyHint"] == "••••cdef"
    assert "key-0123456789abcdef" not in repr(listed) + repr(described)


def test_two_runs_asking_far_ahead_still_renew_each_token_once(harness: Harness) -> None:
    connections = connected(harness)

    async def both() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(2):
                group.start_soon(lambda: connections.refresh_due(within=3600))

    anyio.run(both)  # a new token is "due within 3600" too: not renewed again
    assert harness.provider.token_requests.count("refresh_token") == 1


def test_a_job_marks_only_the_credentials_it_saw(harness: Harness) -> None:
    connections = connected(harness)
    seen_at = harness.clock()
    harness.advance(10)
    connected(harness)  # the user connects again meanwhile
    marked = anyio.run(
        lambda: connections.mark_needs_reauth(TENANT, ACME, "revoked", if_unchanged_since=seen_at)
    )
    assert marked is False
    assert status(connections)["connected"] is True


def test_a_failed_early_renewal_still_hands_out_the_token_that_works(harness: Harness) -> None:
    connections = connected(harness)
    before = anyio.run(connections.get_access_token, TENANT, ACME)
    harness.advance(3600 - 30)  # due (the margin), not expired
    harness.provider.fail_next("token", 503)
    assert anyio.run(connections.get_access_token, TENANT, ACME) == before
    assert status(connections)["status"]["lastError"] == "provider_unavailable"
    harness.advance(60)  # expired now: the failure is the caller's to see
    harness.provider.fail_next("token", 503)
    with pytest.raises(IntegrationError):
        anyio.run(connections.get_access_token, TENANT, ACME)
