"""Accessibility: axe-core on every page and form, and the keyboard alone reaches every action.

axe-core (from npm, pinned by ``tests/a11y/package-lock.json``; ``.ci/run``
installs it with ``npm ci --prefix tests/a11y``) is injected into each page
and run with the WCAG 2.0 and 2.1 A and AA rules; a serious or critical
violation fails, reported with its rule, impact and the elements concerned.
Each page is checked at 1280 px (a laptop) and at 390 px (a phone). Without
axe-core the tests skip, except on CI (``CI`` set), where they fail.

The app and the strict OAuth provider run on loopback (``tests.harness``),
with connectors of every kind: several connections (renamed inline), OAuth,
an API key connected from the card's own form, a form of four inputs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.harness import TENANT_HEADER, Harness
from tests.web.test_browser import (
    TIMEOUT_MS,
    Server,
    server,  # noqa: F401 - the fixture, `connectors serve --demo`
)

pytestmark = pytest.mark.slow

AXE = Path(__file__).resolve().parents[1] / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING = ("serious", "critical")
WIDTHS = [1280, 390]
TENANT = "tenant-a"
KEY = "acme_key_A11yTest_5d9e0c"


def axe_script() -> Path:
    """axe.min.js; skips without it (fails on CI, where .ci/run installs it)."""
    if AXE.is_file():
        return AXE
    reason = "axe-core is not installed: run `npm ci --prefix tests/a11y`"
    if os.environ.get("CI"):
        pytest.fail(f"the accessibility tests must run on CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def axe() -> Path:
    return axe_script()


@contextmanager
def opened(
    browser: Browser,
    harness: Harness,
    width: int = 1280,
    *,
    bypass_csp: bool = False,
    locale: str = "en-US",
) -> Iterator[Page]:
    """A fresh context (its own cookies) on this test's app, signed in as ``tenant-a``."""
    context = browser.new_context(
        base_url=harness.origin,
        extra_http_headers={TENANT_HEADER: TENANT},
        viewport={"width": width, "height": 900},
        bypass_csp=bypass_csp,
        locale=locale,
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def violations(page: Page, axe: Path, include: str | None = None) -> list[dict[str, Any]]:
    """axe's serious and critical WCAG 2.x A/AA violations on the page (or in ``include``)."""
    page.wait_for_load_state("networkidle")  # the page's status requests have redrawn it
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(axe))
    result: dict[str, Any] = page.evaluate(
        """async ([include, tags]) => {
            const context = include ? { include: [include] } : document;
            return await axe.run(context, {
                runOnly: { type: "tag", values: tags },
                resultTypes: ["violations"],
            });
        }""",
        [include, TAGS],
    )
    return [v for v in result["violations"] if v["impact"] in FAILING]


def report(found: list[dict[str, Any]]) -> str:
    """Each violation: its rule id, impact and help, then each element and what is wrong."""
    lines = []
    for violation in found:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            summary = " ".join(node.get("failureSummary", "").split())
            lines.append(f"    {' > '.join(map(str, node['target']))}: {summary}")
    return "\n".join(lines)


def audit(page: Page, axe: Path, include: str | None = None) -> None:
    found = violations(page, axe, include)
    assert not found, f"{page.url} at {page.viewport_size}:\n{report(found)}"
    # What axe does not check: the page reflows to the screen (WCAG 1.4.10), no sideways
    # scrolling at 390 px.
    assert page.viewport_size is not None
    width = page.viewport_size["width"]
    scroll = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll} px wide in a {width} px viewport"


def connected(harness: Harness, *connector_ids: str) -> None:
    """Connect ``connector_ids`` for ``tenant-a`` (the provider approves at once)."""
    with harness.browser(TENANT) as client:
        for connector_id in connector_ids:
            assert harness.connect(client, connector_id).endswith("result=connected")


# --- axe, page by page -------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_the_catalogue_has_no_serious_violation(
    browser: Browser, harness: Harness, axe: Path, width: int
) -> None:
    connected(harness, "acme-oauth", "acme-multi")  # a card listing its connection
    with opened(browser, harness, width) as page:
        page.goto("/integrations")
        expect(page.locator("#card-acme-multi .connection")).to_have_count(1)
        audit(page, axe)
        # An outcome notice, and a filtered view with its "Show all".
        page.goto("/integrations?connector=acme-oauth&result=connected&category=marketing")
        expect(page.get_by_role("status")).to_have_text("Acme-Oauth is connected.")
        audit(page, axe)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_catalogue_s_inline_api_key_form_has_no_serious_violation(
    browser: Browser, harness: Harness, axe: Path, width: int
) -> None:
    with opened(browser, harness, width) as page:
        page.goto("/integrations")
        form = page.locator("#card-acme-key form")
        expect(form.get_by_label("API key", exact=True)).to_be_visible()
        audit(page, axe, "#card-acme-key form")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("connector_id", ["acme-multi", "acme-fields", "evencio"])
