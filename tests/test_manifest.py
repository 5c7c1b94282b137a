"""The manifest model and its rules, through define_connector and to_wire."""

from __future__ import annotations

import copy
from typing import Any

import attrs
import pytest

from connectors_core import (
    ApiKeyAuth,
    Capability,
    Category,
    Connection,
    Connector,
    FieldTranslation,
    ManifestError,
    NoAuth,
    OAuth,
    Publisher,
    SetupStep,
    SetupStepTranslation,
    Status,
    Translation,
    define_connector,
    to_wire,
)


def wire() -> dict[str, Any]:
    """A valid manifest using every field, in the wire format."""
    return {
        "id": "google-ads",
        "name": "Google Ads",
        "summary": "Audiences and conversions from Google Ads.",
        "description": "Sync audiences.\nReport conversions.",
        "category": "marketing",
        "status": "beta",
        "auth": {
            "type": "oauth",
            "authorizeUrl": "https://accounts.example.com/o/oauth2/auth",
            "tokenUrl": "https://oauth2.example.com/token",
            "scopes": ["ads.read"],
            "pkce": True,
            "revocationUrl": "https://oauth2.example.com/revoke",
        },
        "capabilities": [{"id": "audiences", "label": "Audiences"}],
        "setup": [{"title": "Create a client", "description": "In the console."}],
        "docsPath": "https://docs.example.com/google-ads",
        "tags": ["ads", "official"],
        "publisher": {"name": "Ads Inc.", "url": "https://ads.example.com", "email": "a@b.io"},
        "connection": {
            "startPath": "/api/integrations/google-ads/connect",
            "statusPath": "/api/integrations/google-ads/status",
            "disconnectPath": "/api/integrations/google-ads/disconnect",
        },
    }


def with_(path: str, value: Any) -> dict[str, Any]:
    """``wire()`` with the dotted ``path`` set to ``value`` (or removed if ...)."""
    data = wire()
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    if path == "id" and isinstance(value, str):  # the served paths follow the id
        data["connection"] = {
            key: f"/api/integrations/{value}/{suffix}"
            for key, suffix in (
                ("startPath", "connect"),
                ("statusPath", "status"),
                ("disconnectPath", "disconnect"),
            )
        }
    return data


def problems(data: object) -> list[str]:
    with pytest.raises(ManifestError) as info:
        define_connector(data)
    return [str(p) for p in info.value.problems]


def test_valid_manifest_builds_frozen_typed_objects() -> None:
    connector = define_connector(wire())

    assert connector.id == "google-ads"
    assert connector.category is Category.MARKETING
    assert connector.status is Status.BETA
    assert connector.auth == OAuth(
        authorize_url="https://accounts.example.com/o/oauth2/auth",
        token_url="https://oauth2.example.com/token",
        scopes=("ads.read",),
        pkce=True,
        revocation_url="https://oauth2.example.com/revoke",
    )
    assert connector.capabilities == (Capability("audiences", "Audiences"),)
    assert connector.setup == (SetupStep("Create a client", "In the console."),)
    assert connector.publisher == Publisher("Ads Inc.", "https://ads.example.com", "a@b.io")
    assert connector.connection is not None
    assert connector.connection.status_path == "/api/integrations/google-ads/status"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        connector.name = "changed"  # type: ignore[misc]


def test_wire_format_round_trips_in_camel_case() -> None:
    data = wire()
    assert to_wire(define_connector(data)) == data
    assert define_connector(copy.deepcopy(data)).to_wire() == data


def test_optional_fields_have_defaults_and_are_omitted_on_the_wire() -> None:
    data = wire()
    for key in ("setup", "docsPath", "tags", "publisher", "connection"):
        del data[key]
    data["auth"] = {"type": "none"}

    connector = define_connector(data)

    assert connector.auth == NoAuth()
    assert (connector.setup, connector.tags) == ((), ())
    assert connector.docs_path is None
    assert connector.publisher is None
    assert connector.connection is None
    assert to_wire(connector) == {**data, "setup": [], "tags": []}


def test_oauth_defaults_to_pkce() -> None:
    data = with_("auth.pkce", ...)
    assert isinstance(define_connector(data).auth, OAuth)
    assert define_connector(data).auth.pkce is True  # type: ignore[union-attr]


def test_keyword_arguments_use_python_names_and_accept_model_objects() -> None:
    connector = define_connector(
        id="acme",
        name="Acme",
        summary="Acme.",
        description="Acme things.",
        category=Category.CUSTOM,
        status="available",
        auth=ApiKeyAuth(description="The key.", header_name="X-Acme-Key"),
        capabilities=[Capability("sync", "Sync")],
        docs_path="https://acme.example.org/docs",
        connection=Connection(start_path="/api/integrations/acme/connect"),
    )

    assert connector.auth == ApiKeyAuth(description="The key.", header_name="X-Acme-Key")
    assert connector.docs_path == "https://acme.example.org/docs"
    assert to_wire(connector)["auth"] == {
        "type": "api-key",
        "description": "The key.",
        "headerName": "X-Acme-Key",
    }


