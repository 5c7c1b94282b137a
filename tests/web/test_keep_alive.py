"""The server's own renewal loop (CONNECTORS_REFRESH_INTERVAL): opt-in, renewing what is due."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.harness import Harness

TENANT, ACME = "tenant-a", "acme-oauth"


def connect(harness: Harness) -> None:
    with harness.browser(TENANT) as browser:
        assert harness.connect(browser, ACME).endswith("result=connected")


def wait_for(condition: Any, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_server_renews_what_is_due_when_asked_to(make_harness: Any) -> None:
    harness: Harness = make_harness(refresh_interval=1)
    connect(harness)
    harness.advance(3600 - 30)  # due within the next run
    assert wait_for(lambda: "refresh_token" in harness.provider.token_requests)
    with harness.browser(TENANT) as browser:
        assert wait_for(lambda: "lastRefreshedAt" in harness.status(browser, ACME)["status"])


def test_by_default_the_server_renews_nothing_by_itself(harness: Harness) -> None:
    from connectors_core.connections import Settings

    assert Settings().refresh_interval == 0
    assert harness.settings.refresh_interval == 0
    connect(harness)
    harness.advance(3600)
    time.sleep(1.5)  # what a loop would have had time for
    assert harness.provider.token_requests == ["authorization_code"]


def test_the_interval_is_a_setting() -> None:
    from connectors_core import ConfigurationError
    from connectors_core.connections import Settings

    assert Settings.from_env({"CONNECTORS_REFRESH_INTERVAL": "300"}).refresh_interval == 300
    assert Settings.from_env({"CONNECTORS_REFRESH_INTERVAL": "0"}).refresh_interval == 0
    assert Settings.from_env({"CONNECTORS_REFRESH_IDLE": "0"}).refresh_idle == 0
    with pytest.raises(ConfigurationError, match="CONNECTORS_REFRESH_INTERVAL"):
        Settings.from_env({"CONNECTORS_REFRESH_INTERVAL": "-1"})
