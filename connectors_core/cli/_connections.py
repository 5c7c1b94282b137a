"""``connectors connections``: the stored connections, for an operator (the server extra).

``list``, ``show``, ``test``, ``refresh`` (one connection, or with ``--due``
every one that is due, for a cron), ``disconnect``, and ``events`` (what
happened to connections lately, and how its delivery went). Each command
builds the service as the server would (:meth:`Connections.from_env
<connectors_core.connections.Connections.from_env>`, with the installed
connectors), runs its work with ``anyio.run`` and closes the store.

A connector may hold several connections per tenant (``connection.multiple``):
``--connection ID`` names one of them for ``show``, ``test``, ``refresh`` and
``disconnect``. Without it, a connector holding several is the error
``connection_required``, which lists their ids to choose from.

Nothing here prints a secret: only what the service's summaries, status
objects and events hold (key hints such as ``••••cdef``). A failed operation
on one connection is raised as a :class:`ConnectorsError` naming the tenant,
the connector and the reason code; the ``connectors`` group prints it as one
``error:`` line (exit status 1). The service's own warnings (a revocation
that failed, a plugin that did not load) are printed as ``warning:`` lines
after the command's output, unless it ends with that error line.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .._exceptions import (
    ConnectionRequiredError,
    ConnectorsError,
    IntegrationError,
    InvalidFieldsError,
    NeedsReauthError,
    NotConnectedError,
)
from . import _render

if TYPE_CHECKING:
    from ..connections import Connections, RefreshOutcome, RefreshReport
    from ..store import ConnectionSummary, EventRecord

__all__ = ["connections"]

_T = TypeVar("_T")

SERVER_EXTRA = "this command needs the server extra: pip install 'connectors-core[server]'"
RESULTS = ("refreshed", "unchanged", "failed", "needs_reauth")


# --- running the service ----------------------------------------------------------------


class _Warnings(logging.Handler):
    """Keeps the library's warnings during a command, to show them once it succeeded."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _run(work: Callable[[Connections], Awaitable[_T]]) -> _T:
    """Open the service from the environment, run ``work`` with it, close it.

    Discovery honours ``connectors --strict``. On an error, the warnings
    that led to it are dropped: the error line says what happened.
    """
    try:
        import anyio

        from .._discovery import discover
        from ..connections import Connections
    except ImportError:
        raise ConnectorsError(SERVER_EXTRA) from None
    ctx = click.get_current_context(silent=True)
    strict = ctx.obj.get("strict") if ctx is not None and isinstance(ctx.obj, dict) else None
    warnings = _Warnings()
    logger = logging.getLogger("connectors_core")
    logger.addHandler(warnings)
    try:
        _check_database()
        registry = discover(strict=strict)
        if registry.failures:
            names = ", ".join(record.name for record in registry.failures)
            warnings.lines.append(
                f"{len(registry.failures)} plugin(s) failed to load ({names}); their "
                "connections cannot be used; run `connectors doctor` for details"
            )
        service = Connections.from_env(registry=registry)

        async def main() -> _T:
            try:
                return await work(service)
            finally:
                await service.aclose()

        try:
            result = anyio.run(main)
        except ExceptionGroup as group:
            error = _domain_error(group)
            if error is None:
                raise
            raise error from None
    finally:
        logger.removeHandler(warnings)
    for line in warnings.lines:
        click.echo(f"warning: {line}", err=True)
    return result


def _check_database() -> None:
    """Refuse an SQLite file that does not exist: these commands read a server's store.

    Opening one would create an empty database (and, in development mode, a
    new key) for a mistyped CONNECTORS_DATABASE_URL, and report nothing stored.
    """
    from pathlib import Path

    from .._settings import Settings

    url = Settings.from_env().database_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            raise ConnectorsError(
                f"CONNECTORS_DATABASE_URL: there is no database at {path}; run this where "
                "the server keeps its store, or set CONNECTORS_DATABASE_URL"
            )


def _domain_error(group: BaseExceptionGroup[BaseException]) -> ConnectorsError | None:
    """The error to show for a task group's failure, when all of it is domain errors."""
    leaves = list(_leaves(group))
    errors = [leaf for leaf in leaves if isinstance(leaf, ConnectorsError)]
    return errors[0] if errors and len(errors) == len(leaves) else None


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _target(tenant: str, connector_id: str, connection_id: str | None = None) -> str:
    """How an output line names a connection: ``tenant/connector[/connection]``."""
    return "/".join([tenant, connector_id, *([connection_id] if connection_id else [])])


