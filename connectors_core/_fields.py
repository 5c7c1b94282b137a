"""Connection fields: the values a user enters per connection, and URL templates.

A manifest's ``fields`` declare what a connection asks for; ``{field_id}``
placeholders in its URLs are filled with those values at connect time. This
module holds the parts both the manifest validation and the server need:
finding the placeholders of a template, checking a submitted value against its
field, and filling a template so that a value can never change the scheme,
host or port the template fixes.

The values come from untrusted users and end up in URLs the server calls, so
every check here errs on the side of refusing: a value is accepted only in the
one plain form its type allows, and an error message never repeats a value.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from urllib.parse import quote, urlsplit

from ._manifest import Field, FieldType

__all__ = [
    "FIELD_ID",
    "MAX_VALUE",
    "PLACEHOLDER",
    "FieldError",
    "FieldErrors",
    "Placeholder",
    "TemplateError",
    "check_default",
    "check_value",
    "check_values",
    "fill_text",
    "placeholders",
    "resolve_url",
]

FIELD_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")
"""What a field id looks like (and so a placeholder's name)."""

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
"""A ``{name}`` placeholder in a template."""

MAX_VALUE = 2048
"""The most characters any field value may have, whatever its ``max_length``."""

_Value = str | int | bool  # a checked value: text, or int / bool for those two types


class Placeholder(ValueError):
    """A template whose braces do not form valid placeholders."""


class FieldError(ValueError):
    """A submitted (or declared default) value that does not pass its field's rules."""

    field_id: str
    """The id of the field whose value is wrong."""

    message: str
    """What is wrong, in plain words, such as ``must be at most 40 characters``.

    It never repeats the value, so it is safe to show and to log even for a secret.
    """

    def __init__(self, field_id: str, message: str) -> None:
        super().__init__(f"{field_id}: {message}")
        self.field_id = field_id
        self.message = message


class FieldErrors(ValueError):
    """Every field of a submission whose value is wrong, reported at once."""

    errors: dict[str, str]
    """Field id -> message (as in :attr:`FieldError.message`), in the fields' order."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(
            "; ".join(f"{field_id}: {message}" for field_id, message in errors.items())
        )
        self.errors = dict(errors)


class TemplateError(ValueError):
    """A URL template that cannot be filled safely with the values given."""

    field_id: str | None
    """The field whose value (or placement) is at fault, or None for the template itself."""

    message: str
    """What is wrong, in plain words; it never repeats a value."""

    def __init__(self, field_id: str | None, message: str) -> None:
        super().__init__(message if field_id is None else f"{field_id}: {message}")
        self.field_id = field_id
        self.message = message


def placeholders(template: str) -> Iterator[str]:
    """The names of the ``{name}`` placeholders of ``template``, in order.

    :raises Placeholder: for a brace that opens no valid placeholder, or a
        name that is not a field id.
    """
    for match in PLACEHOLDER.finditer(template):
        name = match.group(1)
        if not FIELD_ID.fullmatch(name):
            raise Placeholder(f"{{{name}}} is not a valid placeholder (expected {{field_id}})")
        yield name
    rest = PLACEHOLDER.sub("", template)
    if "{" in rest or "}" in rest:
        raise Placeholder("has an unmatched '{' or '}'")


# --- checking one value --------------------------------------------------------


class _Invalid(Exception):
    """Raised inside this module with a message; the caller adds the field id."""


# Cc (C0, DEL, C1), Cf (zero-width and bidi controls such as U+200B, U+202E),
# Cs (lone surrogates, which cannot even be encoded) and the two Unicode line
# breaks: none belongs in a value that is shown, logged or put in a URL.
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_LDH = re.compile(r"[a-z0-9.-]*")
# WHATWG URL parsers and inet_aton read a host whose last label is a number
# (decimal, 0x-hex or octal), such as 2130706433 or 0x7f.1, as an IPv4 address.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
# RFC 3986 unreserved, reserved and '%': anything else must be percent-encoded.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_BOOLEANS = {
    "true": True,
    "on": True,
    "yes": True,
    "1": True,
    "false": False,
    "off": False,
    "no": False,
    "0": False,
}
_STRING_TYPES = frozenset(
    {FieldType.TEXT, FieldType.SECRET, FieldType.URL, FieldType.HOSTNAME, FieldType.EMAIL}
)


def check_value(field: Field, raw: str | None) -> str | int | bool | None:
    """The checked value of ``field`` for the submitted text ``raw``.

    ``raw`` is None when the field was not submitted at all. Surrounding
    whitespace is stripped; an empty value becomes the field's default, or
    None when the field is optional (a boolean becomes False: an unchecked
    checkbox sends nothing). Integers come back as ``int``, booleans as
    ``bool``, host names lower-cased, everything else as the stripped text.

    :raises FieldError: when the value does not pass the field's rules.
    """
    try:
        return _check(field, raw)
    except _Invalid as exc:
        raise FieldError(field.id, str(exc)) from None


def check_values(
    fields: Sequence[Field], submitted: Mapping[str, str]
) -> tuple[dict[str, str | int | bool], dict[str, str]]:
    """Check every field of a submission: ``(config, secrets)``.

    ``config`` has the non-secret values by field id (fields left empty with
    no default are omitted), ``secrets`` the values of ``secret`` fields.
    Keys of ``submitted`` that name no field are ignored: the caller decides
    which form names exist.

    :raises FieldErrors: naming every field whose value is wrong, not only the first.
    """
    config: dict[str, str | int | bool] = {}
    secrets: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field in fields:
        try:
            value = _check(field, submitted.get(field.id))
        except _Invalid as exc:
            errors[field.id] = str(exc)
            continue
        if value is None:
            continue
        if field.type is FieldType.SECRET:
            assert isinstance(value, str)  # a secret is checked as text
            secrets[field.id] = value
        else:
            config[field.id] = value
    if errors:
        raise FieldErrors(errors)
    return config, secrets


def check_default(field: Field) -> str | None:
    """What is wrong with ``field``'s declared default, or None when it is fine (or absent).

    The default must have the field's JSON type (``bool`` for a boolean
    field, ``int`` for an integer field, ``str`` otherwise) and pass the
    field's own rules; a secret field may not have one.
    """
    try:
        _default(field)
    except _Invalid as exc:
        return str(exc)
    return None


def _check(field: Field, raw: str | None) -> _Value | None:
    value = "" if raw is None else raw.strip()
    _check_characters(field, value)
    if not value:
        if field.type is FieldType.BOOLEAN:
            return False
        default = _default(field)
        if default is not None:
            return default
        if field.required:
            raise _Invalid("is required")
        return None
    return _check_typed(field, value)


def _default(field: Field) -> _Value | None:
    """The field's default, checked against its own rules (and converted)."""
    default = field.default
    if default is None:
        return None
    if field.type is FieldType.SECRET:
        raise _Invalid("a secret field cannot have a default")
    if field.type is FieldType.BOOLEAN:
        # An unchecked checkbox sends nothing: a default could never be turned off.
        raise _Invalid("a boolean field has no default: it is false unless checked")
    if field.type is FieldType.INTEGER:
        if isinstance(default, bool) or not isinstance(default, int):
            raise _Invalid("the default of an integer field must be a whole number")
        text = str(default)
    elif not isinstance(default, str):
        raise _Invalid("the default must be a string")
    else:
        text = default
    if not text or text != text.strip():
        raise _Invalid("the default must not be empty or have surrounding whitespace")
    try:
        _check_characters(field, text)
        return _check_typed(field, text)
    except _Invalid as exc:
        raise _Invalid(f"the default is invalid: it {exc}") from None


