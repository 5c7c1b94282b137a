"""API-key connectors: a server-side form, CSRF-protected, the key never echoed back."""

from __future__ import annotations

import re

import httpx2
import pytest

from tests.harness import Harness

KEY = "sk_test_4f9a1c2e7b3d5a60"
KEY_URL = "/api/integrations/acme-key/connect"


def form_token(browser: httpx2.Client, harness: Harness) -> str:
    page = browser.get(f"{harness.origin}{KEY_URL}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_the_form_submits_the_key_and_status_shows_only_a_hint(harness: Harness) -> None:
    with harness.browser() as browser:
        token = form_token(browser, harness)
        response = browser.post(
            f"{harness.origin}{KEY_URL}",
            data={"api_key": KEY, "csrf_token": token},
            headers={"Origin": harness.origin, "Accept": "text/html"},
        )
        assert response.status_code == 303
        assert response.headers["location"] == ("/integrations?connector=acme-key&result=connected")
        status = harness.status(browser, "acme-key")
        page_again = browser.get(f"{harness.origin}{KEY_URL}")

    assert status["status"].pop("connectionId").startswith("conn_")
    assert status == {
        "connected": True,
        "status": {
            "authType": "api-key",
            "keyHint": "••••5a60",
            "connectedAt": status["status"]["connectedAt"],
        },
    }
    assert KEY not in page_again.text
    assert all(KEY not in seen for seen in harness.seen)


def test_json_submission_with_the_csrf_header(harness: Harness) -> None:
    with harness.browser() as browser:
        response = browser.post(
            f"{harness.origin}{KEY_URL}",
            json={"apiKey": KEY},
            headers={"X-CSRF-Token": harness.csrf(browser), "Origin": harness.origin},
        )
    assert response.status_code == 200
    assert response.json()["connected"] is True
    assert KEY not in response.text


@pytest.mark.parametrize(
    ("headers", "with_token", "with_cookie"),
    [
        ({}, False, True),  # no token
        ({"Origin": "https://evil.example.com"}, True, True),  # another origin
        ({"Sec-Fetch-Site": "cross-site"}, True, True),  # a cross-site form post
        ({}, True, False),  # a token without the session it belongs to
    ],
    ids=["no-token", "foreign-origin", "cross-site", "no-session"],
)
def test_cross_site_submissions_are_refused(
    harness: Harness, headers: dict[str, str], with_token: bool, with_cookie: bool
) -> None:
    with harness.browser() as browser:
        token = form_token(browser, harness)
        if not with_cookie:
            browser.cookies.clear()
        data = {"api_key": KEY, **({"csrf_token": token} if with_token else {})}
        response = browser.post(f"{harness.origin}{KEY_URL}", data=data, headers=headers)
        assert response.status_code == 403
        assert response.json()["error"] == "csrf_failed"
        browser.cookies.clear()
        assert harness.status(browser, "acme-key")["connected"] is False


def test_disconnect_needs_the_csrf_token_too(harness: Harness) -> None:
    with harness.browser() as browser:
        harness.connect(browser, "evencio")
        response = browser.post(f"{harness.origin}/api/integrations/evencio/disconnect")
        assert response.status_code == 403
        assert harness.status(browser, "evencio")["connected"] is True


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        ("api_key=short", "application/x-www-form-urlencoded", 422, "invalid_api_key"),
        ("api_key=has+a+space+inside", "application/x-www-form-urlencoded", 422, "invalid_api_key"),
        (
            "api_key=cl%C3%A9-secr%C3%A8te-0123",
            "application/x-www-form-urlencoded",
            422,
            "invalid_api_key",
        ),
        ('{"apiKey": "key-with-\\u00e9-inside-0123"}', "application/json", 422, "invalid_api_key"),
        (
            "api_key=tab%09inside-0123456",
            "application/x-www-form-urlencoded",
            422,
            "invalid_api_key",
        ),
        ("api_key=" + "k" * 9000, "application/x-www-form-urlencoded", 413, "payload_too_large"),
        ("{not json", "application/json", 400, "invalid_request"),
        ("[1, 2]", "application/json", 400, "invalid_request"),
        ("<key/>", "application/xml", 415, "unsupported_media_type"),
    ],
    ids=[
        "short",
        "spaces",
        "non-ascii",
        "non-ascii-json",
        "tab",
        "oversized",
        "bad-json",
        "json-array",
        "xml",
    ],
)
def test_bad_input_is_a_4xx_with_a_reason(
    harness: Harness, body: str, content_type: str, status: int, reason: str
) -> None:
    with harness.browser() as browser:
        response = browser.post(
            f"{harness.origin}{KEY_URL}",
            content=body.encode(),
            headers={"Content-Type": content_type, "X-CSRF-Token": harness.csrf(browser)},
        )
    assert response.status_code == status
    assert response.json()["error"] == reason


def test_an_oauth_connector_takes_no_api_key(harness: Harness) -> None:
    with harness.browser() as browser:
        response = browser.post(
            f"{harness.origin}/api/integrations/evencio/connect",
            json={"apiKey": KEY},
            headers={"X-CSRF-Token": harness.csrf(browser)},
        )
    # Evencio's connect form has no inputs at all: the key is a field it does not take.
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "apiKey" in response.json()["message"]


def test_a_connector_without_credentials_connects_with_a_post(harness: Harness) -> None:
    with harness.browser() as browser:
        assert (
            browser.get(f"{harness.origin}/api/integrations/acme-plain/connect").status_code == 200
        )
        response = browser.post(
            f"{harness.origin}/api/integrations/acme-plain/connect",
            headers={"X-CSRF-Token": harness.csrf(browser)},
        )
        answer = response.json()
        assert answer["status"].pop("connectionId").startswith("conn_")
        assert answer == {
            "connected": True,
            "status": {"authType": "none", "connectedAt": answer["status"]["connectedAt"]},
        }


def test_a_null_origin_falls_back_to_the_token(harness: Harness) -> None:
    # Browsers send "Origin: null" on a page's own form posts under some referrer
    # policies; the session-bound token decides.
    with harness.browser() as browser:
        token = form_token(browser, harness)
        accepted = browser.post(
            f"{harness.origin}{KEY_URL}",
            data={"api_key": KEY, "csrf_token": token},
            headers={"Origin": "null"},
        )
        assert accepted.status_code == 200
        refused = browser.post(
            f"{harness.origin}{KEY_URL}", data={"api_key": KEY}, headers={"Origin": "null"}
        )
        assert refused.status_code == 403


def test_responses_keep_referrers_on_this_site(harness: Harness) -> None:
    with harness.browser() as browser:
        response = browser.get(f"{harness.origin}/api/integrations/csrf")
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cache-control"] == "no-store"


def test_a_non_ascii_csrf_token_is_refused_not_a_server_error(harness: Harness) -> None:
    with harness.browser() as browser:
        harness.csrf(browser)  # a session cookie, so the token is what gets compared
        form = browser.post(
            f"{harness.origin}{KEY_URL}",
            content=b"csrf_token=%C3%A9t%C3%A9&api_key=sk_live_0123456789ab",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        header = browser.post(
            f"{harness.origin}{KEY_URL}",
            json={"apiKey": "sk_live_0123456789ab"},
            headers=[(b"X-CSRF-Token", "\u00e9t\u00e9".encode())],
        )
    for response in (form, header):
        assert response.status_code == 403
        assert response.json()["error"] == "csrf_failed"
