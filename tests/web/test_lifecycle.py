"""Several connections per connector, permissions and attribution, over HTTP.

A real app and the strict provider on loopback (``tests.harness``). ``acme-multi``
holds one connection per provider organization (``connection.multiple``,
``accountKey: organizationId``); the provider's account is switched between
authorizations, as a user signing in as someone else at the provider would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from starlette.requests import Request

from connectors_core import EventType
from connectors_core.testing.oauth_provider import Account
from connectors_core.web import Action, Identity, by_role
from tests.harness import TENANT_HEADER, Harness

MULTI = "acme-multi"
TENANT = "tenant-a"
ROLE_HEADER = "x-test-role"
USER_HEADER = "x-test-user"


def as_org(harness: Harness, organization: str) -> None:
    """The next authorization at the provider is by someone in ``organization``."""
    harness.provider.account = Account(
        user_id=f"user-of-{organization}", organization_id=organization
    )


def connect_multi(
    harness: Harness, browser: httpx2.Client, organization: str, connection_id: str | None = None
) -> str:
    """Connect (or connect ``connection_id`` again) as ``organization``; where the app sent
    the browser back to."""
    as_org(harness, organization)
    start = (
        f"/api/integrations/{MULTI}/connect"
        if connection_id is None
        else f"/api/integrations/{MULTI}/connections/{connection_id}/connect"
    )
    response = browser.get(harness.origin + start)
    assert response.status_code == 303, response.text
    return harness.finish(browser, harness.authorize(browser, response.headers["location"]))


def each(harness: Harness, browser: httpx2.Client) -> dict[str, dict[str, Any]]:
    """The connections of ``acme-multi`` by organization, from its status route."""
    status = harness.status(browser, MULTI)
    return {s["status"]["organizationId"]: s for s in status["connections"]}


def post(harness: Harness, browser: httpx2.Client, path: str, **body: str) -> httpx2.Response:
    return browser.post(
        harness.origin + path,
        json=body or None,
        headers={"X-CSRF-Token": harness.csrf(browser), "Accept": "application/json"},
    )


def stored_token(harness: Harness, connection_id: str) -> str:
    async def read() -> str:
        return await harness.connections.get_access_token(TENANT, MULTI, connection_id)

    return anyio.run(read)


def events(harness: Harness) -> list[Any]:
    async def read() -> list[Any]:
        return await harness.connections.store.outbox.recent(tenant=TENANT, connector_id=MULTI)

    return [record.event for record in reversed(anyio.run(read))]


# --- several connections ------------------------------------------------------------------


def test_two_accounts_connect_side_by_side_each_with_its_own_status_token_and_disconnect(
    harness: Harness,
) -> None:
    with harness.browser() as browser:
        assert connect_multi(harness, browser, "org-1").endswith("result=connected")
        assert connect_multi(harness, browser, "org-2").endswith("result=connected")

        found = each(harness, browser)
        assert sorted(found) == ["org-1", "org-2"]
        one, two = (found[org]["status"]["connectionId"] for org in ("org-1", "org-2"))
        assert one != two
        assert harness.status(browser, MULTI)["connected"] is True

        for connection_id, organization in ((one, "org-1"), (two, "org-2")):
            answer = browser.get(
                f"{harness.origin}/api/integrations/{MULTI}/connections/{connection_id}/status"
            ).json()
            assert answer["status"]["organizationId"] == organization
            assert answer["status"]["connectionId"] == connection_id
        token_one, token_two = stored_token(harness, one), stored_token(harness, two)
        assert token_one != token_two

        # A route that means "the only connection" cannot choose between them.
        refused = post(harness, browser, f"/api/integrations/{MULTI}/test")
        assert (refused.status_code, refused.json()["error"]) == (409, "connection_required")

        gone = post(harness, browser, f"/api/integrations/{MULTI}/connections/{one}/disconnect")
        assert gone.status_code == 200, gone.text
        assert gone.json() == {"connected": False, "error": "not_connected"}
        assert token_one in harness.provider.revocations
        assert token_two not in harness.provider.revocations
        assert sorted(each(harness, browser)) == ["org-2"]
        assert stored_token(harness, two) == token_two

        # Disconnecting it again is not an error (the first answer may have been lost).
        again = post(harness, browser, f"/api/integrations/{MULTI}/connections/{one}/disconnect")
        assert again.status_code == 200
        lost = browser.get(f"{harness.origin}/api/integrations/{MULTI}/connections/{one}/status")
        assert (lost.status_code, lost.json()["error"]) == (404, "unknown_connection")

    kinds = [(e.type, e.account.get("organizationId")) for e in events(harness)]
    assert kinds == [
        (EventType.CONNECTED, "org-1"),
        (EventType.CONNECTED, "org-2"),
        (EventType.DISCONNECTED, "org-1"),
    ]


def test_connecting_an_account_already_connected_updates_its_connection(
    harness: Harness,
) -> None:
    with harness.browser() as browser:
        connect_multi(harness, browser, "org-1")
        first = each(harness, browser)["org-1"]["status"]["connectionId"]
        old_token = stored_token(harness, first)

        assert connect_multi(harness, browser, "org-1").endswith("result=connected")

        found = each(harness, browser)
        assert list(found) == ["org-1"]  # not a second connection
        assert found["org-1"]["status"]["connectionId"] == first
        assert stored_token(harness, first) != old_token
        assert old_token in harness.provider.revocations  # the replaced grant is revoked
    assert [e.type for e in events(harness)] == [EventType.CONNECTED, EventType.RECONNECTED]


def test_reconnecting_a_connection_to_another_account_is_refused_and_stores_nothing(
    harness: Harness,
) -> None:
    with harness.browser() as browser:
        connect_multi(harness, browser, "org-1")
        connection_id = each(harness, browser)["org-1"]["status"]["connectionId"]
        token = stored_token(harness, connection_id)
        issued = len(harness.provider.revocations)

        back = connect_multi(harness, browser, "org-2", connection_id)

        assert parse_qs(urlsplit(back).query)["error"] == ["account_mismatch"]
        found = each(harness, browser)
        assert list(found) == ["org-1"]  # no connection for org-2 either
        assert stored_token(harness, connection_id) == token
        assert token not in harness.provider.revocations
        # The tokens just granted for org-2 did not stay valid at the provider.
        assert len(harness.provider.revocations) > issued

        page = browser.get(f"{harness.origin}{back}").text
        assert "That is another Acme-Multi account than the one this connection is for." in page

        # Connecting it again as its own account works, and keeps its id.
        assert connect_multi(harness, browser, "org-1", connection_id).endswith("result=connected")
        assert each(harness, browser)["org-1"]["status"]["connectionId"] == connection_id
    assert [e.type for e in events(harness)] == [EventType.CONNECTED, EventType.RECONNECTED]


def test_a_connection_of_another_tenant_or_an_odd_id_is_unknown(harness: Harness) -> None:
    with harness.browser() as browser:
        connect_multi(harness, browser, "org-1")
        connection_id = each(harness, browser)["org-1"]["status"]["connectionId"]
    with harness.browser("tenant-b") as other:
        for path in (
            f"/api/integrations/{MULTI}/connections/{connection_id}/status",
            f"/api/integrations/{MULTI}/connections/{'x' * 300}/status",
            f"/api/integrations/{MULTI}/connections/%00/status",
        ):
            answer = other.get(harness.origin + path)
            assert (answer.status_code, answer.json()["error"]) == (404, "unknown_connection")
        for action in ("test", "rename"):
            refused = post(
                harness, other, f"/api/integrations/{MULTI}/connections/{connection_id}/{action}"
            )
            assert (refused.status_code, refused.json()["error"]) == (404, "unknown_connection")
        # Disconnect is idempotent, and another tenant's connection is "already gone".
        quiet = post(
            harness, other, f"/api/integrations/{MULTI}/connections/{connection_id}/disconnect"
        )
        assert quiet.status_code == 200
    with harness.browser() as browser:
        assert list(each(harness, browser)) == ["org-1"]


def test_a_connection_takes_a_label_shown_in_its_status(harness: Harness) -> None:
    with harness.browser() as browser:
        connect_multi(harness, browser, "org-1")
        connection_id = each(harness, browser)["org-1"]["status"]["connectionId"]
        rename = f"/api/integrations/{MULTI}/connections/{connection_id}/rename"

        named = post(harness, browser, rename, label="  Spring campaign  ")
        assert named.status_code == 200, named.text
        assert named.json()["status"]["label"] == "Spring campaign"
        assert "Spring campaign" in browser.get(f"{harness.origin}/integrations").text

        too_long = post(harness, browser, rename, label="x" * 201)
        assert too_long.status_code == 422
        assert too_long.json()["error"] == "invalid_fields"
        assert "label" in too_long.json()["fields"]
        two_lines = post(harness, browser, rename, label="a\nb")
        assert two_lines.status_code == 422

        cleared = post(harness, browser, rename, label="")
        assert "label" not in cleared.json()["status"]


# --- permissions --------------------------------------------------------------------------


def identity(request: Request) -> Identity | None:
    """The test's login: tenant, user and role from headers."""
    tenant = request.headers.get(TENANT_HEADER)
    if not tenant:
        return None
    user = request.headers.get(USER_HEADER)
    names = {"ada": "Ada Lovelace", "grace": "Grace Hopper"}
    roles = {request.headers[ROLE_HEADER]} if ROLE_HEADER in request.headers else set()
    return Identity(tenant, user=user, name=names.get(user or ""), roles=roles)


