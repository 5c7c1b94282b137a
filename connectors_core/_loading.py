"""Loading one plugin: import, register with pluggy, call, validate.

Imported only when a plugin's code is actually needed (a cold discovery, or a
hook call on a plugin that discovery took from the index), so that a warm
start-up pays for neither pluggy nor cattrs.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from ._checks import icon_is_url
from ._converter import define_connector, to_wire
from ._entrypoints import EntryPointSpec, FileStat, stat_file
from ._exceptions import ManifestError, ManifestProblem
from ._manifest import Connector
from ._outcome import Outcome

if TYPE_CHECKING:
    import traceback

__all__ = ["load_object", "new_manager", "process", "register"]

# importlib.metadata.EntryPoint.pattern, so values load exactly as EntryPoint.load() does.
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


def new_manager() -> pluggy.PluginManager:
    """A plugin manager with connectors-core's hookspecs."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return manager


def load_object(value: str) -> object:
    """Import what an entry-point value names, as ``EntryPoint.load()`` would."""
    match = _VALUE.match(value)
    if match is None:
        raise ValueError(f"malformed entry point value {value!r}")
    module = importlib.import_module(match.group("module"))
    attributes = filter(None, (match.group("attr") or "").split("."))
    return functools.reduce(getattr, attributes, module)


def describe_exception(exc: BaseException) -> str:
    """``Type: message (at file:line)``, locating the innermost frame of the plugin's code.

    Frames inside connectors-core are passed over: an author wants the line of
    their own code that went wrong, not the line of ours that noticed.
    """
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frame = _author_frame(exc)
    if frame is not None:
        text += f" (at {os.path.basename(frame.filename)}:{frame.lineno})"
    return text


def author_site(exc: BaseException) -> str | None:
    """``file:line`` of the innermost frame of ``exc`` outside connectors-core.

    For a :class:`ManifestError` raised by ``define_connector(...)`` in a
    plugin, that is the call site in the plugin's module. The file is relative
    to the current directory when it lies inside it, absolute otherwise.
    """
    frame = _author_frame(exc)
    if frame is None:
        return None
    path = frame.filename
    relative = os.path.relpath(path) if os.path.isabs(path) else path
    shown = relative if not relative.startswith(os.pardir) else path
    return f"{shown}:{frame.lineno}"


def manifest_error_at(exc: ManifestError, source: str) -> ManifestError:
    """``exc`` attributed to ``source`` and, when known, to the author's call site."""
    site = author_site(exc)
    return exc.with_source(f"{source} at {site}" if site else source)


_CORE = os.path.dirname(os.path.abspath(__file__)) + os.sep


@functools.cache
def _stdlib_and_site() -> tuple[str, tuple[str, ...]]:
    # sysconfig and traceback are imported when a plugin fails, not by every discovery.
    import sysconfig

    stdlib = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep
    # Some layouts put site-packages inside the standard library's folder.
    site = tuple(os.path.abspath(sysconfig.get_paths()[k]) + os.sep for k in ("purelib", "platlib"))
    return stdlib, site


def _author_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame not in connectors-core, the standard library or the import system."""
    import traceback

    stdlib, site = _stdlib_and_site()
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith("<frozen "):
            continue
        path = os.path.abspath(frame.filename)
        if path.startswith(_CORE) or (path.startswith(stdlib) and not path.startswith(site)):
            continue
        return frame
    return None


def register(manager: pluggy.PluginManager, plugin: object, name: str) -> str | None:
    """Register ``plugin``; return why pluggy rejects it, or None."""
    try:
        manager.register(plugin, name=name)
    except Exception as exc:  # noqa: BLE001 - pluggy raises ValueError or PluginValidationError
        return str(exc)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError:
        manager.unregister(plugin)
        return _unknown_hooks_message(manager, plugin)
    return None


def process(
    manager: pluggy.PluginManager, spec: EntryPointSpec, *, strict: bool = False
) -> Outcome:
    """Load, register, call and validate one plugin; never raises for its faults.

    :param strict: also fail a plugin whose hook-like functions lack ``@hookimpl``
        (see :func:`unmarked_hooks`); otherwise that is only a warning for doctor.
    """
    source = f"plugin {spec.name!r}"
    try:
        plugin = load_object(spec.value)
    except ManifestError as exc:  # define_connector(...) at import: point at the call
        return Outcome.failed(spec, "load", str(manifest_error_at(exc, source)))
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a broken plugin must not stop discovery
        return Outcome.failed(spec, "load", describe_exception(exc))

    if strict:
        unmarked = unmarked_hooks(plugin)
        if unmarked:
            return Outcome.failed(spec, "register", "\n".join(unmarked_message(unmarked)))

    problem = register(manager, plugin, spec.name)
    if problem is not None:
        return Outcome.failed(spec, "register", problem)

    def failed(phase: str, error: str) -> Outcome:
        manager.unregister(plugin)
        return Outcome.failed(spec, phase, error)

    try:
        provided = _call_provide_connector(manager, plugin)
    except ManifestError as exc:  # define_connector(...) inside the hook
        return failed("provide", str(manifest_error_at(exc, source)))
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - recorded against this plugin only
        return failed("provide", f"provide_connector raised {describe_exception(exc)}")
    if isinstance(provided, str):
        return failed("provide", provided)

    connectors: list[Connector] = []
    problems: list[str] = []
    for index, manifest in enumerate(provided):
        where = source if len(provided) == 1 else f"{source}, manifest [{index}]"
        try:
            connectors.append(_validate(manifest, where))
        except ManifestError as exc:
            problems.append(str(exc))
    ids = [c.id for c in connectors]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        problems.append(f"{source} provides connector id(s) {', '.join(repeated)} more than once")
    problems.extend(_icon_problems(connectors, spec))
    if problems:
        return failed("validate", "\n".join(problems))
    return Outcome.loaded(spec, connectors=connectors, plugin=plugin)


def _icon_problems(connectors: Iterable[Connector], spec: EntryPointSpec) -> list[str]:
    """Why each icon file in the plugin's package cannot be served (see :mod:`._icons`)."""
    with_files = [c for c in connectors if c.icon is not None and not icon_is_url(c.icon)]
    if not with_files:
        return []
    from ._exceptions import IconError
    from ._icons import check_plugin_icon

    problems = []
    for connector in with_files:
        try:
            check_plugin_icon(connector, spec)
        except IconError as exc:
            problems.append(str(exc))
    return problems


