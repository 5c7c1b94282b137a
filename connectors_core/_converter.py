"""The one cattrs converter that reads and writes manifests, and every rule.

Reading (``structure``) is strict: a wrong type is an error (no ``123`` →
``"123"``), unknown keys are errors with a "did you mean" hint, and every rule
of the manifest (kebab-case ids, public docs URLs, unique capability ids, …)
is checked while structuring, so one pass reports *every* problem at once.
cattrs' exception tree is then flattened into :class:`ManifestProblem` lines
whose paths use the camelCase wire names (``$.auth.headerName``).
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
import re
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any, TypeVar, get_args, get_origin
from urllib.parse import urlsplit

import attrs
import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._exceptions import ManifestError, ManifestProblem
from ._fields import FIELD_ID, Placeholder, placeholders
from ._manifest import (
    AUTH_CLASSES,
    Api,
    ApiKeyAuth,
    Auth,
    BasicAuth,
    Capability,
    Connection,
    Connector,
    Field,
    FieldType,
    Grant,
    NoAuth,
    OAuth,
    Publisher,
    SetupStep,
    TokenResponsePaths,
    Verify,
)

__all__ = ["converter", "define_connector", "to_wire"]

T = TypeVar("T")

AUTH_TYPES = AUTH_CLASSES

_KEBAB = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_HEADER_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ID_MAX = 64
_LINE_MAX = 200
_TEXT_MAX = 2000
_QUERY_PARAM = re.compile(r"[A-Za-z0-9_.~-]{1,64}")
_VALUE_MAX = 2048


class _Problems(ValueError):
    """Several rule violations of one object, each ``(subpath, message)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


