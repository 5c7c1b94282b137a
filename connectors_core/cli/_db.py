"""``connectors db upgrade`` and ``connectors rotate-keys``: store maintenance."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .._exceptions import ConnectorsError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .._settings import Settings


def _database() -> tuple[Engine, Settings]:
    try:
        from .._settings import Settings
        from ..store._sql import create_engine
    except ImportError:
        raise ConnectorsError(
            "this command needs the server extra: pip install 'connectors-core[server]'"
        ) from None
    settings = Settings.from_env()
    if settings.database_url.startswith("memory"):
        raise ConnectorsError("CONNECTORS_DATABASE_URL names the in-memory store: nothing to do")
    return create_engine(settings.database_url), settings


@click.group()
def db() -> None:
    """The store's database."""


@db.command()
def upgrade() -> None:
    """Upgrade the database schema to this version's newest revision."""
    from ..store._schema import upgrade as run_upgrade

    engine, _settings = _database()
    try:
        before, after = run_upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"the schema is already at revision {after}")
    else:
        click.echo(f"upgraded the schema from {before or 'nothing'} to revision {after}")


@click.command("rotate-keys")
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1, 10_000))
def rotate_keys(batch_size: int) -> None:
    """Re-encrypt every stored secret with the first key in CONNECTORS_SECRET_KEYS.

    Runs in batches and can be interrupted: running it again resumes. When it
    reports nothing remaining, the older keys can be removed. A secret that no
    configured key opens is listed (which tenant, connector and field; never
    the secret) and the command fails, after re-encrypting all the others.
    """
    from ..store import secret_box
    from ..store._rotate import RotationProgress
    from ..store._rotate import rotate_keys as run
    from ..store._schema import prepare

    engine, settings = _database()

    def report(progress: RotationProgress) -> None:
        click.echo(f"re-encrypted {progress.rotated} of {progress.total} rows")

    try:
        prepare(engine, auto_upgrade=False)
        box = secret_box(settings)
        result = run(engine, box, batch_size=batch_size, on_progress=report)
    finally:
        engine.dispose()
    if result.failures:
        count = len(result.failures)
        noun = "secret" if count == 1 else "secrets"
        click.echo(f"could not re-encrypt {count} {noun}:", err=True)
        for failure in result.failures:
            click.echo(f"  {failure}", err=True)
        raise ConnectorsError(
            f"{count} stored {noun} could not be re-encrypted (listed above); every other "
            "secret was. Put the key they use back in CONNECTORS_SECRET_KEYS and run "
            "`connectors rotate-keys` again, or disconnect and reconnect those connections"
        )
    if result.remaining:
        raise ConnectorsError(f"{result.remaining} rows still use an older key; run it again")
    click.echo(
        f"every secret is encrypted with key {box.current_key_id}; "
        "the other keys can now be removed from CONNECTORS_SECRET_KEYS"
    )
