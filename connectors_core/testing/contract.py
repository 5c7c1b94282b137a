"""The contract suite every connector should pass, in one line of the author's tests::

    from connectors_core.testing.contract import ConnectorContract


    class TestAcmeContract(ConnectorContract):
        connector_id = "acme"

It checks, against the installed distribution: the manifest is valid; the
connector id is the entry-point name; ``docs/connectors/<id>.md`` exists; and
connect, status and disconnect honour the status contract (through the real
routes, the strict local OAuth provider for OAuth connectors) without any
secret (client secret, token, API key) appearing in a response.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import attrs
import pytest

from .._manifest import Connector
from .._registry import Registry
from .._settings import env_prefix
from ..flows import ConnectStep, Input, flow_for
from ..sandbox import answer_verify_requests, mount_sandbox_apis

__all__ = [
    "ConnectorContract",
    "ProviderHandle",
    "answer_verify_requests",
    "connect_at_provider",
    "integrations_test_client",
    "mount_sandbox_apis",
    "sample_value",
    "start_provider",
]

CLIENT_ID = "test-client"


@attrs.frozen
class ProviderHandle:
    """The running strict provider, and the clients registered with it (one per connector)."""

    provider: Any
    url: str
    client_secret: str = attrs.field(repr=False)
    client_id: str = CLIENT_ID
    apis: frozenset[str] = frozenset()
    """The connectors whose plugin's ``sandbox_api`` app the provider serves."""

    def client_id_for(self, connector_id: str) -> str:
        """The id of the client registered for ``connector_id`` (its quirks are its own)."""
        return f"{self.client_id}-{connector_id}"


@contextmanager
def start_provider(registry: Registry, origin: str) -> Iterator[ProviderHandle]:
    """Run the strict provider with one client per connector of ``registry``.

    Each client's quirks are what that connector's manifest declares
    (:func:`~connectors_core.testing.oauth_provider.quirks_for`): the provider
    enforces them, so a manifest that does not match its connector's real
    provider fails here the way it would there. A connector's ``verify``
    request (on a literal path) is answered with every value it reads
    (:func:`~connectors_core.testing.oauth_provider.verify_answer`) until a
    test gives another answer with ``handle.provider.answer_api``.
    """
    from .oauth_provider import ALL_GRANTS, Client, OAuthProvider, quirks_for, running

    secret = "test-secret-" + secrets.token_urlsafe(12)
    handle = ProviderHandle(None, "", secret)
    clients = []
    for connector in registry:
        if connector.connection is None:
            continue
        quirks = quirks_for(connector)
        public = quirks.client_auth == "none"  # no secret: no client credentials grant
        clients.append(
            Client(
                handle.client_id_for(connector.id),
                secret,
                (f"{origin}/api/integrations/{connector.id}/callback",),
                flow_for(connector).scopes(connector),
                tuple(g for g in ALL_GRANTS if not (public and g == "client_credentials")),
                quirks,
            )
        )
    provider = OAuthProvider(clients=clients)
    answer_verify_requests(provider, registry)
    apis = frozenset(mount_sandbox_apis(provider, registry))
    with running(provider) as url:
        yield attrs.evolve(handle, provider=provider, url=url, apis=apis)


@contextmanager
def integrations_test_client(
    registry: Registry, handle: ProviderHandle, origin: str
) -> Iterator[Any]:
    """A Starlette test client of the routes; ``client.app.state.connections`` is the service."""
    from starlette.testclient import TestClient

    from ..connections import Connections, Settings
    from ..store import MemoryStore
    from ..web import create_app

    environ: dict[str, str] = {}
    for connector in registry:
        prefix = env_prefix(connector.id)
        if flow_for(connector).needs_client(connector):
            environ.update(
                {
                    f"{prefix}CLIENT_ID": handle.client_id_for(connector.id),
                    f"{prefix}CLIENT_SECRET": handle.client_secret,
                }
            )
        # The connector's own API: its plugin's sandbox app, else the provider's canned one.
        api = (
            f"{handle.url}/apis/{connector.id}"
            if connector.id in handle.apis
            else f"{handle.url}/connector-api"
        )
        # Every provider endpoint is the strict provider's (read only by OAuth flows).
        environ.update(
            {
                f"{prefix}AUTHORIZE_URL": f"{handle.url}/oauth/authorize",
                f"{prefix}TOKEN_URL": f"{handle.url}/api/oauth/token",
                f"{prefix}REVOCATION_URL": f"{handle.url}/api/oauth/revoke",
                f"{prefix}API_BASE_URL": api,
                f"{prefix}VERIFY_BASE_URL": api,
            }
        )
    settings = Settings(public_url=origin, database_url="memory://", environ=environ)
    connections = Connections(registry, MemoryStore(), settings)
    app = create_app(
        connections=connections,
        authenticator=lambda request: request.headers.get("x-tenant", "tenant-1"),
    )
    with TestClient(app, base_url=origin, follow_redirects=False) as client:
        yield client


