"""Alembic environment for the control-plane schema.

Run through ``switchyard.db.migrate``, which puts the database URL in
``config.attributes["switchyard.url"]``; there is no URL in any file. Online runs hold a
transaction-scoped advisory lock so controllers starting together migrate one at a time.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from switchyard.db.engine import CONNECT_TIMEOUT_SECONDS
from switchyard.db.migrate import URL_ATTRIBUTE, VERSION_TABLE
from switchyard.db.tables import metadata

# Arbitrary but fixed: every controller must contend for the same advisory lock key.
MIGRATION_LOCK_KEY = 0x5357_4354_4C01


def database_url() -> str:
    config = context.config
    url = config.attributes.get(URL_ATTRIBUTE) or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database URL: run migrations through switchyard.db.migrate (upgrade/downgrade)"
        )
    return str(url)


def run_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(
        database_url(),
        poolclass=NullPool,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                version_table=VERSION_TABLE,
                transaction_per_migration=False,
            )
            with context.begin_transaction():
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
