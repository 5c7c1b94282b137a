"""Connecting with fields over HTTP: each auth type, per-input errors, nothing stored on failure."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from tests.harness import ACME_SECRET, WORKSPACES, Harness

KEY = "sk_fields_0123456789abcdef"
SIGNING = "whsec_do-not-show-this-9f8e7d"


def post(
    harness: Harness, browser: Any, connector_id: str, body: dict[str, str], *, html: bool = False
) -> Any:
    headers = {"X-CSRF-Token": harness.csrf(browser), "Origin": harness.origin}
    if html:
        headers["Accept"] = "text/html"
    return browser.post(
        f"{harness.origin}/api/integrations/{connector_id}/connect", json=body, headers=headers
    )


def stored(harness: Harness, connector_id: str, tenant: str = "tenant-a") -> Any:
    return anyio.run(harness.connections.store.get, tenant, connector_id)


def test_an_api_key_connector_keeps_its_fields_and_shows_only_the_non_secret_ones(
    harness: Harness,
) -> None:
    body = {"team": "acme-team", "region": "us", "signing_secret": SIGNING, "apiKey": KEY}
    with harness.browser() as browser:
        response = post(harness, browser, "acme-fields", body)
        assert response.status_code == 200, response.text
        status = harness.status(browser, "acme-fields")
    assert status["connected"] is True
    assert status["status"]["config"] == {"team": "acme-team", "region": "us"}
    connection = stored(harness, "acme-fields")
    assert connection.api_key == KEY
    assert connection.secrets == {"signing_secret": SIGNING}
    assert connection.config == {"team": "acme-team", "region": "us"}
    for seen in harness.seen:
        assert KEY not in seen
        assert SIGNING not in seen


def test_a_default_fills_an_empty_field(harness: Harness) -> None:
    with harness.browser() as browser:
        response = post(harness, browser, "acme-fields", {"team": "acme-team", "apiKey": KEY})
    assert response.json()["status"]["config"] == {"team": "acme-team", "region": "eu"}


def test_every_invalid_value_is_a_422_with_its_message_and_nothing_is_stored(
    harness: Harness,
) -> None:
    body = {"team": "Bad Team!", "region": "asia", "apiKey": "short"}
    with harness.browser() as browser:
        response = post(harness, browser, "acme-fields", body)
        status = harness.status(browser, "acme-fields")
    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == "invalid_fields"
    assert set(answer["fields"]) == {"team", "region", "api_key"}
    assert answer["fields"]["team"] == "does not have the expected format (for example my-team)"
    assert answer["fields"]["region"] == "must be one of: us, eu"
    assert "short" not in json.dumps(answer)  # a secret is never quoted back
    assert status == {"connected": False, "error": "not_connected"}
    assert stored(harness, "acme-fields") is None


def test_an_invalid_api_key_alone_keeps_its_own_reason(harness: Harness) -> None:
    with harness.browser() as browser:
        response = post(harness, browser, "acme-key", {"apiKey": "short"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_api_key"
    assert set(response.json()["fields"]) == {"api_key"}


@pytest.mark.parametrize(
    "team",
    [
        "acme\x00team",
        "a" * 3000,
        "acme\u202eteam",
        "evil.com#",
        "x@evil",
        "a/../b",
        "acm\u0435-team",
    ],
    ids=["nul", "over-long", "bidi-override", "fragment", "userinfo", "traversal", "look-alike"],
)
def test_bad_values_are_refused_before_anything_is_sent_or_stored(
    harness: Harness, team: str
) -> None:
    before = list(WORKSPACES)
    with harness.browser() as browser:
        response = post(harness, browser, "acme-shop", {"team": team})
    assert response.status_code == 422, response.text
    assert set(response.json()["fields"]) == {"team"}
    assert before == WORKSPACES  # the provider was never called
    assert harness.provider.token_requests == []


def test_a_browser_sees_the_form_again_with_messages_beside_the_inputs(harness: Harness) -> None:
    with harness.browser() as browser:
        token = harness.csrf(browser)
        response = browser.post(
            f"{harness.origin}/api/integrations/acme-fields/connect",
            data={
                "csrf_token": token,
                "team": "Bad <Team>",
                "region": "us",
                "signing_secret": SIGNING,
                "api_key": "bad key!",
            },
            headers={"Origin": harness.origin, "Accept": "text/html"},
        )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'value="Bad &lt;Team&gt;"' in page  # kept, escaped
    assert '<option value="us" selected>' in page
    assert "bad key!" not in page
    assert SIGNING not in page
    assert 'id="connect-team-error"' in page
    assert 'id="connect-api_key-error"' in page
    assert re.search(r'id="connect-team"[^>]*aria-invalid="true"', page)
    assert "Some values need your attention" in page


def test_basic_credentials_connect_and_are_stored_encrypted(harness: Harness) -> None:
    body = {"subdomain": "acme", "username": "api-user@acme.example", "password": "pw-2f9c1a7e"}
    with harness.browser() as browser:
        response = post(harness, browser, "acme-basic", body)
    assert response.status_code == 200, response.text
    status = response.json()["status"]
    assert status["authType"] == "basic"
    assert status["config"] == {"subdomain": "acme"}
    assert "api-user@acme.example" not in response.text
    connection = stored(harness, "acme-basic")
    assert (connection.username, connection.password) == ("api-user@acme.example", "pw-2f9c1a7e")


def test_basic_without_a_required_password_is_refused(harness: Harness) -> None:
    with harness.browser() as browser:
        response = post(harness, browser, "acme-basic", {"subdomain": "a", "username": "u"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_credentials"
    assert response.json()["fields"] == {"password": "is required"}


def test_an_oauth_connector_builds_its_urls_from_a_field(harness: Harness) -> None:
    with harness.browser() as browser:
        started = post(harness, browser, "acme-shop", {"team": "acme-team"}, html=True)
        assert started.status_code == 303, started.text
        authorize = started.headers["location"]
        assert urlsplit(authorize).path == "/ws/acme-team/oauth/authorize"
        landed = harness.finish(browser, harness.authorize(browser, authorize))
        assert landed.endswith("result=connected")
        status = harness.status(browser, "acme-shop")
        assert status["status"]["config"] == {"team": "acme-team"}
        tokens = stored(harness, "acme-shop").tokens
        gone = harness.disconnect(browser, "acme-shop")
    assert gone.json() == {"connected": False, "error": "not_connected"}
    # The token was fetched, and revoked, under the team's path.
    assert WORKSPACES.count("acme-team") >= 3
    assert not harness.provider.is_active(tokens.access_token)


def test_an_oauth_connect_from_json_answers_where_to_go(harness: Harness) -> None:
    with harness.browser() as browser:
        response = post(harness, browser, "acme-shop", {"team": "acme-team"})
    assert response.status_code == 200
    assert response.json()["connected"] is False
    assert urlsplit(response.json()["redirect"]).path == "/ws/acme-team/oauth/authorize"


def test_client_credentials_connect_with_the_connections_own_client(harness: Harness) -> None:
    body = {"clientId": "acme-client", "clientSecret": ACME_SECRET}
    with harness.browser() as browser:
        response = post(harness, browser, "acme-cc", body)
    assert response.status_code == 200, response.text
    assert response.json()["connected"] is True
    assert harness.provider.token_requests == ["client_credentials"]
    connection = stored(harness, "acme-cc")
    assert connection.secrets == {"client_id": "acme-client", "client_secret": ACME_SECRET}
    first = anyio.run(harness.connections.get_access_token, "tenant-a", "acme-cc")
    assert harness.provider.is_active(first)
    harness.advance(3600)  # past the token's lifetime: a new one is granted
    second = anyio.run(harness.connections.get_access_token, "tenant-a", "acme-cc")
    assert second != first
    assert harness.provider.is_active(second)
    assert harness.provider.token_requests == ["client_credentials", "client_credentials"]
    assert ACME_SECRET not in response.text


def test_a_wrong_client_secret_is_shown_beside_its_input(harness: Harness) -> None:
    body = {"clientId": "acme-client", "clientSecret": "not-the-secret"}
    with harness.browser() as browser:
        response = post(harness, browser, "acme-cc", body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_credentials"
    assert response.json()["fields"] == {
        "client_secret": "the provider did not accept this client ID and secret"
    }
    assert stored(harness, "acme-cc") is None


def test_client_credentials_never_use_the_servers_client(make_harness: Any) -> None:
    # Even with a server-wide client configured, every tenant brings its own.
    harness = make_harness(
        environ={
            "CONNECTORS_ACME_CC_CLIENT_ID": "acme-client",
            "CONNECTORS_ACME_CC_CLIENT_SECRET": ACME_SECRET,
        }
    )
    with harness.browser() as browser:
        response = post(harness, browser, "acme-cc", {})
    assert response.status_code == 422
    assert set(response.json()["fields"]) == {"client_id", "client_secret"}
    assert harness.provider.token_requests == []


def test_a_connector_that_is_not_set_up_says_so(harness: Harness) -> None:
    with harness.browser() as browser:
        url = f"{harness.origin}/api/integrations/acme-unset/connect"
        as_browser = browser.get(url, headers={"Accept": "text/html"})
        as_api = browser.get(url)
    assert as_browser.status_code == 303
    query = parse_qs(urlsplit(as_browser.headers["location"]).query)
    assert query == {"connector": ["acme-unset"], "error": ["not_configured"]}
    assert as_api.status_code == 409
    assert as_api.json()["error"] == "not_configured"
    assert "CONNECTORS_ACME_UNSET_CLIENT_ID" in as_api.json()["message"]


def test_the_page_shows_a_reasons_message_not_json(harness: Harness) -> None:
    with harness.browser() as browser:
        page = browser.get(
            f"{harness.origin}/integrations?connector=acme-unset&error=not_configured"
        )
    assert "Acme Unset is not set up on this server yet." in page.text


def test_an_unknown_connector_sends_a_browser_back_to_the_page(harness: Harness) -> None:
    with harness.browser() as browser:
        response = browser.get(
            f"{harness.origin}/api/integrations/nope/connect", headers={"Accept": "text/html"}
        )
        page = browser.get(f"{harness.origin}{response.headers['location']}")
    assert response.status_code == 303
    assert "That integration is not installed here." in page.text


def test_signed_out_at_the_callback_a_browser_gets_a_page(harness: Harness) -> None:
    with harness.browser(tenant=None) as anonymous:
        url = f"{harness.origin}/api/integrations/evencio/callback?code=x&state=y"
        as_browser = anonymous.get(url, headers={"Accept": "text/html"})
        as_api = anonymous.get(url)
    assert as_browser.status_code == 401
    assert as_browser.headers["content-type"].startswith("text/html")
    assert "Sign in to connect Evencio" in as_browser.text
    assert as_api.status_code == 401
    assert as_api.json()["error"] == "unauthenticated"


def test_a_provider_error_brings_the_browser_back_with_a_message(harness: Harness) -> None:
    harness.provider.fail_next("token", 500)
    with harness.browser() as browser:
        landed = harness.connect(browser, "acme-oauth")
        page = browser.get(f"{harness.origin}{landed}")
    assert landed.endswith("error=provider_unavailable")
    assert "Acme-Oauth could not be reached. Try again in a moment." in page.text


def test_no_secret_value_reaches_a_log_line(harness: Harness, captured_logs: Any) -> None:
    body = {"team": "acme-team", "signing_secret": SIGNING, "apiKey": KEY}
    with harness.browser() as browser:
        post(harness, browser, "acme-fields", body)
        post(harness, browser, "acme-fields", {**body, "team": "Bad Team"})
        post(
            harness, browser, "acme-basic", {"subdomain": "a", "username": KEY, "password": SIGNING}
        )
    text = "\n".join(record.getMessage() for record in captured_logs.records)
    assert KEY not in text
    assert SIGNING not in text
