"""The OpenAPI 3 document of the integration routes, built from the registry."""

from __future__ import annotations

from typing import Any

from .._registry import Registry
from .._version import __version__

__all__ = ["document"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_STATUS = {"$ref": "#/components/schemas/Status"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _json(_ERROR, "An error with a stable reason code") for code in codes}


def document(registry: Registry) -> dict[str, Any]:
    """The OpenAPI document for the connectors of ``registry`` that can connect."""
    ids = [c.id for c in registry if c.connection is not None]
    connector = {
        "name": "connector_id",
        "in": "path",
        "required": True,
        "description": "The connector's id.",
        "schema": {"type": "string", "enum": ids} if ids else {"type": "string"},
    }
    csrf = {
        "name": "X-CSRF-Token",
        "in": "header",
        "required": False,
        "description": "The session's CSRF token (or the csrf_token form field).",
        "schema": {"type": "string"},
    }
    form = {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {"api_key": {"type": "string"}, "csrf_token": {"type": "string"}},
            }
        },
        "application/json": {
            "schema": {"type": "object", "properties": {"apiKey": {"type": "string"}}}
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "connectors-core integrations",
            "version": __version__,
            "description": "Connect, check and disconnect integrations. Secrets never leave "
            "the server.",
        },
        "paths": {
            "/api/integrations/csrf": {
                "get": {
                    "operationId": "csrf",
                    "summary": "The CSRF token of this browser session (sets the session cookie)",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {"csrfToken": {"type": "string"}},
                                "required": ["csrfToken"],
                            },
                            "The token",
                        )
                    },
                }
            },
            "/api/integrations/{connector_id}/connect": {
                "get": {
                    "operationId": "connect",
                    "summary": "Start connecting: a redirect to the provider, or the API-key form",
                    "parameters": [connector],
                    "responses": {
                        "303": {"description": "Redirect to the provider's authorization page"},
                        "200": {
                            "description": "The API-key form",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        },
                        **_errors(400, 401, 404, 409),
                    },
                },
                "post": {
                    "operationId": "submitApiKey",
                    "summary": "Store an API key (server-side; never echoed back)",
                    "parameters": [connector, csrf],
                    "requestBody": {"required": False, "content": form},
                    "responses": {
                        "200": _json(_STATUS, "The new status"),
                        "303": {"description": "Back to the Integrations page"},
                        **_errors(400, 401, 403, 404, 413, 415, 422),
                    },
                },
            },
            "/api/integrations/{connector_id}/callback": {
                "get": {
                    "operationId": "callback",
                    "summary": "The OAuth redirect URI: exchanges the code server-side",
                    "parameters": [
                        connector,
                        *(
                            {
                                "name": name,
                                "in": "query",
                                "required": False,
                                "schema": {"type": "string"},
                            }
                            for name in ("code", "state", "error")
                        ),
                    ],
                    "responses": {
                        "303": {"description": "Back to the Integrations page, with the outcome"},
                        **_errors(401, 404),
                    },
                }
            },
            "/api/integrations/{connector_id}/status": {
                "get": {
                    "operationId": "status",
                    "summary": "Whether the connector is connected for this tenant",
                    "parameters": [connector],
                    "responses": {"200": _json(_STATUS, "The status"), **_errors(401, 404)},
                }
            },
            "/api/integrations/{connector_id}/disconnect": {
                "post": {
                    "operationId": "disconnect",
                    "summary": "Revoke at the provider where possible and forget the secrets",
                    "parameters": [connector, csrf],
                    "requestBody": {"required": False, "content": form},
                    "responses": {
                        "200": _json(_STATUS, "The new status"),
                        "303": {"description": "Back to the Integrations page"},
                        **_errors(400, 401, 403, 404, 413, 415),
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
                    "required": ["error", "message"],
                },
                "Status": {
                    "type": "object",
                    "properties": {
                        "connected": {"type": "boolean"},
                        "status": {"type": "object", "additionalProperties": True},
                        "error": {
                            "type": "string",
                            "enum": ["not_connected", "needs_reauth", "provider_unavailable"],
                        },
                    },
                    "required": ["connected"],
                },
            }
        },
    }
