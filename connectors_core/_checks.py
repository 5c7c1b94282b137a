"""The checks of single manifest values, each with the JSON Schema that says the same.

A check takes a structured value and raises :class:`Invalid` (with a
``subpath`` below the value, for an item of an array or a key of a map);
:func:`schema` attaches to it the JSON Schema fragment that expresses it, so
:mod:`connectors_core._jsonschema` publishes exactly what
:func:`~connectors_core.define_connector` enforces. The converter
(:mod:`connectors_core._converter`) applies them field by field.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ._fields import FIELD_ID, Placeholder, placeholders

KEBAB = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
HEADER_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ID_MAX = 64
LINE_MAX = 200
TEXT_MAX = 2000
QUERY_PARAM = re.compile(r"[A-Za-z0-9_.~-]{1,64}")
VALUE_MAX = 2048


class Invalid(ValueError):
    """A rule violation found by a structure hook.

    ``subpath`` locates it below the field the hook was structuring, such as
    ``[2].id`` for a duplicate capability id.
    """

    def __init__(self, message: str, subpath: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.subpath = subpath


def camel(name: str) -> str:
    """The wire (camelCase) name of a Python (snake_case) attribute name."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def describe(value: object) -> str:
    """Name a JSON value's type, with a short excerpt of it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def did_you_mean(word: str, choices: list[str]) -> str:
    """``; did you mean 'x'?`` for the closest of ``choices``, or nothing."""
    if camel(word) in choices:
        return f"; did you mean {camel(word)!r}?"
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- rules ----------------------------------------------------------------
# Each rule carries the JSON Schema fragment that expresses it (``json_schema``),
# so the published schema is generated from the same rules that validate.
# A rule JSON Schema cannot express exactly says so in ``json_schema_note``.

Check = Callable[[Any], None]


def schema(note: str | None = None, **fragment: Any) -> Callable[[Check], Check]:
    def mark(check: Check) -> Check:
        # Metadata on the function object itself: mypy cannot see such attributes.
        check.json_schema = fragment  # type: ignore[attr-defined]
        check.json_schema_note = note  # type: ignore[attr-defined]
        return check

    return mark


@schema(minLength=1, pattern=r"\S")
def nonblank(value: str) -> None:
    if not value.strip():
        raise Invalid("must not be empty")


@schema(maxLength=LINE_MAX, pattern=r"^[^\r\n]*\S[^\r\n]*$")
def one_line(value: str) -> None:
    nonblank(value)
    if "\n" in value or "\r" in value:
        raise Invalid("must be a single line")
    if len(value) > LINE_MAX:
        raise Invalid(f"must be at most {LINE_MAX} characters, got {len(value)}")


@schema(maxLength=ID_MAX, pattern="^" + KEBAB.pattern + "$")
def kebab(value: str) -> None:
    if len(value) > ID_MAX or not KEBAB.fullmatch(value):
        raise Invalid(
            f"must be kebab-case (lowercase letters and digits in words joined by single "
            f"hyphens, starting with a letter, at most {ID_MAX} characters), got {value!r}"
        )


def host_is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_is_public(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    # A name without a dot (``intranet``) or under a reserved suffix only
    # resolves inside one network.
    reserved = (".localhost", ".local", ".internal", ".test", ".invalid", ".example")
    return "." in host and not host.endswith(reserved)


def split_url(value: str) -> tuple[str, str]:
    """Return (scheme, host) of an absolute URL, or raise Invalid."""
    if any(ch.isspace() for ch in value):
        raise Invalid(f"must be a URL without spaces, got {value!r}")
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - property access validates the port
    except ValueError as exc:
        raise Invalid(f"is not a valid URL ({exc}): {value!r}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise Invalid(f"must be an absolute http(s) URL, got {value!r}")
    if parts.username is not None or parts.password is not None:
        raise Invalid("must not contain credentials (user:password@)")
    return parts.scheme, host


# After the scheme of a public URL: no loopback, private or reserved host, no credentials.
_PUBLIC_REST = (
    r"(?!(?:localhost|127\.|10\.|192\.168\.|0\.|\[)|[^/?#\s]*\.(?:localhost|local"
    r"|internal|test|invalid|example)(?:[:/?#]|$))[^\s/?#@:]+\.[^\s/?#@:]+(?::\d+)?(?:[/?#]\S*)?"
)


@schema(
    note="an approximation: the validator also checks that an IP address is public",
    pattern=r"^https?://" + _PUBLIC_REST + "$",
)
def public_url(value: str) -> None:
    try:
        _scheme, host = split_url(value)
    except Invalid:
        host = ""
    if not host_is_public(host):
        raise Invalid(
            f"must be a public http(s) URL, got {value!r} "
            "(a repository path or a local address will not open from a web page)"
        )


ICON_PATH = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)*[A-Za-z0-9_][A-Za-z0-9_.-]*\.(?:svg|png)")
"""A resource path inside the plugin's package: ``icon.svg``, ``static/logo.png``."""
ICON_PATH_MAX = 200
ICON_URL_MAX = 2048


