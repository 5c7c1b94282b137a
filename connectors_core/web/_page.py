"""The Integrations page: a server-rendered catalogue of every connector.

Readable and usable without JavaScript: the filters are a GET form, Connect is
a link (OAuth) or a form (API key), Disconnect is a form with the session's
CSRF token. ``integrations.js`` only improves it: filtering as you type, and
live connection state from the status route.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .._manifest import ApiKeyAuth, Category, Connector, NoAuth, OAuth, Status
from .._registry import Registry
from ..connections import Connections
from ._security import Authenticator, CsrfGuard, resolve_tenant

__all__ = ["IntegrationsPage"]

HERE = Path(__file__).parent
STATIC = HERE / "static"

_MESSAGES = {
    "connected": "{name} is connected.",
    "disconnected": "{name} is disconnected.",
    "access_denied": "Connecting {name} was cancelled at the provider.",
    "invalid_state": "That connection attempt expired or was already used. Try again.",
    "session_mismatch": "That connection attempt started in another browser. Try again.",
    "provider_unavailable": "{name} could not be reached. Try again in a moment.",
    "not_configured": "{name} is not configured on this server yet.",
}


def _auth_label(connector: Connector) -> str:
    if isinstance(connector.auth, OAuth):
        return "OAuth"
    if isinstance(connector.auth, ApiKeyAuth):
        return "API key"
    return "No credentials"


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
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

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
        cards = [self._card(c, states) for c in self.registry]
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
    def _card(connector: Connector, states: dict[str, dict[str, Any]]) -> dict[str, Any]:
        connectable = connector.id in states and connector.status is not Status.COMING_SOON
        state = states.get(connector.id) or {"connected": False, "error": "not_connected"}
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
            "auth": _auth_label(connector),
            "api_key": connector.auth if isinstance(connector.auth, ApiKeyAuth) else None,
            "no_auth": isinstance(connector.auth, NoAuth),
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
            return None
        name = self.registry.get(connector_id).name
        key = result or error
        if key is None:
            return None
        template = _MESSAGES.get(key, "Connecting {name} failed ({reason}).")
        return {
            "kind": "success" if result else "error",
            "text": template.format(name=name, reason=key[:40]),
        }

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
