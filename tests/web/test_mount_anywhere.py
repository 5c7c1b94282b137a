"""The routes mounted anywhere: at the root, and under a prefix inside a host application.

Every URL the app writes (links, forms, static files, the script's fetches,
redirects, the OAuth ``redirect_uri``) must lead back into the app wherever it
is mounted; ``CONNECTORS_PUBLIC_URL`` may carry the prefix; a signed-out
browser goes to the host's login and back, an API client gets JSON 401.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from playwright.sync_api import Browser, expect

from connectors_core._exceptions import ConfigurationError
from connectors_core._settings import Settings
from tests.harness import ACME_SECRET, EVENCIO_SECRET, TENANT_HEADER, Harness
from tests.web.test_browser import TIMEOUT_MS

PREFIX = "/settings/integrations"


class _Links(HTMLParser):
    """Every href, src and form action of a page, with the form's method."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("href", "src", "data-status-url"):
            if values.get(name):
                self.found.append(("GET", str(values[name])))
        if tag == "form" and values.get("action"):
            self.found.append((str(values.get("method") or "get").upper(), str(values["action"])))


def links(html: str) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(html)
    return [(method, url) for method, url in parser.found if url.startswith("/")]


@pytest.fixture(params=["", PREFIX], ids=["root", "prefix"])
def mounted(request: pytest.FixtureRequest, make_harness: Any) -> Harness:
    return make_harness(prefix=request.param)  # type: ignore[no-any-return]


def test_every_url_on_every_page_leads_into_the_app(mounted: Harness) -> None:
    base = mounted.base
    prefix = urlsplit(base).path
    with mounted.browser() as browser:
        mounted.connect(browser, "acme-multi")
        pages = [
            f"{base}/integrations",
            f"{base}/integrations?q=acme+multi",
            f"{base}/integrations/acme-multi",
            f"{base}/integrations/evencio",
            f"{base}/api/integrations/acme-fields/connect",
            f"{base}/api/integrations/acme-oauth/disconnect",
        ]
        mounted.connect(browser, "acme-oauth")
        seen: set[tuple[str, str]] = set()
        for address in pages:
            response = browser.get(address, headers={"Accept": "text/html"})
            assert response.status_code == 200, address
            for method, url in links(response.text):
                assert url.startswith(prefix + "/"), (address, url)
                seen.add((method, url))
        assert seen
        for method, url in sorted(seen):
            # A form's target is checked without submitting it: its route exists (405 to a
            # GET for POST-only routes), as every link and file does.
            answer = browser.get(mounted.origin + url, follow_redirects=False)
            expected = {200, 303} if method == "GET" else {200, 303, 405}
            assert answer.status_code in expected, (method, url, answer.status_code)


def test_the_redirect_uri_and_the_return_are_under_the_mount(mounted: Harness) -> None:
    with mounted.browser() as browser:
        authorize = mounted.start_connect(browser, "acme-oauth")
        params = parse_qs(urlsplit(authorize).query)
        assert params["redirect_uri"] == [f"{mounted.base}/api/integrations/acme-oauth/callback"]
        callback = mounted.authorize(browser, authorize)
        assert callback.startswith(f"{mounted.base}/api/integrations/acme-oauth/callback?")
        landing = mounted.finish(browser, callback)
        assert landing == (
            f"{urlsplit(mounted.base).path}/integrations?connector=acme-oauth&result=connected"
        )
        assert mounted.status(browser, "acme-oauth")["connected"] is True
        assert mounted.disconnect(browser, "acme-oauth").json()["connected"] is False


def test_the_catalogue_lists_manifests_statuses_and_links(mounted: Harness) -> None:
    prefix = urlsplit(mounted.base).path
    with mounted.browser() as browser:
        mounted.connect(browser, "acme-oauth")
        catalogue = browser.get(f"{mounted.base}/api/integrations").json()
    listed = {each["id"]: each for each in catalogue["connectors"]}
    assert {"evencio", "acme-oauth", "acme-key"} <= set(listed)
    oauth = listed["acme-oauth"]
    assert oauth["name"] == "Acme-Oauth"
    assert oauth["auth"]["type"] == "oauth"
    assert oauth["status"]["connected"] is True
    assert oauth["links"] == {
        "details": f"{prefix}/integrations/acme-oauth",
        "connect": f"{prefix}/api/integrations/acme-oauth/connect",
        "status": f"{prefix}/api/integrations/acme-oauth/status",
        "disconnect": f"{prefix}/api/integrations/acme-oauth/disconnect",
    }
    assert listed["acme-key"]["status"] == {"connected": False, "error": "not_connected"}
    text = str(catalogue)
    assert mounted.provider.issued
    for secret in (*mounted.provider.issued, ACME_SECRET, EVENCIO_SECRET):
        assert secret not in text


