"""The exceptions connectors-core raises, all under one base.

::

    ConnectorsError
     ├── ConfigurationError          a setting (environment variable, option) is invalid
     ├── ManifestError               a manifest failed validation (every problem, with paths)
     │    └── IconError               its icon file is missing, too large or unsafe ($.icon)
     ├── ManifestLoadError           a manifest file or module could not be read at all
     ├── RegistryError
     │    ├── UnknownConnectorError   no connector with that id (also a LookupError)
     │    └── DuplicateConnectorError two providers claim the same connector id
     ├── DiscoveryError              strict discovery found failed plugins
     ├── PluginLoadError             a plugin needed for a hook call could not be loaded
     ├── SecretError                 a stored secret cannot be decrypted (tampered, unknown key)
     └── IntegrationError            a connect / status / token operation failed (has a reason code)
          ├── InvalidFieldsError      submitted values failed their rules (by input name)
          ├── NotConnectedError       nothing is connected for this tenant and connector
          ├── NeedsReauthError        the provider rejected the grant; the user must reconnect
          ├── ProviderUnavailableError a transient provider failure; retry later
          ├── LeaseLostError          a refresh outlived its lease; another holder took over
          ├── HostNotAllowedError     a request the connection's credentials may not go with
          ├── ConnectionRequiredError a connector has several connections: which one?
          └── AccountTakenError       another connection holds that account

Each exception carries structured fields (the connector id, the providers, the
field paths, the failed plugins) so that a host application can react to it
without parsing the message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ._records import PluginRecord, Provider

__all__ = [
    "AccountTakenError",
    "ConfigurationError",
    "ConnectionRequiredError",
    "ConnectorsError",
    "DiscoveryError",
    "DuplicateConnectorError",
    "HostNotAllowedError",
    "IconError",
    "IntegrationError",
    "LeaseLostError",
    "ManifestError",
    "ManifestLoadError",
    "ManifestProblem",
    "NeedsReauthError",
    "NotConnectedError",
    "PluginLoadError",
    "ProviderUnavailableError",
    "RegistryError",
    "SecretError",
    "UnknownConnectorError",
]


class ConnectorsError(Exception):
    """Base class of every error raised by connectors-core."""


class ConfigurationError(ConnectorsError, ValueError):
    """A setting is invalid or missing.

    :ivar setting: the environment variable or option at fault.
    """

    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {message}")


@attrs.frozen
class ManifestProblem:
    """One thing wrong with a manifest, located by its field path."""

    path: str
    """Where the problem is, as a JSONPath into the wire format: ``$.auth.headerName``."""

    message: str
    """What is wrong, in plain words."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ManifestError(ConnectorsError, ValueError):
    """A connector manifest is invalid.

    :ivar problems: every problem found, in document order, each with its path.
    :ivar source: what was validated (a plugin, a file, a module attribute), or None.
    """

    problems: tuple[ManifestProblem, ...]
    source: str | None

    def __init__(self, problems: Iterable[ManifestProblem], *, source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where = f" in {self.source}" if self.source else ""
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"invalid connector manifest{where} ({count} {noun}):"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)

    def with_source(self, source: str) -> ManifestError:
        """Return the same error, attributed to ``source``."""
        return ManifestError(self.problems, source=source)


class IconError(ManifestError):
    """A connector's icon cannot be served: the file named by ``$.icon`` is missing, too
    large, not the image its name says, or an SVG that could run code or load anything.

    Raised by :func:`~connectors_core.load_icon`; discovery records it as the plugin's
    failure (phase ``validate``).

    :ivar connector_id: the connector whose icon it is.
    :ivar icon: the manifest's ``icon`` value.
    :ivar provider: who provides the connector (plugin, distribution and version), if known.
    """

    def __init__(
        self, connector_id: str, icon: str | None, message: str, *, provider: Provider | None
    ) -> None:
        self.connector_id = connector_id
        self.icon = icon
        self.provider = provider
        where = f"connector {connector_id!r}"
        if provider is not None:
            where = f"{provider}, {where}"
        shown = f"{icon!r}: " if icon else ""
        super().__init__([ManifestProblem("$.icon", shown + message)], source=where)

    @property
    def distribution(self) -> str | None:
        """The distribution that provides the connector, if known."""
        return self.provider.distribution if self.provider is not None else None


class ManifestLoadError(ConnectorsError):
    """A manifest source (file, module attribute) could not be read.

    :ivar target: what was asked for (a path or ``module:attribute``).
    """

    def __init__(self, target: str, message: str) -> None:
        self.target = target
        super().__init__(f"{target}: {message}")


class RegistryError(ConnectorsError):
    """Base class of registry lookups and registrations that fail."""