def _check_characters(field: Field, value: str) -> None:
    if value.isascii():
        if _ASCII_CONTROL.search(value):
            raise _Invalid("must not contain control characters")
    elif any(unicodedata.category(char) in _CONTROL_CATEGORIES for char in value):
        raise _Invalid("must not contain control characters")
    limit = MAX_VALUE if field.max_length is None else min(MAX_VALUE, field.max_length)
    if len(value) > limit:
        raise _Invalid(f"must be at most {limit} characters")


def _check_typed(field: Field, value: str) -> _Value:
    """Check a non-empty, stripped value free of control characters by the field's type."""
    if field.type is FieldType.URL:
        _check_url(value)
    elif field.type is FieldType.HOSTNAME:
        value = _checked_hostname(value)
    elif field.type is FieldType.EMAIL:
        _check_email(value)
    elif field.type is FieldType.INTEGER:
        if not _INTEGER.fullmatch(value):
            raise _Invalid("must be a whole number of at most 18 digits")
        return int(value)
    elif field.type is FieldType.BOOLEAN:
        try:
            return _BOOLEANS[value.lower()]
        except KeyError:
            raise _Invalid("must be true or false") from None
    elif field.type is FieldType.CHOICE:
        if value not in field.choices:
            raise _Invalid("must be one of: " + ", ".join(field.choices))
        return value
    if field.type in _STRING_TYPES:
        _check_length_and_pattern(field, value)
    return value


