"""Every way a token endpoint can answer, at the callback and on refresh.

The strict provider is made to misbehave (``respond_next``, ``tamper_next``,
``fail_next``) the way real providers and their gateways do; each answer must
end in the outcome ``docs/connections.md`` documents, never in a 500 or a raw
exception, and nothing may be stored after a failed exchange.
"""

from __future__ import annotations

from typing import Any

import anyio
import attrs
import httpx2
import pytest

from connectors_core import IntegrationError, NeedsReauthError, ProviderUnavailableError
from connectors_core.connections import Connections
from connectors_core.connections._answers import OUTCOMES, Answer, classify, lifetime
from connectors_core.store import ConnectionState, StoredConnection
from tests.harness import Harness

TENANT, ACME = "tenant-a", "acme-oauth"
HTML = "<html><body><h1>403 Forbidden</h1></body></html>"


@attrs.frozen
class Case:
    """One answer of the token endpoint."""

    name: str
    answer: Answer
    status: int
    body: Any
    content_type: str | None = None


CASES = [
    Case("503-html", Answer.OVERLOADED, 503, "<html>Service Unavailable</html>"),
    Case("502-empty", Answer.OVERLOADED, 502, b""),
    Case("429-json", Answer.OVERLOADED, 429, {"error": "slow_down"}),
    Case("400-temporarily", Answer.TRANSIENT_ERROR, 400, {"error": "temporarily_unavailable"}),
    Case("200-server-error", Answer.TRANSIENT_ERROR, 200, {"error": "server_error"}),
    Case("400-invalid-grant", Answer.INVALID_GRANT, 400, {"error": "invalid_grant"}),
    Case("401-invalid-client", Answer.INVALID_CLIENT, 401, {"error": "invalid_client"}),
    Case("400-unauthorized-client", Answer.INVALID_CLIENT, 400, {"error": "unauthorized_client"}),
    Case("401-html", Answer.UNAUTHORIZED, 401, HTML),
    Case("401-empty", Answer.UNAUTHORIZED, 401, b""),
    Case("403-html", Answer.UNAUTHORIZED, 403, HTML),
    Case("401-other-code", Answer.UNAUTHORIZED, 401, {"error": "invalid_token"}),
    Case("403-odd-code", Answer.UNAUTHORIZED, 403, {"error": {"nested": True}}),
    Case("400-invalid-request", Answer.OTHER_ERROR, 400, {"error": "invalid_request"}),
    Case("200-error-code", Answer.OTHER_ERROR, 200, {"error": "bad_verification_code"}),
    Case("302-redirect", Answer.OTHER_ERROR, 302, b""),
    Case("404-html", Answer.OTHER_ERROR, 404, "<html>Not Found</html>"),
    Case("200-html", Answer.UNREADABLE, 200, "<html>Welcome</html>"),
    Case("200-json-list", Answer.UNREADABLE, 200, ["access_token"]),
    Case("200-empty", Answer.UNREADABLE, 200, b"", "application/json"),
    Case("200-deep-json", Answer.UNREADABLE, 200, "[" * 5000 + "]" * 5000, "application/json"),
    Case("200-no-token", Answer.NO_ACCESS_TOKEN, 200, {"token_type": "Bearer"}),
    Case("200-number-token", Answer.NO_ACCESS_TOKEN, 200, {"access_token": 5}),
    Case("200-form-tokens", Answer.TOKENS, 200, "access_token=abc&token_type=bearer",
         "application/x-www-form-urlencoded"),
    Case("200-odd-fields", Answer.TOKENS, 200,
         {"access_token": "abc", "expires_in": {"seconds": 1}, "scope": 7, "token_type": None}),
]  # fmt: skip