class UnknownConnectorError(RegistryError, LookupError):
    """No connector with the requested id is registered.

    :ivar connector_id: the id that was asked for.
    :ivar known: the ids that are registered.
    """

    def __init__(self, connector_id: str, known: Sequence[str]) -> None:
        self.connector_id = connector_id
        self.known = tuple(known)
        message = f"no connector with id {connector_id!r} is registered"
        close = difflib.get_close_matches(connector_id, self.known, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif not self.known:
            message += " (no connectors are installed)"
        super().__init__(message)

    def __str__(self) -> str:
        # LookupError/KeyError would otherwise quote the message.
        return str(self.args[0])


class DuplicateConnectorError(RegistryError):
    """Two providers registered a connector with the same id.

    :ivar connector_id: the contested id.
    :ivar existing: the provider already registered for it.
    :ivar duplicate: the provider that tried to register it again.
    """

    def __init__(self, connector_id: str, existing: Provider, duplicate: Provider) -> None:
        self.connector_id = connector_id
        self.existing = existing
        self.duplicate = duplicate
        super().__init__(
            f"connector id {connector_id!r} is provided by both {existing} and {duplicate}; "
            "uninstall or deny one of them"
        )


class DiscoveryError(ConnectorsError):
    """Strict discovery found plugins that failed to load.

    :ivar failures: the failed plugin records, in discovery order.
    """

    def __init__(self, failures: Sequence[PluginRecord]) -> None:
        self.failures = tuple(failures)
        lines = [f"{len(self.failures)} connector plugin(s) failed to load:"]
        lines.extend(f"  {record.describe()}" for record in self.failures)
        super().__init__("\n".join(lines))


class PluginLoadError(ConnectorsError):
    """A plugin whose hook is needed could not be imported or registered.

    Discovery took the plugin from its index without importing it; importing
    it later, when one of its hooks was called, failed.

    :ivar record: the plugin's record, with the phase and error.
    """

    def __init__(self, record: PluginRecord) -> None:
        self.record = record
        super().__init__(f"cannot load the plugin: {record.describe()}")


class SecretError(ConnectorsError):
    """A stored secret cannot be decrypted: it was tampered with, or its key is gone.

    Never carries the secret or the key.
    """


class IntegrationError(ConnectorsError):
    """A connection operation failed, with a stable reason code.

    :ivar reason: a stable code such as ``not_connected``, ``needs_reauth``,
        ``provider_unavailable``; tests and clients rely on it.
    :ivar connector_id: the connector concerned, if any.
    """

    reason = "integration_error"

    def __init__(self, message: str, *, reason: str | None = None, connector_id: str | None = None):
        self.reason = reason or type(self).reason
        self.connector_id = connector_id
        super().__init__(message)


class InvalidFieldsError(IntegrationError):
    """Values submitted to connect failed their rules; nothing was stored.

    :ivar fields: the message for each failing input, by its name (a field id,
        ``api_key``, ``username`` or ``password``). Messages never quote a secret.
    """

    reason = "invalid_fields"

    def __init__(
        self,
        fields: dict[str, str],
        *,
        reason: str | None = None,
        connector_id: str | None = None,
    ) -> None:
        self.fields = dict(fields)
        details = "; ".join(f"{name}: {message}" for name, message in sorted(self.fields.items()))
        super().__init__(f"invalid values ({details})", reason=reason, connector_id=connector_id)


class NotConnectedError(IntegrationError):
    """Nothing is connected for this tenant and connector."""

    reason = "not_connected"


class NeedsReauthError(IntegrationError):
    """The credentials no longer work and cannot be renewed; the user must connect again.

    :ivar cause: why, as the status shows it: ``invalid_grant`` (the provider
        refused to renew), ``revoked`` (its API refused renewed credentials),
        ``invalid_credentials`` (its API refused credentials that cannot be
        renewed), ``no_refresh_token``, ``client_rejected``, ``missing_values``,
        ``scopes_missing``, or the reason a job gave
        :meth:`~connectors_core.connections.Connections.mark_needs_reauth`.
    """

    reason = "needs_reauth"

    def __init__(
        self,
        message: str,
        *,
        cause: str = "invalid_grant",
        reason: str | None = None,
        connector_id: str | None = None,
    ) -> None:
        self.cause = cause
        super().__init__(message, reason=reason, connector_id=connector_id)


class ProviderUnavailableError(IntegrationError):
    """The provider failed transiently (5xx, 429, timeout); try again later."""

    reason = "provider_unavailable"


class LeaseLostError(IntegrationError):
    """A refresh took longer than its lease; another holder took over, and nothing was saved.

    Try again: the next call finds what the other holder saved.
    """

    reason = "lease_lost"


class HostNotAllowedError(IntegrationError):
    """A request through a connection's client was refused before it was sent.

    Its host is not the connector's ``api.baseUrl`` host nor one of its
    ``api.allowedHosts`` (a redirect included), or it is plain http beyond
    loopback: the connection's credentials never go there.

    :ivar host: the host (and port) refused, or the scheme.
    """

    reason = "host_not_allowed"

    def __init__(self, host: str, what: str, *, connector_id: str | None = None) -> None:
        self.host = host
        if what == "host":
            message = (
                f"a request to {host} was refused: {connector_id} sends its credentials only "
                "to its api.baseUrl host and api.allowedHosts"
            )
        else:
            message = f"a request to {host} over {what} was refused: credentials go over https"
        super().__init__(message, connector_id=connector_id)


class ConnectionRequiredError(IntegrationError):
    """A connector holds several connections for the tenant: say which one (its id)."""

    reason = "connection_required"


class AccountTakenError(IntegrationError):
    """Another connection of the tenant and connector holds that provider account.

    Connecting an account already connected updates its connection; this is
    raised only when two connect the same account at the same moment (try again).
    """

    reason = "account_taken"
