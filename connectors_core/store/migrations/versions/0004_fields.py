"""Per-connection field values and HTTP Basic credentials.

``connections`` gains ``config`` (plain JSON, ``'{}'`` for existing rows),
``secrets`` (the ciphertext of a JSON object, NULL when there are none) and
the ciphertexts ``username`` and ``password``. ``oauth_states`` gains
``config`` and ``secrets``, the field values an authorization carries to its
callback. Existing rows keep every value they had, with no field values.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("config", sa.Text, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("secrets", sa.Text, nullable=True))
        batch.add_column(sa.Column("username", sa.Text, nullable=True))
        batch.add_column(sa.Column("password", sa.Text, nullable=True))
    with op.batch_alter_table("oauth_states") as batch:
        batch.add_column(sa.Column("config", sa.Text, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("secrets", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_states") as batch:
        batch.drop_column("secrets")
        batch.drop_column("config")
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("password")
        batch.drop_column("username")
        batch.drop_column("secrets")
        batch.drop_column("config")
