"""``GET /api/integrations``: the catalogue as JSON, for a host that draws its own page.

Every connector the user may view, its manifest (localized), this tenant's
status, and the links to this app's routes for what the user may do; plugin
failures for managers; the sandbox flag where it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._checks import icon_is_url
from .._exceptions import IntegrationError
from .._manifest import Connector, Status
from ..store import ConnectionSummary
from ._forms import plugin_failures
from ._i18n import is_tag
from ._security import Action, is_allowed, resolve_identity

if TYPE_CHECKING:
    from ._app import _App

__all__ = ["Catalogue"]


class Catalogue:
    """The catalogue route of an :class:`~._app._App`."""

    def __init__(self, app: _App) -> None:
        self.app = app

    async def render(self, request: Request) -> Response:
        """Every connector the user may view, its manifest and this tenant's status.

        Each manifest's display strings are in the best language its ``translations``
        have for ``?locale=`` if given, else as the pages choose (``create_app(locale=)``,
        then ``Accept-Language``), else English.

        :raises IntegrationError: ``unauthenticated``; ``invalid_request`` for a
            ``locale`` that is not a language tag.
        """
        identity = await resolve_identity(self.app.authenticator, request)
        if identity is None:
            raise IntegrationError("sign in to manage integrations", reason="unauthenticated")
        asked = request.query_params.get("locale")
        if asked is not None and not is_tag(asked):
            raise IntegrationError(
                "locale must be a language tag such as fr or pt-BR", reason="invalid_request"
            )
        wanted = [asked] if asked else self.app.pages.languages.preferences(request)
        tenant = identity.tenant
        summaries = await self.app.connections.store.summaries(tenant)
        states = await self.app.connections.statuses(tenant, summaries)
        first: dict[str, ConnectionSummary] = {}
        for summary in summaries:
            first.setdefault(summary.connector_id, summary)
        listed = []
        for connector in self.app.registry:
            only = (
                None
                if connector.connection is not None and connector.connection.multiple
                else first.get(connector.id)
            )
            if not await is_allowed(self.app.authorizer, request, Action.VIEW, connector, only):
                continue
            state = states.get(connector.id)
            if state is None or connector.status is Status.COMING_SOON:
                # As the page decides: nothing to connect (yet).
                state = {"connected": False, "error": "not_connectable"}
            else:
                state = await self.app.visible(request, connector, tenant, state)
            entry = {
                **connector.localized(wanted).to_wire(),
                "status": state,
                "links": await self._links(request, connector, state, only),
            }
            if self.app.sandbox is not None and connector.id in self.app.sandbox.connector_ids:
                entry["sandbox"] = True  # connecting it leads to the sandbox, not the provider
            listed.append(entry)
        body: dict[str, Any] = {"connectors": listed}
        if self.app.sandbox is not None:
            body["sandbox"] = True
        if await is_allowed(self.app.authorizer, request, Action.MANAGE, None):
            body["failures"] = plugin_failures(self.app.registry)
        return JSONResponse(body, headers={"Vary": "Accept-Language"})

    async def _links(
        self,
        request: Request,
        connector: Connector,
        state: Mapping[str, Any],
        connection: ConnectionSummary | None,
    ) -> dict[str, str]:
        """Where a host's own page sends the browser for a connector (this app's routes),
        for what the user may do: its details, icon, status, connect and disconnect."""
        links: dict[str, str] = {}
        if self.app.urls.has("integrations:details", connector_id=connector.id):
            links["details"] = self.app.url(
                request, "integrations:details", connector_id=connector.id
            )
        if connector.icon is not None:
            if icon_is_url(connector.icon):
                links["icon"] = connector.icon
            elif self.app.urls.has("integrations:icon", connector_id=connector.id):
                links["icon"] = self.app.url(
                    request, "integrations:icon", connector_id=connector.id
                )
        if state.get("error") == "not_connectable":
            return links
        links["status"] = self.app.url(request, "integrations:status", connector_id=connector.id)
        for key, name, action in (
            ("connect", "integrations:connect", Action.CONNECT),
            ("disconnect", "integrations:confirm-disconnect", Action.DISCONNECT),
        ):
            if await is_allowed(self.app.authorizer, request, action, connector, connection):
                links[key] = self.app.url(request, name, connector_id=connector.id)
        return links
