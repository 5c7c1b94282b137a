"""Evencio passes the connector contract, as any third-party connector should."""

from __future__ import annotations

from connectors_core.testing.contract import ConnectorContract


class TestEvencioContract(ConnectorContract):
    connector_id = "evencio"
    docs_dir = "docs/connectors"  # the repository's docs (pytest's root folder)