EXAMPLE = by_role({"admin": list(Action), "member": [Action.VIEW, Action.TEST]})
"""The example authorizer of the docs and the README."""


def test_the_example_authorizer_is_the_documented_one() -> None:
    root = Path(__file__).parents[2]
    documented = 'by_role({"admin": list(Action), "member": [Action.VIEW, Action.TEST]})'
    assert documented in (root / "docs" / "connections.md").read_text(encoding="utf-8")
    assert documented in (root / "README.md").read_text(encoding="utf-8")


@pytest.fixture
def roles(make_harness: Any) -> Harness:
    return make_harness(authenticator=identity, authorizer=EXAMPLE)  # type: ignore[no-any-return]


def person(harness: Harness, user: str, role: str | None) -> httpx2.Client:
    browser = harness.browser()
    browser.headers[USER_HEADER] = user
    if role:
        browser.headers[ROLE_HEADER] = role
    return browser


def test_a_member_can_view_and_test_but_not_connect_disconnect_or_rename(roles: Harness) -> None:
    harness = roles
    with person(harness, "ada", "admin") as admin:
        harness.connect(admin, "acme-oauth")
        connection_id = harness.status(admin, "acme-oauth")["status"]["connectionId"]
    with person(harness, "grace", "member") as member:
        assert harness.status(member, "acme-oauth")["connected"] is True
        tested = post(harness, member, "/api/integrations/acme-oauth/test")
        assert tested.status_code == 200, tested.text

        for path, body in (
            ("/api/integrations/acme-oauth/disconnect", {}),
            (f"/api/integrations/acme-oauth/connections/{connection_id}/disconnect", {}),
            (f"/api/integrations/acme-oauth/connections/{connection_id}/rename", {"label": "x"}),
            ("/api/integrations/acme-key/connect", {"apiKey": "sk_member_0123456789"}),
        ):
            refused = post(harness, member, path, **body)
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json()["error"] == "forbidden"
        refused_start = member.get(f"{harness.origin}/api/integrations/acme-oauth/connect")
        assert refused_start.status_code == 403
        assert harness.status(member, "acme-oauth")["connected"] is True

        # A browser is sent back to the page with a readable message, not JSON.
        confirm = member.get(
            f"{harness.origin}/api/integrations/acme-oauth/disconnect",
            headers={"Accept": "text/html"},
        )
        assert confirm.status_code == 303
        assert confirm.headers["location"].endswith("connector=acme-oauth&error=forbidden")
        page = member.get(harness.origin + confirm.headers["location"]).text
        assert "You may not do that." in page

        # The page offers what a member may do, and nothing else.
        card = page.split('id="card-acme-oauth"')[1].split("</details>")[0]
        assert "Test connection" in card
        assert "Disconnect" not in card
        assert 'href="/api/integrations/evencio/connect"' not in page
    with person(harness, "ada", "admin") as admin:
        card = admin.get(f"{harness.origin}/integrations").text.split('id="card-acme-oauth"')[1]
        assert 'href="/api/integrations/acme-oauth/disconnect"' in card.split("</details>")[0]