def _check_length_and_pattern(field: Field, value: str) -> None:
    if field.min_length is not None and len(value) < field.min_length:
        raise _Invalid(f"must be at least {field.min_length} characters")
    if field.max_length is not None and len(value) > field.max_length:
        raise _Invalid(f"must be at most {field.max_length} characters")
    if field.pattern is not None:
        try:
            pattern = _compiled(field.pattern)
        except re.error:
            raise _Invalid("cannot be checked: the connector declares an invalid pattern") from None
        if not pattern.fullmatch(value):
            hint = f" (for example {field.example})" if field.example else ""
            raise _Invalid(f"does not have the expected format{hint}")


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_LOCAL_NAMES = {"localhost"}
_LOCAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".internal",
    ".intranet",
    ".lan",
    ".home.arpa",
    ".corp",
)


def _hostname_problem(host: str) -> str | None:
    """What keeps ``host`` (already lower-cased ASCII) from being a DNS host name, or None."""
    if not _LDH.fullmatch(host):
        return "must contain only ASCII letters, digits, hyphens and dots"
    if len(host) > 253:
        return "must be at most 253 characters"
    labels = host.split(".")
    for label in labels:
        if not 1 <= len(label) <= 63:
            return "must be parts of 1 to 63 characters separated by single dots"
        if label.startswith("-") or label.endswith("-"):
            return "must not have a part that starts or ends with a hyphen"
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        return "must be a host name, not an IP address"
    return None


def _checked_hostname(value: str) -> str:
    # ASCII first: lower() maps some non-ASCII letters (KELVIN SIGN) to ASCII ones.
    if not value.isascii():
        raise _Invalid("must contain only ASCII letters, digits, hyphens and dots")
    host = value.lower()
    problem = _hostname_problem(host)
    if problem is not None:
        raise _Invalid(problem)
    if "." not in host or host.endswith(_LOCAL_SUFFIXES) or host in _LOCAL_NAMES:
        # Names that resolve only inside the server's own network: what a user
        # types must not make the server call its neighbours.
        raise _Invalid("must be a public host name (such as example.com), not a local one")
    return host


def _check_email(value: str) -> None:
    problem = "must be an e-mail address such as name@example.com"
    if len(value) > 254 or not value.isascii() or value.count("@") != 1:
        raise _Invalid(problem)
    local, domain = value.split("@")
    if len(local) > 64 or not _EMAIL_LOCAL.fullmatch(local):
        raise _Invalid(problem)
    domain = domain.lower()
    if "." not in domain or _hostname_problem(domain) is not None:
        raise _Invalid(problem)


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (as :attr:`urllib.parse.SplitResult.hostname` gives it) is loopback."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address in ipaddress.IPv4Network("127.0.0.0/8")
    return address == ipaddress.IPv6Address("::1")


def _check_url(value: str) -> None:
    if any(char.isspace() for char in value):
        raise _Invalid("must not contain spaces")
    if not value.lower().startswith(("https://", "http://")):
        raise _Invalid("must be a full URL starting with https://")
    if not value.isascii() or not _URL_CHARS.fullmatch(value) or _BAD_PERCENT.search(value):
        raise _Invalid("must contain only characters allowed in a URL (percent-encode others)")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise _Invalid("is not a valid URL") from None
    if "@" in parts.netloc:
        raise _Invalid("must not contain a user name or password")
    host = parts.hostname
    if not host:
        raise _Invalid("must have a host name")
    problem = _url_host_problem(parts.netloc, host)
    if problem is not None:
        raise _Invalid(f"has an invalid host name: it {problem}")
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise _Invalid("has an invalid port")
    if parts.fragment or value.endswith("#"):
        raise _Invalid("must not have a #fragment")
    if parts.scheme != "https" and not _is_loopback(host):
        raise _Invalid("must use https (plain http is allowed only for localhost)")