def test_an_existing_connector_is_revalidated() -> None:
    unchecked = attrs.evolve(define_connector(wire()), id="Not Kebab")
    assert problems(unchecked) == [
        "$.id: must be kebab-case (lowercase letters and digits in words joined by single "
        "hyphens, starting with a letter, at most 64 characters), got 'Not Kebab'"
    ]


def test_mapping_and_keywords_together_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="either"):
        define_connector(wire(), id="x")


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    data = wire()
    data["id"] = "Google_Ads"
    data["name"] = 123
    data["category"] = "event"
    data["auth"] = {"type": "api-key", "headerNme": "X-Key"}
    data["capabilities"] = [{"id": "a", "label": "A"}, {"label": 3}]
    data["docPath"] = "https://x.example.com"

    with pytest.raises(ManifestError) as info:
        define_connector(data)

    assert [p.path for p in info.value.problems] == [
        "$.id",
        "$.name",
        "$.category",
        "$.auth.description",
        "$.auth.headerNme",
        "$.capabilities[1].id",
        "$.capabilities[1].label",
        "$.docPath",
    ]
    message = str(info.value)
    assert message.startswith("invalid connector manifest (8 problems):\n")
    assert "  $.auth.headerNme: unknown field; did you mean 'headerName'?" in message
    assert "  $.docPath: unknown field; did you mean 'docsPath'?" in message


def test_cattrs_internals_do_not_leak_into_the_error() -> None:
    with pytest.raises(ManifestError) as info:
        define_connector(with_("category", 5))
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert "cattrs" not in str(info.value)
    assert "Structuring" not in str(info.value)


