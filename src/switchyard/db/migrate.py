"""Run the Alembic migrations from code (start-up, tests, the CLI).

Two schemas, each its own Alembic environment: ``control`` (the control plane's store, in the
witness PostgreSQL) and ``region`` (sessions, turns, documents and the region's role and epoch,
in each region's PostgreSQL). They live in ``migrations/<schema>/`` at the repository root, or
under ``$SWITCHYARD_MIGRATIONS_DIR`` when that variable is set (an installed package does not
carry the migrations, so deployments point at their copy). The URL is handed to ``env.py``
through ``Config.attributes``; nothing is read from an ini file.

Invariants: revisions are hand-written and each has a working downgrade; each schema keeps its
own version table, so both could share one server.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from switchyard.db.engine import CONNECT_TIMEOUT_SECONDS, unavailable
from switchyard.errors import ConfigError

MIGRATIONS_DIR_ENV = "SWITCHYARD_MIGRATIONS_DIR"
URL_ATTRIBUTE = "switchyard.url"


@dataclass(frozen=True)
class Schema:
    name: str  # the folder under migrations/
    version_table: str


CONTROL = Schema("control", "alembic_version_control")
REGION = Schema("region", "alembic_version_region")
SCHEMAS = {s.name: s for s in (CONTROL, REGION)}


def migrations_dir(schema: Schema = CONTROL) -> Path:
    """The folder holding ``control/`` and ``region/``; read at call time."""
    override = os.environ.get(MIGRATIONS_DIR_ENV)
    root = Path(override) if override else Path(__file__).resolve().parents[3] / "migrations"
    script_location = root / schema.name
    if not (script_location / "env.py").is_file():
        raise ConfigError(
            MIGRATIONS_DIR_ENV if override else "migrations",
            schema.name,
            f"no Alembic environment at {script_location}",
        )
    return root


def alembic_config(url: str | None = None, *, schema: Schema = CONTROL) -> Config:
    """An Alembic ``Config`` for ``schema``; ``url`` goes to env.py via attributes."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(schema) / schema.name))
    config.attributes[URL_ATTRIBUTE] = url
    return config


def upgrade(url: str, revision: str = "head", *, schema: Schema = CONTROL) -> None:
    """Migrate the database at ``url`` up to ``revision``; a no-op when already there."""
    with _mapped_errors():
        command.upgrade(alembic_config(url, schema=schema), revision)


def downgrade(url: str, revision: str, *, schema: Schema = CONTROL) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"`` drops everything)."""
    with _mapped_errors():
        command.downgrade(alembic_config(url, schema=schema), revision)


def head_revision(*, schema: Schema = CONTROL) -> str:
    """The newest revision in ``migrations/<schema>/versions``."""
    head = ScriptDirectory.from_config(alembic_config(schema=schema)).get_current_head()
    if head is None:
        raise ConfigError("migrations", schema.name, "no revisions found")
    return head


def current_revision(url: str, *, schema: Schema = CONTROL) -> str | None:
    """The revision the database at ``url`` is at, None if never migrated."""
    engine = create_engine(
        url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    )
    try:
        with _mapped_errors(), engine.connect() as connection:
            return connection_revision(connection, schema=schema)
    finally:
        engine.dispose()


def is_current(url: str, *, schema: Schema = CONTROL) -> bool:
    """Whether the database at ``url`` is at the head revision."""
    return current_revision(url, schema=schema) == head_revision(schema=schema)


def connection_revision(connection: Connection, *, schema: Schema = CONTROL) -> str | None:
    """The revision recorded in the store behind ``connection``, None if never migrated."""
    context = MigrationContext.configure(connection, opts={"version_table": schema.version_table})
    return context.get_current_revision()


def run_environment(schema: Schema, metadata: MetaData, lock_key: int) -> None:
    """The body of every ``migrations/<schema>/env.py``: run Alembic for ``schema``.

    Online runs hold a transaction-scoped advisory lock (``lock_key``, one per schema) so
    processes starting together migrate one at a time.
    """
    from alembic import context

    config = context.config
    url = config.attributes.get(URL_ATTRIBUTE) or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database URL: run migrations through switchyard.db.migrate (upgrade/downgrade)"
        )
    if context.is_offline_mode():
        context.configure(
            url=str(url),
            target_metadata=metadata,
            version_table=schema.version_table,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(
        str(url), poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    )
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                version_table=schema.version_table,
                transaction_per_migration=False,
            )
            with context.begin_transaction():
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
                context.run_migrations()
    finally:
        engine.dispose()


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        raise unavailable(exc) from exc


def main(argv: list[str] | None = None) -> int:
    """``python -m switchyard.db.migrate {upgrade,downgrade,current} --url URL [REVISION]``."""
    parser = argparse.ArgumentParser(prog="python -m switchyard.db.migrate")
    parser.add_argument("action", choices=("upgrade", "downgrade", "current"))
    parser.add_argument("--schema", choices=sorted(SCHEMAS), default=CONTROL.name)
    parser.add_argument("revision", nargs="?", default=None)
    parser.add_argument("--url", default=os.environ.get("SWITCHYARD_CONTROL_DB_URL"))
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("--url or SWITCHYARD_CONTROL_DB_URL is required")
    schema = SCHEMAS[args.schema]
    if args.action == "upgrade":
        upgrade(args.url, args.revision or "head", schema=schema)
    elif args.action == "downgrade":
        if args.revision is None:
            parser.error("downgrade needs a revision (e.g. base)")
        downgrade(args.url, args.revision, schema=schema)
    print(current_revision(args.url, schema=schema) or "base")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
