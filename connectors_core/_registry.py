"""The registry: every known connector by id, with who provides it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import pluggy

from . import hookspecs
from ._exceptions import DuplicateConnectorError, UnknownConnectorError
from ._manifest import Category, Connector, Status
from ._records import PluginRecord, PluginState, Provider

__all__ = ["Registry"]


class Registry:
    """Connectors by id, plus the plugins discovery found.

    Usually built by :func:`connectors_core.discover`; an application may also
    build one in code and :meth:`register` connectors into it. Iteration is in
    a stable order (by id). An id can be registered only once.
    """

    def __init__(
        self,
        *,
        plugins: Sequence[PluginRecord] = (),
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> None:
        self._connectors: dict[str, Connector] = {}
        self._providers: dict[str, Provider] = {}
        self._plugins = tuple(plugins)
        if plugin_manager is None:
            plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            plugin_manager.add_hookspecs(hookspecs)
        self._plugin_manager = plugin_manager

    def register(self, connector: Connector, provider: Provider | None = None) -> Connector:
        """Add ``connector``; return it.

        :param provider: who provides it; defaults to ``Provider("<code>")``.
        :raises DuplicateConnectorError: when the id is already registered,
            naming both providers.
        """
        provider = provider or Provider("<code>")
        existing = self._providers.get(connector.id)
        if existing is not None:
            raise DuplicateConnectorError(connector.id, existing, provider)
        self._connectors[connector.id] = connector
        self._providers[connector.id] = provider
        return connector

    def get(self, connector_id: str) -> Connector:
        """Return the connector with ``connector_id``.

        :raises UnknownConnectorError: when there is none (with a "did you mean").
        """
        try:
            return self._connectors[connector_id]
        except KeyError:
            raise UnknownConnectorError(connector_id, sorted(self._connectors)) from None

    def provider(self, connector_id: str) -> Provider:
        """Return who provides the connector with ``connector_id``."""
        self.get(connector_id)
        return self._providers[connector_id]

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
        wanted_category = _as_enum(Category, category, "category")
        wanted_status = _as_enum(Status, status, "status")
        return [
            c
            for c in self
            if (wanted_category is None or c.category is wanted_category)
            and (wanted_status is None or c.status is wanted_status)
            and (tag is None or tag in c.tags)
        ]

    @property
    def plugins(self) -> tuple[PluginRecord, ...]:
        """Every plugin discovery saw, in discovery order, whatever its state."""
        return self._plugins

    @property
    def failures(self) -> tuple[PluginRecord, ...]:
        """The plugins that failed to load."""
        return tuple(p for p in self._plugins if p.state is PluginState.FAILED)

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """The pluggy manager holding the loaded plugins (failed ones are removed)."""
        return self._plugin_manager

    @property
    def hook(self) -> pluggy.HookRelay:
        """Shortcut for ``plugin_manager.hook``: call hooks on the loaded plugins."""
        return self._plugin_manager.hook

    def __iter__(self) -> Iterator[Connector]:
        return iter([self._connectors[key] for key in sorted(self._connectors)])

    def __len__(self) -> int:
        return len(self._connectors)

    def __contains__(self, connector_id: object) -> bool:
        return connector_id in self._connectors

    def __getitem__(self, connector_id: str) -> Connector:
        return self.get(connector_id)

    def __repr__(self) -> str:
        return f"<Registry connectors={sorted(self._connectors)} failures={len(self.failures)}>"

    def ids(self) -> list[str]:
        """Return the registered ids, sorted."""
        return sorted(self._connectors)


E = TypeVar("E", Category, Status)


def _as_enum(cls: type[E], value: E | str | None, what: str) -> E | None:
    if value is None or isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        choices: Iterable[str] = (member.value for member in cls)
        raise ValueError(
            f"unknown {what} {value!r}; expected one of {', '.join(choices)}"
        ) from None
