"""connectors serve: zero set-up on loopback, refusals beyond it, the demo sandbox."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from connectors_core import ConfigurationError, discover
from connectors_core.cli import cli
from connectors_core.store import generate_key
from connectors_core.web._server import AccessLogFilter, create_server, public_url_for

LOCAL = ("127.0.0.1", 50000)  # a browser on this machine


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"CONNECTORS_DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite3'}", **extra}


def test_loopback_needs_no_setup(tmp_path: Path) -> None:
    app = create_server(environ=env(tmp_path), registry=discover(allow=["evencio"]))
    assert app.state.settings.dev_mode is True
    assert app.state.settings.origin == "http://127.0.0.1:8000"
    with TestClient(app, base_url="http://127.0.0.1:8000", client=LOCAL) as client:
        home = client.get("/", follow_redirects=False)
        assert (home.status_code, home.headers["location"]) == (307, "/integrations")
    assert (tmp_path / "c.sqlite3.key").exists()


@pytest.mark.parametrize(
    ("authenticator", "keys", "missing"),
    [
        (None, None, "an authenticator (--authenticator module:function) and encryption keys"),
        (lambda request: "t", None, "encryption keys"),
        (None, generate_key(), "an authenticator"),
    ],
)
def test_beyond_loopback_it_refuses_without_an_authenticator_and_keys(
    tmp_path: Path, authenticator: object, keys: str | None, missing: str
) -> None:
    environ = env(tmp_path, **({"CONNECTORS_SECRET_KEYS": keys} if keys else {}))
    with pytest.raises(ConfigurationError, match=r"refusing to listen on 0\.0\.0\.0") as info:
        create_server(host="0.0.0.0", environ=environ, authenticator=authenticator)  # type: ignore[arg-type]
    assert missing in str(info.value)


def test_beyond_loopback_with_both_it_starts_without_dev_mode(tmp_path: Path) -> None:
    app = create_server(
        host="0.0.0.0",
        authenticator=lambda request: "t",
        environ=env(tmp_path, CONNECTORS_SECRET_KEYS=generate_key()),
        registry=discover(allow=["evencio"]),
    )
    assert app.state.settings.dev_mode is False


def test_the_cli_refusal_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONNECTORS_SECRET_KEYS", raising=False)
    monkeypatch.setenv("CONNECTORS_DATABASE_URL", f"sqlite:///{tmp_path / 'c.sqlite3'}")
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --host: refusing to listen on 0.0.0.0")
    assert "Traceback" not in result.stderr


def test_a_bad_authenticator_is_a_clean_error() -> None:
    result = CliRunner().invoke(cli, ["serve", "--authenticator", "no_such_module:auth"])
    assert result.exit_code == 1
    assert "cannot load the authenticator 'no_such_module:auth'" in result.stderr


def test_demo_points_unconfigured_oauth_connectors_at_the_sandbox(tmp_path: Path) -> None:
    app = create_server(demo=True, environ=env(tmp_path), registry=discover(allow=["evencio"]))
    settings = app.state.settings
    assert settings.client_credentials("evencio").client_id == "sandbox-evencio"
    assert settings.connector_setting("evencio", "authorize_url") == (
        "http://127.0.0.1:8000/sandbox/oauth/authorize"
    )
    with TestClient(app, base_url="http://127.0.0.1:8000", client=LOCAL) as client:
        page = client.get("/integrations").text
        assert "Sandbox." in page
        connect = client.get("/api/integrations/evencio/connect", follow_redirects=False)
        assert connect.headers["location"].startswith(
            "http://127.0.0.1:8000/sandbox/oauth/authorize?"
        )
        consent = client.get(connect.headers["location"])
        assert "Sandbox OAuth provider" in consent.text


def test_demo_leaves_configured_connectors_alone(tmp_path: Path) -> None:
    app = create_server(
        demo=True,
        registry=discover(allow=["evencio"]),
        environ=env(tmp_path, CONNECTORS_EVENCIO_CLIENT_ID="real-client"),
    )
    assert app.state.sandbox is None
    assert app.state.settings.client_credentials("evencio").client_id == "real-client"


def test_no_sandbox_unless_asked(tmp_path: Path) -> None:
    app = create_server(environ=env(tmp_path), registry=discover(allow=["evencio"]))
    with TestClient(app, base_url="http://127.0.0.1:8000", client=LOCAL) as client:
        assert client.get("/sandbox/oauth/authorize").status_code == 404
        assert "Sandbox." not in client.get("/integrations").text


def test_browsers_are_sent_to_the_public_origin(tmp_path: Path) -> None:
    app = create_server(environ=env(tmp_path), registry=discover(allow=["evencio"]))
    with TestClient(app, base_url="http://localhost:8000", client=LOCAL) as client:
        response = client.get("/integrations?q=x", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "http://127.0.0.1:8000/integrations?q=x"


def test_the_access_log_drops_query_strings() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:1",
            "GET",
            "/api/integrations/evencio/callback?code=SECRET&state=S",
            "1.1",
            303,
        ),
        None,
    )
    AccessLogFilter().filter(record)
    assert "SECRET" not in record.getMessage()
    assert "/api/integrations/evencio/callback" in record.getMessage()


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("127.0.0.1", "http://127.0.0.1:9"),
        ("::1", "http://[::1]:9"),
        ("0.0.0.0", "http://127.0.0.1:9"),
    ],
)
def test_public_url_for(host: str, origin: str) -> None:
    assert public_url_for(host, 9) == origin


def test_the_sandbox_behaves_as_each_manifest_says_and_answers_its_verify_request(
    tmp_path: Path,
) -> None:
    from connectors_core import define_connector
    from tests.test_contract import COOKBOOK

    registry = discover(allow=["evencio"])
    for title in ("Slack", "Mailchimp"):
        registry.register(define_connector(COOKBOOK[title]))
    app = create_server(demo=True, environ=env(tmp_path), registry=registry)
    sandbox = app.state.sandbox.provider
    quirks = {client.client_id: client.quirks for client in sandbox._clients.values()}
    assert quirks["sandbox-slack"].scope_separator == ","
    assert quirks["sandbox-slack"].pkce is False
    assert quirks["sandbox-mailchimp"].api_token_prefix == "OAuth "
    settings = app.state.settings
    # Mailchimp's metadata call (its verify request) goes to the sandbox, which answers it.
    assert settings.connector_setting("mailchimp", "verify_base_url") == (
        "http://127.0.0.1:8000/sandbox/connector-api"
    )
    assert ("GET", "/oauth2/metadata") in sandbox._api_answers
