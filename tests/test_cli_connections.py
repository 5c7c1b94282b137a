"""``connectors connections``: in-process with click's runner, over a real SQLite store.

The store holds connections made beforehand through the real API: OAuth ones
connected through the harness app and the strict provider, and an API-key
one verified against the provider's connector API. The command finds its
connectors the way it does in production, through entry points: a small
plugin distribution installed for the test provides ``acme-oauth`` (pointed
at the provider by ``CONNECTORS_ACME_OAUTH_BASE_URL``), ``acme-multi`` (one
connection per provider organization, which the provider's ``/oauth/status``
names) and ``keyed``; the app's ``acme-norevoke`` is a connector the command
does not have. It runs with the environment the app was configured with, as
an operator's shell or a cron would. The app delivers the events to its
plugins' hooks meanwhile, as a server does.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import attrs
import pytest
from click.testing import CliRunner, Result
from starlette.requests import Request

from connectors_core import ConnectionEvent, discover
from connectors_core.cli import cli
from connectors_core.connections import Connections, Deliverer
from connectors_core.store import EventRecord, generate_key
from connectors_core.testing.oauth_provider import Account
from connectors_core.web import Identity
from tests.distributions import Dist
from tests.harness import ACME_SECRET, EVENCIO_SECRET, TENANT_HEADER, Harness

T = TypeVar("T")

KEY = "keyed-secret-key-0123456789abcdef"
HINT = "••••cdef"
MULTI = "acme-multi"
USER_HEADER = "x-test-user"
CONNECTION_ID = r"conn_[0-9a-f]{16}"
WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
PLUGIN = Dist(
    "connectors-cli-test",
    "1.0.0",
    {"cli-test": "cli_test_connectors"},
    {
        "cli_test_connectors/__init__.py": """
            from connectors_core import define_connector, hookimpl

            ACME = define_connector(
                id="acme-oauth",
                name="Acme OAuth",
                summary="An OAuth connector.",
                description="Its provider is wherever CONNECTORS_ACME_OAUTH_BASE_URL says.",
                category="marketing",
                status="available",
                auth={
                    "type": "oauth",
                    "authorizeUrl": "https://auth.acme.example/oauth/authorize",
                    "tokenUrl": "https://auth.acme.example/api/oauth/token",
                    "revocationUrl": "https://auth.acme.example/api/oauth/revoke",
                    "scopes": ["read"],
                },
                capabilities=[{"id": "read", "label": "Read"}],
                connection={"startPath": "/api/integrations/acme-oauth/connect"},
            )
            MULTI = define_connector(
                id="acme-multi",
                name="Acme Multi",
                summary="An OAuth connector with one connection per organization.",
                description="Its provider says whose token it is at /oauth/status.",
                category="marketing",
                status="available",
                auth={
                    "type": "oauth",
                    "authorizeUrl": "https://auth.acme.example/oauth/authorize",
                    "tokenUrl": "https://auth.acme.example/api/oauth/token",
                    "revocationUrl": "https://auth.acme.example/api/oauth/revoke",
                    "scopes": ["read"],
                },
                verify={
                    "baseUrl": "https://auth.acme.example",
                    "path": "/oauth/status",
                    "account": {"organizationId": "organizationId", "userId": "userId"},
                },
                capabilities=[{"id": "read", "label": "Read"}],
                connection={
                    "startPath": "/api/integrations/acme-multi/connect",
                    "multiple": True,
                    "accountKey": "organizationId",
                },
            )
            KEYED = define_connector(
                id="keyed",
                name="Keyed",
                summary="An API-key connector.",
                description="Verified with a request to its API.",
                category="custom",
                status="available",
                auth={"type": "api-key", "description": "Your key.", "headerName": "X-Api-Key"},
                api={"baseUrl": "https://api.keyed.example"},
                verify={"path": "/me", "account": {"teamId": "team.id"}},
                capabilities=[{"id": "ping", "label": "Ping"}],
                connection={"startPath": "/api/integrations/keyed/connect"},
            )

            @hookimpl
            def provide_connector():
                return [ACME, MULTI, KEYED]
        """
    },
)


def call(env: dict[str, str], work: Callable[[Connections], Awaitable[T]]) -> T:
    """Run ``work`` with a service over the same store, as a host's job would."""

    async def main() -> T:
        registry = discover(allow=env["CONNECTORS_PLUGINS_ALLOW"].split(","))
        service = Connections.from_env(env, registry=registry)
        try:
            return await work(service)
        finally:
            await service.aclose()

    return anyio.run(main)


