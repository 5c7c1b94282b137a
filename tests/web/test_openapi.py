"""The OpenAPI document and the routes agree: paths, methods, parameters and request bodies.

The document is fetched from the running app, and every claim in it is tried
over HTTP: each documented operation is routed, each other method is a 405
that names the documented ones, each documented content type is accepted with
exactly the fields its schema lists, and every other content type is a 415.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx2
import pytest
from starlette.routing import Route

from tests.harness import Harness

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
KEY = "sk_openapi_0123456789"
CONNECTOR = "acme-key"  # an api-key connector: every operation can succeed for it


@pytest.fixture
def document(harness: Harness) -> dict[str, Any]:
    with harness.browser() as browser:
        response = browser.get(f"{harness.origin}/api/integrations/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in document["paths"].items() for method in item}


def concrete(path: str, connection_id: str = "conn_0123456789abcdef") -> str:
    return path.replace("{connector_id}", CONNECTOR).replace("{connection_id}", connection_id)


def connection_of(harness: Harness, browser: httpx2.Client, connector: str) -> str:
    """The id of ``connector``'s connection, connected first if it is not."""
    status = browser.get(f"{harness.origin}/api/integrations/{connector}/status").json()
    if not status["connected"]:
        body = {"apiKey": KEY} if connector == CONNECTOR else {}
        status = browser.post(
            f"{harness.origin}/api/integrations/{connector}/connect",
            json=body,
            headers={"X-CSRF-Token": harness.csrf(browser)},
        ).json()
    return str(status["status"]["connectionId"])


