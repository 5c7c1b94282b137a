"""The Integrations page: a server-rendered catalogue of every connector.

Readable and usable without JavaScript: the filters are a GET form, Connect is
what the connector's flow says (a link to the provider, a form of its inputs
on the card or on the connect page, or one button), Disconnect goes through a
page asking for confirmation, whose form carries the session's CSRF token. A
connector whose server side is not set up (an OAuth client without its id)
says so instead of offering Connect. A connector that may hold several
connections lists each (its label or account, who connected it and when,
its own Test, Reconnect, Disconnect and rename) and offers to add another.
With an authorizer, a card the user may not ``view`` is left out, and each
action they may not take is not offered (plugin failures need ``manage``).
``integrations.js`` only improves it: filtering as you type, and live
connection state from the status route. Everything is in the request's
language (:mod:`._i18n`), the cards' texts from their manifests' translations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from .._checks import icon_is_url
from .._exceptions import IconError
from .._icons import load_icon
from .._manifest import Category, Connector, Status
from .._settings import Settings
from ..flows import flow_for
from ..store import ConnectionSummary
from ._forms import connection_title, plugin_failures
from ._i18n import N_, Language
from ._security import Action, is_allowed, resolve_identity

if TYPE_CHECKING:
    from ._app import _App

__all__ = ["IntegrationsPage"]

STATIC = Path(__file__).parent / "static"

log = logging.getLogger("connectors_core.web")

# The outcomes of a successful flow (in English; shown translated); failures show their
# reason's message.
_RESULTS = {
    "connected": N_("{name} is connected."),
    "disconnected": N_("{name} is disconnected."),
    "verified": N_("{name} answered: the connection works."),
    "renamed": N_("The {name} connection is renamed."),
}
INLINE_INPUTS = 2
"""A card shows its connect form inline up to this many inputs; beyond, Connect opens it."""


def _check_failed(connector: Connector, state: Mapping[str, Any], language: Language) -> str | None:
    """The page's message for a failed on-demand check of a connection, if one failed."""
    reason = (state.get("status") or {}).get("verificationError")
    return language.reason(reason, connector.name) if reason else None


