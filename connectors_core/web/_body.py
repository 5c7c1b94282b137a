"""Reading the small bodies of the state-changing routes: bounded, strict, never a 500.

A body is read up to :data:`MAX_BODY` bytes whatever ``Content-Length``
claims, must be a form or JSON in UTF-8, and may carry only the fields its
route takes (each once). Anything else is an :class:`IntegrationError` with a
4xx reason code, which the routes answer as JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request

from .._exceptions import IntegrationError

__all__ = [
    "FORM",
    "JSON",
    "MAX_BODY",
    "MAX_FIELDS",
    "csrf_failed",
    "form_token",
    "media_type",
    "parse",
    "read_body",
    "rejected",
]

MAX_BODY = 8 * 1024
MAX_FIELDS = 64
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def rejected(reason: str, message: str) -> IntegrationError:
    """The error a route answers for a body it cannot take."""
    return IntegrationError(message, reason=reason)


def csrf_failed() -> IntegrationError:
    """The error for a request that failed its CSRF check."""
    return rejected("csrf_failed", "missing or invalid CSRF token, or a cross-site request")


def _shown(name: str) -> str:
    """A field name fit to quote back: plain names only, never arbitrary client text."""
    return repr(name) if _PLAIN_NAME.fullmatch(name) else "with an unusual name"


async def read_body(request: Request) -> bytes:
    """The request body, at most :data:`MAX_BODY` bytes, whatever Content-Length claims."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise rejected("invalid_request", "Content-Length is not a number")
        if int(declared) > MAX_BODY:
            raise rejected("payload_too_large", f"the body may be at most {MAX_BODY} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:  # a chunked body, or one longer than it said
                raise rejected("payload_too_large", f"the body may be at most {MAX_BODY} bytes")
    except ClientDisconnect:
        raise rejected("invalid_request", "the body ended before its declared length") from None
    return bytes(body)


def media_type(request: Request) -> str:
    """The body's media type, lower-cased ("" when none is declared); UTF-8 only."""
    value = request.headers.get("content-type", "")
    kind, _, parameters = value.partition(";")
    for parameter in parameters.split(";"):
        name, _, charset = parameter.partition("=")
        if name.strip().lower() == "charset" and charset.strip(' "').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise rejected("unsupported_media_type", "the body must be UTF-8")
    return kind.strip().lower()


def form_token(body: bytes) -> str | None:
    """The form's csrf_token when it has exactly one, read leniently (the check comes later)."""
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    tokens = {value for name, value in pairs if name == "csrf_token"}
    return tokens.pop() if len(tokens) == 1 else None


def parse(request: Request, body: bytes, names: Mapping[str, str]) -> dict[str, str]:
    """The fields of a form or JSON body (by their form names), or a 4xx reason."""
    kind = media_type(request)
    if kind not in (FORM, JSON, ""):
        raise rejected("unsupported_media_type", f"send {FORM} or {JSON}")
    if not body:
        return {}
    if kind == "":
        raise rejected("unsupported_media_type", f"a body needs a Content-Type: {FORM} or {JSON}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise rejected("invalid_request", "the body is not UTF-8") from None
    return _form_fields(text, names) if kind == FORM else _json_fields(text, names)


def _form_fields(text: str, names: Mapping[str, str]) -> dict[str, str]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except UnicodeDecodeError:
        raise rejected("invalid_request", "a form value is not UTF-8") from None
    except ValueError:
        raise rejected("invalid_request", f"a form may have at most {MAX_FIELDS} fields") from None
    fields: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise rejected("invalid_request", f"the field {_shown(name)} is sent more than once")
        seen.add(name)
        if name != "csrf_token":
            if name not in names:
                raise rejected("invalid_request", _unexpected(name, ["csrf_token", *names]))
            fields[name] = value
    return fields


def _json_fields(text: str, names: Mapping[str, str]) -> dict[str, str]:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        for key in keys:
            if keys.count(key) > 1:
                raise rejected("invalid_request", f"the field {_shown(key)} is sent more than once")
        return dict(pairs)

    def constant(name: str) -> None:
        raise rejected("invalid_request", f"{name} is not JSON")

    try:
        data = json.loads(text, object_pairs_hook=unique, parse_constant=constant)
    except RecursionError:
        raise rejected("invalid_request", "the JSON body is nested too deeply") from None
    except ValueError:
        raise rejected("invalid_request", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise rejected("invalid_request", "the body must be a JSON object")
    by_json = {json_name: name for name, json_name in names.items()}
    fields: dict[str, str] = {}
    for key, value in data.items():
        if key not in by_json:
            raise rejected("invalid_request", _unexpected(key, list(by_json)))
        if not isinstance(value, str):
            raise rejected("invalid_request", f"{key} must be a string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, such as "\ud800"
            raise rejected("invalid_request", f"{key} is not valid Unicode") from None
        fields[by_json[key]] = value
    return fields


def _unexpected(name: str, expected: list[str]) -> str:
    takes = ", ".join(expected) if expected else "no fields"
    return f"unexpected field {_shown(name)}; this route takes {takes}"
