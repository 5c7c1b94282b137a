"""The one cattrs converter that reads and writes manifests.

Reading (``structure``) is strict: a wrong type is an error (no ``123`` →
``"123"``), unknown keys are errors with a "did you mean" hint, and every rule
of the manifest is checked while structuring (the checks of single values in
:mod:`._checks`, by field in :data:`_RULES`; the rules across the fields of
one object in :mod:`._class_rules`), so one pass reports *every* problem at once.
cattrs' exception tree is then flattened into :class:`ManifestProblem` lines
whose paths use the camelCase wire names (``$.auth.headerName``).
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from . import _checks as checks
from ._class_rules import CLASS_RULES
from ._exceptions import ManifestError, ManifestProblem
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
    FieldTranslation,
    NoAuth,
    OAuth,
    Publisher,
    Retry,
    SetupStep,
    SetupStepTranslation,
    TokenResponsePaths,
    Translation,
    Verify,
)

__all__ = ["converter", "define_connector", "to_wire"]

T = TypeVar("T")

AUTH_TYPES = AUTH_CLASSES


class _Problems(ValueError):
    """Several rule violations of one object, each ``(subpath, message)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


def _wire_names(cls: type) -> dict[str, str]:
    return {a.name: checks.camel(a.name) for a in attrs.fields(cls)}


# --- the converter ----------------------------------------------------------

converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
"""The project-owned converter for manifests (strict, camelCase on the wire)."""


def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise checks.Invalid(f"expected a string, got {checks.describe(value)}")
    return value


def _structure_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise checks.Invalid(f"expected true or false, got {checks.describe(value)}")
    return value


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise checks.Invalid(f"expected an integer, got {checks.describe(value)}")
    return value


def _structure_default(value: object, _: Any) -> str | int | bool | None:
    if value is None or isinstance(value, str | bool | int):
        return value
    raise checks.Invalid(f"expected a string, number or boolean, got {checks.describe(value)}")


