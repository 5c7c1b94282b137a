"""The store's tables, as SQLAlchemy Core metadata (the migrations create them).

Every column holding a ciphertext (``v1.<key id>.<payload>``, see
:mod:`._crypto`) is listed in :data:`ENCRYPTED_COLUMNS`, which the start-up
key check and key rotation walk.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "ENCRYPTED_COLUMNS",
    "connections",
    "event_destinations",
    "event_streams",
    "events",
    "leases",
    "metadata",
    "oauth_states",
]

metadata = sa.MetaData()

connections = sa.Table(
    "connections",
    metadata,
    sa.Column("tenant", sa.String(255), primary_key=True),
    sa.Column("connector_id", sa.String(64), primary_key=True),
    sa.Column("connection_id", sa.String(64), primary_key=True),
    # What tells a connector's connections apart ('' for a single-connection one): one
    # row per account, so connecting an account again finds its connection.
    sa.Column("account_key", sa.String(255), nullable=False, server_default=""),
    sa.Column("label", sa.String(200)),
    sa.Column("connected_by", sa.String(255)),
    sa.Column("connected_by_name", sa.String(255)),
    # Ciphertexts sealed before connections had ids are bound to tenant, connector and
    # field only, until they are written again (or keys are rotated).
    sa.Column("legacy_seal", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("access_token", sa.Text),
    sa.Column("refresh_token", sa.Text),
    sa.Column("api_key", sa.Text),
    sa.Column("token_type", sa.String(32)),
    sa.Column("expires_at", sa.Float),
    sa.Column("scopes", sa.Text, nullable=False, default=""),
    sa.Column("account", sa.Text, nullable=False, default="{}"),
    sa.Column("key_hint", sa.String(16)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # Field values: config as plain JSON; secrets as the ciphertext of a JSON
    # object (NULL when there are none); HTTP Basic credentials as ciphertexts.
    sa.Column("config", sa.Text, nullable=False, server_default="{}"),
    sa.Column("secrets", sa.Text),
    sa.Column("username", sa.Text),
    sa.Column("password", sa.Text),
    # The last verification: when it passed, or the reason it failed.
    sa.Column("verified_at", sa.Float),
    sa.Column("verify_reason", sa.String(64)),
    # Health: the last renewal, its last failure, why the state is what it is,
    # and the scopes asked for at connect (a manifest asking for more needs the user).
    sa.Column("last_refreshed_at", sa.Float),
    sa.Column("last_error", sa.String(64)),
    sa.Column("state_reason", sa.String(64)),
    sa.Column("requested_scopes", sa.Text, nullable=False, server_default=""),
    sa.UniqueConstraint("tenant", "connector_id", "account_key", name="uq_connections_account"),
)

oauth_states = sa.Table(
    "oauth_states",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(255), nullable=False),
    sa.Column("connector_id", sa.String(64), nullable=False),
    sa.Column("session_hash", sa.String(64), nullable=False, index=True),
    sa.Column("code_verifier", sa.Text, nullable=False),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("config", sa.Text, nullable=False, server_default="{}"),
    sa.Column("secrets", sa.Text),
    sa.Column("connection_id", sa.String(64)),
)

# The refresh leases of an SQLite file (PostgreSQL locks the connection's row
# instead, and has no such table): who holds a connection, and until when.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("tenant", sa.String(255), primary_key=True),
    sa.Column("connector_id", sa.String(64), primary_key=True),
    sa.Column("connection_id", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

# The outbox: every event, written in the transaction of the change it reports.
events = sa.Table(
    "events",
    metadata,
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
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Index("ix_events_stream", "tenant", "connector_id", "connection_id", "seq"),
    # Never a number used before, even once old events are deleted (see migration 0007).
    sqlite_autoincrement=True,
)

# Where events go (the host's listeners, plugins' hooks, the webhook), each receiving
# the events written after it was first seen.
event_destinations = sa.Table(
    "event_destinations",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("since_seq", sa.BigInteger, nullable=False),
)

# Delivery, in order, of one connection's events to one destination: how far it got,
# who is delivering it now, and when to try again after a failure.
event_streams = sa.Table(
    "event_streams",
    metadata,
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
    sa.Index("ix_event_streams_due", "pending", "next_attempt_at"),
)

ENCRYPTED_COLUMNS: tuple[sa.Column[str], ...] = (
    connections.c.access_token,
    connections.c.refresh_token,
    connections.c.api_key,
    connections.c.secrets,
    connections.c.username,
    connections.c.password,
    oauth_states.c.code_verifier,
    oauth_states.c.secrets,
)
"""Every column that holds ciphertexts."""
