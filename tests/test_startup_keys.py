"""``connectors serve`` refuses to start on keys that cannot open its database (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from connectors_core._settings import Settings
from connectors_core.store import ConnectionState, StoredConnection, generate_key, open_store
from connectors_core.store._crypto import SecretBox

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "a-stored-api-key-0123456789"


def seed(folder: Path, key: str) -> None:
    """A database in ``folder`` holding one encrypted API key."""
    settings = Settings(
        database_url=f"sqlite:///{folder / 'connectors.sqlite3'}", secret_keys=(key,)
    )

    async def write() -> None:
        store = open_store(settings)
        try:
            await store.put(
                StoredConnection("local", "evencio", ConnectionState.CONNECTED, api_key=API_KEY)
            )
        finally:
            await store.close()

    anyio.run(write)


def serve(folder: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTORS_")}
    env.update(
        {"CONNECTORS_INDEX_DIR": str(folder / "index"), "CONNECTORS_PLUGINS_ALLOW": "evencio"}
    )
    env.update(environ)
    return subprocess.run(
        [sys.executable, "-c", "from connectors_core.cli import main; main()", "serve"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def key_id(key: str) -> str:
    return SecretBox([key]).current_key_id


def test_a_wrong_key_stops_the_server_naming_the_key_ids(tmp_path: Path) -> None:
    right, wrong = generate_key(), generate_key()
    seed(tmp_path, right)
    result = serve(tmp_path, CONNECTORS_SECRET_KEYS=wrong)
    assert result.returncode == 1
    assert result.stderr.startswith("error: CONNECTORS_SECRET_KEYS:")
    assert key_id(right) in result.stderr
    assert key_id(wrong) in result.stderr
    assert "Traceback" not in result.stderr
    assert right not in result.stderr + result.stdout
    assert wrong not in result.stderr + result.stdout


def test_dev_mode_without_its_key_file_refuses_and_writes_no_new_one(tmp_path: Path) -> None:
    seed(tmp_path, generate_key())  # encrypted with a key that is not beside the database
    result = serve(tmp_path)
    assert result.returncode == 1
    assert "error: CONNECTORS_SECRET_KEYS:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "connectors.sqlite3.key").exists()
