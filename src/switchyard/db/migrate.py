"""Run the control-plane Alembic migrations from code (start-up, tests, the CLI).

The Alembic environment lives in ``migrations/control/`` at the repository root, or under
``$SWITCHYARD_MIGRATIONS_DIR/control`` when that variable is set (an installed package does not
carry the migrations, so deployments point at their copy). The URL is handed to ``env.py``
through ``Config.attributes``; nothing is read from an ini file.

Invariants: revisions are hand-written and each has a working downgrade; the version table
is ``alembic_version_control`` so the region schema can later keep its own in the same server.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from switchyard.db.engine import CONNECT_TIMEOUT_SECONDS, unavailable
from switchyard.errors import ConfigError

MIGRATIONS_DIR_ENV = "SWITCHYARD_MIGRATIONS_DIR"
SCHEMA = "control"
VERSION_TABLE = "alembic_version_control"
URL_ATTRIBUTE = "switchyard.url"


def migrations_dir() -> Path:
    """The folder holding ``control/`` (and later ``region/``); read at call time."""
    override = os.environ.get(MIGRATIONS_DIR_ENV)
    root = Path(override) if override else Path(__file__).resolve().parents[3] / "migrations"
    script_location = root / SCHEMA
    if not (script_location / "env.py").is_file():
        raise ConfigError(
            MIGRATIONS_DIR_ENV if override else "migrations",
            "control",
            f"no Alembic environment at {script_location}",
        )
    return root


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` for the control schema; ``url`` goes to env.py via attributes."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir() / SCHEMA))
    config.attributes[URL_ATTRIBUTE] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``; a no-op when already there."""
    with _mapped_errors():
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"`` drops everything)."""
    with _mapped_errors():
        command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest revision in ``migrations/control/versions``."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise ConfigError("migrations", "control", "no revisions found")
    return head


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at, None if never migrated."""
    engine = create_engine(
        url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    )
    try:
        with _mapped_errors(), engine.connect() as connection:
            return connection_revision(connection)
    finally:
        engine.dispose()


def is_current(url: str) -> bool:
    """Whether the database at ``url`` is at the head revision."""
    return current_revision(url) == head_revision()


def connection_revision(connection: Connection) -> str | None:
    """The revision recorded in the store behind ``connection``, None if never migrated."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


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
    parser.add_argument("revision", nargs="?", default=None)
    parser.add_argument("--url", default=os.environ.get("SWITCHYARD_CONTROL_DB_URL"))
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("--url or SWITCHYARD_CONTROL_DB_URL is required")
    if args.action == "upgrade":
        upgrade(args.url, args.revision or "head")
    elif args.action == "downgrade":
        if args.revision is None:
            parser.error("downgrade needs a revision (e.g. base)")
        downgrade(args.url, args.revision)
    print(current_revision(args.url) or "base")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
