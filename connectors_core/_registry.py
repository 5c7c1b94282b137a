"""The registry: every known connector by id, with who provides it.

A registry built from the discovery index holds each plugin's validated
manifests as the index stored them (decoded the first time one of them is
needed), builds each :class:`Connector` the first time it is asked for, and
imports a plugin only when one of its hooks is called. So enumerating
hundreds of connector ids at start-up costs little more than reading the index.

Imports are thread-safe: each plugin has a lock of its own, so a slow import
of one plugin (in a worker thread) never blocks a hook call on another; the
shared pluggy manager is guarded only while a plugin is registered into it.
"""

from __future__ import annotations

# _thread, not threading: it is built in and already loaded, so a warm start pays nothing.
from _thread import allocate_lock

from ._outcome import Outcome

# Not `typing.TYPE_CHECKING`: importing typing would cost every start-up (see _index).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from _thread import LockType
    from collections.abc import Iterator, Sequence
    from typing import TypeVar

    import pluggy

    from ._manifest import Category, Connector, Status
    from ._records import PluginRecord, Provider

    E = TypeVar("E", Category, Status)

__all__ = ["Registry"]


class _Entry:
    __slots__ = ("connector", "outcome", "position", "provider")

    def __init__(
        self,
        connector: Connector | None,
        position: int,
        provider: tuple[str, str | None, str | None],
        outcome: Outcome | None,
    ) -> None:
        self.connector = connector
        self.position = position
        """Where its manifest is among its plugin's (when the connector is still to build)."""
        self.provider = provider
        self.outcome = outcome


