"""Events, venues and guests as Evencio's API answers them, read defensively.

Each class is frozen and typed; ``from_json`` reads one item of an answer
and raises :class:`ShapeError` (naming the JSON path and what was expected,
never the value found) when it is not of the documented shape. Unknown keys
are ignored: Evencio may add fields without breaking a job.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

__all__ = ["Event", "Guest", "Page", "ShapeError", "Venue"]


class ShapeError(ValueError):
    """An answer is not of the documented shape (the client turns it into an ``EvencioError``).

    :ivar where: the JSON path of the offending value, such as ``$.data[3].startsAt``.
    :ivar expected: what the documented shape has there.
    """

    def __init__(self, where: str, expected: str) -> None:
        super().__init__(f"{where}: expected {expected}")
        self.where = where
        self.expected = expected


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ShapeError(where, f"an object, got {_kind(value)}")
    return value


def _text(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ShapeError(f"{where}.{key}", f"a non-empty string, got {_kind(value)}")
    return value


def _optional_text(item: Mapping[str, Any], key: str, where: str) -> str | None:
    if item.get(key) is None:
        return None
    return _text(item, key, where)


def _moment(item: Mapping[str, Any], key: str, where: str) -> datetime:
    value = _text(item, key, where)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ShapeError(f"{where}.{key}", "an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise ShapeError(f"{where}.{key}", "an ISO 8601 date-time with a time zone")
    return moment


def _optional_moment(item: Mapping[str, Any], key: str, where: str) -> datetime | None:
    return None if item.get(key) is None else _moment(item, key, where)


def _kind(value: object) -> str:
    """The JSON type of ``value`` (what an error names instead of the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, Mapping) else type(value).__name__


@attrs.frozen
class Venue:
    """A place where Evencio events happen (``GET /v1/venues``)."""

    id: str
    """Evencio's id of the venue (``venueId`` of its events), such as ``ven_01``."""

    name: str
    """The venue's display name."""

    city: str
    """The city the venue is in."""

    country: str
    """The country the venue is in, as an ISO 3166-1 alpha-2 code (``DE``, ``GB``)."""

    @classmethod
    def from_json(cls, value: object, where: str = "$") -> Venue:
        """Read one venue of an answer.

        :raises ShapeError: it is not of the documented shape.
        """
        item = _object(value, where)
        return cls(
            id=_text(item, "id", where),
            name=_text(item, "name", where),
            city=_text(item, "city", where),
            country=_text(item, "country", where),
        )


@attrs.frozen
class Event:
    """An event of the connected organization (``GET /v1/events``)."""

    id: str
    """Evencio's id of the event, such as ``evt_001``; what :meth:`EvencioClient.event` takes."""

    name: str
    """The event's title."""

    starts_at: datetime
    """When the event starts, time-zone aware (wire: ``startsAt``)."""

    ends_at: datetime | None
    """When the event ends, time-zone aware (wire: ``endsAt``); None when open-ended."""

    status: str
    """``scheduled``, ``completed`` or ``cancelled`` (a newer status is passed on as is)."""

    venue_id: str | None
    """The :class:`Venue` it takes place at (wire: ``venueId``); None for an online event."""

    @classmethod
    def from_json(cls, value: object, where: str = "$") -> Event:
        """Read one event of an answer.

        :raises ShapeError: it is not of the documented shape, or ends before it starts.
        """
        item = _object(value, where)
        event = cls(
            id=_text(item, "id", where),
            name=_text(item, "name", where),
            starts_at=_moment(item, "startsAt", where),
            ends_at=_optional_moment(item, "endsAt", where),
            status=_text(item, "status", where),
            venue_id=_optional_text(item, "venueId", where),
        )
        if event.ends_at is not None and event.ends_at < event.starts_at:
            raise ShapeError(f"{where}.endsAt", "a date-time no earlier than startsAt")
        return event


@attrs.frozen
class Guest:
    """A person on an event's guest list (``GET /v1/events/{id}/guests``)."""

    id: str
    """Evencio's id of the guest entry, such as ``gst_001_01``."""

    event_id: str
    """The :class:`Event` whose guest list it is on (wire: ``eventId``)."""

    name: str
    """The guest's full name."""

    email: str | None
    """The guest's e-mail address, None when the guest gave none."""

    status: str
    """``invited``, ``registered``, ``attended`` or ``declined`` (a newer one as is)."""

    segment: str | None
    """The organizer's segment for the guest (``vip``, ``press``, ``sponsor``,
    ``general``), None when unsegmented."""

    @classmethod
    def from_json(cls, value: object, where: str = "$") -> Guest:
        """Read one guest of an answer.

        :raises ShapeError: it is not of the documented shape.
        """
        item = _object(value, where)
        return cls(
            id=_text(item, "id", where),
            event_id=_text(item, "eventId", where),
            name=_text(item, "name", where),
            email=_optional_text(item, "email", where),
            status=_text(item, "status", where),
            segment=_optional_text(item, "segment", where),
        )


@attrs.frozen
class Page:
    """One page of a list answer: ``{"data": [...], "nextCursor": "..." | null}``."""

    items: tuple[object, ...]
    """The page's items, not read yet (``data``)."""

    next_cursor: str | None
    """Where the next page starts (``nextCursor``); None on the last page."""

    @classmethod
    def from_json(cls, value: object, where: str = "$") -> Page:
        """Read the envelope of a list answer.

        :raises ShapeError: it is not of the documented shape.
        """
        body = _object(value, where)
        data = body.get("data")
        if not isinstance(data, list):
            raise ShapeError(f"{where}.data", f"an array, got {_kind(data)}")
        return cls(tuple(data), _optional_text(body, "nextCursor", where))