@attrs.define
class World:
    """The harness, the environment the CLI runs with, and the plugin folder."""

    harness: Harness
    env: dict[str, str]
    site: Path

    def secrets(self, env: dict[str, str | None] | None = None) -> list[str]:
        """Every secret the outputs must not contain: tokens, the key, client secrets, keys."""
        keys = [self.env["CONNECTORS_SECRET_KEYS"], (env or {}).get("CONNECTORS_SECRET_KEYS") or ""]
        return [
            *self.harness.provider.issued,
            KEY,
            EVENCIO_SECRET,
            ACME_SECRET,
            *[key for value in keys for key in value.split(",") if key],
        ]

    def run(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        """``connectors connections ARGS``, checked for tracebacks and secrets."""
        result = CliRunner().invoke(
            cli, ["connections", *args], env={**self.env, **(env or {})}, catch_exceptions=False
        )
        output = result.stdout + result.stderr
        assert "Traceback" not in output
        assert not [secret for secret in self.secrets(env) if secret in output], args
        return result

    def status(self, tenant: str, connector_id: str) -> dict[str, Any]:
        return call(self.env, lambda service: service.status(tenant, connector_id))


def signed_in(request: Request) -> Identity | None:
    """The tenant from a header, and the user, when a browser names one, from another."""
    tenant = request.headers.get(TENANT_HEADER)
    return Identity(tenant, user=request.headers.get(USER_HEADER)) if tenant else None


@pytest.fixture
def world(
    make_harness: Callable[..., Harness], make_site: Callable[[Sequence[Dist]], Path]
) -> World:
    site = make_site([PLUGIN])
    harness = make_harness(authenticator=signed_in)
    env = {
        **harness.settings.environ,
        "CONNECTORS_PLUGINS_ALLOW": "cli-test",  # whatever else is installed here
        "CONNECTORS_ACME_OAUTH_BASE_URL": harness.provider_url,
        "CONNECTORS_ACME_MULTI_BASE_URL": harness.provider_url,
        "CONNECTORS_ACME_MULTI_VERIFY_BASE_URL": harness.provider_url,
        "CONNECTORS_KEYED_API_BASE_URL": f"{harness.provider_url}/connector-api",
    }
    # The app's deliverer registers its destination on its first pass; registered
    # now, before anything happens, every event below is one it delivers.
    call(env, lambda service: service.store.outbox.register_destinations(["hooks"]))
    harness.provider.api_credentials.add(KEY)
    harness.provider.answer_api("/me", {"team": {"id": "team-9"}, "name": "Keyed Team"})
    for tenant, connector_id in [
        ("tenant-b", "acme-oauth"),
        ("tenant-a", "acme-oauth"),
        ("tenant-b", "acme-norevoke"),
    ]:
        with harness.browser(tenant) as browser:
            assert harness.connect(browser, connector_id).endswith("result=connected")
    call(env, lambda service: service.connect_api_key("tenant-a", "keyed", KEY))
    return World(harness, env, site)


@pytest.fixture
def several(world: World) -> dict[str, str]:
    """Two ``acme-multi`` connections of tenant-a, by organization: ``org-1`` connected by
    ada and labelled "Marketing", ``org-2`` by grace. Their connection ids."""
    for organization, user in (("org-1", "ada"), ("org-2", "grace")):
        world.harness.provider.account = Account(
            user_id=f"user-of-{organization}", organization_id=organization
        )
        with world.harness.browser("tenant-a") as browser:
            browser.headers[USER_HEADER] = user
            assert world.harness.connect(browser, MULTI).endswith("result=connected")
    found = call(world.env, lambda service: service.list(tenant="tenant-a", connector_id=MULTI))
    ids = {summary.account["organizationId"]: summary.connection_id for summary in found}
    call(world.env, lambda service: service.rename("tenant-a", MULTI, ids["org-1"], "Marketing"))
    return ids


def table(result: Result) -> list[list[str]]:
    """The rows of a table (the header first), cells split on the column gaps."""
    return [re.split(r"\s{2,}", line) for line in result.stdout.splitlines()]


def fields(result: Result) -> dict[str, str]:
    """The ``label: value`` lines of ``show``."""
    pairs = (line.split(":", 1) for line in result.stdout.splitlines())
    return {label.strip(): value.strip() for label, value in pairs}


def expire_soon(world: World, tenant: str, connector_id: str) -> None:
    """Make the access token one issued an hour ago that expires in 30 s: due now."""

    async def work(service: Connections) -> None:
        only = await service.store.get(tenant, connector_id)
        assert only is not None
        async with service.store.lease(tenant, connector_id, only.connection_id) as lease:
            connection = lease.connection
            assert connection is not None
            assert connection.tokens is not None
            now = time.time()
            tokens = attrs.evolve(connection.tokens, expires_at=now + 30)
            await lease.save(attrs.evolve(connection, tokens=tokens, updated_at=now - 3570))

    call(world.env, work)


def refreshes(world: World) -> int:
    return world.harness.provider.token_requests.count("refresh_token")


def connection_ids(world: World) -> dict[tuple[str, str], str]:
    """The id of each connection of a connector that holds one, by tenant and connector."""
    found = call(world.env, lambda service: service.list())
    return {(s.tenant, s.connector_id): s.connection_id for s in found if s.connector_id != MULTI}


def recent(world: World, **options: Any) -> list[EventRecord]:
    return call(world.env, lambda service: service.store.outbox.recent(**options))


def delivered(world: World) -> list[EventRecord]:
    """Every event, once the app delivered each to its plugins' hooks (it does so shortly)."""
    deadline = time.monotonic() + 10
    while True:
        records = recent(world, limit=1000)
        if all(record.deliveries.get("hooks") == "delivered" for record in records):
            return records
        assert time.monotonic() < deadline, [record.deliveries for record in records]
        time.sleep(0.05)


# --- list -----------------------------------------------------------------------------


def test_list_prints_every_connection_by_tenant_then_connector(world: World) -> None:
    result = world.run("list")

    ids = connection_ids(world)
    assert result.exit_code == 0, result.stderr
    assert table(result) == [
        ["TENANT", "CONNECTOR", "CONNECTION", "STATE", "ACCOUNT", "LAST REFRESHED", "LAST ERROR"],
        ["tenant-a", "acme-oauth", ids["tenant-a", "acme-oauth"], "connected", "-", "-", "-"],
        ["tenant-a", "keyed", ids["tenant-a", "keyed"], "connected", "teamId=team-9", "-", "-"],
        [
            "tenant-b",
            "acme-norevoke",
            ids["tenant-b", "acme-norevoke"],
            "unknown_connector",
            "-",
            "-",
            "-",
        ],
        ["tenant-b", "acme-oauth", ids["tenant-b", "acme-oauth"], "connected", "-", "-", "-"],
    ]
    assert all(re.fullmatch(CONNECTION_ID, connection_id) for connection_id in ids.values())
    assert len(set(ids.values())) == 4
    assert result.stderr == ""


def test_list_shows_each_of_several_connections_by_id_with_its_label_and_account(
    world: World, several: dict[str, str]
) -> None:
    result = world.run("list", "--connector", MULTI)

    assert result.exit_code == 0, result.stderr
    assert table(result)[1:] == [
        [
            "tenant-a",
            MULTI,
            several["org-1"],
            "connected",
            "Marketing (organizationId=org-1, userId=user-of-org-1)",
            "-",
            "-",
        ],
        [
            "tenant-a",
            MULTI,
            several["org-2"],
            "connected",
            "organizationId=org-2, userId=user-of-org-2",
            "-",
            "-",
        ],
    ]
    data = json.loads(world.run("list", "--connector", MULTI, "--json").stdout)
    assert [(item["connectionId"], item["status"]["connectionId"]) for item in data] == [
        (several["org-1"], several["org-1"]),
        (several["org-2"], several["org-2"]),
    ]
    assert data[0]["status"]["label"] == "Marketing"
    assert data[1]["status"]["connectedBy"] == {"id": "grace", "name": None}


def test_list_json_prints_each_connection_as_describe_gives_it(world: World) -> None:
    data = json.loads(world.run("list", "--json").stdout)

    async def described(service: Connections) -> list[dict[str, Any]]:
        return [
            {"connectionId": summary.connection_id, **service.describe(summary)}
            for summary in await service.list()
        ]

    assert data == call(world.env, described)
    assert list(data[0])[:3] == ["tenant", "connectorId", "connectionId"]
    assert [(item["tenant"], item["connectorId"]) for item in data] == [
        ("tenant-a", "acme-oauth"),
        ("tenant-a", "keyed"),
        ("tenant-b", "acme-norevoke"),
        ("tenant-b", "acme-oauth"),
    ]
    assert data[1]["status"]["keyHint"] == HINT
    assert data[2] == {
        "tenant": "tenant-b",
        "connectorId": "acme-norevoke",
        "connectionId": connection_ids(world)["tenant-b", "acme-norevoke"],
        "connected": False,
        "error": "unknown_connector",
    }


def test_list_filters_by_tenant_and_connector(world: World) -> None:
    def listed(*options: str) -> list[tuple[str, str]]:
        data = json.loads(world.run("list", "--json", *options).stdout)
        return [(item["tenant"], item["connectorId"]) for item in data]

    assert listed("--tenant", "tenant-b") == [
        ("tenant-b", "acme-norevoke"),
        ("tenant-b", "acme-oauth"),
    ]
    assert listed("--connector", "acme-oauth") == [
        ("tenant-a", "acme-oauth"),
        ("tenant-b", "acme-oauth"),
    ]
    assert listed("--tenant", "tenant-a", "--connector", "keyed") == [("tenant-a", "keyed")]
    assert listed("--tenant", "nobody") == []
    result = world.run("list", "--connector", "acme-oauth")
    assert [row[:2] for row in table(result)[1:]] == [
        ["tenant-a", "acme-oauth"],
        ["tenant-b", "acme-oauth"],
    ]
    nothing = world.run("list", "--tenant", "nobody")
    assert (nothing.exit_code, nothing.stdout) == (0, "No connections found.\n")


# --- show -----------------------------------------------------------------------------


def test_show_prints_one_status_with_a_key_hint_only(world: World) -> None:
    result = world.run("show", "tenant-a", "keyed")

    assert result.exit_code == 0, result.stderr
    shown = fields(result)
    assert {key: shown[key] for key in ("tenant", "connector", "state", "teamId")} == {
        "tenant": "tenant-a",
        "connector": "keyed",
        "state": "connected",
        "teamId": "team-9",
    }
    assert (shown["authType"], shown["keyHint"]) == ("api-key", HINT)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", shown["connectedAt"])

    data = json.loads(world.run("show", "tenant-a", "keyed", "--json").stdout)
    assert data == {
        "tenant": "tenant-a",
        "connectorId": "keyed",
        **world.status("tenant-a", "keyed"),
    }
    assert data["status"]["keyHint"] == HINT

    oauth = fields(world.run("show", "tenant-b", "acme-oauth"))
    assert (oauth["state"], oauth["authType"], oauth["scopes"]) == ("connected", "oauth", "read")


def test_show_says_why_a_connection_needs_the_user_again(world: World) -> None:
    call(
        world.env,
        lambda service: service.mark_needs_reauth("tenant-b", "acme-oauth", "uninstalled"),
    )

    result = world.run("show", "tenant-b", "acme-oauth")

    assert result.exit_code == 0
    assert fields(result)["state"] == "needs_reauth: uninstalled"
    shown = json.loads(world.run("show", "tenant-b", "acme-oauth", "--json").stdout)
    assert shown.pop("connectionId").startswith("conn_")
    assert shown == {
        "tenant": "tenant-b",
        "connectorId": "acme-oauth",
        "connected": False,
        "error": "needs_reauth",
        "reason": "uninstalled",
    }
    assert table(world.run("list", "--tenant", "tenant-b"))[2][3] == "needs_reauth: uninstalled"


# --- test -----------------------------------------------------------------------------


def test_test_verifies_the_stored_credentials_and_records_when(world: World) -> None:
    result = world.run("test", "tenant-a", "keyed")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "verified: tenant-a/keyed\n"
    assert world.harness.provider.api_requests == [("GET", "/me")] * 2  # on connect, and now
    assert "verifiedAt" in world.status("tenant-a", "keyed")["status"]

    data = json.loads(world.run("test", "tenant-a", "acme-oauth", "--json").stdout)
    assert (data["tenant"], data["connectorId"], data["verified"]) == (
        "tenant-a",
        "acme-oauth",
        True,
    )
    assert "verifiedAt" in data["status"]


def test_a_failed_test_exits_1_with_the_reason(world: World) -> None:
    world.harness.provider.api_credentials.discard(KEY)  # the key was revoked at the provider

    result = world.run("test", "tenant-a", "keyed")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: tenant-a/keyed: verification failed: invalid_credentials: "
        "the provider did not accept these credentials (HTTP 401)\n"
    )
    failed = world.run("test", "tenant-a", "keyed", "--json")
    assert failed.exit_code == 1
    assert json.loads(failed.stdout) == {
        "tenant": "tenant-a",
        "connectorId": "keyed",
        "verified": False,
        "error": "invalid_credentials",
    }
    assert world.status("tenant-a", "keyed")["status"]["verificationError"] == "invalid_credentials"
    row = table(world.run("list", "--tenant", "tenant-a", "--connector", "keyed"))[1]
    assert row[-1] == "verify: invalid_credentials"


