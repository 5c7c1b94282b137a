"""The Integrations page: a server-rendered catalogue of every connector.

Readable and usable without JavaScript: the filters are a GET form, Connect is
what the connector's flow says (a link to the provider, a form of its inputs
on the card or on the connect page, or one button), Disconnect is a form with
the session's CSRF token. A connector whose server side is not set up (an
OAuth client without its id) says so instead of offering Connect.
``integrations.js`` only improves it: filtering as you type, and live
connection state from the status route.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .._manifest import Category, Connector, Status
from .._reasons import Reason
from .._registry import Registry
from .._settings import Settings
from ..connections import Connections
from ..flows import flow_for
from ._forms import templates
from ._security import Authenticator, CsrfGuard, resolve_tenant

__all__ = ["IntegrationsPage"]

STATIC = Path(__file__).parent / "static"

# The outcomes of a successful flow; failures show their reason's message.
_RESULTS = {
    "connected": "{name} is connected.",
    "disconnected": "{name} is disconnected.",
    "verified": "{name} answered: the connection works.",
}
INLINE_INPUTS = 2
"""A card shows its connect form inline up to this many inputs; beyond, Connect opens it."""


def _check_failed(connector: Connector, state: dict[str, Any]) -> str | None:
    """The page's message for a failed on-demand check of a connection, if one failed."""
    reason = (state.get("status") or {}).get("verificationError")
    return Reason.of(reason).message.format(name=connector.name) if reason else None


class IntegrationsPage:
    """Renders ``/integrations`` for one registry and its connections."""

    def __init__(
        self,
        registry: Registry,
        connections: Connections,
        authenticator: Authenticator,
        guard: CsrfGuard,
        *,
        demo: bool = False,
    ) -> None:
        self.registry = registry
        self.connections = connections
        self.authenticator = authenticator
        self.guard = guard
        self.demo = demo
        self.templates = templates()

    async def render(self, request: Request) -> Response:
        """The page, for the request's tenant."""
        tenant = await resolve_tenant(self.authenticator, request)
        if tenant is None:
            return HTMLResponse(
                "<!doctype html><title>Sign in</title><p>Sign in to manage integrations.</p>",
                status_code=401,
            )
        session_id, new = self.guard.ensure_session(request)
        query = request.query_params
        wanted = {
            "q": query.get("q", "").strip()[:100],
            "category": query.get("category", ""),
            "status": query.get("status", ""),
            "tag": query.get("tag", ""),
        }
        states = await self.connections.statuses(tenant)
        settings = self.connections.settings
        cards = [self._card(c, states, settings) for c in self.registry]
        visible = [card for card in cards if self._matches(card, wanted)]
        html = self.templates.get_template("integrations.html").render(
            cards=visible,
            total=len(cards),
            wanted=wanted,
            categories=[c.value for c in Category],
            statuses=[s.value for s in Status],
            tags=sorted({tag for card in cards for tag in card["tags"]}),
            csrf_token=self.guard.token(session_id),
            notice=self._notice(query.get("connector"), query.get("result"), query.get("error")),
            failures=self._failures(),
            demo=self.demo,
        )
        response = HTMLResponse(html)
        if new:
            self.guard.set_cookie(response, session_id)
        return response

    @staticmethod
    def _card(
        connector: Connector, states: dict[str, dict[str, Any]], settings: Settings
    ) -> dict[str, Any]:
        connectable = connector.id in states and connector.status is not Status.COMING_SOON
        state = states.get(connector.id) or {"connected": False, "error": "not_connected"}
        flow = flow_for(connector)
        inputs = flow.inputs(connector)
        return {
            "id": connector.id,
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
            "auth": flow.label,
            "step": flow.connect_step(connector).value,
            "inputs": inputs if len(inputs) <= INLINE_INPUTS else (),
            "continues": flow.continues_at_provider(connector),
            "configured": flow.configured(connector, settings),
            "check_failed": _check_failed(connector, state),
            "connectable": connectable,
            "state": state,
            "search": " ".join(
                [connector.name, connector.summary, connector.id, *connector.tags]
            ).lower(),
        }

    @staticmethod
    def _matches(card: dict[str, Any], wanted: dict[str, str]) -> bool:
        return (
            (not wanted["q"] or wanted["q"].lower() in card["search"])
            and (not wanted["category"] or card["category"] == wanted["category"])
            and (not wanted["status"] or card["status"] == wanted["status"])
            and (not wanted["tag"] or wanted["tag"] in card["tags"])
        )

    def _notice(
        self, connector_id: str | None, result: str | None, error: str | None
    ) -> dict[str, str] | None:
        if not connector_id or connector_id not in self.registry:
            if error is None or connector_id:
                return None
            # A failure before any connector was known (an unknown id).
            return {"kind": "error", "text": Reason.of(error).message.format(name="It")}
        name = self.registry.get(connector_id).name
        if result in _RESULTS:
            return {"kind": "success", "text": _RESULTS[result].format(name=name)}
        if error is None:
            return None
        return {"kind": "error", "text": Reason.of(error).message.format(name=name)}

    def _failures(self) -> Sequence[dict[str, str]]:
        return [
            {
                "name": record.name,
                "distribution": record.distribution or "?",
                "phase": record.phase.value if record.phase else "?",
                "error": (record.error or "").splitlines()[0][:160] if record.error else "",
            }
            for record in self.registry.failures
        ]
