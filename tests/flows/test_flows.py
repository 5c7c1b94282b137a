"""The flow table: one flow per auth type, each authenticating requests its own way."""

from __future__ import annotations

import ast
import base64
from pathlib import Path
from typing import Any

import httpx2
import pytest

from connectors_core import define_connector
from connectors_core._manifest import AUTH_CLASSES
from connectors_core.flows import FLOWS, ConnectStep, flow_for
from connectors_core.store import ConnectionState, StoredConnection, TokenSet

PACKAGE = Path(__file__).resolve().parents[2] / "connectors_core"


def manifest(auth: dict[str, Any], fields: list[dict[str, Any]] | None = None) -> Any:
    return define_connector(
        id="acme",
        name="Acme",
        summary="Acme.",
        description="Acme.",
        category="custom",
        status="available",
        auth=auth,
        capabilities=[{"id": "x", "label": "X"}],
        fields=fields or [],
    )


def connection(**values: Any) -> StoredConnection:
    return StoredConnection(
        tenant="t", connector_id="acme", state=ConnectionState.CONNECTED, **values
    )


def request() -> httpx2.Request:
    return httpx2.Request("GET", "https://api.acme.example/v1/items?page=2")


def test_every_auth_type_has_exactly_one_flow() -> None:
    assert set(FLOWS) == set(AUTH_CLASSES)
    for auth_type, flow in FLOWS.items():
        assert flow.auth_type == auth_type


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        ({"headerName": "X-Api-Key"}, "X-Api-Key", "sk_0123456789abcdef"),
        (
            {"headerName": "Authorization", "valuePrefix": "Bearer "},
            "Authorization",
            "Bearer sk_0123456789abcdef",
        ),
        (
            {"headerName": "Authorization", "valuePrefix": "Token token="},
            "Authorization",
            "Token token=sk_0123456789abcdef",
        ),
    ],
)
def test_an_api_key_goes_in_its_header_after_its_prefix(
    auth: dict[str, str], header: str, value: str
) -> None:
    connector = manifest({"type": "api-key", "description": "Key.", **auth})
    sent = request()
    flow_for(connector).authenticate(connector, connection(api_key="sk_0123456789abcdef"), sent)
    assert sent.headers[header] == value
    assert sent.url.params["page"] == "2"


def test_an_api_key_can_go_in_a_query_parameter_instead() -> None:
    connector = manifest({"type": "api-key", "description": "Key.", "queryParam": "api_key"})
    sent = request()
    flow_for(connector).authenticate(connector, connection(api_key="sk_0123456789abcdef"), sent)
    assert sent.url.params["api_key"] == "sk_0123456789abcdef"
    assert sent.url.params["page"] == "2"
    assert "authorization" not in sent.headers