INVALID: list[tuple[str, Any, str]] = [
    # Wrong types are errors, never coerced.
    ("name", 123, "$.name: expected a string, got number 123"),
    ("summary", None, "$.summary: expected a string, got null"),
    ("auth.pkce", "yes", "$.auth.pkce: expected true or false, got string 'yes'"),
    ("auth.pkce", 1, "$.auth.pkce: expected true or false, got number 1"),
    ("tags", "ads", "$.tags: expected an array, got string 'ads'"),
    ("tags.0", 7, "$.tags[0]: expected a string, got number 7"),
    ("capabilities", {"id": "x"}, "$.capabilities: expected an array, got object"),
    ("publisher", "Ads Inc.", "$.publisher: expected an object, got string 'Ads Inc.'"),
    # Required fields.
    ("id", ..., "$.id: required field is missing"),
    ("description", ..., "$.description: required field is missing"),
    ("auth", ..., "$.auth: required field is missing"),
    ("capabilities", ..., "$.capabilities: required field is missing"),
    ("auth.tokenUrl", ..., "$.auth.tokenUrl: required field is missing"),
    ("connection.startPath", ..., "$.connection.startPath: required field is missing"),
    ("publisher.name", ..., "$.publisher.name: required field is missing"),
    ("name", "  ", "$.name: must not be empty"),
    ("description", "", "$.description: must not be empty"),
    # id
    ("id", "GoogleAds", "$.id: must be kebab-case"),
    ("id", "google_ads", "$.id: must be kebab-case"),
    ("id", "google--ads", "$.id: must be kebab-case"),
    ("id", "-ads", "$.id: must be kebab-case"),
    ("id", "1ads", "$.id: must be kebab-case"),
    ("id", "a" * 65, "$.id: must be kebab-case"),
    # one-line text
    ("summary", "two\nlines", "$.summary: must be a single line"),
    ("name", "x" * 201, "$.name: must be at most 200 characters, got 201"),
    # enums
    (
        "category",
        "event",
        "$.category: expected one of events, ticketing, marketing, assets, analytics, "
        "custom; got string 'event'; did you mean 'events'?",
    ),
    (
        "status",
        "comingsoon",
        "$.status: expected one of available, beta, coming-soon, deprecated; "
        "got string 'comingsoon'; did you mean 'coming-soon'?",
    ),
    # auth union
    (
        "auth.type",
        ...,
        "$.auth.type: required field is missing (one of oauth, api-key, basic, none)",
    ),
    (
        "auth.type",
        "oauth2",
        "$.auth.type: expected one of oauth, api-key, basic, none; got string 'oauth2'; "
        "did you mean 'oauth'?",
    ),
    ("auth.scopes", "a b", "$.auth.scopes: expected an array"),
    ("auth.scopes", ["a b"], "$.auth.scopes[0]: must be a non-empty scope without spaces"),
    ("auth.scopes", ["a", "a"], "$.auth.scopes[1]: duplicate scope 'a' (already at index 0)"),
    ("auth.tokenUrl", "http://oauth2.example.com/token", "$.auth.tokenUrl: must use https"),
    ("auth.authorizeUrl", "ftp://x.example.com/a", "$.auth.authorizeUrl: must be an absolute"),
    ("auth.authorizeUrl", "/oauth/authorize", "$.auth.authorizeUrl: must be an absolute"),
    ("auth.tokenUrl", "https://u:p@x.example.com/t", "$.auth.tokenUrl: must not contain"),
    ("auth.tokenUrl", "https://x.example.com/t#f", "$.auth.tokenUrl: must not contain a frag"),
    ("auth.revocationUrl", "http://evil.example.com", "$.auth.revocationUrl: must use https"),
    ("auth.clientSecret", "s3cret", "$.auth.clientSecret: unknown field"),
    # capabilities
    ("capabilities", [], "$.capabilities: must list at least one item"),
    (
        "capabilities",
        [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}, {"id": "a", "label": "C"}],
        "$.capabilities[2].id: duplicate capability id 'a' (already at index 0)",
    ),
    ("capabilities.0.id", "Audiences", "$.capabilities[0].id: must be kebab-case"),
    ("capabilities.0.description", "x", "$.capabilities[0].description: unknown field"),
    # docsPath: a public http(s) URL only
    ("docsPath", "docs/connectors/google-ads.md", "$.docsPath: must be a public http(s) URL"),
    ("docsPath", "/docs/google-ads", "$.docsPath: must be a public http(s) URL"),
    ("docsPath", "file:///etc/passwd", "$.docsPath: must be a public http(s) URL"),
    ("docsPath", "javascript:alert(1)", "$.docsPath: must be a public http(s) URL"),
    ("docsPath", "http://localhost:8000/docs", "$.docsPath: must be a public http(s) URL"),
    ("docsPath", "http://127.0.0.1/docs", "$.docsPath: must be a public http(s) URL"),
    ("docsPath", "http://10.0.0.7/docs", "$.docsPath: must be a public http(s) URL"),
    ("docsPath", "http://intranet/docs", "$.docsPath: must be a public http(s) URL"),
    ("docsPath", "https://a.example.com/has space", "$.docsPath: must be a public http(s)"),
    ("docsPath", "https://[::1", "$.docsPath: must be a public http(s) URL"),
    # tags
    ("tags", ["ads", "ads"], "$.tags[1]: duplicate tag 'ads' (already at index 0)"),
    ("tags", ["ads", ""], "$.tags[1]: must not be empty"),
    # publisher
    ("publisher.url", "ads.example.com", "$.publisher.url: must be a public http(s) URL"),
    ("publisher.email", "not-an-email", "$.publisher.email: must be an e-mail address"),
    # connection paths start with a single '/'
    ("connection.startPath", "api/x", "$.connection.startPath: must be a server path"),
    ("connection.statusPath", "//evil.example.com", "$.connection.statusPath: must be a"),
    ("connection.disconnectPath", "https://x.example.com/d", "$.connection.disconnectPath:"),
    ("connection.startPath", "/a b", "$.connection.startPath: must be a plain server path"),
    ("connection.callbackPath", "/cb", "$.connection.callbackPath: unknown field"),
    # setup
    ("setup.0.title", "", "$.setup[0].title: must not be empty"),
    ("setup.0", "Do this", "$.setup[0]: expected an object, got string 'Do this'"),
    # Connection fields.
    ("fields", [{"id": "Shop", "label": "S"}], "$.fields[0].id: must be a field id"),
    ("fields", [{"id": "api_key", "label": "K"}], "$.fields[0].id: 'api_key' is reserved"),
    (
        "fields",
        [{"id": "a", "label": "A"}, {"id": "a", "label": "B"}],
        "$.fields[1].id: duplicate field id 'a' (already at index 0)",
    ),
    (
        "fields",
        [{"id": "a", "label": "A", "pattern": "("}],
        "$.fields[0].pattern: not a valid regular expression",
    ),
    ("fields", [{"id": "a", "label": "A", "type": "colour"}], "$.fields[0].type: expected one of"),
    (
        "fields",
        [{"id": "a", "label": "A", "type": "choice"}],
        "$.fields[0].choices: a choice field needs at least one choice",
    ),
    (
        "fields",
        [{"id": "a", "label": "A", "choices": ["x"]}],
        "$.fields[0].choices: only a choice field has choices",
    ),
    ("fields", [{"id": "a", "label": "A", "minLength": -1}], "$.fields[0].minLength: must be"),
    (
        "fields",
        [{"id": "a", "label": "A", "maxLength": True}],
        "$.fields[0].maxLength: expected an",
    ),
    (
        "fields",
        [{"id": "a", "label": "A", "minLength": 5, "maxLength": 2}],
        "$.fields[0].minLength: must not exceed maxLength (5 > 2)",
    ),
    (
        "fields",
        [{"id": "a", "label": "A", "type": "integer", "pattern": "x"}],
        "$.fields[0].pattern: does not apply to a integer field",
    ),
    ("fields", [{"id": "a", "label": "A", "default": 1.5}], "$.fields[0].default: expected a"),
    (
        "fields",
        [{"id": "a", "label": "A", "type": "integer", "default": "5"}],
        "$.fields[0].default: the default of an integer field must be a whole number",
    ),
    (
        "fields",
        [{"id": "a", "label": "A", "type": "boolean", "default": True}],
        "$.fields[0].default: a boolean field has no default",
    ),
    (
        "fields",
        [{"id": "a", "label": "A", "type": "secret", "default": "s3cret"}],
        "$.fields[0].default: a secret field cannot have a default",
    ),
    ("fields", [{"id": "a", "label": "A", "colour": "red"}], "$.fields[0].colour: unknown field"),
    # Auth types.
    ("auth", {"type": "api-key", "description": "d"}, "$.auth: set exactly one of headerName"),
    (
        "auth",
        {"type": "api-key", "description": "d", "headerName": "X", "queryParam": "k"},
        "$.auth: set exactly one of headerName and queryParam",
    ),
    (
        "auth",
        {"type": "api-key", "description": "d", "queryParam": "a key"},
        "$.auth.queryParam: must be a query parameter name",
    ),
    (
        "auth",
        {"type": "api-key", "description": "d", "headerName": "A", "valuePrefix": "B\n"},
        "$.auth.valuePrefix: must be 1 to 32 visible ASCII characters",
    ),
    ("auth", {"type": "basic"}, "$.auth.description: required field is missing"),
    (
        "auth",
        {"type": "basic", "description": "d", "passwordRequired": "no"},
        "$.auth.passwordRequired: expected true or false",
    ),
    (
        "auth",
        {"type": "oauth", "tokenUrl": "https://a.example/t", "scopes": []},
        "$.auth.authorizeUrl: required field is missing (the authorization code grant needs it)",
    ),
    (
        "auth",
        {
            "type": "oauth",
            "grant": "client_credentials",
            "authorizeUrl": "https://a.example/a",
            "tokenUrl": "https://a.example/t",
            "scopes": [],
        },
        "$.auth.authorizeUrl: the client credentials grant has no authorization step",
    ),
    ("auth.grant", "password", "$.auth.grant: expected one of authorization_code"),
    (
        "auth.authorizeUrl",
        "https://{shop}.example.com/a",
        "$.auth.authorizeUrl: unknown placeholder {shop}: no field has this id",
    ),
    ("auth.tokenUrl", "https://{Shop}.example.com/t", "$.auth.tokenUrl: {Shop} is not a valid"),
    ("auth.tokenUrl", "https://x.example.com/{a", "$.auth.tokenUrl: has an unmatched"),
    ("auth.tokenUrl", "{base}/token", "$.auth.tokenUrl: must start with https://"),
    # OAuth quirks.
    ("auth.clientAuth", "basic", "$.auth.clientAuth: expected one of client_secret_basic"),
    ("auth.scopeSeparator", ";", '$.auth.scopeSeparator: must be " ", "," or "+"'),
    (
        "auth.authorizeParams",
        {"state": "x"},
        "$.auth.authorizeParams.state: the flow sets 'state' itself",
    ),
    (
        "auth.tokenParams",
        {"code_verifier": "x"},
        "$.auth.tokenParams.code_verifier: the flow sets 'code_verifier' itself",
    ),
    ("auth.refreshParams", {"a b": "x"}, "$.auth.refreshParams.a b: 'a b' is not a parameter"),
    ("auth.authorizeParams", {"prompt": 1}, "$.auth.authorizeParams.prompt: expected a string"),
    ("auth.authorizeParams", ["prompt"], "$.auth.authorizeParams: expected an object"),
    (
        "auth.authorizeParams",
        {"team": "{team}"},
        "$.auth.authorizeParams.team: unknown placeholder {team}",
    ),
    ("auth.tokenRequestFormat", "xml", "$.auth.tokenRequestFormat: expected one of form, json"),
    (
        "auth.tokenResponse",
        {"accessTokenPath": "a..b"},
        "$.auth.tokenResponse.accessTokenPath: must be a dotted path",
    ),
    (
        "auth.tokenResponse",
        {"expiresInUnit": "minutes"},
        "$.auth.tokenResponse.expiresInUnit: expected one of seconds, milliseconds",
    ),
    (
        "auth.tokenResponse",
        {"keep": ["Instance-URL"]},
        "$.auth.tokenResponse.keep[0]: keeps the value as 'Instance-URL'",
    ),
    ("auth.refreshMarginSeconds", -1, "$.auth.refreshMarginSeconds: must be between 0"),
    ("auth.headerName", "X Token", "$.auth.headerName: must be a valid HTTP header name"),
    ("api", {"baseUrl": "http://api.example.com"}, "$.api.baseUrl: must use https"),
    (
        "api",
        {"baseUrl": "https://a.example.com", "headers": {"Authorization": "x"}},
        "$.api.headers.Authorization: 'Authorization' is set by the client or carries",
    ),
    (
        "api",
        {"baseUrl": "https://a.example.com", "headers": {"X-V": "a\nb"}},
        "$.api.headers.X-V: must be 1 to 500 visible ASCII",
    ),
    (
        "api",
        {"baseUrl": "https://a.example.com", "headers": {"X-Team": "{team}"}},
        "$.api.headers.X-Team: unknown placeholder {team}",
    ),
    (
        "api",
        {"baseUrl": "https://a.example.com", "allowedHosts": ["*.com"]},
        "$.api.allowedHosts[0]: must be a lowercase host name of two labels",
    ),
    (
        "api",
        {"baseUrl": "https://a.example.com", "allowedHosts": ["https://a.example.com"]},
        "$.api.allowedHosts[0]: must be a lowercase host name",
    ),
    (
        "api",
        {"baseUrl": "https://a.example.com", "retry": {"maxAttempts": 0}},
        "$.api.retry.maxAttempts: must be between 1 and 10",
    ),
    (
        "api",
        {"baseUrl": "https://a.example.com", "retry": {"statuses": [200]}},
        "$.api.retry.statuses[0]: must be an HTTP status (400 to 599)",
    ),
    (
        "api",
        {"baseUrl": "https://a.example.com", "retry": {"maxWaitSeconds": 7200}},
        "$.api.retry.maxWaitSeconds: must be between 0 and 3600",
    ),
    (
        "api",
        {"baseUrl": "https://a.example.com", "tokenExpiredStatuses": [401, 429]},
        "$.api.retry.statuses: 429 is in tokenExpiredStatuses too",
    ),
    ("auth.valuePrefix", "Bearer\n", "$.auth.valuePrefix: must be at most 32 visible ASCII"),
    ("auth.issuer", "http://accounts.example.com", "$.auth.issuer: must use https"),
    (
        "connection.startPath",
        "/api/integrations/other/connect",
        "$.connection.startPath: must be '/api/integrations/google-ads/connect', the path",
    ),
    (
        "connection.statusPath",
        "/status",
        "$.connection.statusPath: must be '/api/integrations/google-ads/status'",
    ),
    ("connection.multiple", True, "$.connection.accountKey: required with multiple"),
    ("connection.accountKey", "accountId", "$.connection.accountKey: only applies with multiple"),
    ("connection.multiple", "yes", "$.connection.multiple: expected true or false"),
    # icon: an https URL, or a file inside the plugin's package
    ("icon", 5, "$.icon: expected a string, got number 5"),
    ("icon", "http://cdn.acme.com/icon.svg", "$.icon: an icon URL must use https"),
    ("icon", "https://localhost/icon.svg", "$.icon: an icon URL must be public"),
    ("icon", "https://10.0.0.7/icon.svg", "$.icon: an icon URL must be public"),
    ("icon", "https://u:p@cdn.acme.com/i.svg", "$.icon: must not contain credentials"),
    ("icon", "https://cdn.acme.com/" + "a" * 2048, "$.icon: must be at most 2048 characters"),
    ("icon", "ftp://cdn.acme.com/icon.svg", "$.icon: must be an absolute http(s) URL"),
    ("icon", "../icon.svg", "$.icon: must stay inside the plugin's package (no '..')"),
    ("icon", "static/../../secret.svg", "$.icon: must stay inside the plugin's package"),
    ("icon", "/usr/share/icons/acme.svg", "$.icon: must be an https URL or a path relative"),
    ("icon", "C:/icons/acme.svg", "$.icon: must be an https URL or a path relative"),
    ("icon", "static\\icon.svg", "$.icon: must be an https URL or a path relative"),
    ("icon", "data:image/svg+xml,<svg/>", "$.icon: must be an https URL or a path relative"),
    ("icon", "icon.gif", "$.icon: must name an .svg or .png file"),
    ("icon", "icon.SVG", "$.icon: must name an .svg or .png file"),
    ("icon", ".hidden/icon.svg", "$.icon: must be a relative path of letters"),
    ("icon", "static//icon.svg", "$.icon: must be a relative path of letters"),
    ("icon", "my icon.svg", "$.icon: must be a relative path of letters"),
    ("icon", "a/" * 100 + "icon.svg", "$.icon: must be a relative path of letters"),
    # translations: {locale: {name?, summary?, description?, setup?, fields?}}
    ("translations", ["fr"], "$.translations: expected an object, got array"),
    ("translations", {"fr_FR": {}}, "$.translations.fr_FR: the key must be a locale"),
    ("translations", {"FR": {}}, "$.translations.FR: the key must be a locale"),
    ("translations", {"pt-br": {}}, "$.translations.pt-br: the key must be a locale"),
    ("translations", {"french": {}}, "$.translations.french: the key must be a locale"),
    ("translations", {"fr": "Bonjour"}, "$.translations.fr: expected an object, got string"),
    ("translations", {"fr": {"name": ""}}, "$.translations.fr.name: must not be empty"),
    ("translations", {"fr": {"name": 1}}, "$.translations.fr.name: expected a string"),
    ("translations", {"fr": {"summary": "a\nb"}}, "$.translations.fr.summary: must be a single"),
    ("translations", {"fr": {"description": " "}}, "$.translations.fr.description: must not be"),
    ("translations", {"fr": {"tagline": "x"}}, "$.translations.fr.tagline: unknown field"),
    ("translations", {"fr": {"setup": {}}}, "$.translations.fr.setup: expected an array"),
    (
        "translations",
        {"fr": {"setup": [{"title": ""}]}},
        "$.translations.fr.setup[0].title: must not be empty",
    ),
    (
        "translations",
        {"fr": {"setup": [{"titre": "x"}]}},
        "$.translations.fr.setup[0].titre: unknown field; did you mean 'title'?",
    ),
    (
        "translations",
        {"fr": {"setup": [{}, {"title": "Deux"}]}},
        "$.translations.fr.setup[1]: translates no step: setup has 1 step, and steps are "
        "translated by position",
    ),
    (
        "translations",
        {"fr": {"fields": {"shop": {"label": "Boutique"}}}},
        "$.translations.fr.fields.shop: no field has this id",
    ),
    (
        "translations",
        {"fr": {"fields": {"Shop": {}}}},
        "$.translations.fr.fields.Shop: the key must be a field id",
    ),
    (
        "translations",
        {"fr": {"fields": {"shop": {"hint": "x"}}}},
        "$.translations.fr.fields.shop.hint: unknown field",
    ),
    (
        "translations",
        {"fr": {"fields": {"shop": {"help": ""}}}},
        "$.translations.fr.fields.shop.help: must not be empty",
    ),
]
"""(path, value, expected message prefix): each invalid on its own."""