def icon_is_url(value: str) -> bool:
    """Whether a manifest's ``icon`` is a URL (else a resource of the plugin's package)."""
    return "://" in value or value.lower().startswith(("http:", "https:"))


@schema(
    note="an approximation: the validator also checks that an IP address is public",
    maxLength=ICON_URL_MAX,
    pattern=r"^(?:https://"
    + _PUBLIC_REST
    + rf"|(?=[^\n]{{1,{ICON_PATH_MAX}}}$)"
    + ICON_PATH.pattern
    + ")$",
)
def icon(value: str) -> None:
    if icon_is_url(value):
        if len(value) > ICON_URL_MAX:
            raise Invalid(f"must be at most {ICON_URL_MAX} characters, got {len(value)}")
        scheme, host = split_url(value)
        if scheme != "https":
            raise Invalid(f"an icon URL must use https, got {value[:60]!r}")
        if not host_is_public(host):
            raise Invalid(f"an icon URL must be public, got {value[:60]!r}")
        return
    if value.startswith("/") or "\\" in value or ":" in value:
        raise Invalid(
            f"must be an https URL or a path relative to the plugin's package, got {value[:60]!r}"
        )
    if ".." in value.split("/"):
        raise Invalid(f"must stay inside the plugin's package (no '..'), got {value[:60]!r}")
    if not value.endswith((".svg", ".png")):
        raise Invalid(f"must name an .svg or .png file, got {value[:60]!r}")
    if len(value) > ICON_PATH_MAX or not ICON_PATH.fullmatch(value):
        raise Invalid(
            "must be a relative path of letters, digits, '_', '-', '.' and '/' (no part "
            f"starting with '.' or '-', at most {ICON_PATH_MAX} characters), such as "
            f"'static/logo.svg', got {value[:60]!r}"
        )


LOCALE = re.compile(r"[a-z]{2,3}(?:-[A-Z]{2}|-[A-Za-z]{4})?")
"""A translation's locale: a language, optionally a region or a script (``fr``, ``pt-BR``)."""


def keys(check: Check) -> Check:
    """Apply ``check`` to every key of a map, reporting it at the key's path."""

    def check_keys(mapping: Mapping[str, Any]) -> None:
        for key in mapping:
            try:
                check(key)
            except Invalid as exc:
                raise Invalid(f"the key {exc.message}", f".{key[:64]}") from None

    return schema(propertyNames=dict(check.json_schema))(check_keys)  # type: ignore[attr-defined]


@schema(pattern="^" + LOCALE.pattern + "$")
def locale(value: str) -> None:
    if not LOCALE.fullmatch(value):
        raise Invalid(
            "must be a locale such as 'fr', 'de' or 'pt-BR' (a lowercase language, then "
            f"optionally '-' and an uppercase region or a four-letter script), got {value[:20]!r}"
        )


@schema(
    pattern=r"^(?:https://[^\s/?#@]+|http://(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?)"
    r"(?:[/?][^\s#]*)?$"
)
def endpoint_url(value: str) -> None:
    scheme, host = split_url(value)
    if scheme != "https" and not host_is_loopback(host):
        raise Invalid(f"must use https (plain http is allowed on loopback only), got {value!r}")
    if "#" in value:
        raise Invalid("must not contain a fragment (#...)")