def _url_host_problem(netloc: str, host: str) -> str | None:
    """What is wrong with a URL's host (a name, dotted-quad IPv4 or bracketed IPv6), or None."""
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    if netloc.startswith("["):
        if "%" in host:  # a zone id names an interface of the server, not a host
            return "must not have an IPv6 zone id"
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:  # such as an IPvFuture literal [v1.x]
            return "must be an IPv6 address inside [ ]"
    else:
        try:
            address = ipaddress.IPv4Address(host)  # only the plain dotted-quad form
        except ValueError:
            return _hostname_problem(host)
    if address.is_unspecified or address.is_multicast:
        return "must not be an unspecified or multicast address"
    return None


# --- filling URL templates -----------------------------------------------------


def resolve_url(template: str, values: Mapping[str, str | int | bool]) -> str:
    """Fill each ``{id}`` of ``template`` with ``values[id]``, never changing where it points.

    The template must start with ``https://`` (or ``http://`` for a loopback
    host it fixes itself, not one a value fills in). A placeholder in the host
    is filled only with one lower-case DNS label, or, when it is the whole
    host, with a host name; one in the path with one percent-encoded segment;
    one in the query (or fragment) with a percent-encoded value. Booleans
    render as ``true``/``false``, integers in decimal. The result is parsed
    again and must have the template's scheme, host (with the values filled
    in) and port, and no user name or password. A template without
    placeholders comes back unchanged.

    :raises TemplateError: naming the field at fault (``field_id``), or None
        when the template itself cannot be filled safely.
    """
    try:
        names = list(placeholders(template))
    except Placeholder as exc:
        raise TemplateError(None, str(exc)) from None
    for prefix in ("https://", "http://"):
        if template.startswith(prefix):
            break
    else:
        raise TemplateError(None, "must start with https:// or http://")
    scheme = prefix[:-3]
    # Placeholder names hold no '/', '?' or '#', so the template's own
    # delimiters mark its parts before anything is filled in.
    rest = template[len(prefix) :]
    authority_end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    fragment_start = tail.find("#")
    before_fragment = tail if fragment_start < 0 else tail[:fragment_start]
    fragment = "" if fragment_start < 0 else tail[fragment_start:]
    query_start = before_fragment.find("?")
    path = before_fragment if query_start < 0 else before_fragment[:query_start]
    query = "" if query_start < 0 else before_fragment[query_start:]

    netloc, expected_host, port = _fill_authority(authority, values)
    if scheme == "http" and PLACEHOLDER.search(authority):
        # Plain http is for a loopback host the template fixes (local development
        # and tests), never for one a user's value picks.
        raise TemplateError(None, "must use https when a value fills the host")
    resolved = (
        prefix
        + netloc
        + _fill(path, values, _path_segment)
        + _fill(query, values, _query_value)
        + _fill(fragment, values, _query_value)
    )
    _check_resolved(resolved, scheme, netloc, expected_host, port, names)
    return resolved


def fill_text(template: str, values: Mapping[str, str | int | bool]) -> str:
    """Fill each ``{id}`` of a header value; the result must still be one header value.

    :raises TemplateError: naming the field whose value has no place in a
        header (a line break, a control character, a character beyond ASCII,
        or a result longer than 2048), or None for the template itself.
    """
    try:
        list(placeholders(template))
    except Placeholder as exc:
        raise TemplateError(None, str(exc)) from None

    def text(name: str, value: str) -> str:
        if not all(" " <= c <= "~" for c in value):
            raise TemplateError(name, "cannot be put in an HTTP header")
        return value

    filled = _fill(template, values, text)
    if len(filled) > 2048:
        raise TemplateError(None, "is too long for an HTTP header")
    return filled