@pytest.mark.parametrize(("path", "value", "expected"), INVALID)
def test_invalid_field_is_reported_at_its_path(path: str, value: Any, expected: str) -> None:
    found = problems(with_(path, value))
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


VALID_EDGES: list[tuple[str, Any]] = [
    ("auth.tokenUrl", "http://127.0.0.1:8123/token"),
    ("auth.authorizeUrl", "http://localhost:9000/authorize"),
    ("auth.tokenUrl", "http://[::1]:9000/token"),
    ("docsPath", "http://docs.example.com/x?y=1#z"),
    ("docsPath", "https://93.184.215.14/docs"),
    ("publisher.url", None),
    ("auth.revocationUrl", None),
    ("connection.statusPath", None),
    ("tags", []),
    ("setup", []),
    ("auth.pkce", False),
    ("id", "a"),
    ("id", "ga4-2"),
    ("fields", [{"id": "shop", "label": "Shop"}]),
    ("fields", [{"id": "n", "label": "N", "type": "integer", "default": 5}]),
    (
        "fields",
        [{"id": "c", "label": "C", "type": "choice", "choices": ["a", "b"], "default": "b"}],
    ),
    ("fields", [{"id": "on", "label": "On", "type": "boolean"}]),
    ("fields", [{"id": "k", "label": "K", "type": "secret", "pattern": "sk_[a-z0-9]+"}]),
    ("auth", {"type": "basic", "description": "d"}),
    ("auth", {"type": "basic", "description": "d", "passwordRequired": False}),
    ("auth", {"type": "api-key", "description": "d", "queryParam": "api_key"}),
    ("auth", {"type": "api-key", "description": "d", "headerName": "A", "valuePrefix": "Bearer "}),
    ("auth.valuePrefix", ""),
    (
        "connection",
        {
            "startPath": "/api/integrations/google-ads/connect",
            "multiple": True,
            "accountKey": "customerId",
        },
    ),
    ("auth.valuePrefix", "OAuth "),
    ("auth.headerName", "X-Shopify-Access-Token"),
    (
        "api",
        {
            "baseUrl": "https://api.example.com/v2",
            "headers": {"Notion-Version": "2022-06-28"},
            "allowedHosts": ["*.files.example.com", "cdn.example.net:8443", "localhost:9000"],
            "retry": {
                "statuses": [429, 503],
                "retryAfterHeaders": ["Retry-After", "X-RateLimit-Reset"],
                "maxAttempts": 5,
                "maxWaitSeconds": 0,
            },
            "tokenExpiredStatuses": [],
        },
    ),
    (
        "auth",
        {
            "type": "oauth",
            "grant": "client_credentials",
            "tokenUrl": "https://a.example/t",
            "scopes": [],
        },
    ),
    ("icon", "icon.svg"),
    ("icon", "static/brand/logo-64.png"),
    ("icon", "_static/v1.2/icon.svg"),
    ("icon", "https://cdn.acme.com/icons/google-ads.svg?v=2"),
    ("icon", None),
    ("translations", {}),
    (
        "translations",
        {
            "fr": {},
            "pt-BR": {"summary": "Públicos e conversões do Google Ads."},
            "zh-Hant": {"name": "谷歌廣告"},
            "fil": {"setup": [{}]},
            "de": {"setup": [{"description": "In der Konsole."}], "fields": {}},
        },
    ),
]
"""(path, value): edge values that are valid."""


