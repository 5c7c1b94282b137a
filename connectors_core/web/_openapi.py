"""The OpenAPI 3 document of the integration routes, built from the registry.

It describes exactly what the routes accept: a request body is a form or a
JSON object with the fields listed (no others), or no body at all; anything
else answers 415 (another media type) or 400 (other fields, non-string values).
What a connect form takes depends on the connector (its fields and its
flow's credentials), so that body is one schema per connector, each naming
its connector in ``x-connector``. A test walks this document and the app's
routes and holds them together.
"""

from __future__ import annotations

from typing import Any

from .._reasons import Reason
from .._registry import Registry
from .._version import __version__
from ..flows import Input, flow_for

__all__ = ["document"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_STATUS = {"$ref": "#/components/schemas/Status"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _json(_ERROR, "An error with a stable reason code") for code in codes}


_TOKEN = {"csrf_token": "The session's CSRF token, when no X-CSRF-Token header is sent."}
_BODY_NOTE = (
    "At most 8 KiB; a form has at most 64 fields, each sent once. "
    "A request without a body needs no Content-Type."
)


def _object(fields: dict[str, str], **extra: Any) -> dict[str, Any]:
    """A JSON object of strings with these fields only (name -> description)."""
    properties = {name: {"type": "string", "description": text} for name, text in fields.items()}
    return {"type": "object", "properties": properties, "additionalProperties": False, **extra}


def _body(form: dict[str, str], json: dict[str, str]) -> dict[str, Any]:
    """An optional request body: a form or a JSON object of strings with these fields only."""
    return {
        "required": False,
        "description": _BODY_NOTE,
        "content": {
            "application/x-www-form-urlencoded": {"schema": _object({**form, **_TOKEN})},
            "application/json": {"schema": _object(json)},
        },
    }


def _describe(item: Input) -> str:
    text = item.label + ("" if item.required else " (optional)")
    if item.field is not None:
        text += f"; a {item.field.type.value} field"
    if item.secret:
        text += "; secret: stored encrypted, never shown"
    return text


def _connect_bodies(registry: Registry) -> tuple[dict[str, Any], dict[str, Any]]:
    """The connect body (one schema per connector, by reference) and those schemas."""
    schemas: dict[str, Any] = {}
    form_refs: list[dict[str, str]] = []
    json_refs: list[dict[str, str]] = []
    for connector in registry:
        if connector.connection is None:
            continue
        inputs = flow_for(connector).inputs(connector)
        title = f"Connect {connector.name}"
        form = {i.name: _describe(i) for i in inputs}
        json = {i.json_name: _describe(i) for i in inputs}
        schemas[f"ConnectForm.{connector.id}"] = _object(
            {**form, **_TOKEN}, title=title, **{"x-connector": connector.id}
        )
        schemas[f"ConnectJson.{connector.id}"] = _object(
            json, title=title, **{"x-connector": connector.id}
        )
        form_refs.append({"$ref": f"#/components/schemas/ConnectForm.{connector.id}"})
        json_refs.append({"$ref": f"#/components/schemas/ConnectJson.{connector.id}"})
    body = {
        "required": False,
        "description": _BODY_NOTE + " The fields are the connector's: see x-connector.",
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"oneOf": form_refs}},
            "application/json": {"schema": {"oneOf": json_refs}},
        },
    }
    return body, schemas


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
        "description": "The session's CSRF token; required unless a form body carries it "
        "as csrf_token (a JSON body cannot).",
        "schema": {"type": "string"},
    }
    submit, connect_schemas = _connect_bodies(registry)
    disconnect = _body({}, {})
    connection = {
        "name": "connection_id",
        "in": "path",
        "required": True,
        "description": "The connection's id (connectionId in its status).",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,100}$"},
    }
    label = "A name for the connection (one line, at most 200 characters); empty clears it."
    paths: dict[str, Any] = {
        "/api/integrations": {
            "get": {
                "operationId": "catalogue",
                "summary": "Every connector the user may view: its manifest (wire form), "
                "this tenant's status and the paths of its pages and routes (no secrets)",
                "parameters": [
                    {
                        "name": "locale",
                        "in": "query",
                        "required": False,
                        "description": "The language of the manifests' display strings "
                        "(from their translations); default: as the pages choose, "
                        "by the host's setting or Accept-Language. English when none fits.",
                        "schema": {
                            "type": "string",
                            "pattern": "^[A-Za-z]{1,8}([-_][A-Za-z0-9]{1,8})*$",
                            "maxLength": 35,
                        },
                    }
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "connectors": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "description": "The manifest's wire form, and:",
                                        "properties": {
                                            "id": {"type": "string"},
                                            "status": {"type": "object"},
                                            "links": {
                                                "type": "object",
                                                "additionalProperties": {"type": "string"},
                                            },
                                            "sandbox": {
                                                "type": "boolean",
                                                "const": True,
                                                "description": "Present when connecting it "
                                                "leads to the sandbox OAuth provider",
                                            },
                                        },
                                        "required": ["id", "status", "links"],
                                    },
                                },
                                "sandbox": {
                                    "type": "boolean",
                                    "const": True,
                                    "description": "Present when the app runs the sandbox "
                                    "(create_app(sandbox=True)): some connections are not real",
                                },
                                "failures": {
                                    "type": "array",
                                    "description": "Plugins that failed to load (only for "
                                    "users allowed to manage): name, distribution, phase and "
                                    "the first line of the error",
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                },
                            },
                            "required": ["connectors"],
                        },
                        "The catalogue",
                    ),
                    **_errors(400, 401),
                },
            }
        },
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
        "/api/integrations/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                    "200": _json({"type": "object"}, "The OpenAPI document of these routes")
                },
            }
        },
        "/api/integrations/{connector_id}/connect": {
            "get": {
                "operationId": "connect",
                "summary": "Start connecting: a redirect to the provider, or the connect form",
                "parameters": [connector],
                "responses": {
                    "303": {"description": "Redirect to the provider's authorization page"},
                    "200": {
                        "description": "The connect form (the connector's inputs)",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 401, 404, 409, 503),
                },
            },
            "post": {
                "operationId": "submitConnect",
                "summary": "Connect with the connector's fields and credentials (stored "
                "server-side; secrets never echoed back)",
                "parameters": [connector, csrf],
                "requestBody": submit,
                "responses": {
                    "200": _json(
                        {"oneOf": [_STATUS, {"$ref": "#/components/schemas/Redirect"}]},
                        "The new status, or where to send the browser next (OAuth)",
                    ),
                    "303": {"description": "A browser: to the provider, or back to the page"},
                    **_errors(400, 401, 403, 404, 409, 413, 415, 422, 502, 503),
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
        "/api/integrations/{connector_id}/test": {
            "post": {
                "operationId": "test",
                "summary": "Verify the stored credentials with the provider; records when",
                "parameters": [connector, csrf],
                "requestBody": _body({}, {}),
                "responses": {
                    "200": _json(_STATUS, "The status, with verifiedAt"),
                    "303": {"description": "Back to the Integrations page"},
                    **_errors(400, 401, 403, 404, 409, 413, 415, 422, 502, 503),
                },
            }
        },
        "/api/integrations/{connector_id}/disconnect": {
            "get": {
                "operationId": "confirmDisconnect",
                "summary": "The page asking whether to disconnect (its form posts here)",
                "parameters": [connector],
                "responses": {
                    "200": {
                        "description": "The confirmation page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "303": {"description": "Back to the Integrations page"},
                    **_errors(401, 403, 404, 409),
                },
            },
            "post": {
                "operationId": "disconnect",
                "summary": "Revoke at the provider where possible and forget the secrets",
                "parameters": [connector, csrf],
                "requestBody": disconnect,
                "responses": {
                    "200": _json(_STATUS, "The new status"),
                    "303": {"description": "Back to the Integrations page"},
                    **_errors(400, 401, 403, 404, 413, 415),
                },
            },
        },
    }
    each = "/api/integrations/{connector_id}/connections/{connection_id}"
    paths.update(
        {
            f"{each}/connect": {
                "get": {
                    **paths["/api/integrations/{connector_id}/connect"]["get"],
                    "operationId": "connectAgain",
                    "summary": "Connect this connection again (its account may not change)",
                    "parameters": [connector, connection],
                },
                "post": {
                    **paths["/api/integrations/{connector_id}/connect"]["post"],
                    "operationId": "submitConnectAgain",
                    "summary": "Connect this connection again with new credentials (its "
                    "account may not change: account_mismatch)",
                    "parameters": [connector, connection, csrf],
                },
            },
            f"{each}/status": {
                "get": {
                    "operationId": "connectionStatus",
                    "summary": "The status of one connection",
                    "parameters": [connector, connection],
                    "responses": {"200": _json(_STATUS, "The status"), **_errors(401, 403, 404)},
                }
            },
            f"{each}/test": {
                "post": {
                    **paths["/api/integrations/{connector_id}/test"]["post"],
                    "operationId": "connectionTest",
                    "summary": "Verify one connection's credentials with the provider",
                    "parameters": [connector, connection, csrf],
                }
            },
            f"{each}/disconnect": {
                "get": {
                    **paths["/api/integrations/{connector_id}/disconnect"]["get"],
                    "operationId": "confirmConnectionDisconnect",
                    "summary": "The page asking whether to disconnect this connection",
                    "parameters": [connector, connection],
                },
                "post": {
                    **paths["/api/integrations/{connector_id}/disconnect"]["post"],
                    "operationId": "connectionDisconnect",
                    "summary": "Revoke one connection where possible and forget its secrets "
                    "(idempotent)",
                    "parameters": [connector, connection, csrf],
                },
            },
            f"{each}/rename": {
                "post": {
                    "operationId": "rename",
                    "summary": "Name one connection (the manage action)",
                    "parameters": [connector, connection, csrf],
                    "requestBody": _body({"label": label}, {"label": label}),
                    "responses": {
                        "200": _json(_STATUS, "The status, with its label"),
                        "303": {"description": "Back to the Integrations page"},
                        **_errors(400, 401, 403, 404, 413, 415, 422),
                    },
                }
            },
        }
    )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "connectors-core integrations",
            "version": __version__,
            "description": "Connect, check and disconnect integrations. Secrets never leave "
            "the server.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string", "enum": [r.value for r in Reason]},
                        "message": {"type": "string"},
                        "fields": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                            "description": "For invalid values: a message per input name",
                        },
                    },
                    "required": ["error", "message"],
                },
                "Redirect": {
                    "type": "object",
                    "properties": {
                        "connected": {"type": "boolean", "enum": [False]},
                        "redirect": {"type": "string", "description": "The provider's URL"},
                    },
                    "required": ["connected", "redirect"],
                },
                **connect_schemas,
                "Status": {
                    "type": "object",
                    "properties": {
                        "connected": {"type": "boolean"},
                        "status": {"type": "object", "additionalProperties": True},
                        "error": {
                            "type": "string",
                            "enum": ["not_connected", "needs_reauth", "provider_unavailable"],
                        },
                        "reason": {"type": "string", "description": "Why it needs the user"},
                        "connectionId": {"type": "string"},
                        "label": {"type": "string"},
                        "account": {"type": "object", "additionalProperties": True},
                        "missingScopes": {"type": "array", "items": {"type": "string"}},
                        "connections": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Status"},
                            "description": "A connector with connection.multiple, asked "
                            "without a connection id: the status of each connection",
                        },
                    },
                    "required": ["connected"],
                },
            }
        },
    }
