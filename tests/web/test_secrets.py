"""A full run, scanned: no secret in any response, header, URL or log line."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from connectors_core.store import PendingAuthorization, Store
from tests.harness import ACME_SECRET, EVENCIO_SECRET, Harness

API_KEY = "sk_live_9d8c7b6a5f4e3d2c"


def test_nothing_secret_reaches_a_browser_or_a_log(
    harness: Harness, captured_logs: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    verifiers: list[str] = []
    store: Store = harness.connections.store
    original = store.put_authorization

    async def spy(pending: PendingAuthorization, **options: Any) -> None:
        verifiers.append(pending.code_verifier)
        await original(pending, **options)

    store.put_authorization = spy  # type: ignore[method-assign]
    issued: list[str] = []

    async def tokens(connector_id: str) -> None:
        stored = await store.get("tenant-a", connector_id)
        assert stored is not None
        assert stored.tokens is not None
        issued.append(stored.tokens.access_token)
        if stored.tokens.refresh_token:
            issued.append(stored.tokens.refresh_token)

    with harness.browser() as browser:
        for connector_id in ("evencio", "acme-oauth"):
            assert harness.connect(browser, connector_id).endswith("result=connected")
            harness.status(browser, connector_id)
            anyio.run(tokens, connector_id)
        harness.advance(3600)
        anyio.run(harness.connections.get_access_token, "tenant-a", "acme-oauth")
        anyio.run(tokens, "acme-oauth")
        # A failed refresh and a failed connect log too; they must stay clean.
        harness.provider.fail_next("token", 503)
        harness.advance(3600)
        with pytest.raises(Exception, match="HTTP 503"):
            anyio.run(harness.connections.get_access_token, "tenant-a", "acme-oauth")
        response = browser.post(
            f"{harness.origin}/api/integrations/acme-key/connect",
            json={"apiKey": API_KEY},
            headers={"X-CSRF-Token": harness.csrf(browser), "Origin": harness.origin},
        )
        assert response.status_code == 200
        harness.status(browser, "acme-key")
        for connector_id in ("evencio", "acme-oauth", "acme-key"):
            assert harness.disconnect(browser, connector_id).status_code == 200

    secrets = [EVENCIO_SECRET, ACME_SECRET, API_KEY, *verifiers, *issued]
    assert len(verifiers) == 2
    assert len(issued) >= 6
    log_text = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in captured_logs.records
    )
    assert captured_logs.records, "the run logged nothing at all: is logging captured?"
    for secret in secrets:
        for seen in harness.seen:
            assert secret not in seen, "a secret reached the browser"
        assert secret not in log_text, "a secret reached a log line"


def test_the_database_file_holds_no_plaintext_secret(harness: Harness) -> None:
    with harness.browser() as browser:
        harness.connect(browser, "acme-oauth")
        browser.post(
            f"{harness.origin}/api/integrations/acme-key/connect",
            json={"apiKey": API_KEY},
            headers={"X-CSRF-Token": harness.csrf(browser), "Origin": harness.origin},
        ).raise_for_status()
        harness.start_connect(browser, "evencio")  # a pending state, with its verifier

    async def secrets() -> list[str]:
        stored = await harness.connections.store.get("tenant-a", "acme-oauth")
        assert stored is not None
        assert stored.tokens is not None
        assert stored.tokens.refresh_token is not None
        return [stored.tokens.access_token, stored.tokens.refresh_token, API_KEY]

    values = anyio.run(secrets)
    path = Path(harness.settings.database_url.removeprefix("sqlite:///"))
    dump = "\n".join(sqlite3.connect(path).iterdump())
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    for secret in values:
        assert secret not in dump
        assert secret.encode() not in raw
    assert "acme-oauth" in dump  # the rows are really there


def test_key_rotation_with_two_keys(make_harness: object) -> None:
    from connectors_core.store import generate_key

    old, new = generate_key(), generate_key()
    first: Harness = make_harness(keys=(old,))  # type: ignore[operator]
    with first.browser() as browser:
        first.connect(browser, "acme-oauth")
    database = first.settings.database_url

    # The app restarts with a new key in front; the old one still decrypts.
    second: Harness = make_harness(keys=(new, old), database=database)  # type: ignore[operator]
    with second.browser() as browser:
        assert second.status(browser, "acme-oauth")["connected"] is True
    path = Path(database.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as db:
        (sealed,) = db.execute("SELECT access_token FROM connections").fetchone()
    from connectors_core.store import SecretBox

    assert SecretBox([old]).key_id_of(sealed) == SecretBox([old]).current_key_id
    # A write re-encrypts with the new key.
    current = anyio.run(second.connections.store.get, "tenant-a", "acme-oauth")
    assert current is not None
    anyio.run(second.connections.store.put, current)
    with sqlite3.connect(path) as db:
        (sealed,) = db.execute("SELECT access_token FROM connections").fetchone()
    assert SecretBox([new]).key_id_of(sealed) == SecretBox([new]).current_key_id