class _Invalid(ValueError):
    """A rule violation found by a structure hook.

    ``subpath`` locates it below the field the hook was structuring, such as
    ``[2].id`` for a duplicate capability id.
    """

    def __init__(self, message: str, subpath: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.subpath = subpath


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _wire_names(cls: type) -> dict[str, str]:
    return {a.name: _camel(a.name) for a in attrs.fields(cls)}


def _describe(value: object) -> str:
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


def _did_you_mean(word: str, choices: list[str]) -> str:
    if _camel(word) in choices:
        return f"; did you mean {_camel(word)!r}?"
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- rules ----------------------------------------------------------------
# Each rule carries the JSON Schema fragment that expresses it (``json_schema``),
# so the published schema is generated from the same rules that validate.
# A rule JSON Schema cannot express exactly says so in ``json_schema_note``.

Check = Callable[[Any], None]


def _schema(note: str | None = None, **fragment: Any) -> Callable[[Check], Check]:
    def mark(check: Check) -> Check:
        # Metadata on the function object itself: mypy cannot see such attributes.
        check.json_schema = fragment  # type: ignore[attr-defined]
        check.json_schema_note = note  # type: ignore[attr-defined]
        return check

    return mark


@_schema(minLength=1, pattern=r"\S")
def _nonblank(value: str) -> None:
    if not value.strip():
        raise _Invalid("must not be empty")


@_schema(maxLength=_LINE_MAX, pattern=r"^[^\r\n]*\S[^\r\n]*$")
def _one_line(value: str) -> None:
    _nonblank(value)
    if "\n" in value or "\r" in value:
        raise _Invalid("must be a single line")
    if len(value) > _LINE_MAX:
        raise _Invalid(f"must be at most {_LINE_MAX} characters, got {len(value)}")


@_schema(maxLength=_ID_MAX, pattern="^" + _KEBAB.pattern + "$")
def _kebab(value: str) -> None:
    if len(value) > _ID_MAX or not _KEBAB.fullmatch(value):
        raise _Invalid(
            f"must be kebab-case (lowercase letters and digits in words joined by single "
            f"hyphens, starting with a letter, at most {_ID_MAX} characters), got {value!r}"
        )


def _host_is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_is_public(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    # A name without a dot (``intranet``) or under a reserved suffix only
    # resolves inside one network.
    reserved = (".localhost", ".local", ".internal", ".test", ".invalid", ".example")
    return "." in host and not host.endswith(reserved)


def _split_url(value: str) -> tuple[str, str]:
    """Return (scheme, host) of an absolute URL, or raise _Invalid."""
    if any(ch.isspace() for ch in value):
        raise _Invalid(f"must be a URL without spaces, got {value!r}")
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - property access validates the port
    except ValueError as exc:
        raise _Invalid(f"is not a valid URL ({exc}): {value!r}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _Invalid(f"must be an absolute http(s) URL, got {value!r}")
    if parts.username is not None or parts.password is not None:
        raise _Invalid("must not contain credentials (user:password@)")
    return parts.scheme, host


@_schema(
    note="an approximation: the validator also checks that an IP address is public",
    pattern=r"^https?://(?!(?:localhost|127\.|10\.|192\.168\.|0\.|\[)|[^/?#\s]*\.(?:localhost|local"
    r"|internal|test|invalid|example)(?:[:/?#]|$))[^\s/?#@:]+\.[^\s/?#@:]+(?::\d+)?(?:[/?#]\S*)?$",
)
def _public_url(value: str) -> None:
    try:
        _scheme, host = _split_url(value)
    except _Invalid:
        host = ""
    if not _host_is_public(host):
        raise _Invalid(
            f"must be a public http(s) URL, got {value!r} "
            "(a repository path or a local address will not open from a web page)"
        )


@_schema(
    pattern=r"^(?:https://[^\s/?#@]+|http://(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?)"
    r"(?:[/?][^\s#]*)?$"
)
def _endpoint_url(value: str) -> None:
    scheme, host = _split_url(value)
    if scheme != "https" and not _host_is_loopback(host):
        raise _Invalid(f"must use https (plain http is allowed on loopback only), got {value!r}")
    if "#" in value:
        raise _Invalid("must not contain a fragment (#...)")


@_schema(pattern=r"^/(?!/)(?!.*://)[^\s\\]*$")
def _server_path(value: str) -> None:
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        raise _Invalid(f"must be a server path starting with a single '/', got {value!r}")
    if any(ch.isspace() for ch in value) or "://" in value:
        raise _Invalid(f"must be a plain server path, got {value!r}")


@_schema(pattern="^" + _HEADER_TOKEN.pattern + "$")
def _header_name(value: str) -> None:
    if not _HEADER_TOKEN.fullmatch(value):
        raise _Invalid(f"must be a valid HTTP header name, got {value!r}")


@_schema(pattern="^" + _EMAIL.pattern + "$")
def _email(value: str) -> None:
    if not _EMAIL.fullmatch(value):
        raise _Invalid(f"must be an e-mail address, got {value!r}")


@_schema(pattern=r"^\S+$")
def _scope(value: str) -> None:
    if not value or any(ch.isspace() for ch in value):
        raise _Invalid(f"must be a non-empty scope without spaces, got {value!r}")


@_schema(maxLength=_TEXT_MAX, pattern=r"\S")
def _text(value: str) -> None:
    _nonblank(value)
    if len(value) > _TEXT_MAX:
        raise _Invalid(f"must be at most {_TEXT_MAX} characters, got {len(value)}")


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


@_schema(pattern="^" + FIELD_ID.pattern + "$", **_NOT_RESERVED)
def _field_id(value: str) -> None:
    if not FIELD_ID.fullmatch(value):
        raise _Invalid(
            "must be a field id (a lowercase letter, then up to 39 lowercase letters, digits "
            f"or underscores), got {value!r}"
        )
    if value in RESERVED_FIELD_IDS:
        raise _Invalid(f"{value!r} is reserved for the connect form's own inputs")


@_schema(maxLength=500)
def _regex(value: str) -> None:
    if len(value) > 500:
        raise _Invalid(f"must be at most 500 characters, got {len(value)}")
    try:
        re.compile(value)
    except re.error as exc:
        raise _Invalid(f"not a valid regular expression ({exc})") from None


@_schema(minimum=0, maximum=_VALUE_MAX)
def _length(value: int) -> None:
    if not 0 <= value <= _VALUE_MAX:
        raise _Invalid(f"must be between 0 and {_VALUE_MAX}, got {value}")


@_schema(pattern="^" + _QUERY_PARAM.pattern + "$")
def _query_param(value: str) -> None:
    if not _QUERY_PARAM.fullmatch(value):
        raise _Invalid(
            "must be a query parameter name (letters, digits, '_', '.', '~' or '-', "
            f"at most 64), got {value!r}"
        )


@_schema(maxLength=32, pattern=r"^[ -~]{1,32}(?![\s\S])")
def _value_prefix(value: str) -> None:
    if not 1 <= len(value) <= 32 or not all(" " <= c <= "~" for c in value):
        raise _Invalid(f"must be 1 to 32 visible ASCII characters or spaces, got {value!r}")


@_schema(maxLength=32, pattern=r"^[ -~]{0,32}(?![\s\S])")
def _token_prefix(value: str) -> None:
    if len(value) > 32 or not all(" " <= c <= "~" for c in value):
        raise _Invalid(f"must be at most 32 visible ASCII characters or spaces, got {value!r}")


def _fill(template: str) -> str:
    """A template with each placeholder replaced by a plain sample value, for URL checks."""
    try:
        list(placeholders(template))
    except Placeholder as exc:
        raise _Invalid(str(exc)) from None
    return re.sub(r"\{[^{}]*\}", "x", template)


@_schema(
    pattern=r"^(?:https://[^\s/?#@]+|http://(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?)"
    r"(?:[/?][^\s#]*)?$"
)
def _endpoint_template(value: str) -> None:
    if "{" not in value and "}" not in value:
        _endpoint_url(value)
        return
    if not value.startswith(("https://", "http://")):
        raise _Invalid(f"must start with https:// (or http:// on loopback), got {value!r}")
    _endpoint_url(_fill(value))


_PARAM = re.compile(r"[A-Za-z0-9_.~-]{1,64}")
_PATH = re.compile(r"[A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_-]{1,64}){0,9}")


@_schema(enum=[" ", ",", "+"])
def _separator(value: str) -> None:
    if value not in (" ", ",", "+"):
        raise _Invalid(f'must be " ", "," or "+", got {value!r}')


def _params(*reserved: str) -> Check:
    """A map of request parameters: plain names, one-line values, none the flow sets itself."""

    def check(params: Mapping[str, str]) -> None:
        for name, value in params.items():
            if not _PARAM.fullmatch(name):
                raise _Invalid(f"{name[:64]!r} is not a parameter name", f".{name[:64]}")
            if name in reserved:
                raise _Invalid(
                    f"the flow sets {name!r} itself; it cannot be declared here", f".{name}"
                )
            if not value or len(value) > 500 or "\n" in value or "\r" in value:
                raise _Invalid("must be one line of 1 to 500 characters", f".{name}")

    return _schema(
        note=f"parameter names {', '.join(reserved)} are set by the flow and refused",
        propertyNames={"pattern": "^" + _PARAM.pattern + "$", "not": {"enum": list(reserved)}},
        additionalProperties={"type": "string", "minLength": 1, "maxLength": 500},
    )(check)


@_schema(pattern="^" + _PATH.pattern + "$")
def _dotted(value: str) -> None:
    if not _PATH.fullmatch(value):
        raise _Invalid(f"must be a dotted path such as 'authed_user.access_token', got {value!r}")


@_schema(minimum=0, maximum=86400)
def _margin(value: int) -> None:
    if not 0 <= value <= 86400:
        raise _Invalid(f"must be between 0 and 86400 seconds, got {value}")


_STATUS_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")


@_schema(enum=["GET", "HEAD", "POST"])
def _method(value: str) -> None:
    if value not in ("GET", "HEAD", "POST"):
        raise _Invalid(f"must be GET, HEAD or POST, got {value!r}")


@_schema(pattern=r"^/(?!/)[^\s#]*$", maxLength=500)
def _api_path(value: str) -> None:
    if not value.startswith("/") or value.startswith("//") or len(value) > 500:
        raise _Invalid(f"must be a path starting with a single '/', got {value[:60]!r}")
    if any(ch.isspace() for ch in value) or "#" in value:
        raise _Invalid("must not contain spaces or a fragment")
    try:
        list(placeholders(value))
    except Placeholder as exc:
        raise _Invalid(str(exc)) from None


@_schema(minItems=1, items={"minimum": 100, "maximum": 599}, uniqueItems=True)
def _statuses(values: tuple[int, ...]) -> None:
    if not values:
        raise _Invalid("must list at least one status")
    for index, value in enumerate(values):
        if not 100 <= value <= 599:
            raise _Invalid(f"must be an HTTP status (100 to 599), got {value}", f"[{index}]")
    if len(set(values)) != len(values):
        raise _Invalid("must not list a status twice")


@_schema(
    propertyNames={"pattern": "^" + _STATUS_FIELD.pattern + "$"},
    additionalProperties={"type": "string", "pattern": "^" + _PATH.pattern + "$"},
)
def _account_paths(paths: Mapping[str, str]) -> None:
    for name, path in paths.items():
        if not _STATUS_FIELD.fullmatch(name):
            raise _Invalid(f"{name[:40]!r} is not a status field name", f".{name[:40]}")
        if not _PATH.fullmatch(path):
            raise _Invalid(f"must be a dotted path such as 'org.id', got {path!r}", f".{name}")


# --- the converter ----------------------------------------------------------

converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
"""The project-owned converter for manifests (strict, camelCase on the wire)."""


def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_describe(value)}")
    return value


def _structure_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_describe(value)}")
    return value


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"expected an integer, got {_describe(value)}")
    return value


