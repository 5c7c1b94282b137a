"""The authenticated HTTP client a host's jobs call a provider's API with.

``Connections.client(tenant, connector_id)`` yields an ``httpx2.AsyncClient``
on the connector's ``api.baseUrl`` whose transport does what every job would
otherwise write again:

* refuses, before anything is sent, a request to a host outside the base
  URL's and ``api.allowedHosts`` (a redirect included), or over plain http
  beyond loopback;
* puts the connection's credentials on a *copy* of each request, the way its
  flow says (a bearer token, an API key in its header or query with its
  prefix, Basic), renewing a token shortly before it expires, and lets the
  plugin's ``prepare_request`` hook sign it. The request the job holds (the
  one ``response.request``, exceptions and httpx's own log line show) never
  carries a credential;
* on a token-expired status (``api.tokenExpiredStatuses``) renews the token
  once and sends the request once more; credentials that cannot be renewed,
  or that are refused again, leave the connection ``needs_reauth`` and raise
  :class:`~connectors_core.NeedsReauthError`;
* tries an idempotent request again on ``api.retry.statuses`` and on
  transport errors, waiting what ``Retry-After`` (or the declared reset
  headers) asks within ``maxWaitSeconds``, else a jittered doubling pause.

The synchronous twin runs the same transport on an event loop of its own.
"""

from __future__ import annotations

import email.utils
import inspect
import ipaddress
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, NoReturn

import anyio
import attrs
import httpx2

from .._exceptions import HostNotAllowedError, IntegrationError, NeedsReauthError
from .._manifest import Api, Connector, Retry
from ..flows import flow_for

if TYPE_CHECKING:
    import pluggy
    from anyio.from_thread import BlockingPortal

    from ..store import StoredConnection
    from ._service import Connections

__all__ = ["IDEMPOTENT", "RETRY", "open_client", "open_sync_client"]

# Our own generator: jitter never touches (or depends on) the global random state.
_jitter = random.Random()

log = logging.getLogger("connectors_core.connections")

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods tried again without being asked (RFC 9110 §9.2.2)."""

RETRY = "connectors_core.retry"
"""A request extension: ``extensions={RETRY: True}`` lets a POST or PATCH be tried again."""

_FIRST_PAUSE = 0.5
_RECHECK = 5.0  # seconds an open client goes without reading its connection's state again
_LINKED = ("location", "content-location", "link")  # response headers that carry URLs

HostPort = tuple[str, int | None]


def _host_port(url: httpx2.URL) -> HostPort:
    """The host (ASCII, IDNA-encoded: as patterns are written) and port, if not the default."""
    default = {"https": 443, "http": 80}.get(url.scheme)
    port = url.port if url.port is not None and url.port != default else None
    return url.raw_host.decode("ascii").lower().rstrip("."), port


def _pattern(text: str) -> HostPort:
    """An ``allowedHosts`` entry as (host, port): ``host``, ``*.domain``, either with ``:port``."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    return host.lower(), int(port) if port else None