def test_the_cases_cover_every_answer() -> None:
    assert {case.answer for case in CASES} | {Answer.UNREACHABLE} == set(Answer)
    assert set(OUTCOMES) == set(Answer)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_answer_is_classified(case: Case) -> None:
    if isinstance(case.body, bytes | str):
        content = case.body.encode() if isinstance(case.body, str) else case.body
        response = httpx2.Response(
            case.status, content=content, headers={"content-type": case.content_type or "text/html"}
        )
    else:
        response = httpx2.Response(case.status, json=case.body)
    assert classify(response).kind is case.answer


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(3600, 3600.0), (1.5, 1.5), ("3600", 3600.0), (" 60 ", 60.0), ("abc", None), ({}, None),
     ([], None), (True, None), (0, None), (-5, None), (float("inf"), None), (None, None),
     ("nan", None)],
)  # fmt: skip
def test_a_lifetime_is_a_positive_number_or_nothing(value: object, seconds: float | None) -> None:
    assert lifetime(value) == seconds


def respond(harness: Harness, case: Case) -> None:
    harness.provider.respond_next("token", case.status, case.body, content_type=case.content_type)


def stored(connections: Connections) -> StoredConnection | None:
    return anyio.run(connections.store.get, TENANT, ACME)


def connected(harness: Harness) -> Connections:
    with harness.browser(TENANT) as browser:
        assert harness.connect(browser, ACME).endswith("result=connected")
    return harness.connections


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_the_callback_ends_in_the_documented_outcome(harness: Harness, case: Case) -> None:
    respond(harness, case)
    with harness.browser(TENANT) as browser:
        back = harness.connect(browser, ACME)
        outcome = OUTCOMES[case.answer][0]
        if outcome == "connected":
            assert back.endswith("result=connected")
            assert harness.status(browser, ACME)["connected"] is True
        else:
            assert back.endswith(f"error={outcome}")
            assert harness.status(browser, ACME) == {"connected": False, "error": "not_connected"}
            assert stored(harness.connections) is None


def test_an_unreachable_token_endpoint_is_provider_unavailable_at_the_callback(
    make_harness: Any,
) -> None:
    harness: Harness = make_harness(http_timeout=0.5)
    harness.provider.timeout_delay = 2.0
    harness.provider.fail_next("token", "timeout")
    with harness.browser(TENANT) as browser:
        assert harness.connect(browser, ACME).endswith("error=provider_unavailable")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_refresh_ends_in_the_documented_outcome(harness: Harness, case: Case) -> None:
    connections = connected(harness)
    before = stored(connections)
    assert before is not None
    harness.advance(3600)
    respond(harness, case)
    outcome = OUTCOMES[case.answer][1]
    if outcome == "refreshed":
        assert anyio.run(connections.get_access_token, TENANT, ACME) == "abc"
        return
    expected: type[IntegrationError] = {
        "needs_reauth": NeedsReauthError,
        "provider_unavailable": ProviderUnavailableError,
    }.get(outcome, IntegrationError)
    with pytest.raises(expected) as raised:
        anyio.run(connections.get_access_token, TENANT, ACME)
    assert raised.value.reason == outcome
    after = stored(connections)
    assert after is not None
    assert after.tokens is not None
    assert after.tokens.refresh_token == before.tokens.refresh_token  # type: ignore[union-attr]
    wanted = (
        ConnectionState.NEEDS_REAUTH if outcome == "needs_reauth" else ConnectionState.CONNECTED
    )
    assert after.state is wanted
    if after.state is ConnectionState.CONNECTED:
        # Nothing was spent: the next call refreshes normally.
        fresh = anyio.run(connections.get_access_token, TENANT, ACME)
        assert harness.provider.is_active(fresh)


def test_a_rotated_refresh_token_is_kept_when_the_rest_of_the_answer_is_unusable(
    harness: Harness,
) -> None:
    connections = connected(harness)
    harness.advance(3600)
    harness.provider.tamper_next("token", lambda body: {**body, "access_token": None})
    with pytest.raises(IntegrationError) as raised:
        anyio.run(connections.get_access_token, TENANT, ACME)
    assert raised.value.reason == "refresh_failed"

    # The provider rotated the refresh token and detects reuse: sending the spent
    # one again would revoke the grant. The kept one works.
    fresh = anyio.run(connections.get_access_token, TENANT, ACME)
    assert harness.provider.is_active(fresh)
    state = stored(connections)
    assert state is not None
    assert state.state is ConnectionState.CONNECTED