@contextmanager
def _about(tenant: str, connector_id: str, connection_id: str | None = None) -> Iterator[None]:
    """Raise a failure on one connection as an error naming it and the reason code."""
    try:
        yield
    except IntegrationError as exc:
        target = _target(tenant, connector_id, connection_id)
        raise ConnectorsError(f"{target}: {_why(exc)}") from None


async def _one(
    service: Connections,
    tenant: str,
    connector_id: str,
    connection_id: str | None,
    call: Awaitable[_T],
) -> _T:
    """Await ``call``, an operation on one connection, its errors saying which one.

    ``connection_required`` lists the ids ``--connection`` takes; ``not_connected``
    for an id says that connection is not there (the connector may have others).
    """
    try:
        return await call
    except ConnectionRequiredError:
        found = await service.list(tenant=tenant, connector_id=connector_id)
        raise _required(connector_id, found) from None
    except NotConnectedError:
        if connection_id is None:
            raise
        raise NotConnectedError(
            f"{connector_id} has no such connection", connector_id=connector_id
        ) from None


def _required(connector_id: str, found: Sequence[ConnectionSummary]) -> ConnectionRequiredError:
    """``connection_required``, listing the connections to choose from."""
    choices = ", ".join(_choice(summary) for summary in found)
    return ConnectionRequiredError(
        f"{connector_id} holds {len(found)} connections for this tenant; pass --connection "
        f"with one of their ids: {choices}",
        connector_id=connector_id,
    )


def _code(exc: IntegrationError) -> str:
    if isinstance(exc, NeedsReauthError):
        return f"needs_reauth ({exc.cause})"
    return exc.reason


def _why(exc: IntegrationError) -> str:
    # The fields' messages never quote a secret, and read better without the wrapper.
    detail = "; ".join(exc.fields.values()) if isinstance(exc, InvalidFieldsError) else str(exc)
    return f"{_code(exc)}: {detail}"


def _failure_json(exc: IntegrationError) -> dict[str, str]:
    """A failure as the status JSON spells it: ``error`` (and the ``reason`` of needs_reauth)."""
    if isinstance(exc, NeedsReauthError):
        return {"error": "needs_reauth", "reason": exc.cause}
    return {"error": exc.reason}


def _interactive() -> bool:
    """Whether someone can answer a prompt: stdin is open and a terminal."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return False
    try:
        return stdin.isatty()
    except (OSError, ValueError):
        return False


# --- rendering --------------------------------------------------------------------------


def _echo_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _state(status: Mapping[str, Any]) -> str:
    """``connected``, or the error and its reason: ``needs_reauth: invalid_grant``."""
    if status.get("connected"):
        return "connected"
    error, reason = str(status.get("error")), status.get("reason")
    return f"{error}: {reason}" if reason else error


def _account(account: Mapping[str, str], limit: int = 48) -> str:
    text = ", ".join(f"{key}={value}" for key, value in account.items()) or "-"
    return _clip(text, limit)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _named(summary: ConnectionSummary) -> str:
    """A connection's label and account: ``Marketing (organizationId=org-1)``, or ``-``."""
    account = _account(summary.account)
    if summary.label is None:
        return account
    label = _clip(summary.label, 32)
    return label if account == "-" else f"{label} ({account})"


def _choice(summary: ConnectionSummary) -> str:
    """A connection by its id, label and account: ``conn_… (Marketing, organizationId=org-1)``."""
    account = _account(summary.account)
    parts = [_clip(summary.label, 32)] if summary.label else []
    parts += [] if account == "-" else [account]
    return summary.connection_id + (f" ({', '.join(parts)})" if parts else "")


def _row(summary: ConnectionSummary, status: Mapping[str, Any]) -> list[str]:
    errors = [summary.last_error] if summary.last_error else []
    if summary.verify_reason:
        errors.append(f"verify: {summary.verify_reason}")
    return [
        summary.tenant,
        summary.connector_id,
        summary.connection_id,
        _state(status),
        _named(summary),
        _when(summary.last_refreshed_at),
        ", ".join(errors) or "-",
    ]