def _named(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@attrs.frozen
class _Policy:
    """Where requests may go, and when they are tried again (no I/O)."""

    connector_id: str
    base: HostPort
    """The base URL's host and port (None: the scheme's default)."""
    allowed: tuple[HostPort, ...]
    """``api.allowedHosts``, parsed: ``("*.example.com", None)``."""
    retry: Retry
    expired: frozenset[int]
    retry_unsafe: bool

    @classmethod
    def of(cls, connector: Connector, api: Api, base_url: str, retry_unsafe: bool) -> _Policy:
        return cls(
            connector.id,
            _host_port(httpx2.URL(base_url)),
            tuple(_pattern(text) for text in api.allowed_hosts),
            api.retry,
            frozenset(api.token_expired_statuses),
            retry_unsafe,
        )

    def check(self, url: httpx2.URL) -> None:
        """Refuse a URL the connection's credentials may not go to.

        :raises HostNotAllowedError: naming the host (never the URL's query).
        """
        host, port = _host_port(url)
        named = _named(host, port)
        if url.scheme not in ("https", "http") or (url.scheme == "http" and not _is_loopback(host)):
            raise HostNotAllowedError(named, f"{url.scheme}://", connector_id=self.connector_id)
        if (host, port) == self.base:
            return
        for wanted, wanted_port in self.allowed:
            if wanted_port != port:
                continue
            if wanted.startswith("*."):
                if host.endswith(wanted[1:]) and host != wanted[2:]:
                    return
            elif host == wanted:
                return
        raise HostNotAllowedError(named, "host", connector_id=self.connector_id)

    def on_base(self, url: httpx2.URL) -> bool:
        """Whether ``url`` is on the base URL's host (whose refusals speak for the credentials)."""
        return _host_port(url) == self.base

    def may_retry(self, request: httpx2.Request) -> bool:
        return (
            request.method in IDEMPOTENT or self.retry_unsafe or bool(request.extensions.get(RETRY))
        )

    def wait(self, response: httpx2.Response | None, attempt: int, now: float) -> float | None:
        """Seconds to wait before the next attempt, or None to stop at this one.

        ``response`` is None for a transport error. A wait the answer asks for
        beyond ``maxWaitSeconds`` is not waited for: the answer is returned.
        """
        if attempt >= self.retry.max_attempts:
            return None
        if response is not None and response.status_code not in self.retry.statuses:
            return None
        asked = None if response is None else self._asked(response, now)
        if asked is None:
            pause: float = _FIRST_PAUSE * 2 ** (attempt - 1)
            pause *= 1 + _jitter.random() / 2  # timing, not security: any PRNG does
            return min(pause, float(self.retry.max_wait_seconds))
        return asked if asked <= self.retry.max_wait_seconds else None

    def _asked(self, response: httpx2.Response, now: float) -> float | None:
        """The wait the answer asks for, by the first declared header that says one.

        ``Retry-After`` speaks for any answer; a reset header (``X-RateLimit-Reset``),
        which many APIs send with every answer, only for a rate limit (429).
        """
        for name in self.retry.retry_after_headers:
            if name.lower() != "retry-after" and response.status_code != 429:
                continue
            value = response.headers.get(name)
            if value is not None and (wait := retry_after(value, now)) is not None:
                return wait
        return None


def _without_param(value: str, name: str) -> str:
    """``value`` (a URL, or a ``Link`` header of ``<URL>`` parts) without the query ``name``."""

    def clean(url: str) -> str:
        try:
            parsed = httpx2.URL(url)
        except httpx2.InvalidURL:
            return re.sub(rf"(?<=[?&]){re.escape(name)}=[^&#]*&?", "", url)
        if name not in parsed.params:
            return url
        return str(parsed.copy_remove_param(name))

    if "<" in value:
        return re.sub(r"<([^>]*)>", lambda m: f"<{clean(m.group(1))}>", value)
    return clean(value.strip())


def retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a header value: ``120``, an HTTP date, or a reset time.

    A number above 10⁹ is taken as a moment (UNIX seconds; above 10¹², milliseconds),
    as ``X-RateLimit-Reset`` headers give it; a smaller one as seconds to wait.
    """
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        return max(0.0, moment - now)
    if number != number or number < 0:  # NaN, or negative
        return None
    if number > 1e12:
        return max(0.0, number / 1000 - now)
    if number > 1e9:
        return max(0.0, number - now)
    return number


class _Session:
    """One client's view of its connection: credentials, renewal, refusal."""

    def __init__(
        self,
        connections: Connections,
        tenant: str,
        connector: Connector,
        connection: StoredConnection,
        hooks: pluggy.HookRelay,
    ) -> None:
        self.connections = connections
        self.tenant = tenant
        self.connector = connector
        self.flow = flow_for(connector)
        self.connection = connection
        self.hooks = hooks
        self.read_at = time.monotonic()

    async def credentials(self) -> StoredConnection:
        """The connection to send with, its tokens renewed first if they are due.

        Read again every few seconds, so a connection disconnected or marked
        meanwhile stops being used by a client still open.

        :raises NotConnectedError: it was disconnected.
        :raises NeedsReauthError: it needs the user again.
        """
        connection = self.connection
        if time.monotonic() - self.read_at > _RECHECK:
            key = (connection.tenant, connection.connector_id, connection.connection_id)
            connection = await self.connections._usable(*key)
            self.connection, self.read_at = connection, time.monotonic()
        if self.connections._token_due(connection):
            connection = await self.connections._renewed_or_current(connection)
            self.connection = connection
        return connection

    async def refused(self, sent_with: StoredConnection, *, again: bool) -> None:
        """The provider refused the credentials a request was sent with.

        The first time, renewable credentials are renewed (unless someone
        else did meanwhile), for the request to be sent once more.

        :raises NeedsReauthError: they cannot be renewed, or were refused again;
            the connection is marked (unless it changed meanwhile).
        """
        from ._tokens import _credential_of

        if not again and self.flow.renewable(self.connector, sent_with):
            self.connection, _renewed = await self.connections._renewed(
                sent_with, seen=sent_with, rejected=True
            )
            return
        cause = "revoked" if sent_with.tokens is not None else "invalid_credentials"
        await self.connections._mark(sent_with, cause, only_if=_credential_of(sent_with))
        self._refuse(cause)

    def _refuse(self, cause: str) -> NoReturn:
        raise NeedsReauthError(
            f"{self.connector.id} refused the connection's credentials; "
            "the user must connect again",
            cause=cause,
            connector_id=self.connector.id,
        )

    async def authenticated(
        self, request: httpx2.Request, connection: StoredConnection
    ) -> httpx2.Request:
        """A copy of ``request`` with the credentials on it, signed by the plugin if it wants."""
        extensions = {k: v for k, v in request.extensions.items() if k != RETRY}
        sent = httpx2.Request(
            request.method,
            request.url,
            headers=request.headers.copy(),
            content=request.content,
            extensions=extensions,
        )
        self.flow.authenticate(self.connector, connection, sent)
        try:
            prepared = self.hooks.prepare_request(
                connector=self.connector, connection=connection, request=sent
            )
            if inspect.isawaitable(prepared):
                prepared = await prepared
        except Exception as exc:  # noqa: BLE001 - a plugin's bug fails this request, not the job
            # The type only: the request carries the credentials.
            log.warning("prepare_request of %s raised %s", self.connector.id, type(exc).__name__)
            raise IntegrationError(
                f"the plugin of {self.connector.id!r} failed to prepare the request "
                f"({type(exc).__name__})",
                reason="plugin_unavailable",
                connector_id=self.connector.id,
            ) from None
        return prepared if isinstance(prepared, httpx2.Request) else sent


class _Transport(httpx2.AsyncBaseTransport):
    """Credentials, renewal on refusal, retries and the host check, around ``inner``."""

    def __init__(
        self, inner: httpx2.AsyncBaseTransport, session: _Session, policy: _Policy
    ) -> None:
        self.inner = inner
        self.session = session
        self.policy = policy

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.policy.check(request.url)
        await request.aread()  # sent again after a refusal or a retry
        retrying = self.policy.may_retry(request)
        # Only the base host's refusals speak for the credentials (a file CDN's do not),
        # and only when the flow sends any.
        judged = self.session.flow.has_credentials and self.policy.on_base(request.url)
        clock = self.session.connections.now
        attempt, refused = 1, False
        while True:
            connection = await self.session.credentials()
            sent = await self.session.authenticated(request, connection)
            self.policy.check(sent.url)  # a plugin's prepare_request may not send it elsewhere
            try:
                response = await self.inner.handle_async_request(sent)
            except httpx2.TransportError as exc:
                wait = self.policy.wait(None, attempt, clock()) if retrying else None
                if wait is None:
                    raise
                self._log_retry(request, type(exc).__name__, wait, attempt)
            else:
                if judged and response.status_code in self.policy.expired:
                    await response.aclose()
                    await self.session.refused(connection, again=refused)
                    refused = True
                    continue
                wait = self.policy.wait(response, attempt, clock()) if retrying else None
                if wait is None:
                    return self._scrubbed(response)
                await response.aclose()
                self._log_retry(request, f"HTTP {response.status_code}", wait, attempt)
            await anyio.sleep(wait)
            attempt += 1

    def _scrubbed(self, response: httpx2.Response) -> httpx2.Response:
        """The response, the query credential taken out of the URLs its headers carry.

        A server redirecting (or linking the next page) with the request's query
        would otherwise hand the key to the job, its logs and the next request.
        """
        name = self.session.flow.query_credential(self.session.connector)
        if name is None or not any(h in response.headers for h in _LINKED):
            return response
        response.headers = httpx2.Headers(
            [
                (key, _without_param(value, name) if key.lower() in _LINKED else value)
                for key, value in response.headers.multi_items()
            ]
        )
        return response

    def _log_retry(self, request: httpx2.Request, why: str, wait: float, attempt: int) -> None:
        # The path only: a query may hold values a job would not log.
        log.info(
            "%s %s%s: %s; trying again in %.1f s (attempt %d of %d)",
            request.method,
            request.url.host,
            request.url.path,
            why,
            wait,
            attempt + 1,
            self.policy.retry.max_attempts,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _session(
    connections: Connections,
    tenant: str,
    connector_id: str,
    connection_id: str | None,
    retry_unsafe: bool,
) -> tuple[_Session, _Policy, str, dict[str, str]]:
    """Everything a client needs, checked before it is made."""
    from .._fields import TemplateError, fill_text, resolve_url

    connector = connections.registry.get(connector_id)
    api = connector.api
    configured = connections.settings.connector_setting(connector.id, "api_base_url")
    if api is None and configured is None:
        raise IntegrationError(
            f"{connector.id!r} declares no api.baseUrl: there is no API to call",
            reason="no_api",
            connector_id=connector.id,
        )
    api = api or Api(base_url=str(configured))
    connection = await connections._current(tenant, connector.id, connection_id)
    try:
        base_url = resolve_url(configured or api.base_url, connection.config)
        headers = {name: fill_text(value, connection.config) for name, value in api.headers.items()}
    except TemplateError as exc:
        raise NeedsReauthError(
            f"the connection lacks a value {connector.id!r} needs for its API ({exc.message})",
            cause="missing_values",
            connector_id=connector.id,
        ) from None
    hooks = await connections.plugin_hooks(connector)
    session = _Session(connections, tenant, connector, connection, hooks)
    return session, _Policy.of(connector, api, base_url, retry_unsafe), base_url, headers


@asynccontextmanager
async def open_client(
    connections: Connections,
    tenant: str,
    connector_id: str,
    connection_id: str | None = None,
    *,
    retry_unsafe: bool = False,
    timeout: float | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> AsyncIterator[httpx2.AsyncClient]:
    """See :meth:`~connectors_core.connections.Connections.client`."""
    session, policy, base_url, headers = await _session(
        connections, tenant, connector_id, connection_id, retry_unsafe
    )
    inner = transport or httpx2.AsyncHTTPTransport()
    async with httpx2.AsyncClient(
        base_url=base_url,
        headers=headers,
        transport=_Transport(inner, session, policy),
        timeout=connections.settings.http_timeout if timeout is None else timeout,
    ) as client:
        yield client


class _Bridge(httpx2.BaseTransport):
    """A synchronous transport that runs the async one on a portal's event loop."""

    def __init__(self, portal: BlockingPortal, transport: _Transport) -> None:
        self.portal = portal
        self.transport = transport

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()

        async def send() -> httpx2.Response:
            copy = httpx2.Request(
                request.method,
                request.url,
                headers=request.headers,
                content=body,
                extensions=request.extensions,
            )
            response = await self.transport.handle_async_request(copy)
            try:
                # The raw bytes: the sync client decodes them once, by Content-Encoding.
                content = b"".join([chunk async for chunk in response.aiter_raw()])
            finally:
                await response.aclose()
            return httpx2.Response(
                response.status_code,
                headers=response.headers,
                content=content,
                extensions={k: v for k, v in response.extensions.items() if k != "network_stream"},
            )

        return self.portal.call(send)

    def close(self) -> None:
        self.portal.call(self.transport.aclose)


@contextmanager
def open_sync_client(
    connections: Connections,
    tenant: str,
    connector_id: str,
    connection_id: str | None = None,
    *,
    retry_unsafe: bool = False,
    timeout: float | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> Iterator[httpx2.Client]:
    """See :meth:`~connectors_core.connections.Connections.sync_client`."""
    from anyio.from_thread import start_blocking_portal

    with start_blocking_portal() as portal:
        session, policy, base_url, headers = portal.call(
            _session, connections, tenant, connector_id, connection_id, retry_unsafe
        )
        inner = transport or httpx2.AsyncHTTPTransport()
        bridge = _Bridge(portal, _Transport(inner, session, policy))
        with httpx2.Client(
            base_url=base_url,
            headers=headers,
            transport=bridge,
            timeout=connections.settings.http_timeout if timeout is None else timeout,
        ) as client:
            yield client
