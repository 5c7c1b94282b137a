"""Fixtures of the browser tests: one Chromium per test module, driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.web.test_browser import CHROMIUM_ARGS, TIMEOUT_MS, chromium_executable


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (skipped without one, failed on CI), closed after the module."""
    executable = chromium_executable()
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
