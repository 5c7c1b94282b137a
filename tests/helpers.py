"""Small helpers shared by the tests."""

from __future__ import annotations

from typing import Any


def without_id(status: Any) -> Any:
    """A status JSON without its ``connectionId`` (a random id each run)."""
    return {key: value for key, value in status.items() if key != "connectionId"}