def unmarked_hooks(plugin: object) -> list[str]:
    """Functions of ``plugin`` named like a hook but not decorated with ``@hookimpl``.

    pluggy ignores them silently, so the plugin would load and never be
    called: a ``provide_connector`` without the decorator provides nothing.
    """
    manager = new_manager()
    names = sorted(n for n in dir(hookspecs) if manager.parse_hookspec_opts(hookspecs, n))
    return [
        name
        for name in names
        if callable(getattr(plugin, name, None))
        and manager.parse_hookimpl_opts(plugin, name) is None
    ]


def unmarked_message(names: Iterable[str]) -> list[str]:
    """One line per unmarked hook-like function, saying how to fix it."""
    return [
        f"function {name!r} is named like a hook but is not decorated with @hookimpl, "
        "so it is never called; decorate it with @hookimpl (from connectors_core import hookimpl)"
        for name in names
    ]


def forget_bytecode(sources: Iterable[str]) -> None:
    """Remove the cached bytecode of source files known to have changed.

    CPython trusts a ``.pyc`` whose recorded source size and modification
    time *in whole seconds* match; an edit of the same size within the same
    second (an editable install being worked on) would load the old code.
    The index knows these files changed, so their bytecode goes.
    """
    for source in sources:
        if not source.endswith(".py"):
            continue
        import contextlib
        import importlib.util

        for optimization in ("", 1, 2):
            with contextlib.suppress(OSError, ValueError):
                os.remove(importlib.util.cache_from_source(source, optimization=optimization))


def module_files(spec: EntryPointSpec) -> list[tuple[str, FileStat]]:
    """Stat every loaded module file of the plugin's top-level package."""
    top = spec.top_level
    files = []
    for name, module in list(sys.modules.items()):
        if name == top or name.startswith(top + "."):
            path = getattr(module, "__file__", None)
            if isinstance(path, str):
                files.append((path, stat_file(path)))
    return sorted(files)


def indexed_files(outcome: Outcome) -> list[tuple[str, FileStat]]:
    """Stat the files a loaded plugin's index entry depends on: its modules and icons.

    An icon was checked when the plugin loaded; an edit to it makes the entry
    stale, so the next discovery loads the plugin and checks the icon again.
    """
    files = module_files(outcome.spec)
    if any(c.icon is not None and not icon_is_url(c.icon) for c in outcome.connectors):
        from ._icons import icon_file

        icons = {icon_file(c, outcome.spec) for c in outcome.connectors} - {None}
        files.extend((path, stat_file(path)) for path in sorted(filter(None, icons)))
    return files


def wire_manifests(outcome: Outcome) -> list[dict[str, Any]]:
    """The outcome's validated manifests in wire form, for the index."""
    return [to_wire(c) for c in outcome.connectors]


def _unknown_hooks_message(manager: pluggy.PluginManager, plugin: object) -> str:
    import difflib

    known = [name for name in dir(hookspecs) if manager.parse_hookspec_opts(hookspecs, name)]
    lines = []
    for attr in sorted(dir(plugin)):
        if attr in known or manager.parse_hookimpl_opts(plugin, attr) is None:
            continue
        close = difflib.get_close_matches(attr, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        lines.append(f"unknown hook {attr!r}{hint} (known hooks: {', '.join(sorted(known))})")
    return "\n".join(lines) or "pluggy rejected the plugin's hooks"


def _call_provide_connector(manager: pluggy.PluginManager, plugin: object) -> list[Any] | str:
    """Call only this plugin's ``provide_connector``.

    Returns the manifests it provided, or a string saying why the result is
    not a manifest.
    """
    if manager.parse_hookimpl_opts(plugin, "provide_connector") is None:
        return []
    result = plugin.provide_connector()  # type: ignore[attr-defined]  # checked just above
    if result is None:
        return []
    if isinstance(result, Connector | Mapping):
        return [result]
    if isinstance(result, list | tuple):
        return list(result)
    return (
        f"provide_connector returned {type(result).__name__}; "
        "expected a manifest, a list of manifests, or None"
    )


def _validate(manifest: object, source: str) -> Connector:
    if not isinstance(manifest, Connector | Mapping):
        problem = ManifestProblem(
            "$", f"expected a Connector or a mapping, got {type(manifest).__name__}"
        )
        raise ManifestError([problem], source=source)
    try:
        return define_connector(manifest)
    except ManifestError as exc:
        raise exc.with_source(source) from None
