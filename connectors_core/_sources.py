"""Read manifests from where authors keep them: JSON or TOML files, Python objects."""

from __future__ import annotations

import importlib
import json
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

from ._converter import define_connector
from ._entrypoints import GROUP
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
    ``provide_connector``), or a folder: a plugin project (its
    ``pyproject.toml`` declares ``connectors_core`` entry points, each of
    which is imported from the folder, or its ``src/``) or a Python package
    (a folder with ``__init__.py``, imported from its parent). The current
    directory (and its ``src/``) is importable.

    :raises ManifestLoadError: when the target cannot be read or imported.
    :raises ManifestError: when a manifest is invalid (every problem listed).
    """
    path = Path(target)
    if path.is_dir():
        value = _read_folder(path, target)
    elif path.suffix.lower() in _FILE_SUFFIXES or path.exists():
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


def project_entry_points(folder: Path) -> list[tuple[str, str]] | None:
    """``(name, value)`` of the ``connectors_core`` entry points a ``pyproject.toml`` declares.

    None when ``folder`` has no readable ``pyproject.toml``; an empty list when
    it declares no entry point in the group.
    """
    try:
        data = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    project = data.get("project")
    groups = project.get("entry-points") if isinstance(project, dict) else None
    group = groups.get(GROUP) if isinstance(groups, dict) else None
    if not isinstance(group, dict):
        return []
    return [(str(name), str(value)) for name, value in group.items()]


def project_name(folder: Path) -> str | None:
    """The ``[project] name`` of the ``pyproject.toml`` in ``folder``, if any."""
    try:
        data = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    project = data.get("project")
    name = project.get("name") if isinstance(project, dict) else None
    return name if isinstance(name, str) else None


def _read_folder(folder: Path, target: str) -> object:
    """The manifests of a plugin project folder or of a Python package folder."""
    entry_points = project_entry_points(folder)
    if entry_points:
        roots = [folder / "src", folder] if (folder / "src").is_dir() else [folder]
        manifests: list[object] = []
        for name, value in entry_points:
            where = f"{target} (entry point {name} = {value})"
            provided = _import_target(where, value, roots=roots, plugin=True)
            manifests.extend(provided if isinstance(provided, list | tuple) else [provided])
        return manifests
    resolved = folder.resolve()
    if (folder / "__init__.py").is_file() and resolved.name.isidentifier():
        return _import_target(target, resolved.name, roots=[resolved.parent])
    if entry_points == []:
        reason = f"its pyproject.toml declares no [project.entry-points.{GROUP}]"
    else:
        reason = "neither a plugin project (pyproject.toml) nor a package (__init__.py)"
    raise ManifestLoadError(target, f"is a folder, but {reason}")


def _import_target(
    target: str,
    reference: str | None = None,
    *,
    roots: list[Path] | None = None,
    plugin: bool = False,
) -> object:
    """Import ``reference`` (default ``target``), ``module[:attribute]``, and call it.

    :param roots: where to import from, ahead of ``sys.path`` (default: the
        current directory); an earlier import of the same package is dropped.
    :param plugin: the object is a plugin (an entry point's value), so its
        ``provide_connector`` is what provides the manifests.
    """
    module_name, _, attribute = (reference or target).partition(":")
    module_name, attribute = module_name.strip(), attribute.strip()
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
        raise ManifestLoadError(target, "no such file, and not a module:attribute reference")
    value = _import_module(target, module_name, roots)
    parts = attribute.split(".") if attribute else []
    if plugin or not attribute:
        parts.append("provide_connector")
    for part in parts:
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ManifestLoadError(
                target, f"module {module_name!r} has no attribute {'.'.join(parts)!r}"
            ) from None
    if callable(value) and not isinstance(value, type):
        try:
            value = value()
        except ManifestError as exc:  # define_connector(...) inside the function
            raise _at_call_site(exc, target) from None
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported as the target's failure
            raise ManifestLoadError(target, f"calling it raised {_describe(exc)}") from None
    return value


def _import_module(target: str, module_name: str, roots: list[Path] | None) -> object:
    if roots is None:  # the current directory, and its src/ (a project with the src layout)
        here = Path.cwd()
        paths = [str(here), *([str(here / "src")] if (here / "src").is_dir() else [])]
    else:
        paths = [str(root) for root in roots]
    sys.path[:0] = paths
    try:
        if roots is not None:
            _forget(module_name.split(".")[0])
        return importlib.import_module(module_name)
    except ManifestError as exc:  # define_connector(...) at import: point at the call
        raise _at_call_site(exc, target) from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any import failure is the target's
        raise ManifestLoadError(
            target, f"cannot import {module_name!r}: {_describe(exc)}"
        ) from None
    finally:
        for path in paths:
            sys.path.remove(path)


def _forget(top: str) -> None:
    """Drop an earlier import of ``top``, so the folder's own code is what gets validated."""
    for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
        del sys.modules[name]


def _describe(exc: BaseException) -> str:
    from ._loading import describe_exception

    return describe_exception(exc)


def _at_call_site(exc: ManifestError, target: str) -> ManifestError:
    from ._loading import manifest_error_at

    return manifest_error_at(exc, target)
