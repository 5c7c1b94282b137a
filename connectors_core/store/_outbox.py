"""The outbox of the SQL store: events written with their changes, delivered by stream.

:func:`write_event` runs inside the transaction of the change it reports
(a connect, a renewal marking ``needs_reauth``, a disconnect), so an event
exists exactly when its change was committed. It also marks, for every
registered destination, the connection's *stream* as pending.

A deliverer claims streams (one connection, one destination) for a while:
on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so replicas claim different
streams; on SQLite under the database's write lock. It then reads the
stream's next events in order, records each delivery, and releases the
stream: done, or failed with a time to try again. A deliverer that dies
lets its claim run out, and another one delivers from where the last
recorded delivery left off (the events after it may be delivered twice).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .._events import ConnectionEvent
from ._base import EventRecord, Outbox, Stream
from ._tables import event_destinations, event_streams, events

if TYPE_CHECKING:
    from ._sql import SQLStore

__all__ = ["SQLOutbox", "write_event"]

_STREAM_KEY = ("destination", "tenant", "connector_id", "connection_id")


def _insert(db: Connection, table: sa.Table) -> Any:
    """An INSERT that can say ON CONFLICT, in the database's dialect."""
    if db.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def write_event(db: Connection, event: ConnectionEvent) -> int:
    """Write ``event`` in the caller's transaction, and mark its streams pending; its seq."""
    result = db.execute(
        events.insert().values(
            event_id=event.id,
            type=event.type.value,
            tenant=event.tenant,
            connector_id=event.connector_id,
            connection_id=event.connection_id,
            payload=json.dumps(event.to_json(), sort_keys=True),
            created_at=event.at,
        )
    )
    key = result.inserted_primary_key
    assert key is not None, "an INSERT of one row has a primary key"
    seq = int(key[0])
    destinations = db.execute(
        sa.select(event_destinations.c.name, event_destinations.c.since_seq)
    ).all()
    for name, since in destinations:
        statement = _insert(db, event_streams).values(
            destination=name,
            tenant=event.tenant,
            connector_id=event.connector_id,
            connection_id=event.connection_id,
            delivered_seq=since,
            pending=True,
            attempts=0,
            next_attempt_at=event.at,
        )
        db.execute(
            statement.on_conflict_do_update(index_elements=_STREAM_KEY, set_={"pending": True})
        )
    return seq


# The statements a deliverer runs for each stream and event, built once (SQLAlchemy then
# only looks up their compiled form), with the stream's key as parameters. A parameter
# may not be named after a column an UPDATE sets, hence the prefix.
_STREAM = sa.and_(
    event_streams.c.destination == sa.bindparam("s_destination"),
    event_streams.c.tenant == sa.bindparam("s_tenant"),
    event_streams.c.connector_id == sa.bindparam("s_connector_id"),
    event_streams.c.connection_id == sa.bindparam("s_connection_id"),
)
_OF_STREAM = sa.and_(
    events.c.tenant == sa.bindparam("s_tenant"),
    events.c.connector_id == sa.bindparam("s_connector_id"),
    events.c.connection_id == sa.bindparam("s_connection_id"),
)
_CLAIM = (
    event_streams.update()
    .where(_STREAM)
    .values(claimed_by=sa.bindparam("s_holder"), claimed_until=sa.bindparam("s_until"))
)
_EVENTS = (
    sa.select(events.c.seq, events.c.payload)
    .where(_OF_STREAM, events.c.seq > sa.bindparam("s_after"))
    .order_by(events.c.seq)
    .limit(sa.bindparam("s_limit"))
)
_DELIVERED = (
    event_streams.update()
    .where(_STREAM, event_streams.c.claimed_by == sa.bindparam("s_holder"))
    .values(
        delivered_seq=sa.bindparam("s_seq"),
        attempts=0,
        last_error=None,
        claimed_until=sa.bindparam("s_until"),
    )
)
_HELD = (
    sa.select(event_streams.c.claimed_by, event_streams.c.delivered_seq)
    .where(_STREAM)
    .with_for_update()
)
_MORE = sa.select(events.c.seq).where(_OF_STREAM, events.c.seq > sa.bindparam("s_after")).limit(1)


