"""Read manifests from where authors keep them: JSON or TOML files, Python objects."""

from __future__ import annotations

import importlib
import json
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

from ._converter import define_connector
from ._exceptions import ManifestError, ManifestLoadError
from ._manifest import Connector

__all__ = ["load_manifests"]

_FILE_SUFFIXES = (".json", ".toml")


def load_manifests(target: str) -> list[Connector]:
    """Load and validate the manifest(s) named by ``target``.

    ``target`` is a ``.json`` or ``.toml`` file holding one manifest in the
    wire format (a top-level ``$schema`` key is ignored), or ``module`` /
    ``module:attribute`` naming a :class:`Connector`, a mapping, a list of
    those, or a callable returning them (a module alone means its
    ``provide_connector``). The current directory is importable.

    :raises ManifestLoadError: when the target cannot be read or imported.
    :raises ManifestError: when a manifest is invalid (every problem listed).
    """
    path = Path(target)
    if path.suffix.lower() in _FILE_SUFFIXES or path.exists():
        value = _read_file(path, target)
    else:
        value = _import_target(target)
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ManifestLoadError(target, "provides no manifest")
    connectors = []
    for index, item in enumerate(items):
        source = target if len(items) == 1 else f"{target} [{index}]"
        if not isinstance(item, Connector | Mapping):
            raise ManifestLoadError(
                source, f"expected a connector manifest, got {type(item).__name__}"
            )
        try:
            connectors.append(define_connector(item))
        except ManifestError as exc:
            raise exc.with_source(source) from None
    return connectors


def _read_file(path: Path, target: str) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ManifestLoadError(target, f"cannot read file: {reason}") from None
    if path.suffix.lower() == ".toml":
        try:
            data: object = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ManifestLoadError(target, f"invalid TOML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestLoadError(
                target, f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
    if isinstance(data, dict):
        data.pop("$schema", None)
    return data


def _import_target(target: str) -> object:
    module_name, _, attribute = target.partition(":")
    if not all(part.isidentifier() for part in module_name.split(".")):
        raise ManifestLoadError(target, "no such file, and not a module:attribute reference")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the target's fault
        raise ManifestLoadError(
            target, f"cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        sys.path.remove(os.getcwd())
    value: object = module
    for part in (attribute or "provide_connector").split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ManifestLoadError(
                target, f"module {module_name!r} has no attribute {attribute or part!r}"
            ) from None
    if callable(value) and not isinstance(value, type):
        try:
            value = value()
        except Exception as exc:  # noqa: BLE001 - reported as the target's failure
            raise ManifestLoadError(
                target, f"calling it raised {type(exc).__name__}: {exc}"
            ) from None
    return value