def _structure_default(value: object, _: Any) -> str | int | bool | None:
    if value is None or isinstance(value, str | bool | int):
        return value
    raise _Invalid(f"expected a string, number or boolean, got {_describe(value)}")


def _structure_str_map(value: object, _: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _Invalid(f"expected an object, got {_describe(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise _Invalid(f"expected a string, got {_describe(item)}", f".{str(key)[:64]}")
    return dict(value)


def _structure_enum(value: object, cls: type[enum.Enum]) -> enum.Enum:
    choices = [member.value for member in cls]
    if isinstance(value, str) and value in choices:
        return cls(value)
    hint = _did_you_mean(value, choices) if isinstance(value, str) else ""
    raise _Invalid(f"expected one of {', '.join(choices)}; got {_describe(value)}{hint}")


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = get_args(tp)
    return get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_hook(tp: Any) -> Callable[[object, Any], tuple[Any, ...]]:
    item_type = get_args(tp)[0]

    def structure(value: object, _: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise _Invalid(f"expected an array, got {_describe(value)}")
        items: list[Any] = []
        errors: list[Exception] = []
        for index, item in enumerate(value):
            try:
                items.append(converter.structure(item, item_type))
            except Exception as exc:  # noqa: BLE001 - collected, re-raised as a group below
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    IterableValidationNote(f"@ index {index}", index, item_type),
                ]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
        return tuple(items)

    return structure


def _structure_auth(value: object, _: Any) -> Auth:
    if not isinstance(value, Mapping):
        raise _Invalid(f"expected an object, got {_describe(value)}")
    kind = value.get("type")
    if kind is None:
        raise _Invalid(f"required field is missing (one of {', '.join(AUTH_TYPES)})", ".type")
    if kind not in AUTH_TYPES:
        hint = _did_you_mean(kind, list(AUTH_TYPES)) if isinstance(kind, str) else ""
        raise _Invalid(
            f"expected one of {', '.join(AUTH_TYPES)}; got {_describe(kind)}{hint}", ".type"
        )
    rest = {key: item for key, item in value.items() if key != "type"}
    return converter.structure(rest, AUTH_TYPES[kind])


def _checked(tp: Any, *checks: Check) -> Callable[[object, Any], Any]:
    """A field hook: structure as ``tp``, then apply each check unless None."""

    def structure(value: object, _: Any) -> Any:
        result = converter.structure(value, tp)
        if result is not None:
            for check in checks:
                check(result)
        return result

    structure.checks = checks  # type: ignore[attr-defined]  # read by the JSON Schema
    return structure


def _each(*checks: Check) -> Check:
    """Apply checks to every item of a tuple, reporting the item's index."""

    def check(items: tuple[Any, ...]) -> None:
        for index, item in enumerate(items):
            try:
                for inner in checks:
                    inner(item)
            except _Invalid as exc:
                raise _Invalid(exc.message, f"[{index}]{exc.subpath}") from None

    items: dict[str, Any] = {}
    for inner in checks:
        items.update(inner.json_schema)  # type: ignore[attr-defined]  # set by _schema()
    return _schema(items=items)(check)


def _unique(key: Callable[[Any], str] = str, subpath: str = "", what: str = "value") -> Check:
    def check(items: tuple[Any, ...]) -> None:
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            k = key(item)
            if k in seen:
                raise _Invalid(
                    f"duplicate {what} {k!r} (already at index {seen[k]})", f"[{index}]{subpath}"
                )
            seen[k] = index

    if subpath:
        return _schema(note=f"each {what} must be unique (not expressible in JSON Schema)")(check)
    return _schema(uniqueItems=True)(check)


@_schema(minItems=1)
def _nonempty(items: tuple[Any, ...]) -> None:
    if not items:
        raise _Invalid("must list at least one item")


_opt_str = str | None
_opt_int = int | None

# Per-field rules, by class and attribute name.
_RULES: dict[type, dict[str, Callable[[object, Any], Any]]] = {
    Connector: {
        "id": _checked(str, _kebab),
        "name": _checked(str, _one_line),
        "summary": _checked(str, _one_line),
        "description": _checked(str, _nonblank),
        "capabilities": _checked(
            tuple[Capability, ...],
            _nonempty,
            _unique(lambda c: c.id, ".id", "capability id"),
        ),
        "docs_path": _checked(_opt_str, _public_url),
        "tags": _checked(tuple[str, ...], _each(_one_line), _unique(what="tag")),
        "fields": _checked(tuple[Field, ...], _unique(lambda f: f.id, ".id", "field id")),
    },
    ApiKeyAuth: {
        "description": _checked(str, _nonblank),
        "header_name": _checked(_opt_str, _header_name),
        "query_param": _checked(_opt_str, _query_param),
        "value_prefix": _checked(_opt_str, _value_prefix),
    },
    BasicAuth: {
        "description": _checked(str, _nonblank),
        "username_label": _checked(str, _one_line),
        "password_label": _checked(str, _one_line),
    },
    OAuth: {
        "authorize_url": _checked(_opt_str, _endpoint_template),
        "token_url": _checked(str, _endpoint_template),
        "scopes": _checked(tuple[str, ...], _each(_scope), _unique(what="scope")),
        "revocation_url": _checked(_opt_str, _endpoint_template),
        "scope_separator": _checked(str, _separator),
        "authorize_params": _checked(
            dict[str, str],
            _params(
                "response_type",
                "client_id",
                "redirect_uri",
                "state",
                "scope",
                "code_challenge",
                "code_challenge_method",
            ),
        ),
        "token_params": _checked(
            dict[str, str],
            _params(
                "grant_type",
                "code",
                "redirect_uri",
                "code_verifier",
                "client_id",
                "client_secret",
                "scope",
            ),
        ),
        "refresh_params": _checked(
            dict[str, str],
            _params("grant_type", "refresh_token", "client_id", "client_secret", "scope"),
        ),
        "refresh_margin_seconds": _checked(_opt_int, _margin),
        "issuer": _checked(_opt_str, _endpoint_url),
        "header_name": _checked(str, _header_name),
        "value_prefix": _checked(str, _token_prefix),
    },
    Api: {"base_url": _checked(str, _endpoint_template)},
    Verify: {
        "path": _checked(str, _api_path),
        "method": _checked(str, _method),
        "expect": _checked(tuple[int, ...], _statuses),
        "account": _checked(dict[str, str], _account_paths),
        "base_url": _checked(_opt_str, _endpoint_template),
        "keep": _checked(tuple[str, ...], _each(_dotted), _unique(what="path")),
    },
    TokenResponsePaths: {
        "access_token_path": _checked(str, _dotted),
        "refresh_token_path": _checked(str, _dotted),
        "expires_in_path": _checked(str, _dotted),
        "keep": _checked(tuple[str, ...], _each(_dotted), _unique(what="path")),
    },
    Field: {
        "id": _checked(str, _field_id),
        "label": _checked(str, _one_line),
        "help": _checked(_opt_str, _text),
        "default": _structure_default,
        "pattern": _checked(_opt_str, _regex),
        "min_length": _checked(_opt_int, _length),
        "max_length": _checked(_opt_int, _length),
        "choices": _checked(tuple[str, ...], _each(_one_line), _unique(what="choice")),
        "example": _checked(_opt_str, _one_line),
        "prefix": _checked(_opt_str, _one_line),
        "suffix": _checked(_opt_str, _one_line),
    },
    Capability: {
        "id": _checked(str, _kebab),
        "label": _checked(str, _one_line),
    },
    SetupStep: {
        "title": _checked(str, _one_line),
        "description": _checked(str, _nonblank),
    },
    Publisher: {
        "name": _checked(str, _one_line),
        "url": _checked(_opt_str, _public_url),
        "email": _checked(_opt_str, _email),
    },
    Connection: {
        "start_path": _checked(str, _server_path),
        "status_path": _checked(_opt_str, _server_path),
        "disconnect_path": _checked(_opt_str, _server_path),
    },
}


# --- rules across the fields of one object ------------------------------------
# Each yields (subpath, message) for every problem; run once the object's own
# fields are valid. ``json_schema_note`` entries say what JSON Schema cannot express.

ClassRule = Callable[[Any], Iterator[tuple[str, str]]]

_STRING_TYPES = {
    FieldType.TEXT,
    FieldType.SECRET,
    FieldType.URL,
    FieldType.HOSTNAME,
    FieldType.EMAIL,
}


def _api_key_rules(auth: ApiKeyAuth) -> Iterator[tuple[str, str]]:
    if (auth.header_name is None) == (auth.query_param is None):
        yield "", "set exactly one of headerName and queryParam"


def _oauth_rules(auth: OAuth) -> Iterator[tuple[str, str]]:
    if auth.grant is Grant.AUTHORIZATION_CODE and auth.authorize_url is None:
        yield ".authorizeUrl", "required field is missing (the authorization code grant needs it)"
    if auth.grant is Grant.CLIENT_CREDENTIALS and auth.authorize_url is not None:
        yield ".authorizeUrl", "the client credentials grant has no authorization step; remove it"


def _field_rules(field: Field) -> Iterator[tuple[str, str]]:
    kind = field.type.value
    if field.type is FieldType.CHOICE and not field.choices:
        yield ".choices", "a choice field needs at least one choice"
    if field.choices and field.type is not FieldType.CHOICE:
        yield ".choices", f"only a choice field has choices, not a {kind} field"
    if field.type not in _STRING_TYPES:
        for attribute in ("pattern", "min_length", "max_length"):
            if getattr(field, attribute) is not None:
                yield f".{_camel(attribute)}", f"does not apply to a {kind} field"
    if (
        field.min_length is not None
        and field.max_length is not None
        and field.min_length > field.max_length
    ):
        yield ".minLength", f"must not exceed maxLength ({field.min_length} > {field.max_length})"
    if field.default is not None:
        from ._fields import check_default

        problem = check_default(field)
        if problem is not None:
            yield ".default", problem


def _template_rules(connector: Connector) -> Iterator[tuple[str, str]]:
    """Every ``{placeholder}`` of the connector's URLs and parameters names a non-secret
    field or a value known by then, and every kept value gets a name of its own.

    Values become known in order: fields when the user connects, then what the
    token response keeps (for the refresh, revocation and verify requests),
    then what the verify answer keeps (for the API itself).
    """
    fields = {field.id: field for field in connector.fields}
    auth = connector.auth
    paths = auth.token_response if isinstance(auth, OAuth) else None
    token_kept = yield from _kept_names(
        paths.keep if paths else (), ".auth.tokenResponse.keep", fields, {}
    )
    verify_kept = yield from _kept_names(
        connector.verify.keep if connector.verify else (), ".verify.keep", fields, token_kept
    )
    if connector.api is not None:
        yield from _placeholder_problems(
            connector.api.base_url, ".api.baseUrl", fields, {**token_kept, **verify_kept}
        )
    if connector.verify is not None:
        verify = connector.verify
        if connector.api is None and verify.base_url is None:
            yield ".verify", "needs api.baseUrl or its own baseUrl: its path is relative to one"
        for subpath, template in (
            (".verify.baseUrl", verify.base_url),
            (".verify.path", verify.path),
        ):
            if template is not None:
                yield from _placeholder_problems(
                    template, subpath, fields, token_kept, later=verify_kept
                )
    if not isinstance(auth, OAuth):  # the only auth type with URLs of its own
        return

    def known_by(attribute: str) -> tuple[Mapping[str, str], Mapping[str, str]]:
        """What is known when the request ``attribute`` belongs to is made, and what later."""
        if attribute in ("revocation_url", "refresh_params"):
            return token_kept, verify_kept
        return {}, {**token_kept, **verify_kept}

    for attribute in ("authorize_url", "token_url", "revocation_url"):
        template = getattr(auth, attribute)
        if template is None:
            continue
        host = re.split(r"[/?#]", template.partition("://")[2], maxsplit=1)[0]
        if re.fullmatch(r"\{[^{}]*\}(?::\d+)?", host):
            yield (
                f".auth.{_camel(attribute)}",
                "a placeholder cannot be the whole host: the server's OAuth client secret "
                "would go to whatever host a user types; fix the domain, as in "
                "https://{shop}.example.com/...",
            )
            continue
        yield from _placeholder_problems(
            template, f".auth.{_camel(attribute)}", fields, *known_by(attribute)
        )
    for attribute in ("authorize_params", "token_params", "refresh_params"):
        for param, value in getattr(auth, attribute).items():
            try:
                yield from _placeholder_problems(
                    value, f".auth.{_camel(attribute)}.{param}", fields, *known_by(attribute)
                )
            except Placeholder as exc:
                yield f".auth.{_camel(attribute)}.{param}", str(exc)


def _kept_names(
    paths: tuple[str, ...], subpath: str, fields: dict[str, Field], taken: Mapping[str, str]
) -> Generator[tuple[str, str], None, dict[str, str]]:
    """The names values kept from ``paths`` get (dots become underscores), by name.

    Yields a problem for each name that is not field id-like, or is a field's
    id or a name ``taken`` already; returns the good names and where each is kept.
    """
    names: dict[str, str] = {}
    for index, path in enumerate(paths):
        name = path.replace(".", "_")
        where = f"{subpath}[{index}]"
        if not FIELD_ID.fullmatch(name) or name in fields:
            yield (
                where,
                f"keeps the value as {name!r}, which must be a field id-like name "
                "(lowercase, digits, underscores) and not a field's id",
            )
        elif name in taken or name in names:
            yield where, f"keeps the value as {name!r}, a name {taken.get(name, subpath)} keeps"
        else:
            names[name] = subpath
    return names


def _placeholder_problems(
    template: str,
    subpath: str,
    fields: dict[str, Field],
    kept: Mapping[str, str],
    later: Mapping[str, str] | None = None,
) -> Iterator[tuple[str, str]]:
    """Every placeholder of ``template`` names a non-secret field or a name in ``kept``.

    ``kept`` and ``later`` map the names of kept values to where they are kept:
    known when this template is filled, and known only after it.
    """
    for name in dict.fromkeys(placeholders(template)):
        field = fields.get(name)
        if field is None and name in kept:
            continue
        if field is None and later and name in later:
            yield subpath, f"{{{name}}} is kept by {later[name]}, which is not known yet here"
        elif field is None:
            known = [*fields, *kept]
            hint = _did_you_mean(name, known) if known else ""
            yield subpath, f"unknown placeholder {{{name}}}: no field has this id{hint}"
        elif field.type is FieldType.SECRET:
            yield subpath, f"{{{name}}} is a secret field, and secrets never go into a request"


def _noted(note: str) -> Callable[[ClassRule], ClassRule]:
    def mark(rule: ClassRule) -> ClassRule:
        rule.json_schema_note = note  # type: ignore[attr-defined]  # read by the JSON Schema
        return rule

    return mark


_noted(
    "a choice field needs choices, and only it has them; pattern, minLength and maxLength "
    "apply to text-like fields; the default passes the field's rules"
)(_field_rules)
_noted(
    "every {placeholder} in a URL or parameter names a field of this connector that is not "
    "a secret, or a value kept before the request is made (tokenResponse.keep for the "
    "refresh, revocation and verify requests; verify.keep too for api.baseUrl); kept names "
    "are unique; no placeholder is the whole host of an OAuth URL"
)(_template_rules)
_noted("authorizeUrl is required for the authorization_code grant, absent for client_credentials")(
    _oauth_rules
)

CLASS_SCHEMA: dict[type, dict[str, Any]] = {
    ApiKeyAuth: {"oneOf": [{"required": ["headerName"]}, {"required": ["queryParam"]}]},
    OAuth: {
        "if": {"properties": {"grant": {"const": "client_credentials"}}, "required": ["grant"]},
        "then": {"not": {"required": ["authorizeUrl"]}},
        "else": {"required": ["authorizeUrl"]},
    },
}
"""JSON Schema keywords of a whole object, for the rules that span its fields."""


def _connection_rules(connector: Connector) -> Iterator[tuple[str, str]]:
    """The paths a manifest declares are the paths connectors-core serves for it."""
    connection = connector.connection
    if connection is None:
        return
    base = f"/api/integrations/{connector.id}"
    for attribute, suffix in (
        ("start_path", "connect"),
        ("status_path", "status"),
        ("disconnect_path", "disconnect"),
    ):
        declared = getattr(connection, attribute)
        if declared is not None and declared != f"{base}/{suffix}":
            yield (
                f".connection.{_camel(attribute)}",
                f"must be {base + '/' + suffix!r}, the path connectors-core serves for this "
                f"connector (relative to where its routes are mounted), got {declared!r}",
            )


_noted("connection paths are /api/integrations/<id>/connect, /status and /disconnect")(
    _connection_rules
)

_CLASS_RULES: dict[type, tuple[ClassRule, ...]] = {
    ApiKeyAuth: (_api_key_rules,),
    OAuth: (_oauth_rules,),
    Field: (_field_rules,),
    Connector: (_template_rules, _connection_rules),
}


# Left out of the wire form while at their default, so manifests without them read as before.
_OMIT_DEFAULT = {
    (Connector, "fields"),
    (Verify, "method"),
    (Verify, "expect"),
    (Verify, "account"),
    (Verify, "keep"),
    (Field, "choices"),
    *(
        (OAuth, name)
        for name in (
            "grant",
            "client_auth",
            "scope_separator",
            "authorize_params",
            "token_params",
            "refresh_params",
            "token_request_format",
            "header_name",
            "value_prefix",
        )
    ),
    *((TokenResponsePaths, a.name) for a in attrs.fields(TokenResponsePaths)),
}


def _register_class(cls: type) -> None:
    rules = _RULES.get(cls, {})
    class_rules = _CLASS_RULES.get(cls, ())
    structure_overrides: dict[str, Any] = {
        name: override(rename=wire, struct_hook=rules.get(name))
        for name, wire in _wire_names(cls).items()
    }
    inner: Callable[[Any, Any], Any] = make_dict_structure_fn(
        cls, converter, _cattrs_forbid_extra_keys=True, **structure_overrides
    )

    def structure(value: object, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _Invalid(f"expected an object, got {_describe(value)}")
        result = inner(value, cls)
        problems = [problem for rule in class_rules for problem in rule(result)]
        if problems:
            raise _Problems(problems)
        return result

    converter.register_structure_hook(cls, structure)

    unstructure_overrides: dict[str, Any] = {
        a.name: override(
            rename=_camel(a.name),
            omit_if_default=a.default is None or (cls, a.name) in _OMIT_DEFAULT,
        )
        for a in attrs.fields(cls)
    }
    plain: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(
        cls, converter, **unstructure_overrides
    )
    tag = cls.type if cls in AUTH_TYPES.values() else None  # type: ignore[attr-defined]
    if tag is None:
        converter.register_unstructure_hook(cls, plain)
    else:

        def tagged(obj: Any) -> dict[str, Any]:
            return {"type": tag, **plain(obj)}

        converter.register_unstructure_hook(cls, tagged)


converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook(int, _structure_int)


def _is_str_map(tp: Any) -> bool:
    origin: Any = get_origin(tp)
    return origin in (dict, Mapping) and get_args(tp) == (str, str)


converter.register_structure_hook_func(_is_str_map, _structure_str_map)
converter.register_structure_hook_func(
    lambda tp: isinstance(tp, type) and issubclass(tp, enum.Enum), _structure_enum
)
converter.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_hook)
converter.register_unstructure_hook_func(
    _is_homogeneous_tuple, lambda items: [converter.unstructure(item) for item in items]
)
converter.register_structure_hook(Auth, _structure_auth)
for _cls in (
    NoAuth,
    ApiKeyAuth,
    BasicAuth,
    OAuth,
    TokenResponsePaths,
    Api,
    Verify,
    Field,
    Capability,
    SetupStep,
    Publisher,
    Connection,
    Connector,
):
    _register_class(_cls)


# --- errors -----------------------------------------------------------------


def _problems(exc: BaseException, path: str) -> Iterator[ManifestProblem]:
    """Flatten a cattrs exception tree into problems with wire-format paths."""
    if isinstance(exc, ClassValidationError):
        names = _wire_names(exc.cl)
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            yield from _problems(sub, f"{path}.{names.get(note.name, note.name)}")
        for sub in without:
            yield from _problems(sub, path)
    elif isinstance(exc, IterableValidationError):
        iter_notes, iter_without = exc.group_exceptions()
        for sub, inote in iter_notes:
            yield from _problems(sub, f"{path}[{inote.index}]")
        for sub in iter_without:
            yield from _problems(sub, path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        known = list(_wire_names(exc.cl).values()) if exc.cl is not None else []
        for key in sorted(exc.extra_fields):
            yield ManifestProblem(f"{path}.{key}", f"unknown field{_did_you_mean(key, known)}")
    elif isinstance(exc, _Invalid):
        yield ManifestProblem(path + exc.subpath, exc.message)
    elif isinstance(exc, _Problems):
        for subpath, message in exc.problems:
            yield ManifestProblem(path + subpath, message)
    elif isinstance(exc, KeyError):
        yield ManifestProblem(path, "required field is missing")
    else:  # pragma: no cover - every hook raises one of the above
        yield ManifestProblem(path, str(exc) or type(exc).__name__)


def structure_connector(data: object, *, source: str | None = None) -> Connector:
    """Validate wire-format ``data`` into a :class:`Connector` or raise ManifestError."""
    try:
        return converter.structure(data, Connector)
    except (ClassValidationError, IterableValidationError, _Invalid, _Problems) as exc:
        raise ManifestError(list(_problems(exc, "$")), source=source) from None


def _to_wire_value(value: object) -> object:
    if attrs.has(type(value)) or isinstance(value, enum.Enum):
        return converter.unstructure(value)
    if isinstance(value, list | tuple):
        return [_to_wire_value(item) for item in value]
    return value


def define_connector(manifest: object = None, /, **fields: Any) -> Connector:
    """Validate a connector manifest and return it as a frozen :class:`Connector`.

    Pass either one camelCase mapping (the wire format, as read from JSON or
    TOML) or the fields as keyword arguments with their Python names
    (``docs_path=...``); nested parts may be the attrs classes (``OAuth(...)``,
    ``Capability(...)``) or camelCase mappings. An existing :class:`Connector`
    is re-validated. An unknown keyword argument is reported by its Python
    name (``$.docs_url: unknown argument; did you mean 'docs_path'?``).

    :raises ManifestError: listing every problem at once, each with its path.
    """
    if manifest is not None and fields:
        raise TypeError("pass the manifest either as one mapping or as keyword arguments")
    if isinstance(manifest, Connector):
        return structure_connector(converter.unstructure(manifest))
    if manifest is not None:
        return structure_connector(manifest)
    unknown = _unknown_arguments(fields)
    data = {_camel(k): _to_wire_value(v) for k, v in fields.items() if k not in unknown}
    try:
        connector = structure_connector(data)
    except ManifestError as exc:
        raise ManifestError([*unknown.values(), *exc.problems]) from None
    if unknown:
        raise ManifestError(unknown.values())
    return connector


def _unknown_arguments(fields: Mapping[str, Any]) -> dict[str, ManifestProblem]:
    """Keyword arguments that name no field, each reported under its Python name.

    A camelCase spelling of a field (``docsPath=``) is accepted as before; the
    hint suggests the Python name, since that is what the author typed.
    """
    names = [a.name for a in attrs.fields(Connector)]
    wire = {_camel(name) for name in names}
    problems = {}
    for key in fields:
        if _camel(key) in wire:
            continue
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems[key] = ManifestProblem(f"$.{key}", f"unknown argument{hint}")
    return problems


def to_wire(connector: Connector) -> dict[str, Any]:
    """Return ``connector`` in the camelCase wire format (JSON-ready)."""
    result: dict[str, Any] = converter.unstructure(connector)
    return result
