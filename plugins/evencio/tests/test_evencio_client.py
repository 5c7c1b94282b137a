"""EvencioClient against the sandbox API, behind the strict provider, through Connections.client."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors_core import NeedsReauthError, NotConnectedError
from connectors_evencio import EvencioClient, EvencioError, Event, Guest, Venue

if TYPE_CHECKING:
    from conftest import Sandbox

_T = TypeVar("_T")
E = TypeVar("E", bound=BaseException)


async def collect(items: AsyncIterator[_T]) -> list[_T]:
    return [item async for item in items]


def events(sandbox: Sandbox, **options: Any) -> list[Event]:
    async def main() -> list[Event]:
        async with EvencioClient.connect(sandbox.connections, sandbox.tenant, **options) as ev:
            return await collect(ev.events())

    return sandbox.run(main)


def raised(
    sandbox: Sandbox, call: Callable[[EvencioClient], Awaitable[object]], kind: type[E]
) -> E:
    """What ``call(evencio)`` raised: it must raise ``kind``."""

    async def main() -> None:
        async with EvencioClient.connect(sandbox.connections, sandbox.tenant) as evencio:
            await call(evencio)

    with pytest.raises(kind) as info:
        sandbox.run(main)
    return info.value


def test_events_follows_every_page(connected: Sandbox) -> None:
    found = events(connected, page_size=25)

    assert [e.id for e in found] == [f"evt_{n:03d}" for n in range(1, 61)]
    pages = [query for _method, path, query in connected.api.requests if path == "/v1/events"]
    assert len(pages) == 3  # 25 + 25 + 10
    assert [q["limit"] for q in pages] == ["25"] * 3
    assert "cursor" not in pages[0]
    assert pages[1]["cursor"] != pages[2]["cursor"]


def test_events_asks_for_the_largest_pages_by_default(connected: Sandbox) -> None:
    assert len(events(connected)) == 60
    assert connected.api.requests == [("GET", "/v1/events", {"limit": "100"})]


def test_stopping_early_asks_for_no_more_pages(connected: Sandbox) -> None:
    async def main() -> list[Event]:
        async with EvencioClient.connect(
            connected.connections, connected.tenant, page_size=10
        ) as ev:
            first: list[Event] = []
            async for event in ev.events():
                first.append(event)
                if len(first) == 3:
                    break
            return first

    assert len(connected.run(main)) == 3
    assert len(connected.api.requests) == 1


def test_one_event_typed(connected: Sandbox) -> None:
    async def main() -> tuple[Event, Event, Event]:
        async with EvencioClient.connect(connected.connections, connected.tenant) as evencio:
            return (
                await evencio.event("evt_007"),
                await evencio.event("evt_015"),
                await evencio.event("evt_020"),
            )

    seventh, online, open_ended = connected.run(main)

    starts = datetime(2025, 2, 11, 18, 0, tzinfo=UTC)
    assert seventh == Event(
        id="evt_007",
        name="Community Hackathon #1",
        starts_at=starts,
        ends_at=starts + timedelta(hours=3),
        status="completed",
        venue_id="ven_01",
    )
    assert seventh.starts_at.tzinfo is not None
    assert online.venue_id is None
    assert open_ended.ends_at is None
    assert connected.api.paths() == [
        "/v1/events/evt_007",
        "/v1/events/evt_015",
        "/v1/events/evt_020",
    ]
    assert seventh in events(connected)


def test_venues(connected: Sandbox) -> None:
    async def main() -> list[Venue]:
        async with EvencioClient.connect(connected.connections, connected.tenant) as evencio:
            return await collect(evencio.venues())

    venues = connected.run(main)

    assert [v.id for v in venues] == [f"ven_{n:02d}" for n in range(1, 7)]
    assert Venue(id="ven_04", name="Salle Lumière", city="Paris", country="FR") in venues


def test_the_guests_of_an_event_follow_every_page(connected: Sandbox) -> None:
    async def main() -> list[Guest]:
        async with EvencioClient.connect(
            connected.connections, connected.tenant, page_size=20
        ) as ev:
            return await collect(ev.guests("evt_006"))

    guests = connected.run(main)

    assert len(guests) == 45
    assert len({g.id for g in guests}) == 45
    assert {g.event_id for g in guests} == {"evt_006"}
    assert None in {g.email for g in guests}  # a guest without an e-mail address is kept
    assert guests[0] == Guest(
        id="gst_006_01",
        event_id="evt_006",
        name="Hana García",
        email="hana.garcia.1@example.com",
        status="attended",
        segment="general",
    )
    assert connected.api.paths() == ["/v1/events/evt_006/guests"] * 3  # 20 + 20 + 5


def test_an_unknown_event_is_an_evencio_error_404(connected: Sandbox) -> None:
    for call in (
        lambda evencio: evencio.event("evt_999"),
        lambda evencio: collect(evencio.guests("evt_999")),
    ):
        error = raised(connected, call, EvencioError)
        assert (error.status, error.error) == (404, "not_found")
        assert "HTTP 404" in str(error)
        assert "/v1/events/evt_999" in str(error)


def test_an_id_stays_one_path_segment(connected: Sandbox) -> None:
    error = raised(connected, lambda evencio: evencio.event("evt_001?limit=1"), EvencioError)
    assert error.status == 404  # not evt_001: the ? is part of the id
    for bad in ("", " ", ".", ".."):
        refused = raised(connected, partial(EvencioClient.event, event_id=bad), ValueError)
        assert "an Evencio id is a non-empty string" in str(refused)
    assert connected.api.requests == [("GET", "/v1/events/evt_001?limit=1", {})]


def test_a_scope_the_user_did_not_grant_is_a_clear_error(sandbox: Sandbox) -> None:
    sandbox.connect(scopes=["events:read", "venues:read", "offline_access"])

    error = raised(sandbox, lambda evencio: collect(evencio.guests("evt_001")), EvencioError)

    assert (error.status, error.error, error.scope) == (403, "insufficient_scope", "guests:read")
    assert "lacks the scope guests:read" in str(error)
    assert "connect Evencio again" in str(error)
    assert len(events(sandbox)) == 60  # what was granted still works


def test_a_revoked_token_is_renewed_once_and_the_call_succeeds(connected: Sandbox) -> None:
    access, _refresh = connected.tokens()
    connected.revoke(access)

    assert len(events(connected)) == 60

    assert connected.handle.provider.token_requests == ["authorization_code", "refresh_token"]
    assert connected.tokens()[0] != access
    # The refused attempt was answered by the provider; the replay reached the API.
    assert connected.api.paths() == ["/v1/events"]
    assert connected.status()["connected"] is True


def test_a_revoked_grant_is_connectors_core_s_needs_reauth_unchanged(connected: Sandbox) -> None:
    _access, refresh = connected.tokens()
    connected.revoke(refresh)  # the whole grant: access and refresh tokens

    error = raised(connected, lambda evencio: evencio.event("evt_001"), NeedsReauthError)

    assert type(error) is NeedsReauthError  # not wrapped
    assert connected.status()["error"] == "needs_reauth"


def test_not_connected_is_connectors_core_s_error_unchanged(sandbox: Sandbox) -> None:
    error = raised(sandbox, lambda evencio: evencio.event("evt_001"), NotConnectedError)
    assert type(error) is NotConnectedError  # not wrapped


def test_no_answer_is_an_evencio_error() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]

    async def main() -> None:
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await EvencioClient(http).event("evt_001")

    with pytest.raises(EvencioError) as info:
        anyio.run(main)
    assert (info.value.status, info.value.error) == (None, "unreachable")


def test_page_size_is_1_to_100(sandbox: Sandbox) -> None:
    async def wrap(size: int) -> None:
        async with httpx2.AsyncClient() as http:
            EvencioClient(http, page_size=size)

    for size in (0, 101):
        with pytest.raises(ValueError, match="page_size"):
            anyio.run(wrap, size)
        with pytest.raises(ValueError, match="page_size"):
            events(sandbox, page_size=size)  # before the (missing) connection is looked up


# --- answers of another shape: a tiny API mounted behind the provider instead ------------

LEAK = "tok-9f8e7d6c5b4a"
"""A value in a malformed answer: an error names where and what, never the value."""

GOOD = {
    "id": "evt_001",
    "name": "Launch",
    "startsAt": "2025-01-06T18:00:00Z",
    "endsAt": None,
    "status": "scheduled",
    "venueId": None,
}


def page(*items: object, next_cursor: str | None = None) -> dict[str, Any]:
    return {"data": list(items), "nextCursor": next_cursor}


def serving(answer: Response) -> Starlette:
    async def events(request: Request) -> Response:
        return answer

    return Starlette(routes=[Route("/v1/events", events)])


@pytest.mark.parametrize(
    ("answer", "where"),
    [
        (
            Response(f"<html>{LEAK}</html>", 200, media_type="text/html"),
            "$: expected a JSON document",
        ),
        (JSONResponse([GOOD]), "$: expected an object, got an array"),
        (JSONResponse({"data": {"id": LEAK}}), "$.data: expected an array, got an object"),
        (JSONResponse(page(GOOD, LEAK)), "$.data[1]: expected an object, got a string"),
        (
            JSONResponse(page(GOOD, {**GOOD, "startsAt": None})),
            "$.data[1].startsAt: expected a non-empty string, got null",
        ),
        (
            JSONResponse(page({**GOOD, "startsAt": LEAK})),
            "$.data[0].startsAt: expected an ISO 8601",
        ),
        (
            JSONResponse(page({**GOOD, "startsAt": "2025-01-06T18:00:00"})),
            "$.data[0].startsAt: expected an ISO 8601 date-time with a time zone",
        ),
        (
            JSONResponse(page({**GOOD, "endsAt": "2025-01-06T17:00:00Z"})),
            "$.data[0].endsAt: expected a date-time no earlier than startsAt",
        ),
        (JSONResponse(page(GOOD, next_cursor=LEAK)), "$.nextCursor: expected a cursor not given"),
        (
            JSONResponse({**page(GOOD), "nextCursor": 7}),
            "$.nextCursor: expected a non-empty string",
        ),
    ],
)
def test_an_answer_of_another_shape_is_an_evencio_error(
    connected: Sandbox, answer: Response, where: str
) -> None:
    connected.handle.provider.mount_api("evencio", serving(answer))
    seen: list[Event] = []

    async def main() -> None:
        async with EvencioClient.connect(connected.connections, connected.tenant) as evencio:
            async for event in evencio.events():
                seen.append(event)

    with pytest.raises(EvencioError) as info:
        connected.run(main)

    assert info.value.error == "malformed_answer"
    assert info.value.status == 200
    assert str(info.value).startswith("Evencio's answer to GET /v1/events is not of the documented")
    assert where in str(info.value)
    assert LEAK not in str(info.value)
    # A page is read whole first: nothing of a malformed page reaches the job.
    assert seen == ([Event.from_json(GOOD)] if "nextCursor: expected a cursor" in where else [])


def test_an_error_answer_without_a_code_is_an_evencio_error_with_its_status(
    connected: Sandbox,
) -> None:
    connected.handle.provider.mount_api(
        "evencio", serving(Response(f"<h1>{LEAK}</h1>", 500, media_type="text/html"))
    )
    error = raised(connected, lambda evencio: collect(evencio.events()), EvencioError)
    assert (error.status, error.error) == (500, "http_error")
    assert str(error) == "Evencio answered GET /v1/events with HTTP 500"
