"""A stand-in for Evencio's API, with deterministic sample data (the ``sandbox_api`` hook).

connectors-core serves it behind its strict local provider (``connectors serve
--demo``, the contract suite, the ``oauth_provider`` fixture), which answers
401 itself to a request without a valid access token and tells this app who
is calling in ``X-Sandbox-User-Id``, ``X-Sandbox-Organization-Id`` and
``X-Sandbox-Scopes``. Like the real API it enforces scopes and paginates:

==========================================  ===============  =============================
route                                       scope            answer
==========================================  ===============  =============================
``GET /oauth/status``                       (any token)      ``{userId, organizationId,
                                                             clientId, scopes}``
``GET /v1/events?limit=&cursor=``           ``events:read``  a page of events
``GET /v1/events/{id}``                     ``events:read``  one event, or 404
``GET /v1/venues?limit=&cursor=``           ``venues:read``  a page of venues
``GET /v1/events/{id}/guests?limit=&...``   ``guests:read``  a page of the event's guests
==========================================  ===============  =============================

A page is ``{"data": [...], "nextCursor": "<opaque>" | null}``; ``limit`` is
1 to 100 (default 25). A missing scope is ``403 {"error": "insufficient_scope",
"scope": ...}``; errors are JSON ``{"error": code, "message": ...}``.

Starlette comes with connectors-core's ``server`` extra, present wherever a
sandbox runs; this module is imported only by the hook.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["DEFAULT_LIMIT", "EVENTS", "GUESTS", "MAX_LIMIT", "VENUES", "create_app"]

DEFAULT_LIMIT = 25
"""Items per page when a request gives no ``limit``."""

MAX_LIMIT = 100
"""The largest ``limit`` accepted."""

CLIENT_ID = "sandbox"
"""The ``clientId`` ``/oauth/status`` answers."""

# --- the sample data: the same on every start, for every organization ---------------------

_VENUES = (
    ("Harbour Hall", "Hamburg", "DE"),
    ("The Glasshouse", "London", "GB"),
    ("Canal Works", "Amsterdam", "NL"),
    ("Salle Lumière", "Paris", "FR"),
    ("Riverside Pavilion", "Dublin", "IE"),
    ("Kulturbrauerei Loft", "Berlin", "DE"),
)
_THEMES = (
    "Spring Product Launch",
    "Founders Breakfast",
    "Design Week Meetup",
    "Partner Summit",
    "Rooftop Summer Party",
    "Customer Roadshow",
    "Community Hackathon",
    "Analytics Masterclass",
    "Charity Gala",
    "Year-End Showcase",
)
_FIRST = ("Ada", "Bruno", "Chloé", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Ivo", "June")
_LAST = ("Achebe", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Hall", "Ito")
_GUEST_STATUSES = ("registered", "invited", "attended", "registered", "declined")
_SEGMENTS = ("general", "vip", "general", "press", "sponsor", "general", None)
_FIRST_START = datetime(2025, 1, 6, 18, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _venues() -> tuple[dict[str, Any], ...]:
    return tuple(
        {"id": f"ven_{n:02d}", "name": name, "city": city, "country": country}
        for n, (name, city, country) in enumerate(_VENUES, start=1)
    )


def _event(n: int) -> dict[str, Any]:
    """Event number ``n`` (from 1): every 15th is online, every 20th open-ended."""
    starts = _FIRST_START + timedelta(days=6 * (n - 1))
    status = "cancelled" if n % 11 == 0 else "completed" if n <= 30 else "scheduled"
    return {
        "id": f"evt_{n:03d}",
        "name": f"{_THEMES[(n - 1) % len(_THEMES)]} #{(n - 1) // len(_THEMES) + 1}",
        "startsAt": _iso(starts),
        "endsAt": None if n % 20 == 0 else _iso(starts + timedelta(hours=3)),
        "status": status,
        "venueId": None if n % 15 == 0 else f"ven_{(n - 1) % len(_VENUES) + 1:02d}",
    }


def _guests(n: int) -> tuple[dict[str, Any], ...]:
    """The guest list of event ``n``: 3 to 47 guests, so some lists take several pages."""
    guests = []
    for g in range(1, (n * 7) % 45 + 4):
        first, last = _FIRST[(n + g) % len(_FIRST)], _LAST[(n * g) % len(_LAST)]
        plain = unicodedata.normalize("NFKD", f"{first}.{last}.{g}".lower())
        local = plain.encode("ascii", "ignore").decode()  # chloé -> chloe
        guests.append(
            {
                "id": f"gst_{n:03d}_{g:02d}",
                "eventId": f"evt_{n:03d}",
                "name": f"{first} {last}",
                "email": None if (n + g) % 17 == 0 else f"{local}@example.com",
                "status": _GUEST_STATUSES[(n + g) % len(_GUEST_STATUSES)],
                "segment": _SEGMENTS[(n * 3 + g) % len(_SEGMENTS)],
            }
        )
    return tuple(guests)


VENUES = _venues()
"""The sample venues (6), as the API answers them."""

EVENTS = tuple(_event(n) for n in range(1, 61))
"""The sample events (60, over the venues and a few online), as the API answers them."""

GUESTS = {event["id"]: _guests(n) for n, event in enumerate(EVENTS, start=1)}
"""Each sample event's guest list, by event id."""