def _event_row(record: EventRecord) -> list[str]:
    event = record.event
    return [
        _when(event.at),
        event.type.value,
        event.tenant,
        event.connector_id,
        event.connection_id,
        _account(event.account),
        event.actor or "-",
        event.reason or "-",
        _deliveries(record.deliveries),
    ]


def _deliveries(deliveries: Mapping[str, str]) -> str:
    """``hooks delivered, webhook pending (2 failed: the webhook answered HTTP 500)``."""
    return ", ".join(f"{name} {state}" for name, state in sorted(deliveries.items())) or "-"


def _value(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.endswith("At") and isinstance(value, int | float) and not isinstance(value, bool):
        return _when(value)
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


def _details(tenant: str, connector_id: str, status: Mapping[str, Any]) -> str:
    """The lines of ``show``: the status JSON's fields, times in UTC."""
    lines = [("tenant", tenant), ("connector", connector_id), ("state", _state(status))]
    ignored = {"connected", "error", "reason"}
    details = status.get("status") or {k: v for k, v in status.items() if k not in ignored}
    for key, value in details.items():
        if isinstance(value, Mapping):
            lines.append((key, ""))
            lines.extend((f"  {k}", _value(k, v)) for k, v in value.items())
        else:
            lines.append((key, _value(key, value)))
    width = max(len(label) for label, _ in lines) + 2
    return "\n".join(f"{label + ':':<{width}}{text}".rstrip() for label, text in lines)


# --- the commands -----------------------------------------------------------------------

TENANT = click.argument("tenant")
CONNECTOR = click.argument("connector_id", metavar="CONNECTOR")
CONNECTION = click.option(
    "--connection",
    "connection_id",
    metavar="ID",
    help="Which of the connector's connections (its id, from `list`): required when "
    "it holds several.",
)


def _json_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")


@click.group()
def connections() -> None:
    """The stored connections: list, show, test, refresh and disconnect them; their events.

    Opens the store the server uses, from the same CONNECTORS_* settings
    (CONNECTORS_DATABASE_URL, CONNECTORS_SECRET_KEYS, the OAuth clients),
    with the installed connectors. A connector may hold several connections
    per tenant: name one with --connection ID (the ids are in `list`). Never
    prints a secret: API keys show as key hints. Needs the server extra.
    """


@connections.command("list")
@click.option("--tenant", help="Only this tenant's connections.")
@click.option("--connector", "connector_id", metavar="ID", help="Only this connector's.")
@_json_option("them (each as Connections.describe gives it)")
def list_connections(tenant: str | None, connector_id: str | None, as_json: bool) -> None:
    """List every stored connection, by tenant, then connector.

    CONNECTION is the id --connection takes; ACCOUNT the connection's label,
    if it has one, and the provider account it holds.
    """

    async def work(service: Connections) -> list[tuple[ConnectionSummary, dict[str, Any]]]:
        found = await service.list(tenant=tenant, connector_id=connector_id)
        return [(summary, service.describe(summary)) for summary in found]

    found = _run(work)
    if as_json:
        _echo_json([status for _summary, status in found])
    elif found:
        headers = [
            "TENANT",
            "CONNECTOR",
            "CONNECTION",
            "STATE",
            "ACCOUNT",
            "LAST REFRESHED",
            "LAST ERROR",
        ]
        click.echo(_render.table(headers, [_row(*item) for item in found]))
    else:
        filtered = tenant is not None or connector_id is not None
        click.echo("No connections found." if filtered else "No connections are stored.")


@connections.command()
@TENANT
@CONNECTOR
@CONNECTION
@_json_option("the status")
def show(tenant: str, connector_id: str, connection_id: str | None, as_json: bool) -> None:
    """Show the status of one connection (key hints only, never a secret)."""

    async def status_of(service: Connections) -> dict[str, Any]:
        status = await service.status(tenant, connector_id, connection_id)
        several = status.get("connections")
        if isinstance(several, list):  # a connector that may hold several, asked without an id
            if len(several) > 1:
                raise ConnectionRequiredError("several", connector_id=connector_id)
            status = several[0] if several else status
        if status.get("error") == "not_connected":
            raise NotConnectedError(f"{connector_id} is not connected", connector_id=connector_id)
        return status

    async def work(service: Connections) -> dict[str, Any]:
        return await _one(service, tenant, connector_id, connection_id, status_of(service))

    with _about(tenant, connector_id, connection_id):
        status = _run(work)
    if as_json:
        _echo_json({"tenant": tenant, "connectorId": connector_id, **status})
    else:
        click.echo(_details(tenant, connector_id, status))


@connections.command("test")
@TENANT
@CONNECTOR
@CONNECTION
@_json_option("the result")
def verify_connection(
    tenant: str, connector_id: str, connection_id: str | None, as_json: bool
) -> None:
    """Prove one connection's stored credentials with the provider, and record the result.

    Exits with status 1 and the reason code when the verification fails.
    """

    async def work(service: Connections) -> dict[str, Any]:
        verified = service.verify(tenant, connector_id, connection_id)
        return await _one(service, tenant, connector_id, connection_id, verified)

    head = {"tenant": tenant, "connectorId": connector_id}
    target = _target(tenant, connector_id, connection_id)
    try:
        status = _run(work)
    except IntegrationError as exc:
        if as_json:
            _echo_json({**head, "verified": False, **_failure_json(exc)})
        if isinstance(exc, ConnectionRequiredError):  # nothing was verified: which one?
            raise ConnectorsError(f"{target}: {_why(exc)}") from None
        raise ConnectorsError(f"{target}: verification failed: {_why(exc)}") from None
    if as_json:
        _echo_json({**head, "verified": True, **status})
    else:
        click.echo(f"verified: {target}")


@connections.command()
@click.argument("tenant", required=False)
@click.argument("connector_id", metavar="[CONNECTOR]", required=False)
@CONNECTION
@click.option("--due", is_flag=True, help="Renew every connection that is due (for a cron).")
@click.option("--tenant", "only_tenant", metavar="TENANT", help="With --due: only this tenant.")
@click.option("--connector", "only_connector", metavar="ID", help="With --due: only this one.")
@click.option(
    "--within",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="With --due: also what will be due within SECONDS (the cron's interval).",
)
@_json_option("the result")
@click.pass_context
def refresh(
    ctx: click.Context,
    tenant: str | None,
    connector_id: str | None,
    connection_id: str | None,
    due: bool,
    only_tenant: str | None,
    only_connector: str | None,
    within: float | None,
    as_json: bool,
) -> None:
    """Renew one connection's tokens now, or with --due every connection that is due.

    With --due, tokens that expire within their margin (plus --within
    seconds) are renewed, and refresh tokens unused for
    CONNECTORS_REFRESH_IDLE seconds; one line per connection, then a
    summary. Exits with status 1 when a renewal failed or needs the user.
    """
    if due:
        if tenant is not None or connection_id is not None:
            raise click.UsageError(
                "--due renews every connection that is due: give no TENANT CONNECTOR or "
                "--connection with it (narrow it with --tenant and --connector)",
                ctx,
            )
        if not _refresh_due(only_tenant, only_connector, within or 0.0, as_json):
            ctx.exit(1)
        return
    if only_tenant is not None or only_connector is not None or within is not None:
        raise click.UsageError("--tenant, --connector and --within go with --due", ctx)
    if tenant is None or connector_id is None:
        raise click.UsageError("give TENANT and CONNECTOR, or --due", ctx)
    _refresh_one(tenant, connector_id, connection_id, as_json)


def _refresh_one(tenant: str, connector_id: str, connection_id: str | None, as_json: bool) -> None:
    async def work(service: Connections) -> dict[str, Any]:
        renewed = service.refresh(tenant, connector_id, connection_id)
        return await _one(service, tenant, connector_id, connection_id, renewed)

    with _about(tenant, connector_id, connection_id):
        status = _run(work)
    if as_json:
        _echo_json({"tenant": tenant, "connectorId": connector_id, "refreshed": True, **status})
    else:
        click.echo(f"refreshed: {_target(tenant, connector_id, connection_id)}")


def _refresh_due(
    tenant: str | None, connector_id: str | None, within: float, as_json: bool
) -> bool:
    """Renew what is due; print each outcome and a summary. Whether all went well."""

    async def work(service: Connections) -> RefreshReport:
        return await service.refresh_due(tenant=tenant, connector_id=connector_id, within=within)

    report = _run(work)
    counts = {result: report.count(result) for result in RESULTS}
    ok = counts["failed"] == 0 and counts["needs_reauth"] == 0
    if as_json:
        outcomes = [_outcome_json(outcome) for outcome in report.outcomes]
        _echo_json({"ok": ok, "outcomes": outcomes, "counts": counts})
        return ok
    if not report.outcomes:
        click.echo("Nothing is due.")
        return ok
    rows = [
        [o.tenant, o.connector_id, o.connection_id or "-", o.result, o.reason or "-"]
        for o in report.outcomes
    ]
    click.echo(_render.table(["TENANT", "CONNECTOR", "CONNECTION", "RESULT", "REASON"], rows))
    click.echo(
        f"{len(report.outcomes)} due: {counts['refreshed']} refreshed, {counts['unchanged']} "
        f"unchanged (renewed meanwhile), {counts['failed']} failed (tried again next time), "
        f"{counts['needs_reauth']} need the user to connect again."
    )
    return ok


def _outcome_json(outcome: RefreshOutcome) -> dict[str, str | None]:
    return {
        "tenant": outcome.tenant,
        "connectorId": outcome.connector_id,
        "connectionId": outcome.connection_id,
        "result": outcome.result,
        "reason": outcome.reason,
    }


@connections.command()
@TENANT
@CONNECTOR
@CONNECTION
@click.option("--yes", is_flag=True, help="Do not ask (required without a terminal).")
def disconnect(tenant: str, connector_id: str, connection_id: str | None, yes: bool) -> None:
    """Disconnect one connection: revoke it where the provider allows, delete its secrets.

    On a terminal it asks first; without one (a script, CI, a closed stdin)
    it refuses unless --yes is given, and never waits for input.
    """
    target = _target(tenant, connector_id, connection_id)

    async def work(service: Connections) -> bool:
        import anyio.to_thread

        found = await service.list(tenant=tenant, connector_id=connector_id)
        if connection_id is not None:
            found = [s for s in found if s.connection_id == connection_id]
        if not found:
            service.registry.get(connector_id)  # an unknown id is an error, not "nothing to do"
            return False
        if len(found) > 1:
            raise _required(connector_id, found)
        if not yes:
            if not _interactive():
                raise ConnectorsError(
                    f"not disconnecting {target} without confirmation: "
                    "there is no terminal to ask on; pass --yes"
                )
            named = None if connection_id is None else found[0]
            await anyio.to_thread.run_sync(_confirm, tenant, connector_id, named)
        return await service.disconnect(tenant, connector_id, found[0].connection_id)

    with _about(tenant, connector_id, connection_id):
        deleted = _run(work)
    if deleted:
        click.echo(f"disconnected: {target}")
    else:
        click.echo(f"{target} was not connected; nothing to do")


def _confirm(tenant: str, connector_id: str, named: ConnectionSummary | None) -> None:
    which = connector_id if named is None else f"{connector_id} connection {_choice(named)}"
    click.confirm(
        f"Disconnect {which} for tenant {tenant!r}? Its credentials are revoked "
        "where the provider allows it, and deleted here",
        abort=True,
    )


@connections.command()
@click.option("--tenant", help="Only this tenant's events.")
@click.option("--connector", "connector_id", metavar="ID", help="Only this connector's.")
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=50,
    show_default=True,
    help="How many events, the newest.",
)
@_json_option("them (each event's JSON with its deliveries)")
def events(tenant: str | None, connector_id: str | None, limit: int, as_json: bool) -> None:
    """List what happened to connections lately, newest first, and how it was delivered.

    Each event (connected, reconnected, needs_reauth, recovered,
    verification_failed, disconnected) with its connection, account, the user
    who caused it (ACTOR, "-" for the system or this command), its reason,
    and per destination (hooks, listeners, webhook) whether it was delivered
    or is pending, with the last error. Events carry no secret.
    """

    async def work(service: Connections) -> list[EventRecord]:
        outbox = service.store.outbox
        return await outbox.recent(tenant=tenant, connector_id=connector_id, limit=limit)

    records = _run(work)
    if as_json:
        _echo_json([{**r.event.to_json(), "deliveries": dict(r.deliveries)} for r in records])
    elif records:
        headers = [
            "WHEN",
            "EVENT",
            "TENANT",
            "CONNECTOR",
            "CONNECTION",
            "ACCOUNT",
            "ACTOR",
            "REASON",
            "DELIVERY",
        ]
        click.echo(_render.table(headers, [_event_row(record) for record in records]))
    else:
        click.echo("No events.")
