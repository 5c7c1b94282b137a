"""Several connections per connector, who connected them, and the outbox of events.

``connections`` gets a ``connection_id`` (part of its key now: a connector
may hold several per tenant), an ``account_key`` (what tells them apart,
unique per tenant and connector; ``''`` for single-connection connectors),
a ``label``, ``connected_by`` and ``connected_by_name``, and
``legacy_seal``: every existing row is given a fresh id and marked, because
its ciphertexts were sealed to tenant, connector and field only; they open
as they are until written again or re-encrypted by ``rotate-keys``.
``oauth_states`` gets the ``connection_id`` a reconnect aims at. The SQLite
``leases`` table is keyed by connection (leases in flight are dropped).
New tables: ``events`` (the outbox), ``event_destinations``,
``event_streams``.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Every column of connections as 0006 left it, in order.
_OLD_COLUMNS = (
    "tenant",
    "connector_id",
    "state",
    "access_token",
    "refresh_token",
    "api_key",
    "token_type",
    "expires_at",
    "scopes",
    "account",
    "key_hint",
    "created_at",
    "updated_at",
    "version",
    "config",
    "secrets",
    "username",
    "password",
    "verified_at",
    "verify_reason",
    "last_refreshed_at",
    "last_error",
    "state_reason",
    "requested_scopes",
)


def _connections_table(name: str) -> list[Any]:
    return [
        sa.Column("tenant", sa.String(255), primary_key=True),
        sa.Column("connector_id", sa.String(64), primary_key=True),
        sa.Column("connection_id", sa.String(64), primary_key=True),
        sa.Column("account_key", sa.String(255), nullable=False, server_default=""),
        sa.Column("label", sa.String(200)),
        sa.Column("connected_by", sa.String(255)),
        sa.Column("connected_by_name", sa.String(255)),
        sa.Column("legacy_seal", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("access_token", sa.Text),
        sa.Column("refresh_token", sa.Text),
        sa.Column("api_key", sa.Text),
        sa.Column("token_type", sa.String(32)),
        sa.Column("expires_at", sa.Float),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("account", sa.Text, nullable=False),
        sa.Column("key_hint", sa.String(16)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("config", sa.Text, nullable=False, server_default="{}"),
        sa.Column("secrets", sa.Text),
        sa.Column("username", sa.Text),
        sa.Column("password", sa.Text),
        sa.Column("verified_at", sa.Float),
        sa.Column("verify_reason", sa.String(64)),
        sa.Column("last_refreshed_at", sa.Float),
        sa.Column("last_error", sa.String(64)),
        sa.Column("state_reason", sa.String(64)),
        sa.Column("requested_scopes", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("tenant", "connector_id", "account_key", name=f"uq_{name}_account"),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    # A new table, filled from the old one (every row gets an id), then renamed: the
    # one way to change a primary key that SQLite and PostgreSQL both take.
    new = op.create_table("connections_0007", *_connections_table("connections"))
    old = sa.table("connections", *(sa.column(name) for name in _OLD_COLUMNS))
    rows = bind.execute(sa.select(old)).mappings().all()
    if rows:
        op.bulk_insert(
            new,
            [
                {
                    **row,
                    "connection_id": "conn_" + secrets.token_hex(8),
                    "account_key": "",
                    "legacy_seal": True,
                }
                for row in rows
            ],
        )
    op.drop_table("connections")
    op.rename_table("connections_0007", "connections")

    with op.batch_alter_table("oauth_states") as batch:
        batch.add_column(sa.Column("connection_id", sa.String(64), nullable=True))

    if bind.dialect.name == "sqlite":
        op.drop_table("leases")
        op.create_table(
            "leases",
            sa.Column("tenant", sa.String(255), primary_key=True),
            sa.Column("connector_id", sa.String(64), primary_key=True),
            sa.Column("connection_id", sa.String(64), primary_key=True),
            sa.Column("holder", sa.String(64), nullable=False),
            sa.Column("expires_at", sa.Float, nullable=False),
        )

    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("connector_id", sa.String(64), nullable=False),
        sa.Column("connection_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        # Never a number used before, even once old events are deleted: a deliverer
        # would take a reused one for an event it delivered already.
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_created_at", "events", ["created_at"])
    op.create_index(
        "ix_events_stream", "events", ["tenant", "connector_id", "connection_id", "seq"]
    )
    op.create_table(
        "event_destinations",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("since_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "event_streams",
        sa.Column("destination", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(255), primary_key=True),
        sa.Column("connector_id", sa.String(64), primary_key=True),
        sa.Column("connection_id", sa.String(64), primary_key=True),
        sa.Column("delivered_seq", sa.BigInteger, nullable=False),
        sa.Column("pending", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", sa.Float),
        sa.Column("last_error", sa.String(200)),
    )
    op.create_index("ix_event_streams_due", "event_streams", ["pending", "next_attempt_at"])


def downgrade() -> None:
    raise NotImplementedError(
        "0007 gave connections ids and allowed several per connector; it is not undone"
    )
