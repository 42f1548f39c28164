"""Helpers for tests against the real OpenBao: a root client and a KV v2 mount of their own.

Import as ``from support.vault import ...``: pytest puts ``tests/`` on ``sys.path`` because
``tests/conftest.py`` sits in a directory without ``__init__.py``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import hvac
import hvac.exceptions

from switchyard.adapters.vault_session import AppRoleAuth
from switchyard.db import migrate
from switchyard.db.engine import make_engine, unit_of_work
from switchyard.db.region_state import seed_region_state
from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import HOST
from switchyard.devenv.vault import (
    DATABASE_MOUNT,
    configure_database_connection,
    create_runtime_role,
    ensure_database_engine,
)
from switchyard.domain.region import RegionRole
from switchyard.domain.secrets import Secret

KV_MOUNT = "switchyard-test-kv"
"""A mount of our own, so tests do not depend on the dev server's default ``secret/``."""


def root_client(addr: str, token: str) -> Any:
    return hvac.Client(url=addr, token=token, timeout=5)


def ensure_kv_v2(client: Any, mount: str = KV_MOUNT) -> str:
    """Enable KV v2 at ``mount`` unless present; return once the mount accepts writes."""
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    if f"{mount}/" not in mounts:
        client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    # A fresh KV v2 mount refuses writes while it upgrades its storage (well under a second).
    deadline = time.monotonic() + 15
    while True:
        try:
            client.secrets.kv.v2.create_or_update_secret(
                "ready-probe", secret={"ok": "yes"}, mount_point=mount
            )
            return mount
        except hvac.exceptions.VaultError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def unique_path(prefix: str = "contract") -> str:
    return f"{prefix}/{uuid.uuid4().hex}"


# -- a region database of a test's own, with runtime logins from Vault ------------------------


@dataclass
class LeasedRegionDb:
    """A database on region-a's PostgreSQL migrated to the region schema (region-a primary at
    epoch 1), wired to a database-engine connection in Vault of its own, so tests can issue
    (and revoke) runtime logins with the harness's statements without touching a runtime."""

    harness: Harness
    root: Any
    database: str
    connection: str
    _made: list[tuple[str, str]] = field(default_factory=list)

    @property
    def superuser_url(self) -> str:
        return self.harness.region_dbs["region-a"].url(self.database)

    @property
    def address(self) -> Secret:
        """The database's URL without credentials, as ``_region_store`` gives a leased engine."""
        pg = self.harness.region_dbs["region-a"]
        return Secret(f"postgresql+psycopg://{HOST}:{pg.port}/{self.database}")

    def new_role(self, *, default_ttl: str = "1h", max_ttl: str = "24h") -> str:
        """A database-engine role issuing logins with the harness's runtime statements."""
        role = f"{self.connection}-{uuid.uuid4().hex[:8]}"
        create_runtime_role(
            self.root,
            mount=DATABASE_MOUNT,
            name=role,
            connection=self.connection,
            default_ttl=default_ttl,
            max_ttl=max_ttl,
        )
        self._made.append(("db-role", role))
        return role

    def new_approle(self, policy: str, *, token_ttl: str, token_max_ttl: str) -> AppRoleAuth:
        """An AppRole of its own with ``policy`` and the given token TTLs."""
        name = f"switchyard-test-{uuid.uuid4().hex[:8]}"
        self.root.sys.create_or_update_policy(name, policy)
        self.root.auth.approle.create_or_update_approle(
            name, token_policies=[name], token_ttl=token_ttl, token_max_ttl=token_max_ttl
        )
        self._made.append(("approle", name))
        role_id = self.root.auth.approle.read_role_id(name)["data"]["role_id"]
        secret_id = self.root.auth.approle.generate_secret_id(name)["data"]["secret_id"]
        return AppRoleAuth(role_id, Secret(secret_id))

    def cleanup(self) -> None:
        for kind, name in reversed(self._made):
            if kind == "db-role":
                self.root.sys.revoke_prefix(f"{DATABASE_MOUNT}/creds/{name}")
                self.root.secrets.database.delete_role(name, mount_point=DATABASE_MOUNT)
            else:
                self.root.auth.approle.delete_role(name)
                self.root.sys.delete_policy(name)
        self._made.clear()


def runtime_policy(role: str) -> str:
    """What a runtime's policy allows on the database engine, for a test role."""
    creds = f"{DATABASE_MOUNT}/creds/{role}"
    return (
        f'path "{creds}" {{ capabilities = ["read"] }}\n'
        f'path "sys/leases/renew/{creds}/*" {{ capabilities = ["update"] }}\n'
    )


@contextmanager
def leased_region_database(harness: Harness, name: str) -> Iterator[LeasedRegionDb]:
    pg = harness.region_dbs["region-a"]
    url = pg.fresh_database(name)
    migrate.upgrade(url, schema=migrate.REGION)
    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            seed_region_state(session=session, region="region-a", role=RegionRole.PRIMARY, epoch=1)
    finally:
        engine.dispose()
    with vault_database_connection(harness, name) as (root, connection):
        db = LeasedRegionDb(harness, root, name, connection)
        try:
            yield db
        finally:
            db.cleanup()


@contextmanager
def vault_database_connection(harness: Harness, database: str) -> Iterator[tuple[Any, str]]:
    """A Vault database connection (fresh name) to ``database`` on region-a's PostgreSQL, as
    (root client, connection name); deleted afterwards. Roles go under ``<connection>-*``."""
    pg = harness.region_dbs["region-a"]
    root = harness.vault.root_client()
    ensure_database_engine(root)
    connection = f"switchyard-test-{uuid.uuid4().hex[:8]}"
    configure_database_connection(
        root,
        mount=DATABASE_MOUNT,
        name=connection,
        port=pg.port,
        database=database,
        password=harness.creds.postgres_password,
        allowed_roles=[f"{connection}-*"],
    )
    try:
        yield root, connection
    finally:
        root.secrets.database.delete_connection(connection, mount_point=DATABASE_MOUNT)
