"""Refresh leases for SQLite, and pending authorizations found by browser session.

SQLite: a ``leases`` table, so a refresh no longer holds the file's write
lock while it waits for the provider. PostgreSQL keeps locking the
connection's row (``SELECT … FOR UPDATE``) and gets no such table.

Both: an index on ``oauth_states.session_hash``, which every new pending
authorization queries to keep at most a few per browser session.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_table(
            "leases",
            sa.Column("tenant", sa.String(255), primary_key=True),
            sa.Column("connector_id", sa.String(64), primary_key=True),
            sa.Column("holder", sa.String(64), nullable=False),
            sa.Column("expires_at", sa.Float, nullable=False),
        )
    op.create_index("ix_oauth_states_session_hash", "oauth_states", ["session_hash"])


def downgrade() -> None:
    op.drop_index("ix_oauth_states_session_hash", table_name="oauth_states")
    if op.get_bind().dialect.name == "sqlite":
        op.drop_table("leases")