def test_testing_a_connection_that_needs_the_user_again_says_why(world: World) -> None:
    call(world.env, lambda service: service.mark_needs_reauth("tenant-a", "acme-oauth"))

    result = world.run("test", "tenant-a", "acme-oauth")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: tenant-a/acme-oauth: verification failed: needs_reauth (revoked): "
        "acme-oauth must be connected again\n"
    )
    data = json.loads(world.run("test", "tenant-a", "acme-oauth", "--json").stdout)
    assert (data["error"], data["reason"]) == ("needs_reauth", "revoked")


# --- refresh --------------------------------------------------------------------------


def test_refresh_renews_one_connection_now(world: World) -> None:
    before = refreshes(world)

    result = world.run("refresh", "tenant-a", "acme-oauth")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "refreshed: tenant-a/acme-oauth\n"
    assert refreshes(world) == before + 1
    data = json.loads(world.run("refresh", "tenant-a", "acme-oauth", "--json").stdout)
    assert (data["tenant"], data["connectorId"], data["refreshed"]) == (
        "tenant-a",
        "acme-oauth",
        True,
    )
    assert abs(data["status"]["lastRefreshedAt"] - time.time()) < 60
    assert refreshes(world) == before + 2
    rows = table(world.run("list", "--connector", "acme-oauth"))
    assert rows[1][5] != "-"  # tenant-a: renewed
    assert rows[2][5] == "-"  # tenant-b: untouched


