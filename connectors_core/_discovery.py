"""Discovery: from installed entry points to a validated :class:`Registry`.

``discover()`` is the one explicit call that loads plugins. It reads the
``connectors_core`` entry-point group through :mod:`importlib.metadata`,
applies the allow and deny lists *before* importing anything, then for each
plugin, in a deterministic order (entry-point name, then distribution):

1. **load**: import the entry point's object;
2. **register**: register it with pluggy and check its hooks (``check_pending``);
3. **provide**: call its ``provide_connector``;
4. **validate**: validate each manifest it returned;
5. **duplicate**: refuse ids already provided by an earlier plugin.

A plugin failing any step is recorded as failed (with distribution, version,
entry point, phase and error), removed from the plugin manager, and the rest
carry on. Strict mode turns any failure into a :class:`DiscoveryError`.
"""

from __future__ import annotations

import difflib
import os
import re
import traceback
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import attrs
import pluggy

from . import hookspecs
from ._converter import define_connector
from ._exceptions import (
    ConfigurationError,
    DiscoveryError,
    DuplicateConnectorError,
    ManifestError,
    ManifestProblem,
)
from ._manifest import Connector
from ._records import Phase, PluginRecord, PluginState, Provider
from ._registry import Registry

__all__ = ["ENV_ALLOW", "ENV_DENY", "ENV_STRICT", "discover"]

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME

ENV_ALLOW = "CONNECTORS_PLUGINS_ALLOW"
"""Comma-separated plugin names; when set, only these plugins are loaded."""

ENV_DENY = "CONNECTORS_PLUGINS_DENY"
"""Comma-separated plugin names that are never loaded."""

ENV_STRICT = "CONNECTORS_STRICT"
"""``1``/``true``/``yes``/``on`` makes any plugin failure raise DiscoveryError."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def discover(
    *,
    allow: Iterable[str] | None = None,
    deny: Iterable[str] | None = None,
    strict: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> Registry:
    """Load every installed connector plugin and return a :class:`Registry`.

    Idempotent: each call builds a fresh registry from what is installed.

    :param allow: plugin names to load, and no others. A name matches an
        entry-point name or a distribution name. Defaults to
        ``$CONNECTORS_PLUGINS_ALLOW`` (unset: every plugin).
    :param deny: plugin names never to load; wins over ``allow``. Defaults to
        ``$CONNECTORS_PLUGINS_DENY``.
    :param strict: raise :class:`DiscoveryError` if any plugin failed.
        Defaults to ``$CONNECTORS_STRICT``.
    :param environ: where the defaults are read from (default ``os.environ``).
    :raises DiscoveryError: in strict mode, listing every failed plugin.
    :raises ConfigurationError: when an environment variable is malformed.
    """
    env = os.environ if environ is None else environ
    allowed = _names(allow) if allow is not None else _env_names(env, ENV_ALLOW)
    denied = _names(deny) if deny is not None else _env_names(env, ENV_DENY) or set()
    if strict is None:
        strict = _env_flag(env, ENV_STRICT)

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    records: list[PluginRecord] = []
    accepted: list[tuple[Provider, list[Connector]]] = []
    owners: dict[str, Provider] = {}
    for entry_point in _entry_points():
        record, connectors = _load_one(manager, entry_point, allowed, denied)
        if connectors is not None:
            clash = next((c.id for c in connectors if c.id in owners), None)
            if clash is None:
                owners.update((c.id, record.provider) for c in connectors)
                accepted.append((record.provider, connectors))
            else:
                # All or nothing: the later plugin loses, deterministically.
                manager.unregister(name=record.name)
                error = DuplicateConnectorError(clash, owners[clash], record.provider)
                record = attrs.evolve(
                    record,
                    state=PluginState.FAILED,
                    phase=Phase.DUPLICATE,
                    error=str(error),
                    connectors=(),
                )
        records.append(record)

    registry = Registry(plugins=records, plugin_manager=manager)
    for provider, connectors in accepted:
        for connector in connectors:
            registry.register(connector, provider)

    if strict and registry.failures:
        raise DiscoveryError(registry.failures)
    return registry


def _entry_points() -> list[metadata.EntryPoint]:
    found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    return sorted(found, key=lambda ep: (ep.name, _dist_name(ep) or "", ep.value))


def _dist_name(entry_point: metadata.EntryPoint) -> str | None:
    dist = entry_point.dist
    return dist.name if dist is not None else None


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(values: Iterable[str]) -> set[str]:
    return {_normalize(v.strip()) for v in values if v.strip()}


def _env_names(env: Mapping[str, str], variable: str) -> set[str] | None:
    raw = env.get(variable)
    if raw is None or not raw.strip():
        return None
    return _names(re.split(r"[,\s]+", raw))


def _env_flag(env: Mapping[str, str], variable: str) -> bool:
    raw = env.get(variable, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(variable, f"expected 1/true/yes/on or 0/false/no/off, got {raw!r}")


def _record(
    entry_point: metadata.EntryPoint,
    state: PluginState,
    phase: Phase | None = None,
    error: str | None = None,
    connectors: tuple[str, ...] = (),
) -> PluginRecord:
    dist = entry_point.dist
    return PluginRecord(
        name=entry_point.name,
        value=entry_point.value,
        distribution=dist.name if dist is not None else None,
        version=dist.version if dist is not None else None,
        state=state,
        phase=phase,
        error=error,
        connectors=connectors,
    )


def _describe_exception(exc: BaseException) -> str:
    """``Type: message (at file:line)``, locating the innermost frame."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {os.path.basename(last.filename)}:{last.lineno})"
    return text


def _load_one(
    manager: pluggy.PluginManager,
    entry_point: metadata.EntryPoint,
    allowed: set[str] | None,
    denied: set[str],
) -> tuple[PluginRecord, list[Connector] | None]:
    """Load, register, call and validate one plugin; never raises for its faults."""
    names = {_normalize(entry_point.name)}
    if (dist := _dist_name(entry_point)) is not None:
        names.add(_normalize(dist))
    if names & denied:
        return _record(entry_point, PluginState.DISABLED, error=f"listed in {ENV_DENY}"), None
    if allowed is not None and not names & allowed:
        return _record(entry_point, PluginState.DISABLED, error=f"not in {ENV_ALLOW}"), None

    def failed(phase: Phase, error: str) -> tuple[PluginRecord, None]:
        return _record(entry_point, PluginState.FAILED, phase, error), None

    try:
        plugin = entry_point.load()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a broken plugin must not stop discovery
        return failed(Phase.LOAD, _describe_exception(exc))

    problem = _register(manager, plugin, entry_point.name)
    if problem is not None:
        return failed(Phase.REGISTER, problem)

    try:
        provided = _call_provide_connector(manager, plugin)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - recorded against this plugin only
        manager.unregister(plugin)
        return failed(Phase.PROVIDE, f"provide_connector raised {_describe_exception(exc)}")
    if isinstance(provided, str):
        manager.unregister(plugin)
        return failed(Phase.PROVIDE, provided)

    source = f"plugin {entry_point.name!r}"
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
    if problems:
        manager.unregister(plugin)
        return failed(Phase.VALIDATE, "\n".join(problems))

    return _record(entry_point, PluginState.LOADED, connectors=tuple(ids)), connectors


def _register(manager: pluggy.PluginManager, plugin: object, name: str) -> str | None:
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


def _unknown_hooks_message(manager: pluggy.PluginManager, plugin: object) -> str:
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