def _key(stream: Stream) -> dict[str, Any]:
    """The parameters of the statements above that name ``stream``."""
    return {
        "s_destination": stream.destination,
        "s_tenant": stream.tenant,
        "s_connector_id": stream.connector_id,
        "s_connection_id": stream.connection_id,
    }


class SQLOutbox(Outbox):
    """The outbox in the SQL store's database."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store

    async def register_destinations(self, names: Sequence[str]) -> None:
        def work(db: Connection) -> None:
            known = set(db.execute(sa.select(event_destinations.c.name)).scalars())
            if known.issuperset(names):
                return
            if db.dialect.name == "postgresql":
                # An event being written now (its seq taken, not committed yet) must
                # either be seen below, or see the new destination: wait for the writers
                # under way, and hold new ones back until this commits. (Once per
                # destination; on SQLite, writes are one at a time already.)
                db.execute(sa.text("LOCK TABLE events IN EXCLUSIVE MODE"))
                known = set(db.execute(sa.select(event_destinations.c.name)).scalars())
            # The first destinations ever take the events written before (nobody could
            # have delivered them); any later one, those written from now on.
            latest = db.execute(sa.select(sa.func.max(events.c.seq))).scalar() or 0
            since = latest if known else 0
            for name in names:
                if name in known:
                    continue
                statement = _insert(db, event_destinations).values(name=name, since_seq=since)
                db.execute(statement.on_conflict_do_nothing(index_elements=["name"]))
                if since < latest:
                    connections = (
                        sa.select(
                            sa.literal(name),
                            events.c.tenant,
                            events.c.connector_id,
                            events.c.connection_id,
                            sa.literal(since),
                            sa.true(),
                            sa.literal(0),
                            sa.func.min(events.c.created_at),
                        )
                        .where(events.c.seq > since)
                        .group_by(events.c.tenant, events.c.connector_id, events.c.connection_id)
                    )
                    columns = [
                        *_STREAM_KEY,
                        "delivered_seq",
                        "pending",
                        "attempts",
                        "next_attempt_at",
                    ]
                    db.execute(
                        _insert(db, event_streams)
                        .from_select(columns, connections)
                        .on_conflict_do_nothing(index_elements=_STREAM_KEY)
                    )

        await self.store._write(work)

    async def claim(
        self, destinations: Sequence[str], holder: str, *, now: float, limit: int, hold: float
    ) -> list[Stream]:
        if not destinations:
            return []
        due = (
            sa.select(event_streams)
            .where(
                event_streams.c.destination.in_(list(destinations)),
                event_streams.c.pending.is_(True),
                event_streams.c.next_attempt_at <= now,
                sa.or_(
                    event_streams.c.claimed_until.is_(None), event_streams.c.claimed_until < now
                ),
            )
            .order_by(event_streams.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

        def work(db: Connection) -> list[Stream]:
            claimed = [
                Stream(
                    row.destination,
                    row.tenant,
                    row.connector_id,
                    row.connection_id,
                    int(row.delivered_seq),
                    int(row.attempts),
                )
                for row in db.execute(due)
            ]
            if claimed:  # one statement, many parameter sets (pipelined by the driver)
                claim = {"s_holder": holder, "s_until": now + hold}
                db.execute(_CLAIM, [_key(stream) | claim for stream in claimed])
            return claimed

        return await self.store._write(work)

    async def events(self, stream: Stream, *, limit: int) -> list[tuple[int, ConnectionEvent]]:
        params = _key(stream) | {"s_after": stream.delivered_seq, "s_limit": limit}
        rows = await self.store._read(_EVENTS, all_rows=True, **params)
        return [(int(seq), ConnectionEvent.from_json(json.loads(payload))) for seq, payload in rows]

    async def delivered(self, stream: Stream, holder: str, seq: int, *, until: float) -> bool:
        params = _key(stream) | {"s_holder": holder, "s_seq": seq, "s_until": until}
        if self.store._sqlite:

            def work(db: Connection) -> bool:
                return bool(db.execute(_DELIVERED, params).rowcount == 1)

            return await self.store._write(work)

        def one_statement() -> bool:
            # The hottest write (one per delivery or so), a statement of its own: in
            # autocommit it is one round trip, not BEGIN, UPDATE and COMMIT.
            engine = self.store.engine
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
                return bool(db.execute(_DELIVERED, params).rowcount == 1)

        return await anyio.to_thread.run_sync(one_statement)

    async def release(
        self,
        stream: Stream,
        holder: str,
        *,
        now: float,
        retry_at: float | None = None,
        error: str | None = None,
        skip_to: int | None = None,
    ) -> None:
        key = _key(stream)

        def work(db: Connection) -> None:
            # The stream's row first (a writer marking it pending waits for us, or we
            # for it): what is left to deliver is then read afresh, after the lock.
            row = db.execute(_HELD, key).first()
            if row is None or row.claimed_by != holder:
                return
            delivered = int(row.delivered_seq) if skip_to is None else skip_to
            more = db.execute(_MORE, key | {"s_after": delivered}).first()
            values: dict[str, Any] = {
                "claimed_by": None,
                "claimed_until": None,
                "delivered_seq": delivered,
                "pending": more is not None,
            }
            if skip_to is not None:
                values.update(attempts=0, last_error=error)
            elif retry_at is not None:
                values.update(
                    attempts=event_streams.c.attempts + 1,
                    next_attempt_at=retry_at,
                    last_error=(error or "")[:200] or None,
                )
            else:
                values.update(next_attempt_at=now)
            db.execute(event_streams.update().where(_STREAM).values(**values), key)

        await self.store._write(work)

    async def recent(
        self, *, tenant: str | None = None, connector_id: str | None = None, limit: int = 50
    ) -> list[EventRecord]:
        statement = sa.select(events.c.seq, events.c.payload).order_by(events.c.seq.desc())
        if tenant is not None:
            statement = statement.where(events.c.tenant == tenant)
        if connector_id is not None:
            statement = statement.where(events.c.connector_id == connector_id)
        rows = await self.store._read(statement.limit(limit), all_rows=True)
        found = [(int(seq), ConnectionEvent.from_json(json.loads(p))) for seq, p in rows]
        if not found:
            return []
        streams = await self.store._read(sa.select(event_streams), all_rows=True)
        by_connection: dict[tuple[str, str, str], list[Any]] = {}
        for row in streams:
            by_connection.setdefault((row.tenant, row.connector_id, row.connection_id), []).append(
                row
            )
        destinations = await self.store._read(sa.select(event_destinations), all_rows=True)
        since = {row.name: int(row.since_seq) for row in destinations}
        records = []
        for seq, event in found:
            deliveries: dict[str, str] = {}
            rows_of = by_connection.get((event.tenant, event.connector_id, event.connection_id), [])
            for row in rows_of:
                if seq <= since.get(row.destination, 0):
                    continue  # written before that destination existed
                if int(row.delivered_seq) >= seq:
                    deliveries[row.destination] = "delivered"
                elif row.last_error:
                    deliveries[row.destination] = (
                        f"pending ({row.attempts} failed: {row.last_error})"
                    )
                else:
                    deliveries[row.destination] = "pending"
            records.append(EventRecord(seq, event, deliveries))
        return records

    async def prune(self, before: float, *, waiting: bool = False) -> int:
        def work(db: Connection) -> int:
            statement = events.delete().where(events.c.created_at < before)
            if not waiting:
                unsent = sa.exists().where(
                    event_streams.c.tenant == events.c.tenant,
                    event_streams.c.connector_id == events.c.connector_id,
                    event_streams.c.connection_id == events.c.connection_id,
                    event_streams.c.delivered_seq < events.c.seq,
                )
                statement = statement.where(~unsent)
            return int(db.execute(statement).rowcount)

        return await self.store._write(work)