@schema(pattern=r"^/(?!/)(?!.*://)[^\s\\]*$")
def server_path(value: str) -> None:
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        raise Invalid(f"must be a server path starting with a single '/', got {value!r}")
    if any(ch.isspace() for ch in value) or "://" in value:
        raise Invalid(f"must be a plain server path, got {value!r}")


@schema(pattern="^" + HEADER_TOKEN.pattern + "$")
def header_name(value: str) -> None:
    if not HEADER_TOKEN.fullmatch(value):
        raise Invalid(f"must be a valid HTTP header name, got {value!r}")


@schema(pattern="^" + EMAIL.pattern + "$")
def email(value: str) -> None:
    if not EMAIL.fullmatch(value):
        raise Invalid(f"must be an e-mail address, got {value!r}")


@schema(pattern=r"^\S+$")
def scope(value: str) -> None:
    if not value or any(ch.isspace() for ch in value):
        raise Invalid(f"must be a non-empty scope without spaces, got {value!r}")


@schema(maxLength=TEXT_MAX, pattern=r"\S")
def text(value: str) -> None:
    nonblank(value)
    if len(value) > TEXT_MAX:
        raise Invalid(f"must be at most {TEXT_MAX} characters, got {len(value)}")


RESERVED_FIELD_IDS = (
    "api_key",
    "client_id",
    "client_secret",
    "csrf_token",
    "password",
    "username",
)
"""Field ids the connect form uses for its own inputs."""


_NOT_RESERVED: dict[str, Any] = {"not": {"enum": list(RESERVED_FIELD_IDS)}}


@schema(pattern="^" + FIELD_ID.pattern + "$", **_NOT_RESERVED)
def field_id(value: str) -> None:
    if not FIELD_ID.fullmatch(value):
        raise Invalid(
            "must be a field id (a lowercase letter, then up to 39 lowercase letters, digits "
            f"or underscores), got {value!r}"
        )
    if value in RESERVED_FIELD_IDS:
        raise Invalid(f"{value!r} is reserved for the connect form's own inputs")


@schema(maxLength=500)
def regex(value: str) -> None:
    if len(value) > 500:
        raise Invalid(f"must be at most 500 characters, got {len(value)}")
    try:
        re.compile(value)
    except re.error as exc:
        raise Invalid(f"not a valid regular expression ({exc})") from None


@schema(minimum=0, maximum=VALUE_MAX)
def length(value: int) -> None:
    if not 0 <= value <= VALUE_MAX:
        raise Invalid(f"must be between 0 and {VALUE_MAX}, got {value}")


@schema(pattern="^" + QUERY_PARAM.pattern + "$")
def query_param(value: str) -> None:
    if not QUERY_PARAM.fullmatch(value):
        raise Invalid(
            "must be a query parameter name (letters, digits, '_', '.', '~' or '-', "
            f"at most 64), got {value!r}"
        )


@schema(maxLength=32, pattern=r"^[ -~]{1,32}(?![\s\S])")
def value_prefix(value: str) -> None:
    if not 1 <= len(value) <= 32 or not all(" " <= c <= "~" for c in value):
        raise Invalid(f"must be 1 to 32 visible ASCII characters or spaces, got {value!r}")


@schema(maxLength=32, pattern=r"^[ -~]{0,32}(?![\s\S])")
def token_prefix(value: str) -> None:
    if len(value) > 32 or not all(" " <= c <= "~" for c in value):
        raise Invalid(f"must be at most 32 visible ASCII characters or spaces, got {value!r}")


def fill(template: str) -> str:
    """A template with each placeholder replaced by a plain sample value, for URL checks."""
    try:
        list(placeholders(template))
    except Placeholder as exc:
        raise Invalid(str(exc)) from None
    return re.sub(r"\{[^{}]*\}", "x", template)


