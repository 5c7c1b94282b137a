"""A small typed client of Evencio's API, on connectors-core's authenticated client.

::

    async with EvencioClient.connect(connections, tenant) as evencio:
        async for event in evencio.events():
            ...

:meth:`Connections.client <connectors_core.connections.Connections.client>`
does the credentials (a token renewed when due, renewed and replayed once
on a 401), the retries and the allowed hosts; this module knows Evencio's
paths, its pagination and the shape of its answers. Evencio's error answers
and answers of another shape become :class:`EvencioError`; connectors-core's
own errors pass through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx2

from ._errors import EvencioError
from ._manifest import EVENCIO
from ._models import Event, Guest, Page, ShapeError, Venue

if TYPE_CHECKING:
    from connectors_core.connections import Connections

__all__ = ["MAX_PAGE_SIZE", "EvencioClient"]

MAX_PAGE_SIZE = 100
"""The most items Evencio answers in one page (its ``limit`` is 1 to 100)."""

_T = TypeVar("_T")
# Evencio's error codes are short snake_case words; anything else is not repeated.
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SCOPE = re.compile(r"[a-z][a-z0-9_.-]{0,63}:[a-z][a-z0-9_.-]{0,63}")


class EvencioClient:
    """Evencio's API for one connection: events, venues and guest lists, typed.

    Open it with :meth:`connect` for a tenant's connection, or wrap an
    ``httpx2.AsyncClient`` on Evencio's API that already sends credentials
    (one that ``connections.client(tenant, "evencio")`` yielded).

    Every method raises :class:`EvencioError` when Evencio answers with an
    error (its ``status``: 403 for a scope the connection lacks, 404 for an
    unknown id, ...), with an answer that is not of the documented shape,
    or not at all. connectors-core's errors pass through unchanged:
    ``NeedsReauthError`` (the user must connect again), ``HostNotAllowedError``,
    and, from :meth:`connect`, ``NotConnectedError``.

    :param http: the authenticated client; its base URL is Evencio's API.
    :param page_size: items asked for per page of a list (1 to 100).
    """

    def __init__(self, http: httpx2.AsyncClient, *, page_size: int = MAX_PAGE_SIZE) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1 to {MAX_PAGE_SIZE}, not {page_size}")
        self._http = http
        self._page_size = page_size

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        connections: Connections,
        tenant: str,
        *,
        page_size: int = MAX_PAGE_SIZE,
        timeout: float | None = None,
    ) -> AsyncIterator[EvencioClient]:
        """The client of ``tenant``'s Evencio connection, for as long as the block lasts::

            async with EvencioClient.connect(connections, tenant) as evencio:
                event = await evencio.event("evt_001")

        :param connections: the host's :class:`~connectors_core.connections.Connections`.
        :param tenant: whose connection to use.
        :param page_size: items asked for per page of a list (1 to 100).
        :param timeout: seconds per request; the server's setting by default.
        :raises NotConnectedError: the tenant has not connected Evencio.
        :raises NeedsReauthError: the connection needs the user again.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:  # before a connection is opened for nothing
            raise ValueError(f"page_size must be 1 to {MAX_PAGE_SIZE}, not {page_size}")
        async with connections.client(tenant, EVENCIO.id, timeout=timeout) as http:
            yield cls(http, page_size=page_size)

    def events(self) -> AsyncIterator[Event]:
        """Every event of the organization, page after page (``GET /v1/events``).

        Needs the ``events:read`` scope. Pages are asked for as the
        iteration reaches them, so stopping early asks for no more.
        """
        return self._every("/v1/events", Event.from_json)

    async def event(self, event_id: str) -> Event:
        """One event, by its id (``GET /v1/events/{id}``).

        Needs the ``events:read`` scope.

        :raises EvencioError: with ``status`` 404 for an id Evencio does not know.
        :raises ValueError: ``event_id`` cannot be an id (empty, ``.`` or ``..``).
        """
        path = f"/v1/events/{_segment(event_id)}"
        status, body = await self._get(path)
        return _read(path, status, body, Event.from_json)

    def venues(self) -> AsyncIterator[Venue]:
        """Every venue of the organization, page after page (``GET /v1/venues``).

        Needs the ``venues:read`` scope.
        """
        return self._every("/v1/venues", Venue.from_json)

    def guests(self, event_id: str) -> AsyncIterator[Guest]:
        """Everyone on an event's guest list, page after page (``GET /v1/events/{id}/guests``).

        Needs the ``guests:read`` scope.

        :raises EvencioError: with ``status`` 404 for an event Evencio does not know
            (when the first page is asked for).
        :raises ValueError: ``event_id`` cannot be an id (empty, ``.`` or ``..``).
        """
        return self._every(f"/v1/events/{_segment(event_id)}/guests", Guest.from_json)

    # --- the requests -------------------------------------------------------------------

    async def _every(self, path: str, read: Callable[[object, str], _T]) -> AsyncIterator[_T]:
        """Each item of every page of a list, following ``nextCursor`` to the last page.

        A page is read whole before any of it is yielded: a malformed page
        yields nothing of itself.
        """
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params = {"limit": str(self._page_size)}
            if cursor is not None:
                params["cursor"] = cursor
            status, body = await self._get(path, params)
            page = _read(path, status, body, Page.from_json)
            items = [
                _read(path, status, item, read, f"$.data[{index}]")
                for index, item in enumerate(page.items)
            ]
            cursor = page.next_cursor
            if cursor is not None and cursor in seen:  # a loop must not become an endless job
                raise _malformed(path, status, "$.nextCursor", "a cursor not given before")
            for item in items:
                yield item
            if cursor is None:
                return
            seen.add(cursor)

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> tuple[int, Any]:
        """The status and JSON of Evencio's answer to ``GET path``, which must be a success."""
        try:
            response = await self._http.get(path, params=params)
        except httpx2.TransportError as exc:
            raise EvencioError(
                f"Evencio did not answer GET {path} ({type(exc).__name__})",
                status=None,
                error="unreachable",
                path=path,
            ) from exc
        if not response.is_success:
            raise _http_error(path, response)
        try:
            return response.status_code, response.json()
        except ValueError:  # not JSON, or not decodable text
            raise _malformed(path, response.status_code, "$", "a JSON document") from None