def test_without_a_role_nothing_is_allowed_and_a_hidden_card_is_not_shown(
    make_harness: Any,
) -> None:
    def only_evencio(request: Request, action: Action, connector: Any, connection: Any) -> bool:
        return connector is not None and connector.id == "evencio"

    harness: Harness = make_harness(authenticator=identity, authorizer=only_evencio)
    with person(harness, "nobody", None) as browser:
        html = browser.get(f"{harness.origin}/integrations").text
        assert re.findall(r'id="card-([a-z0-9-]+)"', html) == ["evencio"]
        assert "failed to load" not in html
        hidden = browser.get(f"{harness.origin}/api/integrations/acme-oauth/status")
        assert (hidden.status_code, hidden.json()["error"]) == (403, "forbidden")
    with person(harness, "nobody", None) as browser:
        strict: Harness = make_harness(authenticator=identity, authorizer=EXAMPLE)
        refused = browser.get(f"{strict.origin}/api/integrations/evencio/status")
        assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")


def test_an_authorizer_that_raises_refuses(
    make_harness: Any, captured_logs: pytest.LogCaptureFixture
) -> None:
    def broken(request: Request, action: Action, connector: Any, connection: Any) -> bool:
        raise RuntimeError("the roles service is down")

    harness: Harness = make_harness(authorizer=broken)
    with harness.browser() as browser:
        answer = browser.get(f"{harness.origin}/api/integrations/acme-oauth/status")
        assert (answer.status_code, answer.json()["error"]) == (403, "forbidden")
    assert "the authorizer raised for view" in captured_logs.text