@pytest.mark.parametrize(("path", "value"), VALID_EDGES)
def test_valid_edge_values_are_accepted(path: str, value: Any) -> None:
    define_connector(with_(path, value))


def test_unknown_snake_case_key_suggests_the_wire_name() -> None:
    assert problems(with_("connection.start_path", "/x")) == [
        "$.connection.start_path: unknown field; did you mean 'startPath'?"
    ]


def test_unknown_keyword_argument_suggests_the_field() -> None:
    data = {key: value for key, value in wire().items() if key != "docsPath"}
    with pytest.raises(ManifestError) as info:
        define_connector(**{"docs_url": "https://d.example.com", **_snake(data)})
    # Reported under the Python name the author typed, with the Python name to use.
    assert [str(p) for p in info.value.problems] == [
        "$.docs_url: unknown argument; did you mean 'docs_path'?"
    ]


def _snake(data: dict[str, Any]) -> dict[str, Any]:
    return {"".join(f"_{c.lower()}" if c.isupper() else c for c in k): v for k, v in data.items()}


@pytest.mark.parametrize("value", [[wire()], "evencio", 5, None])
def test_a_manifest_must_be_an_object(value: object) -> None:
    if value is None:
        with pytest.raises(ManifestError, match=r"\$\.id: required field is missing"):
            define_connector()
        return
    assert problems(value)[0].startswith("$: expected an object")