def test_the_catalogue_is_each_tenants_own(harness: Harness) -> None:
    with harness.browser("tenant-a") as a, harness.browser("tenant-b") as b:
        harness.connect(a, "acme-oauth")
        mine = {
            c["id"]: c["status"]
            for c in a.get(f"{harness.base}/api/integrations").json()["connectors"]
        }
        theirs = {
            c["id"]: c["status"]
            for c in b.get(f"{harness.base}/api/integrations").json()["connectors"]
        }
    assert mine["acme-oauth"]["connected"] is True
    assert theirs["acme-oauth"] == {"connected": False, "error": "not_connected"}


def test_signed_out_browsers_go_to_the_hosts_login_and_api_clients_get_json(
    make_harness: Any,
) -> None:
    harness = make_harness(prefix=PREFIX, login_url="/login?app=marketing")
    with harness.browser(tenant=None) as browser:
        html = {"Accept": "text/html"}
        for asked in (
            f"{PREFIX}/integrations?q=mail",
            f"{PREFIX}/integrations/evencio",
            f"{PREFIX}/api/integrations/acme-key/connect",
            f"{PREFIX}/api/integrations/acme-oauth/disconnect",
        ):
            response = browser.get(harness.origin + asked, headers=html, follow_redirects=False)
            assert response.status_code == 303, asked
            location = urlsplit(response.headers["location"])
            assert location.path == "/login"
            assert parse_qs(location.query) == {"app": ["marketing"], "next": [asked]}
        # The provider's redirect carries a code: the login is asked to return to the page.
        callback = browser.get(
            f"{harness.base}/api/integrations/acme-oauth/callback?code=c0de&state=s",
            headers=html,
            follow_redirects=False,
        )
        assert callback.status_code == 303
        assert "c0de" not in callback.headers["location"]
        assert parse_qs(urlsplit(callback.headers["location"]).query)["next"] == [
            f"{PREFIX}/integrations"
        ]
        for api in ("/api/integrations", "/api/integrations/acme-oauth/status"):
            answer = browser.get(harness.base + api, headers={"Accept": "application/json"})
            assert answer.status_code == 401
            assert answer.json()["error"] == "unauthenticated"


def test_without_a_login_url_a_signed_out_page_says_so(make_harness: Any) -> None:
    harness = make_harness(prefix=PREFIX)
    with harness.browser(tenant=None) as browser:
        page = browser.get(f"{harness.base}/integrations", headers={"Accept": "text/html"})
    assert page.status_code == 401
    assert "Sign in" in page.text
    assert f'href="{PREFIX}/integrations"' in page.text


def test_a_public_url_naming_another_mount_point_refuses_oauth_loudly(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    harness = make_harness(prefix=PREFIX, public_prefix="")
    with harness.browser() as browser:
        answer = browser.get(
            f"{harness.base}/api/integrations/acme-oauth/connect",
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )
        # Connectors that never leave for a provider are not concerned.
        assert browser.get(f"{harness.base}/api/integrations/acme-key/connect").status_code == 200
    assert answer.json()["error"] == "not_configured"
    assert f"set CONNECTORS_PUBLIC_URL to {harness.origin}{PREFIX}" in answer.json()["message"]
    assert "mounted at /settings/integrations" in caplog.text


@pytest.mark.parametrize(
    "url",
    ["https://app.example.com/settings", "https://app.example.com/a/b/", "http://127.0.0.1:8000"],
)
def test_a_public_url_may_carry_a_path(url: str) -> None:
    settings = Settings.from_env({"CONNECTORS_PUBLIC_URL": url})
    assert settings.origin == re.match(r"https?://[^/]+", url).group(0)  # type: ignore[union-attr]
    assert settings.redirect_uri("x") == url.rstrip("/") + "/api/integrations/x/callback"


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com/settings?x=1",
        "https://app.example.com/settings#top",
        "https://app.example.com/a/../b",
        "https://user:pw@app.example.com/",
        "https://app.example.com/a b",
        "ftp://app.example.com",
    ],
)
def test_a_public_url_with_more_than_an_origin_and_a_path_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"CONNECTORS_PUBLIC_URL": url})
    assert "CONNECTORS_PUBLIC_URL" in str(caught.value)
    assert "pw@" not in str(caught.value)  # credentials in the URL are not repeated