def test_an_async_authorizer_sees_the_connection_concerned(make_harness: Any) -> None:
    asked: list[tuple[str, str | None, str | None]] = []

    async def own_only(request: Request, action: Action, connector: Any, connection: Any) -> bool:
        await anyio.sleep(0)
        who = connection.connected_by if connection is not None else None
        asked.append((action.value, connector.id if connector else None, who))
        if action is Action.DISCONNECT:  # members disconnect what they connected
            return connection is not None and who == request.state.identity.user
        return True

    harness: Harness = make_harness(authenticator=identity, authorizer=own_only)
    with person(harness, "ada", "member") as ada:
        harness.connect(ada, "acme-oauth")
    with person(harness, "grace", "member") as grace:
        assert harness.disconnect(grace, "acme-oauth").status_code == 403
    with person(harness, "ada", "member") as ada:
        assert harness.disconnect(ada, "acme-oauth").status_code == 200
    assert ("connect", "acme-oauth", None) in asked
    assert ("disconnect", "acme-oauth", "ada") in asked


# --- attribution --------------------------------------------------------------------------


def test_who_connected_and_when_is_recorded_shown_and_an_events_actor(roles: Harness) -> None:
    harness = roles
    with person(harness, "ada", "admin") as ada:
        harness.connect(ada, "acme-oauth")
        status = harness.status(ada, "acme-oauth")["status"]
        assert status["connectedBy"] == {"id": "ada", "name": "Ada Lovelace"}
        page = ada.get(f"{harness.origin}/integrations").text
        card = page.split('id="card-acme-oauth"')[1].split("</details>")[0]
        assert re.search(
            r"Connected by Ada Lovelace on <time datetime=\"\d{4}-\d{2}-\d{2}\">", card
        ), card

        confirm = ada.get(f"{harness.origin}/api/integrations/acme-oauth/disconnect")
        assert confirm.status_code == 200
        assert "was made by Ada Lovelace" in confirm.text
        assert harness.disconnect(ada, "acme-oauth").status_code == 200

    async def read() -> list[Any]:
        return await harness.connections.store.outbox.recent(connector_id="acme-oauth")

    actors = [(r.event.type, r.event.actor) for r in reversed(anyio.run(read))]
    assert actors == [
        (EventType.CONNECTED, "ada"),
        (EventType.DISCONNECTED, "ada"),
    ]


