"""Keep the discovery index of these tests out of the user's cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def index_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONNECTORS_INDEX_DIR", str(tmp_path / "index"))
    return tmp_path / "index"