def _fill_authority(
    authority: str, values: Mapping[str, str | int | bool]
) -> tuple[str, str, int | None]:
    """``(netloc, expected hostname, port)`` of the template's filled authority."""
    userinfo, at, hostport = authority.rpartition("@")
    if at:
        in_userinfo = PLACEHOLDER.findall(userinfo)
        if in_userinfo:
            raise TemplateError(in_userinfo[0], "cannot be used in the user name or password")
        raise TemplateError(None, "must not contain a user name or password")
    if hostport.startswith("["):  # an IPv6 literal
        close = hostport.find("]") + 1
        host, port_text = hostport[:close], hostport[close:]
    else:
        host, colon, port_text = hostport.partition(":")
        port_text = colon + port_text
    in_port = PLACEHOLDER.findall(port_text)
    if in_port:
        raise TemplateError(in_port[0], "cannot be used in the port")
    if port_text and not re.fullmatch(r":[0-9]{1,5}", port_text):
        raise TemplateError(None, "has an invalid port")
    port = int(port_text[1:]) if port_text else None
    if port is not None and not 0 < port < 65536:
        raise TemplateError(None, "has an invalid port")
    if not host:
        raise TemplateError(None, "has no host")

    host_names = PLACEHOLDER.findall(host)
    if not host_names:
        return host + port_text, host.strip("[]").lower(), port
    whole = PLACEHOLDER.fullmatch(host)
    if whole is not None:
        name = whole.group(1)
        try:
            filled = _checked_hostname(_rendered(name, values))
        except _Invalid as exc:
            raise TemplateError(name, str(exc)) from None
    else:
        if PLACEHOLDER.search(host.rpartition(".")[2]):
            # The last label is what the template fixes; a value there could end anywhere.
            raise TemplateError(host_names[-1], "cannot be used in the last part of the host")
        filled = _fill(host.lower(), values, _host_label)
        problem = _hostname_problem(filled)
        if problem is not None:
            raise TemplateError(host_names[0], f"does not make a valid host: the host {problem}")
    return filled + port_text, filled, port


def _fill(
    part: str, values: Mapping[str, str | int | bool], encode: Callable[[str, str], str]
) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return encode(name, _rendered(name, values))

    return PLACEHOLDER.sub(replace, part)


def _rendered(name: str, values: Mapping[str, str | int | bool]) -> str:
    value = values.get(name)
    if value is None:
        raise TemplateError(name, "has no value")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise TemplateError(name, "has a value that is not text, a number or a boolean")


def _host_label(name: str, value: str) -> str:
    # ASCII first: lower() maps some non-ASCII letters (KELVIN SIGN) to ASCII ones.
    if not value.isascii() or not _LABEL.fullmatch(value.lower()):
        raise TemplateError(
            name,
            "must be one part of a host name: 1 to 63 ASCII letters, digits or hyphens,"
            " not starting or ending with a hyphen",
        )
    return value.lower()


def _encoded(name: str, value: str) -> str:
    try:
        return quote(value, safe="")
    except UnicodeEncodeError:  # a lone surrogate
        raise TemplateError(name, "cannot be put in a URL") from None


def _path_segment(name: str, value: str) -> str:
    if value in {"", ".", ".."}:
        raise TemplateError(name, "must not be empty, '.' or '..' in a URL path")
    return _encoded(name, value)


def _query_value(name: str, value: str) -> str:
    return _encoded(name, value)


def _check_resolved(
    resolved: str,
    scheme: str,
    netloc: str,
    expected_host: str,
    port: int | None,
    names: Sequence[str],
) -> None:
    """Parse the filled URL again: it must point exactly where the template does."""
    blame = names[0] if names else None
    try:
        parts = urlsplit(resolved)
        parsed_port = parts.port
    except ValueError:
        raise TemplateError(blame, "does not make a valid URL") from None
    if (
        parts.scheme != scheme
        or parts.netloc != netloc
        or parts.hostname != expected_host
        or parsed_port != port
        or parts.username is not None
        or parts.password is not None
    ):
        raise TemplateError(blame, "would change the scheme, host or port of the URL")
    if scheme != "https" and not _is_loopback(expected_host):
        raise TemplateError(None, "must use https unless the host is loopback")