class Registry:
    """Connectors by id, plus the plugins discovery found.

    Usually built by :func:`connectors_core.discover`; an application may also
    build an empty one and :meth:`register` connectors into it. Iteration is
    in a stable order (by id). An id can be registered only once.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._outcomes: list[Outcome] = []
        self._manager: pluggy.PluginManager | None = None
        self._solo: dict[str, pluggy.PluginManager] = {}
        # One lock per plugin (made on demand under _locks_guard), one for the
        # shared manager; never one held while waiting for the other's import.
        self._locks: dict[Outcome, LockType] = {}
        self._locks_guard = allocate_lock()
        self._manager_lock = allocate_lock()

    @classmethod
    def _from_outcomes(
        cls, outcomes: Sequence[Outcome], manager: pluggy.PluginManager | None
    ) -> Registry:
        """Build a registry from discovery's outcomes (duplicates already resolved)."""
        registry = cls()
        registry._outcomes = list(outcomes)
        registry._manager = manager
        for outcome in outcomes:
            if outcome.state != "loaded":
                continue
            spec = outcome.spec
            provider = (spec.name, spec.distribution, spec.version)
            if outcome.connectors:
                for connector in outcome.connectors:
                    registry._entries[connector.id] = _Entry(connector, 0, provider, outcome)
            else:
                for position, connector_id in enumerate(outcome.ids):
                    registry._entries[connector_id] = _Entry(None, position, provider, outcome)
        return registry

    def register(self, connector: Connector, provider: Provider | None = None) -> Connector:
        """Add ``connector``; return it.

        :param provider: who provides it; defaults to ``Provider("<code>")``.
        :raises DuplicateConnectorError: when the id is already registered,
            naming both providers.
        """
        from ._records import Provider

        provider = provider or Provider("<code>")
        existing = self._entries.get(connector.id)
        if existing is not None:
            from ._exceptions import DuplicateConnectorError

            raise DuplicateConnectorError(connector.id, Provider(*existing.provider), provider)
        self._entries[connector.id] = _Entry(
            connector, 0, (provider.plugin, provider.distribution, provider.version), None
        )
        return connector

    def get(self, connector_id: str) -> Connector:
        """Return the connector with ``connector_id``.

        :raises UnknownConnectorError: when there is none (with a "did you mean").
        """
        entry = self._entries.get(connector_id)
        if entry is None:
            from ._exceptions import UnknownConnectorError

            raise UnknownConnectorError(connector_id, sorted(self._entries))
        if entry.connector is None:
            from ._manifest import from_trusted_wire

            assert entry.outcome is not None
            entry.connector = from_trusted_wire(entry.outcome.manifest(entry.position))
        return entry.connector

    def provider(self, connector_id: str) -> Provider:
        """Return who provides the connector with ``connector_id``."""
        from ._records import Provider

        self.get(connector_id)
        return Provider(*self._entries[connector_id].provider)

    def plugin_for(self, connector_id: str) -> PluginRecord | None:
        """Return the record of the plugin that provides ``connector_id``.

        None for a connector registered in code (:meth:`register`).

        :raises UnknownConnectorError: when no connector has that id.
        """
        self.get(connector_id)
        outcome = self._entries[connector_id].outcome
        return outcome.record() if outcome is not None else None

    def filter(
        self,
        *,
        category: Category | str | None = None,
        status: Status | str | None = None,
        tag: str | None = None,
    ) -> list[Connector]:
        """Return the connectors matching every given criterion, in id order.

        ``category`` and ``status`` accept the enum or its wire value
        (``"coming-soon"``); an unknown value raises ValueError naming the
        valid ones.
        """
        from ._manifest import Category, Status

        wanted_category = _as_enum(Category, category, "category")
        wanted_status = _as_enum(Status, status, "status")
        return [
            c
            for c in self
            if (wanted_category is None or c.category is wanted_category)
            and (wanted_status is None or c.status is wanted_status)
            and (tag is None or tag in c.tags)
        ]

    def ids(self) -> list[str]:
        """Return the registered ids, sorted (builds no connector object)."""
        return sorted(self._entries)

    @property
    def plugins(self) -> tuple[PluginRecord, ...]:
        """Every plugin discovery saw, in discovery order, whatever its state."""
        return tuple(outcome.record() for outcome in self._outcomes)

    @property
    def failures(self) -> tuple[PluginRecord, ...]:
        """The plugins that failed to load."""
        return tuple(o.record() for o in self._outcomes if o.state == "failed")

    # --- hooks -----------------------------------------------------------------

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """The pluggy manager holding every loaded plugin.

        Plugins that discovery took from the index are imported now, on first
        access (see :meth:`import_plugins`). One that fails to import is
        recorded in :attr:`failures` and left out; the others are still available.
        """
        self.import_plugins()
        return self._ensure_manager()

    @property
    def hook(self) -> pluggy.HookRelay:
        """Call a hook on every loaded plugin: ``registry.hook.handle_connect(...)``."""
        return self.plugin_manager.hook

    def import_plugins(self) -> None:
        """Import every plugin that discovery took from the index and is not imported yet.

        Idempotent and safe to call from any thread (an application may call
        it in a background thread at start-up, so first hook calls rarely
        wait). A plugin that fails is recorded in :attr:`failures`; the others
        are imported all the same.
        """
        for outcome in self._outcomes:
            if outcome.state == "loaded" and outcome.plugin is None:
                with self._lock_of(outcome):
                    if outcome.state == "loaded" and outcome.plugin is None:
                        self._import(outcome)

    def hook_for(self, connector_id: str) -> pluggy.HookRelay:
        """Call a hook on the plugin that provides ``connector_id`` only.

        Imports that plugin, and no other, if it is not loaded yet; this may
        take as long as the plugin's import does, so an async caller runs it
        in a worker thread (see :meth:`is_loaded`). A call for another plugin
        never waits for that import. For a connector registered in code, the
        relay has no implementations.

        :raises UnknownConnectorError: when no connector has that id.
        :raises PluginLoadError: when the providing plugin cannot be imported
            (now, or in an earlier attempt: a failed plugin is not retried).
        """
        self.get(connector_id)
        outcome = self._entries[connector_id].outcome
        name = outcome.spec.name if outcome is not None else ""
        solo = self._solo.get(name)
        if solo is not None:
            return solo.hook
        from ._loading import new_manager, register

        if outcome is None:
            solo = self._solo.setdefault(name, new_manager())
            return solo.hook
        with self._lock_of(outcome):
            solo = self._solo.get(name)
            if solo is None:
                if outcome.state == "loaded" and outcome.plugin is None:
                    self._import(outcome)
                if outcome.plugin is None:
                    from ._exceptions import PluginLoadError

                    raise PluginLoadError(outcome.record())
                solo = new_manager()
                register(solo, outcome.plugin, name)
                self._solo[name] = solo
        return solo.hook

    def is_loaded(self, connector_id: str) -> bool:
        """Whether :meth:`hook_for` answers for ``connector_id`` without importing anything.

        True when its plugin is imported, when it failed (then ``hook_for``
        raises at once) and for a connector registered in code; False while
        the plugin still has to be imported (or is being imported). Cheap: no
        lock, no import, and no connector object built.

        :raises UnknownConnectorError: when no connector has that id.
        """
        entry = self._entries.get(connector_id)
        if entry is None:
            self.get(connector_id)  # raises UnknownConnectorError, with a "did you mean"
            return False
        outcome = entry.outcome
        return outcome is None or outcome.plugin is not None or outcome.state != "loaded"

    def _lock_of(self, outcome: Outcome) -> LockType:
        lock = self._locks.get(outcome)
        if lock is None:
            with self._locks_guard:
                lock = self._locks.setdefault(outcome, allocate_lock())
        return lock

    def _ensure_manager(self) -> pluggy.PluginManager:
        if self._manager is None:
            from ._loading import new_manager

            with self._manager_lock:
                if self._manager is None:
                    self._manager = new_manager()
        return self._manager

    def _import(self, outcome: Outcome) -> None:
        """Import one plugin and register it into the shared manager (under its lock)."""
        from ._loading import describe_exception, load_object, register

        try:
            plugin = load_object(outcome.spec.value)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - recorded, others go on
            outcome.fail("load", describe_exception(exc))
            return
        manager = self._ensure_manager()
        with self._manager_lock:
            problem = register(manager, plugin, outcome.spec.name)
        if problem is not None:
            outcome.fail("register", problem)
            return
        outcome.plugin = plugin

    # --- container protocol ----------------------------------------------------

    def __iter__(self) -> Iterator[Connector]:
        from ._bulk import PausedGC

        with PausedGC():  # may build every connector at once (see _bulk)
            return iter([self.get(key) for key in sorted(self._entries)])

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, connector_id: object) -> bool:
        return connector_id in self._entries

    def __getitem__(self, connector_id: str) -> Connector:
        return self.get(connector_id)

    def __repr__(self) -> str:
        failed = sum(o.state == "failed" for o in self._outcomes)
        return f"<Registry connectors={self.ids()} failures={failed}>"


def _as_enum(cls: type[E], value: E | str | None, what: str) -> E | None:
    if value is None or isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(member.value for member in cls)
        raise ValueError(f"unknown {what} {value!r}; expected one of {choices}") from None