_EVENTS_BY_ID = {event["id"]: event for event in EVENTS}

# --- the API ---------------------------------------------------------------------------------


class _Refused(Exception):
    """An error answer: raised by the checks, turned into JSON by the app."""

    def __init__(self, status: int, error: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": error, "message": message, **extra}
        self.headers: dict[str, str] = {}
        if error == "insufficient_scope":  # RFC 6750 §3.1
            scope = extra["scope"]
            self.headers["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{scope}"'


def _caller_scopes(request: Request) -> frozenset[str]:
    """The scopes of the caller's token, as the provider in front of this app says."""
    if not request.headers.get("x-sandbox-user-id"):
        # Only the provider reaches this app, and it always says who calls.
        raise _Refused(401, "invalid_token", "the request carries no valid access token")
    return frozenset(request.headers.get("x-sandbox-scopes", "").split())


def _require(request: Request, scope: str) -> None:
    if scope not in _caller_scopes(request):
        raise _Refused(
            403,
            "insufficient_scope",
            f"this request needs the {scope} scope, which the access token lacks",
            scope=scope,
        )


def _page(request: Request, items: Sequence[dict[str, Any]]) -> Response:
    """``{"data": [...], "nextCursor": ...}``: the page ``limit`` and ``cursor`` ask for."""
    raw_limit = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise _Refused(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    limit = int(raw_limit)
    start = 0
    if (cursor := request.query_params.get("cursor")) is not None:
        start = _offset(cursor, len(items))
    end = start + limit
    following = _cursor(end) if end < len(items) else None
    return JSONResponse({"data": list(items[start:end]), "nextCursor": following})


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str, size: int) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition(":")
        offset = int(number) if kind == "offset" and number.isdigit() else -1
    except (binascii.Error, UnicodeDecodeError, ValueError):
        offset = -1
    if not 0 < offset < size:
        raise _Refused(400, "invalid_cursor", "cursor is not one this API gave")
    return offset


def _known_event(request: Request) -> dict[str, Any]:
    event = _EVENTS_BY_ID.get(request.path_params["event_id"])
    if event is None:
        raise _Refused(404, "not_found", "there is no event with this id")
    return event


async def _status(request: Request) -> Response:
    scopes = _caller_scopes(request)
    return JSONResponse(
        {
            "userId": request.headers["x-sandbox-user-id"],
            "organizationId": request.headers.get("x-sandbox-organization-id", ""),
            "clientId": CLIENT_ID,
            "scopes": sorted(scopes),
        }
    )


async def _events(request: Request) -> Response:
    _require(request, "events:read")
    return _page(request, EVENTS)


async def _one_event(request: Request) -> Response:
    _require(request, "events:read")
    return JSONResponse(_known_event(request))


async def _venue_list(request: Request) -> Response:
    _require(request, "venues:read")
    return _page(request, VENUES)


async def _guest_list(request: Request) -> Response:
    _require(request, "guests:read")
    return _page(request, GUESTS[_known_event(request)["id"]])


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Refused)
    return JSONResponse(exc.body, exc.status, exc.headers)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
    return JSONResponse({"error": error, "message": exc.detail}, exc.status_code, exc.headers)


def create_app() -> Starlette:
    """The sandbox API: a new Starlette app over the (shared, read-only) sample data."""
    return Starlette(
        routes=[
            Route("/oauth/status", _status, methods=["GET"]),
            Route("/v1/events", _events, methods=["GET"]),
            Route("/v1/events/{event_id}", _one_event, methods=["GET"]),
            Route("/v1/events/{event_id}/guests", _guest_list, methods=["GET"]),
            Route("/v1/venues", _venue_list, methods=["GET"]),
        ],
        exception_handlers={_Refused: _refused, HTTPException: _http_exception},
    )