def test_manifest_error_names_its_source() -> None:
    with pytest.raises(ManifestError) as info:
        define_connector(with_("id", "X"))
    error = info.value.with_source("plugin 'acme'")
    assert error.source == "plugin 'acme'"
    assert str(error).startswith("invalid connector manifest in plugin 'acme' (1 problem):")
    assert isinstance(error, ValueError)


def test_every_model_class_is_frozen_and_documented() -> None:
    for cls in (
        Connector,
        OAuth,
        ApiKeyAuth,
        NoAuth,
        Capability,
        SetupStep,
        Publisher,
        Connection,
        Translation,
        SetupStepTranslation,
        FieldTranslation,
    ):
        assert attrs.has(cls)
        assert cls.__doc__
        assert cls.__setattr__ is not object.__setattr__, f"{cls.__name__} is not frozen"


def shop_wire(**auth: Any) -> dict[str, Any]:
    """A manifest whose OAuth URLs are templates over its fields."""
    return {
        **wire(),
        "fields": [
            {"id": "shop", "label": "Shop", "suffix": ".myshopify.com"},
            {"id": "key", "label": "Key", "type": "secret"},
        ],
        "auth": {
            "type": "oauth",
            "authorizeUrl": "https://{shop}.myshopify.com/admin/oauth/authorize",
            "tokenUrl": "https://{shop}.myshopify.com/admin/oauth/access_token",
            "scopes": ["read_orders"],
            **auth,
        },
    }


