"""The rules that span several fields of one manifest object.

Each rule yields ``(subpath, message)`` for every problem it finds, and runs
once the object's own fields passed their checks (:mod:`._checks`). A rule
JSON Schema cannot express carries a ``json_schema_note``, and
:data:`CLASS_SCHEMA` holds the JSON Schema of those it can.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

from . import _checks as checks
from ._fields import FIELD_ID, Placeholder, placeholders
from ._manifest import ApiKeyAuth, Connection, Connector, Field, FieldType, Grant, OAuth

__all__ = ["CLASS_RULES", "CLASS_SCHEMA", "ClassRule"]

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
                yield f".{checks.camel(attribute)}", f"does not apply to a {kind} field"
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
        for name, value in connector.api.headers.items():
            yield from _placeholder_problems(
                value, f".api.headers.{name}", fields, {**token_kept, **verify_kept}
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
                f".auth.{checks.camel(attribute)}",
                "a placeholder cannot be the whole host: the server's OAuth client secret "
                "would go to whatever host a user types; fix the domain, as in "
                "https://{shop}.example.com/...",
            )
            continue
        yield from _placeholder_problems(
            template, f".auth.{checks.camel(attribute)}", fields, *known_by(attribute)
        )
    for attribute in ("authorize_params", "token_params", "refresh_params"):
        for param, value in getattr(auth, attribute).items():
            try:
                yield from _placeholder_problems(
                    value, f".auth.{checks.camel(attribute)}.{param}", fields, *known_by(attribute)
                )
            except Placeholder as exc:
                yield f".auth.{checks.camel(attribute)}.{param}", str(exc)


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
            hint = checks.did_you_mean(name, known) if known else ""
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


def _multiple_rules(connection: Connection) -> Iterator[tuple[str, str]]:
    """Several connections come with the status field that tells them apart."""
    if connection.multiple and connection.account_key is None:
        yield (
            ".accountKey",
            "required with multiple: the status field that tells the accounts apart",
        )
    if connection.account_key is not None and not connection.multiple:
        yield ".accountKey", "only applies with multiple: true"


CLASS_SCHEMA: dict[type, dict[str, Any]] = {
    Connection: {
        "if": {"properties": {"multiple": {"const": True}}, "required": ["multiple"]},
        "then": {"required": ["accountKey"]},
        "else": {"not": {"required": ["accountKey"]}},
    },
    ApiKeyAuth: {"oneOf": [{"required": ["headerName"]}, {"required": ["queryParam"]}]},
    OAuth: {
        "if": {"properties": {"grant": {"const": "client_credentials"}}, "required": ["grant"]},
        "then": {"not": {"required": ["authorizeUrl"]}},
        "else": {"required": ["authorizeUrl"]},
    },
}
"""JSON Schema keywords of a whole object, for the rules that span its fields."""


def _api_rules(connector: Connector) -> Iterator[tuple[str, str]]:
    """A constant header never replaces the credential; a status is retried or refused."""
    api = connector.api
    if api is None:
        return
    credential = getattr(connector.auth, "header_name", None)
    for name in api.headers:
        if credential is not None and name.lower() == credential.lower():
            yield (
                f".api.headers.{name}",
                f"{name!r} carries the connection's credentials (auth.headerName); "
                "it cannot be a constant header",
            )
    for status in sorted(set(api.retry.statuses) & set(api.token_expired_statuses)):
        yield (
            ".api.retry.statuses",
            f"{status} is in tokenExpiredStatuses too: an answer is either tried again "
            "or means the credentials were refused",
        )


_noted(
    "api.headers never name auth.headerName; no status is both in api.retry.statuses "
    "and api.tokenExpiredStatuses"
)(_api_rules)


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
                f".connection.{checks.camel(attribute)}",
                f"must be {base + '/' + suffix!r}, the path connectors-core serves for this "
                f"connector (relative to where its routes are mounted), got {declared!r}",
            )


_noted("connection paths are /api/integrations/<id>/connect, /status and /disconnect")(
    _connection_rules
)


def _translation_rules(connector: Connector) -> Iterator[tuple[str, str]]:
    """A translation translates what the manifest has: its set-up steps and its fields."""
    fields = [field.id for field in connector.fields]
    steps = len(connector.setup)
    for locale, translation in connector.translations.items():
        where = f".translations.{locale}"
        for index in range(steps, len(translation.setup)):
            yield (
                f"{where}.setup[{index}]",
                f"translates no step: setup has {steps} step{'' if steps == 1 else 's'}, "
                "and steps are translated by position",
            )
        for field_id in translation.fields:
            if field_id not in fields:
                hint = checks.did_you_mean(field_id, fields) if fields else ""
                yield f"{where}.fields.{field_id}", f"no field has this id{hint}"


_noted(
    "a translation has no more setup steps than setup, and translates fields by the ids "
    "of fields only"
)(_translation_rules)

CLASS_RULES: dict[type, tuple[ClassRule, ...]] = {
    ApiKeyAuth: (_api_key_rules,),
    OAuth: (_oauth_rules,),
    Field: (_field_rules,),
    Connection: (_multiple_rules,),
    Connector: (_template_rules, _api_rules, _connection_rules, _translation_rules),
}