# --- confirming a disconnect --------------------------------------------------------------


def test_disconnect_asks_first_and_its_form_works_without_javascript(harness: Harness) -> None:
    with harness.browser() as browser:
        harness.connect(browser, "acme-oauth")
        page = browser.get(
            f"{harness.origin}/api/integrations/acme-oauth/disconnect",
            headers={"Accept": "text/html"},
        )
        assert page.status_code == 200
        assert "<title>Disconnect Acme-Oauth?</title>" in page.text
        assert harness.status(browser, "acme-oauth")["connected"] is True  # asking changed nothing
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert action
        assert token
        assert action.group(1) == "/api/integrations/acme-oauth/disconnect"

        done = browser.post(
            harness.origin + action.group(1),
            data={"csrf_token": token.group(1)},
            headers={"Accept": "text/html", "Origin": harness.origin},
        )
        assert done.status_code == 303
        assert done.headers["location"].endswith("result=disconnected")
        assert harness.status(browser, "acme-oauth")["connected"] is False

        # Nothing to disconnect: back to the page, saying so.
        nothing = browser.get(
            f"{harness.origin}/api/integrations/acme-oauth/disconnect",
            headers={"Accept": "text/html"},
        )
        assert nothing.status_code == 303
        assert nothing.headers["location"].endswith("error=not_connected")


# --- what the review found ----------------------------------------------------------------


def members_own_only(request: Request, action: Action, connector: Any, connection: Any) -> bool:
    """The docs' rule: members connect new connections or their own, and disconnect theirs."""
    me = request.state.identity
    if "admin" in me.roles or action in (Action.VIEW, Action.TEST):
        return True
    if action in (Action.CONNECT, Action.DISCONNECT):
        return connection is None or connection.connected_by == me.user
    return False


def test_connecting_over_someone_else_s_connection_needs_leave_to_replace_it(
    make_harness: Any,
) -> None:
    harness: Harness = make_harness(authenticator=identity, authorizer=members_own_only)
    with person(harness, "ada", "admin") as ada:
        harness.connect(ada, "acme-oauth")
        harness.connect(ada, "evencio")
        connect_multi(harness, ada, "org-1")
    one = stored_token(harness, each_id(harness, "org-1"))
    revoked = len(harness.provider.revocations)
    with person(harness, "grace", "member") as grace:
        # A single-connection connector: connecting would replace Ada's connection.
        refused = grace.get(f"{harness.origin}/api/integrations/acme-oauth/connect")
        assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
        # Several: the same account turns out to be Ada's only once the provider answers.
        back = connect_multi(harness, grace, "org-1")
        assert parse_qs(urlsplit(back).query)["error"] == ["forbidden"]
        assert stored_token(harness, each_id(harness, "org-1")) == one  # Ada's, untouched
        assert one not in harness.provider.revocations
        assert len(harness.provider.revocations) > revoked  # Grace's new grant is revoked
        # Another account is a connection of her own: she may add it, and disconnect it.
        assert connect_multi(harness, grace, "org-2").endswith("result=connected")
        mine = each_id(harness, "org-2")
        gone = post(harness, grace, f"/api/integrations/{MULTI}/connections/{mine}/disconnect")
        assert gone.status_code == 200
        theirs = each_id(harness, "org-1")
        kept = post(harness, grace, f"/api/integrations/{MULTI}/connections/{theirs}/disconnect")
        assert kept.status_code == 403
    with person(harness, "ada", "admin") as ada:
        assert harness.status(ada, "acme-oauth")["status"]["connectedBy"]["id"] == "ada"


def each_id(harness: Harness, organization: str) -> str:
    with harness.browser() as browser:
        return str(each(harness, browser)[organization]["status"]["connectionId"])