def test_a_details_page_has_no_serious_violation(
    browser: Browser, harness: Harness, axe: Path, width: int, connector_id: str
) -> None:
    connected(harness, "acme-multi")
    with opened(browser, harness, width) as page:
        page.goto(f"/integrations/{connector_id}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        audit(page, axe)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_french_pages_have_no_serious_violation(
    browser: Browser, harness: Harness, axe: Path, width: int
) -> None:
    connected(harness, "acme-multi")
    with opened(browser, harness, width, locale="fr-FR") as page:
        page.goto("/integrations")
        expect(page.get_by_role("heading", level=1)).to_have_text("Intégrations")
        audit(page, axe)
        page.goto("/integrations/evencio")
        audit(page, axe)
        page.goto("/api/integrations/acme-fields/connect")
        audit(page, axe)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_connect_form_has_no_serious_violation_empty_or_with_errors(
    browser: Browser, harness: Harness, axe: Path, width: int
) -> None:
    with opened(browser, harness, width) as page:
        page.goto("/api/integrations/acme-fields/connect")
        expect(page.get_by_role("heading", level=1)).to_have_text("Connect Acme Fields")
        expect(page.locator("form.connect-form :is(input, select):visible")).to_have_count(4)
        audit(page, axe)

        page.get_by_label("Team").fill("Bad Team!")
        page.get_by_label("API key").fill("short")
        with page.expect_navigation():
            page.get_by_role("button", name="Connect", exact=True).click()
        expect(page.get_by_label("Team")).to_have_attribute("aria-invalid", "true")
        audit(page, axe)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_disconnect_confirmation_has_no_serious_violation(
    browser: Browser, harness: Harness, axe: Path, width: int
) -> None:
    connected(harness, "acme-oauth")
    with opened(browser, harness, width) as page:
        page.goto("/api/integrations/acme-oauth/disconnect")
        expect(page.get_by_role("heading", level=1)).to_have_text("Disconnect Acme-Oauth?")
        audit(page, axe)