def test_refreshing_an_api_key_connection_is_a_clean_unsupported_auth_error(world: World) -> None:
    for options in ((), ("--json",)):
        result = world.run("refresh", "tenant-a", "keyed", *options)

        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == (
            "error: tenant-a/keyed: unsupported_auth: the credentials of 'keyed' for tenant "
            "'tenant-a' cannot be renewed without the user\n"
        )


def test_refresh_due_renews_only_what_is_due(world: World) -> None:
    before = refreshes(world)
    nothing = world.run("refresh", "--due")
    assert (nothing.exit_code, nothing.stdout) == (0, "Nothing is due.\n")
    assert refreshes(world) == before

    expire_soon(world, "tenant-a", "acme-oauth")
    result = world.run("refresh", "--due")

    assert result.exit_code == 0, result.stderr
    rows = table(result)
    assert rows[1][2].startswith("conn_")  # which connection of the connector
    rows[1][2] = "<id>"
    assert rows == [
        ["TENANT", "CONNECTOR", "CONNECTION", "RESULT", "REASON"],
        ["tenant-a", "acme-oauth", "<id>", "refreshed", "-"],
        [
            "1 due: 1 refreshed, 0 unchanged (renewed meanwhile), 0 failed (tried again next "
            "time), 0 need the user to connect again."
        ],
    ]
    assert refreshes(world) == before + 1
    assert world.run("refresh", "--due").stdout == "Nothing is due.\n"

    # A cron every two hours renews what expires before its next run; the API key
    # and the connection of a connector not installed are left alone.
    data = json.loads(world.run("refresh", "--due", "--within", "7200", "--json").stdout)
    assert all(o.pop("connectionId").startswith("conn_") for o in data["outcomes"])
    assert data == {
        "ok": True,
        "outcomes": [
            {"tenant": t, "connectorId": "acme-oauth", "result": "refreshed", "reason": None}
            for t in ("tenant-a", "tenant-b")
        ],
        "counts": {"refreshed": 2, "unchanged": 0, "failed": 0, "needs_reauth": 0},
    }


def test_refresh_due_narrows_to_a_tenant_or_a_connector(world: World) -> None:
    def renewed(*options: str) -> list[tuple[str, str]]:
        data = json.loads(
            world.run("refresh", "--due", "--within", "7200", "--json", *options).stdout
        )
        return [(o["tenant"], o["connectorId"]) for o in data["outcomes"]]

    assert renewed("--tenant", "tenant-b") == [("tenant-b", "acme-oauth")]
    assert renewed("--connector", "keyed") == []
    assert renewed("--connector", "acme-oauth", "--tenant", "tenant-a") == [
        ("tenant-a", "acme-oauth")
    ]


def test_refresh_due_exits_1_when_a_renewal_fails_or_needs_the_user(world: World) -> None:
    provider = world.harness.provider
    expire_soon(world, "tenant-a", "acme-oauth")
    provider.respond_next("token", 400, {"error": "invalid_grant"})

    refused = world.run("refresh", "--due")

    assert refused.exit_code == 1
    row = table(refused)[1]
    assert row[:2] + row[3:] == ["tenant-a", "acme-oauth", "needs_reauth", "invalid_grant"]
    assert "0 refreshed" in refused.stdout
    assert "1 need the user to connect again." in refused.stdout

    expire_soon(world, "tenant-b", "acme-oauth")
    provider.fail_next("token", 500)
    failed = world.run("refresh", "--due", "--json")
    assert failed.exit_code == 1
    data = json.loads(failed.stdout)
    assert data["ok"] is False
    assert data["outcomes"][0].pop("connectionId").startswith("conn_")
    assert data["outcomes"] == [
        {
            "tenant": "tenant-b",
            "connectorId": "acme-oauth",
            "result": "failed",
            "reason": "provider_unavailable",
        }
    ]
    rows = table(world.run("list", "--connector", "acme-oauth"))
    assert rows[1][3] == "needs_reauth: invalid_grant"
    assert (rows[2][3], rows[2][6]) == ("connected", "provider_unavailable")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--due", "tenant-a", "acme-oauth"], "--due renews every connection that is due"),
        ([], "give TENANT and CONNECTOR, or --due"),
        (["tenant-a"], "give TENANT and CONNECTOR, or --due"),
        (["tenant-a", "acme-oauth", "--within", "60"], "--within go with --due"),
        (["tenant-a", "acme-oauth", "--tenant", "tenant-b"], "--within go with --due"),
        (["--due", "--within", "-1"], "Invalid value for '--within'"),
        (["--due", "--connection", "conn_0000"], "--due renews every connection that is due"),
    ],
)
def test_refresh_usage_mistakes_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["connections", "refresh", *args], catch_exceptions=False)

    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# --- disconnect -----------------------------------------------------------------------


