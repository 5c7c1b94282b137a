"""The wire of the strict provider: OAuth error responses, request bodies, pages.

Bodies are read as strictly as RFC 6749 asks: a form (or, for a client that
declares it, a JSON object of strings) that gives each parameter once.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SANDBOX_LABEL = "Sandbox OAuth provider — not a real service"
BODY_KINDS = {"application/x-www-form-urlencoded": "form", "application/json": "json"}


class OAuthError(Exception):
    """An OAuth error response (RFC 6749 §5.2)."""

    def __init__(self, error: str, description: str | None = None, status: int = 0) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status or (401 if error == "invalid_client" else 400)

    def response(self) -> Response:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        if self.status == 401:
            return json_body(body, 401, {"WWW-Authenticate": 'Basic realm="oauth"'})
        return json_body(body, self.status)


def basic_credentials(header: str) -> tuple[str, str]:
    """Client id and secret from HTTP Basic, form-decoded as RFC 6749 §2.3.1 requires."""
    scheme, _, encoded = header.partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError(scheme)
        client_id, separator, secret = (
            base64.b64decode(encoded, validate=True).decode().partition(":")
        )
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
        raise OAuthError("invalid_client") from None
    if not separator:
        raise OAuthError("invalid_client")
    return unquote_plus(client_id), unquote_plus(secret)


async def read_form(request: Request) -> dict[str, str] | None:
    """The form body, or None when it is not a form or repeats a parameter (RFC 6749 §3.2)."""
    kind, form = await read_body(request)
    return form if kind == "form" else None


async def read_body(request: Request) -> tuple[str, dict[str, str] | None]:
    """The kind of body (``form``, ``json`` or ``""``) and its parameters.

    The parameters are None unless the body is a form or a JSON object of
    strings that gives each parameter once.
    """
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    kind = BODY_KINDS.get(content_type, "")
    if not kind:
        return kind, None
    try:
        text = (await request.body()).decode()
    except UnicodeDecodeError:
        return kind, None
    pairs = parse_qsl(text, keep_blank_values=True) if kind == "form" else json_pairs(text)
    if pairs is None:
        return kind, None
    form = dict(pairs)
    return kind, form if len(form) == len(pairs) else None


class Members(list[tuple[str, Any]]):
    """The members of a JSON object in order, repeated names kept."""


def json_pairs(text: str) -> list[tuple[str, str]] | None:
    """The members of a JSON object whose values are all strings, or None."""
    try:
        value = json.loads(text, object_pairs_hook=Members)
    except ValueError:
        return None
    if not isinstance(value, Members) or not all(isinstance(v, str) for _, v in value):
        return None
    return list(value)


def valid_form(form: dict[str, str] | None, kind: str = "form") -> dict[str, str]:
    if form is None:
        body = "a JSON object of strings" if kind == "json" else "a form"
        raise OAuthError("invalid_request", f"the body must be {body}, each parameter once")
    return form


def json_body(
    body: Mapping[str, object], status: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(dict(body), status, headers={**NO_STORE, **(headers or {})})


def redirect(uri: str, status: int, **params: str | None) -> Response:
    """Redirect to `uri` with `params` added to the query it already has."""
    parts = urlsplit(uri)
    added = urlencode({name: value for name, value in params.items() if value is not None})
    query = f"{parts.query}&{added}" if parts.query else added
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status, headers=NO_STORE)


def page(body: str, status: int) -> HTMLResponse:
    document = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{SANDBOX_LABEL}</title></head><body>\n"
        f"<p><strong>{SANDBOX_LABEL}</strong></p>{body}\n</body></html>\n"
    )
    # The consent page must not be framed: that would allow clickjacking the Approve button.
    headers = {
        **NO_STORE,
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    }
    return HTMLResponse(document, status, headers=headers)


def error_page(message: str) -> HTMLResponse:
    return page(f"\n<p>{html.escape(message)}</p>", 400)
