"""Least privilege (issue 13, items 9 and 10), on real OpenBao and PostgreSQL.

Item 9: a runtime's database login (issued with the harness's statements) writes chat and
documents but cannot change ``region_state``, so a compromised runtime cannot promote itself.

Item 10: every process kind logs in with its own AppRole (as the harness hands them out) and
its policy allows only the paths that kind reads: inside them it is served, outside it gets
403 — a runtime cannot read the admin API token, the TSIG key or a database owner's password,
nor issue, renew or revoke another region's logins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import hvac
import hvac.exceptions
import psycopg
import psycopg.errors
import pytest
from sqlalchemy import text

from support.vault import LeasedRegionDb, leased_region_database
from switchyard.adapters.credentials_vault import VaultCredentialLeases
from switchyard.adapters.vault_session import TokenAuth
from switchyard.db import migrate
from switchyard.db.engine import make_engine, unit_of_work
from switchyard.devenv.harness import Harness
from switchyard.devenv.layout import HOST
from switchyard.devenv.vault import (
    DATABASE_MOUNT,
    KV_MOUNT,
    SECRET_PREFIX,
    process_kinds,
    runtime_role,
)
from switchyard.dialog import sessions
from switchyard.domain.credentials import DatabaseLease
from switchyard.domain.secrets import Secret

# -- item 9: the runtime's database login --------------------------------------------------


@pytest.fixture(scope="module")
def region_db(harness: Harness) -> Iterator[LeasedRegionDb]:
    with leased_region_database(harness, "switchyard_test_privileges") as db:
        yield db


@pytest.fixture
def runtime_login(region_db: LeasedRegionDb, vault_root_token: str) -> Iterator[DatabaseLease]:
    leases = VaultCredentialLeases(
        region_db.harness.vault.addr, TokenAuth(Secret(vault_root_token))
    )
    yield leases.issue(region_db.new_role())
    leases.close()


def _connect(db: LeasedRegionDb, lease: DatabaseLease) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=HOST,
        port=db.harness.region_dbs["region-a"].port,
        user=lease.username,
        password=lease.password.reveal(),
        dbname=db.database,
        connect_timeout=2,
        autocommit=True,
    )


def test_a_runtime_login_writes_chat_but_cannot_change_region_state(
    region_db: LeasedRegionDb, runtime_login: DatabaseLease
) -> None:
    url = region_db.address.reveal().replace(
        "postgresql+psycopg://",
        f"postgresql+psycopg://{runtime_login.username}:{runtime_login.password.reveal()}@",
    )
    engine = make_engine(url)
    sid = uuid.uuid4()
    try:  # a chat turn as the runtime writes it: region_state read under a share lock
        with unit_of_work(engine) as s:
            sessions.record_exchange(
                session=s,
                region="region-a",
                session_id=sid,
                is_new=True,
                expected_turns=0,
                state={},
                turns=[sessions.NewTurn("user", "hi", "message")],
            )
        with unit_of_work(engine) as s:
            assert sessions.get_session(session=s, session_id=sid).turns == 1
            assert s.execute(text("SELECT count(*) FROM region_state")).scalar_one() == 1
    finally:
        engine.dispose()

    refused = (
        "UPDATE region_state SET role = 'primary', epoch = epoch + 1",
        "UPDATE region_state SET epoch = 99 WHERE region = 'region-a'",
        "INSERT INTO region_state (region, role, epoch) VALUES ('region-z', 'primary', 9)",
        "DELETE FROM region_state",
        "TRUNCATE region_state",
        "DELETE FROM dialog_turns",
        "UPDATE cdc_applied SET tx_seq = 0",
        "INSERT INTO cdc_signals (kind) VALUES ('x')",
        "CREATE TABLE sneaky (id int)",
    )
    with _connect(region_db, runtime_login) as conn:
        for statement in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with psycopg.connect(
        region_db.harness.region_dbs["region-a"].conninfo(region_db.database)
    ) as c:
        assert c.execute("SELECT role, epoch FROM region_state").fetchall() == [("primary", 1)]


# -- item 10: one AppRole and policy per process kind ---------------------------------------

# KV paths under secret/switchyard/ each kind may read; every other seeded one is refused.
SEEDED = (
    "api-tokens",
    "runtime-api-tokens",
    "dns/tsig",
    "dns/pdns",
    "postgres/control",
    "postgres/region-a",
    "postgres/region-b",
    "s3/region-a",
    "s3/region-b",
)
READS = {
    "api": {
        "api-tokens",
        "postgres/control",
        "postgres/region-a",
        "postgres/region-b",
        "s3/region-a",
        "s3/region-b",
    },
    "controller": {
        "dns/tsig",
        "dns/pdns",
        "postgres/control",
        "postgres/region-a",
        "postgres/region-b",
        "s3/region-a",
        "s3/region-b",
    },
    "runtime-region-a": {"runtime-api-tokens", "s3/region-a"},
    "runtime-region-b": {"runtime-api-tokens", "s3/region-b"},
    "cdc-region-a": {"postgres/region-a"},
    "cdc-region-b": {"postgres/region-b"},
    "snapshot": {"runtime-api-tokens", "postgres/control", "s3/region-a", "s3/region-b"},
}
# Which kind may issue (and renew) which runtime role's database logins.
ISSUES = {"runtime-region-a": "region-a", "runtime-region-b": "region-b"}


@pytest.fixture(scope="module")
def migrated_region_dbs(harness: Harness) -> None:
    """The harness's region databases at the region schema's head: a runtime login is granted
    its tables, so they must exist when one is issued (as after ``make demo``)."""
    for pg in harness.region_dbs.values():
        migrate.upgrade(pg.url(), schema=migrate.REGION)


def _login(harness: Harness, kind: str) -> Any:
    role = harness.vault.approle(kind)
    client = hvac.Client(url=harness.vault.addr, timeout=5)
    client.auth.approle.login(role_id=role["role_id"], secret_id=role["secret_id"])
    return client


def _read(client: Any, path: str) -> Any:
    return client.secrets.kv.v2.read_secret_version(
        path=f"{SECRET_PREFIX}/{path}", mount_point=KV_MOUNT, raise_on_deleted_version=True
    )


def test_every_process_kind_has_a_matrix_entry() -> None:
    assert set(READS) == set(process_kinds())


@pytest.mark.parametrize("kind", sorted(READS))
def test_each_kind_reads_its_secrets_and_is_refused_the_rest(harness: Harness, kind: str) -> None:
    client = _login(harness, kind)
    for path in SEEDED:
        if path in READS[kind]:
            assert _read(client, path)["data"]["data"], path
        else:
            with pytest.raises(hvac.exceptions.Forbidden):
                _read(client, path)
    with pytest.raises(hvac.exceptions.Forbidden):  # nobody writes secrets
        client.secrets.kv.v2.create_or_update_secret(
            path=f"{SECRET_PREFIX}/api-tokens", secret={"admin": "stolen"}, mount_point=KV_MOUNT
        )


def test_the_runtime_api_tokens_hold_no_admin_token(harness: Harness) -> None:
    runtime = _login(harness, "runtime-region-a")
    tokens = _read(runtime, "runtime-api-tokens")["data"]["data"]
    assert set(tokens) == {"viewer", "operator"}
    assert harness.creds.api_tokens["admin"] not in tokens.values()


@pytest.mark.parametrize("kind", sorted(READS))
def test_only_a_regions_runtime_issues_and_renews_its_logins(
    harness: Harness, kind: str, migrated_region_dbs: None
) -> None:
    client = _login(harness, kind)
    root = harness.vault.root_client()
    for region in harness.region_dbs:
        role = runtime_role(region)
        if ISSUES.get(kind) == region:
            lease = client.secrets.database.generate_credentials(role, mount_point=DATABASE_MOUNT)
            try:
                client.adapter.put(f"/v1/sys/leases/renew/{lease['lease_id']}", json={})
            finally:
                root.sys.revoke_lease(lease["lease_id"])  # this lease only: no runtime fenced
            continue
        with pytest.raises(hvac.exceptions.Forbidden):
            client.secrets.database.generate_credentials(role, mount_point=DATABASE_MOUNT)
        lease_id = root.secrets.database.generate_credentials(role, mount_point=DATABASE_MOUNT)[
            "lease_id"
        ]
        try:
            with pytest.raises(hvac.exceptions.Forbidden):  # the id in the path
                client.adapter.put(f"/v1/sys/leases/renew/{lease_id}", json={})
            with pytest.raises(hvac.exceptions.Forbidden):  # the id in the body
                client.sys.renew_lease(lease_id)
        finally:
            root.sys.revoke_lease(lease_id)


@pytest.mark.parametrize("kind", sorted(READS))
def test_only_the_controller_may_fence(harness: Harness, kind: str) -> None:
    client = _login(harness, kind)
    paths = [
        f"sys/leases/revoke-prefix/{DATABASE_MOUNT}/creds/{runtime_role(r)}"
        for r in harness.region_dbs
    ]
    capabilities = harness.vault.root_client().sys.get_capabilities(paths, token=client.token)
    for path in paths:
        granted = set(capabilities["data"][path])
        if kind == "controller":
            assert {"update", "sudo"} <= granted
        else:
            assert granted == {"deny"}
            # Refused for real: safe to try, since nothing is revoked.
            with pytest.raises(hvac.exceptions.Forbidden):
                client.sys.revoke_prefix(path.removeprefix("sys/leases/revoke-prefix/"))