def test_url_templates_over_fields_are_valid_and_read_back_unchanged() -> None:
    connector = define_connector(shop_wire())
    assert [field.id for field in connector.fields] == ["shop", "key"]
    assert define_connector(to_wire(connector)) == connector
    assert to_wire(connector)["fields"][0] == {
        "id": "shop",
        "label": "Shop",
        "type": "text",
        "required": True,
        "suffix": ".myshopify.com",
    }


def test_a_secret_field_never_goes_into_a_url() -> None:
    assert problems(shop_wire(revocationUrl="https://{shop}.myshopify.com/revoke?k={key}")) == [
        "$.auth.revocationUrl: {key} is a secret field, and secrets never go into a request"
    ]


def test_an_oauth_url_cannot_leave_its_host_to_the_user() -> None:
    url = "https://{shop}/admin/oauth/access_token"
    assert problems(shop_wire(tokenUrl=url)) == [
        "$.auth.tokenUrl: a placeholder cannot be the whole host: the server's OAuth client "
        "secret would go to whatever host a user types; fix the domain, as in "
        "https://{shop}.example.com/..."
    ]


def test_a_misspelled_placeholder_suggests_the_field() -> None:
    assert problems(
        shop_wire(tokenUrl="https://{shpo}.myshopify.com/admin/oauth/access_token")
    ) == ["$.auth.tokenUrl: unknown placeholder {shpo}: no field has this id; did you mean 'shop'?"]


