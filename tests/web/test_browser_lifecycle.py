"""Several accounts of one connector, attribution and roles, in a real browser.

The app and the strict provider run on loopback (``tests.harness``); Chromium
is driven by Playwright as in ``test_browser``. The login is the test's: the
tenant, user and role come from headers the browser context sends, and the
example authorizer of the docs (``by_role``) lets members view and test only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.harness import TENANT_HEADER, Harness
from tests.web.test_browser import TIMEOUT_MS
from tests.web.test_lifecycle import EXAMPLE, ROLE_HEADER, USER_HEADER, as_org, identity

pytestmark = pytest.mark.slow

DAY = r"\d{4}-\d{2}-\d{2}"


@pytest.fixture
def harness(make_harness: Any) -> Harness:
    return make_harness(authenticator=identity, authorizer=EXAMPLE)  # type: ignore[no-any-return]


@contextmanager
def signed_in(
    browser: Browser, harness: Harness, user: str, role: str, *, javascript: bool = True
) -> Iterator[Page]:
    context = browser.new_context(
        base_url=harness.origin,
        extra_http_headers={TENANT_HEADER: "tenant-a", USER_HEADER: user, ROLE_HEADER: role},
        java_script_enabled=javascript,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto("/integrations")
        yield page
    finally:
        context.close()


def card(page: Page, connector_id: str) -> Locator:
    return page.locator(f"#card-{connector_id}")


def connection(page: Page, title: str) -> Locator:
    return card(page, "acme-multi").get_by_role("listitem").filter(has_text=title)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_two_accounts_side_by_side_and_a_confirmed_disconnect(
    browser: Browser, harness: Harness, javascript: bool
) -> None:
    with signed_in(browser, harness, "ada", "admin", javascript=javascript) as page:
        as_org(harness, "org-1")
        card(page, "acme-multi").get_by_role("link", name="Connect Acme-Multi").click()
        expect(page.locator("#live")).to_contain_text("Acme-Multi is connected.")

        as_org(harness, "org-2")
        card(page, "acme-multi").get_by_role("link", name="Add another account Acme-Multi").click()
        expect(page.locator("#live")).to_contain_text("Acme-Multi is connected.")

        multi = card(page, "acme-multi")
        expect(multi.locator("[data-state]").first).to_contain_text("2 connected")
        for org in ("org-1", "org-2"):
            expect(connection(page, org).locator("[data-attribution]")).to_have_text(
                re.compile(rf"^Connected by Ada Lovelace on {DAY}$")
            )

        connection(page, "org-1").get_by_role("link", name=re.compile("^Disconnect")).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Disconnect Acme-Multi?")
        expect(page.get_by_role("main")).to_contain_text("org-1")
        expect(page.get_by_role("main")).to_contain_text("by Ada Lovelace")
        page.get_by_role("button", name="Disconnect org-1").click()

        expect(page.locator("#live")).to_contain_text("Acme-Multi is disconnected.")
        expect(connection(page, "org-1")).to_have_count(0)
        expect(connection(page, "org-2")).to_have_count(1)

        # Connecting org-2 again from its own entry keeps one connection for it.
        connection(page, "org-2").get_by_role("textbox").fill("Spring campaign")
        connection(page, "org-2").get_by_role("button", name=re.compile("^Rename")).click()
        expect(page.locator("#live")).to_contain_text("The Acme-Multi connection is renamed.")
        expect(connection(page, "Spring campaign")).to_have_count(1)


def test_a_member_can_view_and_test_but_not_disconnect(browser: Browser, harness: Harness) -> None:
    with signed_in(browser, harness, "ada", "admin") as admin:
        card(admin, "acme-oauth").get_by_role("link", name="Connect Acme-Oauth").click()
        expect(admin.locator("#live")).to_contain_text("Acme-Oauth is connected.")
        expect(
            card(admin, "acme-oauth").get_by_role("link", name="Disconnect Acme-Oauth")
        ).to_be_visible()

    with signed_in(browser, harness, "grace", "member") as member:
        oauth = card(member, "acme-oauth")
        expect(oauth.locator("[data-state]")).to_contain_text("Connected")
        expect(oauth.locator("[data-attribution]")).to_have_text(
            re.compile(rf"^Connected by Ada Lovelace on {DAY}$")
        )
        expect(oauth.get_by_role("button", name="Test connection to Acme-Oauth")).to_be_visible()
        expect(oauth.get_by_role("link", name=re.compile("Disconnect"))).to_have_count(0)
        expect(oauth.get_by_role("button", name=re.compile("Disconnect"))).to_have_count(0)
        # Nothing to connect either: members do not connect.
        expect(
            card(member, "acme-key").get_by_role("button", name=re.compile("Connect"))
        ).to_have_count(0)

        oauth.get_by_role("button", name="Test connection to Acme-Oauth").click()
        expect(member.locator("#live")).to_contain_text("Acme-Oauth answered")

        # The address of the confirm page, typed in, ends on the page with the reason.
        member.goto("/api/integrations/acme-oauth/disconnect")
        expect(member).to_have_url(
            re.compile(r"/integrations\?connector=acme-oauth&error=forbidden$")
        )
        expect(member.locator("#live")).to_contain_text("You may not do that.")
        expect(card(member, "acme-oauth")).to_have_class(re.compile(r"\bis-connected\b"))

        # And over the API, from the member's own session.
        answer = member.evaluate(
            """async () => {
                const csrf = await (await fetch('/api/integrations/csrf')).json();
                const r = await fetch('/api/integrations/acme-oauth/disconnect', {
                    method: 'POST', headers: {'X-CSRF-Token': csrf.csrfToken}});
                return [r.status, (await r.json()).error];
            }"""
        )
        assert answer == [403, "forbidden"]
        member.reload()
        expect(card(member, "acme-oauth")).to_have_class(re.compile(r"\bis-connected\b"))
