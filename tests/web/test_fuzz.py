"""Fuzz every route from its own OpenAPI document: no 5xx, no secret in any response.

schemathesis generates valid and invalid requests for every operation the app
publishes at ``/api/integrations/openapi.json`` and sends them in-process.
The store is seeded with a connected OAuth connection and an API key, whose
secrets (and the client secrets) must never come back in a body or a header.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from connectors_core._settings import Settings
from connectors_core.connections import Connections
from connectors_core.store import (
    ConnectionState,
    MemoryStore,
    StoredConnection,
    TokenSet,
    generate_key,
)
from connectors_core.web import create_app
from tests.harness import ACME_SECRET, EVENCIO_SECRET, build_registry

pytestmark = pytest.mark.slow

TENANT = "fuzz-tenant"
ACCESS, REFRESH, API_KEY = "fuzz-access-8c1d", "fuzz-refresh-93ab", "fuzz-api-key-0d4e77"
SECRETS = (ACCESS, REFRESH, API_KEY, EVENCIO_SECRET, ACME_SECRET)


def build_app() -> Any:
    # The provider URL is unreachable on purpose: revocation fails fast, and
    # nothing may turn that into a 5xx.
    registry = build_registry("http://127.0.0.1:9")
    settings = Settings.from_env(
        {
            "CONNECTORS_PUBLIC_URL": "http://testserver",
            "CONNECTORS_DATABASE_URL": "memory://",
            "CONNECTORS_SECRET_KEYS": generate_key(),
            "CONNECTORS_EVENCIO_CLIENT_ID": "evencio-client",
            "CONNECTORS_EVENCIO_CLIENT_SECRET": EVENCIO_SECRET,
            "CONNECTORS_ACME_OAUTH_CLIENT_ID": "acme-client",
            "CONNECTORS_ACME_OAUTH_CLIENT_SECRET": ACME_SECRET,
        },
        http_timeout=0.5,
    )
    store = MemoryStore()
    connections = Connections(registry, store, settings)
    app = create_app(connections=connections, authenticator=lambda request: TENANT)
    app.state.seed = lambda: anyio.run(seed, store)
    return app


async def seed(store: MemoryStore) -> None:
    now = time.time()
    await store.put(
        StoredConnection(
            tenant=TENANT,
            connector_id="acme-oauth",
            connection_id="conn-fuzz-oauth",  # the same one each time it is seeded again
            state=ConnectionState.CONNECTED,
            tokens=TokenSet(ACCESS, REFRESH, expires_at=now + 3600, scopes=("read",)),
            created_at=now,
            updated_at=now,
        )
    )
    await store.put(
        StoredConnection(
            tenant=TENANT,
            connector_id="acme-key",
            connection_id="conn-fuzz-key",
            state=ConnectionState.CONNECTED,
            api_key=API_KEY,
            created_at=now,
            updated_at=now,
        )
    )


APP = build_app()
APP.state.seed()
with TestClient(APP, base_url="http://testserver") as _client:
    _session = _client.get("/api/integrations/csrf")
    CSRF_TOKEN = _session.json()["csrfToken"]
    SESSION = dict(_session.cookies)

schema = schemathesis.openapi.from_asgi("/api/integrations/openapi.json", APP)


def no_server_error(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code >= 500 and response.status_code != 503:
        raise AssertionError(f"server error {response.status_code}")
    if response.status_code == 503:
        # Only a provider outage may answer 503, and it must say so.
        assert b"provider_unavailable" in response.content or b"plugin_unavailable" in (
            response.content
        ), response.content


def no_secret(ctx: Any, response: Any, case: Any) -> None:
    for secret in SECRETS:
        assert secret.encode() not in response.content, f"secret in the body: {secret}"
        for name, values in response.headers.items():
            assert all(secret not in value for value in values), f"secret in header {name}"


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_input_causes_a_server_error_or_leaks_a_secret(case: Any) -> None:
    APP.state.seed()
    case.call_and_validate(
        headers={"X-CSRF-Token": CSRF_TOKEN, "Origin": "http://testserver"},
        cookies=SESSION,
        checks=[no_server_error, no_secret],
    )


def test_the_openapi_document_lists_every_route() -> None:
    with TestClient(APP) as client:
        document = client.get("/api/integrations/openapi.json").json()
    operations = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    from connectors_core.web import ROUTES

    published = {(path, method) for _name, method, path, _ in ROUTES}
    assert operations == published
    ids = document["paths"]["/api/integrations/{connector_id}/status"]["get"]["parameters"][0]
    assert set(ids["schema"]["enum"]) == {
        "evencio",
        "acme-oauth",
        "acme-norevoke",
        "acme-multi",
        "acme-key",
        "acme-plain",
        "acme-fields",
        "acme-basic",
        "acme-shop",
        "acme-cc",
        "acme-unset",
    }


BODY_ROUTES = ["/api/integrations/acme-key/connect", "/api/integrations/acme-oauth/disconnect"]
MEDIA_TYPES = [
    None,
    "application/json",
    "application/x-www-form-urlencoded",
    "application/json; charset=utf-8",
    "text/plain",
    "multipart/form-data; boundary=x",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(st.sampled_from(["apiKey", "api_key", "csrf_token", "x"]), json_values).map(
        lambda value: json.dumps(value).encode()
    ),
    st.lists(
        st.tuples(st.sampled_from(["api_key", "csrf_token", "apiKey", "", "a b"]), st.text()),
        max_size=80,
    ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")),
)


@given(
    path=st.sampled_from(BODY_ROUTES),
    body=bodies,
    media_type=st.sampled_from(MEDIA_TYPES),
    with_token=st.booleans(),
)
@settings(max_examples=150, deadline=None, database=None)
def test_no_body_causes_a_server_error_and_csrf_comes_first(
    path: str, body: bytes, media_type: str | None, with_token: bool
) -> None:
    headers = {"Origin": "http://testserver"}
    if media_type is not None:
        headers["Content-Type"] = media_type
    if with_token:
        headers["X-CSRF-Token"] = CSRF_TOKEN
    with TestClient(APP, base_url="http://testserver", cookies=SESSION) as client:
        response = client.post(path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    reason = response.json().get("error")
    if not with_token and b"csrf_token" not in body:
        assert (response.status_code, reason) == (403, "csrf_failed")
    if response.status_code >= 400:
        assert reason in {
            "csrf_failed",
            "invalid_request",
            "invalid_api_key",
            "payload_too_large",
            "unsupported_media_type",
        }, response.text


class _Response:
    def __init__(self, content: bytes) -> None:
        self.status_code = 200
        self.headers = {"x-debug": ["nothing"]}
        self.content = content


@pytest.mark.parametrize("content", [ACCESS.encode(), b'{"key": "' + API_KEY.encode() + b'"}'])
def test_the_secret_check_fires(content: bytes) -> None:
    with pytest.raises(AssertionError, match="secret in the body"):
        no_secret(None, _Response(content), None)
