"""A plugin's hooks, without importing it on the event loop.

With a warm discovery index a plugin is imported on its first hook call. An
import can be slow (a plugin that loads a large SDK, or sleeps); run on the
event loop it would stall every other request. So:

* :func:`plugin_hooks` answers at once when the plugin is imported already,
  and otherwise has it imported in a daemon thread of its own and waits a
  bounded time; a request for another plugin never waits for it.
* :func:`import_in_background` starts importing every plugin in one daemon
  thread (an application calls it at start-up, so first requests rarely wait).

The imports run in daemon threads, never in the event loop's worker pool: a
worker blocked in an import would hold the process open at exit, and one
waiting per request would pile up while a slow import runs. A waiting request
uses a worker thread only for its bounded wait, from a limiter of its own, so
it never starves the default pool other requests use.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref

import anyio
import pluggy

from .._exceptions import IntegrationError, PluginLoadError
from .._registry import Registry

__all__ = ["import_in_background", "plugin_hooks"]

log = logging.getLogger("connectors_core.connections")

# The longest pause between two looks at an import under way.
_LONGEST_PAUSE = 0.05

# The import under way (or done) per registry and plugin: its thread sets the event.
_imports: weakref.WeakKeyDictionary[Registry, dict[str, threading.Event]] = (
    weakref.WeakKeyDictionary()
)
_imports_guard = threading.Lock()


async def plugin_hooks(
    registry: Registry, connector_id: str, *, timeout: float
) -> pluggy.HookRelay:
    """The hooks of the plugin providing ``connector_id``, never imported on the event loop.

    Returns ``registry.hook_for(connector_id)`` at once when the plugin is
    imported already. Otherwise the plugin is imported in a daemon thread
    (one per plugin, however many requests ask) and this waits up to
    ``timeout`` seconds for it; after that the import goes on, and a later
    call uses the plugin once it is done.

    :raises UnknownConnectorError: for an unknown id.
    :raises IntegrationError: ``plugin_unavailable`` when the plugin failed to
        load, or is still loading after ``timeout`` seconds.
    """
    if not registry.is_loaded(connector_id):
        done = _import_plugin(registry, connector_id)
        if not done.is_set() and not await _wait(done, timeout):
            provider = registry.provider(connector_id)
            log.warning(
                "plugin %r (distribution %s) of connector %r is still loading after %g s; "
                "the request was answered plugin_unavailable, the import goes on",
                provider.plugin,
                provider.distribution or "unknown",
                connector_id,
                timeout,
            )
            raise IntegrationError(
                f"the plugin of {connector_id!r} is still loading after {timeout:g} s; "
                "try again shortly",
                reason="plugin_unavailable",
                connector_id=connector_id,
            )
    try:
        return registry.hook_for(connector_id)
    except PluginLoadError as exc:
        record = exc.record
        phase = record.phase.value if record.phase else "load"
        log.warning("connector %r is unavailable: %s", connector_id, record.describe())
        raise IntegrationError(
            f"the plugin {record.name!r} of {connector_id!r} failed to load "
            f"(phase {phase}); see the server log",
            reason="plugin_unavailable",
            connector_id=connector_id,
        ) from None


def import_in_background(registry: Registry) -> threading.Thread | None:
    """Start importing every plugin not imported yet, in a daemon thread; return it.

    Never blocks: the thread is started and left to run (it never holds the
    process open at exit). A plugin that fails is recorded in
    ``registry.failures``, as on any first use. Returns None when there is
    nothing to import.
    """
    if all(registry.is_loaded(connector_id) for connector_id in registry.ids()):
        return None
    thread = threading.Thread(
        target=_import_all, args=(registry,), name="connectors-core plugin imports", daemon=True
    )
    thread.start()
    return thread


def _import_all(registry: Registry) -> None:
    try:
        registry.import_plugins()
    except Exception:  # a bug, not a plugin's fault (those are recorded): say so, never crash
        log.exception("importing the plugins in the background failed")


def _import_plugin(registry: Registry, connector_id: str) -> threading.Event:
    """The event set when the import of ``connector_id``'s plugin ends; starts it once."""
    plugin = registry.provider(connector_id).plugin
    with _imports_guard:
        imports = _imports.setdefault(registry, {})
        done = imports.get(plugin)
        if done is None:
            done = imports[plugin] = threading.Event()
            threading.Thread(
                target=_import_one,
                args=(registry, connector_id, done),
                name=f"connectors-core import {plugin}",
                daemon=True,
            ).start()
    return done


def _import_one(registry: Registry, connector_id: str, done: threading.Event) -> None:
    try:
        registry.hook_for(connector_id)
    except PluginLoadError:
        pass  # recorded in registry.failures; the waiting request reports it
    finally:
        done.set()


async def _wait(done: threading.Event, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``done`` without blocking the event loop.

    It polls: no thread is taken per waiting request, so a crowd waiting for
    one slow plugin never delays a request for another.
    """
    deadline = time.monotonic() + timeout
    pause = 0.005
    while not done.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await anyio.sleep(min(pause, remaining))
        pause = min(pause * 2, _LONGEST_PAUSE)
    return True