def test_disconnect_with_yes_revokes_and_deletes(world: World) -> None:
    provider = world.harness.provider

    result = world.run("disconnect", "tenant-a", "acme-oauth", "--yes")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "disconnected: tenant-a/acme-oauth\n"
    assert len(provider.revocations) == 2  # the refresh and the access token
    assert not any(provider.is_active(token) for token in provider.revocations)
    listed = json.loads(world.run("list", "--json", "--tenant", "tenant-a").stdout)
    assert [item["connectorId"] for item in listed] == ["keyed"]
    again = world.run("disconnect", "tenant-a", "acme-oauth", "--yes")
    assert (again.exit_code, again.stdout) == (
        0,
        "tenant-a/acme-oauth was not connected; nothing to do\n",
    )


def test_disconnect_without_yes_and_without_a_terminal_refuses(world: World) -> None:
    for given in (None, "y\n"):  # input that is not a terminal is not an answer
        result = CliRunner().invoke(
            cli,
            ["connections", "disconnect", "tenant-a", "keyed"],
            env=world.env,
            input=given,
            catch_exceptions=False,
        )

        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == (
            "error: not disconnecting tenant-a/keyed without confirmation: "
            "there is no terminal to ask on; pass --yes\n"
        )
    assert world.status("tenant-a", "keyed")["connected"] is True


# --- several connections of one connector ---------------------------------------------


def test_connection_names_one_of_several_for_show_test_and_refresh(
    world: World, several: dict[str, str]
) -> None:
    one, two = several["org-1"], several["org-2"]

    shown = world.run("show", "tenant-a", MULTI, "--connection", one)
    assert shown.exit_code == 0, shown.stderr
    assert {key: fields(shown)[key] for key in ("state", "connectionId", "label")} == {
        "state": "connected",
        "connectionId": one,
        "label": "Marketing",
    }
    assert (fields(shown)["organizationId"], fields(shown)["id"]) == ("org-1", "ada")
    data = json.loads(world.run("show", "tenant-a", MULTI, "--connection", two, "--json").stdout)
    assert (data["status"]["connectionId"], data["status"]["organizationId"]) == (two, "org-2")

    tested = world.run("test", "tenant-a", MULTI, "--connection", two)
    assert (tested.exit_code, tested.stdout) == (0, f"verified: tenant-a/{MULTI}/{two}\n")
    verified = {
        s["status"]["connectionId"]: s for s in world.status("tenant-a", MULTI)["connections"]
    }
    assert "verifiedAt" in verified[two]["status"]
    assert "verifiedAt" not in verified[one]["status"]

    before = refreshes(world)
    renewed = world.run("refresh", "tenant-a", MULTI, "--connection", one)
    assert (renewed.exit_code, renewed.stdout) == (0, f"refreshed: tenant-a/{MULTI}/{one}\n")
    assert refreshes(world) == before + 1
    rows = {row[2]: row for row in table(world.run("list", "--connector", MULTI))[1:]}
    assert (rows[one][5] != "-", rows[two][5]) == (True, "-")


def test_connection_names_a_connector_s_only_connection_too(world: World) -> None:
    only = connection_ids(world)["tenant-a", "keyed"]

    shown = json.loads(
        world.run("show", "tenant-a", "keyed", "--connection", only, "--json").stdout
    )
    assert shown["status"]["connectionId"] == only
    tested = world.run("test", "tenant-a", "keyed", "--connection", only)
    assert tested.stdout == f"verified: tenant-a/keyed/{only}\n"

    for command in (["show"], ["test"], ["refresh"]):
        wrong = world.run(*command, "tenant-a", "acme-oauth", "--connection", "conn_0000")
        assert wrong.exit_code == 1
        assert wrong.stderr.startswith("error: tenant-a/acme-oauth/conn_0000: ")
        assert wrong.stderr.endswith("not_connected: acme-oauth has no such connection\n")
        assert wrong.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "command",
    [["show"], ["show", "--json"], ["test"], ["test", "--json"], ["refresh"], ["disconnect"]],
)
def test_a_connector_holding_several_needs_connection_and_lists_their_ids(
    world: World, several: dict[str, str], command: list[str]
) -> None:
    before = world.status("tenant-a", MULTI)

    result = world.run(command[0], "tenant-a", MULTI, *command[1:])

    one, two = several["org-1"], several["org-2"]
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: tenant-a/{MULTI}: connection_required: {MULTI} holds 2 connections for this "
        f"tenant; pass --connection with one of their ids: {one} (Marketing, "
        f"organizationId=org-1, userId=user-of-org-1), {two} (organizationId=org-2, "
        "userId=user-of-org-2)\n"
    )
    if command == ["test", "--json"]:
        assert json.loads(result.stdout) == {
            "tenant": "tenant-a",
            "connectorId": MULTI,
            "verified": False,
            "error": "connection_required",
        }
    else:
        assert result.stdout == ""
    assert world.status("tenant-a", MULTI) == before  # nothing verified, renewed or removed


def test_a_multiple_connector_with_one_connection_needs_no_connection(
    world: World, several: dict[str, str]
) -> None:
    gone = world.run("disconnect", "tenant-a", MULTI, "--connection", several["org-2"], "--yes")
    assert gone.exit_code == 0, gone.stderr

    shown = fields(world.run("show", "tenant-a", MULTI))
    assert (shown["connectionId"], shown["label"]) == (several["org-1"], "Marketing")
    assert world.run("test", "tenant-a", MULTI).stdout == f"verified: tenant-a/{MULTI}\n"


def test_disconnect_with_connection_removes_that_one_only(
    world: World, several: dict[str, str]
) -> None:
    one, two = several["org-1"], several["org-2"]
    provider = world.harness.provider

    result = world.run("disconnect", "tenant-a", MULTI, "--connection", one, "--yes")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"disconnected: tenant-a/{MULTI}/{one}\n"
    assert len(provider.revocations) == 2  # its refresh and access token
    left = world.status("tenant-a", MULTI)["connections"]
    assert [s["status"]["connectionId"] for s in left] == [two]
    again = world.run("disconnect", "tenant-a", MULTI, "--connection", one, "--yes")
    assert (again.exit_code, again.stdout) == (
        0,
        f"tenant-a/{MULTI}/{one} was not connected; nothing to do\n",
    )
    refused = world.run("disconnect", "tenant-a", MULTI, "--connection", two)
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: not disconnecting tenant-a/{MULTI}/{two} without confirmation: "
        "there is no terminal to ask on; pass --yes\n"
    )
    assert len(world.status("tenant-a", MULTI)["connections"]) == 1


