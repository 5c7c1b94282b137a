"""Fixtures of the example hosts' tests: the browser tests' shared Chromium."""

from __future__ import annotations

from tests.web.conftest import browser

__all__ = ["browser"]