@pytest.mark.parametrize("width", WIDTHS)
def test_connectors_serve_demo_has_no_serious_violation(
    browser: Browser,
    server: Server,  # noqa: F811 - the fixture imported above
    axe: Path,
    width: int,
) -> None:
    # Its catalogue shows what the harness's does not: the sandbox banner, a coming-soon
    # card, and the notice of a plugin that failed to load.
    context = browser.new_context(base_url=server.origin, viewport={"width": width, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto("/integrations")
        expect(page.get_by_role("note")).to_contain_text("Sandbox.")
        expect(page.get_by_role("region", name=re.compile("failed to load"))).to_be_visible()
        audit(page, axe)
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_sandbox_banner_and_consent_page_have_no_serious_violation(
    browser: Browser, axe: Path, width: int, tmp_path: Path
) -> None:
    from tests.web.test_sandbox import host

    with host(tmp_path) as (base, _):
        # The consent page forbids scripts (CSP): only the audit's own is let in.
        context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            page = context.new_page()
            page.goto(f"{base}/integrations")
            expect(page.get_by_role("note")).to_contain_text("Sandbox.")
            audit(page, axe)
            page.get_by_role("link", name="Connect Evencio", exact=True).click()
            expect(page.get_by_role("button", name="Approve")).to_be_visible()
            audit(page, axe)
        finally:
            context.close()


# --- what axe does not check: boundaries and focus (WCAG 1.4.11, 2.4.7) ---------------------

# Contrast (WCAG's formula) between an element's colour property and what is behind it.
CONTRAST = """(el, property) => {
    const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => [r, g, b].map((c) => {
        c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    }).reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
    let behind = [255, 255, 255];
    for (let n = el.parentElement; n; n = n.parentElement) {
        const c = rgb(getComputedStyle(n).backgroundColor);
        if (c.length === 3 || c[3] > 0) { behind = c; break; }
    }
    const [a, b] = [lum(rgb(getComputedStyle(el)[property])), lum(behind)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("path", ["/integrations", "/api/integrations/acme-fields/connect"])
def test_every_text_field_and_select_has_a_visible_boundary(
    browser: Browser, harness: Harness, width: int, path: str
) -> None:
    with opened(browser, harness, width) as page:
        page.goto(path)
        fields = page.locator(
            "input:not([type=hidden]):not([type=checkbox]):not([type=radio]):visible, "
            "select:visible"
        )
        assert fields.count() >= 2
        for field in fields.all():
            style = field.evaluate(
                "el => { const s = getComputedStyle(el);"
                " return [el.id, s.borderBottomStyle, parseFloat(s.borderBottomWidth)]; }"
            )
            assert style[1] != "none", f"#{style[0]} has no border"
            assert style[2] >= 1, f"#{style[0]}'s border is {style[2]} px wide"
            ratio = field.evaluate(CONTRAST, "borderBottomColor")
            assert ratio >= 3, f"#{style[0]}'s border contrasts {ratio:.2f}:1 (3:1 needed)"


# --- the keyboard alone ------------------------------------------------------------------

# What takes focus: links, buttons and form controls (hidden inputs and disabled ones not).
FOCUSABLE = (
    "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), "
    "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])"
)


def focus_stops(page: Page) -> list[str]:
    """Every element that should take focus, in document order, each marked with its number."""
    names: list[str] = page.evaluate(
        """(selector) => {
            const shown = (el) => el.getClientRects().length > 0
                && getComputedStyle(el).visibility !== "hidden";
            const all = [...document.querySelectorAll(selector)].filter(shown);
            all.forEach((el, i) => { el.dataset.stop = String(i); });
            return all.map((el) => `${el.tagName.toLowerCase()} `
                + (el.getAttribute("aria-label") || el.labels?.[0]?.textContent
                   || el.textContent || el.name || "").replace(/\\s+/g, " ").trim());
        }""",
        FOCUSABLE,
    )
    return names


def tab_through(page: Page, count: int) -> list[int]:
    """Press Tab from the top of the page until focus leaves the document; each stop's number."""
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    reached: list[int] = []
    for _ in range(count + 5):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const el = document.activeElement;
                if (!el || el === document.body) return null;
                const style = getComputedStyle(el);
                const visible = el.matches(":focus-visible") && style.outlineStyle !== "none"
                    && parseFloat(style.outlineWidth) > 0;
                return [el.dataset.stop ?? "?", visible];
            }"""
        )
        if focused is None:
            break
        stop, visible = focused
        assert stop != "?", f"focus went to an element that is not a link, button or input ({stop})"
        assert visible, f"stop {stop} takes focus without a visible focus indicator"
        ratio = page.evaluate(f"() => ({CONTRAST})(document.activeElement, 'outlineColor')")
        assert ratio >= 3, f"stop {stop}'s focus outline contrasts {ratio:.2f}:1 (3:1 needed)"
        if reached and int(stop) == reached[0]:
            break
        reached.append(int(stop))
    return reached


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("path", ["/integrations", "/integrations/acme-multi"])
def test_tab_reaches_every_link_button_and_input_in_order(
    browser: Browser, harness: Harness, width: int, path: str
) -> None:
    connected(harness, "acme-oauth", "acme-multi")
    with opened(browser, harness, width) as page:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        stops = focus_stops(page)
        assert len(stops) > 5, stops
        assert stops[0] == "a Skip to the content"
        reached = tab_through(page, len(stops))
        expected = list(range(len(stops)))
        missed = [stops[i] for i in expected if i not in reached]
        assert not missed, f"never reached with Tab: {missed}"
        assert reached == expected, "Tab order is not the reading order: " + ", ".join(
            stops[i] for i in reached
        )


def press_tab_until(page: Page, name: str, limit: int = 80) -> None:
    """Tab forward until the element named ``name`` (its accessible text) has focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => { const el = document.activeElement;
                return (el.getAttribute("aria-label") || el.labels?.[0]?.textContent
                        || el.textContent || "").replace(/\\s+/g, " ").trim(); }"""
        )
        if focused == name:
            return
    pytest.fail(f"Tab never reached {name!r}")


@pytest.mark.parametrize("width", WIDTHS)
def test_connect_then_disconnect_with_the_keyboard_alone(
    browser: Browser, harness: Harness, width: int
) -> None:
    with opened(browser, harness, width) as page:
        page.goto("/integrations")

        # The skip link first: it takes the user past the search and the filters.
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to the content")).to_be_focused()
        page.keyboard.press("Enter")
        press_tab_until(page, "API key")
        page.keyboard.type(KEY)
        with page.expect_navigation():
            page.keyboard.press("Enter")  # submits the card's form
        expect(page.get_by_role("status")).to_have_text("Acme-Key is connected.")

        press_tab_until(page, "Disconnect Acme-Key")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text("Disconnect Acme-Key?")
        press_tab_until(page, re.sub(r"\s+", " ", page.locator("button.danger").inner_text()))
        with page.expect_navigation():
            page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_have_text("Acme-Key is disconnected.")
        expect(page.locator("#card-acme-key [data-state]")).to_have_text("Not connected")