# --- events ---------------------------------------------------------------------------


def test_events_lists_what_happened_newest_first_with_who_and_delivery(
    world: World, several: dict[str, str]
) -> None:
    one, two = several["org-1"], several["org-2"]
    ids = connection_ids(world)
    world.harness.provider.api_credentials.discard(KEY)  # the key was revoked at the provider
    assert world.run("test", "tenant-a", "keyed").exit_code == 1
    assert world.run("disconnect", "tenant-a", MULTI, "--connection", two, "--yes").exit_code == 0
    delivered(world)

    result = world.run("events", "--tenant", "tenant-a")

    assert result.exit_code == 0, result.stderr
    rows = table(result)
    assert rows[0] == [
        "WHEN",
        "EVENT",
        "TENANT",
        "CONNECTOR",
        "CONNECTION",
        "ACCOUNT",
        "ACTOR",
        "REASON",
        "DELIVERY",
    ]
    assert all(re.fullmatch(WHEN, row[0]) for row in rows[1:])
    org = "organizationId=org-{0}, userId=user-of-org-{0}"
    assert [row[1:] for row in rows[1:]] == [
        ["disconnected", "tenant-a", MULTI, two, org.format(2), "-", "-", "hooks delivered"],
        [
            "verification_failed",
            "tenant-a",
            "keyed",
            ids["tenant-a", "keyed"],
            "teamId=team-9",
            "-",
            "invalid_credentials",
            "hooks delivered",
        ],
        ["connected", "tenant-a", MULTI, two, org.format(2), "grace", "-", "hooks delivered"],
        ["connected", "tenant-a", MULTI, one, org.format(1), "ada", "-", "hooks delivered"],
        [
            "connected",
            "tenant-a",
            "keyed",
            ids["tenant-a", "keyed"],
            "teamId=team-9",
            "-",
            "-",
            "hooks delivered",
        ],
        [
            "connected",
            "tenant-a",
            "acme-oauth",
            ids["tenant-a", "acme-oauth"],
            "-",
            "-",
            "-",
            "hooks delivered",
        ],
    ]


def test_events_filter_by_tenant_and_connector_and_keep_the_newest(
    world: World, several: dict[str, str]
) -> None:
    def listed(*options: str) -> list[tuple[str, str, str]]:
        result = world.run("events", "--json", *options)
        assert result.exit_code == 0, result.stderr
        return [(e["type"], e["tenant"], e["connectorId"]) for e in json.loads(result.stdout)]

    assert listed() == [
        ("connected", "tenant-a", MULTI),
        ("connected", "tenant-a", MULTI),
        ("connected", "tenant-a", "keyed"),
        ("connected", "tenant-b", "acme-norevoke"),
        ("connected", "tenant-a", "acme-oauth"),
        ("connected", "tenant-b", "acme-oauth"),
    ]
    assert listed("--tenant", "tenant-b") == [
        ("connected", "tenant-b", "acme-norevoke"),
        ("connected", "tenant-b", "acme-oauth"),
    ]
    assert listed("--connector", "acme-oauth") == [
        ("connected", "tenant-a", "acme-oauth"),
        ("connected", "tenant-b", "acme-oauth"),
    ]
    assert listed("--connector", "acme-oauth", "--tenant", "tenant-b") == [
        ("connected", "tenant-b", "acme-oauth")
    ]
    assert listed("--limit", "2") == [("connected", "tenant-a", MULTI)] * 2
    newest = json.loads(world.run("events", "--json", "--limit", "1").stdout)
    assert newest[0]["connectionId"] == several["org-2"]
    assert len(table(world.run("events", "--limit", "3"))) == 4  # the header and three


def test_events_json_is_each_event_s_json_with_its_deliveries(
    world: World, several: dict[str, str]
) -> None:
    gone = world.run("disconnect", "tenant-a", MULTI, "--connection", several["org-1"], "--yes")
    assert gone.exit_code == 0, gone.stderr
    records = delivered(world)

    data = json.loads(world.run("events", "--json").stdout)

    assert data == [{**r.event.to_json(), "deliveries": {"hooks": "delivered"}} for r in records]
    assert data[0] == {
        "id": data[0]["id"],
        "type": "disconnected",
        "tenant": "tenant-a",
        "connectorId": MULTI,
        "connectionId": several["org-1"],
        "account": {"organizationId": "org-1", "userId": "user-of-org-1"},
        "reason": None,
        "actor": None,  # the command names no user
        "at": data[0]["at"],
        "deliveries": {"hooks": "delivered"},
    }
    assert re.fullmatch(r"evt_[0-9a-f]{32}", data[0]["id"])
    assert abs(data[0]["at"] - time.time()) < 60
    assert ConnectionEvent.from_json(data[0]) == records[0].event
    assert data[-2]["actor"] is None


def test_events_say_which_delivery_is_pending_and_why(world: World) -> None:
    def fail(event: ConnectionEvent) -> None:
        raise RuntimeError("the host's listener is down")

    async def deliver(service: Connections, listener: Callable[[ConnectionEvent], None]) -> int:
        deliverer = Deliverer(service, listeners=[listener], first_retry=0)
        try:
            return await deliverer.run_once()
        finally:
            await deliverer.aclose()

    # A host job's deliverer with a listener: a destination from now on.
    call(world.env, lambda service: service.store.outbox.register_destinations(["listeners"]))
    assert world.run("disconnect", "tenant-a", "keyed", "--yes").exit_code == 0
    call(world.env, lambda service: deliver(service, fail))
    delivered(world)

    rows = table(world.run("events", "--connector", "keyed"))
    assert [row[-1] for row in rows[1:]] == [
        "hooks delivered, listeners pending (1 failed: RuntimeError)",
        "hooks delivered",  # written before the listeners were a destination
    ]
    call(world.env, lambda service: deliver(service, lambda event: None))
    again = json.loads(world.run("events", "--connector", "keyed", "--json").stdout)
    assert again[0]["deliveries"] == {"hooks": "delivered", "listeners": "delivered"}


