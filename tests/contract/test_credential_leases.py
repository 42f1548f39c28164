"""One contract for every CredentialLeases adapter: the in-memory twin, and Vault (real OpenBao)
issuing real logins on region-a's PostgreSQL with the harness's runtime statements.

The Vault half logs in with the root token: each process kind's policy is proven in
``tests/integration/test_least_privilege.py``. It works on a database (migrated to the region
schema, whose tables the runtime statements grant) and roles of its own (never
``<region>-runtime``), so revoking here cannot fence a runtime that is running.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import psycopg.errors
import pytest
from psycopg import sql
from sqlalchemy import text

from support.vault import vault_database_connection
from switchyard.adapters.credentials_memory import InMemoryCredentialLeases
from switchyard.adapters.credentials_vault import VaultCredentialLeases
from switchyard.adapters.vault_session import AppRoleAuth, TokenAuth
from switchyard.bootstrap import _leased_engine
from switchyard.db import migrate
from switchyard.db.engine import unit_of_work
from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import HOST
from switchyard.devenv.vault import (
    DATABASE_MOUNT,
    DATABASE_REGIONS,
    RUNTIME_DATABASE,
    configure_database_connection,
    create_runtime_role,
    runtime_role,
)
from switchyard.domain.credentials import DatabaseLease
from switchyard.domain.secrets import Secret
from switchyard.errors import FatalError, NotFoundError, TransientError
from switchyard.ports.credentials import CredentialLeases

TEST_DATABASE = "switchyard_test_leases"


@dataclass
class LeaseDatabase:
    """A database of our own on region-a's PostgreSQL, wired to a connection in Vault."""

    harness: Harness
    root: Any
    connection: str
    port: int

    def new_role(self) -> str:
        role = f"{self.connection}-{uuid.uuid4().hex[:8]}"
        create_runtime_role(self.root, mount=DATABASE_MOUNT, name=role, connection=self.connection)
        return role

    def as_superuser(self, sql: str) -> None:
        pg = self.harness.region_dbs["region-a"]
        with psycopg.connect(pg.conninfo(TEST_DATABASE), autocommit=True) as conn:
            conn.execute(sql)


@pytest.fixture(scope="module")
def lease_db(harness: Harness) -> Iterator[LeaseDatabase]:
    pg = harness.region_dbs["region-a"]
    migrate.upgrade(pg.fresh_database(TEST_DATABASE), schema=migrate.REGION)
    with vault_database_connection(harness, TEST_DATABASE) as (root, connection):
        db = LeaseDatabase(harness, root, connection, pg.port)
        # A table that exists before any lease is issued (the migrations' tables, in a region).
        db.as_superuser("CREATE TABLE before_issue (id serial PRIMARY KEY, note text)")
        yield db


@dataclass
class Backend:
    """An adapter, a role it knows, and how to tell whether a lease's login works."""

    leases: CredentialLeases
    role: str
    can_log_in: Callable[[DatabaseLease], bool]
    # Opens a session with the lease; the returned probe says whether it still works.
    open_session: Callable[[DatabaseLease], Callable[[], bool]]
    registered: list[Secret] = field(default_factory=list)


class Recording:
    def __init__(self, into: list[Secret]) -> None:
        self._into = into

    def register(self, secret: Secret) -> None:
        self._into.append(secret)


def _connect(port: int, lease: DatabaseLease) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=HOST,
        port=port,
        user=lease.username,
        password=lease.password.reveal(),
        dbname=TEST_DATABASE,
        connect_timeout=2,
        autocommit=True,
    )


def _memory_backend() -> Backend:
    registered: list[Secret] = []
    role = "region-test-runtime"
    twin = InMemoryCredentialLeases([role], redactor=Recording(registered))
    return Backend(twin, role, twin.is_live, lambda lease: lambda: twin.is_live(lease), registered)


def _vault_backend(db: LeaseDatabase, opened: list[psycopg.Connection[Any]]) -> Backend:
    registered: list[Secret] = []
    adapter = VaultCredentialLeases(
        db.harness.vault.addr,
        TokenAuth(Secret(db.harness.creds.vault_root_token)),
        mount=DATABASE_MOUNT,
        redactor=Recording(registered),
    )

    def can_log_in(lease: DatabaseLease) -> bool:
        try:
            with _connect(db.port, lease) as conn:
                conn.execute("SELECT 1 FROM region_state")
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError as exc:
            if "password authentication failed" in str(exc):
                return False
            raise

    def open_session(lease: DatabaseLease) -> Callable[[], bool]:
        conn = _connect(db.port, lease)
        opened.append(conn)

        def works() -> bool:
            try:
                return conn.execute("SELECT count(*) FROM region_state").fetchone() is not None
            except psycopg.OperationalError:  # terminated by an administrator command
                return False

        return works

    return Backend(adapter, db.new_role(), can_log_in, open_session, registered)