@schema(
    pattern=r"^(?:https://[^\s/?#@]+|http://(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?)"
    r"(?:[/?][^\s#]*)?$"
)
def endpoint_template(value: str) -> None:
    if "{" not in value and "}" not in value:
        endpoint_url(value)
        return
    if not value.startswith(("https://", "http://")):
        raise Invalid(f"must start with https:// (or http:// on loopback), got {value!r}")
    endpoint_url(fill(value))


PARAM = re.compile(r"[A-Za-z0-9_.~-]{1,64}")
PATH = re.compile(r"[A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_-]{1,64}){0,9}")


@schema(enum=[" ", ",", "+"])
def separator(value: str) -> None:
    if value not in (" ", ",", "+"):
        raise Invalid(f'must be " ", "," or "+", got {value!r}')


def params(*reserved: str) -> Check:
    """A map of request parameters: plain names, one-line values, none the flow sets itself."""

    def check(params: Mapping[str, str]) -> None:
        for name, value in params.items():
            if not PARAM.fullmatch(name):
                raise Invalid(f"{name[:64]!r} is not a parameter name", f".{name[:64]}")
            if name in reserved:
                raise Invalid(
                    f"the flow sets {name!r} itself; it cannot be declared here", f".{name}"
                )
            if not value or len(value) > 500 or "\n" in value or "\r" in value:
                raise Invalid("must be one line of 1 to 500 characters", f".{name}")

    return schema(
        note=f"parameter names {', '.join(reserved)} are set by the flow and refused",
        propertyNames={"pattern": "^" + PARAM.pattern + "$", "not": {"enum": list(reserved)}},
        additionalProperties={"type": "string", "minLength": 1, "maxLength": 500},
    )(check)


@schema(pattern="^" + PATH.pattern + "$")
def dotted(value: str) -> None:
    if not PATH.fullmatch(value):
        raise Invalid(f"must be a dotted path such as 'authed_user.access_token', got {value!r}")


@schema(minimum=0, maximum=86400)
def margin(value: int) -> None:
    if not 0 <= value <= 86400:
        raise Invalid(f"must be between 0 and 86400 seconds, got {value}")


STATUS_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")


@schema(enum=["GET", "HEAD", "POST"])
def method(value: str) -> None:
    if value not in ("GET", "HEAD", "POST"):
        raise Invalid(f"must be GET, HEAD or POST, got {value!r}")


@schema(pattern=r"^/(?!/)[^\s#]*$", maxLength=500)
def api_path(value: str) -> None:
    if not value.startswith("/") or value.startswith("//") or len(value) > 500:
        raise Invalid(f"must be a path starting with a single '/', got {value[:60]!r}")
    if any(ch.isspace() for ch in value) or "#" in value:
        raise Invalid("must not contain spaces or a fragment")
    try:
        list(placeholders(value))
    except Placeholder as exc:
        raise Invalid(str(exc)) from None


def _statuses(values: tuple[int, ...], low: int, high: int) -> None:
    for index, value in enumerate(values):
        if not low <= value <= high:
            raise Invalid(f"must be an HTTP status ({low} to {high}), got {value}", f"[{index}]")
    if len(set(values)) != len(values):
        raise Invalid("must not list a status twice")


@schema(minItems=1, items={"minimum": 100, "maximum": 599}, uniqueItems=True)
def statuses(values: tuple[int, ...]) -> None:
    if not values:
        raise Invalid("must list at least one status")
    _statuses(values, 100, 599)


@schema(items={"minimum": 400, "maximum": 599}, uniqueItems=True)
def error_statuses(values: tuple[int, ...]) -> None:
    _statuses(values, 400, 599)


# Headers the client sets itself, or that carry credentials: never constant ones
# (nor any Content-* header: they describe a body the request may not have).
_OWN_HEADERS = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "transfer-encoding",
    "connection",
)
_HEADER_VALUE = re.compile(r"[ -~]{1,500}")