def _read(
    path: str, status: int, value: object, read: Callable[[object, str], _T], where: str = "$"
) -> _T:
    """``read(value, where)``, a shape error becoming an ``EvencioError`` about ``path``."""
    try:
        return read(value, where)
    except ShapeError as exc:
        raise _malformed(path, status, exc.where, exc.expected) from None


def _segment(event_id: str) -> str:
    """``event_id`` as one path segment: it can never change the path it goes into."""
    if event_id.strip() in ("", ".", ".."):
        raise ValueError("an Evencio id is a non-empty string other than '.' and '..'")
    return quote(event_id, safe="")


def _malformed(path: str, status: int, where: str, expected: str) -> EvencioError:
    return EvencioError(
        f"Evencio's answer to GET {path} is not of the documented shape: "
        f"{where}: expected {expected}",
        status=status,
        error="malformed_answer",
        path=path,
    )


def _http_error(path: str, response: httpx2.Response) -> EvencioError:
    """An ``EvencioError`` for an error answer, with Evencio's code when it gives one."""
    status = response.status_code
    code: str | None = None
    scope: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        given = body.get("error")
        if isinstance(given, str) and _ERROR_CODE.fullmatch(given):
            code = given
        wanted = body.get("scope")
        if isinstance(wanted, str) and _SCOPE.fullmatch(wanted):
            scope = wanted
    message = f"Evencio answered GET {path} with HTTP {status}"
    if code == "insufficient_scope":
        lacking = f"the scope {scope}" if scope else "a scope this request needs"
        message += (
            f" (insufficient_scope): the connection lacks {lacking}; "
            "connect Evencio again and approve it"
        )
    elif code is not None:
        message += f" ({code})"
    return EvencioError(message, status=status, error=code or "http_error", path=path, scope=scope)