@pytest.fixture(params=["memory", "vault"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield _memory_backend()
        return
    # Looked up here, not declared, so the memory half runs even without servers.
    db: LeaseDatabase = request.getfixturevalue("lease_db")
    opened: list[psycopg.Connection[Any]] = []
    made = _vault_backend(db, opened)
    yield made
    for conn in opened:
        conn.close()
    made.leases.revoke_role(made.role)
    db.root.secrets.database.delete_role(made.role, mount_point=DATABASE_MOUNT)
    assert isinstance(made.leases, VaultCredentialLeases)
    made.leases.close()


def test_issue_gives_a_working_login(backend: Backend) -> None:
    lease = backend.leases.issue(backend.role)

    assert lease.username
    assert lease.ttl_seconds > 0
    assert backend.can_log_in(lease)


def test_every_issue_is_a_new_login(backend: Backend) -> None:
    first = backend.leases.issue(backend.role)
    second = backend.leases.issue(backend.role)

    assert first.lease_id != second.lease_id
    assert first.username != second.username
    assert backend.can_log_in(first)
    assert backend.can_log_in(second)


def test_revoke_role_ends_every_login_and_open_session(backend: Backend) -> None:
    first = backend.leases.issue(backend.role)
    second = backend.leases.issue(backend.role)
    session_works = backend.open_session(first)
    assert session_works()

    revoked = backend.leases.revoke_role(backend.role)

    assert revoked == 2
    assert not backend.can_log_in(first)
    assert not backend.can_log_in(second)
    assert not session_works()


def test_revoke_with_nothing_live_is_a_no_op(backend: Backend) -> None:
    assert backend.leases.revoke_role(backend.role) == 0
    backend.leases.issue(backend.role)
    assert backend.leases.revoke_role(backend.role) == 1
    assert backend.leases.revoke_role(backend.role) == 0


def test_a_lease_issued_after_revocation_works(backend: Backend) -> None:
    old = backend.leases.issue(backend.role)
    backend.leases.revoke_role(backend.role)

    new = backend.leases.issue(backend.role)

    assert backend.can_log_in(new)
    assert not backend.can_log_in(old)


def test_unknown_role_is_not_found_and_named(backend: Backend) -> None:
    unknown = f"no-such-role-{uuid.uuid4().hex[:8]}"
    with pytest.raises(NotFoundError, match=unknown):
        backend.leases.issue(unknown)
    with pytest.raises(NotFoundError, match=unknown):
        backend.leases.revoke_role(unknown)


def test_renew_keeps_the_login_and_grants_a_ttl(backend: Backend) -> None:
    lease = backend.leases.issue(backend.role)

    renewed = backend.leases.renew(lease)

    assert (renewed.lease_id, renewed.username) == (lease.lease_id, lease.username)
    assert renewed.password == lease.password
    assert 0 < renewed.ttl_seconds <= lease.ttl_seconds
    assert backend.can_log_in(renewed)


def test_renewing_a_revoked_lease_is_not_found(backend: Backend) -> None:
    lease = backend.leases.issue(backend.role)
    backend.leases.revoke_role(backend.role)

    with pytest.raises(NotFoundError, match=lease.lease_id):
        backend.leases.renew(lease)


def test_passwords_are_registered_and_never_rendered(backend: Backend) -> None:
    lease = backend.leases.issue(backend.role)
    password = lease.password.reveal()

    assert lease.password in backend.registered
    for rendering in (repr(lease), str(lease), f"{lease}", repr(backend.leases)):
        assert password not in rendering
    assert "password" not in repr(lease)


@pytest.mark.parametrize("role", ["", "a/b", "../sys", "..", "role with space"])
def test_malformed_role_names_are_refused(backend: Backend, role: str) -> None:
    with pytest.raises(ValueError, match="invalid database role"):
        backend.leases.issue(role)
    with pytest.raises(ValueError, match="invalid database role"):
        backend.leases.revoke_role(role)


# -- the twin only -------------------------------------------------------------------------


def test_the_twin_expires_leases_and_caps_renewals_at_the_max_ttl() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    twin = InMemoryCredentialLeases(["r"], ttl_seconds=60, max_ttl_seconds=90, clock=lambda: now)
    lease = twin.issue("r")
    now += timedelta(seconds=50)
    assert twin.renew(lease).ttl_seconds == 40  # capped: issued 50 s ago, max 90 s
    now += timedelta(seconds=41)
    assert not twin.is_live(lease)
    assert twin.revoke_role("r") == 0
    with pytest.raises(NotFoundError):
        twin.renew(lease)


# -- Vault only: the harness's roles and statements, permissions, failures ----------------


def test_runtime_logins_write_their_tables_and_nothing_else(lease_db: LeaseDatabase) -> None:
    role = lease_db.new_role()
    adapter = VaultCredentialLeases(
        lease_db.harness.vault.addr, TokenAuth(Secret(lease_db.harness.creds.vault_root_token))
    )
    lease = adapter.issue(role)
    # Created after the lease, by the superuser, as a later migration would: not granted.
    later = f"after_{uuid.uuid4().hex[:8]}"
    lease_db.as_superuser(f"CREATE TABLE {later} (id bigserial PRIMARY KEY, note text)")
    doc = uuid.uuid4().hex
    try:
        with _connect(lease_db.port, lease) as conn:
            conn.execute(
                "INSERT INTO documents (doc_id, title, media_type, sha256, size_bytes, content,"
                " region, epoch) VALUES (%s, 't', 'text/plain', 'x', 1, 'a', 'region-a', 1)",
                (doc,),
            )
            conn.execute("UPDATE documents SET title = 'u' WHERE doc_id = %s", (doc,))
            for refused in (
                "DELETE FROM documents",
                "SELECT * FROM before_issue",
                sql.SQL("INSERT INTO {} (note) VALUES ('x')").format(sql.Identifier(later)),
                "CREATE TABLE sneaky (id int)",
                sql.SQL("DROP TABLE {}").format(sql.Identifier(later)),
                "TRUNCATE documents",
                "ALTER TABLE documents ADD COLUMN extra int",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(refused)
        assert adapter.revoke_role(role) == 1
        with _connect_superuser(lease_db) as conn:
            gone = conn.execute(
                "SELECT count(*) FROM pg_roles WHERE rolname = %s", (lease.username,)
            ).fetchone()
            assert gone == (0,)
    finally:
        adapter.revoke_role(role)
        lease_db.root.secrets.database.delete_role(role, mount_point=DATABASE_MOUNT)
        adapter.close()


def _connect_superuser(db: LeaseDatabase) -> psycopg.Connection[Any]:
    pg = db.harness.region_dbs["region-a"]
    return psycopg.connect(pg.conninfo(TEST_DATABASE), autocommit=True)


def test_each_harness_region_has_a_runtime_role_on_its_own_database(harness: Harness) -> None:
    assert set(DATABASE_REGIONS) == set(harness.region_dbs)
    root = harness.vault.root_client()
    for region, pg in harness.region_dbs.items():
        # The login is granted the region's tables: they exist once migrated (as in the demo).
        migrate.upgrade(pg.url(), schema=migrate.REGION)
        approle = harness.vault.approle(f"runtime-{region}")  # each runtime's own login
        adapter = VaultCredentialLeases(
            harness.vault.addr, AppRoleAuth(approle["role_id"], Secret(approle["secret_id"]))
        )
        try:
            lease = adapter.issue(runtime_role(region))
            try:
                with psycopg.connect(
                    host=HOST,
                    port=pg.port,
                    user=lease.username,
                    password=lease.password.reveal(),
                    dbname=RUNTIME_DATABASE,
                    connect_timeout=2,
                ) as conn:
                    assert conn.execute("SELECT current_database()").fetchone() == (
                        RUNTIME_DATABASE,
                    )
            finally:
                # This lease only: revoking the role would fence a runtime that may be running.
                root.sys.revoke_lease(lease.lease_id)
        finally:
            adapter.close()


def test_a_runtime_engine_is_locked_out_by_fencing_and_does_not_log_in_again(
    lease_db: LeaseDatabase,
) -> None:
    role = lease_db.new_role()
    adapter = VaultCredentialLeases(
        lease_db.harness.vault.addr, TokenAuth(Secret(lease_db.harness.creds.vault_root_token))
    )
    # The engine bootstrap gives a runtime whose topology names a lease role.
    engine, _login = _leased_engine(
        Secret(f"postgresql+psycopg://{HOST}:{lease_db.port}/{TEST_DATABASE}"), adapter, role
    )
    count = text("SELECT count(*) FROM region_state")
    try:
        with engine.connect() as first, engine.connect() as second:
            first.execute(count)
            second.execute(count)
        assert adapter.revoke_role(role) == 1  # two pooled connections, one login

        with pytest.raises(TransientError), unit_of_work(engine) as session:
            session.execute(count)
        assert adapter.revoke_role(role) == 0  # it did not issue itself a new login
    finally:
        engine.dispose()
        lease_db.root.secrets.database.delete_role(role, mount_point=DATABASE_MOUNT)
        adapter.close()


def test_a_revocation_failing_in_the_database_is_transient_and_kept(
    lease_db: LeaseDatabase,
) -> None:
    role = lease_db.new_role()
    adapter = VaultCredentialLeases(
        lease_db.harness.vault.addr, TokenAuth(Secret(lease_db.harness.creds.vault_root_token))
    )
    lease = adapter.issue(role)

    def point_at(port: int) -> None:
        configure_database_connection(
            lease_db.root,
            mount=DATABASE_MOUNT,
            name=lease_db.connection,
            port=port,
            database=TEST_DATABASE,
            password=lease_db.harness.creds.postgres_password,
            allowed_roles=[f"{lease_db.connection}-*"],
        )

    point_at(9)  # the region's PostgreSQL is unreachable (nothing listens on port 9)
    try:
        with pytest.raises(TransientError, match="failed in the database") as caught:
            adapter.revoke_role(role)
        assert lease.password.reveal() not in str(caught.value)
        assert lease_db.harness.creds.postgres_password not in str(caught.value)
    finally:
        point_at(lease_db.port)
    # Vault kept the lease: once the database answers, revoking completes.
    assert adapter.revoke_role(role) == 1
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(lease_db.port, lease).close()
    lease_db.root.secrets.database.delete_role(role, mount_point=DATABASE_MOUNT)
    adapter.close()


def test_a_revocation_whose_statements_fail_is_fatal_and_kept(lease_db: LeaseDatabase) -> None:
    role = lease_db.new_role()
    adapter = VaultCredentialLeases(
        lease_db.harness.vault.addr, TokenAuth(Secret(lease_db.harness.creds.vault_root_token))
    )
    lease = adapter.issue(role)
    lease_db.root.secrets.database.create_role(
        name=role,
        db_name=lease_db.connection,
        creation_statements=["SELECT 1"],
        revocation_statements=["SELECT no_such_function()"],
        mount_point=DATABASE_MOUNT,
    )
    with pytest.raises(FatalError, match="failed in the database") as caught:
        adapter.revoke_role(role)
    assert not isinstance(caught.value, TransientError)
    # Kept: with the statements mended, the same lease is revoked.
    create_runtime_role(
        lease_db.root, mount=DATABASE_MOUNT, name=role, connection=lease_db.connection
    )
    assert adapter.revoke_role(role) == 1
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(lease_db.port, lease).close()
    lease_db.root.secrets.database.delete_role(role, mount_point=DATABASE_MOUNT)
    adapter.close()


def test_a_policy_denial_is_fatal_not_missing(harness: Harness) -> None:
    root = harness.vault.root_client()
    token = root.auth.token.create(policies=["default"], ttl="1m")["auth"]["client_token"]
    adapter = VaultCredentialLeases(harness.vault.addr, TokenAuth(Secret(token)))
    with pytest.raises(FatalError, match="permission denied") as caught:
        adapter.issue(runtime_role("region-a"))
    assert not isinstance(caught.value, NotFoundError)
    assert token not in str(caught.value)
    with pytest.raises(FatalError, match="permission denied"):
        adapter.revoke_role(runtime_role("region-a"))
    root.auth.token.revoke(token)
    adapter.close()


def test_unreachable_vault_is_transient() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    adapter = VaultCredentialLeases(
        "http://127.0.0.1:9", TokenAuth(Secret("unused-token")), timeout=1.0
    )
    with pytest.raises(TransientError, match="unreachable"):
        adapter.issue("region-a-runtime")
    with pytest.raises(TransientError, match="unreachable"):
        adapter.revoke_role("region-a-runtime")
