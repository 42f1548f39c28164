"""Credentials that last (issue 13, item 8), on real OpenBao and PostgreSQL with short TTLs.

A runtime's database login is a Vault lease, issued under the Vault token of its AppRole
login; a lease dies when it expires *and* when that token does. Before the credential keeper,
neither was renewed: with the harness's 1 h TTLs both regions lost their database at once
after an hour. Here the TTLs are seconds, so several lifetimes pass within a test.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import hvac.exceptions
import pytest
from sqlalchemy import create_engine, text

from support.vault import LeasedRegionDb, leased_region_database, runtime_policy
from switchyard.adapters.credential_keeper import CredentialKeeper
from switchyard.adapters.credentials_vault import VaultCredentialLeases
from switchyard.adapters.secrets_vault import VaultSecretStore
from switchyard.adapters.vault_session import VaultSession
from switchyard.bootstrap import _leased_engine, start_credential_keeper
from switchyard.db.engine import unit_of_work
from switchyard.devenv.vault import DATABASE_MOUNT
from switchyard.dialog import sessions
from switchyard.domain.secrets import Secret
from switchyard.errors import TransientError

REGION = "region-a"
# Several lease lifetimes, a re-issue at the lease's max TTL (25 s) and one after the token's
# re-login at its max TTL (35 s), all within the load.
LOAD_SECONDS = 50.0
CLIENTS = 4


@pytest.fixture(scope="module")
def region_db(harness: Any) -> Iterator[LeasedRegionDb]:
    with leased_region_database(harness, "switchyard_test_lasting") as db:
        yield db


class Recording:
    """A SecretRegistry keeping what the session registers: its secret id and every token."""

    def __init__(self) -> None:
        self.secrets: list[Secret] = []

    def register(self, secret: Secret) -> None:
        self.secrets.append(secret)


def _chat_turn(engine: Any, sid: uuid.UUID) -> str:
    """One chat-like write (a new session and its first two turns, under region_state's share
    lock) plus the readiness read; returns the database user that did it."""
    with unit_of_work(engine) as s:
        sessions.record_exchange(
            session=s,
            region=REGION,
            session_id=sid,
            is_new=True,
            expected_turns=0,
            state={},
            turns=[
                sessions.NewTurn("user", "hi", "message"),
                sessions.NewTurn("assistant", "hello", "extractive"),
            ],
        )
        s.execute(text("SELECT role FROM region_state WHERE region = :r"), {"r": REGION})
        return str(s.execute(text("SELECT current_user")).scalar_one())


def test_a_runtime_login_with_a_15s_ttl_serves_chat_load_for_several_ttls(
    region_db: LeasedRegionDb,
) -> None:
    role = region_db.new_role(default_ttl="15s", max_ttl="25s")
    auth = region_db.new_approle(runtime_policy(role), token_ttl="10s", token_max_ttl="35s")
    session = VaultSession(region_db.harness.vault.addr, auth)
    leases = VaultCredentialLeases(session.addr, auth, session=session)
    engine, login = _leased_engine(
        region_db.address, leases, role, lambda: session.token_generation
    )
    keeper = CredentialKeeper("test-credentials", [session.keep_alive, login.keep_alive]).start()
    acknowledged: list[uuid.UUID] = []
    users: set[str] = set()
    errors: list[str] = []
    deadline = time.monotonic() + LOAD_SECONDS

    def client() -> None:
        while time.monotonic() < deadline:
            sid = uuid.uuid4()
            try:
                users.add(_chat_turn(engine, sid))
                acknowledged.append(sid)
            except Exception as exc:  # every failure is a lost request
                errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.05)

    try:
        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        keeper.stop()
        engine.dispose()
        leases.close()

    assert errors == []
    assert login.lost is None
    assert len(acknowledged) > 100
    # Re-issued at the lease's max TTL and again under the token's new login, without a miss.
    assert len(users) >= 3, users
    check = create_engine(region_db.superuser_url)
    try:
        with check.connect() as c:
            stored = {
                row[0]
                for row in c.execute(
                    text("SELECT id FROM dialog_sessions WHERE id = ANY(:ids)"),
                    {"ids": acknowledged},
                )
            }
            turns = c.execute(
                text("SELECT count(*) FROM dialog_turns WHERE session_id = ANY(:ids)"),
                {"ids": acknowledged},
            ).scalar_one()
    finally:
        check.dispose()
    assert stored == set(acknowledged)  # every acknowledged write is there
    assert turns == 2 * len(acknowledged)


def test_a_revoked_lease_is_never_replaced(region_db: LeasedRegionDb) -> None:
    """Revocation is the fence: the keeper stops, the engine refuses, no new login appears."""
    role = region_db.new_role(default_ttl="6s", max_ttl="1h")
    auth = region_db.new_approle(runtime_policy(role), token_ttl="1h", token_max_ttl="2h")
    session = VaultSession(region_db.harness.vault.addr, auth)
    leases = VaultCredentialLeases(session.addr, auth, session=session)
    engine, login = _leased_engine(
        region_db.address, leases, role, lambda: session.token_generation
    )
    keeper = CredentialKeeper("test-fenced", [session.keep_alive, login.keep_alive]).start()
    prefix = f"{DATABASE_MOUNT}/creds/{role}"
    try:
        _chat_turn(engine, uuid.uuid4())
        region_db.root.sys.revoke_prefix(prefix)  # the controller's fence
        time.sleep(10)  # past the TTL: a renewer that re-issued would have done so by now

        assert login.lost is not None
        with pytest.raises(TransientError):
            _chat_turn(engine, uuid.uuid4())
        assert _live_leases(region_db.root, prefix) == 0  # nothing issued since
    finally:
        keeper.stop()
        engine.dispose()
        leases.close()


def test_a_vault_token_with_a_short_ttl_stays_valid_for_several_ttls(
    region_db: LeasedRegionDb,
) -> None:
    """What the API and the controllers run (``start_credential_keeper``): their token is
    renewed before it expires, and replaced by a new login when renewal reaches max_ttl, so
    a fence or a read never finds it dead — and leases issued under it are not revoked
    with it."""
    auth = region_db.new_approle(
        'path "sys/mounts" { capabilities = ["read"] }\n', token_ttl="4s", token_max_ttl="10s"
    )
    recording = Recording()
    session = VaultSession(region_db.harness.vault.addr, auth, redactor=recording)
    secrets = VaultSecretStore(session.addr, auth, session=session)
    keeper = start_credential_keeper("test-token", secrets)
    lapses = []
    try:
        deadline = time.monotonic() + 22
        time.sleep(1)
        while time.monotonic() < deadline:
            tokens = [s.reveal() for s in recording.secrets if s is not auth.secret_id]
            if not any(_alive(region_db.root, token) for token in tokens[-2:]):
                lapses.append(round(deadline - time.monotonic(), 1))
            time.sleep(0.5)
    finally:
        keeper.stop()
        secrets.close()
    assert lapses == []
    logins = [s for s in recording.secrets if s is not auth.secret_id]
    # Renewed in between: one login per max TTL (10 s), not one per TTL (4 s).
    assert 2 <= len(logins) <= 4


def _live_leases(root: Any, prefix: str) -> int:
    try:
        keys = root.sys.list_leases(f"{prefix}/")["data"]["keys"]
    except hvac.exceptions.InvalidPath:  # nothing under the prefix
        return 0
    return len(keys)


def _alive(root: Any, token: str) -> bool:
    try:
        root.auth.token.lookup(token)
    except Exception:
        return False
    return True
