"""Connect forms in a real browser: fields, Basic, OAuth with fields, and every failure.

The app and the strict OAuth provider run on loopback (``tests.harness``), a
fresh pair per test; Chromium is driven by Playwright as in ``test_browser``
(skipped without a Chromium, failed on CI). What is asserted is what a user
sees: the connect page again with each message beside its input, or the
Integrations page with a readable notice, never a JSON document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import anyio
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from connectors_core.store import StoredConnection
from tests.harness import ACME_SECRET, TENANT_HEADER, WORKSPACES, Harness
from tests.web.test_browser import TIMEOUT_MS, Traffic

pytestmark = pytest.mark.slow

TENANT = "tenant-a"
KEY = "acme_live_FormsTest_3b8e61d0c2"  # 30 visible ASCII characters


@contextmanager
def opened(browser: Browser, harness: Harness, *, javascript: bool = True) -> Iterator[Page]:
    """A fresh context (its own cookies) on this test's app, signed in as ``tenant-a``."""
    context = browser.new_context(
        base_url=harness.origin,
        extra_http_headers={TENANT_HEADER: TENANT},
        java_script_enabled=javascript,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, harness: Harness) -> Iterator[Page]:
    with opened(browser, harness) as page:
        yield page


def card(page: Page, connector_id: str) -> Locator:
    return page.locator(f"#card-{connector_id}")


def notice(page: Page) -> Locator:
    """The outcome the Integrations page announces (``p.notice`` in ``#live``)."""
    return page.locator("#live").get_by_role("status")


