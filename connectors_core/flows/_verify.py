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
from typing import TYPE_CHECKING

from .._exceptions import IntegrationError, InvalidFieldsError, ProviderUnavailableError
from .._manifest import Connector

if TYPE_CHECKING:
    import httpx2
    import pluggy

    from ..store import StoredConnection
    from ._base import FlowContext

__all__ = ["verified_account"]

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


async def verified_account(
    ctx: FlowContext,
    connector: Connector,
    candidate: StoredConnection,
    hooks: pluggy.HookRelay,
) -> dict[str, str]:
    """Prove ``candidate``'s credentials; return the account fields found (maybe none).

    :raises InvalidFieldsError: ``invalid_credentials``, beside the flow's input.
    :raises IntegrationError: ``invalid_credentials`` (no input to name),
        ``verification_failed`` (an answer that cannot be read).
    :raises ProviderUnavailableError: the provider could not answer; try again.
    """
    from ._http import provider_errors

    account: dict[str, str] = {}
    async with ctx.http() as http:
        if connector.verify is not None:
            base = ctx.settings.connector_setting(connector.id, "api_base_url")
            account.update(await _request(connector, candidate, http, base))

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
        account.update({str(k): str(v) for k, v in result.items()})
    return account


async def _request(
    connector: Connector,
    candidate: StoredConnection,
    http: httpx2.AsyncClient,
    base_url: str | None,
) -> dict[str, str]:
    """The manifest's verify request, sent with the candidate's credentials.

    ``base_url`` (``CONNECTORS_<ID>_API_BASE_URL``) replaces ``api.baseUrl``:
    a staging API, a proxy, the contract suite's provider.
    """
    import httpx2

    from .._fields import TemplateError, resolve_url
    from ..connections._answers import dig
    from ._table import flow_for

    verify, api = connector.verify, connector.api
    assert verify is not None, "called only for a connector with verify"
    assert api is not None, "validation requires api with verify"
    try:
        url = resolve_url((base_url or api.base_url).rstrip("/") + verify.path, candidate.config)
    except TemplateError as exc:
        if exc.field_id is None:
            raise _unreadable(connector, f"the verify URL cannot be built: {exc.message}") from None
        raise InvalidFieldsError({exc.field_id: exc.message}, connector_id=connector.id) from None
    request = http.build_request(verify.method, url)
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
    if not verify.account:
        return {}
    try:
        body = response.json()
    except ValueError:
        raise _unreadable(
            connector, "the provider's answer to the verification is not JSON"
        ) from None
    found: dict[str, str] = {}
    for name, path in verify.account.items():
        value = dig(body, path) if isinstance(body, Mapping) else None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            found[name] = str(value)[:200]
    return found