def test_every_problem_of_a_field_is_reported_at_once() -> None:
    data = {
        **wire(),
        "fields": [
            {"id": "ok", "label": "OK"},
            {"id": "c", "label": "C", "type": "choice", "pattern": "x", "minLength": 2},
        ],
    }
    assert problems(data) == [
        "$.fields[1].choices: a choice field needs at least one choice",
        "$.fields[1].pattern: does not apply to a choice field",
        "$.fields[1].minLength: does not apply to a choice field",
    ]


def test_manifests_without_the_new_fields_read_back_as_before() -> None:
    # The wire form of a manifest that uses none of them has none of them.
    assert set(to_wire(define_connector(wire()))) == set(wire())
    assert "grant" not in to_wire(define_connector(wire()))["auth"]


def kept_wire(**verify: Any) -> dict[str, Any]:
    """A manifest whose API address comes from a value its verify answer keeps."""
    return {
        **wire(),
        "api": {"baseUrl": "https://{dc}.api.example.com/3.0"},
        "verify": {"baseUrl": "https://login.example.com", "path": "/metadata", **verify},
    }


def test_a_value_kept_from_the_verify_answer_may_fill_the_api_base_url() -> None:
    connector = define_connector(kept_wire(keep=["dc"]))
    assert connector.verify is not None
    assert (connector.verify.base_url, connector.verify.keep) == (
        "https://login.example.com",
        ("dc",),
    )
    assert define_connector(to_wire(connector)) == connector


def test_a_kept_value_is_not_known_before_the_request_that_keeps_it() -> None:
    assert problems(kept_wire(keep=["dc"], path="/{dc}/metadata")) == [
        "$.verify.path: {dc} is kept by .verify.keep, which is not known yet here"
    ]
    assert problems(kept_wire()) == [
        "$.api.baseUrl: unknown placeholder {dc}: no field has this id"
    ]


def test_two_kept_values_may_not_share_a_name() -> None:
    data = kept_wire(keep=["dc"])
    data["auth"] = {**data["auth"], "tokenResponse": {"keep": ["dc"]}}
    assert problems(data) == [
        "$.verify.keep[0]: keeps the value as 'dc', a name .auth.tokenResponse.keep keeps"
    ]


def test_verify_needs_a_base_url_of_its_own_or_the_apis() -> None:
    data = {**wire(), "verify": {"path": "/me"}}
    assert problems(data) == [
        "$.verify: needs api.baseUrl or its own baseUrl: its path is relative to one"
    ]
    define_connector({**data, "verify": {"baseUrl": "https://login.example.com", "path": "/me"}})


def test_api_defaults_are_left_out_of_the_wire_form_and_read_back() -> None:
    connector = define_connector({**wire(), "api": {"baseUrl": "https://api.example.com"}})
    assert connector.api is not None
    assert connector.api.retry.max_attempts == 3
    assert connector.api.token_expired_statuses == (401,)
    assert to_wire(connector)["api"] == {"baseUrl": "https://api.example.com"}


def test_a_constant_header_may_not_carry_the_credential() -> None:
    data = {
        **wire(),
        "auth": {"type": "api-key", "description": "K.", "headerName": "X-Api-Key"},
        "api": {"baseUrl": "https://api.example.com", "headers": {"x-api-key": "fixed"}},
    }
    assert problems(data) == [
        "$.api.headers.x-api-key: 'x-api-key' carries the connection's credentials "
        "(auth.headerName); it cannot be a constant header"
    ]


def test_a_header_may_use_a_field_and_a_kept_value() -> None:
    data = {
        **kept_wire(keep=["dc"]),
        "fields": [{"id": "team", "label": "Team"}],
    }
    data["api"] = {**data["api"], "headers": {"X-Team": "{team}", "X-Dc": "{dc}"}}
    connector = define_connector(data)
    assert connector.api is not None
    assert dict(connector.api.headers) == {"X-Team": "{team}", "X-Dc": "{dc}"}


def test_nested_parts_are_camel_case_on_the_wire() -> None:
    data = {
        **wire(),
        "auth": {
            **wire()["auth"],
            "tokenResponse": {"accessTokenPath": "user.token", "expiresInUnit": "milliseconds"},
        },
        "api": {"baseUrl": "https://api.example.com", "retry": {"maxWaitSeconds": 5}},
    }
    out = to_wire(define_connector(data))
    assert out["auth"]["tokenResponse"] == {
        "accessTokenPath": "user.token",
        "expiresInUnit": "milliseconds",
    }
    assert out["api"] == {"baseUrl": "https://api.example.com", "retry": {"maxWaitSeconds": 5}}
