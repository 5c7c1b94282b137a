"""The sandbox API, as the strict provider serves it: credentials, scopes, pages, sample data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from starlette.testclient import TestClient

import connectors_evencio
from connectors_core import define_connector
from connectors_evencio._sandbox import EVENTS, GUESTS, VENUES, create_app

if TYPE_CHECKING:
    from conftest import Sandbox

PATHS = [
    "/oauth/status",
    "/v1/events",
    "/v1/events/evt_001",
    "/v1/venues",
    "/v1/events/evt_001/guests",
]


def get(sandbox: Sandbox, path: str, token: str | None, **params: str) -> httpx2.Response:
    """``GET`` the sandbox API through the provider, with ``token`` as a bearer if given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx2.Client() as http:
        return http.get(f"{sandbox.handle.url}/apis/evencio{path}", params=params, headers=headers)


def test_the_hook_serves_evencio_only() -> None:
    other = define_connector(
        id="other",
        name="Other",
        summary="S.",
        description="D.",
        category="custom",
        status="available",
        auth={"type": "none"},
        capabilities=[{"id": "x", "label": "X"}],
    )
    assert connectors_evencio.sandbox_api(connector=other) is None
    assert connectors_evencio.sandbox_api(connector=connectors_evencio.EVENCIO) is not None


@pytest.mark.parametrize("path", PATHS)
def test_without_a_valid_access_token_the_provider_answers_401(sandbox: Sandbox, path: str) -> None:
    for token in (None, "not-a-token-it-issued"):
        response = get(sandbox, path, token)
        assert response.status_code == 401
        assert response.json() == {"error": "invalid_token"}
        assert response.headers["www-authenticate"].startswith("Bearer")
    # Claiming to be someone in the sandbox's own headers gets nowhere either.
    with httpx2.Client() as http:
        forged = http.get(
            f"{sandbox.handle.url}/apis/evencio{path}",
            headers={"X-Sandbox-User-Id": "u", "X-Sandbox-Scopes": "events:read"},
        )
    assert forged.status_code == 401
    assert sandbox.api.requests == []  # the app was never reached


def test_a_revoked_token_is_refused(connected: Sandbox) -> None:
    access, _refresh = connected.tokens()
    assert get(connected, "/v1/events", access).status_code == 200
    connected.revoke(access)
    assert get(connected, "/v1/events", access).status_code == 401


def test_oauth_status_names_the_caller_and_its_scopes(connected: Sandbox) -> None:
    access, _refresh = connected.tokens()
    answer = get(connected, "/oauth/status", access)
    assert answer.status_code == 200
    assert answer.json() == {
        "userId": "user-1",
        "organizationId": "org-1",
        "clientId": "sandbox",
        "scopes": sorted(["events:read", "venues:read", "guests:read", "offline_access"]),
    }


def test_lists_are_paginated_with_limit_and_an_opaque_cursor(connected: Sandbox) -> None:
    access, _refresh = connected.tokens()
    first = get(connected, "/v1/events", access).json()
    assert [e["id"] for e in first["data"]] == [f"evt_{n:03d}" for n in range(1, 26)]  # 25
    second = get(connected, "/v1/events", access, limit="30", cursor=first["nextCursor"]).json()
    assert [e["id"] for e in second["data"]] == [f"evt_{n:03d}" for n in range(26, 56)]
    last = get(connected, "/v1/events", access, limit="30", cursor=second["nextCursor"]).json()
    assert [e["id"] for e in last["data"]] == [f"evt_{n:03d}" for n in range(56, 61)]
    assert last["nextCursor"] is None
    assert get(connected, "/v1/venues", access).json() == {"data": list(VENUES), "nextCursor": None}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "101"}, "invalid_limit"),
        ({"limit": "ten"}, "invalid_limit"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"cursor": ""}, "invalid_cursor"),
    ],
)
def test_a_bad_limit_or_cursor_is_a_400(
    connected: Sandbox, params: dict[str, str], error: str
) -> None:
    access, _refresh = connected.tokens()
    answer = get(connected, "/v1/events", access, **params)
    assert answer.status_code == 400
    assert answer.json()["error"] == error


def test_unknown_ids_and_paths_are_json_404s(connected: Sandbox) -> None:
    access, _refresh = connected.tokens()
    for path in ("/v1/events/evt_999", "/v1/events/evt_999/guests", "/v2/whatever"):
        answer = get(connected, path, access)
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"


def test_each_list_needs_its_scope(sandbox: Sandbox) -> None:
    sandbox.connect(scopes=["events:read", "offline_access"])  # venues and guests not granted
    access, _refresh = sandbox.tokens()

    assert get(sandbox, "/oauth/status", access).json()["scopes"] == [
        "events:read",
        "offline_access",
    ]
    assert get(sandbox, "/v1/events", access).status_code == 200
    for path, scope in (
        ("/v1/venues", "venues:read"),
        ("/v1/events/evt_001/guests", "guests:read"),
    ):
        answer = get(sandbox, path, access)
        assert answer.status_code == 403
        assert answer.json()["error"] == "insufficient_scope"
        assert answer.json()["scope"] == scope
        assert f'scope="{scope}"' in answer.headers["www-authenticate"]


def test_the_sample_data_is_the_same_on_every_start() -> None:
    headers = {
        "X-Sandbox-User-Id": "u",
        "X-Sandbox-Organization-Id": "o",
        "X-Sandbox-Scopes": "events:read venues:read guests:read",
    }
    answers: list[Any] = []
    for _ in range(2):
        with TestClient(create_app()) as client:
            answers.append(
                [
                    client.get(path, headers=headers, params={"limit": "100"}).json()
                    for path in PATHS[1:]
                ]
            )
    assert answers[0] == answers[1]
    assert len(EVENTS) == 60
    assert len({e["venueId"] for e in EVENTS}) == len(VENUES) + 1  # and some online (None)
    assert max(len(guests) for guests in GUESTS.values()) > 25  # guest lists take pages too


def test_the_app_alone_refuses_a_caller_the_provider_did_not_name() -> None:
    with TestClient(create_app()) as client:
        answer = client.get("/v1/events")
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_token"
