"""The mounting example in docs/mounting.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from connectors_core.store import generate_key

DOC = Path(__file__).resolve().parents[2] / "docs" / "mounting.md"


def example() -> str:
    blocks = re.findall(r"```python\n(.*?)\n```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    (starlette_example,) = [str(b) for b in blocks if b.startswith("# app.py")]
    return starlette_example


def test_the_documented_host_app_serves_its_routes_and_the_integrations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONNECTORS_PUBLIC_URL", "http://testserver")
    monkeypatch.setenv("CONNECTORS_DATABASE_URL", "memory://")
    monkeypatch.setenv("CONNECTORS_SECRET_KEYS", generate_key())
    monkeypatch.setenv("CONNECTORS_EVENCIO_CLIENT_ID", "client-1")
    namespace: dict[str, object] = {}
    exec(compile(example(), str(DOC), "exec"), namespace)

    with TestClient(namespace["app"]) as client:  # type: ignore[arg-type]
        assert client.get("/").json() == {"app": "marketing"}
        signed_in = {"x-organization-id": "org-1"}
        assert client.get("/api/integrations/evencio/status", headers=signed_in).json() == {
            "connected": False,
            "error": "not_connected",
        }
        assert client.get("/api/integrations/evencio/status").status_code == 401
        connect = client.get(
            "/api/integrations/evencio/connect", headers=signed_in, follow_redirects=False
        )
        assert connect.status_code == 303
        assert connect.headers["location"].startswith("https://auth.evenc.io/oauth/authorize?")