class IntegrationsPage:
    """Renders the catalogue (``/integrations``) and each connector's details page
    (``/integrations/<id>``) for the routes' app."""

    def __init__(self, app: _App) -> None:
        self.app = app
        self.registry = app.registry
        self.connections = app.connections
        self.authorizer = app.authorizer
        self.guard = app.guard

    async def _cards(
        self, request: Request, tenant: str, connectors: Iterable[Connector]
    ) -> list[dict[str, Any]]:
        """The cards of ``connectors`` the user may view, with what they may do on each."""
        summaries = await self.connections.store.summaries(tenant)
        states = await self.connections.statuses(tenant, summaries)
        held = {(s.connector_id, s.connection_id): s for s in summaries}
        settings = self.connections.settings
        language = self.app.pages.language(request)
        first: dict[str, ConnectionSummary] = {}
        for summary in summaries:
            first.setdefault(summary.connector_id, summary)
        cards = []
        for connector in connectors:
            # A single-connection connector's card shows its connection: view is asked of it.
            several = connector.connection is not None and connector.connection.multiple
            only = None if several else first.get(connector.id)
            if await is_allowed(self.authorizer, request, Action.VIEW, connector, only):
                card = self._card(connector, states, settings, language)
                card["icon"] = self._icon_src(request, connector)
                await self._permit(request, connector, card, held)
                cards.append(card)
        return cards

    async def render(self, request: Request) -> Response:
        """The catalogue, for the request's tenant, with what its user may see and do:
        connected connectors first, then by name; filtered by the query string."""
        identity = await resolve_identity(self.app.authenticator, request)
        if identity is None:
            return self.app.sign_in(request, None)
        session_id, new = self.guard.ensure_session(request)
        query = request.query_params
        wanted = {
            "q": query.get("q", "").strip()[:100],
            "category": query.get("category", ""),
            "status": query.get("status", ""),
            "tag": query.get("tag", ""),
        }
        cards = await self._cards(request, identity.tenant, self.registry)
        cards.sort(key=lambda card: (not card["entries"], card["name"].casefold()))
        # Every card is sent, those the filters leave out hidden: widening the filters in
        # the browser (the script) shows them without a round trip.
        for card in cards:
            card["hidden"] = not self._matches(card, wanted)
        shown = sum(not card["hidden"] for card in cards)
        manager = await is_allowed(self.authorizer, request, Action.MANAGE, None)
        response = self.app.pages.render(
            request,
            "integrations.html",
            cards=cards,
            shown=shown,
            total=len(cards),
            wanted=wanted,
            filtered=any(wanted.values()),
            categories=[c.value for c in Category],
            statuses=[s.value for s in Status],
            tags=sorted({tag for card in cards for tag in card["tags"]}),
            csrf_token=self.guard.token(session_id),
            notice=self._notice(request, query),
            failures=self._failures() if manager else (),
        )
        if new:
            self.guard.set_cookie(response, session_id)
        return response

    def _icon_src(self, request: Request, connector: Connector) -> str | None:
        """Where an ``<img>`` finds the connector's icon: its https URL, or the route
        serving the file from its package; None without one."""
        if connector.icon is None:
            return None
        if icon_is_url(connector.icon):
            return connector.icon
        return self.app.urls.path(request.scope, "integrations:icon", connector_id=connector.id)

    async def icon(self, request: Request) -> Response:
        """A connector's icon from its plugin's package, checked (see :func:`load_icon`)
        and served so that nothing in it runs: its own media type, ``nosniff``, and a
        Content-Security-Policy that allows no script, no request and no frame."""
        connector_id = request.path_params["connector_id"]
        connector = self.registry.get(connector_id) if connector_id in self.registry else None
        if connector is None or connector.icon is None or icon_is_url(connector.icon):
            return Response(status_code=404)
        # Like its card: for a signed-in user allowed to view the connector (which
        # connectors are installed, or hidden from someone, is not for anyone to probe).
        identity = await resolve_identity(self.app.authenticator, request)
        if identity is None or not await is_allowed(
            self.authorizer, request, Action.VIEW, connector
        ):
            return Response(status_code=404)
        try:
            icon = await anyio.to_thread.run_sync(load_icon, connector, self.registry)
        except IconError as exc:
            log.warning("the icon of %s is not served: %s", connector.id, exc)
            return Response(status_code=404)
        headers = {
            "ETag": icon.etag,
            "Cache-Control": "private, max-age=3600",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            "Cross-Origin-Resource-Policy": "same-origin",
        }
        if icon.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(icon.data, media_type=icon.media_type, headers=headers)

    async def details(self, request: Request) -> Response:
        """One connector's page: everything its card shows, its description, capabilities,
        set-up steps and links, at a URL that stays the same."""
        connector_id = request.path_params["connector_id"]
        identity = await resolve_identity(self.app.authenticator, request)
        if identity is None:
            return self.app.sign_in(request, None)
        connector = self.registry.get(connector_id) if connector_id in self.registry else None
        cards = await self._cards(request, identity.tenant, [connector] if connector else [])
        if not cards:  # unknown, or not this user's to view: the same answer
            return self.app.pages.render(
                request, "not_found.html", status_code=404, connector_id=connector_id[:64]
            )
        session_id, new = self.guard.ensure_session(request)
        query = request.query_params
        response = self.app.pages.render(
            request,
            "details.html",
            card=cards[0],
            csrf_token=self.guard.token(session_id),
            notice=self._notice(request, query),
        )
        if new:
            self.guard.set_cookie(response, session_id)
        return response

    @staticmethod
    def _card(
        original: Connector,
        states: dict[str, dict[str, Any]],
        settings: Settings,
        language: Language,
    ) -> dict[str, Any]:
        """A card's data, its texts in ``language`` (the ``original`` English ones are
        searched too)."""
        connector = language.localize(original)
        connectable = connector.id in states and connector.status is not Status.COMING_SOON
        state = states.get(connector.id) or {"connected": False, "error": "not_connected"}
        flow = flow_for(connector)
        inputs = language.inputs(flow.inputs(connector))
        multiple = connector.connection is not None and connector.connection.multiple
        return {
            "id": connector.id,
            "icon": None,
            "name": connector.name,
            "summary": connector.summary,
            "description": connector.description,
            "category": connector.category.value,
            "status": connector.status.value,
            "tags": list(connector.tags),
            "capabilities": [c.label for c in connector.capabilities],
            "setup": [(s.title, s.description) for s in connector.setup],
            "docs": connector.docs_path,
            "publisher": connector.publisher,
            "auth": language.gettext(flow.label),
            "step": flow.connect_step(connector).value,
            "inputs": inputs if len(inputs) <= INLINE_INPUTS else (),
            "continues": flow.continues_at_provider(connector),
            "configured": flow.configured(connector, settings),
            "check_failed": _check_failed(connector, state, language),
            "connectable": connectable,
            "multiple": multiple,
            "state": state,
            "entries": [
                _entry(connector, each, language)
                for each in (state.get("connections", []) if multiple else [state])
                if _connection_id(each)
            ],
            "can_connect": True,
            "search": " ".join(
                dict.fromkeys(  # each text once: the translated and the English ones
                    [
                        connector.name,
                        connector.summary,
                        connector.description,
                        original.name,
                        original.summary,
                        original.description,
                        connector.id,
                        *connector.tags,
                    ]
                )
            ).lower(),
        }

    async def _permit(
        self,
        request: Request,
        connector: Connector,
        card: dict[str, Any],
        held: Mapping[tuple[str, str], ConnectionSummary],
    ) -> None:
        """Ask the authorizer what the user may do on a card and each of its connections."""
        if self.authorizer is None or not card["connectable"]:
            return
        card["can_connect"] = await is_allowed(self.authorizer, request, Action.CONNECT, connector)
        shown = []
        for entry in card["entries"]:
            summary = held.get((connector.id, entry["id"]))
            entry["can"] = {
                action.value: await is_allowed(self.authorizer, request, action, connector, summary)
                for action in Action
            }
            if entry["can"][Action.VIEW.value] or not card["multiple"]:
                shown.append(entry)  # (a single connection's view was asked for its card)
        card["entries"] = shown

    @staticmethod
    def _matches(card: dict[str, Any], wanted: dict[str, str]) -> bool:
        """Every word of the search is somewhere in the card's text, and every filter holds."""
        words = wanted["q"].lower().split()
        return (
            all(word in card["search"] for word in words)
            and (not wanted["category"] or card["category"] == wanted["category"])
            and (not wanted["status"] or card["status"] == wanted["status"])
            and (not wanted["tag"] or wanted["tag"] in card["tags"])
        )

    def _notice(self, request: Request, query: Mapping[str, str]) -> dict[str, str] | None:
        """The outcome the query string reports (``connector`` and ``result`` or ``error``),
        in the request's language."""
        connector_id, result, error = (query.get(k) for k in ("connector", "result", "error"))
        language = self.app.pages.language(request)
        if not connector_id or connector_id not in self.registry:
            if error is None or connector_id:
                return None
            # A failure before any connector was known (an unknown id).
            # Translators: stands for a connector's name in a message about an unknown one.
            return {"kind": "error", "text": language.reason(error, language.gettext("It"))}
        name = language.localize(self.registry.get(connector_id)).name
        if result in _RESULTS:
            return {"kind": "success", "text": language.gettext(_RESULTS[result]).format(name=name)}
        if error is None:
            return None
        return {"kind": "error", "text": language.reason(error, name)}

    def _failures(self) -> Sequence[dict[str, str]]:
        return plugin_failures(self.registry)


def _connection_id(state: Mapping[str, Any]) -> str | None:
    """The id of the connection a status JSON describes, if it describes one."""
    found = (state.get("status") or {}).get("connectionId") or state.get("connectionId")
    return str(found) if found else None


def _entry(connector: Connector, state: Mapping[str, Any], language: Language) -> dict[str, Any]:
    """One connection as a card shows it (every action allowed until asked)."""
    details = state.get("status") or {}
    return {
        "id": _connection_id(state),
        "title": connection_title(connector, state),
        "state": state,
        "connected": bool(state.get("connected")),
        "reauth": state.get("error") == "needs_reauth",
        "label": details.get("label") or state.get("label") or "",
        "by": details.get("connectedBy") or {},
        "at": details.get("connectedAt"),
        "check_failed": _check_failed(connector, state, language),
        "can": {action.value: True for action in Action},
    }
