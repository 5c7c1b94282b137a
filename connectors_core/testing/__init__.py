"""Test and local-development helpers for connectors-core (require the `server` extra)."""