def stored(harness: Harness, connector_id: str) -> StoredConnection | None:
    """The stored connection, read in a thread: Playwright's loop runs in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(anyio.run, lambda: harness.connections.store.get(TENANT, connector_id))
        return future.result(timeout=TIMEOUT_MS / 1000)


def page_url(harness: Harness, query: str) -> str:
    return f"{harness.origin}/integrations?{query}"


def connect_page(page: Page, harness: Harness, connector_id: str) -> None:
    """Expect the connect page of ``connector_id`` (HTML, as a browser shows it)."""
    expect(page).to_have_url(f"{harness.origin}/api/integrations/{connector_id}/connect")
    assert page.evaluate("document.contentType") == "text/html"


def error_beside(page: Page, name: str) -> Locator:
    """The message shown beside the input ``name`` of the connect page."""
    return page.locator(f"p.field-error#connect-{name}-error")


def expect_invalid(page: Page, label: str, name: str, message: str | re.Pattern[str]) -> None:
    """The input labelled ``label`` is marked invalid and described by its message."""
    field = page.get_by_label(label, exact=True)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", re.compile(rf"\bconnect-{name}-error\b"))
    expect(error_beside(page, name)).to_have_text(message)


def expect_html_page(page: Page) -> None:
    """The browser shows an HTML page, not a JSON document."""
    assert page.evaluate("document.contentType") == "text/html"
    expect(page.get_by_role("heading", level=1)).to_have_text("Integrations")


# --- 1. an API key with fields ---------------------------------------------------------


def test_an_api_key_form_with_fields_shows_each_error_and_keeps_only_safe_values(
    page: Page, harness: Harness
) -> None:
    traffic = Traffic()
    traffic.record(page)
    page.goto("/integrations")
    fields = card(page, "acme-fields")
    expect(fields.get_by_role("textbox")).to_have_count(0)  # 4 inputs: not on the card

    fields.get_by_role("link", name="Connect Acme Fields", exact=True).click()

    connect_page(page, harness, "acme-fields")
    expect(page.get_by_role("heading", level=1)).to_have_text("Connect Acme Fields")
    expect(page.get_by_label("Region")).to_have_value("eu")
    page.get_by_label("Team").fill("Bad Team!")
    page.get_by_label("API key").fill("short")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Connect", exact=True).click()

    response = navigation.value
    assert response is not None
    assert response.status == 422
    connect_page(page, harness, "acme-fields")
    expect(page).to_have_title("Error: Connect Acme Fields")
    expect_invalid(page, "Team", "team", "does not have the expected format (for example my-team)")
    expect_invalid(page, "API key", "api_key", re.compile("visible ASCII characters"))
    summary = page.locator("div.notice-error[role=alert]")
    expect(summary.get_by_role("listitem")).to_have_count(2)
    expect(summary.get_by_role("link", name=re.compile("^Team: "))).to_have_attribute(
        "href", "#connect-team"
    )
    expect(summary.get_by_role("link", name=re.compile("^API key: "))).to_have_attribute(
        "href", "#connect-api_key"
    )
    expect(page.get_by_label("Team")).to_have_value("Bad Team!")
    expect(page.get_by_label("API key")).to_have_value("")
    expect(page.get_by_label("Region")).to_have_value("eu")
    expect(page.get_by_label("Region")).not_to_have_attribute("aria-invalid", "true")
    assert stored(harness, "acme-fields") is None

    page.get_by_label("Team").fill("acme-team")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Connect", exact=True).click()

    expect(page).to_have_url(page_url(harness, "connector=acme-fields&result=connected"))
    expect(notice(page)).to_have_text("Acme Fields is connected.")
    connection = stored(harness, "acme-fields")
    assert connection is not None
    assert dict(connection.config) == {"team": "acme-team", "region": "eu"}
    assert connection.api_key == KEY
    page.wait_for_load_state("networkidle")  # the page's own status requests too
    state = card(page, "acme-fields").locator("[data-state]")
    expect(state).to_contain_text("Connected")
    expect(state).to_contain_text(f"key ••••{KEY[-4:]}")
    expect(state).to_contain_text("team acme-team")  # the live refresh keeps the values
    expect(state).to_contain_text("region eu")

    assert not traffic.unread, traffic.unread
    assert any("Acme Fields is connected." in text for text in traffic.texts)  # bodies were read
    everything = [*traffic.texts, page.content(), page.url]
    leaks = [text[:200] for text in everything if KEY in text or 'value="short"' in text]
    assert not leaks, leaks


def test_without_javascript_the_form_connects_and_the_card_shows_its_values(
    browser: Browser, harness: Harness
) -> None:
    with opened(browser, harness, javascript=False) as page:
        page.goto("/api/integrations/acme-fields/connect")
        page.get_by_label("Team").fill("acme-team")
        page.get_by_label("API key").fill(KEY)
        page.get_by_role("button", name="Connect", exact=True).click()
        expect(page).to_have_url(page_url(harness, "connector=acme-fields&result=connected"))

        expect(notice(page)).to_have_text("Acme Fields is connected.")
        state = card(page, "acme-fields").locator("[data-state]")
        expect(state).to_contain_text("Connected")
        expect(state).to_contain_text("team acme-team")
        expect(state).to_contain_text("region eu")


# --- 2. HTTP Basic -----------------------------------------------------------------------


def open_basic(page: Page, harness: Harness) -> None:
    page.goto("/integrations")
    card(page, "acme-basic").get_by_role("link", name="Connect Acme Basic", exact=True).click()
    connect_page(page, harness, "acme-basic")


def test_a_basic_connector_connects_with_its_labelled_username_and_password(
    page: Page, harness: Harness
) -> None:
    open_basic(page, harness)

    page.get_by_label("Subdomain").fill("acme")
    page.get_by_label("API user").fill("api-user@acme")
    page.get_by_label("API token").fill("token-9f2e51")
    page.get_by_role("button", name="Connect", exact=True).click()

    expect(page).to_have_url(page_url(harness, "connector=acme-basic&result=connected"))
    expect(notice(page)).to_have_text("Acme Basic is connected.")
    expect(card(page, "acme-basic").locator("[data-state]")).to_contain_text("Connected")
    connection = stored(harness, "acme-basic")
    assert connection is not None
    assert dict(connection.config) == {"subdomain": "acme"}
    assert (connection.username, connection.password) == ("api-user@acme", "token-9f2e51")


def test_a_basic_connector_without_its_token_says_so_beside_it_and_stores_nothing(
    page: Page, harness: Harness
) -> None:
    open_basic(page, harness)

    page.get_by_label("Subdomain").fill("acme")
    page.get_by_label("API user").fill("api-user@acme")
    page.get_by_role("button", name="Connect", exact=True).click()

    expect_invalid(page, "API token", "password", "is required")
    connect_page(page, harness, "acme-basic")
    expect(page.locator("p.field-error")).to_have_count(1)
    expect(page.locator("div.notice-error[role=alert]")).to_contain_text("API token: is required")
    expect(page.get_by_label("Subdomain")).to_have_value("acme")
    expect(page.get_by_label("API user")).to_have_value("")  # a secret: never filled in again
    assert stored(harness, "acme-basic") is None


# --- 3. OAuth whose URLs take a field ----------------------------------------------------


def test_oauth_with_a_team_in_its_urls_checks_the_team_before_calling_the_provider(
    page: Page, harness: Harness
) -> None:
    before = list(WORKSPACES)
    page.goto("/integrations")
    shop = card(page, "acme-shop")

    shop.get_by_label("Team").fill("evil.com#")
    shop.get_by_role("button", name="Continue Acme Shop", exact=True).click()

    connect_page(page, harness, "acme-shop")
    expect_invalid(page, "Team", "team", "does not have the expected format (for example my-team)")
    expect(page.get_by_label("Team")).to_have_value("evil.com#")
    assert stored(harness, "acme-shop") is None
    called = WORKSPACES[len(before) :]
    assert not called, f"the provider was called for an invalid team: {called}"

    page.get_by_label("Team").fill("acme-team")
    with page.expect_request(re.compile(re.escape(harness.provider_url) + "/ws/acme-team/")):
        page.get_by_role("button", name="Continue to Acme Shop", exact=True).click()

    expect(page).to_have_url(page_url(harness, "connector=acme-shop&result=connected"))
    expect(notice(page)).to_have_text("Acme Shop is connected.")
    expect(card(page, "acme-shop").locator("[data-state]")).to_contain_text("Connected")
    assert "acme-team" in WORKSPACES[len(before) :]
    assert "evil.com#" not in WORKSPACES
    connection = stored(harness, "acme-shop")
    assert connection is not None
    assert dict(connection.config) == {"team": "acme-team"}


# --- 4. a connector this server is not set up for ---------------------------------------


def test_a_connector_without_its_oauth_client_says_not_set_up_everywhere(
    page: Page, harness: Harness
) -> None:
    page.goto("/integrations")
    unset = card(page, "acme-unset")
    expect(unset.locator(".not-set-up")).to_contain_text("Not set up yet.")
    expect(unset.get_by_role("link", name=re.compile("connect", re.IGNORECASE))).to_have_count(0)
    expect(unset.get_by_role("button", name=re.compile("connect", re.IGNORECASE))).to_have_count(0)

    page.goto("/api/integrations/acme-unset/connect")

    expect(page).to_have_url(page_url(harness, "connector=acme-unset&error=not_configured"))
    expect_html_page(page)
    expect(notice(page)).to_have_text(
        "Acme Unset is not set up on this server yet. Ask your administrator to configure it."
    )


# --- 5. the provider refuses or fails ----------------------------------------------------

FAILURES: dict[str, tuple[Callable[[Harness], None], str, str]] = {
    "denied": (
        lambda h: setattr(h.provider, "deny_next", True),
        "access_denied",
        "Connecting {name} was cancelled at the provider.",
    ),
    "token-500": (
        lambda h: h.provider.fail_next("token", 500),
        "provider_unavailable",
        "{name} could not be reached. Try again in a moment.",
    ),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_a_provider_failure_comes_back_to_the_page_with_a_readable_message(
    page: Page, harness: Harness, failure: str
) -> None:
    arrange, reason, message = FAILURES[failure]
    page.goto("/integrations")
    oauth = card(page, "acme-oauth")
    name = oauth.get_by_role("heading").inner_text()
    assert name == "Acme-Oauth"
    arrange(harness)

    oauth.get_by_role("link", name=f"Connect {name}", exact=True).click()

    expect(page).to_have_url(page_url(harness, f"connector=acme-oauth&error={reason}"))
    expect_html_page(page)
    expect(notice(page)).to_have_text(message.format(name=name))
    expect(card(page, "acme-oauth").locator("[data-state]")).to_have_text("Not connected")
    assert stored(harness, "acme-oauth") is None


# --- 6. OAuth client credentials -----------------------------------------------------------


def test_client_credentials_connect_from_the_card_with_no_provider_page(
    page: Page, harness: Harness
) -> None:
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))
    page.goto("/integrations")
    machine = card(page, "acme-cc")
    # The connection's own OAuth client, typed on the card: no provider page to visit.
    machine.get_by_label("Client ID").fill("acme-client")
    machine.get_by_label("Client secret").fill(ACME_SECRET)
    machine.get_by_role("button", name="Connect Acme Machine", exact=True).click()

    expect(page).to_have_url(page_url(harness, "connector=acme-cc&result=connected"))
    expect(notice(page)).to_have_text("Acme Machine is connected.")
    expect(card(page, "acme-cc").locator("[data-state]")).to_contain_text("Connected")
    assert not [url for url in visited if url.startswith(harness.provider_url)], visited
    assert harness.provider.token_requests == ["client_credentials"]
    assert stored(harness, "acme-cc") is not None
