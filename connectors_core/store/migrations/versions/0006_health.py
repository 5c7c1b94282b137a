"""The health of a connection: its last refresh, its last error, why it needs the user.

``connections`` gains ``last_refreshed_at`` (UNIX time of the last successful
token renewal, NULL until then), ``last_error`` (the reason code of the last
failed renewal, NULL once one succeeds), ``state_reason`` (why the state is
what it is, such as ``invalid_grant`` for ``needs_reauth``) and
``requested_scopes`` (the scopes asked for when it was connected, ``''``
where unknown). Existing rows keep every value they had.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("last_refreshed_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("last_error", sa.String(64), nullable=True))
        batch.add_column(sa.Column("state_reason", sa.String(64), nullable=True))
        batch.add_column(sa.Column("requested_scopes", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("requested_scopes")
        batch.drop_column("state_reason")
        batch.drop_column("last_error")
        batch.drop_column("last_refreshed_at")