def test_basic_credentials_are_sent_as_rfc_7617_utf8() -> None:
    connector = manifest({"type": "basic", "description": "User."})
    sent = request()
    flow_for(connector).authenticate(
        connector, connection(username="anna@acme.example", password="pässwörd"), sent
    )
    scheme, encoded = sent.headers["Authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "anna@acme.example:pässwörd"


def test_an_oauth_connection_sends_its_access_token_as_a_bearer_token() -> None:
    connector = manifest(
        {
            "type": "oauth",
            "authorizeUrl": "https://a.example/o",
            "tokenUrl": "https://a.example/t",
            "scopes": [],
        }
    )
    sent = request()
    flow_for(connector).authenticate(
        connector, connection(tokens=TokenSet(access_token="at-123")), sent
    )
    assert sent.headers["Authorization"] == "Bearer at-123"


def test_no_auth_adds_nothing() -> None:
    connector = manifest({"type": "none"})
    sent = request()
    flow_for(connector).authenticate(connector, connection(), sent)
    assert "authorization" not in sent.headers


@pytest.mark.parametrize(
    ("values", "problems"),
    [
        ({"username": "", "password": "x"}, {"username": "is required"}),
        ({"username": "a:b", "password": "x"}, {"username": "must not contain ':'"}),
        ({"username": "a\x00b", "password": "x"}, {"username": "without control characters"}),
        ({"username": "anna", "password": ""}, {"password": "is required"}),
        ({"username": "anna", "password": "x" * 513}, {"password": "at most 512"}),
    ],
)
def test_basic_credentials_are_checked(values: dict[str, str], problems: dict[str, str]) -> None:
    connector = manifest({"type": "basic", "description": "User."})
    found = flow_for(connector).check_credentials(connector, values)
    assert set(found) == set(problems)
    for name, text in problems.items():
        assert text in found[name]


def test_an_optional_basic_password_may_be_empty() -> None:
    connector = manifest({"type": "basic", "description": "Key.", "passwordRequired": False})
    assert flow_for(connector).check_credentials(connector, {"username": "key-123"}) == {}
    password = flow_for(connector).credential_inputs(connector)[1]
    assert not password.required


@pytest.mark.parametrize(
    ("auth", "fields", "step"),
    [
        ({"type": "none"}, [], ConnectStep.BUTTON),
        ({"type": "none"}, [{"id": "team", "label": "Team"}], ConnectStep.FORM),
        ({"type": "api-key", "description": "K.", "headerName": "X-K"}, [], ConnectStep.FORM),
        ({"type": "basic", "description": "U."}, [], ConnectStep.FORM),
        (
            {
                "type": "oauth",
                "authorizeUrl": "https://a.example/o",
                "tokenUrl": "https://a.example/t",
                "scopes": [],
            },
            [],
            ConnectStep.REDIRECT,
        ),
        (
            {
                "type": "oauth",
                "authorizeUrl": "https://{team}.a.example/o",
                "tokenUrl": "https://{team}.a.example/t",
                "scopes": [],
            },
            [{"id": "team", "label": "Team"}],
            ConnectStep.FORM,
        ),
        (
            {
                "type": "oauth",
                "grant": "client_credentials",
                "tokenUrl": "https://a.example/t",
                "scopes": [],
            },
            [],
            ConnectStep.FORM,  # the connection's own client id and secret
        ),
    ],
)
def test_the_connect_step_follows_from_the_auth_and_the_fields(
    auth: dict[str, Any], fields: list[dict[str, Any]], step: ConnectStep
) -> None:
    connector = manifest(auth, fields)
    assert flow_for(connector).connect_step(connector) is step


# --- the architecture: only flows know what an auth type means ---------------------------

AUTH_NAMES = {cls.__name__ for cls in AUTH_CLASSES.values()}
TAGS = set(AUTH_CLASSES)
# The model and its validation define the auth types; the OAuth client is OAuth itself.
ALLOWED = {
    "_manifest.py",
    "_converter.py",
    "_class_rules.py",
    "_jsonschema.py",
    "connections/_oauth.py",
    "sandbox/_quirks.py",  # the strict OAuth provider mirrors what a manifest declares
}


def branches_on_auth_type(tree: ast.AST) -> list[int]:
    """Lines that test which auth type a connector has."""
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
        ):
            names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            if names & AUTH_NAMES:
                lines.append(node.lineno)
        if isinstance(node, ast.Compare):
            constants = {n.value for n in ast.walk(node) if isinstance(n, ast.Constant)} & TAGS
            attributes = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            if constants and ({"type", "auth_type", "auth"} & attributes):
                lines.append(node.lineno)
    return lines


def test_no_module_outside_the_flows_branches_on_the_auth_type() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("flows/") or relative in ALLOWED:
            continue
        for line in branches_on_auth_type(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{relative}:{line}")
    assert offenders == []


def test_the_check_finds_a_branch_on_the_auth_type() -> None:
    source = (
        "if isinstance(connector.auth, OAuth): pass\n"
        "if connector.auth.type == 'api-key': pass\n"
        "if flow.auth_type != 'basic': pass\n"
    )
    assert branches_on_auth_type(ast.parse(source)) == [1, 2, 3]