def _structure_str_map(value: object, _: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise checks.Invalid(f"expected an object, got {checks.describe(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise checks.Invalid(
                f"expected a string, got {checks.describe(item)}", f".{str(key)[:64]}"
            )
    return dict(value)


def _structure_enum(value: object, cls: type[enum.Enum]) -> enum.Enum:
    choices = [member.value for member in cls]
    if isinstance(value, str) and value in choices:
        return cls(value)
    hint = checks.did_you_mean(value, choices) if isinstance(value, str) else ""
    raise checks.Invalid(
        f"expected one of {', '.join(choices)}; got {checks.describe(value)}{hint}"
    )


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = get_args(tp)
    return get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_hook(tp: Any) -> Callable[[object, Any], tuple[Any, ...]]:
    item_type = get_args(tp)[0]

    def structure(value: object, _: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise checks.Invalid(f"expected an array, got {checks.describe(value)}")
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


def _is_model_map(tp: Any) -> bool:
    """A map from strings to a manifest class, such as ``translations``."""
    args = get_args(tp)
    return get_origin(tp) in (dict, Mapping) and len(args) == 2 and attrs.has(args[1])


def _model_map_hook(tp: Any) -> Callable[[object, Any], dict[str, Any]]:
    item_type = get_args(tp)[1]

    def structure(value: object, _: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise checks.Invalid(f"expected an object, got {checks.describe(value)}")
        items: dict[str, Any] = {}
        errors: list[Exception] = []
        for key, item in value.items():
            try:
                items[key] = converter.structure(item, item_type)
            except Exception as exc:  # noqa: BLE001 - collected, re-raised as a group below
                # A key for an index: _problems puts it in the path as ``.key``.
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    IterableValidationNote(f"@ key {key!r}", str(key)[:64], item_type),
                ]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
        return items

    return structure


def _structure_auth(value: object, _: Any) -> Auth:
    if not isinstance(value, Mapping):
        raise checks.Invalid(f"expected an object, got {checks.describe(value)}")
    kind = value.get("type")
    if kind is None:
        raise checks.Invalid(f"required field is missing (one of {', '.join(AUTH_TYPES)})", ".type")
    if kind not in AUTH_TYPES:
        hint = checks.did_you_mean(kind, list(AUTH_TYPES)) if isinstance(kind, str) else ""
        raise checks.Invalid(
            f"expected one of {', '.join(AUTH_TYPES)}; got {checks.describe(kind)}{hint}", ".type"
        )
    rest = {key: item for key, item in value.items() if key != "type"}
    return converter.structure(rest, AUTH_TYPES[kind])


def _checked(tp: Any, *rules: checks.Check) -> Callable[[object, Any], Any]:
    """A field hook: structure as ``tp``, then apply each check unless None."""

    def structure(value: object, _: Any) -> Any:
        result = converter.structure(value, tp)
        if result is not None:
            for rule in rules:
                rule(result)
        return result

    structure.checks = rules  # type: ignore[attr-defined]  # read by the JSON Schema
    return structure


_opt_str = str | None
_opt_int = int | None

# Per-field rules, by class and attribute name.
_RULES: dict[type, dict[str, Callable[[object, Any], Any]]] = {
    Connector: {
        "id": _checked(str, checks.kebab),
        "name": _checked(str, checks.one_line),
        "summary": _checked(str, checks.one_line),
        "description": _checked(str, checks.nonblank),
        "capabilities": _checked(
            tuple[Capability, ...],
            checks.nonempty,
            checks.unique(lambda c: c.id, ".id", "capability id"),
        ),
        "docs_path": _checked(_opt_str, checks.public_url),
        "tags": _checked(tuple[str, ...], checks.each(checks.one_line), checks.unique(what="tag")),
        "fields": _checked(tuple[Field, ...], checks.unique(lambda f: f.id, ".id", "field id")),
        "icon": _checked(_opt_str, checks.icon),
        "translations": _checked(Mapping[str, Translation], checks.keys(checks.locale)),
    },
    Translation: {
        "name": _checked(_opt_str, checks.one_line),
        "summary": _checked(_opt_str, checks.one_line),
        "description": _checked(_opt_str, checks.nonblank),
        "fields": _checked(Mapping[str, FieldTranslation], checks.keys(checks.field_id)),
    },
    SetupStepTranslation: {
        "title": _checked(_opt_str, checks.one_line),
        "description": _checked(_opt_str, checks.nonblank),
    },
    FieldTranslation: {
        "label": _checked(_opt_str, checks.one_line),
        "help": _checked(_opt_str, checks.text),
    },
    ApiKeyAuth: {
        "description": _checked(str, checks.nonblank),
        "header_name": _checked(_opt_str, checks.header_name),
        "query_param": _checked(_opt_str, checks.query_param),
        "value_prefix": _checked(_opt_str, checks.value_prefix),
    },
    BasicAuth: {
        "description": _checked(str, checks.nonblank),
        "username_label": _checked(str, checks.one_line),
        "password_label": _checked(str, checks.one_line),
    },
    OAuth: {
        "authorize_url": _checked(_opt_str, checks.endpoint_template),
        "token_url": _checked(str, checks.endpoint_template),
        "scopes": _checked(tuple[str, ...], checks.each(checks.scope), checks.unique(what="scope")),
        "revocation_url": _checked(_opt_str, checks.endpoint_template),
        "scope_separator": _checked(str, checks.separator),
        "authorize_params": _checked(
            dict[str, str],
            checks.params(
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
            checks.params(
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
            checks.params("grant_type", "refresh_token", "client_id", "client_secret", "scope"),
        ),
        "refresh_margin_seconds": _checked(_opt_int, checks.margin),
        "issuer": _checked(_opt_str, checks.endpoint_url),
        "header_name": _checked(str, checks.header_name),
        "value_prefix": _checked(str, checks.token_prefix),
    },
    Api: {
        "base_url": _checked(str, checks.endpoint_template),
        "headers": _checked(dict[str, str], checks.constant_headers),
        "allowed_hosts": _checked(
            tuple[str, ...], checks.each(checks.host_pattern), checks.unique(what="host")
        ),
        "token_expired_statuses": _checked(tuple[int, ...], checks.error_statuses),
    },
    Retry: {
        "statuses": _checked(tuple[int, ...], checks.error_statuses),
        "retry_after_headers": _checked(
            tuple[str, ...], checks.each(checks.header_name), checks.unique(what="header")
        ),
        "max_attempts": _checked(int, checks.attempts),
        "max_wait_seconds": _checked(int, checks.wait_seconds),
    },
    Verify: {
        "path": _checked(str, checks.api_path),
        "method": _checked(str, checks.method),
        "expect": _checked(tuple[int, ...], checks.statuses),
        "account": _checked(dict[str, str], checks.account_paths),
        "base_url": _checked(_opt_str, checks.endpoint_template),
        "keep": _checked(tuple[str, ...], checks.each(checks.dotted), checks.unique(what="path")),
    },
    TokenResponsePaths: {
        "access_token_path": _checked(str, checks.dotted),
        "refresh_token_path": _checked(str, checks.dotted),
        "expires_in_path": _checked(str, checks.dotted),
        "keep": _checked(tuple[str, ...], checks.each(checks.dotted), checks.unique(what="path")),
    },
    Field: {
        "id": _checked(str, checks.field_id),
        "label": _checked(str, checks.one_line),
        "help": _checked(_opt_str, checks.text),
        "default": _structure_default,
        "pattern": _checked(_opt_str, checks.regex),
        "min_length": _checked(_opt_int, checks.length),
        "max_length": _checked(_opt_int, checks.length),
        "choices": _checked(
            tuple[str, ...], checks.each(checks.one_line), checks.unique(what="choice")
        ),
        "example": _checked(_opt_str, checks.one_line),
        "prefix": _checked(_opt_str, checks.one_line),
        "suffix": _checked(_opt_str, checks.one_line),
    },
    Capability: {
        "id": _checked(str, checks.kebab),
        "label": _checked(str, checks.one_line),
    },
    SetupStep: {
        "title": _checked(str, checks.one_line),
        "description": _checked(str, checks.nonblank),
    },
    Publisher: {
        "name": _checked(str, checks.one_line),
        "url": _checked(_opt_str, checks.public_url),
        "email": _checked(_opt_str, checks.email),
    },
    Connection: {
        "start_path": _checked(str, checks.server_path),
        "status_path": _checked(_opt_str, checks.server_path),
        "disconnect_path": _checked(_opt_str, checks.server_path),
        "account_key": _checked(_opt_str, checks.status_field),
    },
}


# Left out of the wire form while at their default, so manifests without them read as before.
_OMIT_DEFAULT = {
    (Connector, "fields"),
    (Connector, "translations"),
    (Translation, "setup"),
    (Translation, "fields"),
    (Verify, "method"),
    (Verify, "expect"),
    (Verify, "account"),
    (Verify, "keep"),
    *((Api, name) for name in ("headers", "allowed_hosts", "retry", "token_expired_statuses")),
    *((Retry, a.name) for a in attrs.fields(Retry)),
    (Field, "choices"),
    (Connection, "multiple"),
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
    """Register ``cls``'s structure and unstructure hooks.

    Each generated function is made on first use, not here: cattrs generates
    and compiles code per class, and a discovery that validates one new plugin
    should not pay for the classes its manifests do not use. By then every
    hook is registered, so generation sees the same hooks as at import.
    """
    rules = _RULES.get(cls, {})
    class_rules = CLASS_RULES.get(cls, ())
    generated: dict[str, Callable[..., Any]] = {}

    def inner(value: Mapping[str, Any]) -> Any:
        function = generated.get("structure")
        if function is None:
            structure_overrides: dict[str, Any] = {
                name: override(rename=wire, struct_hook=rules.get(name))
                for name, wire in _wire_names(cls).items()
            }
            function = generated["structure"] = make_dict_structure_fn(
                cls, converter, _cattrs_forbid_extra_keys=True, **structure_overrides
            )
        return function(value, cls)

    def structure(value: object, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise checks.Invalid(f"expected an object, got {checks.describe(value)}")
        result = inner(value)
        problems = [problem for rule in class_rules for problem in rule(result)]
        if problems:
            raise _Problems(problems)
        return result

    converter.register_structure_hook(cls, structure)

    def plain(obj: Any) -> dict[str, Any]:
        function = generated.get("unstructure")
        if function is None:
            unstructure_overrides: dict[str, Any] = {
                a.name: override(
                    rename=checks.camel(a.name),
                    omit_if_default=a.default is None or (cls, a.name) in _OMIT_DEFAULT,
                )
                for a in attrs.fields(cls)
            }
            function = generated["unstructure"] = make_dict_unstructure_fn(
                cls, converter, **unstructure_overrides
            )
        result: dict[str, Any] = function(obj)
        return result

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
converter.register_structure_hook_factory(_is_model_map, _model_map_hook)
converter.register_unstructure_hook_func(
    _is_model_map, lambda items: {key: converter.unstructure(v) for key, v in items.items()}
)
converter.register_structure_hook(Auth, _structure_auth)
# Leaves first (a habit from when the functions were generated here: a class's
# function is generated with the hooks its attributes' classes have at that moment).
for _cls in (
    TokenResponsePaths,
    Retry,
    Api,
    Verify,
    Field,
    Capability,
    SetupStep,
    Publisher,
    Connection,
    SetupStepTranslation,
    FieldTranslation,
    Translation,
    NoAuth,
    ApiKeyAuth,
    BasicAuth,
    OAuth,
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
            where = f".{inote.index}" if isinstance(inote.index, str) else f"[{inote.index}]"
            yield from _problems(sub, path + where)
        for sub in iter_without:
            yield from _problems(sub, path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        known = list(_wire_names(exc.cl).values()) if exc.cl is not None else []
        for key in sorted(exc.extra_fields):
            yield ManifestProblem(
                f"{path}.{key}", f"unknown field{checks.did_you_mean(key, known)}"
            )
    elif isinstance(exc, checks.Invalid):
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
    except (ClassValidationError, IterableValidationError, checks.Invalid, _Problems) as exc:
        raise ManifestError(list(_problems(exc, "$")), source=source) from None


def _to_wire_value(value: object) -> object:
    if attrs.has(type(value)) or isinstance(value, enum.Enum):
        return converter.unstructure(value)
    if isinstance(value, list | tuple):
        return [_to_wire_value(item) for item in value]
    if isinstance(value, Mapping):  # such as translations={"fr": Translation(...)}
        return {key: _to_wire_value(item) for key, item in value.items()}
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
    data = {checks.camel(k): _to_wire_value(v) for k, v in fields.items() if k not in unknown}
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
    wire = {checks.camel(name) for name in names}
    problems = {}
    for key in fields:
        if checks.camel(key) in wire:
            continue
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems[key] = ManifestProblem(f"$.{key}", f"unknown argument{hint}")
    return problems


def to_wire(connector: Connector) -> dict[str, Any]:
    """Return ``connector`` in the camelCase wire format (JSON-ready)."""
    result: dict[str, Any] = converter.unstructure(connector)
    return result