def test_events_says_when_there_are_none(world: World, tmp_path: Path) -> None:
    nothing = world.run("events", "--tenant", "nobody")
    assert (nothing.exit_code, nothing.stdout) == (0, "No events.\n")
    assert json.loads(world.run("events", "--tenant", "nobody", "--json").stdout) == []

    (tmp_path / "empty").mkdir()
    database = empty_store(tmp_path / "empty")
    env: dict[str, str | None] = {"CONNECTORS_DATABASE_URL": f"sqlite:///{database}"}
    assert world.run("events", env=env).stdout == "No events.\n"


@pytest.mark.parametrize("limit", ["0", "1001", "many"])
def test_events_limit_is_1_to_1000(limit: str) -> None:
    result = CliRunner().invoke(
        cli, ["connections", "events", "--limit", limit], catch_exceptions=False
    )

    assert result.exit_code == 2
    assert "Invalid value for '--limit'" in result.stderr


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "exit_code", "stderr"),
    [
        (["show", "tenant-a", "nope"], 1, "error: no connector with id 'nope' is registered"),
        (["test", "tenant-a", "nope"], 1, "error: no connector with id 'nope' is registered"),
        (["refresh", "tenant-a", "nope"], 1, "error: no connector with id 'nope' is registered"),
        (["disconnect", "tenant-a", "nope", "--yes"], 1, "error: no connector with id 'nope'"),
        (
            ["show", "tenant-b", "acme-norevoke"],  # stored, but its connector is not installed
            1,
            "error: no connector with id 'acme-norevoke' is registered",
        ),
        (
            ["show", "nobody", "acme-oauth"],
            1,
            "error: nobody/acme-oauth: not_connected: acme-oauth is not connected\n",
        ),
        (
            ["test", "nobody", "acme-oauth"],
            1,
            "error: nobody/acme-oauth: verification failed: not_connected: "
            "acme-oauth is not connected\n",
        ),
        (
            ["refresh", "nobody", "acme-oauth"],
            1,
            "error: nobody/acme-oauth: not_connected: acme-oauth is not connected\n",
        ),
        (["disconnect", "nobody", "acme-oauth", "--yes"], 0, ""),
    ],
)
def test_an_unknown_connector_or_tenant_is_a_clean_error(
    world: World, args: list[str], exit_code: int, stderr: str
) -> None:
    result = world.run(*args)

    assert result.exit_code == exit_code
    assert result.stderr.startswith(stderr)
    assert result.stderr.count("\n") == (1 if exit_code else 0)
    if exit_code:
        assert result.stdout == ""
    else:  # disconnecting is idempotent
        assert result.stdout == "nobody/acme-oauth was not connected; nothing to do\n"


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["list", "--json"],
        ["show", "tenant-a", "acme-oauth"],
        ["test", "tenant-a", "acme-oauth", "--json"],
        ["refresh", "--due"],
        ["disconnect", "tenant-a", "acme-oauth", "--yes"],
    ],
)
def test_a_missing_secret_key_is_a_clean_error(tmp_path: Path, args: list[str]) -> None:
    database = empty_store(tmp_path)
    env = {
        "CONNECTORS_DATABASE_URL": f"sqlite:///{database}",
        "CONNECTORS_SECRET_KEYS": None,
        "CONNECTORS_DEV_MODE": None,
    }

    result = CliRunner().invoke(cli, ["connections", *args], env=env, catch_exceptions=False)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        "error: CONNECTORS_SECRET_KEYS: no encryption key is configured. "
        "Set CONNECTORS_SECRET_KEYS to one or more keys"
    )
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "connectors.sqlite3.key").exists()  # no key made up on the way


def empty_store(folder: Path) -> Path:
    """An SQLite store with nothing in it, as a server leaves it before anyone connects."""
    import anyio

    from connectors_core.connections import Settings
    from connectors_core.store import open_store

    database = folder / "connectors.sqlite3"
    settings = Settings(database_url=f"sqlite:///{database}", secret_keys=(generate_key(),))
    anyio.run(open_store(settings).close)
    return database


def test_a_database_that_does_not_exist_is_refused_not_created(tmp_path: Path) -> None:
    database = tmp_path / "typo.sqlite3"
    env = {
        "CONNECTORS_DATABASE_URL": f"sqlite:///{database}",
        "CONNECTORS_SECRET_KEYS": generate_key(),
    }
    result = CliRunner().invoke(cli, ["connections", "list"], env=env, catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: CONNECTORS_DATABASE_URL: there is no database at {database}; run this where "
        "the server keeps its store, or set CONNECTORS_DATABASE_URL\n"
    )
    assert not database.exists()


