"""Server settings: where the app is reached, its database, its keys, its OAuth clients.

Read from the environment (``CONNECTORS_*``) and, optionally, a TOML file
named by ``CONNECTORS_CONFIG``. Secrets (client secrets, keys) are typed
objects whose ``repr`` hides them, so they never end up in a log line or a
traceback by accident.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from ._exceptions import ConfigurationError

__all__ = ["ClientCredentials", "Settings", "env_prefix", "webhook_key"]

DEFAULT_DATABASE_URL = "sqlite:///connectors.sqlite3"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
_TRUE = {"1", "true", "yes", "on"}
# A mount path: empty, or /-separated segments of URL-safe characters.
_MOUNT_PATH = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*")


def _without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` replaced, for an error message."""
    scheme, _, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}://{authority}{slash}{tail}" if rest else url


def env_prefix(connector_id: str) -> str:
    """``CONNECTORS_<ID>_`` with the id upper-cased and ``-`` turned into ``_``."""
    return f"CONNECTORS_{connector_id.upper().replace('-', '_')}_"


@attrs.frozen
class ClientCredentials:
    """An OAuth client registered with a provider. The secret never prints."""

    client_id: str
    client_secret: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class Settings:
    """Everything the server side of connectors-core is configured with."""

    public_url: str = DEFAULT_PUBLIC_URL
    """Where browsers reach the integration routes: an origin (``https://app.example.com``),
    or an origin and the path they are mounted at (``https://app.example.com/settings``).
    OAuth redirect URIs are built from it."""

    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy URL of the store (``sqlite:///file``, ``memory://``, ``postgresql://…``)."""

    secret_keys: tuple[str, ...] = attrs.field(default=(), repr=False)
    """Keys for encryption at rest, newest first (``CONNECTORS_SECRET_KEYS``)."""

    dev_mode: bool = False
    """Allow a generated local key and the single local tenant (``CONNECTORS_DEV_MODE``)."""

    return_path: str | None = None
    """Where the browser lands after a connect flow (a fixed path, never user input);
    default: the Integrations page, where the routes are mounted."""

    state_lifetime: int = 600
    """Seconds a pending OAuth authorization may take."""

    http_timeout: float = 10.0
    """Seconds before a call to a provider is given up as unavailable."""

    refresh_margin: int = 60
    """Refresh an access token this many seconds before it expires
    (``CONNECTORS_REFRESH_MARGIN``); never more than half the token's lifetime,
    so a short-lived token is not refreshed again right after it was issued."""

    default_token_lifetime: int = 3600
    """Seconds an access token is taken to live when the provider sends a
    refresh token but no usable ``expires_in`` (``CONNECTORS_DEFAULT_TOKEN_LIFETIME``)."""

    plugin_load_timeout: float = 5.0
    """Seconds a request waits for a plugin that is imported on its first hook
    call (``CONNECTORS_PLUGIN_LOAD_TIMEOUT``); the import itself runs off the event loop."""

    max_pending_per_session: int = 10
    """Pending OAuth authorizations one browser session may hold; older ones are dropped."""

    refresh_idle: int = 14 * 86400
    """Renew a refresh token unused this many seconds, before the provider lets it lapse
    (``CONNECTORS_REFRESH_IDLE``; 0: never); done by :meth:`Connections.refresh_due`."""

    refresh_interval: int = 0
    """Seconds between the server's own runs of :meth:`Connections.refresh_due`
    (``CONNECTORS_REFRESH_INTERVAL``; 0, the default: the server runs none, a cron may)."""

    webhook_url: str | None = None
    """Where connection events are also sent, signed (``CONNECTORS_WEBHOOK_URL``): https,
    or http on loopback."""

    webhook_secret: str | None = attrs.field(default=None, repr=False)
    """The Standard Webhooks signing secret, ``whsec_<base64>`` (``CONNECTORS_WEBHOOK_SECRET``);
    required with a webhook URL."""

    event_timeout: float = 10.0
    """Seconds a listener, a plugin's hook or the webhook may take with one event before
    the attempt counts as failed (``CONNECTORS_EVENT_TIMEOUT``)."""

    event_retention: int = 7 * 86400
    """Seconds events are kept (for ``connectors connections events``) before they are
    deleted (``CONNECTORS_EVENT_RETENTION``)."""

    connectors: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict, repr=False)
    """Per-connector settings from the config file (``[connectors.<id>]`` tables)."""

    environ: Mapping[str, str] = attrs.field(factory=dict, repr=False, eq=False)
    """The environment the settings were read from (for per-connector lookups)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``) and ``CONNECTORS_CONFIG``."""
        env = dict(os.environ if environ is None else environ)
        file: dict[str, Any] = {}
        path = env.get("CONNECTORS_CONFIG")
        if path:
            file = _read_config(path)
        server = file.get("server", {})

        def pick(variable: str, key: str, default: Any) -> Any:
            if variable in env and env[variable] != "":
                return env[variable]
            return server.get(key, default)

        keys = pick("CONNECTORS_SECRET_KEYS", "secret_keys", ())
        if isinstance(keys, str):
            keys = tuple(k.strip() for k in keys.split(",") if k.strip())
        values: dict[str, Any] = {
            "webhook_url": pick("CONNECTORS_WEBHOOK_URL", "webhook_url", None) or None,
            "webhook_secret": pick("CONNECTORS_WEBHOOK_SECRET", "webhook_secret", None) or None,
            "public_url": pick("CONNECTORS_PUBLIC_URL", "public_url", DEFAULT_PUBLIC_URL),
            "database_url": pick("CONNECTORS_DATABASE_URL", "database_url", DEFAULT_DATABASE_URL),
            "secret_keys": tuple(keys),
            "dev_mode": str(pick("CONNECTORS_DEV_MODE", "dev_mode", "")).lower() in _TRUE,
            "connectors": file.get("connectors", {}),
            "environ": env,
        }
        for variable, key, kind in _NUMBERS:
            value = pick(variable, key, None)
            if value is not None:
                values[key] = _number(variable, value, kind)
        values.update(overrides)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ConfigurationError for a malformed setting."""
        for variable, key, _kind in _NUMBERS:
            value = getattr(self, key)
            if value < 0 or (key not in _ZERO_ALLOWED and value == 0):
                raise ConfigurationError(variable, f"must be positive, got {value!r}")
        self._check_webhook()
        parts = urlsplit(self.public_url)
        path = parts.path.rstrip("/")
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
            or parts.username is not None
            or not _MOUNT_PATH.fullmatch(path)
            or "/../" in path + "/"
            or "/./" in path + "/"
        ):
            raise ConfigurationError(
                "CONNECTORS_PUBLIC_URL",
                "expected an origin such as https://app.example.com, optionally with the "
                f"path the routes are mounted at (https://app.example.com/settings), "
                f"got {_without_credentials(self.public_url)!r}",
            )

    def _check_webhook(self) -> None:
        if self.webhook_url is None:
            if self.webhook_secret is not None:
                raise ConfigurationError(
                    "CONNECTORS_WEBHOOK_SECRET", "is set, but CONNECTORS_WEBHOOK_URL is not"
                )
            return
        target = urlsplit(self.webhook_url)
        loopback = target.hostname in ("127.0.0.1", "localhost", "::1")
        if target.scheme != "https" and not (target.scheme == "http" and loopback):
            raise ConfigurationError(
                "CONNECTORS_WEBHOOK_URL",
                f"must be an https URL (http only on loopback), got {self.webhook_url!r}",
            )
        if self.webhook_secret is None:
            raise ConfigurationError(
                "CONNECTORS_WEBHOOK_SECRET",
                "is required with CONNECTORS_WEBHOOK_URL: a Standard Webhooks secret, "
                "whsec_ and base64 (make one with `connectors keygen --webhook`)",
            )
        webhook_key(self.webhook_secret)

    @property
    def origin(self) -> str:
        """The public URL's origin: scheme, host and port (what browsers send as ``Origin``)."""
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def mount_path(self) -> str:
        """The path of the public URL (where the routes are mounted): ``""`` at the root,
        else ``/settings`` and the like, without a trailing slash."""
        return urlsplit(self.public_url).path.rstrip("/")

    @property
    def base_url(self) -> str:
        """The public URL without a trailing slash: the origin and the mount path."""
        return self.origin + self.mount_path

    def connector_setting(self, connector_id: str, name: str) -> str | None:
        """``CONNECTORS_<ID>_<NAME>`` from the environment, else ``[connectors.<id>] name``."""
        value = self.environ.get(env_prefix(connector_id) + name.upper())
        if value:
            return value
        table = self.connectors.get(connector_id, {})
        found = table.get(name.lower())
        return str(found) if found else None

    def connector_number(self, connector_id: str, name: str) -> int | None:
        """A whole, non-negative per-connector setting (``CONNECTORS_<ID>_<NAME>``), if set.

        :raises ConfigurationError: when it is set to anything else.
        """
        value = self.connector_setting(connector_id, name)
        if value is None:
            return None
        variable = env_prefix(connector_id) + name.upper()
        number = _number(variable, value, int)
        if number < 0:
            raise ConfigurationError(variable, f"must not be negative, got {value!r}")
        return int(number)

    def client_credentials(self, connector_id: str) -> ClientCredentials | None:
        """The OAuth client for ``connector_id``, or None when it is not configured."""
        client_id = self.connector_setting(connector_id, "client_id")
        if not client_id:
            return None
        return ClientCredentials(client_id, self.connector_setting(connector_id, "client_secret"))

    def redirect_uri(self, connector_id: str) -> str:
        """The fixed OAuth redirect URI of ``connector_id``."""
        return f"{self.base_url}/api/integrations/{connector_id}/callback"