def test_every_documented_operation_is_routed_and_every_route_documented(
    harness: Harness, document: dict[str, Any]
) -> None:
    routed = {
        (route.path, method)
        for route in harness.app.routes
        if isinstance(route, Route) and route.path.startswith("/api/integrations")
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert operations(document) == routed


def test_documented_path_parameters_are_the_routes_parameters(
    harness: Harness, document: dict[str, Any]
) -> None:
    connectable = sorted(c.id for c in harness.connections.registry if c.connection is not None)
    for path, item in document["paths"].items():
        in_path = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for operation in item.values():
            parameters = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            assert {p["name"] for p in parameters} == in_path, path
            for parameter in parameters:
                if parameter["name"] == "connector_id":
                    assert sorted(parameter["schema"]["enum"]) == connectable
                else:
                    assert parameter["name"] == "connection_id"
                    assert parameter["schema"]["type"] == "string"


def test_other_methods_are_a_405_naming_the_documented_ones(
    harness: Harness, document: dict[str, Any]
) -> None:
    wrong = []
    with harness.browser() as browser:
        for path, item in document["paths"].items():
            documented = {method.upper() for method in item}
            allow = documented | ({"HEAD"} if "GET" in documented else set())
            for method in METHODS:
                if method in documented:
                    continue
                response = browser.request(method, f"{harness.origin}{concrete(path)}")
                got = (
                    response.status_code,
                    response.json().get("error"),
                    set(response.headers["allow"].split(", ")),
                )
                if got != (405, "method_not_allowed", allow):
                    wrong.append(f"{method} {path}: {got}")
    assert not wrong, "\n".join(wrong)


def value_for(name: str, token: str) -> str:
    return token if name == "csrf_token" else KEY


def encode(media_type: str, fields: dict[str, str]) -> bytes:
    if media_type == "application/json":
        return json.dumps(fields).encode()
    assert media_type == "application/x-www-form-urlencoded", media_type
    return urlencode(fields).encode()


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.removeprefix("#/components/schemas/")
    return document["components"]["schemas"][name]  # type: ignore[no-any-return]


def bodies(document: dict[str, Any]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(path, method, media type, connector, schema) of every documented request body.

    A body documented per connector (``oneOf`` schemas naming ``x-connector``)
    is tried on that connector; any other on :data:`CONNECTOR`.
    """
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                schema = content["schema"]
                for variant in schema.get("oneOf", [schema]):
                    variant = resolve(document, variant)
                    connector = variant.get("x-connector", CONNECTOR)
                    found.append((path, method.upper(), media_type, connector, variant))
    return found


def send(
    harness: Harness,
    browser: httpx2.Client,
    method: str,
    path: str,
    body: bytes,
    media_type: str,
    connector: str = CONNECTOR,
) -> httpx2.Response:
    if "{connection_id}" in path:
        path = path.replace("{connection_id}", connection_of(harness, browser, connector))
    return browser.request(
        method,
        f"{harness.origin}{path.replace('{connector_id}', connector)}",
        content=body,
        headers={"Content-Type": media_type, "X-CSRF-Token": harness.csrf(browser)},
    )


def test_documented_bodies_are_accepted_with_exactly_their_fields(
    harness: Harness, document: dict[str, Any]
) -> None:
    documented = bodies(document)
    each = "/api/integrations/{connector_id}/connections/{connection_id}"
    assert {(path, method) for path, method, _, _, _ in documented} == {
        ("/api/integrations/{connector_id}/connect", "POST"),
        ("/api/integrations/{connector_id}/test", "POST"),
        ("/api/integrations/{connector_id}/disconnect", "POST"),
        (f"{each}/connect", "POST"),
        (f"{each}/test", "POST"),
        (f"{each}/disconnect", "POST"),
        (f"{each}/rename", "POST"),
    }
    connectable = {c.id for c in harness.connections.registry if c.connection is not None}
    per_connector = {c for path, _, _, c, _ in documented if path.endswith("/connect")}
    assert per_connector == connectable  # every connector's connect body is documented
    for path, method, media_type, connector, schema in documented:
        if path.endswith("/connect") and connector != CONNECTOR:
            continue  # connecting others needs their provider; their fields are below
        with harness.browser() as browser:
            token = harness.csrf(browser)
            assert schema["additionalProperties"] is False
            fields = {name: value_for(name, token) for name in schema["properties"]}
            assert all(p["type"] == "string" for p in schema["properties"].values())
            accepted = send(harness, browser, method, path, encode(media_type, fields), media_type)
            assert accepted.status_code == 200, (path, media_type, accepted.text)

            extra = send(
                harness,
                browser,
                method,
                path,
                encode(media_type, {**fields, "notDocumented": "x"}),
                media_type,
            )
            assert (extra.status_code, extra.json()["error"]) == (400, "invalid_request")

            if fields and media_type == "application/json":
                not_a_string = json.dumps(dict.fromkeys(fields, 12345678)).encode()
                refused = send(harness, browser, method, path, not_a_string, media_type)
                assert (refused.status_code, refused.json()["error"]) == (400, "invalid_request")


def test_each_connectors_documented_fields_are_the_ones_its_route_takes(
    harness: Harness, document: dict[str, Any]
) -> None:
    # A documented field passes the body check (whatever its value then fails);
    # an undocumented one is an invalid_request.
    with harness.browser() as browser:
        for path, _method, media_type, connector, schema in bodies(document):
            if not path.endswith("/connect") or media_type != "application/json":
                continue
            if "{connection_id}" in path:
                continue  # the same bodies, for a connection the provider would have to make
            for name in schema["properties"]:
                body = json.dumps({name: "x"}).encode()
                answer = send(harness, browser, "POST", path, body, media_type, connector)
                assert answer.json().get("error") != "invalid_request", (connector, name)
            body = json.dumps({"notDocumented": "x"}).encode()
            answer = send(harness, browser, "POST", path, body, media_type, connector)
            assert answer.json()["error"] == "invalid_request", connector


@pytest.mark.parametrize(
    "media_type",
    [
        "text/plain",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "application/merge-patch+json",
        "application/octet-stream",
    ],
)
def test_undocumented_content_types_are_a_415(
    harness: Harness, document: dict[str, Any], media_type: str
) -> None:
    with harness.browser() as browser:
        for path, method, documented, _connector, _schema in bodies(document):
            assert media_type.split(";")[0] != documented
            response = send(harness, browser, method, path, b"apiKey=x", media_type)
            assert response.status_code == 415, (path, media_type)
            assert response.json()["error"] == "unsupported_media_type"


def test_a_request_without_a_body_needs_no_content_type(
    harness: Harness, document: dict[str, Any]
) -> None:
    with harness.browser() as browser:
        for path, method, _media_type, _connector, _schema in bodies(document):
            assert document["paths"][path][method.lower()]["requestBody"]["required"] is False
            target = concrete(path, connection_of(harness, browser, "acme-plain"))
            response = browser.request(
                method,
                f"{harness.origin}{target.replace(CONNECTOR, 'acme-plain')}",
                headers={"X-CSRF-Token": harness.csrf(browser)},
            )
            assert response.status_code == 200, (path, response.text)