def test_reconnecting_a_single_connection_as_another_organization_is_refused(
    harness: Harness,
) -> None:
    with harness.browser() as browser:
        as_org(harness, "org-7")
        harness.connect(browser, "evencio")
        before = harness.status(browser, "evencio")["status"]
        as_org(harness, "org-other")
        start = browser.get(
            f"{harness.origin}/api/integrations/evencio/connections/"
            f"{before['connectionId']}/connect"
        )
        back = harness.finish(browser, harness.authorize(browser, start.headers["location"]))
        assert parse_qs(urlsplit(back).query)["error"] == ["account_mismatch"]
        after = harness.status(browser, "evencio")["status"]
        assert after["organizationId"] == "org-7"
        # The connector's own route replaces it whatever the account (a colleague's).
        assert harness.connect(browser, "evencio").endswith("result=connected")
        assert harness.status(browser, "evencio")["status"]["organizationId"] == "org-other"


def test_a_connection_from_before_multiple_is_found_by_its_account(harness: Harness) -> None:
    import attrs

    with harness.browser() as browser:
        connect_multi(harness, browser, "org-1")
        legacy_id = each_id(harness, "org-1")

    async def make_legacy() -> None:  # as migration 0007 leaves a row of before
        store = harness.connections.store
        found = await store.get(TENANT, MULTI, legacy_id)
        assert found is not None
        await store.put(attrs.evolve(found, account_key=""))

    anyio.run(make_legacy)
    with harness.browser() as browser:
        # Connecting its account updates it (and gives it its key), not a second one.
        assert connect_multi(harness, browser, "org-1").endswith("result=connected")
        assert list(each(harness, browser)) == ["org-1"]
        assert each_id(harness, "org-1") == legacy_id
        # Another account is another connection; the legacy one can be reconnected.
        connect_multi(harness, browser, "org-2")
        assert connect_multi(harness, browser, "org-1", legacy_id).endswith("result=connected")
        assert sorted(each(harness, browser)) == ["org-1", "org-2"]


def test_a_member_sees_only_the_connections_they_may_view(make_harness: Any) -> None:
    def own_view(request: Request, action: Action, connector: Any, connection: Any) -> bool:
        me = request.state.identity
        if action is Action.VIEW and connection is not None and "admin" not in me.roles:
            return bool(connection.connected_by == me.user)
        return True

    harness: Harness = make_harness(authenticator=identity, authorizer=own_view)
    with person(harness, "ada", "admin") as ada:
        connect_multi(harness, ada, "org-1")
    with person(harness, "grace", "member") as grace:
        connect_multi(harness, grace, "org-2")
        listed = harness.status(grace, MULTI)["connections"]
        assert [c["status"]["organizationId"] for c in listed] == ["org-2"]
        card = grace.get(f"{harness.origin}/integrations").text.split('id="card-acme-multi"')[1]
        assert "org-2" in card.split("</details>")[0]
        assert "org-1" not in card.split("</details>")[0]
    with person(harness, "ada", "admin") as ada:
        assert len(harness.status(ada, MULTI)["connections"]) == 2


def test_a_gone_connection_is_not_mistaken_for_the_remaining_one(make_harness: Any) -> None:
    asked: list[Any] = []

    def note(request: Request, action: Action, connector: Any, connection: Any) -> bool:
        if action is Action.DISCONNECT:
            asked.append(connection)
        return True

    harness: Harness = make_harness(authenticator=identity, authorizer=note)
    with person(harness, "ada", "admin") as ada:
        connect_multi(harness, ada, "org-1")
        connect_multi(harness, ada, "org-2")
        gone = each_id(harness, "org-1")
        for _ in (1, 2):
            done = post(harness, ada, f"/api/integrations/{MULTI}/connections/{gone}/disconnect")
            assert done.status_code == 200
    assert asked[0].connection_id == gone
    assert asked[1] is None  # not org-2's


def test_on_event_hears_of_each_change_from_the_server_s_own_loop(make_harness: Any) -> None:
    import time

    heard: list[str] = []
    harness: Harness = make_harness(on_event=lambda event: heard.append(event.type.value))
    with harness.browser() as browser:
        harness.connect(browser, "acme-oauth")
        assert harness.disconnect(browser, "acme-oauth").status_code == 200
    deadline = time.monotonic() + 30
    while len(heard) < 2:
        assert time.monotonic() < deadline, heard
        time.sleep(0.05)
    assert heard == ["connected", "disconnected"]
    assert harness.connections.listeners == []  # the service itself is left as it was
