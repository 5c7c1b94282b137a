"""The plugins' lifecycle hooks: ``after_connect`` keeps account data, ``before_disconnect``
revokes the provider's own way (or not at all).

Connections are made through the real app and the strict provider
(``tests.harness``); the plugin's hooks are called through a real pluggy
manager, put where the connector's plugin would be.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest

from connectors_core import hookimpl
from tests.harness import Harness

TENANT, ACME = "tenant-a", "acme-oauth"


class Plugin:
    """A plugin whose lifecycle hooks do what a test sets, and note how they were called."""

    def __init__(self, provider_url: str) -> None:
        self.provider_url = provider_url
        self.keep: Any = None
        self.decide: Any = None
        self.raise_in: set[str] = set()
        self.calls: list[tuple[str, str, bool]] = []  # (hook, access token, replacing)

    @hookimpl
    async def after_connect(
        self, connector: Any, connection: Any, http: httpx2.AsyncClient, settings: Any
    ) -> Any:
        token = connection.tokens.access_token
        self.calls.append(("after_connect", token, False))
        if "after_connect" in self.raise_in:
            raise RuntimeError(f"portal lookup failed for {token}")
        if self.keep == "ask the provider":
            # What a HubSpot plugin does: ask the provider whose token it is.
            answer = await http.get(
                f"{self.provider_url}/oauth/status",
                headers={"Authorization": f"Bearer {token}"},
            )
            return {"portalId": "portal-" + answer.json()["organizationId"]}
        return self.keep

    @hookimpl
    def before_disconnect(
        self, connector: Any, connection: Any, http: Any, settings: Any, replacing: bool
    ) -> Any:
        self.calls.append(("before_disconnect", connection.tokens.access_token, replacing))
        if "before_disconnect" in self.raise_in:
            raise RuntimeError("the provider's own revocation failed")
        return self.decide


@pytest.fixture
def plugin(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Plugin:
    from connectors_core._loading import new_manager, register

    found = Plugin(harness.provider_url)
    manager = new_manager()
    register(manager, found, "lifecycle-test")

    async def plugin_hooks(_connector: Any) -> Any:
        return manager.hook

    monkeypatch.setattr(harness.connections, "plugin_hooks", plugin_hooks)
    return found


def connect(harness: Harness, connector_id: str = ACME) -> dict[str, Any]:
    with harness.browser() as browser:
        assert harness.connect(browser, connector_id).endswith("result=connected")
        return harness.status(browser, connector_id)


def disconnect(harness: Harness) -> None:
    with harness.browser() as browser:
        assert harness.disconnect(browser, ACME).status_code == 200


def token(harness: Harness) -> str:
    return anyio.run(harness.connections.get_access_token, TENANT, ACME)


# --- after_connect ------------------------------------------------------------------------


def test_after_connect_keeps_account_data_shown_in_the_status(
    harness: Harness, plugin: Plugin
) -> None:
    plugin.keep = "ask the provider"
    status = connect(harness)
    assert status["status"]["portalId"] == "portal-org-7"


def test_after_connect_values_are_strings_of_at_most_200_characters(
    harness: Harness, plugin: Plugin
) -> None:
    plugin.keep = {"portalId": 12345, "note": "x" * 500}
    status = connect(harness)["status"]
    assert status["portalId"] == "12345"
    assert status["note"] == "x" * 200


@pytest.mark.parametrize("keep", [None, ["not", "a", "mapping"], "text"])
def test_an_after_connect_without_a_mapping_adds_nothing(
    harness: Harness, plugin: Plugin, keep: Any
) -> None:
    plugin.keep = keep
    status = connect(harness)["status"]
    assert not set(status) - {"connectionId", "authType", "scopes", "connectedAt", "expiresAt"}


def test_a_failing_after_connect_costs_only_what_it_would_add(
    harness: Harness, plugin: Plugin, captured_logs: pytest.LogCaptureFixture
) -> None:
    plugin.raise_in = {"after_connect"}
    status = connect(harness)
    assert status["connected"] is True
    assert "after_connect of acme-oauth raised RuntimeError" in captured_logs.text
    assert token(harness) not in captured_logs.text  # the exception's message is not logged


def test_after_connect_may_name_the_account_of_a_connector_with_several(
    harness: Harness, plugin: Plugin
) -> None:
    from connectors_core.testing.oauth_provider import Account

    # acme-multi tells its connections apart by organizationId; here the plugin
    # overrides what the provider said, as one whose verify finds no account would.
    plugin.keep = {"organizationId": "from-the-plugin"}
    harness.provider.account = Account(user_id="u-1", organization_id="org-1")
    status = connect(harness, "acme-multi")
    [only] = status["connections"]
    assert only["status"]["organizationId"] == "from-the-plugin"


# --- before_disconnect --------------------------------------------------------------------


def test_before_disconnect_returning_none_lets_connectors_core_revoke(
    harness: Harness, plugin: Plugin
) -> None:
    connect(harness)
    access = token(harness)
    disconnect(harness)
    assert ("before_disconnect", access, False) in plugin.calls
    assert access in harness.provider.revocations


@pytest.mark.parametrize("decide", [True, False], ids=["plugin-revoked", "keep-grant"])
def test_before_disconnect_may_revoke_itself_or_keep_the_grant(
    harness: Harness, plugin: Plugin, decide: bool
) -> None:
    plugin.decide = decide
    connect(harness)
    access = token(harness)
    disconnect(harness)
    assert ("before_disconnect", access, False) in plugin.calls
    assert access not in harness.provider.revocations  # connectors-core revoked nothing
    with harness.browser() as browser:
        assert harness.status(browser, ACME)["connected"] is False  # deleted all the same


def test_a_failing_before_disconnect_still_revokes_and_deletes(
    harness: Harness, plugin: Plugin, captured_logs: pytest.LogCaptureFixture
) -> None:
    plugin.raise_in = {"before_disconnect"}
    connect(harness)
    access = token(harness)
    disconnect(harness)
    assert access in harness.provider.revocations
    assert "before_disconnect of acme-oauth raised RuntimeError" in captured_logs.text
    with harness.browser() as browser:
        assert harness.status(browser, ACME)["connected"] is False


def test_connecting_again_asks_before_revoking_the_replaced_credentials(
    harness: Harness, plugin: Plugin
) -> None:
    connect(harness)
    old = token(harness)
    connect(harness)
    new = token(harness)
    assert new != old
    assert ("before_disconnect", old, True) in plugin.calls
    assert old in harness.provider.revocations
    assert new not in harness.provider.revocations

    plugin.decide = False  # e.g. a provider whose revocation ends every grant of the app
    connect(harness)
    assert ("before_disconnect", new, True) in plugin.calls
    assert new not in harness.provider.revocations