class ConnectorContract:
    """Subclass with ``connector_id = "..."`` to run the contract on that connector."""

    connector_id: ClassVar[str] = ""
    docs_dir: ClassVar[str] = "docs/connectors"
    """Where ``<id>.md`` is looked for, relative to pytest's root folder."""

    @pytest.fixture
    def connector(self, connectors_registry: Registry) -> Connector:
        if not self.connector_id:
            pytest.fail("set connector_id on the ConnectorContract subclass")
        failures = [r.describe() for r in connectors_registry.failures]
        if self.connector_id not in connectors_registry:
            pytest.fail(f"{self.connector_id!r} is not installed; failed plugins: {failures}")
        return connectors_registry.get(self.connector_id)

    def test_manifest_is_valid(self, connector: Connector) -> None:
        from .._converter import define_connector, to_wire

        assert define_connector(to_wire(connector)) == connector

    def test_id_is_the_entry_point_name(
        self, connector: Connector, connectors_registry: Registry
    ) -> None:
        provider = connectors_registry.provider(connector.id)
        assert provider.plugin == connector.id, (
            f"the entry point is named {provider.plugin!r}; name it {connector.id!r}"
        )

    def test_docs_page_exists(self, connector: Connector, request: pytest.FixtureRequest) -> None:
        page = Path(request.config.rootpath) / self.docs_dir / f"{connector.id}.md"
        assert page.is_file(), f"missing {page}"
        assert connector.name in page.read_text(encoding="utf-8")

    def test_status_before_connecting(self, connector: Connector, integrations_client: Any) -> None:
        if connector.connection is None:
            pytest.skip("the connector declares no connection paths")
        response = integrations_client.get(f"/api/integrations/{connector.id}/status")
        assert response.status_code == 200
        assert response.json() == {"connected": False, "error": "not_connected"}

    def test_connect_status_disconnect(
        self, connector: Connector, integrations_client: Any, oauth_provider: ProviderHandle
    ) -> None:
        if connector.connection is None:
            pytest.skip("the connector declares no connection paths")
        seen: list[str] = []
        client = integrations_client
        secret_values = [oauth_provider.client_secret]
        flow = flow_for(connector)
        if flow.connect_step(connector) is ConnectStep.REDIRECT:
            start = client.get(f"/api/integrations/{connector.id}/connect")
            seen.append(_dump(start))
            assert start.status_code == 303, start.text
            self._at_provider(connector, client, start.headers["location"], seen)
        else:
            token = client.get("/api/integrations/csrf").json()["csrfToken"]
            body: dict[str, str] = {"csrf_token": token}
            # A connection's own OAuth client (client credentials) is the strict provider's.
            own_client = {
                "client_id": oauth_provider.client_id_for(connector.id),
                "client_secret": oauth_provider.client_secret,
            }
            for item in flow.inputs(connector):
                body[item.name] = own_client.get(item.name) or sample_value(item)
                if item.secret:
                    secret_values.append(body[item.name])
            # What the connector's API accepts when the verify request presents it.
            accepted = oauth_provider.provider.api_credentials
            accepted.update(body[i.name] for i in flow.credential_inputs(connector))
            if "username" in body:
                accepted.add(f"{body['username']}:{body.get('password', '')}")
            continues = flow.continues_at_provider(connector)
            response = client.post(
                f"/api/integrations/{connector.id}/connect",
                data=body,
                headers={"Accept": "text/html"} if continues else {},  # a browser's form post
            )
            seen.append(_dump(response))
            if continues:
                assert response.status_code == 303, response.text
                self._at_provider(connector, client, response.headers["location"], seen)
            else:
                assert response.status_code == 200, response.text
        status = client.get(f"/api/integrations/{connector.id}/status")
        seen.append(_dump(status))
        assert status.json()["connected"] is True
        assert isinstance(status.json()["status"], dict)
        secret_values += self._stored_secrets(client, connector)

        token = client.get("/api/integrations/csrf").json()["csrfToken"]
        gone = client.post(
            f"/api/integrations/{connector.id}/disconnect", headers={"X-CSRF-Token": token}
        )
        seen.append(_dump(gone))
        assert gone.json() == {"connected": False, "error": "not_connected"}
        again = client.post(
            f"/api/integrations/{connector.id}/disconnect", headers={"X-CSRF-Token": token}
        )
        assert again.status_code == 200  # idempotent
        for secret in secret_values:
            for text in seen:
                assert secret not in text, "a secret appeared in a response"

    @staticmethod
    def _at_provider(connector: Connector, client: Any, authorize: str, seen: list[str]) -> None:
        """Approve at the strict provider, and follow its redirect to the callback."""
        import httpx2

        pkce = ("pkce", "off") not in flow_for(connector).describe(connector)
        assert "code_challenge_method=S256" in authorize or not pkce
        with httpx2.Client(follow_redirects=False) as browser:
            approved = browser.get(authorize)
        callback = urlsplit(approved.headers["location"])
        assert re.fullmatch(rf"/api/integrations/{re.escape(connector.id)}/callback", callback.path)
        landed = client.get(f"{callback.path}?{callback.query}")
        seen.append(_dump(landed))
        assert landed.headers["location"].endswith("result=connected"), landed.headers

    @staticmethod
    def _stored_secrets(client: Any, connector: Connector) -> list[str]:
        import anyio

        store = client.app.state.connections.store
        stored = anyio.run(store.get, "tenant-1", connector.id)
        found = [stored.api_key] if stored and stored.api_key else []
        if stored:
            found += [v for v in (stored.username, stored.password) if v]
            found += list(stored.secrets.values())
        if stored and stored.tokens:
            found.append(stored.tokens.access_token)
            if stored.tokens.refresh_token:
                found.append(stored.tokens.refresh_token)
        return found