def test_an_empty_store_says_so(tmp_path: Path) -> None:
    empty_store(tmp_path)
    env = {
        "CONNECTORS_DATABASE_URL": f"sqlite:///{tmp_path / 'connectors.sqlite3'}",
        "CONNECTORS_SECRET_KEYS": generate_key(),
    }
    result = CliRunner().invoke(cli, ["connections", "list"], env=env, catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (0, "No connections are stored.\n")


@pytest.mark.usefixtures("installed")  # the standard test plugins: five of them fail
def test_failed_plugins_are_a_warning_or_with_strict_an_error(tmp_path: Path) -> None:
    empty_store(tmp_path)
    env = {
        "CONNECTORS_DATABASE_URL": f"sqlite:///{tmp_path / 'connectors.sqlite3'}",
        "CONNECTORS_SECRET_KEYS": generate_key(),
    }

    listed = CliRunner().invoke(cli, ["connections", "list"], env=env, catch_exceptions=False)
    strict = CliRunner().invoke(
        cli, ["--strict", "connections", "list"], env=env, catch_exceptions=False
    )

    assert (listed.exit_code, listed.stdout) == (0, "No connections are stored.\n")
    assert listed.stderr.startswith("warning: 5 plugin(s) failed to load (")
    assert "run `connectors doctor` for details" in listed.stderr
    assert (strict.exit_code, strict.stdout) == (1, "")
    assert strict.stderr.startswith("error: 5 connector plugin(s) failed to load:\n")


def test_a_key_that_does_not_open_the_store_is_a_clean_error(world: World) -> None:
    result = world.run("list", env={"CONNECTORS_SECRET_KEYS": generate_key()})

    assert result.exit_code == 1
    assert result.stderr.startswith("error: CONNECTORS_SECRET_KEYS: ")
    assert result.stderr.count("\n") == 1


# --- secrets --------------------------------------------------------------------------


def test_no_secret_appears_in_any_output(world: World) -> None:
    # The scan looks for the real secrets: what the store holds is among them.
    async def stored(service: Connections) -> list[str]:
        oauth = await service.store.get("tenant-a", "acme-oauth")
        keyed = await service.store.get("tenant-a", "keyed")
        assert oauth is not None
        assert oauth.tokens is not None
        assert keyed is not None
        return [oauth.tokens.access_token, oauth.tokens.refresh_token or "", keyed.api_key or ""]

    held = call(world.env, stored)
    assert all(held)
    assert set(held) <= set(world.secrets())

    sweep = [
        ["list"],
        ["list", "--json"],
        ["show", "tenant-a", "acme-oauth"],
        ["show", "tenant-a", "keyed", "--json"],
        ["test", "tenant-a", "acme-oauth"],
        ["test", "tenant-a", "keyed", "--json"],
        ["refresh", "tenant-a", "acme-oauth", "--json"],
        ["refresh", "tenant-a", "keyed", "--json"],
        ["refresh", "--due", "--within", "7200"],
        ["refresh", "--due", "--within", "7200", "--json"],
        ["disconnect", "tenant-a", "keyed"],
    ]
    outputs = [world.run(*args) for args in sweep]
    world.harness.provider.api_credentials.discard(KEY)
    outputs += [
        world.run("test", "tenant-a", "keyed"),
        world.run("test", "tenant-a", "keyed", "--json"),
    ]
    expire_soon(world, "tenant-b", "acme-oauth")
    world.harness.provider.respond_next("token", 400, {"error": "invalid_grant"})
    outputs += [
        world.run("refresh", "--due", "--json"),
        world.run("list", env={"CONNECTORS_SECRET_KEYS": generate_key()}),
        world.run("disconnect", "tenant-a", "keyed", "--yes"),
        world.run("disconnect", "tenant-b", "acme-oauth", "--yes"),
    ]

    seen = "".join(result.stdout + result.stderr for result in outputs)
    assert HINT in seen  # the outputs do describe the key: by its hint
    assert [secret for secret in world.secrets() if secret in seen] == []
    assert len(world.harness.provider.issued) >= 8  # every renewal's tokens were scanned for


# --- the package and a real process ---------------------------------------------------


def test_importing_the_command_loads_no_server_library() -> None:
    script = (
        "import sys, json\nfrom connectors_core.cli import cli\n"
        "assert 'connections' in cli.commands\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    server = {"anyio", "sqlalchemy", "httpx2", "starlette", "cryptography", "alembic", "uvicorn"}
    assert not set(json.loads(result.stdout)) & server


def process(world: World, *args: str, stdin: Any = subprocess.DEVNULL) -> Any:
    """``connectors connections ARGS`` as a process, its plugins on ``PYTHONPATH``."""
    env = {**os.environ, **world.env, "PYTHONPATH": str(world.site)}
    return subprocess.run(
        [sys.executable, "-m", "connectors_core", "connections", *args],
        env=env,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_connections_list_json_runs_as_a_process(world: World) -> None:
    result = process(world, "list", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(world.run("list", "--json").stdout)
    assert [secret for secret in world.secrets() if secret in result.stdout + result.stderr] == []


@pytest.mark.slow
def test_disconnect_with_stdin_closed_refuses_without_waiting(world: World) -> None:
    env = {**os.environ, **world.env, "PYTHONPATH": str(world.site)}
    command = [sys.executable, "-m", "connectors_core", "connections", "disconnect"]
    closed = ["sh", "-c", 'exec "$@" <&-', "sh", *command]

    refused = subprocess.run(
        [*closed, "tenant-a", "keyed"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1
    assert refused.stderr.endswith("there is no terminal to ask on; pass --yes\n")
    confirmed = subprocess.run(
        [*closed, "tenant-a", "keyed", "--yes"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (confirmed.returncode, confirmed.stdout) == (0, "disconnected: tenant-a/keyed\n")


@pytest.mark.slow
@pytest.mark.parametrize(("answer", "code"), [("y", 0), ("n", 1)])
def test_disconnect_asks_on_a_terminal(world: World, answer: str, code: int) -> None:
    leader, follower = pty.openpty()
    try:
        os.write(leader, f"{answer}\n".encode())  # typed ahead: read when it asks
        result = process(world, "disconnect", "tenant-a", "acme-oauth", stdin=follower)
    finally:
        os.close(leader)
        os.close(follower)

    assert result.returncode == code, result.stderr
    assert result.stdout.startswith("Disconnect acme-oauth for tenant 'tenant-a'? ")
    assert world.status("tenant-a", "acme-oauth")["connected"] is (answer == "n")
    if answer == "n":
        assert result.stderr == "Aborted!\n"


@pytest.mark.slow
def test_disconnect_asks_naming_the_connection(world: World, several: dict[str, str]) -> None:
    one = several["org-1"]
    leader, follower = pty.openpty()
    try:
        os.write(leader, b"y\n")
        result = process(
            world, "disconnect", "tenant-a", MULTI, "--connection", one, stdin=follower
        )
    finally:
        os.close(leader)
        os.close(follower)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"Disconnect {MULTI} connection {one} (Marketing, organizationId=org-1, "
        "userId=user-of-org-1) for tenant 'tenant-a'? "
    )
    assert result.stdout.endswith(f"disconnected: tenant-a/{MULTI}/{one}\n")
    left = world.status("tenant-a", MULTI)["connections"]
    assert [s["status"]["connectionId"] for s in left] == [several["org-2"]]
