"""Verification before storing: new credentials are proven against the provider first.

Right after the credentials are known (an API key, Basic credentials, field
values, OAuth tokens after the exchange) and before anything is stored, the
manifest's ``verify`` request is sent with them, and the plugin's
``verify_connection`` hook is asked. A definitive rejection (401 / 403, a
status the manifest does not expect, the hook saying no) stores nothing and
is ``invalid_credentials``, shown beside the input the flow names; a
transient failure (no answer, 5xx, 429) stores nothing and is
``provider_unavailable``. The account found is what the status shows.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._exceptions import IntegrationError, InvalidFieldsError, ProviderUnavailableError
from .._manifest import Connector

if TYPE_CHECKING:
    import httpx2
    import pluggy

    from ..store import StoredConnection
    from ._base import FlowContext

__all__ = ["Verified", "verified_account", "verify_url"]

log = logging.getLogger("connectors_core.connections")


def _rejected(connector: Connector, message: str) -> IntegrationError:
    """``invalid_credentials``, beside the input the connector's flow names (if any)."""
    from ._table import flow_for

    name = flow_for(connector).rejection_input(connector)
    if name is None:
        return IntegrationError(message, reason="invalid_credentials", connector_id=connector.id)
    return InvalidFieldsError(
        {name: message}, reason="invalid_credentials", connector_id=connector.id
    )


def _unreadable(connector: Connector, message: str) -> IntegrationError:
    return IntegrationError(message, reason="verification_failed", connector_id=connector.id)


@attrs.frozen
class Verified:
    """What a passed verification found: status fields, and values to keep as config."""

    account: dict[str, str] = attrs.field(factory=dict)
    """Status fields from the answer (``verify.account``) and the hook."""

    kept: dict[str, Any] = attrs.field(factory=dict)
    """Values ``verify.keep`` took from the answer, by name (``dc``, ``team_id``)."""


async def verified_account(
    ctx: FlowContext,
    connector: Connector,
    candidate: StoredConnection,
    hooks: pluggy.HookRelay,
) -> Verified:
    """Prove ``candidate``'s credentials; return what the proof found (maybe nothing).

    :raises InvalidFieldsError: ``invalid_credentials``, beside the flow's input.
    :raises IntegrationError: ``invalid_credentials`` (no input to name),
        ``verification_failed`` (an answer that cannot be read, or lacks a
        value ``verify.keep`` needs).
    :raises ProviderUnavailableError: the provider could not answer; try again.
    """
    from ._http import provider_errors

    found = Verified()
    async with ctx.http() as http:
        if connector.verify is not None:
            found = await _request(ctx, connector, candidate, http)

        def refused(status: int) -> IntegrationError:
            message = f"the provider did not accept these credentials (HTTP {status})"
            return _rejected(connector, message)

        try:
            with provider_errors(connector, refused):
                result = hooks.verify_connection(
                    connector=connector, connection=candidate, http=http, settings=ctx.settings
                )
                if inspect.isawaitable(result):
                    result = await result
        except IntegrationError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's bug ends this flow, not the server
            log.warning("verify_connection of %s raised %s", connector.id, type(exc).__name__)
            raise _unreadable(
                connector, f"the verification failed in the plugin ({type(exc).__name__})"
            ) from None
    if result is False:
        raise _rejected(connector, "the provider did not accept these credentials")
    if isinstance(result, Mapping):
        found.account.update({str(k): str(v) for k, v in result.items()})
    return found


def verify_url(ctx: FlowContext, connector: Connector, config: Mapping[str, Any]) -> str:
    """The URL of the verify request, its placeholders filled from ``config``.

    ``CONNECTORS_<ID>_VERIFY_BASE_URL`` replaces ``verify.baseUrl``, and
    ``CONNECTORS_<ID>_API_BASE_URL`` replaces ``api.baseUrl``: a staging API,
    a proxy, the contract suite's provider.

    :raises InvalidFieldsError: a value cannot fill its placeholder.
    :raises IntegrationError: ``verification_failed``: the template cannot be filled.
    """
    from .._fields import TemplateError, resolve_url

    verify, api = connector.verify, connector.api
    assert verify is not None, "called only for a connector with verify"
    if verify.base_url is not None:
        base = ctx.settings.connector_setting(connector.id, "verify_base_url") or verify.base_url
    else:
        assert api is not None, "validation requires a base URL for verify"
        base = ctx.settings.connector_setting(connector.id, "api_base_url") or api.base_url
    try:
        return resolve_url(base.rstrip("/") + verify.path, config)
    except TemplateError as exc:
        if exc.field_id is None:
            raise _unreadable(connector, f"the verify URL cannot be built: {exc.message}") from None
        raise InvalidFieldsError({exc.field_id: exc.message}, connector_id=connector.id) from None


async def _request(
    ctx: FlowContext,
    connector: Connector,
    candidate: StoredConnection,
    http: httpx2.AsyncClient,
) -> Verified:
    """The manifest's verify request, sent with the candidate's credentials."""
    import httpx2

    from ..connections._answers import dig
    from ._table import flow_for

    verify = connector.verify
    assert verify is not None, "called only for a connector with verify"
    request = http.build_request(verify.method, verify_url(ctx, connector, candidate.config))
    flow_for(connector).authenticate(connector, candidate, request)
    try:
        response = await http.send(request)
    except httpx2.TransportError as exc:
        raise ProviderUnavailableError(
            f"the provider could not be reached ({type(exc).__name__})", connector_id=connector.id
        ) from None
    status = response.status_code
    if status >= 500 or status == 429:
        raise ProviderUnavailableError(
            f"the provider answered HTTP {status}", connector_id=connector.id
        )
    if status not in verify.expect:
        raise _rejected(connector, f"the provider did not accept these credentials (HTTP {status})")
    if not verify.account and not verify.keep:
        return Verified()
    try:
        body = response.json()
    except ValueError:
        raise _unreadable(
            connector, "the provider's answer to the verification is not JSON"
        ) from None
    found = Verified()
    for name, path in verify.account.items():
        value = dig(body, path) if isinstance(body, Mapping) else None
        if _scalar(value):
            found.account[name] = str(value)[:200]
    for path in verify.keep:
        value = dig(body, path) if isinstance(body, Mapping) else None
        if not _scalar(value) or len(str(value)) > 2048:
            # Kept values build later URLs (api.baseUrl): without one, nothing would work.
            raise _unreadable(
                connector, f"the provider's answer to the verification has no {path!r}"
            )
        found.kept[path.replace(".", "_")] = value
    return found


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)