def connect_at_provider(client: Any, connector_id: str, *, scopes: list[str] | None = None) -> str:
    """Connect an OAuth connector as a user would; return where the callback sends the browser.

    Starts Connect through the routes (``client`` is ``integrations_client``),
    approves at the strict provider, and lands on the callback.
    ``scopes`` grants fewer scopes than the connector asks for, as a user who
    unticks some at the provider. The result ends with ``result=connected``
    or ``error=<reason>``.
    """
    from urllib.parse import parse_qsl, urlencode, urlunsplit

    import httpx2

    start = client.get(f"/api/integrations/{connector_id}/connect")
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    if scopes is not None:
        parts = urlsplit(authorize)
        params = {**dict(parse_qsl(parts.query)), "scope": " ".join(scopes)}
        authorize = urlunsplit(parts._replace(query=urlencode(params)))
    with httpx2.Client(follow_redirects=False) as browser:
        approved = browser.get(authorize)
    assert approved.status_code in (302, 303), approved.text
    callback = urlsplit(approved.headers["location"])
    assert callback.path.endswith(f"/api/integrations/{connector_id}/callback"), approved.text
    landed = client.get(f"{callback.path}?{callback.query}")
    assert landed.status_code == 303, landed.text
    location: str = landed.headers["location"]
    return location


def sample_value(item: Input) -> str:
    """A value the input accepts: its example or default if valid, else one made for its type."""
    from .._fields import FieldError, check_value

    field = item.field
    if item.secret and field is None:  # the flow's own credentials: a fresh secret
        return "contract-" + secrets.token_urlsafe(12)
    candidates = [item.example, None if item.default is None else str(item.default).lower()]
    kind = field.type.value if field is not None else "text"
    candidates += {
        "url": ["https://contract.example.com"],
        "hostname": ["contract.example.com"],
        "email": ["contract@example.com"],
        "integer": ["1"],
        "boolean": ["true"],
        "choice": list(item.choices[:1]),
        "secret": ["contract-" + secrets.token_urlsafe(12)],
    }.get(kind, ["contract" + "x" * max(0, (item.min_length or 0) - 8)])
    for candidate in candidates:
        if candidate is None:
            continue
        if field is None:
            return candidate
        try:
            check_value(field, candidate)
        except FieldError:
            continue
        return candidate
    raise AssertionError(
        f"cannot make a valid value for the field {item.name!r}: give it a valid example"
    )


def _dump(response: Any) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return f"{response.status_code}\n{headers}\n{response.text}"