# (environment variable, attribute and config-file key, type) of the numeric settings.
_NUMBERS: tuple[tuple[str, str, type[int] | type[float]], ...] = (
    ("CONNECTORS_STATE_LIFETIME", "state_lifetime", int),
    ("CONNECTORS_HTTP_TIMEOUT", "http_timeout", float),
    ("CONNECTORS_REFRESH_MARGIN", "refresh_margin", int),
    ("CONNECTORS_DEFAULT_TOKEN_LIFETIME", "default_token_lifetime", int),
    ("CONNECTORS_PLUGIN_LOAD_TIMEOUT", "plugin_load_timeout", float),
    ("CONNECTORS_MAX_PENDING_PER_SESSION", "max_pending_per_session", int),
    ("CONNECTORS_REFRESH_IDLE", "refresh_idle", int),
    ("CONNECTORS_REFRESH_INTERVAL", "refresh_interval", int),
    ("CONNECTORS_EVENT_TIMEOUT", "event_timeout", float),
    ("CONNECTORS_EVENT_RETENTION", "event_retention", int),
)
_ZERO_ALLOWED = {"refresh_margin", "refresh_idle", "refresh_interval"}


def webhook_key(secret: str) -> bytes:
    """The key of a Standard Webhooks secret (``whsec_`` and base64).

    :raises ConfigurationError: naming CONNECTORS_WEBHOOK_SECRET, never repeating it.
    """
    import base64
    import binascii

    if not secret.startswith("whsec_"):
        raise ConfigurationError(
            "CONNECTORS_WEBHOOK_SECRET", "must start with whsec_ (the Standard Webhooks form)"
        )
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not 24 <= len(key) <= 64:
        raise ConfigurationError(
            "CONNECTORS_WEBHOOK_SECRET",
            "must be whsec_ and the base64 of 24 to 64 random bytes",
        )
    return key


def _number(variable: str, value: Any, kind: type[int] | type[float]) -> int | float:
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        expected = "a whole number" if kind is int else "a number"
        raise ConfigurationError(variable, f"expected {expected}, got {value!r}") from None


def _read_config(path: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigurationError(
            "CONNECTORS_CONFIG", f"cannot read {path}: {exc.strerror}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError("CONNECTORS_CONFIG", f"invalid TOML in {path}: {exc}") from None