def test_the_openapi_document_is_served_under_the_prefix(make_harness: Any) -> None:
    harness = make_harness(prefix=PREFIX)
    with httpx2.Client(headers={TENANT_HEADER: "tenant-a"}) as client:
        document = client.get(f"{harness.base}/api/integrations/openapi.json").json()
        assert "/api/integrations" in document["paths"]
        assert document["servers"] == [{"url": PREFIX}]
        home = client.get(f"{harness.origin}/")
    assert home.text == "the host application"


@pytest.mark.slow
@pytest.mark.parametrize("prefix", ["", PREFIX], ids=["root", "prefix"])
def test_connect_status_and_disconnect_in_a_browser_wherever_it_is_mounted(
    browser: Browser, make_harness: Any, prefix: str
) -> None:
    harness = make_harness(prefix=prefix)
    context = browser.new_context(
        base_url=harness.origin, extra_http_headers={TENANT_HEADER: "tenant-a"}
    )
    context.set_default_timeout(TIMEOUT_MS)
    failed: list[str] = []
    context.on(
        "response",
        lambda response: (
            failed.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    try:
        page = context.new_page()
        page.goto(f"{prefix}/integrations")
        expect(page).to_have_title("Integrations")
        assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # the CSS came

        page.locator("#card-acme-oauth").get_by_role("link", name="Connect Acme-Oauth").click()
        expect(page.locator("#live")).to_contain_text("Acme-Oauth is connected.")
        expect(page).to_have_url(re.compile(rf"{re.escape(prefix)}/integrations\?"))
        oauth = page.locator("#card-acme-oauth")
        expect(oauth.locator("[data-state]")).to_contain_text("Connected")

        # The details page, at its stable URL, live-updated by the script from the status route.
        with page.expect_response(re.compile(r"/api/integrations/acme-oauth/status$")) as status:
            oauth.get_by_role("link", name="Acme-Oauth", exact=True).click()
        assert status.value.ok
        expect(page).to_have_url(f"{harness.origin}{prefix}/integrations/acme-oauth")
        expect(page.get_by_role("heading", level=1)).to_have_text("Acme-Oauth")
        page.get_by_role("link", name="Disconnect Acme-Oauth").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Disconnect Acme-Oauth?")
        page.get_by_role("button", name=re.compile("^Disconnect")).click()
        expect(page.locator("#live")).to_contain_text("Acme-Oauth is disconnected.")

        # An API key, through the card's own form.
        key = page.locator("#card-acme-key")
        key.get_by_label("API key").fill("sk_live_" + "a" * 24)
        key.get_by_role("button", name=re.compile("^Connect")).click()
        expect(page.locator("#live")).to_contain_text("Acme-Key is connected.")
    finally:
        context.close()
    assert failed == []


def test_the_catalogue_shows_plugin_failures_to_managers_only(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors_core import Registry
    from connectors_core._records import Phase, PluginRecord, PluginState
    from tests.web.test_lifecycle import EXAMPLE, ROLE_HEADER, USER_HEADER, identity

    broken = PluginRecord(
        name="broken",
        value="broken_plugin",
        distribution="broken-plugin",
        version="1.0",
        state=PluginState.FAILED,
        phase=Phase.LOAD,
        error="ImportError: no module named 'requests'\nTraceback (most recent call last): ...",
    )
    monkeypatch.setattr(Registry, "failures", property(lambda self: (broken,)))
    harness = make_harness(authenticator=identity, authorizer=EXAMPLE)
    answers = {}
    for role in ("admin", "member"):
        with httpx2.Client(
            headers={TENANT_HEADER: "tenant-a", USER_HEADER: "u", ROLE_HEADER: role}
        ) as client:
            answers[role] = client.get(f"{harness.base}/api/integrations").json()
            page = client.get(f"{harness.base}/integrations").text
            assert ("failed to load" in page) is (role == "admin")
            assert "Traceback" not in page
    assert answers["admin"]["failures"] == [
        {
            "name": "broken",
            "distribution": "broken-plugin",
            "phase": "load",
            "error": "ImportError: no module named 'requests'",
        }
    ]
    assert "failures" not in answers["member"]
    # The links a host's own page offers follow the authorizer too.
    links = {
        role: {c["id"]: c["links"] for c in answer["connectors"]}["acme-oauth"]
        for role, answer in answers.items()
    }
    assert {"connect", "disconnect", "status", "details"} <= set(links["admin"])
    assert "connect" not in links["member"]
    assert "disconnect" not in links["member"]
    assert "status" in links["member"]
