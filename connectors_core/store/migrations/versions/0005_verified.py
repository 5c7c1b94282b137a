"""When a connection's credentials were last verified, or why they failed.

``connections`` gains ``verified_at`` (UNIX time, NULL until verified) and
``verify_reason`` (the reason code of the last failed verification, NULL when
it passed). Existing rows keep every value they had, never verified.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("verified_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("verify_reason", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("verify_reason")
        batch.drop_column("verified_at")
