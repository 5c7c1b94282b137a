"""The manifest's JSON Schema (draft 2020-12), generated from the model and its rules.

Walks the attrs classes (field names, types, defaults) and takes each field's
constraints from the very rules :func:`define_connector` enforces, so the
schema cannot drift from the validator. Two rules are only approximated (a
JSON Schema cannot compare items of an array by one of their fields, nor
tell a public IP address from a private one); the schema then accepts a
little more than the validator, never less, and says so in its description.
"""

from __future__ import annotations

import enum
import itertools
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

import attrs

from . import _checks, _class_rules, _converter
from ._manifest import Auth, Connector
from ._version import __version__

__all__ = ["SCHEMA_ID", "manifest_schema"]

SCHEMA_ID = f"urn:connectors-core:connector-manifest:{__version__}"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _type_schema(tp: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if tp == Auth or set(args) == set(get_args(Auth)):
            return {"$ref": "#/$defs/Auth"}
        inner = [a for a in args if a is not type(None)]
        if len(inner) > 1:  # a scalar of several JSON types, such as a field's default
            return {"type": [_type_schema(a, definitions)["type"] for a in inner]}
        (only,) = inner
        return {"anyOf": [_type_schema(only, definitions), {"type": "null"}]}
    if origin in (dict, Mapping):  # a map from strings to strings, or to a manifest class
        items = _type_schema(get_args(tp)[1], definitions)
        return {"type": "object", "additionalProperties": items}
    if origin is tuple:
        return {"type": "array", "items": _type_schema(get_args(tp)[0], definitions)}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [member.value for member in tp]}
    if attrs.has(tp):
        definitions.setdefault(tp.__name__, None)
        if definitions[tp.__name__] is None:
            definitions[tp.__name__] = _class_schema(tp, definitions)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    raise TypeError(f"no JSON Schema for {tp!r}")  # pragma: no cover - a new field type


def _apply_rules(schema: dict[str, Any], checks: tuple[Any, ...], notes: list[str]) -> None:
    target = schema["anyOf"][0] if "anyOf" in schema else schema
    for check in checks:
        for key, value in check.json_schema.items():
            if key == "items" and isinstance(target.get("items"), dict):
                target["items"] = {**target["items"], **value}
            else:
                target[key] = value
        if check.json_schema_note:
            notes.append(check.json_schema_note)


def _class_schema(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    attrs.resolve_types(cls)
    rules = _converter._RULES.get(cls, {})
    properties: dict[str, Any] = {}
    required: list[str] = []
    notes: list[str] = []
    tag = cls.type if cls in _converter.AUTH_TYPES.values() else None  # type: ignore[attr-defined]
    if tag is not None:
        properties["type"] = {"const": tag}
        required.append("type")
    for field in attrs.fields(cls):
        wire = _checks.camel(field.name)
        schema = _type_schema(field.type, definitions)
        hook = rules.get(field.name)
        if hook is not None:
            if "$ref" in schema:
                schema = {"allOf": [schema]}
            _apply_rules(schema, getattr(hook, "checks", ()), notes)
        doc = _field_doc(cls, field.name)
        if doc:
            schema["description"] = doc
        properties[wire] = schema
        if field.default is attrs.NOTHING:
            required.append(wire)
    result: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    result.update(_class_rules.CLASS_SCHEMA.get(cls, {}))
    for rule in _class_rules.CLASS_RULES.get(cls, ()):
        note = getattr(rule, "json_schema_note", None)
        if note:
            notes.append(note)
    if cls.__doc__:
        result["description"] = cls.__doc__.strip().splitlines()[0]
    if notes:
        result["$comment"] = "; ".join(dict.fromkeys(notes))
    return result


def _field_doc(cls: type, name: str) -> str | None:
    """The docstring under a field in the class source (attrs keeps none)."""
    import ast
    import inspect

    try:
        tree = ast.parse(inspect.getsource(cls))
    except (OSError, TypeError):  # pragma: no cover - source not available
        return None
    (definition,) = tree.body
    assert isinstance(definition, ast.ClassDef)
    body = definition.body
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            return " ".join(after.value.value.split())
    return None


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of a connector manifest in the wire format (draft 2020-12)."""
    definitions: dict[str, Any] = {}
    root = _class_schema(Connector, definitions)
    variants = [_type_schema(variant, definitions) for variant in get_args(Auth)]
    definitions["Auth"] = {"oneOf": variants, "description": "How the connector authenticates."}
    root["properties"] = {"$schema": {"type": "string"}, **root["properties"]}
    return {
        "$schema": _DIALECT,
        "$id": SCHEMA_ID,
        "title": "connectors-core connector manifest",
        **root,
        "$defs": dict(sorted(definitions.items())),
    }