@pytest.mark.parametrize("expires_in", ["abc", {"seconds": 3600}, None, -1, True])
def test_an_unusable_expiry_takes_the_default_lifetime_and_refreshes_later(
    make_harness: Any, expires_in: object
) -> None:
    harness: Harness = make_harness(default_token_lifetime=900)
    connections = connected(harness)
    harness.advance(3600)

    def odd(body: dict[str, Any]) -> dict[str, Any]:
        if expires_in is None:
            return {k: v for k, v in body.items() if k != "expires_in"}
        return {**body, "expires_in": expires_in}

    harness.provider.tamper_next("token", odd)
    first = anyio.run(connections.get_access_token, TENANT, ACME)
    state = stored(connections)
    assert state is not None
    assert state.tokens is not None
    assert state.tokens.expires_at is not None
    assert 800 < state.tokens.expires_at - harness.clock() <= 900

    # Still fresh a little later; refreshed once the default lifetime is up.
    harness.advance(600)
    assert anyio.run(connections.get_access_token, TENANT, ACME) == first
    harness.advance(400)
    second = anyio.run(connections.get_access_token, TENANT, ACME)
    assert second != first
    assert harness.provider.is_active(second)
    assert harness.provider.token_requests.count("refresh_token") == 2


def test_a_token_without_expiry_or_refresh_token_never_needs_refreshing(
    harness: Harness,
) -> None:
    harness.provider.tamper_next(
        "token", lambda body: {"access_token": body["access_token"], "token_type": "Bearer"}
    )
    connections = connected(harness)
    harness.advance(10 * 86400)
    token = anyio.run(connections.get_access_token, TENANT, ACME)
    assert harness.provider.token_requests == ["authorization_code"]
    assert token


def test_short_lived_tokens_are_not_refreshed_right_after_they_were_issued(
    make_harness: Any,
) -> None:
    harness: Harness = make_harness(refresh_margin=60)
    harness.provider.access_token_lifetime = 30
    connections = connected(harness)

    async def many(count: int) -> list[str]:
        results: list[str] = []

        async def one() -> None:
            results.append(await connections.get_access_token(TENANT, ACME))

        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(one)
        return results

    # Fresh from the exchange: reused, although 30 s is within the 60 s margin.
    assert len(set(anyio.run(many, 50))) == 1
    assert harness.provider.token_requests == ["authorization_code"]
    # Past half its life: one refresh for everyone, and its token is reused too.
    harness.advance(20)
    assert len(set(anyio.run(many, 50))) == 1
    assert len(set(anyio.run(many, 50))) == 1
    assert harness.provider.token_requests == ["authorization_code", "refresh_token"]


def test_a_legacy_connection_without_expiry_is_refreshed_after_the_default_lifetime(
    make_harness: Any,
) -> None:
    harness: Harness = make_harness(default_token_lifetime=600)
    connections = connected(harness)
    state = stored(connections)
    assert state is not None
    assert state.tokens is not None
    legacy = attrs.evolve(state, tokens=attrs.evolve(state.tokens, expires_at=None))
    anyio.run(connections.store.put, legacy)
    assert anyio.run(connections.get_access_token, TENANT, ACME) == state.tokens.access_token
    harness.advance(601)
    fresh = anyio.run(connections.get_access_token, TENANT, ACME)
    assert fresh != state.tokens.access_token
    assert harness.provider.is_active(fresh)


def test_a_refresh_cancelled_by_its_caller_still_keeps_the_rotated_token(
    harness: Harness,
) -> None:
    connections = connected(harness)
    harness.advance(3600)
    harness.provider.delay_next("token", 1.0)  # rotated at the provider after the caller gave up

    async def impatient() -> None:
        with anyio.move_on_after(0.2):
            await connections.get_access_token(TENANT, ACME)

    anyio.run(impatient)
    token = anyio.run(connections.get_access_token, TENANT, ACME)
    assert harness.provider.is_active(token)
    assert harness.provider.token_requests.count("refresh_token") == 1


def test_an_implausible_token_type_is_stored_as_bearer(harness: Harness) -> None:
    harness.provider.tamper_next("token", lambda body: {**body, "token_type": "x" * 100})
    connections = connected(harness)
    state = stored(connections)
    assert state is not None
    assert state.tokens is not None
    assert state.tokens.token_type == "Bearer"