def _any_case(word: str) -> str:
    """A regular expression matching ``word`` in any case, without flags (for JSON Schema)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


@schema(
    propertyNames={
        "pattern": "^" + HEADER_TOKEN.pattern + "$",
        "not": {
            "pattern": "^(?:"
            + "|".join(_any_case(n) for n in _OWN_HEADERS)
            + "|"
            + _any_case("content-")
            + ".*)$"
        },
    },
    additionalProperties={"type": "string", "pattern": "^" + _HEADER_VALUE.pattern + "$"},
)
def constant_headers(headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        if not HEADER_TOKEN.fullmatch(name):
            raise Invalid(f"{name[:64]!r} is not an HTTP header name", f".{name[:64]}")
        if name.lower() in _OWN_HEADERS or name.lower().startswith("content-"):
            raise Invalid(
                f"{name!r} is set by the client or carries credentials; it cannot be a "
                "constant header",
                f".{name}",
            )
        if not _HEADER_VALUE.fullmatch(value):
            raise Invalid("must be 1 to 500 visible ASCII characters or spaces", f".{name}")
        try:
            list(placeholders(value))
        except Placeholder as exc:
            raise Invalid(str(exc), f".{name}") from None


_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOST_PATTERN = re.compile(rf"(?:(?:\*\.)?{_LABEL}(?:\.{_LABEL})+|localhost)(?::[0-9]{{1,5}})?")
"""A host a request may go to: a name of two labels at least (``*.`` for its subdomains,
so never a whole top-level domain), or localhost; either with a port."""


@schema(pattern="^" + HOST_PATTERN.pattern + "$")
def host_pattern(value: str) -> None:
    if not HOST_PATTERN.fullmatch(value):
        raise Invalid(
            "must be a lowercase host name of two labels at least, '*.' and such a domain "
            f"for its subdomains, or either with ':port', got {value!r}"
        )


@schema(minimum=1, maximum=10)
def attempts(value: int) -> None:
    if not 1 <= value <= 10:
        raise Invalid(f"must be between 1 and 10, got {value}")


@schema(minimum=0, maximum=3600)
def wait_seconds(value: int) -> None:
    if not 0 <= value <= 3600:
        raise Invalid(f"must be between 0 and 3600 seconds, got {value}")


@schema(pattern="^" + STATUS_FIELD.pattern + "$")
def status_field(value: str) -> None:
    if not STATUS_FIELD.fullmatch(value):
        raise Invalid(
            "must be a status field name (a letter, then up to 39 letters, digits or "
            f"underscores), got {value!r}"
        )


@schema(
    propertyNames={"pattern": "^" + STATUS_FIELD.pattern + "$"},
    additionalProperties={"type": "string", "pattern": "^" + PATH.pattern + "$"},
)
def account_paths(paths: Mapping[str, str]) -> None:
    for name, path in paths.items():
        if not STATUS_FIELD.fullmatch(name):
            raise Invalid(f"{name[:40]!r} is not a status field name", f".{name[:40]}")
        if not PATH.fullmatch(path):
            raise Invalid(f"must be a dotted path such as 'org.id', got {path!r}", f".{name}")


# --- checks of arrays ---------------------------------------------------------


def each(*checks: Check) -> Check:
    """Apply checks to every item of a tuple, reporting the item's index."""

    def check(items: tuple[Any, ...]) -> None:
        for index, item in enumerate(items):
            try:
                for inner in checks:
                    inner(item)
            except Invalid as exc:
                raise Invalid(exc.message, f"[{index}]{exc.subpath}") from None

    items: dict[str, Any] = {}
    for inner in checks:
        items.update(inner.json_schema)  # type: ignore[attr-defined]  # set by schema()
    return schema(items=items)(check)


def unique(key: Callable[[Any], str] = str, subpath: str = "", what: str = "value") -> Check:
    def check(items: tuple[Any, ...]) -> None:
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            k = key(item)
            if k in seen:
                raise Invalid(
                    f"duplicate {what} {k!r} (already at index {seen[k]})", f"[{index}]{subpath}"
                )
            seen[k] = index

    if subpath:
        return schema(note=f"each {what} must be unique (not expressible in JSON Schema)")(check)
    return schema(uniqueItems=True)(check)


@schema(minItems=1)
def nonempty(items: tuple[Any, ...]) -> None:
    if not items:
        raise Invalid("must list at least one item")
