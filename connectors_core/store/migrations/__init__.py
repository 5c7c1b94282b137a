"""Alembic migrations of the store's schema (run by ``connectors db upgrade``)."""
